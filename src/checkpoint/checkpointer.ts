// Saving a run so it can be reopened: runs/<run>/checkpoints/step-<n>/ holds the weights, the
// AdamW moments and state.json (format version, step, tokens seen, data cursor, RNG, resolved
// config, metrics, and the sha256 of each file). Everything is written into a hidden temporary
// directory, flushed, then renamed into place, and runs/<run>/latest is replaced atomically, so a
// crash at any instant leaves either the previous checkpoint or the complete new one. Loading
// verifies the format version and every checksum; a damaged checkpoint is skipped in favour of
// the previous good one, and the caller is told which and why.
import * as tf from "@tensorflow/tfjs"
import { Console, Data, Effect } from "effect"
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
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x)


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

/** A checkpoint's state.json when it is readable JSON; undefined otherwise (never throws). */
export const readStateLoose = async (dir: string): Promise<Partial<StateFile> | undefined> => {
  try {
    const parsed = JSON.parse(await fs.readFile(path.join(dir, "state.json"), "utf8")) as unknown
    return isObject(parsed) ? (parsed as Partial<StateFile>) : undefined
  } catch {
    return undefined
  }
}

/** Keeps the newest `keep` checkpoints plus the one with the lowest held-out loss. */
const prune = (root: string, keep: number) =>
  attempt(root, "remove old checkpoints", async () => {
    const names = (await fs.readdir(root)).filter((n) => Number.isFinite(stepOfName(n))).sort()
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

/** Checkpoint directories of a run, newest first (none when the run has no checkpoints/ yet). */
export const listCheckpoints = (runDir: string): Effect.Effect<string[]> =>
  Effect.promise(async () => {
    const root = path.join(runDir, "checkpoints")
    const names = await fs.readdir(root).catch(() => [] as string[])
    return names.filter((n) => Number.isFinite(stepOfName(n))).sort().reverse().map((n) => path.join(root, n))
  })

/**
 * Like `listCheckpoints`, but a checkpoints/ directory that exists and cannot be read (EACCES,
 * ENOTDIR, …) is a failure naming the problem, not "no checkpoints": a resume decision taken
 * on an unreadable directory would start the run over.
 */
export const readCheckpointList = (runDir: string): Effect.Effect<string[], NoCheckpoint> =>
  Effect.tryPromise({
    try: async () => {
      const root = path.join(runDir, "checkpoints")
      const names = await fs.readdir(root).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? ([] as string[]) : Promise.reject(e)))
      return names.filter((n) => Number.isFinite(stepOfName(n))).sort().reverse().map((n) => path.join(root, n))
    },
    catch: (e) => {
      const err = e as NodeJS.ErrnoException
      const what = err.code === "EACCES" || err.code === "EPERM" ? "permission denied" : err.code === "ENOTDIR" ? "not a directory" : err.message
      return new NoCheckpoint({ runDir, reason: `cannot read ${path.join(runDir, "checkpoints")}: ${what}${err.code ? ` (${err.code})` : ""}` })
    }
  })

export interface LoadedCheckpoint {
  readonly dir: string
  readonly state: StateFile
  readonly model: GPT
  /** AdamW moments by parameter name, and the number of updates applied. */
  readonly optimizer: { step: number; m: Map<string, tf.Tensor>; v: Map<string, tf.Tensor> }
}

const corrupt = (file: string, reason: string) => new CheckpointCorrupt({ file, reason })

/**
 * Checks a checkpoint directory without building tensors: state.json parses, its format version
 * is one this glassbox reads, and each file's sha256 is the one recorded. Every command that
 * loads a checkpoint goes through this.
 */
