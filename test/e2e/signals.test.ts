// Ctrl-C and SIGTERM on a real training process whose config saves no periodic checkpoints
// (checkpoint.every 0, as the shipped config has): the run must notice the signal within one
// step, save, exit 0 with the resume line, and a resumed run must match an uninterrupted one
// bit for bit. A second signal while that save is being written must wait for it.
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { latestCheckpoint, leftovers, runCli, saveInProgress, startCli, stepLosses, stepsLogged, waitFor, writeRunConfig } from "./run-helpers.ts"

const STEPS = 30

describe("stopping a run with a signal", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-signals-"))
  const fresh = (name: string, options: Parameters<typeof writeRunConfig>[1] = { steps: STEPS }) => {
    const dir = path.join(root, name)
    fs.mkdirSync(dir)
    return { config: writeRunConfig(dir, options), runDir: path.join(dir, "run") }
  }
  const reference = { losses: new Map<number, number>(), model: "" }

  it("the uninterrupted reference run", async () => {
    const { config, runDir } = fresh("reference")
    const r = await runCli(["run", config])
    expect(r.code, r.stderr).toBe(0)
    reference.losses = stepLosses(runDir)
    reference.model = latestCheckpoint(runDir).model
    expect(reference.losses.size).toBe(STEPS)
  }, 180_000)

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`${signal} with checkpoint.every 0 stops within one step, saves, exits 0, and resumes bit for bit`, async () => {
      const { config, runDir } = fresh(signal)
      const run = startCli(["run", config])
      await waitFor(() => stepsLogged(runDir) >= 3, run.finished)
      const signalledAfter = stepsLogged(runDir)
      run.child.kill(signal)
      const stopped = await run.finished
      expect(stopped.code, stopped.stderr).toBe(0)
      expect(stopped.stdout).toContain(`Resume with: glassbox resume ${runDir}`)
      const saved = latestCheckpoint(runDir)
      // The step in flight when the signal landed finishes; the next one never starts (one more
      // step of slack for the polling delay between reading the log and sending the signal).
      expect(saved.step).toBeGreaterThanOrEqual(signalledAfter)
      expect(saved.step).toBeLessThanOrEqual(signalledAfter + 2)
      expect(stepsLogged(runDir)).toBe(saved.step)
      expect(stopped.stdout).toContain(`stopped by ${signal} at step ${saved.step}`)

      const resumed = await runCli(["resume", runDir])
      expect(resumed.code, resumed.stderr).toBe(0)
      const losses = stepLosses(runDir)
      expect(losses.size).toBe(STEPS)
      for (let step = 1; step <= STEPS; step++) expect(losses.get(step), `step ${step}`).toBe(reference.losses.get(step))
      expect(latestCheckpoint(runDir).model).toBe(reference.model)
    }, 240_000)
  }

  it("a second SIGINT while the checkpoint is being written waits for it and says so", async () => {
    // A larger model, so the save lasts long enough to be caught in the act.
    const { config, runDir } = fresh("twice", { steps: 400, dModel: 256, layers: 4, context: 32 })
    const run = startCli(["run", config])
    await waitFor(() => stepsLogged(runDir) >= 1, run.finished)
    run.child.kill("SIGINT")
    await waitFor(() => saveInProgress(runDir), run.finished, 1)
    run.child.kill("SIGINT")
    const stopped = await run.finished
    expect(stopped.code, stopped.stderr).toBe(0)
    expect(stopped.stderr).toMatch(/SIGINT: the checkpoint is being written; waiting for it to finish|SIGINT: the checkpoint is saved; exiting/)
    expect(stopped.stdout).toContain(`Resume with: glassbox resume ${runDir}`)
    const saved = latestCheckpoint(runDir)
    expect(saved.model).toBe(saved.recorded["model.safetensors"])
    expect(saved.optimizer).toBe(saved.recorded["optimizer.safetensors"])
    expect(saved.step).toBe(stepsLogged(runDir))
    expect(leftovers(runDir)).toEqual([])
  }, 240_000)
})
