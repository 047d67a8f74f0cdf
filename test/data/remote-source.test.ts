// Why this file exists: a Hub dataset must read the same documents whether its shards are
// downloaded or read remotely by byte ranges, a remote read must fetch only what a row group
// needs, and a network failure under the parquet reader must surface as the network error
// (with its URL), not as "damaged parquet". Column filters are checked here too: they keep
// exactly the rows that pass, and a filter on a column that does not exist is refused early.
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { readFileSync } from "node:fs"
import { DocumentSource, type DocumentSourceShape, shippedCorpusPath } from "../../src/data/document-source.ts"
import { parseFilter, type ColumnFilter, passes } from "../../src/data/filters.ts"
import { openHubSource, remoteParquetAt } from "../../src/data/hub-source.ts"
import { makeParquetDecoder, openParquetShard } from "../../src/data/parquet-reader.ts"
import { batches } from "../../src/data/packer.ts"
import { makeLiveShardStore, ShardStore } from "../../src/data/shard-store.ts"
import { makeEncoding } from "../../src/tokenizer/tokenizer.ts"
import { tempDir } from "./fixtures.ts"
import { type FileFaults, hubServer } from "./hub-server.ts"

const CORPUS = readFileSync(shippedCorpusPath)
const REPO = "HuggingFaceFW/fineweb"
const PATH = "sample/10BT/000_00000.parquet"
const gpt2 = makeEncoding("gpt2")

const filter = (text: string): ColumnFilter => parseFilter(text) as ColumnFilter

const oneEpochIds = (source: DocumentSourceShape, seed: number) =>
  Stream.runCollect(source.documents(source.start(seed), { singlePass: true })).pipe(
    Effect.map((c) => Chunk.toReadonlyArray(c).flatMap((b) => b.ids))
  )

/** A Hub source over the shipped corpus served from 127.0.0.1. */
const hubSource = (mode: "download" | "stream", faults: Record<string, FileFaults> = {}, filters: ReadonlyArray<ColumnFilter> = []) =>
  Effect.gen(function* () {
    const server = yield* hubServer({ repos: { [REPO]: { [PATH]: CORPUS } }, faults, redirect: true })
    const store = yield* makeLiveShardStore({ cacheDir: yield* tempDir, endpoint: server.endpoint, backoffMs: 5, maxBackoffMs: 10, retries: 2, token: undefined })
    const source = yield* openHubSource({ dataset: "fineweb-10BT", split: "train", valFraction: 0.01, mode, filters }).pipe(
      Effect.provideService(ShardStore, store)
    )
    return { server, source }
  })

describe("remote parquet by range requests", () => {
  it.scopedLive("reads the same documents and batches as the local file, fetching only what it reads", () =>
    Effect.gen(function* () {
      const { server, source } = yield* hubSource("stream")
      const local = yield* Effect.flatMap(DocumentSource, Effect.succeed).pipe(
        Effect.provide(DocumentSource.shipped({ split: "train", valFraction: 0.01 }))
      )
      expect(source.shards[0].rowGroupRows).toEqual(local.shards[0].rowGroupRows)
      expect(source.shards[0].name).toContain(`/resolve/`)

      const options = { batch: 4, context: 64, cursor: source.start(1337) }
      const first = yield* Stream.runCollect(Stream.take(batches(gpt2, source, options), 3))
      const reference = yield* Stream.runCollect(Stream.take(batches(gpt2, local, options), 3))
      expect(Chunk.toReadonlyArray(first).map((b) => [Array.from(b.ids), b.cursor])).toEqual(
        Chunk.toReadonlyArray(reference).map((b) => [Array.from(b.ids), b.cursor])
      )
      // Footer plus one or two row groups: a small share of the file.
      expect(server.bytesSent).toBeLessThan(CORPUS.length / 3)
      expect(server.log.some((r) => r.range !== undefined)).toBe(true)

      expect(yield* oneEpochIds(source, 7)).toEqual(yield* oneEpochIds(local, 7))
    }))

  it.scopedLive("any URL that honours Range works as a shard, its size found by a one-byte request", () =>
    Effect.gen(function* () {
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: CORPUS } } })
      const url = `${server.endpoint}/datasets/${REPO}/resolve/main/${PATH}`
      const remote = yield* remoteParquetAt(url, { endpoint: server.endpoint, token: undefined })
      expect(remote.size).toBe(CORPUS.length)
      expect(server.log[0].range).toBe("bytes=0-0")
      const source = yield* Effect.flatMap(DocumentSource, Effect.succeed).pipe(
        Effect.provide(DocumentSource.parquet({ paths: [remote], split: "train", valFraction: 0.01 }))
      )
      expect((yield* oneEpochIds(source, 1)).length).toBeGreaterThan(300)
      const missing = yield* Effect.flip(remoteParquetAt(url.replace("000_", "404_"), { endpoint: server.endpoint, token: undefined }))
      expect(missing).toMatchObject({ _tag: "ShardNotFound" })
    }))

  it.scopedLive("download mode fetches the shard once and reads it locally", () =>
    Effect.gen(function* () {
      const { server, source } = yield* hubSource("download")
      const requests = server.log.length
      const ids = yield* oneEpochIds(source, 3)
      expect(ids.length).toBeGreaterThan(300)
      expect(server.log.length).toBe(requests)
      expect(source.shards[0].name).not.toContain("http")
    }))

  it.scopedLive("a remote read that keeps failing is ShardUnavailable naming the URL, not ParquetCorrupt", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(hubSource("stream", { [PATH]: { statuses: Array(50).fill(503) } }))
      expect(error._tag).toBe("ShardUnavailable")
      expect(error.message).toContain(PATH)
      expect(error.message).toContain("503")
    }))
})