export const verifyCheckpoint = (dir: string): Effect.Effect<StateFile, CheckpointCorrupt> =>
  Effect.gen(function* () {
    const stateFile = path.join(dir, "state.json")
    const text = yield* Effect.tryPromise({ try: () => fs.readFile(stateFile, "utf8"), catch: (e) => corrupt(stateFile, `missing or unreadable (${(e as NodeJS.ErrnoException).code ?? String(e)})`) })
    const parsed = yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => corrupt(stateFile, "not valid JSON") })
    if (!isObject(parsed)) return yield* corrupt(stateFile, "is not a JSON object")
    const state = parsed as unknown as StateFile
    if (typeof state.format_version !== "number") return yield* corrupt(stateFile, "has no format_version")
    if (state.format_version > CHECKPOINT_FORMAT_VERSION) {
      return yield* corrupt(stateFile, `format version ${state.format_version} is newer than this glassbox reads (${CHECKPOINT_FORMAT_VERSION}); upgrade glassbox`)
    }
    if (typeof state.step !== "number" || !isObject(state.sha256)) return yield* corrupt(stateFile, "has no step or no sha256 table")
    for (const f of FILES) {
      const file = path.join(dir, f)
      const actual = yield* sha256File(file).pipe(Effect.mapError(() => corrupt(file, "missing or unreadable")))
      const expected = state.sha256[f]
      if (actual !== expected) return yield* corrupt(file, `checksum mismatch (expected ${expected ?? "none recorded"}, found ${actual})`)
    }
    return state
  })

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
  Effect.gen(function* () {
    const dirs = yield* readCheckpointList(runDir)
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
 * The newest checkpoint directory of a run that verifies (checksums, format version), without
 * loading it; `notes` names each damaged one skipped on the way.
 */
export const newestGoodCheckpointDir = (runDir: string): Effect.Effect<{ dir: string; state: StateFile; notes: string[] }, NoCheckpoint> =>
  Effect.gen(function* () {
    const dirs = yield* readCheckpointList(runDir)
    if (dirs.length === 0) return yield* new NoCheckpoint({ runDir, reason: "no checkpoints in this run directory" })
    const notes: string[] = []
    for (const dir of dirs) {
      const verified = yield* Effect.either(verifyCheckpoint(dir))
      if (verified._tag === "Right") {
        if (notes.length > 0) notes.push(`using ${dir} instead`)
        return { dir, state: verified.right, notes }
      }
      notes.push(verified.left.message)
    }
    return yield* new NoCheckpoint({ runDir, reason: `no usable checkpoint (${notes.join("; ")})` })
  })

/**
 * The weights a model reference names, verified where a checkpoint says what they should be: a
 * .safetensors file as given; a checkpoint directory (it has state.json) only if it verifies; a
 * run directory's newest checkpoint that verifies, with a note for each damaged one skipped; a
 * directory holding model.safetensors (Hugging Face style) as given.
 */
export const resolveModelWeights = (target: string): Effect.Effect<{ weights: string; notes: string[] }, ReadFailed | CheckpointCorrupt | NoCheckpoint> =>
  Effect.gen(function* () {
    const kind = yield* Effect.tryPromise({
      try: async () => {
        const stat = await fs.stat(target)
        if (stat.isFile()) return "file" as const
        if (await exists(path.join(target, "state.json"))) return "checkpoint" as const
        if ((await exists(path.join(target, "latest"))) || (await exists(path.join(target, "checkpoints")))) return "run" as const
        if (await exists(path.join(target, "model.safetensors"))) return "weights-dir" as const
        throw new Error("no model.safetensors and no checkpoints in this directory")
      },
      catch: (e) => new ReadFailed({ path: target, reason: (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (e as Error).message })
    })
    switch (kind) {
      case "file":
        return { weights: target, notes: [] }
      case "weights-dir":
        return { weights: path.join(target, "model.safetensors"), notes: [] }
      case "checkpoint":
        yield* verifyCheckpoint(target)
        return { weights: path.join(target, "model.safetensors"), notes: [] }
      case "run": {
        const { dir, notes } = yield* newestGoodCheckpointDir(target)
        return { weights: path.join(dir, "model.safetensors"), notes }
      }
    }
  })

/**
 * `resolveModelWeights` for callers that take one path: a skipped damaged checkpoint is reported
 * on stderr as a warning, and a refusal is a ReadFailed naming the file and the reason.
 */
export const resolveWeightsPath = (target: string): Effect.Effect<string, ReadFailed> =>
  resolveModelWeights(target).pipe(
    Effect.tap(({ notes }) => Effect.forEach(notes, (note) => Console.error(`glassbox: warning: ${note}`), { discard: true })),
    Effect.map(({ weights }) => weights),
    Effect.catchTags({
      CheckpointCorrupt: (e) => Effect.fail(new ReadFailed({ path: e.file, reason: `${e.reason}; the checkpoint is damaged` })),
      NoCheckpoint: (e) => Effect.fail(new ReadFailed({ path: e.runDir, reason: e.reason }))
    })
  )

const exists = (p: string) => fs.access(p).then(() => true, () => false)
