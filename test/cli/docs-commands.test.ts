// Every command shown in README.md and docs/*.md runs as written. The commands are read out of
// the fenced code blocks, then run by bash (so quotes, pipes, redirections and comments mean what
// they mean to a reader) in a scratch directory that holds what `npm start` leaves: a run of
// config/tiny.json in runs/tiny. To keep the suite fast, the scratch config/tiny.json is the real
// one made small (model width, steps, held-out tokens); its tokenizer, layers, heads, context and
// everything else stay as shipped. `npx glassbox`, `npx tsx` and `npm start` are small shims
// for the checkout under test. Only commands that need the network (FineWeb on the Hub) or a
// terminal (the menu) are not run; they are still checked to parse.
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { outline, planCommandLine } from "../../src/cli/help.ts"
import { glassbox } from "../../src/cli/main.ts"

const ROOT = process.cwd()

interface DocCommand {
  readonly file: string
  readonly line: number
  readonly command: string
}

/** Shell commands that run glassbox (or npm start, or a pipeline script) in fenced code blocks. */
const extractCommands = (file: string, text: string): DocCommand[] => {
  const out: DocCommand[] = []
  const lines = text.split("\n")
  let fence: string | undefined
  for (let i = 0; i < lines.length; i++) {
    const fenceMatch = /^\s*```(\w*)/.exec(lines[i])
    if (fenceMatch) {
      fence = fence === undefined ? fenceMatch[1] : undefined
      continue
    }
    if (fence === undefined || !["", "sh", "bash", "shell", "console"].includes(fence)) continue
    let command = lines[i].trim().replace(/^\$ /, "")
    const start = i + 1
    while (command.endsWith("\\") && i + 1 < lines.length) command = command.slice(0, -1) + " " + lines[++i].trim()
    // Diagrams drawn in code blocks (arrows, box lines) are not commands.
    if (/[─▶◀┐┘┼│]/.test(command)) continue
    if (/^(npx glassbox|glassbox|npm start|npx tsx pipelines\/)/.test(command) || /\|\s*(npx )?glassbox\b/.test(command)) out.push({ file, line: start, command })
  }
  return out
}

/** Commands that are not run here, and why. */
const notRun: ReadonlyArray<{ pattern: RegExp; reason: string }> = [
  { pattern: /fineweb/, reason: "downloads from the Hugging Face Hub (the Hub client is tested against a loopback server)" },
  {
    pattern: /glassbox \w+( [\w-]+)? (gpt2[\w-]*|hf:\S+)(\s|$)|finetune-gpt2/,
    reason: "downloads GPT-2 from the Hub (model references and fine-tuning are tested against fixtures and a loopback server)"
  },
  { pattern: /glassbox (generate|chat|export|interpret \S+) gpt2\b|\bhf:|finetune-gpt2/, reason: "downloads GPT-2 from the Hugging Face Hub (model references are tested against a loopback Hub in test/model/)" },
  { pattern: /^(npx )?glassbox\s*(#.*)?$/, reason: "the interactive menu needs a terminal (test/cli/menu.test.ts drives it in a PTY)" },
  {
    pattern: /runs\/gpt2-124m|log124M\/|runs\/from-llmc/,
    reason: "needs a GPT-2-size run trained on FineWeb, or the model file llm.c writes (docs/scale-out.md's hand-off; test/e2e covers it on small files)"
  }
]

const docFiles = ["README.md", ...fs.readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => path.join("docs", f))]
const commands = docFiles.flatMap((f) => extractCommands(f, fs.readFileSync(path.join(ROOT, f), "utf8")))
const skipReason = (c: DocCommand) => notRun.find((n) => n.pattern.test(c.command))?.reason
/** The glassbox arguments of a command line (quotes respected, the comment dropped), for parsing. */
const glassboxArgs = (command: string): string[] | undefined => {
  const m = /(?:^|\|\s*)(?:npx )?glassbox\b(.*)$/.exec(command)
  if (m === undefined || m === null) return undefined
  const words: string[] = []
  const re = /"([^"]*)"|'([^']*)'|(#.*$)|(\S+)/g
  for (let w = re.exec(m[1]); w !== null; w = re.exec(m[1])) {
    if (w[3] !== undefined) break
    if (w[4] === ">" || w[4] === "|") break
    words.push(w[1] ?? w[2] ?? w[4])
  }
  return words
}
const trains = (c: DocCommand) => /^npm start|^(npx )?glassbox (run|train) /.test(c.command)

/** A scratch directory laid out like a checkout after `npm start`, with shims on PATH. */
const scratch = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-docs-"))
  fs.mkdirSync(path.join(dir, "config"))
  for (const f of fs.readdirSync(path.join(ROOT, "config"))) fs.copyFileSync(path.join(ROOT, "config", f), path.join(dir, "config", f))
  const tiny = JSON.parse(fs.readFileSync(path.join(ROOT, "config", "tiny.json"), "utf8")) as Record<string, Record<string, unknown>>
  // Narrow, but the layers and heads the docs name (--layer 1 --head 3) stay as shipped.
  const heads = Number(tiny.model.heads ?? 4)
  const dModel = heads * Math.max(4, Math.ceil(16 / heads))
  // d_ff keeps its ratio to d_model (llm.c's format, for one, fixes it at 4·d_model).
  const ffRatio = Number(tiny.model.d_ff ?? 4 * Number(tiny.model.d_model ?? 1)) / Number(tiny.model.d_model ?? 1)
  tiny.model = { ...tiny.model, d_model: dModel, d_ff: Math.round(ffRatio * dModel) }
  tiny.train = { ...tiny.train, steps: 4, warmup_steps: 1, batch: 2, accumulate: 1 }
  tiny.eval = { ...tiny.eval, every: 0, tokens: 512 }
  tiny.generate = { ...tiny.generate, max_new_tokens: 5 }
  fs.writeFileSync(path.join(dir, "config", "tiny.json"), JSON.stringify(tiny, null, 2))
  fs.symlinkSync(path.join(ROOT, "pipelines"), path.join(dir, "pipelines"))
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"))
  const bin = path.join(dir, ".bin")
  fs.mkdirSync(bin)
  const shim = (name: string, body: string) => {
    fs.writeFileSync(path.join(bin, name), `#!/usr/bin/env bash\n${body}\n`)
    fs.chmodSync(path.join(bin, name), 0o755)
  }
  shim("glassbox", `exec "${process.execPath}" "${path.join(ROOT, "bin", "glassbox.js")}" "$@"`)
  shim("npx", `case "$1" in glassbox) shift; exec glassbox "$@";; tsx) shift; exec "${path.join(ROOT, "node_modules", ".bin", "tsx")}" "$@";; *) echo "npx $1: not shimmed" >&2; exit 127;; esac`)
  shim("npm", `case "$1" in start) exec glassbox run config/tiny.json;; *) echo "npm $1: not shimmed" >&2; exit 127;; esac`)
  return { dir, env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, GLASSBOX_BACKEND: "wasm", GLASSBOX_CACHE: path.join(dir, "cache"), NO_COLOR: "1" } }
}

