// Why this file exists: the token cache replaces tokenising, so it must give back exactly
// what tokenising would: the same batches and the same cursors as the parquet path, for both
// token widths. And a cache that is damaged, truncated, or made for another tokenizer,
// source or filter set must never be used: it is detected and rebuilt.
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { spawnSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs"
import { basename, join } from "node:path"
import { DocumentSource, type DocumentSourceShape, makeDocumentSource, shippedCorpusPath } from "../../src/data/document-source.ts"
import { parseFilter, type ColumnFilter } from "../../src/data/filters.ts"
import { type Batch, batches } from "../../src/data/packer.ts"
import { makeParquetDecoder, openParquetShard } from "../../src/data/parquet-reader.ts"
import {
  decodeBlock,
  decodeHeader,
  encodeBlock,
  encodeHeader,
  HEADER_BYTES,
  openTokenCache,
  openTokenCacheStore,
  type TokenCacheHeader
} from "../../src/data/token-cache.ts"
import { inlineTokenizer, makeTokenizerPool } from "../../src/data/tokenize-pool.ts"
import { makeEncoding } from "../../src/tokenizer/tokenizer.ts"
import { documentsTable, fixtureDocuments, tempDir, writeParquetTable } from "./fixtures.ts"

const collect = <E, R>(stream: Stream.Stream<Batch, E, R>, n: number) =>
  Effect.map(Stream.runCollect(Stream.take(stream, n)), Chunk.toReadonlyArray)

const same = (actual: ReadonlyArray<Batch>, expected: ReadonlyArray<Batch>) => {
  expect(actual.length).toBe(expected.length)
  actual.forEach((b, i) => {
    expect(b.cursor).toEqual(expected[i].cursor)
    expect(Array.from(b.ids)).toEqual(Array.from(expected[i].ids))
  })
}

const HEADER: TokenCacheHeader = {
  version: 1,
  dtype: "uint32",
  tokenCount: 2 ** 40 + 3,
  rowGroups: 7,
  rows: 1234,
  indexOffset: 2 ** 33,
  tokenizer: "cl100k_base",
  sourceSha256: "ab".repeat(32),
  optionsSha256: "01".repeat(32),
  payloadSha256: "fe".repeat(32)
}

describe("the format", () => {
  it("header and block round-trip; wrong magic or version is named", () => {
    expect(decodeHeader(encodeHeader(HEADER))).toEqual(HEADER)
    const wrong = encodeHeader(HEADER)
    wrong[0] = 0x58
    expect(decodeHeader(wrong)).toContain("magic")
    const v2 = encodeHeader({ ...HEADER, version: 2 })
    expect(decodeHeader(v2)).toContain("version 2")
    expect(decodeHeader(new Uint8Array(10))).toContain("shorter")

    for (const dtype of ["uint16", "uint32"] as const) {
      const tokens = [Int32Array.from([5, 6, 50256]), null, Int32Array.from([65535, 7]), Int32Array.from([1])]
      const block = encodeBlock(["a", "b-é", "", "d😀"], tokens, dtype)
      const back = decodeBlock(block, dtype, 4)
      expect(typeof back).toBe("object")
      if (typeof back === "string") return
      expect(back.ids).toEqual(["a", "b-é", "", "d😀"])
      expect(back.texts).toEqual([])
      expect(back.tokens!.map((t) => (t === null ? null : Array.from(t)))).toEqual(tokens.map((t) => (t === null ? null : Array.from(t))))
      expect(decodeBlock(block, dtype, 5)).toContain("index says 5")
      expect(decodeBlock(block.subarray(0, block.length - 2), dtype, 4)).toContain("length")
    }
  })
})

/** Batches from the parquet path and from the cache path over the same files. */
const bothWays = (paths: ReadonlyArray<string>, tokenizerName: "gpt2" | "cl100k_base" | "bytes", dir: string, filters: ReadonlyArray<ColumnFilter> = []) =>
  Effect.gen(function* () {
    const encoding = makeEncoding(tokenizerName)
    const plain = yield* Effect.flatMap(DocumentSource, Effect.succeed).pipe(
      Effect.provide(DocumentSource.parquet({ paths, split: "train", valFraction: 0.05, filters }))
    )
    const store = yield* openTokenCacheStore({ paths, filters, dir, tokenizer: inlineTokenizer(encoding) })
    const cached: DocumentSourceShape = makeDocumentSource(store, { split: "train", valFraction: 0.05 })
    return { encoding, plain, cached, store }
  })

describe("a token cache", () => {
  it.scoped("gives the parquet path's batches and cursors (uint16, gpt2, shipped corpus), and resumes from them", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { encoding, plain, cached, store } = yield* bothWays([shippedCorpusPath], "gpt2", dir)
      expect(store.files[0].header).toMatchObject({ dtype: "uint16", tokenizer: "gpt2", rowGroups: 12, rows: 372 })
      const options = { batch: 4, context: 128, cursor: plain.start(21) }
      const reference = yield* collect(batches(encoding, plain, options), 60)
      const fromCache = yield* collect(batches(encoding, cached, options), 60)
      same(fromCache, reference)
      // A cursor saved on the parquet path resumes on the cache path, and the other way round.
      same(yield* collect(batches(encoding, cached, { ...options, cursor: reference[29].cursor }), 5), reference.slice(30, 35))
      same(yield* collect(batches(encoding, plain, { ...options, cursor: fromCache[44].cursor }), 5), reference.slice(45, 50))
      // The validation side reads the same cache.
      const valIds = (s: DocumentSourceShape) => Effect.map(Stream.runCollect(s.withSplit("val").documents(s.start(0), { singlePass: true })), (c) => Chunk.toReadonlyArray(c).flatMap((b) => b.ids))
      expect(yield* valIds(cached)).toEqual(yield* valIds(plain))
      // The header's token count is the whole corpus, end-of-text markers included.
      const decoder = yield* makeParquetDecoder
      const shard = yield* openParquetShard(decoder, shippedCorpusPath)
      let total = 0
      for (const rg of shard.rowGroupRows.keys()) {
        for (const text of (yield* shard.readDocuments(rg)).texts) total += encoding.encode(text!).length + 1
      }
      expect(store.files[0].header.tokenCount).toBe(total)
    }))

  it.scoped("uses uint32 for large vocabularies and honours filters (cl100k_base, two shards, built by the pool)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const docsA = fixtureDocuments(30, 4, 60)
      const docsB = fixtureDocuments(25, 5, 60).map((d) => ({ ...d, id: `${d.id}-b` }))
      const a = join(dir, "a.parquet")
      const b = join(dir, "b.parquet")
      yield* writeParquetTable(a, documentsTable(docsA), 7)
      yield* writeParquetTable(b, documentsTable(docsB), 6)
      const filters = [parseFilter("id != \"<urn:test:doc-003>\"") as ColumnFilter]
      const encoding = makeEncoding("cl100k_base")
      const plain = yield* Effect.flatMap(DocumentSource, Effect.succeed).pipe(
        Effect.provide(DocumentSource.parquet({ paths: [a, b], split: "train", valFraction: 0.05, filters }))
      )
      const pool = yield* makeTokenizerPool({ tokenizer: "cl100k_base", workers: 1, pieceChars: 200 })
      const store = yield* openTokenCacheStore({ paths: [a, b], filters, dir: join(dir, "tokens"), tokenizer: pool })
      expect(store.files.map((f) => f.header.dtype)).toEqual(["uint32", "uint32"])
      expect(store.files[0].rowGroupDocuments.reduce((x, y) => x + y, 0)).toBe(29) // one row filtered out
      const cached = makeDocumentSource(store, { split: "train", valFraction: 0.05 })
      const options = { batch: 2, context: 16, cursor: plain.start(3) }
      const reference = yield* collect(batches(encoding, plain, options), 80)
      expect(reference[reference.length - 1].cursor.epoch).toBeGreaterThan(0)
      same(yield* collect(batches(encoding, cached, options), 80), reference)
      // A cache used with another tokenizer is refused, not silently mis-read.
      const error = yield* Effect.flip(Stream.runDrain(Stream.take(batches(makeEncoding("gpt2"), cached, { ...options }), 1)))
      expect(error).toMatchObject({ _tag: "InvalidDataOption", option: "tokenizer" })
    }))

  it.scoped("a damaged or truncated cache is detected and rebuilt; a matching one is reused", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const encoding = makeEncoding("bytes")
      const source = join(dir, "docs.parquet")
      yield* writeParquetTable(source, documentsTable(fixtureDocuments(40, 8, 50)), 8)
      const notes: string[] = []
      const open = () =>
        Effect.scoped(openTokenCacheStore({
          paths: [source], filters: [], dir: join(dir, "tokens"), tokenizer: inlineTokenizer(encoding),
          onBuild: (_, reason) => notes.push(reason)
        }).pipe(Effect.map((s) => s.files[0].path)))
      const path = yield* open()
      expect(notes).toEqual(["missing"])
      const good = readFileSync(path)
      const built = statSync(path).mtimeMs

      yield* open()
      expect(notes).toEqual(["missing"]) // reused
      expect(statSync(path).mtimeMs).toBe(built)

      const flipped = Buffer.from(good)
      flipped[HEADER_BYTES + 100] ^= 0x10
      writeFileSync(path, flipped)
      yield* open()
      expect(notes[1]).toContain("checksum mismatch")
      expect(readFileSync(path).equals(good)).toBe(true)

      truncateSync(path, good.length - 5)
      yield* open()
      expect(notes[2]).toContain("does not match the header")
      expect(readFileSync(path).equals(good)).toBe(true)

      writeFileSync(path, Buffer.from("not a cache at all, just some text that is long enough".repeat(10)))
      yield* open()
      expect(notes[3]).toContain("magic")
      expect(readFileSync(path).equals(good)).toBe(true)
      expect(readdirSync(join(dir, "tokens")).filter((n) => n.includes(".tmp-"))).toEqual([])
    }))

  it.scoped("a partial build left by a killed process (.tmp-<pid>) is removed by the next build; a live process's is kept", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const encoding = makeEncoding("bytes")
      const source = join(dir, "docs.parquet")
      yield* writeParquetTable(source, documentsTable(fixtureDocuments(20, 8, 50)), 8)
      const open = (tokens: string) =>
        Effect.scoped(openTokenCacheStore({ paths: [source], filters: [], dir: tokens, tokenizer: inlineTokenizer(encoding) }).pipe(Effect.map((s) => s.files[0].path)))
      // Learn the cache's file name, then stage the leftovers beside it in a fresh directory.
      const name = basename(yield* open(join(dir, "probe")))
      const tokens = join(dir, "tokens")
      mkdirSync(tokens)
      const dead = spawnSync(process.execPath, ["-e", "process.pid"]).pid! // exited: its pid is free
      writeFileSync(join(tokens, `${name}.tmp-${dead}`), "half a cache")
      writeFileSync(join(tokens, `${name}.tmp-${process.ppid}`), "another process is building this right now")
      yield* open(tokens)
      expect(readdirSync(tokens).sort()).toEqual([name, `${name}.tmp-${process.ppid}`].sort())
    }))

  it.scoped("opening with another key names what differs", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const source = join(dir, "docs.parquet")
      yield* writeParquetTable(source, documentsTable(fixtureDocuments(10, 9, 20)), 4)
      const store = yield* openTokenCacheStore({ paths: [source], filters: [], dir, tokenizer: inlineTokenizer(makeEncoding("bytes")) })
      const { header, path } = store.files[0]
      const key = { tokenizer: "bytes" as const, sourceSha256: header.sourceSha256, filters: [] }
      expect((yield* Effect.flip(openTokenCache(path, { ...key, tokenizer: "gpt2" }))).reason).toContain("tokenizer bytes, not gpt2")
      expect((yield* Effect.flip(openTokenCache(path, { ...key, sourceSha256: "00".repeat(32) }))).reason).toContain("another version")
      const filtered = { ...key, filters: [parseFilter("id != x") as ColumnFilter] }
      const error = yield* Effect.flip(openTokenCache(path, filtered))
      expect(error.reason).toContain("other filters")
      expect(error.message).toContain(path)
    }))
})
