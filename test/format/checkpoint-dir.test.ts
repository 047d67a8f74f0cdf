// The checkpoint directory read as a file format, with no model in sight: checkpoints written by
// hand (arbitrary bytes and the state.json that vouches for them) must verify, a damaged one must
// be named with its file and passed over for the newest good one, and each kind of model
// reference must resolve to the weights file it means.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import {
  CHECKPOINT_FORMAT_VERSION,
  checkpointName,
  listCheckpoints,
  readCheckpointList,
  resolveModelWeights,
  resolveWeightsPath,
  verifyCheckpoint
} from "../../src/format/checkpoint-dir.ts"

const sha = (bytes: string) => createHash("sha256").update(bytes).digest("hex")

/** A run directory with checkpoints at `steps`, each file's bytes naming its step. */
const handWrittenRun = (steps: number[]) => {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-ckptdir-"))
  const dir = (step: number) => path.join(runDir, "checkpoints", checkpointName(step))
  for (const step of steps) {
    fs.mkdirSync(dir(step), { recursive: true })
    const files = { "model.safetensors": `weights ${step}`, "optimizer.safetensors": `moments ${step}` }
    for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(dir(step), name), bytes)
    const sha256 = Object.fromEntries(Object.entries(files).map(([name, bytes]) => [name, sha(bytes)]))
    const state = { format_version: CHECKPOINT_FORMAT_VERSION, tokenizer: "gpt2", step, tokensSeen: 0, cursor: {}, rng: [], config: {}, metrics: {}, sha256 }
    fs.writeFileSync(path.join(dir(step), "state.json"), JSON.stringify(state))
  }
  fs.writeFileSync(path.join(runDir, "latest"), path.join("checkpoints", checkpointName(Math.max(...steps))) + "\n")
  return { runDir, dir }
}

const flipLastByte = (file: string) => {
  const bytes = fs.readFileSync(file)
  bytes[bytes.length - 1] ^= 0x01
  fs.writeFileSync(file, bytes)
}

describe("checkpoint directory", () => {
  it.effect("a hand-written checkpoint verifies; hidden temporaries are not checkpoints", () =>
    Effect.gen(function* () {
      const run = handWrittenRun([1, 12])
      fs.mkdirSync(path.join(run.runDir, "checkpoints", ".step-00000013.999.tmp"))
      expect((yield* verifyCheckpoint(run.dir(12))).step).toBe(12)
      expect(yield* listCheckpoints(run.runDir)).toEqual([run.dir(12), run.dir(1)])
    })
  )

  it.effect("each kind of reference resolves to its weights file", () =>
    Effect.gen(function* () {
      const run = handWrittenRun([1, 2])
      const hfDir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-hfdir-"))
      fs.writeFileSync(path.join(hfDir, "model.safetensors"), "weights")
      const weightsOf = (target: string) => resolveModelWeights(target).pipe(Effect.map(({ weights }) => weights))
      expect(yield* weightsOf(run.runDir)).toBe(path.join(run.dir(2), "model.safetensors"))
      expect(yield* weightsOf(run.dir(1))).toBe(path.join(run.dir(1), "model.safetensors"))
      expect(yield* weightsOf(path.join(run.dir(1), "model.safetensors"))).toBe(path.join(run.dir(1), "model.safetensors"))
      expect(yield* weightsOf(hfDir)).toBe(path.join(hfDir, "model.safetensors"))
      const empty = yield* Effect.flip(resolveWeightsPath(fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-empty-"))))
      expect(empty.reason).toBe("no model.safetensors and no checkpoints in this directory")
    })
  )

  it.effect("a run whose newest checkpoint is damaged falls back to the newest good one, naming the damaged file", () =>
    Effect.gen(function* () {
      const run = handWrittenRun([1, 2, 3])
      const damaged = path.join(run.dir(3), "optimizer.safetensors")
      flipLastByte(damaged)
      const { weights, notes } = yield* resolveModelWeights(run.runDir)
      expect(weights).toBe(path.join(run.dir(2), "model.safetensors"))
      expect(notes).toHaveLength(2)
      expect(notes[0]).toMatch(new RegExp(`^checkpoint ${damaged}: checksum mismatch \\(expected ${sha("moments 3")}, found [0-9a-f]{64}\\)$`))
      expect(notes[1]).toBe(`using ${run.dir(2)} instead`)
    })
  )

  it.effect("a damaged checkpoint named directly, or a run with no good one, is refused with one line", () =>
    Effect.gen(function* () {
      const run = handWrittenRun([1, 2])
      flipLastByte(path.join(run.dir(2), "model.safetensors"))
      const direct = yield* Effect.flip(resolveWeightsPath(run.dir(2)))
      expect(direct.path).toBe(path.join(run.dir(2), "model.safetensors"))
      expect(direct.reason).toMatch(/^checksum mismatch .*; the checkpoint is damaged$/)
      fs.writeFileSync(path.join(run.dir(1), "state.json"), JSON.stringify({ format_version: CHECKPOINT_FORMAT_VERSION + 1 }))
      const none = yield* Effect.flip(resolveWeightsPath(run.runDir))
      expect(none.path).toBe(run.runDir)
      expect(none.reason).toContain("no usable checkpoint (")
      expect(none.reason).toContain(`format version ${CHECKPOINT_FORMAT_VERSION + 1} is newer than this glassbox reads`)
      expect(none.message).not.toContain("\n")
    })
  )

  it.effect("an unreadable checkpoints/ is an error for decisions, and no checkpoints for listings", () =>
    Effect.gen(function* () {
      const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-ckptdir-"))
      fs.writeFileSync(path.join(runDir, "checkpoints"), "a file, not a directory")
      const error = yield* Effect.flip(readCheckpointList(runDir))
      expect(error.reason).toBe(`cannot read ${path.join(runDir, "checkpoints")}: not a directory (ENOTDIR)`)
      expect(yield* listCheckpoints(runDir)).toEqual([])
    })
  )
})
