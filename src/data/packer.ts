// Why this file exists: a language model trains on fixed-size windows of tokens, but
// documents come in every length. The packer turns the document stream into one long token
// stream (each document followed by end-of-text) and cuts it into batches of windows, each
// batch carrying the cursor where the next one starts, so training can stop anywhere and
// resume to exactly the batches it would have seen.
//
// Windows and stride. A window holds T+1 consecutive tokens: the model reads the first T
// and predicts the last T (inputs ids[0..T-1], targets ids[1..T]). Window k starts at stream
// position k·T, so each window's last token is the next window's first: every token after
// the very first is a target exactly once, and no token is wasted between windows. A batch
// is B consecutive windows, row-major [B, T+1], and moves the stream forward by B·T tokens.
//
// Tokens come from a `DocumentTokenizer`: this thread by default, a worker pool when one is
// given. Tokenising runs ahead of packing (`prefetch` batches), so with a pool the trainer
// finds batches ready; the batches are the same whichever tokenizer made them.
import { Chunk, Effect, Option, Stream } from "effect"
import type { Encoding } from "../tokenizer/encoding.ts"
import { Tokenizer } from "../tokenizer/tokenizer.ts"
import type { DataCursor } from "./cursor.ts"
import { type DocBatch, DocumentSource, type DocumentSourceShape } from "./document-source.ts"
import { CursorOutOfRange, type DataError, InvalidDataOption, ValidationSetEmpty } from "./errors.ts"
import type { TokenArray } from "./parquet-reader.ts"
import { DocumentTokenizer, type DocumentTokenizerShape, inlineTokenizer } from "./tokenize-pool.ts"

export interface Batch {
  /** Token ids, row-major [batch, context + 1]. */
  readonly ids: Int32Array
  readonly batch: number
  readonly context: number
  /** Where the batch after this one starts: save it with a checkpoint to resume here. */
  readonly cursor: DataCursor
}

export interface PackOptions {
  /** Windows per batch (B). */
  readonly batch: number
  /** Tokens the model reads per window (T); a window holds T+1. */
  readonly context: number
  /** Where the first batch starts: `source.start(seed)` for a fresh run, a saved cursor to resume. */
  readonly cursor: DataCursor
  /** Who tokenises: a worker pool, or (default) this thread with `encoding`. */
  readonly tokenizer?: DocumentTokenizerShape
  /**
   * Batches prepared ahead of the consumer (default 0: on demand). With a pool, about
   * 2-8 keeps the workers busy while the trainer computes; memory grows by B·(T+1) ints each.
   */
  readonly prefetch?: number
}

/** A document's tokens with its end-of-text, and where the document lives. */
interface Segment {
  readonly shard: number
  readonly rowGroup: number
  readonly row: number
  readonly epoch: number
  readonly tokens: TokenArray
}

/**
 * The not-yet-consumed tail of the token stream, kept as whole documents plus an offset into
 * the first. Holds only the documents the next batch touches, so memory is about B·T tokens
 * plus one document.
 */
class TokenQueue {
  private segments: Segment[] = []
  private first = 0
  /** Tokens available after the head. */
  size = 0

  /** `headOffset`: tokens of the first document pushed that were consumed before a resume. */
  constructor(private headOffset: number) {}

  push(segment: Segment): void {
    this.segments.push(segment)
    this.size += segment.tokens.length - (this.segments.length === 1 ? this.headOffset : 0)
  }

  /** Copy `count` tokens that start `skip` tokens past the head into `dest` at `at`. */
  copy(skip: number, count: number, dest: Int32Array, at: number): void {
    let i = this.first
    let offset = this.headOffset + skip
    while (offset >= this.segments[i].tokens.length) offset -= this.segments[i++].tokens.length
    while (count > 0) {
      const tokens = this.segments[i].tokens
      const n = Math.min(count, tokens.length - offset)
      dest.set(tokens.subarray(offset, offset + n), at)
      at += n
      count -= n
      offset = 0
      i++
    }
  }

