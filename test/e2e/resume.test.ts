// Exact resume, tested with real processes: an uninterrupted run is the reference; the same run
// is killed with SIGKILL at several moments (checkpoints are written every step, so kills land
// during writes too), resumed each time, and must reproduce the reference bit for bit: every
// per-step loss after each resume point and the final weights and optimizer state. SIGINT must
// leave a resumable checkpoint and exit 0.
import { describe, expect, it } from "@effect/vitest"
import { spawn, type ChildProcess } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { runCli } from "./run-helpers.ts"

const STEPS = 30

const writeConfig = (dir: string) => {
  const file = path.join(dir, "config.json")
  fs.writeFileSync(
    file,
    JSON.stringify({
      run: { dir: path.join(dir, "run"), seed: 7 },
      backend: "wasm",
      tokenizer: "bytes",
      model: { layers: 2, heads: 2, d_model: 32, d_ff: 64, context: 32, dropout: 0.1 },
      data: { val_fraction: 0.05 },
      train: { steps: STEPS, batch: 4, warmup_steps: 3, lr: 3e-3, min_lr: 3e-4 },
      eval: { every: 10, tokens: 1024 },
      checkpoint: { every: 1, keep: 3 },
      generate: { max_new_tokens: 5 }
    })
  )
  return file
}

/** Runs the command to completion without blocking the test worker (vitest's RPC needs its loop). */
const cli = async (args: string[]) => {
  const r = await runCli(args)
  return { status: r.code, stdout: r.stdout, stderr: r.stderr }
}
const start = (args: string[]): ChildProcess => spawn(process.execPath, ["bin/glassbox.js", ...args], { stdio: ["ignore", "pipe", "pipe"] })

const stepLosses = (runDir: string): Map<number, number> => {
  const losses = new Map<number, number>()
  for (const line of fs.readFileSync(path.join(runDir, "metrics.jsonl"), "utf8").split("\n")) {
    if (line.trim() === "") continue
    const e = JSON.parse(line) as { event: string; step: number; loss: number }
    if (e.event === "step") {
      expect(losses.has(e.step), `step ${e.step} logged twice`).toBe(false)
      losses.set(e.step, e.loss)
    }
  }
  return losses
}

const stepsLogged = (runDir: string) => {
  try {
    return fs.readFileSync(path.join(runDir, "metrics.jsonl"), "utf8").split("\n").filter((l) => l.includes('"event":"step"')).length
  } catch {
    return 0
  }
}

const sha = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex")
const finalFiles = (runDir: string) => {
  const latest = path.join(runDir, fs.readFileSync(path.join(runDir, "latest"), "utf8").trim())
  return { model: sha(path.join(latest, "model.safetensors")), optimizer: sha(path.join(latest, "optimizer.safetensors")), latest }
}

/** Starts `args`, waits until the run has logged `steps` more steps, then sends `signal`. */
const interruptAfter = (args: string[], runDir: string, steps: number, signal: NodeJS.Signals) =>
  new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
    const child = start(args)
    let stdout = ""
    child.stdout!.on("data", (d) => (stdout += d))
    const target = stepsLogged(runDir) + steps
    const timer = setInterval(() => {
      if (stepsLogged(runDir) >= target) {
        clearInterval(timer)
        child.kill(signal)
      }
    }, 5)
    child.on("exit", (code) => {
      clearInterval(timer)
      resolve({ code, stdout })
    })
    child.on("error", reject)
  })

