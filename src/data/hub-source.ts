// Why this file exists: a FineWeb run names a dataset, a revision and some shards; this file
// turns that into a DocumentSource. It lists the dataset through the ShardStore, picks the
// shards, and then either downloads them (held against eviction for as long as the source
// lives) or reads them remotely by byte ranges, optionally through the token cache. Filters
// are checked against the dataset's known columns before anything is downloaded.
import { Effect, Layer, type Scope } from "effect"
import { type DatasetDescriptor, DEFAULT_REVISION, parseShardSelection, resolveDataset } from "./datasets.ts"
import {
  checkSplitOptions,
  DocumentSource,
  type DocumentSourceShape,
  makeDocumentSource,
  openParquetStore,
  type SplitOptions
} from "./document-source.ts"
import { type DataError, type HubError, InvalidDataOption } from "./errors.ts"
import { type ColumnFilter, formatFilter } from "./filters.ts"
import type { ParquetLocation, RemoteParquet } from "./parquet-reader.ts"
import { type DownloadProgress, type HubOptions, hubOptions, readRange, remoteSize } from "./hub.ts"
import { type ShardInfo, type ShardListing, ShardStore, type ShardStoreShape } from "./shard-store.ts"
import { type BuildProgress, openTokenCacheStore } from "./token-cache.ts"
import type { DocumentTokenizerShape } from "./tokenize-pool.ts"

/** Download shards to the cache and read them locally, or read them on the server by ranges. */
export type HubReadMode = "download" | "stream"

export interface HubSourceOptions extends SplitOptions {
  /** A known dataset name ("fineweb-10BT"), "owner/name" or "owner/name:folder". */
  readonly dataset: string
  /** Branch, tag or commit (default "main"; pin a commit to reproduce a run). */
  readonly revision?: string
  /** "all" or indexes and ranges such as "0-2,5" (default "all"). */
  readonly shards?: string
  readonly mode?: HubReadMode
  readonly filters?: ReadonlyArray<ColumnFilter>
  /** Tokenise each shard once into this directory and read tokens from there afterwards. */
  readonly tokenCache?: {
    readonly dir: string
    readonly tokenizer: DocumentTokenizerShape
    readonly verify?: boolean
  }
  /** Progress: a line of news, bytes of a shard arriving, a token cache being built. */
  readonly report?: HubSourceReporter
}

export interface HubSourceReporter {
  readonly note?: (line: string) => void
  readonly download?: (shard: ShardInfo, progress: DownloadProgress) => void
  readonly downloaded?: (shard: ShardInfo) => void
  readonly build?: (shardName: string, progress: BuildProgress) => void
}

/** Filters that name columns the dataset does not have: caught before any download. */
export const checkFiltersAgainst = (
  descriptor: DatasetDescriptor | undefined,
  filters: ReadonlyArray<ColumnFilter>
): InvalidDataOption | undefined => {
  if (descriptor === undefined) return undefined
  const unknown = filters.find((f) => !descriptor.columns.includes(f.column))
  return unknown === undefined ? undefined : new InvalidDataOption({
    option: "data.filters",
    value: formatFilter(unknown),
    expected: `a filter on a column of ${descriptor.name}: ${descriptor.columns.join(", ")}`
  })
}

