// Why this file exists: the packer's promises are exact ones: windows tile the token stream
// with stride T, restarting from any batch's cursor reproduces the batches that followed
// (across documents, row groups, shards and epochs), and the validation set is the same
// tokens on every call. Each is checked against a stream rebuilt independently here.
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Stream } from "effect"
import type { DataCursor } from "../../src/data/cursor.ts"
import { DocumentSource, type DocumentSourceShape } from "../../src/data/document-source.ts"
import { type Batch, batches, batchesFromServices, validationBatches } from "../../src/data/packer.ts"
import { type Encoding, encodeDocuments, makeEncoding, Tokenizer } from "../../src/tokenizer/tokenizer.ts"
import { fixtureDocuments } from "./fixtures.ts"

const DOCS = fixtureDocuments(40, 21, 30)
const bytes = makeEncoding("bytes")
const gpt2 = makeEncoding("gpt2")

const fixture = (split: "train" | "val" = "train", valFraction = 0.2) =>
  DocumentSource.fromDocuments([DOCS.slice(0, 25), DOCS.slice(25)], { split, valFraction, rowsPerGroup: 3 })

const take = <E, R>(stream: Stream.Stream<Batch, E, R>, n: number) =>
  Effect.map(Stream.runCollect(Stream.take(stream, n)), Chunk.toReadonlyArray)

/** The token stream the packer should be cutting: documents in visiting order, each followed by end-of-text. */
const referenceStream = (encoding: Encoding, source: DocumentSourceShape, cursor: DataCursor, epochs: number) =>
  source.documents(cursor).pipe(
    Stream.takeWhile((b) => b.epoch < cursor.epoch + epochs),
    Stream.runCollect,
    Effect.map((docBatches) => encodeDocuments(encoding, Chunk.toReadonlyArray(docBatches).flatMap((b) => b.texts)))
  )

const sameBatches = (actual: ReadonlyArray<Batch>, expected: ReadonlyArray<Batch>) => {
  expect(actual.length).toBe(expected.length)
  actual.forEach((batch, i) => {
    expect(Array.from(batch.ids)).toEqual(Array.from(expected[i].ids))
    expect(batch.cursor).toEqual(expected[i].cursor)
  })
}

