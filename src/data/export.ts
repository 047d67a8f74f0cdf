// Why this file exists: a run that outgrows one machine moves to llm.c or nanoGPT, and they
// read token files, not parquet. `glassbox data export` runs our data path (any source, the
// filters, the train/validation split by document id, end-of-text after every document) and
// writes those files: llm.c shards with their 256-int header, or nanoGPT's train.bin/val.bin.
// The held-out documents are exactly the ones our evaluation uses, so losses measured here and
// there are on the same text.
//
// The export is long (FineWeb's 10B tokens) and must survive being stopped. It writes
// export.json (the manifest) as it goes: the settings, every finished file with its token count
// and sha256, and where it is: the document it is in (shard, row group, row, epoch: the data
// cursor's fields) and how many of that document's tokens are written, and the partial shard's
// recorded length. A second run with the same settings cuts the partial file back to that
// length and continues from that document, so the files come out byte-identical to an
// uninterrupted export; a finished shard is only ever renamed into place whole.
import { Data, Effect, Either, Schema, Stream } from "effect"
import { existsSync } from "node:fs"
import * as fs from "node:fs/promises"
import { basename, join } from "node:path"
import { decodeConfig, loadConfig } from "../config/load.ts"
import { tokenizerVocabSizes } from "../config/schema.ts"
import { ReadFailed, sha256File, WriteFailed, writeFileAtomic } from "../format/atomic.ts"
import {
  llmcShardName,
  MAX_SHARD_VOCAB,
  openPartialShard,
  partialNameOf,
  publishShard,
  TokenShardError,
  type PartialShard,
  type ShardSplit,
  type TokenShardFormat
} from "../format/token-shards.ts"
import { type TokenizerName } from "../tokenizer/tokenizer.ts"
import { dataLayer, DataSection, progressReporter, type DataConfig } from "./config.ts"
import { DocumentSource, type DocumentSourceShape } from "./document-source.ts"
import { type DataError, InvalidDataOption } from "./errors.ts"
import { formatCount } from "./progress.ts"
import { DocumentTokenizer, type DocumentTokenizerShape } from "./tokenize-pool.ts"

export const EXPORT_MANIFEST = "export.json"
export const EXPORT_FORMAT_VERSION = 1
/** The row-group order of the held-out set: Packer.validationBatches' default seed. */
const VALIDATION_SEED = 0
/** llm.c's FineWeb script writes 100M-token shards. */
export const DEFAULT_SHARD_TOKENS = 100_000_000
const DEFAULT_FLUSH_TOKENS = 10_000_000
/** The split rule, stated in the manifest so the other side can reproduce it. */
export const SPLIT_RULE =
  "a document is held out (val) when idFraction(id) < val_fraction, where idFraction mixes the 64-bit FNV-1a hash of the id's UTF-8 bytes (src/data/split.ts); the same rule training and evaluation use"

const Count = Schema.Int.pipe(Schema.nonNegative())
const SplitCounts = Schema.Struct({ train: Count, val: Count })
const FileEntry = Schema.Struct({
  file: Schema.String,
  split: Schema.Literal("train", "val"),
  tokens: Count,
  bytes: Count,
  sha256: Schema.String
})
const Position = Schema.Struct({
  split: Schema.Literal("train", "val"),
  /** The document being written: the data cursor's fields (tokenOffset is `consumed`). */
  shard: Count,
  rowGroup: Count,
  row: Count,
  epoch: Count,
  seed: Schema.Int,
  /** Tokens of that document (its end-of-text included) already written; may equal its length. */
  consumed: Count,
  /** Index the next llm.c shard takes. */
  next_index: Count,
  /** The shard being written and its length on disk at this record. */
  partial: Schema.NullOr(Schema.Struct({ file: Schema.String, split: Schema.Literal("train", "val"), bytes: Count }))
})
type Position = typeof Position.Type

export const ExportManifest = Schema.Struct({
  format_version: Schema.Literal(EXPORT_FORMAT_VERSION),
  complete: Schema.Boolean,
  settings: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  files: Schema.Array(FileEntry),
  tokens: SplitCounts,
  documents: SplitCounts,
  position: Schema.NullOr(Position)
})
export type ExportManifest = typeof ExportManifest.Type
type FileEntry = typeof FileEntry.Type

/** What the manifest records about where the documents came from. */
export interface ExportedSource {
  readonly source: string
  readonly dataset?: string
  readonly revision?: string
  readonly paths?: ReadonlyArray<string>
  readonly shards?: string
  readonly filters: ReadonlyArray<string>
}