/** The dataset's listing and the chosen shards, or why they cannot be chosen. */
export const selectShards = (
  store: ShardStoreShape,
  options: Pick<HubSourceOptions, "dataset" | "revision" | "shards" | "filters">
): Effect.Effect<{ readonly listing: ShardListing; readonly chosen: ReadonlyArray<ShardInfo>; readonly descriptor: DatasetDescriptor | undefined }, DataError> =>
  Effect.gen(function* () {
    const resolved = resolveDataset(options.dataset, options.revision ?? DEFAULT_REVISION)
    if (resolved instanceof InvalidDataOption) return yield* resolved
    const badFilter = checkFiltersAgainst(resolved.descriptor, options.filters ?? [])
    if (badFilter !== undefined) return yield* badFilter
    const listing = yield* store.list(resolved.location)
    if (listing.shards.length === 0) {
      return yield* new InvalidDataOption({
        option: "data.dataset",
        value: options.dataset,
        expected: `a dataset with parquet files under ${resolved.location.repo}/${resolved.location.prefix || "(root)"} at ${resolved.location.revision}`
      })
    }
    const indexes = parseShardSelection(options.shards ?? "all", listing.shards.length)
    if (indexes instanceof InvalidDataOption) return yield* indexes
    return { listing, chosen: indexes.map((i) => listing.shards[i]), descriptor: resolved.descriptor }
  })

/** A remote shard as the parquet reader wants it: reads go through the store (cache first, then HTTP with retries). */
export const remoteParquet = (store: ShardStoreShape, shard: ShardInfo): RemoteParquet => ({
  key: shard.url,
  name: shard.url,
  size: shard.size,
  read: (start, end) => store.readRange(shard, start, end)
})

/**
 * Any parquet file on a web server that honours Range (a Hub resolve URL, an S3 object, a
 * mirror), read by ranges: its size comes from a one-byte request, every read is retried.
 * Give it to `DocumentSource.parquet({ paths: [...] })` like a local path.
 */
export const remoteParquetAt = (url: string, options: Partial<HubOptions> = {}): Effect.Effect<RemoteParquet, HubError> => {
  const hub = hubOptions(options)
  return Effect.map(remoteSize(url, hub), (size) => ({ key: url, name: url, size, read: (start, end) => readRange(url, start, end, hub) }))
}

/**
 * The document source for a Hub dataset. In download mode the chosen shards are fetched
 * (missing ones only) and held until the scope closes; in stream mode nothing is stored.
 * With a token cache, each shard is tokenised once and later runs read only the cache.
 */
export const openHubSource = (options: HubSourceOptions): Effect.Effect<DocumentSourceShape, DataError, ShardStore | Scope.Scope> =>
  Effect.gen(function* () {
    yield* checkSplitOptions(options)
    const store = yield* ShardStore
    const { listing, chosen } = yield* selectShards(store, options)
    const note = options.report?.note ?? (() => undefined)
    if (listing.offline) note(`offline: using the saved listing of ${options.dataset}`)
    const filters = options.filters ?? []

    const fetch = (shard: ShardInfo): Effect.Effect<ParquetLocation, DataError, Scope.Scope> =>
      options.mode === "stream"
        ? Effect.succeed(remoteParquet(store, shard))
        : Effect.tap(store.acquire(shard, { onProgress: options.report?.download }), () => options.report?.downloaded?.(shard))

    const cache = options.tokenCache
    if (cache === undefined) {
      const locations = yield* Effect.forEach(chosen, fetch)
      return makeDocumentSource(yield* openParquetStore({ paths: locations, filters }), options)
    }
    // With a token cache, a shard is fetched only when its cache is missing or invalid.
    const cached = yield* openTokenCacheStore({
      paths: chosen.map((shard) => ({ name: shard.path, open: fetch(shard) })),
      sha256s: chosen.map((shard) => shard.sha256),
      filters,
      dir: cache.dir,
      tokenizer: cache.tokenizer,
      verify: cache.verify,
      onBuild: (path, reason) => note(`token cache ${path}: ${reason === "missing" ? "building" : `rebuilding (${reason})`}`),
      onProgress: (i, progress) => options.report?.build?.(chosen[i].path, progress)
    })
    return makeDocumentSource(cached, options)
  })

/** `openHubSource` as a layer; it needs a ShardStore (ShardStore.live for the Hub). */
export const hubSourceLayer = (options: HubSourceOptions): Layer.Layer<DocumentSource, DataError, ShardStore> =>
  Layer.scoped(DocumentSource, openHubSource(options))
