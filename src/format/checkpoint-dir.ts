// Reading a checkpoint directory, the stable format every command that takes a model relies on:
// runs/<run>/checkpoints/step-<n>/ holds model.safetensors, optimizer.safetensors and state.json
// (format version, step, tokens seen, data cursor, RNG, resolved config, metrics, the sha256 of
// each file); runs/<run>/latest names the newest. A checkpoint counts only when its state.json
// parses, its format version is one this glassbox reads and every checksum matches; a damaged
// one is passed over for the newest good one, with a note naming the damaged file. Writing,
// retention and resume live in src/checkpoint/checkpointer.ts; the model room resolves
// references to weights through this file, below both.
import { Console, Data, Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { ReadFailed, sha256File } from "./atomic.ts"

export const CHECKPOINT_FORMAT_VERSION = 1
/** The files of a checkpoint whose sha256 state.json records. */
export const CHECKPOINT_FILES = ["model.safetensors", "optimizer.safetensors"] as const

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

/** step-00000042: zero-padded, so names sort in step order. */
export const checkpointName = (step: number) => `step-${String(step).padStart(8, "0")}`
/** Whether a name in checkpoints/ is a checkpoint (hidden temporaries and leftovers are not). */
export const isCheckpointName = (name: string) => /^step-\d+$/.test(name)
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x)
const exists = (p: string) => fs.access(p).then(() => true, () => false)

/** A checkpoint's state.json when it is readable JSON; undefined otherwise (never throws). */
export const readStateLoose = async (dir: string): Promise<Partial<StateFile> | undefined> => {
  try {
    const parsed = JSON.parse(await fs.readFile(path.join(dir, "state.json"), "utf8")) as unknown
    return isObject(parsed) ? (parsed as Partial<StateFile>) : undefined
  } catch {
    return undefined
  }
}

/**
 * Checkpoint directories of a run, newest first; none when the run has no checkpoints/ yet. A
 * checkpoints/ directory that exists and cannot be read (EACCES, ENOTDIR, …) is a failure naming
 * the problem, not "no checkpoints": a resume decision taken on an unreadable directory would
 * start the run over.
 */
export const readCheckpointList = (runDir: string): Effect.Effect<string[], NoCheckpoint> =>
  Effect.tryPromise({
    try: async () => {
      const root = path.join(runDir, "checkpoints")
      const names = await fs.readdir(root).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? ([] as string[]) : Promise.reject(e)))
      return names.filter(isCheckpointName).sort().reverse().map((n) => path.join(root, n))
    },
    catch: (e) => {
      const err = e as NodeJS.ErrnoException
      const what = err.code === "EACCES" || err.code === "EPERM" ? "permission denied" : err.code === "ENOTDIR" ? "not a directory" : err.message
      return new NoCheckpoint({ runDir, reason: `cannot read ${path.join(runDir, "checkpoints")}: ${what}${err.code ? ` (${err.code})` : ""}` })
    }
  })

/** Like `readCheckpointList`, but an unreadable checkpoints/ counts as none. */
export const listCheckpoints = (runDir: string): Effect.Effect<string[]> => readCheckpointList(runDir).pipe(Effect.orElseSucceed(() => []))

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
    for (const f of CHECKPOINT_FILES) {
      const file = path.join(dir, f)
      const actual = yield* sha256File(file).pipe(Effect.mapError(() => corrupt(file, "missing or unreadable")))
      const expected = state.sha256[f]
      if (actual !== expected) return yield* corrupt(file, `checksum mismatch (expected ${expected ?? "none recorded"}, found ${actual})`)
    }
    return state
  })

/**
 * The newest checkpoint of a run that `open` accepts (it verifies, or verifies and loads).
 * Damaged ones are passed over; `notes` names each and why, then which one is used instead, so
 * the caller can tell the user it fell back. `words` fits the notes to the caller ("resuming
 * from", "no checkpoints to resume from").
 */
export const newestGoodCheckpoint = <A>(
  runDir: string,
  open: (dir: string) => Effect.Effect<A, CheckpointCorrupt>,
  words: { readonly none: string; readonly instead: string }
): Effect.Effect<{ dir: string; opened: A; notes: string[] }, NoCheckpoint> =>
  Effect.gen(function* () {
    const dirs = yield* readCheckpointList(runDir)
    if (dirs.length === 0) return yield* new NoCheckpoint({ runDir, reason: words.none })
    const notes: string[] = []
    for (const dir of dirs) {
      const opened = yield* Effect.either(open(dir))
      if (opened._tag === "Right") {
        if (notes.length > 0) notes.push(`${words.instead} ${dir} instead`)
        return { dir, opened: opened.right, notes }
      }
      notes.push(opened.left.message)
    }
    return yield* new NoCheckpoint({ runDir, reason: `no usable checkpoint (${notes.join("; ")})` })
  })

/**
 * The newest checkpoint directory of a run that verifies (checksums, format version), without
 * loading it; `notes` names each damaged one skipped on the way.
 */
export const newestGoodCheckpointDir = (runDir: string): Effect.Effect<{ dir: string; state: StateFile; notes: string[] }, NoCheckpoint> =>
  newestGoodCheckpoint(runDir, verifyCheckpoint, { none: "no checkpoints in this run directory", instead: "using" }).pipe(
    Effect.map(({ dir, opened, notes }) => ({ dir, state: opened, notes }))
  )

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
