// Saving a run so it can be reopened: runs/<run>/checkpoints/step-<n>/ holds the weights, the
// AdamW moments and state.json (format version, step, tokens seen, data cursor, RNG, resolved
// config, metrics, and the sha256 of each file). Everything is written into a hidden temporary
// directory, flushed, then renamed into place, and runs/<run>/latest is replaced atomically, so a
// crash at any instant leaves either the previous checkpoint or the complete new one. Loading
// verifies the format version and every checksum; a damaged checkpoint is skipped in favour of
// the previous good one, and the caller is told which and why.
import * as tf from "@tensorflow/tfjs"
import { Data, Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import type { GPT } from "../model/gpt.ts"
import { loadWeights, weightsMetadata } from "../model/weights.ts"
import type { AdamWState } from "../train/adamw.ts"
import { ReadFailed, readFileBytes, sha256File, syncDirectory, WriteFailed, writeFileAtomic } from "../format/atomic.ts"
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from "../format/safetensors.ts"

export const CHECKPOINT_FORMAT_VERSION = 1
const FILES = ["model.safetensors", "optimizer.safetensors"] as const

export interface CheckpointState {
  readonly step: number
  readonly tokensSeen: number
  readonly cursor: unknown
  readonly rng: readonly number[]
  /** The resolved pipeline config the run was started with (resume rebuilds from it). */
  readonly config: unknown
  /** E.g. { val_loss }: used to keep the best checkpoint. */
  readonly metrics: Record<string, number>
  /** Anything else a trainer needs to continue exactly (e.g. outlier statistics). */
  readonly extra?: Record<string, unknown>
}

export interface StateFile extends CheckpointState {
  readonly format_version: number
  readonly tokenizer: string
  readonly sha256: Record<string, string>
}

export class CheckpointCorrupt extends Data.TaggedError("CheckpointCorrupt")<{
  readonly file: string
  readonly reason: string
}> {
  override get message() {
    return `checkpoint ${this.file}: ${this.reason}`
  }
}

export class NoCheckpoint extends Data.TaggedError("NoCheckpoint")<{ readonly runDir: string; readonly reason: string }> {
  override get message() {
    return `${this.runDir}: ${this.reason}`
  }
}

const toNamed = (tensors: ReadonlyMap<string, tf.Tensor>, prefix: string): Record<string, NamedTensor> => {
  const out: Record<string, NamedTensor> = {}
  for (const [name, t] of tensors) out[`${prefix}${name}`] = { dtype: "F32", shape: t.shape.slice(), data: t.dataSync() as Float32Array }
  return out
}

const attempt = <A>(target: string, what: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (e) => new WriteFailed({ path: target, reason: `${what}: ${String(e)}` }) })

export const checkpointName = (step: number) => `step-${String(step).padStart(8, "0")}`
const stepOfName = (name: string) => Number(/^step-(\d+)$/.exec(name)?.[1] ?? NaN)

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
      for (const f of FILES) sha256[f] = yield* sha256File(path.join(temp, f)).pipe(Effect.mapError((e) => new WriteFailed({ path: e.path, reason: e.reason })))
      const file: StateFile = { format_version: CHECKPOINT_FORMAT_VERSION, tokenizer, ...state, sha256 }
      yield* write("state.json", JSON.stringify(file, null, 2) + "\n")
      yield* attempt(final, "rename into place", async () => {
        await fs.rm(final, { recursive: true, force: true })
        await fs.rename(temp, final)
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
    const names = (await fs.readdir(root)).filter((n) => Number.isFinite(stepOfName(n))).sort()
    const newest = new Set(names.slice(Math.max(0, names.length - keep)))
    let best: { name: string; loss: number } | undefined
    for (const name of names) {
      const loss = await fs
        .readFile(path.join(root, name, "state.json"), "utf8")
        .then((t) => (JSON.parse(t) as StateFile).metrics?.val_loss, () => undefined)
      if (typeof loss === "number" && Number.isFinite(loss) && (best === undefined || loss < best.loss)) best = { name, loss }
    }
    for (const name of names) {
      if (newest.has(name) || name === best?.name) continue
      await fs.rm(path.join(root, name), { recursive: true, force: true })
    }
  })

/** Checkpoint directories of a run, newest first. */
export const listCheckpoints = (runDir: string): Effect.Effect<string[]> =>
  Effect.promise(async () => {
    const root = path.join(runDir, "checkpoints")
    const names = await fs.readdir(root).catch(() => [] as string[])
    return names.filter((n) => Number.isFinite(stepOfName(n))).sort().reverse().map((n) => path.join(root, n))
  })

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
    const stateFile = path.join(dir, "state.json")
    const text = yield* Effect.tryPromise({ try: () => fs.readFile(stateFile, "utf8"), catch: () => corrupt(stateFile, "missing or unreadable") })
    const state = yield* Effect.try({ try: () => JSON.parse(text) as StateFile, catch: () => corrupt(stateFile, "not valid JSON") })
    if (typeof state.format_version !== "number") return yield* corrupt(stateFile, "has no format_version")
    if (state.format_version > CHECKPOINT_FORMAT_VERSION) {
      return yield* corrupt(stateFile, `format version ${state.format_version} is newer than this glassbox reads (${CHECKPOINT_FORMAT_VERSION}); upgrade glassbox`)
    }
    for (const f of FILES) {
      const file = path.join(dir, f)
      const actual = yield* sha256File(file).pipe(Effect.mapError(() => corrupt(file, "missing or unreadable")))
      const expected = state.sha256?.[f]
      if (actual !== expected) return yield* corrupt(file, `checksum mismatch (expected ${expected ?? "none recorded"}, found ${actual})`)
    }
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
  Effect.gen(function* () {
    const dirs = yield* listCheckpoints(runDir)
    if (dirs.length === 0) return yield* new NoCheckpoint({ runDir, reason: "no checkpoints to resume from" })
    const notes: string[] = []
    for (const dir of dirs) {
      const loaded = yield* Effect.either(loadCheckpoint(dir))
      if (loaded._tag === "Right") {
        if (notes.length > 0) notes.push(`resuming from ${dir} instead`)
        return { checkpoint: loaded.right, notes }
      }
      notes.push(loaded.left.message)
    }
    return yield* new NoCheckpoint({ runDir, reason: `no usable checkpoint (${notes.join("; ")})` })
  })

/**
 * Where the weights for `target` are: a .safetensors file as given; a checkpoint directory's
 * model.safetensors; a run directory's latest checkpoint.
 */
export const resolveWeightsPath = (target: string): Effect.Effect<string, ReadFailed> =>
  Effect.tryPromise({
    try: async () => {
      const stat = await fs.stat(target)
      if (stat.isFile()) return target
      const direct = path.join(target, "model.safetensors")
      if (await exists(direct)) return direct
      const latest = path.join(target, "latest")
      if (await exists(latest)) return path.join(target, (await fs.readFile(latest, "utf8")).trim(), "model.safetensors")
      throw new Error("no model.safetensors and no latest checkpoint in this directory")
    },
    catch: (e) => new ReadFailed({ path: target, reason: (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (e as Error).message })
  })

const exists = (p: string) => fs.access(p).then(() => true, () => false)