  advance(n: number): void {
    this.size -= n
    this.headOffset += n
    while (this.headOffset >= this.segments[this.first].tokens.length) {
      this.headOffset -= this.segments[this.first].tokens.length
      this.first++
    }
    if (this.first > 64) {
      this.segments = this.segments.slice(this.first)
      this.first = 0
    }
  }

  /** The position of the head: a cursor minus its seed. */
  head(): Omit<DataCursor, "seed"> {
    const s = this.segments[this.first]
    return { shard: s.shard, rowGroup: s.rowGroup, row: s.row, tokenOffset: this.headOffset, epoch: s.epoch }
  }
}

const checkPositiveInt = (option: string, value: number): InvalidDataOption | undefined =>
  Number.isInteger(value) && value > 0 ? undefined : new InvalidDataOption({ option, value, expected: "a positive integer" })

/** The documents of a batch with their tokens, each knowing where it lives. */
const segmentsOf = (docBatch: DocBatch, tokens: ReadonlyArray<TokenArray>): ReadonlyArray<Segment> =>
  tokens.map((t, i) => ({
    tokens: t,
    shard: docBatch.shard,
    rowGroup: docBatch.rowGroup,
    row: docBatch.rows[i],
    epoch: docBatch.epoch
  }))

/**
 * Document batches as tokenised segments, in order. With a pool, one batch more than there
 * are workers is in flight, so the workers are already on the next row group while this
 * thread packs the last one.
 */
const tokenizeDocuments = (
  tokenizer: DocumentTokenizerShape,
  documents: Stream.Stream<DocBatch, DataError>
): Stream.Stream<Segment, DataError> =>
  documents.pipe(
    Stream.mapEffect((docBatch) => Effect.map(tokenizer.tokenize(docBatch), (tokens) => segmentsOf(docBatch, tokens)), {
      concurrency: tokenizer.workers === 0 ? 1 : tokenizer.workers + 1
    }),
    Stream.flattenIterables
  )

/** Pack an already-positioned document stream; `cursor` is where that stream starts. */
const packDocuments = (
  encoding: Encoding,
  documents: Stream.Stream<DocBatch, DataError>,
  { batch, context, cursor, tokenizer, prefetch }: PackOptions
): Stream.Stream<Batch, DataError> =>
  Stream.suspend(() => {
    const queue = new TokenQueue(cursor.tokenOffset)
    const windowSpan = batch * context
    let isFirstDocument = true

    const packed = tokenizeDocuments(tokenizer ?? inlineTokenizer(encoding), documents).pipe(
      Stream.mapEffect((doc) => {
        const tokens = doc.tokens
        if (isFirstDocument) {
          isFirstDocument = false
          // A cursor that points into a document must point at a document of this split,
          // tokenised to at least that many tokens; otherwise it came from another corpus
          // or tokenizer, and silently starting elsewhere would break the resume guarantee.
          if (cursor.tokenOffset > 0) {
            const here = doc.shard === cursor.shard && doc.rowGroup === cursor.rowGroup && doc.row === cursor.row
            if (!here) {
              return Effect.fail(new CursorOutOfRange({ cursor, reason: `row ${cursor.row} is not a document of this split` }))
            }
            if (cursor.tokenOffset >= tokens.length) {
              return Effect.fail(new CursorOutOfRange({
                cursor, reason: `that document has only ${tokens.length} tokens with the ${encoding.name} tokenizer`
              }))
            }
          }
        }
        queue.push({ ...doc, tokens })
        const ready: Batch[] = []
        // One token more than the span: the last window's final target is the next window's first input.
        while (queue.size >= windowSpan + 1) {
          const ids = new Int32Array(batch * (context + 1))
          for (let b = 0; b < batch; b++) queue.copy(b * context, context + 1, ids, b * (context + 1))
          queue.advance(windowSpan)
          ready.push({ ids, batch, context, cursor: { ...queue.head(), seed: cursor.seed } })
        }
        return Effect.succeed(ready)
      }),
      Stream.flattenIterables
    )
    return prefetch !== undefined && prefetch > 0 ? Stream.buffer(packed, { capacity: prefetch }) : packed
  })

