// The native backend through the real command: a run killed with SIGKILL and resumed on native
// reproduces the uninterrupted native run bit for bit; without the addon `auto` falls back to
// wasm and says so first, naming the command that builds it, while `native` asked for by name is
// one line and exit 1; an oversized model is refused before anything is allocated.
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { nativeTestsRun } from "../backend/native-setup.ts"

const STEPS = 16
const root = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-native-"))

const writeConfig = (dir: string, backend: string) => {
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, "config.json")
  fs.writeFileSync(
    file,
    JSON.stringify({
      run: { dir: path.join(dir, "run"), seed: 11 },
      backend,
      tokenizer: "bytes",
      model: { layers: 2, heads: 4, d_model: 64, d_ff: 256, context: 64, dropout: 0.1 },
      data: { val_fraction: 0.05 },
      train: { steps: STEPS, batch: 8, warmup_steps: 3, lr: 3e-3, min_lr: 3e-4 },
      eval: { every: 8, tokens: 2048 },
      checkpoint: { every: 1, keep: 2 },
      generate: { max_new_tokens: 5 }
    })
  )
  return file
}

const env = (extra: Record<string, string> = {}) => ({ ...process.env, GLASSBOX_BACKEND: "", ...extra })
/** Runs the command without blocking the test worker's event loop (vitest talks to it meanwhile). */
const cli = (args: string[], extra: Record<string, string> = {}) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/glassbox.js", ...args], { env: env(extra), stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("exit", (status) => resolve({ status, stdout, stderr }))
    child.on("error", reject)
  })

const stepLosses = (runDir: string) => {
  const losses = new Map<number, number>()
  for (const line of fs.readFileSync(path.join(runDir, "metrics.jsonl"), "utf8").split("\n")) {
    if (!line.includes('"event":"step"')) continue
    const e = JSON.parse(line) as { step: number; loss: number }
    losses.set(e.step, e.loss)
  }
  return losses
}
const stepsLogged = (runDir: string) => (fs.existsSync(path.join(runDir, "metrics.jsonl")) ? stepLosses(runDir).size : 0)
const finalModel = (runDir: string) => {
  const latest = path.join(runDir, fs.readFileSync(path.join(runDir, "latest"), "utf8").trim())
  return createHash("sha256").update(fs.readFileSync(path.join(latest, "model.safetensors"))).digest("hex")
}

const killAfter = (args: string[], runDir: string, steps: number) =>
  new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/glassbox.js", ...args], { stdio: "ignore", env: env() })
    const target = stepsLogged(runDir) + steps
    const timer = setInterval(() => {
      if (stepsLogged(runDir) >= target) {
        clearInterval(timer)
        child.kill("SIGKILL")
      }
    }, 5)
    child.on("exit", (code) => {
      clearInterval(timer)
      resolve(code)
    })
    child.on("error", reject)
  })

describe.runIf(nativeTestsRun)("the native backend end to end", () => {
  const reference = { losses: new Map<number, number>(), model: "" }

  it("an uninterrupted run on native", async () => {
    const config = writeConfig(path.join(root, "reference"), "native")
    const r = await cli(["run", config])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/backend: native \(OpenBLAS/)
    const runDir = path.join(root, "reference", "run")
    reference.losses = stepLosses(runDir)
    reference.model = finalModel(runDir)
    expect(reference.losses.size).toBe(STEPS)
    expect(reference.losses.get(STEPS)!).toBeLessThan(reference.losses.get(1)!)
  }, 180_000)

  it("killed with SIGKILL twice and resumed on native: bit-identical losses and weights", async () => {
    const dir = path.join(root, "killed")
    const config = writeConfig(dir, "native")
    const runDir = path.join(dir, "run")
    expect(await killAfter(["run", config], runDir, 4)).toBe(null)
    expect(await killAfter(["resume", runDir], runDir, 5)).toBe(null)
    const last = await cli(["resume", runDir])
    expect(last.status, last.stderr).toBe(0)
    const losses = stepLosses(runDir)
    for (let step = 1; step <= STEPS; step++) expect(losses.get(step), `step ${step}`).toBe(reference.losses.get(step))
    expect(finalModel(runDir)).toBe(reference.model)
  }, 240_000)

  it("without the addon, auto runs on wasm and its first line names the command that builds it", async () => {
    const config = writeConfig(path.join(root, "fallback"), "auto")
    const r = await cli(["run", config, "--set", "train.steps=5", "--set", "eval.every=0"], { GLASSBOX_NATIVE_ADDON: path.join(root, "missing.node") })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr.split("\n")[0]).toMatch(/^note: the native kernels are not built .*; running on wasm .*For the fast CPU path run: apt-get install libopenblas-dev build-essential && npm rebuild$/)
    expect(r.stdout).toMatch(/backend: wasm/)
  }, 120_000)

  it("asking for native without the addon is one line and exit 1", async () => {
    const config = writeConfig(path.join(root, "forced"), "native")
    const r = await cli(["run", config], { GLASSBOX_NATIVE_ADDON: path.join(root, "missing.node") })
    expect(r.status).toBe(1)
    const lines = r.stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/backend "native" is not available: the native kernels are not built .*build them with: apt-get install libopenblas-dev/)
  }, 60_000)

  for (const backend of ["native", "cpu"]) {
    it(`an oversized model on ${backend} is refused before anything is allocated`, async () => {
      const config = writeConfig(path.join(root, `huge-${backend}`), backend)
      const r = await cli(["run", config, "--set", "model.layers=64", "--set", "model.d_model=4096", "--set", "model.d_ff=16384", "--set", "model.context=1024", "--set", "train.batch=64"])
      expect(r.status).toBe(1)
      const lines = r.stderr.trim().split("\n")
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/a training step needs about \d+\.\d\d GB but this machine's memory allows \d+\.\d\d GB; the largest part is .*reduce train\.batch/)
      // 13 billion parameters (52 GB) were never initialised: the process would have died.
      expect(fs.existsSync(path.join(root, `huge-${backend}`, "run", "checkpoints"))).toBe(false)
    }, 90_000)
  }
})
