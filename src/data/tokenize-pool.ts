// Why this file exists: a training step should never wait for text. `DocumentTokenizer`
// turns a batch of documents into token arrays; the inline version does it on the calling
// thread, the pool spreads the work over worker threads (tokenize-worker.mjs) so that, with
// the packer's read-ahead, tokens are ready before the trainer asks. Both give exactly the
// same tokens: the workers run the same tokenizer module, and results are reassembled in
// document order however the work was split.
import { Context, Effect, Layer, type Scope } from "effect"
import { Worker } from "node:worker_threads"
import { type Encoding, makeEncoding, type TokenizerName, tokenizerNames } from "../tokenizer/tokenizer.ts"
import type { DocBatch } from "./document-source.ts"
import { type DataError, InvalidDataOption, TokenizeWorkerFailed } from "./errors.ts"
import type { TokenArray } from "./parquet-reader.ts"

export interface DocumentTokenizerShape {
  readonly encoding: Encoding
  /** Worker threads doing the work (0: the calling thread). */
  readonly workers: number
  /**
   * Each document of the batch as its token ids followed by end-of-text, in document order.
   * A batch that already carries tokens (from the token cache) passes through unchanged,
   * after checking it was made with this encoding.
   */
  readonly tokenize: (batch: DocBatch) => Effect.Effect<ReadonlyArray<TokenArray>, DataError>
}

/** One document's tokens followed by end-of-text. */
export const documentTokens = (encoding: Encoding, text: string): Int32Array => {
  const ids = encoding.encode(text)
  const tokens = new Int32Array(ids.length + 1)
  tokens.set(ids)
  tokens[ids.length] = encoding.eot
  return tokens
}

/** Tokens the batch already carries, if any, checked against the encoding in use. */
const pretokenized = (encoding: Encoding, batch: DocBatch): Effect.Effect<ReadonlyArray<TokenArray>, InvalidDataOption> | undefined => {
  if (batch.tokens === undefined) return undefined
  return batch.tokenizer === encoding.name
    ? Effect.succeed(batch.tokens)
    : Effect.fail(new InvalidDataOption({
      option: "tokenizer",
      value: encoding.name,
      expected: `${batch.tokenizer ?? "an unknown tokenizer"}, the tokenizer the token cache was built with (or rebuild the cache)`
    }))
}

/** Tokenise on the calling thread. */
export const inlineTokenizer = (encoding: Encoding): DocumentTokenizerShape => ({
  encoding,
  workers: 0,
  tokenize: (batch) => pretokenized(encoding, batch) ?? Effect.sync(() => batch.texts.map((text) => documentTokens(encoding, text)))
})

export interface PoolOptions {
  readonly tokenizer: TokenizerName
  /** Worker threads, at least 1. */
  readonly workers: number
  /**
   * Characters of text per message to a worker: a large row group is cut into pieces of about
   * this size so every worker gets a share (default 256 KiB, ~25 ms of BPE).
   */
  readonly pieceChars?: number
}

const workerUrl = new URL("./tokenize-worker.mjs", import.meta.url)

interface Reply {
  readonly id: number
  readonly ok: boolean
  readonly tokens?: Int32Array
  readonly lengths?: Uint32Array
  readonly error?: string
}

interface Live {
  readonly thread: Worker
  readonly pending: Map<number, (reply: Reply) => void>
  /** Characters sent and not yet answered: the dispatcher picks the least loaded worker. */
  load: number
}

/** Cut `texts` into consecutive pieces of about `budget` characters (at least one document each). */
export const pieces = (texts: ReadonlyArray<string>, budget: number): ReadonlyArray<readonly [number, number]> => {
  const out: Array<readonly [number, number]> = []
  let start = 0
  let chars = 0
  for (let i = 0; i < texts.length; i++) {
    chars += texts[i].length
    if (chars >= budget) {
      out.push([start, i + 1])
      start = i + 1
      chars = 0
    }
  }
  if (start < texts.length) out.push([start, texts.length])
  return out
}

/**
 * A pool of `workers` tokenizer threads living as long as the scope. Threads are unreferenced
 * while idle so they never keep a finished program alive; a thread that crashes fails its
 * pending requests with TokenizeWorkerFailed and is replaced on the next request.
 */