describe("column filters", () => {
  it("parse, print and compare", () => {
    expect(parseFilter("language_score >= 0.65")).toEqual({ column: "language_score", op: ">=", value: 0.65 })
    expect(parseFilter("int_score>=3")).toEqual({ column: "int_score", op: ">=", value: 3 })
    expect(parseFilter("language = en")).toEqual({ column: "language", op: "==", value: "en" })
    expect(parseFilter('dump != "CC-MAIN-2013-20"')).toEqual({ column: "dump", op: "!=", value: "CC-MAIN-2013-20" })
    expect(parseFilter("score >> 3")).toMatchObject({ _tag: "InvalidDataOption" })
    expect(passes(filter("token_count >= 100"), 100n)).toBe(true)
    expect(passes(filter("token_count >= 100"), 99n)).toBe(false)
    expect(passes(filter("score < 3"), null)).toBe(false)
    expect(passes(filter("language == en"), "en")).toBe(true)
  })

  it.scoped("keep exactly the rows that pass, in every row group, locally and remotely", () =>
    Effect.gen(function* () {
      const decoder = yield* makeParquetDecoder
      const shard = yield* openParquetShard(decoder, shippedCorpusPath)
      const expected: string[] = []
      for (const rowGroup of shard.rowGroupRows.keys()) {
        const table = yield* shard.readRowGroup(rowGroup, ["id", "token_count"])
        for (let row = 0; row < table.numRows; row++) {
          if (Number(table.getChild("token_count")!.get(row)) >= 2000) expected.push(table.getChild("id")!.get(row))
        }
      }
      expect(expected.length).toBeGreaterThan(50)
      expect(expected.length).toBeLessThan(350)

      const filtered = yield* Effect.flatMap(DocumentSource, Effect.succeed).pipe(
        Effect.provide(DocumentSource.shipped({ split: "train", valFraction: 0, filters: [filter("token_count >= 2000")] }))
      )
      const ids = yield* oneEpochIds(filtered, 5)
      expect(new Set(ids)).toEqual(new Set(expected))
      // Rows keep their numbers: a filtered batch's rows are a subset of the row group's.
      const docBatches = Chunk.toReadonlyArray(yield* Stream.runCollect(filtered.documents(filtered.start(5), { singlePass: true })))
      expect(docBatches.some((b) => b.rows.some((r, i) => i > 0 && r > b.rows[i - 1] + 1))).toBe(true)
    }))

  it.scopedLive("remote and filtered gives the same documents as local and filtered", () =>
    Effect.gen(function* () {
      const filters = [filter("token_count < 1500")]
      const { source } = yield* hubSource("stream", {}, filters)
      const local = yield* Effect.flatMap(DocumentSource, Effect.succeed).pipe(
        Effect.provide(DocumentSource.shipped({ split: "train", valFraction: 0.01, filters }))
      )
      expect(yield* oneEpochIds(source, 2)).toEqual(yield* oneEpochIds(local, 2))
    }))

  it.scoped("a filter on a column the file lacks is ParquetMissingColumn naming the file", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Effect.flatMap(DocumentSource, Effect.succeed).pipe(
        Effect.provide(DocumentSource.shipped({ split: "train", valFraction: 0.01, filters: [filter("int_score >= 3")] }))
      ))
      expect(error).toMatchObject({ _tag: "ParquetMissingColumn", column: "int_score", path: shippedCorpusPath })
      const typed = yield* Effect.flip(Effect.flatMap(DocumentSource, Effect.succeed).pipe(
        Effect.provide(DocumentSource.shipped({ split: "train", valFraction: 0.01, filters: [filter("url >= 3")] }))
      ))
      expect(typed).toMatchObject({ _tag: "ParquetColumnType", column: "url" })
    }))

  it.scopedLive("a filter on a column a known dataset lacks is refused before any request", () =>
    Effect.gen(function* () {
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: CORPUS } } })
      const store = yield* makeLiveShardStore({ cacheDir: yield* tempDir, endpoint: server.endpoint, token: undefined })
      const error = yield* Effect.flip(
        openHubSource({ dataset: "fineweb-10BT", split: "train", valFraction: 0.01, filters: [filter("int_score >= 3")] }).pipe(
          Effect.provideService(ShardStore, store)
        )
      )
      expect(error).toMatchObject({ _tag: "InvalidDataOption", option: "data.filters" })
      expect(error.message).toContain("language_score")
      expect(server.log.length).toBe(0)
    }))
})