/**
 * Endless batches of B windows of T+1 tokens from `source`, starting at `options.cursor`
 * and running across epochs. Restarting from any batch's `cursor` yields exactly the batches
 * that followed it.
 */
export const batches = (
  encoding: Encoding,
  source: DocumentSourceShape,
  options: PackOptions
): Stream.Stream<Batch, DataError> =>
  Stream.suspend(() => {
    const invalid = checkPositiveInt("train.batch", options.batch) ?? checkPositiveInt("model.context", options.context) ??
      (options.tokenizer !== undefined && options.tokenizer.encoding.name !== encoding.name
        ? new InvalidDataOption({ option: "tokenizer", value: options.tokenizer.encoding.name, expected: `${encoding.name}, the packer's encoding` })
        : undefined)
    return invalid !== undefined ? Stream.fail(invalid) : packDocuments(encoding, source.documents(options.cursor), options)
  })

/**
 * `batches` with the tokenizer and document source taken from the environment, and the
 * `DocumentTokenizer` (a worker pool) when one is provided.
 */
export const batchesFromServices = (
  options: PackOptions
): Stream.Stream<Batch, DataError, Tokenizer | DocumentSource> =>
  Stream.unwrap(
    Effect.map(Effect.all([Tokenizer, DocumentSource, Effect.serviceOption(DocumentTokenizer)]), ([encoding, source, pool]) =>
      batches(encoding, source, { ...options, tokenizer: options.tokenizer ?? Option.getOrUndefined(pool) }))
  )

export interface ValidationOptions {
  readonly batch: number
  readonly context: number
  /** Evaluate on at least this many target tokens when the split has them (whole batches). */
  readonly maxTokens: number
  /** Seed of the row-group order; fixed so the set never changes (default 0). */
  readonly seed?: number
}

/**
 * A fixed held-out set: the first ⌈maxTokens / (B·T)⌉ batches of one pass over `source`
 * (give it the validation side of the split), starting at `source.start(seed)`. The same
 * arguments give the same tokens on every call. Only whole batches are returned: the tail
 * that does not fill a batch is dropped, so every batch is exactly [B, T+1] and holds
 * B·T targets. Fails with `ValidationSetEmpty` when the split cannot fill one batch.
 */
export const validationBatches = (
  encoding: Encoding,
  source: DocumentSourceShape,
  options: ValidationOptions
): Effect.Effect<ReadonlyArray<Batch>, DataError | ValidationSetEmpty> =>
  Effect.suspend(() => {
    const invalid = checkPositiveInt("train.batch", options.batch) ??
      checkPositiveInt("model.context", options.context) ??
      checkPositiveInt("eval.tokens", options.maxTokens)
    if (invalid !== undefined) return Effect.fail(invalid)
    const cursor = source.start(options.seed ?? 0)
    const limit = Math.ceil(options.maxTokens / (options.batch * options.context))
    const onePass = () => source.documents(cursor, { singlePass: true })
    return packDocuments(encoding, onePass(), { ...options, cursor }).pipe(
      Stream.take(limit),
      Stream.runCollect,
      Effect.map(Chunk.toReadonlyArray),
      Effect.flatMap((found) =>
        found.length > 0
          ? Effect.succeed(found)
          : onePass().pipe(
            Stream.mapEffect(inlineTokenizer(encoding).tokenize),
            Stream.runFold(0, (total, docs) => docs.reduce((n, t) => n + t.length, total)),
            Effect.flatMap((tokens) => Effect.fail(new ValidationSetEmpty({ tokens, batch: options.batch, context: options.context })))
          )
      )
    )
  })

export const Packer = { batches, batchesFromServices, validationBatches } as const
