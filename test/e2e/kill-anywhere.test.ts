// kill -9 at any instant must cost nothing but time. A real training run is killed before its
// first checkpoint, in the middle of writing one, and right after one (while retention may be
// deleting an old one); each time it is simply started again. The finished run must match an
// uninterrupted one bit for bit (every step's loss, the final weights and moments), log each
// step once, and leave no temporary file or directory behind: what a killed save leaves is
// cleared by the next start.
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { latestCheckpoint, leftovers, runCli, saveInProgress, startCli, stepLosses, stepsLogged, waitFor, writeRunConfig } from "./run-helpers.ts"

const STEPS = 12
// Large enough that writing a checkpoint takes a while (so a kill can land inside it).
const RUN = { steps: STEPS, dModel: 192, layers: 3, context: 32, every: 3, keep: 2 }

describe("killed anywhere, started again", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-kill-"))
  const reference = { losses: new Map<number, number>(), model: "", optimizer: "" }

  it("the uninterrupted reference run", async () => {
    fs.mkdirSync(path.join(root, "reference"))
    const r = await runCli(["run", writeRunConfig(path.join(root, "reference"), RUN)])
    expect(r.code, r.stderr).toBe(0)
    const runDir = path.join(root, "reference", "run")
    reference.losses = stepLosses(runDir)
    const last = latestCheckpoint(runDir)
    Object.assign(reference, { model: last.model, optimizer: last.optimizer })
    expect(reference.losses.size).toBe(STEPS)
    expect(leftovers(runDir)).toEqual([])
  }, 240_000)

  it("before the first checkpoint, inside a save, and just after one: identical result, no duplicates, no leftovers", async () => {
    const dir = path.join(root, "killed")
    fs.mkdirSync(dir)
    const config = writeRunConfig(dir, RUN)
    const runDir = path.join(dir, "run")
    /** Starts the run, waits for `moment`, kills it with SIGKILL. */
    const killAt = async (moment: () => boolean) => {
      const run = startCli(["run", config])
      await waitFor(moment, run.finished, 1)
      run.child.kill("SIGKILL")
      const ended = await run.finished
      expect(ended.signal, ended.stderr).toBe("SIGKILL")
    }

    // 1. Two steps in, no checkpoint yet: those steps are logged but nothing can resume them.
    await killAt(() => stepsLogged(runDir) >= 2)
    expect(fs.existsSync(path.join(runDir, "latest"))).toBe(false)

    // 2. In the middle of writing a checkpoint: its temporary directory is left behind.
    await killAt(() => saveInProgress(runDir))
    const leftBySave = leftovers(runDir)
    expect(leftBySave.length, "the kill should have landed inside the save").toBeGreaterThan(0)

    // 3. Right after a later checkpoint is in place (retention of the older ones may be under way).
    const latestStep = () => {
      try {
        return latestCheckpoint(runDir).step
      } catch {
        return 0
      }
    }
    const before = latestStep()
    await killAt(() => latestStep() > before)

    // The last start runs to the end.
    const finish = await runCli(["run", config])
    expect(finish.code, finish.stderr).toBe(0)
    for (const name of leftBySave) expect(fs.existsSync(path.join(runDir, name)), `${name} survived the next start`).toBe(false)
    expect(leftovers(runDir)).toEqual([])

    const losses = stepLosses(runDir) // throws if a step was logged twice
    expect(losses.size).toBe(STEPS)
    for (let step = 1; step <= STEPS; step++) expect(losses.get(step), `step ${step}`).toBe(reference.losses.get(step))
    const last = latestCheckpoint(runDir)
    expect(last.step).toBe(STEPS)
    expect(last.model).toBe(reference.model)
    expect(last.optimizer).toBe(reference.optimizer)
    // Retention: the newest two plus the best (none here: no held-out loss is recorded mid-run).
    expect(fs.readdirSync(path.join(runDir, "checkpoints")).sort()).toEqual(["step-00000009", "step-00000012"])
  }, 480_000)
})
