// Saving a run so it can be reopened: runs/<run>/checkpoints/step-<n>/ holds the weights, the
// AdamW moments and state.json (format version, step, tokens seen, data cursor, RNG, resolved
// config, metrics, and the sha256 of each file). Everything is written into a hidden temporary
// directory, flushed, then renamed into place, and runs/<run>/latest is replaced atomically, so a
// crash at any instant leaves either the previous checkpoint or the complete new one. Loading
// verifies the format version and every checksum; a damaged checkpoint is skipped in favour of
// the previous good one, and the caller is told which and why. The directory's format, and
// reading and verifying it, are src/format/checkpoint-dir.ts; this file writes, prunes and loads.
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import type { GPT } from "../model/gpt.ts"
import { loadWeights, weightsMetadata } from "../model/weights.ts"
import type { AdamWState } from "../train/adamw.ts"
import { readFileBytes, sha256File, syncDirectory, WriteFailed, writeFileAtomic } from "../format/atomic.ts"
import {
  CHECKPOINT_FILES,
  CHECKPOINT_FORMAT_VERSION,
  CheckpointCorrupt,
  checkpointName,
  isCheckpointName,
  newestGoodCheckpoint,
  readStateLoose,
  verifyCheckpoint,
  type CheckpointState,
  type NoCheckpoint,
  type StateFile
} from "../format/checkpoint-dir.ts"
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from "../format/safetensors.ts"

const toNamed = (tensors: ReadonlyMap<string, tf.Tensor>, prefix: string): Record<string, NamedTensor> => {
  const out: Record<string, NamedTensor> = {}
  for (const [name, t] of tensors) out[`${prefix}${name}`] = { dtype: "F32", shape: t.shape.slice(), data: t.dataSync() as Float32Array }
  return out
}

const attempt = <A>(target: string, what: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (e) => new WriteFailed({ path: target, reason: `${what}: ${String(e)}` }) })

/** Writes a checkpoint directory atomically, points runs/<run>/latest at it, applies retention. */
export const saveCheckpoint = (
  runDir: string,
  model: GPT,
  optimizer: AdamWState,
  tokenizer: string,
  state: CheckpointState,
  keep: number
): Effect.Effect<string, WriteFailed> =>
  Effect.gen(function* () {
    const root = path.join(runDir, "checkpoints")
    const name = checkpointName(state.step)
    const final = path.join(root, name)
    const temp = path.join(root, `.${name}.${process.pid}.tmp`)
    yield* attempt(temp, "create directory", async () => {
      await fs.rm(temp, { recursive: true, force: true })
      await fs.mkdir(temp, { recursive: true })
    })
    const body = Effect.gen(function* () {
      const write = (file: string, bytes: Uint8Array | string) => writeFileAtomic(path.join(temp, file), bytes)
      yield* write("model.safetensors", encodeSafetensors(toNamed(model.params, ""), weightsMetadata(model.config, tokenizer)))
      yield* write("optimizer.safetensors", encodeSafetensors({ ...toNamed(optimizer.m, "m."), ...toNamed(optimizer.v, "v.") }, { step: String(optimizer.step) }))
      const sha256: Record<string, string> = {}
      for (const f of CHECKPOINT_FILES) sha256[f] = yield* sha256File(path.join(temp, f)).pipe(Effect.mapError((e) => new WriteFailed({ path: e.path, reason: e.reason })))
      const file: StateFile = { format_version: CHECKPOINT_FORMAT_VERSION, tokenizer, ...state, sha256 }
      yield* write("state.json", JSON.stringify(file, null, 2) + "\n")
      yield* attempt(final, "rename into place", async () => {
        // A checkpoint already at this step (a rerun of it) is renamed away before the new one
        // takes its name, so a kill in between leaves one of them whole.
        const old = await renameAway(root, name)
        await fs.rename(temp, final)
        if (old !== undefined) await fs.rm(old, { recursive: true, force: true })
      })
    })
    // A failed save (full disk, unwritable directory) removes its temporary directory and leaves
    // the previous checkpoint and `latest` untouched.
    yield* body.pipe(Effect.onError(() => Effect.promise(() => fs.rm(temp, { recursive: true, force: true }).catch(() => undefined))))
    yield* syncDirectory(root)
    yield* writeFileAtomic(path.join(runDir, "latest"), path.join("checkpoints", name) + "\n")
    yield* prune(root, keep)
    return final
  })

