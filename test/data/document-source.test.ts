// Why this file exists: one conformance suite for every DocumentSource layer (in memory and
// parquet on disk, one shard and several), checking the split, the epoch order and the
// cursor the same way for each, plus the shipped-corpus layer.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Stream } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { DataCursor } from "../../src/data/cursor.ts"
import { type DocBatch, DocumentSource, type DocumentSourceShape, shippedCorpusPath, type Split } from "../../src/data/document-source.ts"
import { splitOf } from "../../src/data/split.ts"
import { documentsTable, fixtureDocuments, parquetBytes } from "./fixtures.ts"

const DOCS = fixtureDocuments(60, 11)
const SECOND_SHARD = fixtureDocuments(22, 12).map((d) => ({ ...d, id: d.id.replace("doc", "second") }))
const ROWS_PER_GROUP = 4
const VAL_FRACTION = 0.25

let dir = ""
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "glassbox-source-"))
  writeFileSync(join(dir, "a.parquet"), parquetBytes(documentsTable(DOCS), ROWS_PER_GROUP))
  writeFileSync(join(dir, "b.parquet"), parquetBytes(documentsTable(SECOND_SHARD), ROWS_PER_GROUP))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

type MakeLayer = (split: Split, valFraction?: number) => Layer.Layer<DocumentSource, unknown>

const kinds: ReadonlyArray<{ name: string; docs: ReadonlyArray<{ id: string }>; shards: number; layer: MakeLayer }> = [
  {
    name: "in memory, one shard", docs: DOCS, shards: 1,
    layer: (split, valFraction = VAL_FRACTION) => DocumentSource.fromDocuments(DOCS, { split, valFraction, rowsPerGroup: ROWS_PER_GROUP })
  },
  {
    name: "in memory, two shards", docs: [...DOCS, ...SECOND_SHARD], shards: 2,
    layer: (split, valFraction = VAL_FRACTION) =>
      DocumentSource.fromDocuments([DOCS, SECOND_SHARD], { split, valFraction, rowsPerGroup: ROWS_PER_GROUP })
  },
  {
    name: "parquet, one shard", docs: DOCS, shards: 1,
    layer: (split, valFraction = VAL_FRACTION) => DocumentSource.parquet({ paths: [join(dir, "a.parquet")], split, valFraction })
  },
  {
    name: "parquet, two shards", docs: [...DOCS, ...SECOND_SHARD], shards: 2,
    layer: (split, valFraction = VAL_FRACTION) =>
      DocumentSource.parquet({ paths: [join(dir, "a.parquet"), join(dir, "b.parquet")], split, valFraction })
  }
]

const collect = <A, E>(stream: Stream.Stream<A, E>) => Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const oneEpoch = (source: DocumentSourceShape, seed: number) =>
  collect(source.documents(source.start(seed), { singlePass: true }))

const idsOf = (batches: ReadonlyArray<DocBatch>) => batches.flatMap((b) => b.ids)

