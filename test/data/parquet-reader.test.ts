// Why this file exists: the parquet reader is the boundary between files we do not control
// and the training loop. It must read the shipped corpus exactly, and turn every kind of bad
// file (missing, truncated, damaged, wrong columns) into a tagged error that names the file,
// without crashing or hanging the process.
import { describe, expect, it } from "@effect/vitest"
import * as arrow from "apache-arrow"
import { Effect, Stream } from "effect"
import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import * as parquet from "parquet-wasm"
import { shippedCorpusPath } from "../../src/data/document-source.ts"
import { makeParquetDecoder, openParquetShard, rowGroupBatches } from "../../src/data/parquet-reader.ts"
import { makeEncoding } from "../../src/tokenizer/tokenizer.ts"
import { documentsTable, fixtureDocuments, parquetBytes, tempDir, writeParquetTable } from "./fixtures.ts"

const FINEWEB_COLUMNS = ["text", "id", "dump", "url", "date", "file_path", "language", "language_score", "token_count"]

describe("the shipped corpus", () => {
  it.scoped("has FineWeb's columns, 12 row groups and one document per chapter and address", () =>
    Effect.gen(function* () {
      const decoder = yield* makeParquetDecoder
      const shard = yield* openParquetShard(decoder, shippedCorpusPath)
      expect(shard.schema.fields.map((f) => f.name)).toEqual(FINEWEB_COLUMNS)
      expect(shard.schema.fields.map((f) => String(f.type))).toEqual([
        "Utf8", "Utf8", "Utf8", "Utf8", "Utf8", "Utf8", "Utf8", "Float64", "Int64"
      ])
      expect(shard.hasIds).toBe(true)
      expect(shard.rowGroupRows.length).toBe(12)
      expect(shard.rowGroupRows.reduce((a, b) => a + b, 0)).toBe(139 + 233)

      const groups = yield* Effect.forEach(shard.rowGroupRows.keys(), (rowGroup) => shard.readDocuments(rowGroup))
      const ids = groups.flatMap((g) => g.ids)
      expect(new Set(ids).size).toBe(372)
      expect(ids.filter((id) => id.startsWith("<urn:glassbox:moby-dick:")).length).toBe(139)
      expect(ids.filter((id) => id.startsWith("<urn:glassbox:sotu:")).length).toBe(233)
      expect(ids).toContain("<urn:glassbox:moby-dick:chapter-001>")
      // Shuffled at build time: every row group mixes both sources.
      for (const g of groups) {
        expect(g.ids.some((id) => id.includes("moby-dick"))).toBe(true)
        expect(g.ids.some((id) => id.includes("sotu"))).toBe(true)
      }
      const chapterOne = groups.flatMap((g) => g.texts)[ids.indexOf("<urn:glassbox:moby-dick:chapter-001>")]
      expect(chapterOne).toMatch(/^CHAPTER 1\. Loomings\.\n\nCall me Ishmael\./)
    }))

  it.scoped("records each document's gpt2 token count", () =>
    Effect.gen(function* () {
      const decoder = yield* makeParquetDecoder
      const shard = yield* openParquetShard(decoder, shippedCorpusPath)
      const table = yield* shard.readRowGroup(5, ["text", "token_count"])
      expect(table.schema.fields.map((f) => f.name)).toEqual(["text", "token_count"])
      const gpt2 = makeEncoding("gpt2")
      for (const row of [0, 7, 19]) {
        const text = table.getChild("text")!.get(row) as string
        expect(Number(table.getChild("token_count")!.get(row))).toBe(gpt2.encode(text).length)
      }
    }))

  it.scoped("streams record batches row group by row group with only the asked columns", () =>
    Effect.gen(function* () {
      const decoder = yield* makeParquetDecoder
      const shard = yield* openParquetShard(decoder, shippedCorpusPath)
      const batches = yield* Stream.runCollect(rowGroupBatches(shard, ["id", "date"]))
      const all = [...batches]
      expect(all.reduce((n, b) => n + b.batch.numRows, 0)).toBe(372)
      expect(all.every((b) => b.batch.schema.fields.map((f) => f.name).join() === "id,date")).toBe(true)
      expect([...new Set(all.map((b) => b.rowGroup))]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    }))
})

describe("bad files", () => {
  const goodBytes = () => parquetBytes(documentsTable(fixtureDocuments(40, 3, 400)), 8)

  it.scoped("a missing file is ParquetFileMissing naming the path", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const decoder = yield* makeParquetDecoder
      const path = join(dir, "nope.parquet")
      const error = yield* Effect.flip(openParquetShard(decoder, path))
      expect(error._tag).toBe("ParquetFileMissing")
      expect(error.message).toContain(path)
      expect(error.message).toContain("ENOENT")
      const dirError = yield* Effect.flip(openParquetShard(decoder, dir))
      expect(dirError._tag).toBe("ParquetFileMissing")
    }))

  it.scoped("a truncated file or a non-parquet file is ParquetCorrupt naming the file", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const decoder = yield* makeParquetDecoder
      const bytes = goodBytes()
      const truncated = join(dir, "truncated.parquet")
      yield* Effect.promise(() => writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2))))
      const error = yield* Effect.flip(openParquetShard(decoder, truncated))
      expect(error._tag).toBe("ParquetCorrupt")
      expect(error.message).toContain(truncated)
      expect(error.message).not.toContain("\n")

      const text = join(dir, "notes.parquet")
      yield* Effect.promise(() => writeFile(text, "these are not the bytes you are looking for\n".repeat(20)))
      expect((yield* Effect.flip(openParquetShard(decoder, text)))._tag).toBe("ParquetCorrupt")
    }))

  it.scoped("damaged page data is ParquetCorrupt naming the row group, and the reader recovers", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const decoder = yield* makeParquetDecoder
      const bytes = goodBytes()
      // Row groups follow the 4-byte magic back to back; scramble bytes inside row group 1's text pages.
      const file = yield* Effect.promise(() => parquet.ParquetFile.fromFile(new Blob([bytes])))
      const start = 4 + file.metadata().rowGroup(0).compressedSize()
      expect(file.metadata().rowGroup(1).column(0).compressedSize()).toBeGreaterThan(400)
      const damaged = bytes.slice()
      for (let i = start + 40; i < start + 400; i++) damaged[i] = (damaged[i] * 31 + 7) & 0xff
      const path = join(dir, "damaged.parquet")
      yield* Effect.promise(() => writeFile(path, damaged))

      const shard = yield* openParquetShard(decoder, path)
      expect((yield* shard.readDocuments(0)).texts.length).toBe(8)
      const error = yield* Effect.flip(shard.readDocuments(1))
      expect(error._tag).toBe("ParquetCorrupt")
      expect(error.message).toContain(`${path}: row group 1`)

      // The same decoder keeps working after the failure.
      const good = join(dir, "good.parquet")
      yield* Effect.promise(() => writeFile(good, bytes))
      const again = yield* openParquetShard(decoder, good)
      expect((yield* again.readDocuments(1)).ids[0]).toBe("<urn:test:doc-008>")
    }))

  it.scoped("a file without a text column is ParquetMissingColumn listing the columns it has", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const decoder = yield* makeParquetDecoder
      const path = join(dir, "no-text.parquet")
      yield* writeParquetTable(path, new arrow.Table({
        body: arrow.vectorFromArray(["a", "b"], new arrow.Utf8()),
        id: arrow.vectorFromArray(["1", "2"], new arrow.Utf8())
      }), 8)
      const error = yield* Effect.flip(openParquetShard(decoder, path))
      expect(error).toMatchObject({ _tag: "ParquetMissingColumn", path, column: "text", found: ["body", "id"] })
      expect(error.message).toContain("no 'text' column")
    }))

  it.scoped("a non-string text or id column is ParquetColumnType", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const decoder = yield* makeParquetDecoder
      const numbers = join(dir, "numbers.parquet")
      yield* writeParquetTable(numbers, new arrow.Table({ text: arrow.makeVector(Int32Array.from([1, 2, 3])) }), 8)
      const error = yield* Effect.flip(openParquetShard(decoder, numbers))
      expect(error).toMatchObject({ _tag: "ParquetColumnType", path: numbers, column: "text", found: "Int32" })

      const badIds = join(dir, "bad-ids.parquet")
      yield* writeParquetTable(badIds, new arrow.Table({
        text: arrow.vectorFromArray(["a"], new arrow.Utf8()),
        id: arrow.makeVector(Float64Array.from([1]))
      }), 8)
      expect(yield* Effect.flip(openParquetShard(decoder, badIds))).toMatchObject({ _tag: "ParquetColumnType", column: "id" })
    }))

  it.scoped("a file without ids gets stable ids from its name and position; bad row groups fail cleanly", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const decoder = yield* makeParquetDecoder
      const path = join(dir, "plain.parquet")
      yield* writeParquetTable(path, new arrow.Table({ text: arrow.vectorFromArray(["a", "b", "c"], new arrow.Utf8()) }), 2)
      const shard = yield* openParquetShard(decoder, path)
      expect(shard.hasIds).toBe(false)
      expect(yield* shard.readDocuments(1)).toEqual({ texts: ["c"], ids: ["plain.parquet#1:0"] })
      expect(yield* Effect.flip(shard.readDocuments(2))).toMatchObject({ _tag: "ParquetCorrupt", rowGroup: 2 })
      expect(yield* Effect.flip(shard.readRowGroup(0, ["nope"]))).toMatchObject({ _tag: "ParquetMissingColumn", column: "nope" })
      // Still alive after both refusals.
      expect((yield* shard.readDocuments(0)).texts).toEqual(["a", "b"])
      // The file on disk was only read.
      expect((yield* Effect.promise(() => readFile(path))).length).toBeGreaterThan(0)
    }))
})
