// Quick runs and existing runs, as a user meets them: a five-step trial run with the shipped
// config's warmup (scaled, with a note), a second `run` of a finished run (said to be complete,
// nothing trained or written), `--fresh` (the old run moved aside, never deleted), and `train`
// given a config for another pipeline (refused, pointing at `run`).
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-runs-"))
const glassbox = (args: string[]) =>
  new Promise<{ code: number; out: string; err: string }>((resolve) => {
    execFile(process.execPath, ["bin/glassbox.js", ...args], { encoding: "utf8", env: { ...process.env, GLASSBOX_BACKEND: "wasm" }, timeout: 300_000 }, (error, out, err) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, out, err })
    )
  })

// A config whose warmup (10 of 100 steps) does not fit a 5-step run; small enough to train in seconds.
const config = path.join(dir, "quick.json")
const runDir = path.join(dir, "run")
fs.writeFileSync(
  config,
  JSON.stringify({
    run: { dir: runDir },
    tokenizer: "bytes",
    model: { layers: 1, heads: 2, d_model: 16, d_ff: 32, context: 16 },
    data: { val_fraction: 0.05 },
    train: { steps: 100, batch: 2, warmup_steps: 10 },
    eval: { every: 0, tokens: 128 },
    checkpoint: { every: 0, keep: 2 },
    generate: { max_new_tokens: 3, prompt: "a" }
  })
)

describe("quick runs and existing runs", () => {
  it("a quick run scales the warmup with a note; a finished run is reported complete and left alone; --fresh starts over", async () => {
    const first = await glassbox(["run", config, "--set", "train.steps=5"])
    expect(first.code, first.err).toBe(0)
    expect(first.err).toContain("note: train.warmup_steps 10 does not fit in train.steps 5; using 1")
    expect(first.out).toContain("saved")
    const metrics = path.join(runDir, "metrics.jsonl")
    const before = fs.readFileSync(metrics, "utf8")

    // The same run again, and a shorter one: complete, with a larger step count suggested.
    for (const steps of ["5", "3"]) {
      const again = await glassbox(["run", config, "--set", `train.steps=${steps}`])
      expect(again.code, again.err).toBe(0)
      expect(again.out).toContain(`${runDir} is complete: it has trained 5 steps and the config asks for ${steps}. Nothing to do.`)
      expect(again.out).toContain("--set train.steps=10")
      expect(again.out).toContain("--fresh")
      expect(again.out).not.toContain("tokens →")
      expect(fs.readFileSync(metrics, "utf8")).toBe(before)
    }
    const resumed = await glassbox(["resume", runDir])
    expect(resumed.code, resumed.err).toBe(0)
    expect(resumed.out).toContain("is complete")
    expect(fs.readFileSync(metrics, "utf8")).toBe(before)

    // --fresh: a new run from step 0; the old one is kept beside it.
    const fresh = await glassbox(["train", config, "--set", "train.steps=2", "--fresh"])
    expect(fresh.code, fresh.err).toBe(0)
    expect(fresh.err).toContain(`--fresh: moved the previous run in ${runDir} to ${runDir}.previous`)
    expect(fresh.out).toContain("steps 0→2")
    expect(fs.readFileSync(path.join(`${runDir}.previous`, "metrics.jsonl"), "utf8")).toBe(before)
  }, 600_000)

  it("train refuses a config for another pipeline", async () => {
    const r = await glassbox(["train", "config/walkthrough.json"])
    expect(r.code).toBe(1)
    expect(r.err.trim()).toBe("glassbox: config/walkthrough.json describes the walkthrough pipeline, not training; run it with: glassbox run config/walkthrough.json")
  }, 120_000)

  it("a warmup the user sets is not second-guessed", async () => {
    const r = await glassbox(["run", config, "--set", "train.steps=5", "--set", "train.warmup_steps=9", "--set", `run.dir=${path.join(dir, "other")}`])
    expect(r.code).toBe(1)
    expect(r.err).toContain("train.warmup_steps: 9 must be less than train.steps (5)")
  }, 120_000)
})