export const makeTokenizerPool = (options: PoolOptions): Effect.Effect<DocumentTokenizerShape, InvalidDataOption, Scope.Scope> =>
  Effect.gen(function* () {
    if (!(Number.isInteger(options.workers) && options.workers >= 1)) {
      return yield* new InvalidDataOption({ option: "data.workers", value: options.workers, expected: "a positive integer for a pool (0 tokenises inline)" })
    }
    if (!tokenizerNames.includes(options.tokenizer)) {
      return yield* new InvalidDataOption({ option: "tokenizer", value: options.tokenizer, expected: `one of ${tokenizerNames.join(", ")}` })
    }
    const encoding = makeEncoding(options.tokenizer)
    const pieceChars = options.pieceChars ?? 256 * 1024
    const slots: Array<Live | undefined> = new Array(options.workers).fill(undefined)
    let nextId = 0

    const spawn = (slot: number): Live => {
      const thread = new Worker(workerUrl, { workerData: { tokenizer: options.tokenizer } })
      const live: Live = { thread, pending: new Map(), load: 0 }
      const failAll = (reason: string) => {
        if (slots[slot] === live) slots[slot] = undefined
        for (const [id, resolve] of live.pending) resolve({ id, ok: false, error: reason })
        live.pending.clear()
      }
      thread.unref()
      thread.on("message", (reply: Reply) => {
        const resolve = live.pending.get(reply.id)
        live.pending.delete(reply.id)
        if (live.pending.size === 0) thread.unref()
        resolve?.(reply)
      })
      thread.on("error", (error) => failAll(`worker crashed: ${error.message}`))
      thread.on("exit", (code) => failAll(`worker exited with code ${code}`))
      slots[slot] = live
      return live
    }
    // Start every thread now: loading the tokenizer takes most of a second, better spent before training starts.
    for (let slot = 0; slot < slots.length; slot++) spawn(slot)
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => Promise.all(slots.map((live) => live?.thread.terminate())).then(() => undefined))
    )

    const leastLoaded = (): Live => {
      let best: Live | undefined
      for (let slot = 0; slot < slots.length; slot++) {
        const live = slots[slot] ?? spawn(slot)
        if (best === undefined || live.load < best.load) best = live
      }
      return best!
    }

    const encodePiece = (texts: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<Int32Array>, TokenizeWorkerFailed> =>
      Effect.async<ReadonlyArray<Int32Array>, TokenizeWorkerFailed>((resume) => {
        const live = leastLoaded()
        const id = nextId++
        const chars = texts.reduce((n, t) => n + t.length, 0)
        live.load += chars
        live.pending.set(id, (reply) => {
          live.load -= chars
          if (!reply.ok || reply.tokens === undefined || reply.lengths === undefined) {
            return resume(Effect.fail(new TokenizeWorkerFailed({ reason: reply.error ?? "no tokens in the reply" })))
          }
          const docs: Int32Array[] = new Array(reply.lengths.length)
          let at = 0
          for (let i = 0; i < reply.lengths.length; i++) {
            docs[i] = reply.tokens.subarray(at, at + reply.lengths[i])
            at += reply.lengths[i]
          }
          resume(Effect.succeed(docs))
        })
        live.thread.ref()
        live.thread.postMessage({ id, texts })
        return Effect.sync(() => {
          if (live.pending.delete(id)) live.load -= chars
        })
      })

    const tokenize = (batch: DocBatch): Effect.Effect<ReadonlyArray<TokenArray>, DataError> =>
      pretokenized(encoding, batch) ??
        Effect.forEach(pieces(batch.texts, pieceChars), ([from, to]) => encodePiece(batch.texts.slice(from, to)), {
          concurrency: "unbounded"
        }).pipe(Effect.map((parts) => parts.flat()))

    return { encoding, workers: options.workers, tokenize }
  })

export class DocumentTokenizer extends Context.Tag("glassbox/DocumentTokenizer")<DocumentTokenizer, DocumentTokenizerShape>() {
  /** `workers` threads, or the calling thread when `workers` is 0. */
  static readonly layer = (options: PoolOptions): Layer.Layer<DocumentTokenizer, InvalidDataOption> =>
    options.workers === 0
      ? Layer.sync(DocumentTokenizer, () => inlineTokenizer(makeEncoding(options.tokenizer)))
      : Layer.scoped(DocumentTokenizer, makeTokenizerPool(options))
}