/** Absolute scratch paths in the docs (/tmp/gb-…) are moved into the scratch directory. */
const localise = (command: string, dir: string) => command.replace(/\/tmp\/gb-/g, `${dir}/gb-`)

describe("README and docs commands", () => {
  it("finds the commands, and every one that is not run still parses", () => {
    expect(commands.length).toBeGreaterThan(40)
    expect(commands.some((c) => c.file === "README.md" && c.command.startsWith("npx glassbox generate runs/tiny"))).toBe(true)
    const root = outline(glassbox)
    const problems: string[] = []
    for (const c of commands) {
      const args = glassboxArgs(c.command)
      if (args === undefined || args.length === 0) continue
      // Paths the runs create do not exist yet; everything else must be a valid command line.
      const plan = planCommandLine(root, args)
      if (plan._tag === "Error" && !/ does not exist$/.test(plan.message)) problems.push(`${c.file}:${c.line}: ${c.command}\n  ${plan.message}`)
    }
    expect(problems, problems.join("\n")).toEqual([])
  })

  it("every command runs as written against what npm start leaves", async () => {
    const { dir, env } = scratch()
    // Asynchronous on purpose: a blocking spawnSync would starve the test worker's own messaging.
    const run = (command: string) =>
      new Promise<{ status: number; stderr: string }>((resolve) => {
        const child = execFile("bash", ["-c", command], { cwd: dir, env, encoding: "utf8", timeout: 300_000, maxBuffer: 64 * 1024 * 1024 }, (error, _out, stderr) =>
          resolve({ status: error ? (typeof error.code === "number" ? error.code : 1) : 0, stderr })
        )
        child.stdin?.end()
      })
    const start = await run("npm start")
    expect(start.status, start.stderr).toBe(0)
    expect(fs.existsSync(path.join(dir, "runs", "tiny", "latest"))).toBe(true)
    const runnable = commands.filter((c) => skipReason(c) === undefined)
    // Runs that other commands open (e.g. /tmp/gb-tiny) are made first, in document order.
    const ordered = [...runnable.filter(trains), ...runnable.filter((c) => !trains(c))]
    const failures: string[] = []
    const done = new Set<string>()
    for (const c of ordered) {
      const command = localise(c.command, dir)
      if (done.has(command)) continue
      done.add(command)
      const r = await run(command)
      // A command the page shows being refused ("# refused: …") must fail the documented way.
      const refused = /#\s*refused\b/.test(c.command)
      const ok = refused ? r.status === 1 && r.stderr.trim().split("\n").length === 1 : r.status === 0
      if (!ok || /internal error|\n\s+at /.test(r.stderr)) failures.push(`${c.file}:${c.line}: ${c.command}\n  exit ${r.status}: ${r.stderr.trim().split("\n").slice(-3).join("\n  ")}`)
    }
    expect(failures, failures.join("\n")).toEqual([])
  }, 1_800_000)
})