export interface TokenExportOptions {
  readonly format: TokenShardFormat
  readonly dir: string
  /** llm.c file prefix: <name>_val_000000.bin, <name>_train_000001.bin, … */
  readonly name: string
  /** llm.c tokens per shard (default 100M); nanoGPT writes one file per split. */
  readonly shardTokens?: number
  /** Record progress at least every this many tokens (default 10M; at row-group ends). */
  readonly flushTokens?: number
  /** Stop the train split after this many tokens (default: the whole split, one pass). */
  readonly maxTrainTokens?: number
  /** Seed of the train side's row-group order (the run's seed gives the order training reads). */
  readonly seed: number
  readonly source: ExportedSource
  /** Called after each progress record (tests stop an export here). */
  readonly onRecord?: (manifest: ExportManifest) => Effect.Effect<void>
  /** Progress lines (default: stderr). */
  readonly note?: (line: string) => void
}

export interface TokenExportResult {
  readonly manifest: ExportManifest
  /** True when the export was already complete and nothing was written. */
  readonly upToDate: boolean
  readonly resumed: boolean
}

/** The export cannot start or continue as asked; `reason` says why and what to do. */
export class ExportRefused extends Data.TaggedError("ExportRefused")<{ readonly dir: string; readonly reason: string }> {
  override get message() {
    return `${this.dir}: ${this.reason}`
  }
}

const refuse = (dir: string, reason: string) => new ExportRefused({ dir, reason })

const makeDirectory = (dir: string) =>
  Effect.tryPromise({
    try: () => fs.mkdir(dir, { recursive: true }),
    catch: (e) => new WriteFailed({ path: dir, reason: `create directory: ${(e as Error).message}` })
  })

/** uint16 files cannot hold a vocabulary of 65,536 or more. */
const vocabularyProblem = (tokenizer: string, vocabSize: number, dir: string): ExportRefused | undefined =>
  vocabSize > MAX_SHARD_VOCAB
    ? refuse(dir, `the ${tokenizer} tokenizer has ${formatCount(vocabSize)} tokens, but llm.c and nanoGPT token files store uint16 ids (at most 65,536); export with --tokenizer gpt2`)
    : undefined

/** The tokens of one document as uint16, checked: a larger id would wrap silently. */
const toUint16 = (tokens: ArrayLike<number>, source: string): Either.Either<Uint16Array, TokenShardError> => {
  const out = new Uint16Array(tokens.length)
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]
    if (!(t >= 0 && t < MAX_SHARD_VOCAB)) return Either.left(new TokenShardError({ source, reason: `token id ${t} does not fit in uint16` }))
    out[i] = t
  }
  return Either.right(out)
}

const readManifest = (dir: string): Effect.Effect<ExportManifest | undefined, ExportRefused> =>
  Effect.gen(function* () {
    const file = join(dir, EXPORT_MANIFEST)
    const text = yield* Effect.promise(() => fs.readFile(file, "utf8").catch(() => undefined))
    if (text === undefined) return undefined
    const json = yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => refuse(file, "is not valid JSON; delete the directory to start the export again") })
    return yield* Schema.decodeUnknown(ExportManifest)(json).pipe(
      Effect.mapError(() => refuse(file, "is not a glassbox export manifest (or a newer version); delete the directory to start again"))
    )
  })

const writeManifest = (dir: string, manifest: ExportManifest) =>
  writeFileAtomic(join(dir, EXPORT_MANIFEST), JSON.stringify(manifest, null, 2) + "\n")

/**
 * Export one pass over `source`'s corpus: its validation side first (llm.c's shard 0), then its
 * training side, in the row-group order of `seed`, each document followed by end-of-text.
 */
