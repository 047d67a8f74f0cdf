// The native backend through the real command: a run killed with SIGKILL and resumed on native
// reproduces the uninterrupted native run bit for bit; without the addon `auto` falls back to
// wasm and says so first, naming the command that builds it, while `native` asked for by name is
// one line and exit 1; an oversized model is refused before anything is allocated.
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { nativeTestsRun } from "../backend/native-setup.ts"
import { latestCheckpoint, runCli, startCli, stepLosses, stepsLogged, waitFor, writeRunConfig } from "./run-helpers.ts"

const STEPS = 16
const root = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-native-"))
/** GLASSBOX_BACKEND would override the config's backend: cleared for these runs. */
const clean = { GLASSBOX_BACKEND: "" }
const missingAddon = { ...clean, GLASSBOX_NATIVE_ADDON: path.join(root, "missing.node") }

const configIn = (name: string, backend: string) => {
  const dir = path.join(root, name)
  fs.mkdirSync(dir, { recursive: true })
  return { config: writeRunConfig(dir, { steps: STEPS, backend, heads: 4, context: 64, batch: 8, every: 1, evalEvery: 8 }), runDir: path.join(dir, "run") }
}

/** Starts `args` and kills it with SIGKILL once `steps` more steps are logged. */
const killAfter = async (args: string[], runDir: string, steps: number) => {
  const run = startCli(args, undefined, clean)
  const target = stepsLogged(runDir) + steps
  await waitFor(() => stepsLogged(runDir) >= target, run.finished)
  run.child.kill("SIGKILL")
  return (await run.finished).signal
}

describe.runIf(nativeTestsRun)("the native backend end to end", () => {
  const reference = { losses: new Map<number, number>(), model: "" }

  it("an uninterrupted run on native", async () => {
    const { config, runDir } = configIn("reference", "native")
    const r = await runCli(["run", config], undefined, clean)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/backend: native \(OpenBLAS/)
    reference.losses = stepLosses(runDir)
    reference.model = latestCheckpoint(runDir).model
    expect(reference.losses.size).toBe(STEPS)
    expect(reference.losses.get(STEPS)!).toBeLessThan(reference.losses.get(1)!)
  }, 180_000)

  it("killed with SIGKILL twice and resumed on native: bit-identical losses and weights", async () => {
    const { config, runDir } = configIn("killed", "native")
    expect(await killAfter(["run", config], runDir, 4)).toBe("SIGKILL")
    expect(await killAfter(["resume", runDir], runDir, 5)).toBe("SIGKILL")
    const last = await runCli(["resume", runDir], undefined, clean)
    expect(last.code, last.stderr).toBe(0)
    const losses = stepLosses(runDir)
    for (let step = 1; step <= STEPS; step++) expect(losses.get(step), `step ${step}`).toBe(reference.losses.get(step))
    expect(latestCheckpoint(runDir).model).toBe(reference.model)
  }, 240_000)

  it("without the addon, auto runs on wasm and its first line names the command that builds it", async () => {
    const { config } = configIn("fallback", "auto")
    const r = await runCli(["run", config, "--set", "train.steps=5", "--set", "eval.every=0"], undefined, missingAddon)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr.split("\n")[0]).toMatch(/^note: the native kernels are not built .*; running on wasm .*For the fast CPU path run: apt-get install libopenblas-dev build-essential && npm rebuild$/)
    expect(r.stdout).toMatch(/backend: wasm/)
  }, 120_000)

  it("asking for native without the addon is one line and exit 1", async () => {
    const { config } = configIn("forced", "native")
    const r = await runCli(["run", config], undefined, missingAddon)
    expect(r.code).toBe(1)
    const lines = r.stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/backend "native" is not available: the native kernels are not built .*build them with: apt-get install libopenblas-dev/)
  }, 60_000)

  for (const backend of ["native", "cpu"]) {
    it(`an oversized model on ${backend} is refused before anything is allocated`, async () => {
      const { config, runDir } = configIn(`huge-${backend}`, backend)
      const huge = ["model.layers=64", "model.d_model=4096", "model.d_ff=16384", "model.context=1024", "train.batch=64"].flatMap((s) => ["--set", s])
      const r = await runCli(["run", config, ...huge], undefined, clean)
      expect(r.code).toBe(1)
      const lines = r.stderr.trim().split("\n")
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/a training step needs about \d+\.\d\d GB but this machine's memory allows \d+\.\d\d GB; the largest part is .*reduce train\.batch/)
      // 13 billion parameters (52 GB) were never initialised: the process would have died.
      expect(fs.existsSync(path.join(runDir, "checkpoints"))).toBe(false)
    }, 90_000)
  }
})