/** Keeps the newest `keep` checkpoints plus the one with the lowest held-out loss. */
const prune = (root: string, keep: number) =>
  attempt(root, "remove old checkpoints", async () => {
    const names = (await fs.readdir(root)).filter(isCheckpointName).sort()
    const newest = new Set(names.slice(Math.max(0, names.length - keep)))
    let best: { name: string; loss: number } | undefined
    for (const name of names) {
      const loss = await readStateLoose(path.join(root, name)).then((state) => state?.metrics?.val_loss)
      if (typeof loss === "number" && Number.isFinite(loss) && (best === undefined || loss < best.loss)) best = { name, loss }
    }
    for (const name of names) {
      if (newest.has(name) || name === best?.name) continue
      // Renamed away first: a kill mid-delete leaves a hidden leftover (cleared on the next
      // start), never a half-deleted checkpoint that looks like a real one.
      const away = await renameAway(root, name)
      if (away !== undefined) await fs.rm(away, { recursive: true, force: true })
    }
  })

/** Renames checkpoint `name` to a hidden `.name.<pid>.deleting`; undefined when it does not exist. */
const renameAway = async (root: string, name: string): Promise<string | undefined> => {
  const away = path.join(root, `.${name}.${process.pid}.deleting`)
  await fs.rm(away, { recursive: true, force: true })
  try {
    await fs.rename(path.join(root, name), away)
    return away
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
}

export interface LoadedCheckpoint {
  readonly dir: string
  readonly state: StateFile
  readonly model: GPT
  /** AdamW moments by parameter name, and the number of updates applied. */
  readonly optimizer: { step: number; m: Map<string, tf.Tensor>; v: Map<string, tf.Tensor> }
}

const corrupt = (file: string, reason: string) => new CheckpointCorrupt({ file, reason })

/** Loads and verifies one checkpoint directory. */
export const loadCheckpoint = (dir: string): Effect.Effect<LoadedCheckpoint, CheckpointCorrupt> =>
  Effect.gen(function* () {
    const state = yield* verifyCheckpoint(dir)
    const { model } = yield* loadWeights(path.join(dir, "model.safetensors")).pipe(Effect.mapError((e) => corrupt(path.join(dir, "model.safetensors"), e.message)))
    const optFile = path.join(dir, "optimizer.safetensors")
    const bytes = yield* readFileBytes(optFile).pipe(Effect.mapError((e) => corrupt(optFile, e.reason)))
    const decoded = yield* decodeSafetensors(bytes, optFile).pipe(Effect.mapError((e) => corrupt(optFile, e.message)))
    const m = new Map<string, tf.Tensor>()
    const v = new Map<string, tf.Tensor>()
    for (const [name, p] of model.params) {
      const mt = decoded.tensors[`m.${name}`]
      const vt = decoded.tensors[`v.${name}`]
      if (mt === undefined || vt === undefined || mt.shape.join() !== p.shape.join() || vt.shape.join() !== p.shape.join()) {
        model.dispose()
        tf.dispose([...m.values(), ...v.values()])
        return yield* corrupt(optFile, `moments for ${name} are missing or have the wrong shape`)
      }
      m.set(name, tf.tensor(mt.data, mt.shape))
      v.set(name, tf.tensor(vt.data, vt.shape))
    }
    return { dir, state, model, optimizer: { step: Number(decoded.metadata.step ?? state.step), m, v } }
  })

/**
 * The newest checkpoint of a run that loads and verifies. Damaged ones are skipped; `notes`
 * says which and why, so the caller can tell the user it fell back.
 */
export const latestGoodCheckpoint = (runDir: string): Effect.Effect<{ checkpoint: LoadedCheckpoint; notes: string[] }, NoCheckpoint> =>
  newestGoodCheckpoint(runDir, loadCheckpoint, { none: "no checkpoints to resume from", instead: "resuming from" }).pipe(
    Effect.map(({ opened, notes }) => ({ checkpoint: opened, notes }))
  )
