// A run directory that cannot hold a run is one line naming it, found before training; what a
// killed save leaves behind is cleared on the next start (but not another live process's work);
// a newest state.json that is not JSON makes resume fall back instead of failing.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { readCheckpointList } from "../../src/format/checkpoint-dir.ts"
import { cleanLeftovers, ensureRunDirectory } from "../../src/checkpoint/run-dir.ts"
import { runCli, stepLosses, writeRunConfig } from "../e2e/run-helpers.ts"

const scratch = () => fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-rundir-"))

describe("ensureRunDirectory", () => {
  it.effect("creates missing directories, and accepts an existing one", () =>
    Effect.gen(function* () {
      const dir = path.join(scratch(), "a", "b", "run")
      yield* ensureRunDirectory(dir)
      expect(fs.statSync(dir).isDirectory()).toBe(true)
      yield* ensureRunDirectory(dir)
    }))

  it.effect("a file, a path under a file, and a place where no directory can be made are refused with the reason", () =>
    Effect.gen(function* () {
      const root = scratch()
      const file = path.join(root, "notes.txt")
      fs.writeFileSync(file, "x")
      const isFile = yield* Effect.flip(ensureRunDirectory(file))
      expect(isFile).toMatchObject({ _tag: "RunDirUnusable" })
      expect(isFile.message).toBe(`run.dir ${file}: is a file, not a directory (choose another with --set run.dir=…)`)
      const under = yield* Effect.flip(ensureRunDirectory(path.join(file, "run")))
      expect(under.message).toContain(`${file} is a file, not a directory`)
      // Node's recursive mkdir never returns here; the plain one fails at once.
      const proc = yield* Effect.flip(ensureRunDirectory("/proc/glassbox-test/run"))
      expect(proc.message).toContain("cannot create /proc/glassbox-test")
    }))

  it.effect("an unreadable checkpoints/ is named, not reported as having no checkpoints", () =>
    Effect.gen(function* () {
      const run = scratch()
      // Root reads any directory, so the unreadable case is staged as checkpoints/ being a file.
      fs.writeFileSync(path.join(run, "checkpoints"), "")
      const error = yield* Effect.flip(readCheckpointList(run))
      expect(error.message).toContain(`cannot read ${path.join(run, "checkpoints")}: not a directory (ENOTDIR)`)
      expect(error.message).not.toContain("no checkpoints")
    }))
})

describe("cleanLeftovers", () => {
  it.effect("removes temporary checkpoints, latest files, half-deleted checkpoints and metrics rewrites of dead processes only", () =>
    Effect.gen(function* () {
      const run = scratch()
      const ckpts = path.join(run, "checkpoints")
      fs.mkdirSync(path.join(ckpts, "step-00000002"), { recursive: true })
      const dead = spawnSync(process.execPath, ["-e", "0"]).pid!
      const alive = process.ppid
      const stale = [
        path.join(ckpts, `.step-00000004.${dead}.tmp`),
        path.join(ckpts, `.step-00000001.${dead}.deleting`),
        path.join(run, `.latest.${dead}.0123456789ab.tmp`),
        path.join(run, `metrics.jsonl.${dead}.tmp`)
      ]
      fs.mkdirSync(stale[0])
      fs.mkdirSync(stale[1])
      fs.writeFileSync(stale[2], "checkpoints/step-00000004\n")
      fs.writeFileSync(stale[3], "{}\n")
      fs.writeFileSync(path.join(stale[0], "model.safetensors"), "half")
      const busy = path.join(ckpts, `.step-00000005.${alive}.tmp`)
      fs.mkdirSync(busy)
      const removed = yield* cleanLeftovers(run)
      expect(removed.sort()).toEqual([...stale].sort())
      expect(fs.readdirSync(ckpts).sort()).toEqual([`.step-00000005.${alive}.tmp`, "step-00000002"])
      expect(fs.readdirSync(run).sort()).toEqual(["checkpoints"])
    }))
})

describe("the CLI on unusable run directories and damaged state", () => {
  it("run.dir naming a file: exit 1 and one line, no internal error", async () => {
    const root = scratch()
    const config = writeRunConfig(root, { steps: 4 })
    const file = path.join(root, "taken")
    fs.writeFileSync(file, "")
    for (const dir of [file, path.join(file, "run"), "/proc/glassbox-test/run"]) {
      const r = await runCli(["run", config, "--set", `run.dir=${dir}`])
      expect(r.code, r.stderr).toBe(1)
      const lines = r.stderr.trim().split("\n")
      expect(lines, r.stderr).toHaveLength(1)
      expect(lines[0]).toMatch(/^glassbox: run\.dir .*: /)
    }
  }, 120_000)

  it("a newest state.json that is not JSON: run falls back to the previous checkpoint and finishes", async () => {
    const root = scratch()
    const config = writeRunConfig(root, { steps: 5, dModel: 16, every: 1, keep: 5 })
    const first = await runCli(["run", config, "--set", "train.steps=3"])
    expect(first.code, first.stderr).toBe(0)
    const runDir = path.join(root, "run")
    fs.writeFileSync(path.join(runDir, "checkpoints", "step-00000003", "state.json"), "{ truncated")
    const again = await runCli(["run", config])
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain("warning: checkpoint")
    expect(again.stdout).toMatch(/resuming .* at step 2 /)
    expect([...stepLosses(runDir).keys()]).toEqual([1, 2, 3, 4, 5])
  }, 180_000)
})