for (const kind of kinds) {
  const withSource = <A, E>(split: Split, body: (source: DocumentSourceShape) => Effect.Effect<A, E>) =>
    Effect.flatMap(DocumentSource, body).pipe(Effect.provide(kind.layer(split)))

  describe(`DocumentSource ${kind.name}`, () => {
    it.effect("splits by id hash: disjoint sides that cover the corpus", () =>
      withSource("train", (train) =>
        Effect.gen(function* () {
          const trainIds = idsOf(yield* oneEpoch(train, 1))
          const valIds = idsOf(yield* oneEpoch(train.withSplit("val"), 1))
          expect(new Set(trainIds).size).toBe(trainIds.length)
          expect(trainIds.filter((id) => valIds.includes(id))).toEqual([])
          expect(new Set([...trainIds, ...valIds])).toEqual(new Set(kind.docs.map((d) => d.id)))
          expect(new Set(valIds)).toEqual(new Set(kind.docs.filter((d) => splitOf(d.id, VAL_FRACTION) === "val").map((d) => d.id)))
          expect(valIds.length).toBeGreaterThan(0)
        })))

    it.effect("visits row groups in an order fixed by the seed, rows in order within each", () =>
      withSource("train", (source) =>
        Effect.gen(function* () {
          const a = yield* oneEpoch(source, 7)
          expect(idsOf(yield* oneEpoch(source, 7))).toEqual(idsOf(a))
          expect(idsOf(yield* oneEpoch(source, 8))).not.toEqual(idsOf(a))
          for (const batch of a) {
            expect(batch.epoch).toBe(0)
            expect(batch.firstRow).toBe(batch.rows[0])
            expect([...batch.rows].sort((x, y) => x - y)).toEqual(batch.rows)
          }
          expect(new Set(a.map((b) => b.shard)).size).toBe(kind.shards)
          const start = source.start(7)
          expect([a[0].shard, a[0].rowGroup]).toEqual([start.shard, start.rowGroup])
        })))

    it.effect("runs on through epochs, each a new order of the same documents", () =>
      withSource("train", (source) =>
        Effect.gen(function* () {
          const batches = yield* collect(source.documents(source.start(3)).pipe(Stream.takeWhile((b) => b.epoch < 3)))
          const epochs = [0, 1, 2].map((e) => idsOf(batches.filter((b) => b.epoch === e)))
          expect(new Set(epochs[1])).toEqual(new Set(epochs[0]))
          expect(epochs[1].length).toBe(epochs[0].length)
          expect(epochs[1]).not.toEqual(epochs[0])
          expect(epochs[2]).not.toEqual(epochs[1])
        })))

    it.effect("starts at the cursor's row and continues from there", () =>
      withSource("train", (source) =>
        Effect.gen(function* () {
          const full = yield* oneEpoch(source, 5)
          const third = full[2]
          const cursor: DataCursor = { shard: third.shard, rowGroup: third.rowGroup, row: third.rows[third.rows.length - 1], tokenOffset: 0, epoch: 0, seed: 5 }
          const resumed = yield* collect(source.documents(cursor, { singlePass: true }))
          expect(resumed[0].rows).toEqual([cursor.row])
          expect(idsOf(resumed)).toEqual(idsOf(full).slice(idsOf(full).indexOf(third.ids[third.ids.length - 1])))
        })))

    it.effect("rejects a cursor outside the corpus", () =>
      withSource("train", (source) =>
        Effect.gen(function* () {
          const start = source.start(0)
          for (const cursor of [{ ...start, shard: 9 }, { ...start, rowGroup: 999 }, { ...start, row: ROWS_PER_GROUP }]) {
            const error = yield* Effect.flip(Stream.runDrain(source.documents(cursor)))
            expect(error._tag).toBe("CursorOutOfRange")
            expect(error.message).not.toContain("\n")
          }
        })))

    it.effect("fails with EmptySplit instead of spinning when a side has no documents", () =>
      Effect.gen(function* () {
        const val = yield* DocumentSource
        expect(yield* oneEpoch(val, 0)).toEqual([])
        const error = yield* Effect.flip(Stream.runDrain(val.documents(val.start(0))))
        expect(error).toMatchObject({ _tag: "EmptySplit", split: "val", valFraction: 0 })
      }).pipe(Effect.provide(kind.layer("val", 0))))

    it.effect("refuses a val_fraction outside [0, 1]", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Layer.build(kind.layer("train", 1.5)).pipe(Effect.scoped))
        expect(error).toMatchObject({ _tag: "InvalidDataOption", option: "data.val_fraction" })
      }))
  })
}

describe("DocumentSource.shipped", () => {
  it.effect("finds data/corpus.parquet from any working directory", () => {
    const previous = process.cwd()
    process.chdir(tmpdir())
    return Effect.gen(function* () {
      const train = yield* DocumentSource
      expect(shippedCorpusPath.endsWith(join("data", "corpus.parquet"))).toBe(true)
      const trainIds = idsOf(yield* oneEpoch(train, 1337))
      const valIds = idsOf(yield* oneEpoch(train.withSplit("val"), 1337))
      expect(trainIds.length + valIds.length).toBe(372)
      expect(valIds.length).toBeGreaterThan(0)
      expect(valIds.length).toBeLessThan(20)
    }).pipe(
      Effect.provide(DocumentSource.shipped({ split: "train", valFraction: 0.01 })),
      Effect.ensuring(Effect.sync(() => process.chdir(previous)))
    )
  })
})