describe("Packer.batches", () => {
  it.effect("cuts the token stream into windows of T+1 with stride T, across epochs", () =>
    Effect.gen(function* () {
      const source = yield* DocumentSource
      const B = 3
      const T = 16
      const cursor = source.start(99)
      const reference = yield* referenceStream(bytes, source, cursor, 4)
      const out = yield* take(batches(bytes, source, { batch: B, context: T, cursor }), 150)
      expect(out[out.length - 1].cursor.epoch).toBeGreaterThanOrEqual(2)
      expect((out.length * B * T + 1)).toBeLessThan(reference.length)
      out.forEach((batch, k) => {
        expect(batch.ids.length).toBe(B * (T + 1))
        expect([batch.batch, batch.context]).toEqual([B, T])
        for (let b = 0; b < B; b++) {
          const start = (k * B + b) * T
          expect(Array.from(batch.ids.subarray(b * (T + 1), (b + 1) * (T + 1)))).toEqual(reference.slice(start, start + T + 1))
        }
      })
      // Every document is followed by end-of-text in the packed stream.
      const eots = out.reduce((n, batch) => n + batch.ids.filter((id) => id === bytes.eot).length, 0)
      expect(eots).toBeGreaterThan(out.length / 2)
    }).pipe(Effect.provide(fixture())))

  it.effect("restarting from any batch's cursor reproduces the batches that followed", () =>
    Effect.gen(function* () {
      const source = yield* DocumentSource
      const options = { batch: 2, context: 24 }
      const run = yield* take(batches(bytes, source, { ...options, cursor: source.start(5) }), 160)
      expect(new Set(run.map((b) => b.cursor.epoch)).size).toBeGreaterThan(2)
      expect(new Set(run.map((b) => b.cursor.shard))).toEqual(new Set([0, 1]))
      expect(run.some((b) => b.cursor.tokenOffset > 0)).toBe(true)
      for (let i = 0; i < run.length - 3; i++) {
        const resumed = yield* take(batches(bytes, source, { ...options, cursor: run[i].cursor }), 3)
        sameBatches(resumed, run.slice(i + 1, i + 4))
      }
    }).pipe(Effect.provide(fixture())))

  it.effect("on the shipped corpus with gpt2: batches 4..7 after a restart from batch 3's cursor are identical", () =>
    Effect.gen(function* () {
      const source = yield* DocumentSource
      const options = { batch: 4, context: 64 }
      const seven = yield* take(batches(gpt2, source, { ...options, cursor: source.start(1337) }), 7)
      const resumed = yield* take(batches(gpt2, source, { ...options, cursor: seven[2].cursor }), 4)
      sameBatches(resumed, seven.slice(3))
      expect(seven.every((b) => b.ids.every((id) => id >= 0 && id < gpt2.vocabSize))).toBe(true)
    }).pipe(Effect.provide(DocumentSource.shipped({ split: "train", valFraction: 0.01 }))))

  it.effect("rejects a cursor that does not fit the corpus or tokenizer", () =>
    Effect.gen(function* () {
      const source = yield* DocumentSource
      const [first] = yield* take(batches(bytes, source, { batch: 1, context: 8, cursor: source.start(1) }), 1)
      const beyond = { ...first.cursor, tokenOffset: 100_000 }
      const error = yield* Effect.flip(Stream.runDrain(Stream.take(batches(bytes, source, { batch: 1, context: 8, cursor: beyond }), 1)))
      expect(error).toMatchObject({ _tag: "CursorOutOfRange" })
      expect(error.message).toContain("bytes tokenizer")
      // A mid-document cursor naming a row that is not a training document.
      const val = yield* Stream.runCollect(source.withSplit("val").documents(source.start(1), { singlePass: true }))
      const valDoc = Chunk.unsafeHead(val)
      const wrong = { ...first.cursor, shard: valDoc.shard, rowGroup: valDoc.rowGroup, row: valDoc.rows[0], tokenOffset: 1 }
      const wrongError = yield* Effect.flip(Stream.runDrain(Stream.take(batches(bytes, source, { batch: 1, context: 8, cursor: wrong }), 1)))
      expect(wrongError).toMatchObject({ _tag: "CursorOutOfRange" })
    }).pipe(Effect.provide(fixture())))

  it.effect("rejects a batch or context that is not a positive integer", () =>
    Effect.gen(function* () {
      const source = yield* DocumentSource
      const cursor = source.start(0)
      expect(yield* Effect.flip(Stream.runDrain(batches(bytes, source, { batch: 0, context: 8, cursor }))))
        .toMatchObject({ _tag: "InvalidDataOption", option: "train.batch" })
      expect(yield* Effect.flip(Stream.runDrain(batches(bytes, source, { batch: 2, context: 1.5, cursor }))))
        .toMatchObject({ _tag: "InvalidDataOption", option: "model.context" })
    }).pipe(Effect.provide(fixture())))

  it.effect("batchesFromServices reads the tokenizer and source from the environment", () =>
    Effect.gen(function* () {
      const source = yield* DocumentSource
      const cursor = source.start(3)
      const direct = yield* take(batches(bytes, source, { batch: 2, context: 8, cursor }), 5)
      sameBatches(yield* take(batchesFromServices({ batch: 2, context: 8, cursor }), 5), direct)
    }).pipe(Effect.provide(Layer.merge(fixture(), Tokenizer.layer("bytes")))))
})

describe("Packer.validationBatches", () => {
  it.effect("is the same whole batches on every call, taken from one pass over the split", () =>
    Effect.gen(function* () {
      const val = yield* DocumentSource
      const options = { batch: 2, context: 16, maxTokens: 100 }
      const first = yield* validationBatches(bytes, val, options)
      sameBatches(yield* validationBatches(bytes, val, options), first)
      expect(first.length).toBe(Math.ceil(100 / 32))
      expect(first.every((b) => b.ids.length === 2 * 17)).toBe(true)

      // Asking for more than the split holds gives every whole batch of a single pass.
      const reference = yield* referenceStream(bytes, val, val.start(0), 1)
      const all = yield* validationBatches(bytes, val, { ...options, maxTokens: 1_000_000 })
      expect(all.length).toBe(Math.floor((reference.length - 1) / 32))
      all.forEach((batch, k) => {
        expect(Array.from(batch.ids.subarray(0, 17))).toEqual(reference.slice(k * 32, k * 32 + 17))
      })
    }).pipe(Effect.provide(fixture("val", 0.5))))

  it.effect("fails with ValidationSetEmpty when the split cannot fill one batch", () =>
    Effect.gen(function* () {
      const val = yield* DocumentSource
      const reference = yield* referenceStream(bytes, val, val.start(0), 1)
      const error = yield* Effect.flip(validationBatches(bytes, val, { batch: 64, context: 512, maxTokens: 1000 }))
      expect(error).toMatchObject({ _tag: "ValidationSetEmpty", tokens: reference.length, batch: 64, context: 512 })
      expect(error.message).toContain("val_fraction")
    }).pipe(Effect.provide(fixture("val", 0.2))))
})