export const exportTokenShards = (
  source: DocumentSourceShape,
  tokenizer: DocumentTokenizerShape,
  options: TokenExportOptions
): Effect.Effect<TokenExportResult, DataError | ExportRefused | TokenShardError | WriteFailed | ReadFailed> =>
  Effect.gen(function* () {
    const { format, dir } = options
    const encoding = tokenizer.encoding
    const note = options.note ?? ((line: string) => void process.stderr.write(`${line}\n`))
    const tooLarge = vocabularyProblem(encoding.name, encoding.vocabSize, dir)
    if (tooLarge !== undefined) return yield* tooLarge
    const shardTokens = format === "llmc" ? options.shardTokens ?? DEFAULT_SHARD_TOKENS : Number.POSITIVE_INFINITY
    if (format === "llmc" && !(Number.isInteger(shardTokens) && shardTokens > 0 && shardTokens < 2 ** 31)) {
      return yield* new InvalidDataOption({ option: "--shard-tokens", value: shardTokens, expected: "a positive integer below 2^31 (llm.c's header holds an int32)" })
    }
    const flushTokens = options.flushTokens ?? DEFAULT_FLUSH_TOKENS
    const settings = {
      format,
      name: format === "llmc" ? options.name : null,
      shard_tokens: format === "llmc" ? shardTokens : null,
      max_train_tokens: options.maxTrainTokens ?? null,
      seed: options.seed,
      order: "one pass (epoch 0); row groups of the train side in the shuffled order of `seed`, of the val side in that of seed 0 (the order evaluation reads); rows in file order",
      tokenizer: encoding.name,
      vocab_size: encoding.vocabSize,
      eot: encoding.eot,
      end_of_text: "after every document",
      dtype: "uint16 little-endian",
      val_fraction: source.valFraction,
      split_rule: SPLIT_RULE,
      source: options.source
    }

    yield* makeDirectory(dir)
    const previous = yield* readManifest(dir)
    if (previous !== undefined && JSON.stringify(previous.settings) !== JSON.stringify(settings)) {
      const changed = Object.keys(settings).filter((k) => JSON.stringify(previous.settings[k]) !== JSON.stringify((settings as Record<string, unknown>)[k]))
      return yield* refuse(dir, `holds an export made with other settings (${changed.join(", ")}); export into another directory, or delete this one`)
    }
    if (previous?.complete === true) {
      for (const f of previous.files) {
        const actual = yield* sha256File(join(dir, f.file)).pipe(Effect.catchAll(() => Effect.succeed("missing")))
        if (actual !== f.sha256) return yield* refuse(dir, `${f.file} does not match the manifest (${actual === "missing" ? "missing" : "checksum differs"}); delete the directory to export again`)
      }
      return { manifest: previous, upToDate: true, resumed: false }
    }

    // Where to begin: the recorded position, or the start of the validation side.
    const files: FileEntry[] = [...(previous?.files ?? [])]
    const tokens = { ...(previous?.tokens ?? { train: 0, val: 0 }) }
    const documents = { ...(previous?.documents ?? { train: 0, val: 0 }) }
    const at = previous?.position ?? undefined
    // A finished shard recorded before its rename completed is renamed now.
    for (const f of files) {
      if (!existsSync(join(dir, f.file))) {
        const partial = join(dir, partialNameOf(f.file))
        // Its recorded length is the whole shard; anything after it was never part of it.
        yield* Effect.promise(() => fs.truncate(partial, f.bytes).catch(() => undefined))
        const actual = yield* sha256File(partial).pipe(Effect.catchAll(() => Effect.succeed("missing")))
        if (actual !== f.sha256) return yield* refuse(dir, `${f.file} is recorded as finished but is missing; delete the directory to export again`)
        yield* publishShard(dir, f.file)
      }
    }
    let nextIndex = at?.next_index ?? 0
    let partial: PartialShard | undefined
    if (at?.partial != null) partial = yield* openPartialShard(dir, at.partial.file, format, at.partial.bytes)
    yield* Effect.addFinalizer(() => (partial === undefined ? Effect.void : partial.close))
    if (at !== undefined) note(`${dir}: resuming the export at the ${at.split} split (${formatCount(tokens.val + tokens.train)} tokens already written)`)

    // The document being written and how much of it is written: the position a record saves.
    let here = at === undefined ? undefined : { shard: at.shard, rowGroup: at.rowGroup, row: at.row, epoch: at.epoch, seed: at.seed, consumed: at.consumed }
    let split: ShardSplit = at?.split ?? "val"
    let sinceRecord = 0

    const manifest = (complete: boolean): ExportManifest => ({
      format_version: EXPORT_FORMAT_VERSION,
      complete,
      settings,
      files: [...files],
      tokens: { ...tokens },
      documents: { ...documents },
      position: complete || here === undefined
        ? null
        : { split, ...here, next_index: nextIndex, partial: partial === undefined ? null : { file: partial.file, split, bytes: partial.bytes() } }
    })
    const record = Effect.gen(function* () {
      if (partial !== undefined) yield* partial.flush
      const m = manifest(false)
      yield* writeManifest(dir, m)
      sinceRecord = 0
      if (options.onRecord !== undefined) yield* options.onRecord(m)
    })

    const fileFor = (s: ShardSplit) => (format === "llmc" ? llmcShardName(options.name, s, nextIndex) : `${s}.bin`)
    const finishShard = Effect.gen(function* () {
      if (partial === undefined) return
      const done = yield* partial.finish
      const file = partial.file
      files.push({ file, split, tokens: done.tokens, bytes: done.bytes, sha256: done.sha256 })
      partial = undefined
      nextIndex++
      // Recorded as finished first, then renamed: a stop in between is repaired on resume.
      yield* record
      yield* publishShard(dir, file)
      note(`${file}: ${formatCount(done.tokens)} tokens`)
    })

    const limitOf = (s: ShardSplit) => (s === "train" ? options.maxTrainTokens ?? Number.POSITIVE_INFINITY : Number.POSITIVE_INFINITY)
    const splits: ShardSplit[] = split === "val" ? ["val", "train"] : ["train"]
    for (const side of splits) {
      split = side
      const half = source.withSplit(side)
      const resumeHere = here !== undefined && at?.split === side
      // The held-out side in the order evaluation reads it (Packer.validationBatches: seed 0),
      // the training side in the order of the run's seed.
      const start = resumeHere ? { ...here!, tokenOffset: 0 } : half.start(side === "val" ? VALIDATION_SEED : options.seed)
      if (!resumeHere) here = undefined
      let skip = resumeHere ? here!.consumed : 0
      let first = resumeHere
      const limit = limitOf(side)

      yield* half.documents({ shard: start.shard, rowGroup: start.rowGroup, row: start.row, tokenOffset: 0, epoch: start.epoch, seed: start.seed }, { singlePass: true }).pipe(
        Stream.mapEffect((batch) => Effect.map(tokenizer.tokenize(batch), (arrays) => ({ batch, arrays })), {
          concurrency: tokenizer.workers === 0 ? 1 : tokenizer.workers + 1
        }),
        Stream.runForEachWhile(({ batch, arrays }) =>
          Effect.gen(function* () {
            for (let i = 0; i < arrays.length; i++) {
              const location = { shard: batch.shard, rowGroup: batch.rowGroup, row: batch.rows[i], epoch: batch.epoch, seed: start.seed }
              let offset = 0
              if (first) {
                first = false
                // The recorded document must be where it was: otherwise the corpus changed under us.
                if (location.shard !== here!.shard || location.rowGroup !== here!.rowGroup || location.row !== here!.row || skip > arrays[i].length) {
                  return yield* refuse(dir, `the corpus no longer matches the interrupted export (document at shard ${here!.shard}, row group ${here!.rowGroup}, row ${here!.row} moved); delete the directory to export again`)
                }
                offset = skip
                skip = 0
              }
              here = { ...location, consumed: offset }
              const docTokens = arrays[i]
              // A document finished before the stop is only passed over, not counted again.
              const alreadyCounted = offset >= docTokens.length
              while (offset < docTokens.length) {
                if (tokens[side] >= limit) return false
                if (partial === undefined) partial = yield* openPartialShard(dir, fileFor(side), format)
                const take = Math.min(docTokens.length - offset, shardTokens - partial.tokens(), limit - tokens[side])
                const ids = toUint16(docTokens.subarray(offset, offset + take), dir)
                if (Either.isLeft(ids)) return yield* ids.left
                yield* partial.append(ids.right)
                offset += take
                here = { ...location, consumed: offset }
                tokens[side] += take
                sinceRecord += take
                if (partial.tokens() >= shardTokens) yield* finishShard
              }
              if (!alreadyCounted) documents[side]++
            }
            if (sinceRecord >= flushTokens) yield* record
            return tokens[side] < limit
          })
        )
      )
      yield* finishShard
      if (format === "nanogpt" && !files.some((f) => f.split === side)) {
        // nanoGPT expects both files; an empty split still gets its (empty) file.
        partial = yield* openPartialShard(dir, fileFor(side), format)
        yield* finishShard
      }
      here = undefined
    }

    if (format === "nanogpt") {
      yield* writeFileAtomic(join(dir, "meta.json"), JSON.stringify({ vocab_size: encoding.vocabSize, tokenizer: encoding.name, eot_token: encoding.eot, dtype: "uint16" }, null, 2) + "\n")
    }
    const final = manifest(true)
    yield* writeManifest(dir, final)
    return { manifest: final, upToDate: false, resumed: at !== undefined }
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------------------------
// `glassbox data export`

export interface DataExportFlags {
  readonly format: TokenShardFormat
  readonly name?: string
  readonly shardTokens?: number
  readonly maxTokens?: number
  readonly tokenizer?: TokenizerName
  readonly valFraction?: number
  readonly seed?: number
  readonly revision?: string
  readonly endpoint?: string
  readonly cacheDir?: string
  readonly shards?: string
  readonly filters?: ReadonlyArray<string>
  readonly workers?: number
  readonly stream?: boolean
  readonly flushTokens?: number
  readonly out?: NodeJS.WritableStream
  readonly err?: NodeJS.WritableStream & { isTTY?: boolean }
  readonly env?: NodeJS.ProcessEnv
}

/** The data section, tokenizer and seed a target names: a config file, shipped, a .parquet file, or a Hub dataset. */
const resolveTarget = (target: string, flags: DataExportFlags) =>
  Effect.gen(function* () {
    const fromConfig = target.endsWith(".json") && existsSync(target) ? yield* loadConfig(target) : undefined
    const base: Record<string, unknown> = fromConfig !== undefined
      ? { ...Schema.encodeSync(DataSection)(fromConfig.data) }
      : target === "shipped" ? { source: "shipped" }
      : target.endsWith(".parquet") ? { source: "parquet", paths: [target] }
      : { source: "fineweb", dataset: target }
    const set = <K extends string>(key: K, value: unknown) => (value === undefined ? undefined : (base[key] = value))
    set("revision", flags.revision)
    set("endpoint", flags.endpoint)
    set("cache_dir", flags.cacheDir)
    set("shards", flags.shards)
    set("workers", flags.workers)
    set("val_fraction", flags.valFraction)
    if (flags.filters !== undefined && flags.filters.length > 0) base.filters = [...flags.filters]
    if (flags.stream === true) base.mode = "stream"
    const decoded = yield* decodeConfig({ data: base }, fromConfig === undefined ? "command line" : target)
    const data: DataConfig = decoded.data
    const tokenizer: TokenizerName = flags.tokenizer ?? fromConfig?.tokenizer ?? "gpt2"
    const seed = flags.seed ?? fromConfig?.run.seed ?? decoded.run.seed
    const name = flags.name ?? defaultName(data, target)
    return { data, tokenizer, seed, name }
  })

const defaultName = (data: DataConfig, target: string): string => {
  const raw = data.source === "fineweb" ? data.dataset.split(/[/:]/).pop() ?? "data"
    : data.source === "parquet" ? basename(data.paths[0] ?? data.path ?? target, ".parquet")
    : "shipped"
  return raw.replace(/[^A-Za-z0-9._-]+/g, "_")
}

/** `glassbox data export --format llmc|nanogpt <dataset or config> <dir>`. */
export const dataExport = (target: string, dir: string, flags: DataExportFlags) =>
  Effect.gen(function* () {
    const { data, tokenizer, seed, name } = yield* resolveTarget(target, flags)
    // Refused before any data is listed, downloaded or tokenised.
    const tooLarge = vocabularyProblem(tokenizer, tokenizerVocabSizes[tokenizer], dir)
    if (tooLarge !== undefined) return yield* tooLarge
    yield* makeDirectory(dir)
    const out = flags.out ?? process.stdout
    const err = flags.err ?? process.stderr
    const described: ExportedSource = {
      source: data.source,
      ...(data.source === "fineweb" ? { dataset: data.dataset, revision: data.revision, shards: data.shards } : {}),
      ...(data.source === "parquet" ? { paths: data.paths.length > 0 ? data.paths : data.path !== undefined ? [data.path] : [] } : {}),
      ...(data.source === "shipped" ? { paths: [data.path ?? "data/corpus.parquet"] } : {}),
      filters: data.filters
    }
    const result = yield* Effect.gen(function* () {
      const source = yield* DocumentSource
      const pool = yield* DocumentTokenizer
      return yield* exportTokenShards(source, pool, {
        format: flags.format,
        dir,
        name,
        shardTokens: flags.shardTokens,
        flushTokens: flags.flushTokens,
        maxTrainTokens: flags.maxTokens,
        seed,
        source: described,
        note: (line) => void err.write(`${line}\n`)
      })
    }).pipe(
      Effect.provide(dataLayer(data, { tokenizer, split: "train", report: progressReporter(err), env: flags.env }))
    )
    const m = result.manifest
    const write = (line: string) => void out.write(`${line}\n`)
    if (result.upToDate) write(`${dir}: export already complete, every file matches its checksum`)
    write(`${result.resumed ? "resumed and finished" : result.upToDate ? "" : "exported"} ${m.files.length} file(s) to ${dir}: ${formatCount(m.tokens.val)} val tokens (${formatCount(m.documents.val)} documents), ${formatCount(m.tokens.train)} train tokens (${formatCount(m.documents.train)} documents), ${tokenizer} ids as uint16`.trim())
    for (const f of m.files) write(`  ${f.file}  ${f.split}  ${formatCount(f.tokens)} tokens  sha256 ${f.sha256.slice(0, 16)}…`)
    write(`  ${join(dir, EXPORT_MANIFEST)}: source, split rule, token counts and sha256 of every file`)
    return result
  })
