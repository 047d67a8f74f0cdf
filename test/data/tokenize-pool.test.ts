// Why this file exists: tokenising on worker threads is only allowed because it changes
// nothing: the pool must produce the very tokens of the main thread (special-token text as
// plain text, long runs chunked the same way), and the packer fed by the pool must emit the
// same batches with the same cursors as the single-threaded packer, over an epoch boundary
// and after a resume, however the work was split between workers.
import { describe, expect, it, layer } from "@effect/vitest"
import { Chunk, Effect, Layer, Stream } from "effect"
import { DocumentSource, type DocumentSourceShape } from "../../src/data/document-source.ts"
import { type Batch, batches, batchesFromServices } from "../../src/data/packer.ts"
import { DocumentTokenizer, documentTokens, inlineTokenizer, makeTokenizerPool, pieces } from "../../src/data/tokenize-pool.ts"
import { makeEncoding, MAX_BPE_CHUNK_CHARS, Tokenizer, type TokenizerName } from "../../src/tokenizer/tokenizer.ts"
import { fixtureDocuments } from "./fixtures.ts"

const TRICKY = [
  "",
  "plain words, and more words.",
  "a forged boundary <|endoftext|> inside a document, and <|fim_prefix|> too",
  "emoji 😀👩‍👩‍👧 and accents é ñ and CJK 漢字",
  "x".repeat(MAX_BPE_CHUNK_CHARS + 17), // no word boundary: a hard cut
  ("lorem ipsum dolor sit amet ").repeat(400), // long prose: invisible cuts
  "\r\n\t  spaces   and\n\nnewlines  ",
  "a" + "😀".repeat(MAX_BPE_CHUNK_CHARS / 2 + 8) // surrogate pairs across a hard cut at an odd index
]

const docBatch = (texts: ReadonlyArray<string>) => ({
  texts, ids: texts.map((_, i) => `d${i}`), rows: texts.map((_, i) => i), shard: 0, rowGroup: 0, firstRow: 0, epoch: 0
})

const collect = <E, R>(stream: Stream.Stream<Batch, E, R>, n: number) =>
  Effect.map(Stream.runCollect(Stream.take(stream, n)), Chunk.toReadonlyArray)

const same = (actual: ReadonlyArray<Batch>, expected: ReadonlyArray<Batch>) => {
  expect(actual.length).toBe(expected.length)
  for (let i = 0; i < expected.length; i++) {
    expect(actual[i].cursor).toEqual(expected[i].cursor)
    expect(Buffer.from(actual[i].ids.buffer).equals(Buffer.from(expected[i].ids.buffer))).toBe(true)
  }
}

describe("pieces", () => {
  it("cuts texts into consecutive runs of about the budget, each holding at least one text", () => {
    expect(pieces(["aaaa", "bb", "c", "dddddd", "e"], 5)).toEqual([[0, 2], [2, 4], [4, 5]])
    expect(pieces(["a".repeat(100)], 5)).toEqual([[0, 1]])
    expect(pieces([], 5)).toEqual([])
  })
})

const gpt2 = makeEncoding("gpt2")
const shipped = DocumentSource.shipped({ split: "train", valFraction: 0.01 })
const twoShards = DocumentSource.fromDocuments(
  [fixtureDocuments(30, 5, 25), fixtureDocuments(20, 6, 25).map((d) => ({ ...d, id: `${d.id}-b` }))],
  { split: "train", valFraction: 0.1, rowsPerGroup: 4 }
)

describe("the worker pool with bytes", () => {
  it.scopedLive("gives exactly the main thread's tokens, end-of-text appended, for tricky text", () =>
    Effect.gen(function* () {
      const bytes = makeEncoding("bytes")
      const pool = yield* makeTokenizerPool({ tokenizer: "bytes", workers: 1, pieceChars: 10_000 })
      const tokens = yield* pool.tokenize(docBatch(TRICKY))
      TRICKY.forEach((text, i) => expect(Array.from(tokens[i])).toEqual(Array.from(documentTokens(bytes, text))))
    }))
})

