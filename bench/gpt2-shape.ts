// GPT-2 small's speed without the Hub: speed depends on the shape, not on the weight values, so
// a randomly initialised model of GPT-2 small's shape (12 layers, d 768, 12 heads, 1,024
// positions, vocabulary 50,257, 124M parameters) runs exactly the arithmetic the real one does.
// This script builds one, exports it as a Hugging Face-style directory (config.json +
// model.safetensors + tokenizer files, written by `glassbox export --format hf`'s code) and
// times, as JSON lines:
//   - through the CLI, as a user meets it (each command opens the 500 MB file itself):
//     `generate <dir>` with 100 new tokens (cached decoding, greedy), and the four probes;
//   - through the same services in this process (bench/pretrained.ts on the directory): opening,
//     generation with tokens/s, and each probe alone.
// What it cannot show is what the probes find: the induction heads of the real GPT-2 small
// (5.1, 5.5, 6.9) need its trained weights (bench/pretrained.ts --model gpt2 with a network).
//   GLASSBOX_THREADS=2 npx tsx bench/gpt2-shape.ts [--backend native|wasm] [--new-tokens 100] [--keep <dir>]
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { parseBackendChoice, selectBackend } from "../src/backend/backend.ts"
import { gpt2SmallConfig, parameterCount } from "../src/model/config.ts"
import { initGPT } from "../src/model/gpt.ts"
import { writeHfDirectory } from "../src/model/hf-export.ts"

const { values } = parseArgs({
  options: {
    backend: { type: "string", default: "native" },
    "new-tokens": { type: "string", default: "100" },
    keep: { type: "string" }
  }
})
const backendName = values.backend!
const threads = process.env.GLASSBOX_THREADS ?? String(os.cpus().length)
const emit = (o: Record<string, unknown>) =>
  process.stdout.write(JSON.stringify({ bench: "gpt2-shape", weights: "random", backend: backendName, threads: Number(threads), ...o }) + "\n")

/** Fraction of all cores' time spent busy over `ms` (from /proc/stat; undefined elsewhere). */
const cpuBusy = async (ms: number): Promise<number | undefined> => {
  const sample = () => {
    try {
      const fields = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number)
      return { idle: fields[3] + fields[4], total: fields.reduce((a, b) => a + b, 0) }
    } catch {
      return undefined
    }
  }
  const a = sample()
  await new Promise((r) => setTimeout(r, ms))
  const b = sample()
  if (a === undefined || b === undefined || b.total === a.total) return undefined
  return Number((1 - (b.idle - a.idle) / (b.total - a.total)).toFixed(2))
}

await Effect.runPromise(parseBackendChoice(backendName, "--backend").pipe(Effect.flatMap(selectBackend)))
const dir = values.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-gpt2-shape-"))
const b0 = performance.now()
const model = initGPT(gpt2SmallConfig, 0)
await Effect.runPromise(writeHfDirectory(model, "gpt2", dir, "random GPT-2 small"))
model.dispose()
emit({
  metric: "build",
  ms: Math.round(performance.now() - b0),
  dir,
  parameters: parameterCount(gpt2SmallConfig),
  safetensors_mb: Number((fs.statSync(path.join(dir, "model.safetensors")).size / 2 ** 20).toFixed(1)),
  // Other work on the machine slows every figure below: how busy the cores were just before.
  cpu_busy_before: await cpuBusy(1000)
})

const ROOT = path.resolve(import.meta.dirname, "..")
const env = { ...process.env, GLASSBOX_BACKEND: backendName, GLASSBOX_THREADS: threads, NO_COLOR: "1" }

/** Runs a command to completion; wall time and output. */
const run = (args: string[]) =>
  new Promise<{ ms: number; code: number | null; out: string }>((resolve) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.stderr.on("data", (d) => (out += d))
    child.on("exit", (code) => resolve({ ms: Math.round(performance.now() - t0), code, out }))
  })

const cli = path.join(ROOT, "bin/glassbox.js")
const newTokens = values["new-tokens"]!
const commands: Array<[string, string[]]> = [
  ["generate", ["generate", dir, "--prompt", "The whale swam past the ship, and", "--preset", "greedy", "--max-new-tokens", newTokens]],
  ["logit-lens", ["interpret", "logit-lens", dir, "--text", "The Eiffel Tower is in the city of"]],
  ["attention", ["interpret", "attention", dir, "--text", "The Eiffel Tower is in the city of"]],
  ["induction", ["interpret", "induction", dir]],
  ["patch", ["interpret", "patch", dir, "--clean", "The Eiffel Tower is in the city of", "--corrupted", "The Colosseum is in the city of", "--answer", " Paris", "--wrong", " Rome"]]
]
for (const [name, args] of commands) {
  const r = await run([cli, ...args])
  // generate prints its own "N tokens in S s (X tokens/s on <backend>)" line on stderr.
  const speed = /([\d.]+) tokens\/s/.exec(r.out)
  emit({ metric: `cli_${name}`, wall_ms: r.ms, exit: r.code, ...(speed ? { tokens_per_s: Number(speed[1]) } : {}), ...(r.code === 0 ? {} : { output: r.out.slice(-400) }) })
}

// The same work through the services, one process, each step timed alone.
const inProcess = await run(["--import", "tsx", path.join(ROOT, "bench/pretrained.ts"), "--model", dir, "--backend", backendName, "--new-tokens", newTokens])
for (const line of inProcess.out.split("\n")) {
  if (!line.startsWith("{")) continue
  const o = JSON.parse(line) as Record<string, unknown>
  delete o.bench
  delete o.model
  delete o.text
  emit({ ...o, via: "services" })
}
if (inProcess.code !== 0) emit({ metric: "services", exit: inProcess.code, output: inProcess.out.slice(-400) })
if (values.keep === undefined) fs.rmSync(dir, { recursive: true, force: true })