describe("resume after a kill", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-resume-"))
  const referenceDir = path.join(root, "reference")
  fs.mkdirSync(referenceDir)
  const reference = { losses: new Map<number, number>(), files: { model: "", optimizer: "" } }

  it("the uninterrupted reference run", async () => {
    const r = await cli(["run", writeConfig(referenceDir)])
    expect(r.status, r.stderr).toBe(0)
    reference.losses = stepLosses(path.join(referenceDir, "run"))
    reference.files = finalFiles(path.join(referenceDir, "run"))
    expect(reference.losses.size).toBe(STEPS)
  }, 120_000)

  /** A fresh directory with the test config; returns the config file and the run directory. */
  const freshRun = (name: string) => {
    const dir = path.join(root, name)
    fs.mkdirSync(dir)
    return { config: writeConfig(dir), runDir: path.join(dir, "run") }
  }
  /** Every step's loss, bit for bit, and the final weights equal the uninterrupted run's. */
  const expectReference = (runDir: string) => {
    const losses = stepLosses(runDir)
    expect(losses.size).toBe(STEPS)
    for (let step = 1; step <= STEPS; step++) expect(losses.get(step), `step ${step}`).toBe(reference.losses.get(step))
    expect(finalFiles(runDir).model).toBe(reference.files.model)
  }

  it("killed with SIGKILL three times and resumed: identical losses and final state", async () => {
    const { config, runDir } = freshRun("killed")
    const first = await interruptAfter(["run", config], runDir, 5, "SIGKILL")
    expect(first.code).toBe(null) // killed, not exited
    for (const steps of [7, 9]) {
      const again = await interruptAfter(["resume", runDir], runDir, steps, "SIGKILL")
      expect(again.code).toBe(null)
    }
    const last = await cli(["resume", runDir])
    expect(last.status, last.stderr).toBe(0)
    expect(last.stdout).toMatch(/resuming .* at step \d+/)
    expectReference(runDir)
    expect(finalFiles(runDir).optimizer).toBe(reference.files.optimizer)
  }, 240_000)

  it("SIGINT finishes the step, saves, exits 0 and says how to resume", async () => {
    const { config, runDir } = freshRun("interrupted")
    const stopped = await interruptAfter(["run", config], runDir, 6, "SIGINT")
    expect(stopped.code).toBe(0)
    expect(stopped.stdout).toContain(`Resume with: glassbox resume ${runDir}`)
    const state = JSON.parse(fs.readFileSync(path.join(finalFiles(runDir).latest, "state.json"), "utf8")) as { step: number }
    expect(state.step).toBe(stepsLogged(runDir))
    const finish = await cli(["resume", runDir])
    expect(finish.status, finish.stderr).toBe(0)
    expectReference(runDir)
  }, 240_000)

  it("a changed model on resume is refused, naming the keys", async () => {
    const r = await cli(["run", path.join(root, "killed", "config.json"), "--set", "model.layers=3", "--set", "train.steps=40"])
    expect(r.status).toBe(1)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
    expect(r.stderr).toContain("model.layers: 2 → 3")
    expect(r.stderr).not.toContain("train.steps")
  }, 60_000)
})

describe("guards and timed checkpoints in a real run", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-guard-"))

  it("a diverging run stops with one line, and the last good state is saved", async () => {
    const config = writeConfig(root)
    // An absurd learning rate with clipping off overflows float32 within a few steps.
    const r = await cli(["run", config, "--set", "train.lr=1e30", "--set", "train.min_lr=1e30", "--set", "train.clip=0", "--set", "train.warmup_steps=0", "--set", "checkpoint.every=0"])
    expect(r.status).toBe(1)
    const lines = r.stderr.trim().split("\n")
    expect(lines[lines.length - 1]).toMatch(/^glassbox: training stopped at step (\d+): loss .* \(not finite\).*; the last good state is saved in .*step-\d+$/)
    const stoppedAt = Number(/step (\d+):/.exec(lines[lines.length - 1])![1])
    const state = JSON.parse(fs.readFileSync(path.join(finalFiles(path.join(root, "run")).latest, "state.json"), "utf8")) as { step: number }
    expect(state.step).toBe(stoppedAt - 1)
  }, 60_000)

  it("checkpoint.every_minutes saves by time", async () => {
    const dir = path.join(root, "timed")
    fs.mkdirSync(dir)
    const r = await cli(["run", writeConfig(dir), "--set", "train.steps=4", "--set", "checkpoint.every=0", "--set", "checkpoint.every_minutes=0.000001", "--set", "checkpoint.keep=10"])
    expect(r.status, r.stderr).toBe(0)
    expect(fs.readdirSync(path.join(dir, "run", "checkpoints")).sort()).toEqual(["step-00000001", "step-00000002", "step-00000003", "step-00000004"])
  }, 60_000)
})