// One pool of two gpt2 workers for the rest of the file (starting a worker costs about a
// second). Pieces of 64 characters: every fixture document travels alone, so the order of
// results really has to be rebuilt.
layer(DocumentTokenizer.layer({ tokenizer: "gpt2", workers: 2, pieceChars: 64 }), { excludeTestServices: true })("a pool of two gpt2 workers", (it) => {
  it.scoped("gives exactly the main thread's tokens, end-of-text appended, for tricky text", () =>
    Effect.gen(function* () {
      const pool = yield* DocumentTokenizer
      const tokens = yield* pool.tokenize(docBatch(TRICKY))
      expect(tokens.length).toBe(TRICKY.length)
      TRICKY.forEach((text, i) => expect(Array.from(tokens[i])).toEqual(Array.from(documentTokens(gpt2, text))))
      // The forged boundary stays text: end-of-text appears once, at the end.
      expect(Array.from(tokens[2]).filter((id) => id === gpt2.eot)).toEqual([gpt2.eot])
    }))

  it.scoped("feeds the packer the same batches and cursors as the single-threaded packer on the shipped corpus", () =>
    Effect.gen(function* () {
      const source: DocumentSourceShape = yield* DocumentSource
      const pool = yield* DocumentTokenizer
      const options = { batch: 8, context: 256, cursor: source.start(4) }
      const inline = yield* collect(batches(gpt2, source, options), 150)
      same(yield* collect(batches(gpt2, source, { ...options, tokenizer: pool, prefetch: 6 }), 150), inline)
      expect(new Set(inline.map((b) => b.cursor.rowGroup)).size).toBeGreaterThan(1)
    }).pipe(Effect.provide(shipped)))

  it.scoped("and across shards, epochs and resumes", () =>
    Effect.gen(function* () {
      const source: DocumentSourceShape = yield* DocumentSource
      const pool = yield* DocumentTokenizer
      const options = { batch: 3, context: 20, cursor: source.start(11) }
      const inline = yield* collect(batches(gpt2, source, options), 120)
      expect(inline[inline.length - 1].cursor.epoch).toBeGreaterThanOrEqual(2)
      expect(new Set(inline.map((b) => b.cursor.shard))).toEqual(new Set([0, 1]))
      same(yield* collect(batches(gpt2, source, { ...options, tokenizer: pool, prefetch: 4 }), 120), inline)
      for (const at of [0, 17, 55, 90]) {
        const resumed = yield* collect(batches(gpt2, source, { ...options, cursor: inline[at].cursor, tokenizer: pool, prefetch: 2 }), 10)
        same(resumed, inline.slice(at + 1, at + 11))
      }
    }).pipe(Effect.provide(twoShards)))

  it.scoped("batchesFromServices uses the DocumentTokenizer when one is provided", () =>
    Effect.gen(function* () {
      const source = yield* DocumentSource
      const options = { batch: 2, context: 32, cursor: source.start(9) }
      const inline = yield* collect(batches(gpt2, source, options), 30)
      same(yield* collect(batchesFromServices({ ...options, prefetch: 3 }), 30), inline)
      expect((yield* DocumentTokenizer).workers).toBe(2)
    }).pipe(Effect.provide(Layer.merge(twoShards, Tokenizer.layer("gpt2")))))

  it.scoped("a failure inside a worker is TokenizeWorkerFailed and the pool keeps working", () =>
    Effect.gen(function* () {
      const pool = yield* DocumentTokenizer
      // Not a string: the tokenizer throws inside the worker.
      const error = yield* Effect.flip(pool.tokenize(docBatch([42 as unknown as string])))
      expect(error._tag).toBe("TokenizeWorkerFailed")
      expect(error.message).toContain("data.workers = 0")
      expect(Array.from((yield* pool.tokenize(docBatch(["hello"])))[0])).toEqual(Array.from(documentTokens(gpt2, "hello")))
    }))
})

describe("pool options", () => {
  it.scoped("are checked, and a pool for another encoding than the packer's is refused", () =>
    Effect.gen(function* () {
      expect(yield* Effect.flip(makeTokenizerPool({ tokenizer: "gpt2", workers: 0 }))).toMatchObject({ _tag: "InvalidDataOption", option: "data.workers" })
      expect(yield* Effect.flip(makeTokenizerPool({ tokenizer: "nope" as TokenizerName, workers: 1 }))).toMatchObject({ _tag: "InvalidDataOption", option: "tokenizer" })
      const inline = yield* Effect.provide(DocumentTokenizer, DocumentTokenizer.layer({ tokenizer: "gpt2", workers: 0 }))
      expect(inline.workers).toBe(0)
      const source = yield* DocumentSource
      const error = yield* Effect.flip(Stream.runDrain(Stream.take(
        batches(gpt2, source, { batch: 1, context: 8, cursor: source.start(0), tokenizer: inlineTokenizer(makeEncoding("bytes")) }), 1)))
      expect(error).toMatchObject({ _tag: "InvalidDataOption", option: "tokenizer" })
    }).pipe(Effect.provide(twoShards)))
})
