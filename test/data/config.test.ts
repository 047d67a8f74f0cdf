// Why this file exists: a pipeline builds its data services from the config's `data`
// section alone, so every source ("shipped", "parquet", "fineweb") must come out of
// `dataLayer` ready to use, with workers and the token cache changing nothing about the
// batches, and a bad section must fail with the name of the field to fix.
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Schema, Stream } from "effect"
import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { cacheRoot, type DataConfig, dataLayer, DataSection } from "../../src/data/config.ts"
import { DocumentSource, shippedCorpusPath } from "../../src/data/document-source.ts"
import { type Batch, batches, batchesFromServices } from "../../src/data/packer.ts"
import { makeEncoding, Tokenizer } from "../../src/tokenizer/tokenizer.ts"
import { tempDir } from "./fixtures.ts"
import { hubServer } from "./hub-server.ts"

const decode = Schema.decodeUnknownEither(DataSection)
const section = (fields: Record<string, unknown>): DataConfig => Either.getOrThrow(decode(fields))
const quiet = { note: () => undefined }
const gpt2 = makeEncoding("gpt2")

const take = <E, R>(stream: Stream.Stream<Batch, E, R>, n: number) =>
  Effect.map(Stream.runCollect(Stream.take(stream, n)), (c) => Chunk.toReadonlyArray(c).map((b) => [Array.from(b.ids), b.cursor]))

/** The first batches from the plain shipped corpus, single-threaded: what every variant must match. */
const reference = (n: number) =>
  Effect.gen(function* () {
    const source = yield* DocumentSource
    return yield* take(batches(gpt2, source, { batch: 4, context: 64, cursor: source.start(5) }), n)
  }).pipe(Effect.provide(DocumentSource.shipped({ split: "train", valFraction: 0.01 })))

const fromLayer = (data: DataConfig, n: number) =>
  Effect.gen(function* () {
    const source = yield* DocumentSource
    return yield* take(batchesFromServices({ batch: 4, context: 64, cursor: source.start(5), prefetch: data.prefetch }), n)
  }).pipe(Effect.provide(Layer.merge(dataLayer(data, { tokenizer: "gpt2", report: quiet, env: {} }), Tokenizer.layer("gpt2"))))

describe("the data section", () => {
  it("has defaults for every field and names a bad one", () => {
    expect(section({})).toEqual({
      source: "shipped", paths: [], dataset: "fineweb-10BT", revision: "main", endpoint: "https://huggingface.co",
      shards: "all", mode: "download", cache_dir: "", cache_max_gb: 0, filters: [], workers: 1, prefetch: 4,
      token_cache: false, val_fraction: 0.01
    })
    expect(section({ filters: ["int_score >= 3"] }).filters).toEqual(["int_score >= 3"])
    const bad = decode({ filters: ["int_score >>= 3"] })
    expect(Either.isLeft(bad) && String(bad.left)).toContain("filters")
    expect(Either.isLeft(decode({ mode: "fast" }))).toBe(true)
    expect(Either.isLeft(decode({ workers: -1 }))).toBe(true)
    expect(cacheRoot("", { GLASSBOX_CACHE: "/c" })).toBe("/c")
    expect(cacheRoot("", { XDG_CACHE_HOME: "/x" })).toBe(join("/x", "glassbox"))
    expect(cacheRoot("/mine", { GLASSBOX_CACHE: "/c" })).toBe("/mine")
  })
})

describe("dataLayer", () => {
  it.scopedLive("shipped, with two workers and the token cache, gives the plain single-threaded batches", () =>
    Effect.gen(function* () {
      const expected = yield* reference(12)
      const cacheDir = yield* tempDir
      const data = section({ workers: 2, token_cache: true, cache_dir: cacheDir })
      expect(yield* fromLayer(data, 12)).toEqual(expected)
      expect(yield* fromLayer(section({ workers: 0, prefetch: 0 }), 12)).toEqual(expected)
    }))

  it.scopedLive("fineweb: lists, downloads and reads a Hub dataset from the configured endpoint", () =>
    Effect.gen(function* () {
      const expected = yield* reference(8)
      const server = yield* hubServer({ repos: { "HuggingFaceFW/fineweb": { "sample/10BT/000_00000.parquet": readFileSync(shippedCorpusPath) } } })
      const cacheDir = yield* tempDir
      const data = section({ source: "fineweb", dataset: "fineweb-10BT", endpoint: server.endpoint, cache_dir: cacheDir, shards: "0", workers: 1 })
      expect(yield* fromLayer(data, 8)).toEqual(expected)
      const streamed = section({ source: "fineweb", endpoint: server.endpoint, cache_dir: cacheDir, mode: "stream", workers: 0 })
      expect(yield* fromLayer(streamed, 8)).toEqual(expected)
    }))

  it.scopedLive("fineweb with the token cache: a prepared shard is not downloaded again, even when deleted from the cache", () =>
    Effect.gen(function* () {
      const expected = yield* reference(6)
      const corpus = readFileSync(shippedCorpusPath)
      const path = "sample/10BT/000_00000.parquet"
      const cacheDir = yield* tempDir
      const first = yield* hubServer({ repos: { "HuggingFaceFW/fineweb": { [path]: corpus } } })
      const data = (endpoint: string) => section({ source: "fineweb", endpoint, cache_dir: cacheDir, token_cache: true, workers: 1 })
      expect(yield* fromLayer(data(first.endpoint), 6)).toEqual(expected)
      rmSync(join(cacheDir, "shards"), { recursive: true })
      // The file is gone from the server too: only the listing and the token cache remain.
      const second = yield* hubServer({ repos: { "HuggingFaceFW/fineweb": { [path]: corpus } }, faults: { [path]: { missing: true } } })
      expect(yield* fromLayer(data(second.endpoint), 6)).toEqual(expected)
      expect(second.log.every((r) => r.url.startsWith("/api/"))).toBe(true)
    }))

  it.scopedLive("a parquet source without paths, or a bad shard selection, fails naming the field", () =>
    Effect.gen(function* () {
      const noPaths = yield* Effect.flip(fromLayer(section({ source: "parquet", workers: 0 }), 1))
      expect(noPaths).toMatchObject({ _tag: "InvalidDataOption", option: "data.paths" })
      const server = yield* hubServer({ repos: { "HuggingFaceFW/fineweb": { "sample/10BT/000_00000.parquet": readFileSync(shippedCorpusPath) } } })
      const cacheDir = yield* tempDir
      const error = yield* Effect.flip(fromLayer(section({ source: "fineweb", endpoint: server.endpoint, cache_dir: cacheDir, shards: "3", workers: 0 }), 1))
      expect(error).toMatchObject({ _tag: "InvalidDataOption", option: "data.shards" })
    }))
})
