// Checkpoints that must not be trusted are refused with the file named, and resuming falls back
// to the previous good one and says so; a save that cannot complete leaves the previous
// checkpoint and `latest` untouched; retention keeps the newest K plus the best.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { latestGoodCheckpoint, loadCheckpoint, saveCheckpoint } from "../../src/checkpoint/checkpointer.ts"
import { checkpointName, listCheckpoints } from "../../src/format/checkpoint-dir.ts"
import { initAdamW } from "../../src/train/adamw.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"

const state = (step: number, valLoss?: number) => ({
  step,
  tokensSeen: step * 100,
  cursor: { shard: 0, rowGroup: 0, row: step, tokenOffset: 0, epoch: 0, seed: 1 },
  rng: [1, 2, 3, 4],
  config: {},
  metrics: (valLoss === undefined ? {} : { val_loss: valLoss }) as Record<string, number>
})

const makeRun = (steps: Array<[number, number?]>, keep = 10) =>
  Effect.gen(function* () {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-ckpt-"))
    const model = tinyModel(tinyConfig())
    const optimizer = initAdamW(model.params)
    for (const [step, loss] of steps) yield* saveCheckpoint(runDir, model, optimizer, "gpt2", state(step, loss), keep)
    return { runDir, model, optimizer, dir: (step: number) => path.join(runDir, "checkpoints", checkpointName(step)) }
  })

const damages: Array<[string, (dir: string) => void, string]> = [
  ["a missing file", (dir) => fs.rmSync(path.join(dir, "optimizer.safetensors")), "optimizer.safetensors: missing or unreadable"],
  [
    "a wrong checksum",
    (dir) => {
      const f = path.join(dir, "model.safetensors")
      const b = fs.readFileSync(f)
      b[b.length - 1] ^= 0xff
      fs.writeFileSync(f, b)
    },
    "model.safetensors: checksum mismatch"
  ],
  [
    "a newer format version",
    (dir) => {
      const f = path.join(dir, "state.json")
      fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, "utf8")), format_version: 99 }))
    },
    "state.json: format version 99 is newer"
  ],
  [
    "truncated safetensors (with a matching checksum recorded)",
    (dir) => {
      const f = path.join(dir, "model.safetensors")
      fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 200))
      const s = path.join(dir, "state.json")
      const st = JSON.parse(fs.readFileSync(s, "utf8"))
      st.sha256["model.safetensors"] = spawnSync("sha256sum", [f], { encoding: "utf8" }).stdout.split(" ")[0]
      fs.writeFileSync(s, JSON.stringify(st))
    },
    "model.safetensors"
  ],
  ["a state.json that is not JSON", (dir) => fs.writeFileSync(path.join(dir, "state.json"), "{ step: "), "state.json: not valid JSON"]
]

describe("checkpointer", () => {
  beforeAll(() => useBackend("wasm"))

  it.effect("round trip: weights, moments and state come back", () =>
    Effect.gen(function* () {
      const run = yield* makeRun([[1], [2]])
      const loaded = yield* loadCheckpoint(run.dir(2))
      expect(loaded.state.step).toBe(2)
      expect(loaded.state.tokensSeen).toBe(200)
      expect(loaded.optimizer.m.size).toBe(run.model.params.size)
      for (const [name, p] of run.model.params) expect(Array.from(loaded.model.params.get(name)!.dataSync())).toEqual(Array.from(p.dataSync()))
      expect(fs.readFileSync(path.join(run.runDir, "latest"), "utf8").trim()).toBe("checkpoints/step-00000002")
    })
  )

  for (const [label, damage, expected] of damages) {
    it.effect(`${label}: refused naming the file, and resume falls back to the previous checkpoint`, () =>
      Effect.gen(function* () {
        const run = yield* makeRun([[1], [2]])
        damage(run.dir(2))
        const error = yield* Effect.flip(loadCheckpoint(run.dir(2)))
        expect(error.message).toContain(expected)
        expect(error.message).toContain(run.dir(2))
        const { checkpoint, notes } = yield* latestGoodCheckpoint(run.runDir)
        expect(checkpoint.state.step).toBe(1)
        expect(notes[0]).toContain(expected)
        expect(notes[1]).toBe(`resuming from ${run.dir(1)} instead`)
      })
    )
  }

  it.effect("no usable checkpoint at all is a clear error", () =>
    Effect.gen(function* () {
      const run = yield* makeRun([[1]])
      fs.rmSync(path.join(run.dir(1), "model.safetensors"))
      const error = yield* Effect.flip(latestGoodCheckpoint(run.runDir))
      expect(error.message).toContain("no usable checkpoint")
      expect(error.message).toContain("model.safetensors: missing or unreadable")
    })
  )

  it.effect("an unwritable checkpoints directory fails the save and leaves the previous checkpoint intact", () =>
    Effect.gen(function* () {
      const run = yield* makeRun([[1]])
      const root = path.join(run.runDir, "checkpoints")
      const before = fs.readFileSync(path.join(run.dir(1), "model.safetensors"))
      // chattr +i: even root cannot create entries in an immutable directory.
      const lock = spawnSync("chattr", ["+i", root])
      expect(lock.status, `chattr is needed for this test: ${lock.stderr}`).toBe(0)
      const result = yield* Effect.either(saveCheckpoint(run.runDir, run.model, run.optimizer, "gpt2", state(2), 10))
      spawnSync("chattr", ["-i", root])
      expect(result._tag).toBe("Left")
      expect(fs.readFileSync(path.join(run.runDir, "latest"), "utf8").trim()).toBe("checkpoints/step-00000001")
      expect(fs.readFileSync(path.join(run.dir(1), "model.safetensors")).equals(before)).toBe(true)
      expect((yield* loadCheckpoint(run.dir(1))).state.step).toBe(1)
    })
  )

  it.effect("a crash mid-save leaves a temporary directory that is ignored", () =>
    Effect.gen(function* () {
      const run = yield* makeRun([[1]])
      const partial = path.join(run.runDir, "checkpoints", ".step-00000002.12345.tmp")
      fs.mkdirSync(partial)
      fs.writeFileSync(path.join(partial, "model.safetensors"), "half written")
      const { checkpoint } = yield* latestGoodCheckpoint(run.runDir)
      expect(checkpoint.state.step).toBe(1)
    })
  )

  it.effect("retention keeps the newest K and the best by held-out loss", () =>
    Effect.gen(function* () {
      const run = yield* makeRun([[1, 5.0], [2, 3.0], [3, 4.0], [4, 4.5], [5, 4.2]], 2)
      const kept = (yield* listCheckpoints(run.runDir)).map((d) => path.basename(d))
      expect(kept).toEqual(["step-00000005", "step-00000004", "step-00000002"])
    })
  )
})
