// Why this file exists: the pipeline config's `data` section decides where documents come
// from (the shipped corpus, local parquet files, or a Hub dataset such as FineWeb), how they
// are filtered, cached and tokenised. This file holds that section's fields (so the config
// Schema can include them as they are) and the one function that turns a decoded section into
// the two services the packer needs: a DocumentSource and a DocumentTokenizer.
import { Effect, Layer, Schema } from "effect"
import { homedir } from "node:os"
import { join } from "node:path"
import type { TokenizerName } from "../tokenizer/encoding.ts"
import { datasets } from "./datasets.ts"
import {
  checkSplitOptions,
  DocumentSource,
  makeDocumentSource,
  openParquetStore,
  shippedCorpusPath,
  type Split
} from "./document-source.ts"
import { type DataError, InvalidDataOption } from "./errors.ts"
import { parseFilter, parseFilters } from "./filters.ts"
import { DEFAULT_ENDPOINT } from "./hub.ts"
import { type HubSourceReporter, openHubSource } from "./hub-source.ts"
import { makeProgressBar, type ProgressBar } from "./progress.ts"
import { makeLiveShardStore, ShardStore } from "./shard-store.ts"
import { openTokenCacheStore } from "./token-cache.ts"
import { DocumentTokenizer } from "./tokenize-pool.ts"

const opt = <A, I, R>(schema: Schema.Schema<A, I, R>, value: NoInfer<A>) =>
  Schema.optionalWith(schema, { default: () => value, exact: true })

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())
const Filter = Schema.String.pipe(
  Schema.filter((text) => {
    const parsed = parseFilter(text)
    return parsed instanceof InvalidDataOption ? parsed.message : true
  })
)

/**
 * The fields of the config's `data` section, with their defaults. The config Schema includes
 * them as `Schema.Struct(DataSectionFields)`; every field is optional in a config file.
 */
export const DataSectionFields = {
  /** "shipped": data/corpus.parquet; "parquet": local files (`paths`); "fineweb": a Hub dataset (`dataset`). */
  source: opt(Schema.Literal("shipped", "parquet", "fineweb"), "shipped"),
  /** One parquet file: replaces the shipped corpus, or the single file of source "parquet". */
  path: Schema.optionalWith(Schema.String, { exact: true }),
  /** Local parquet files for source "parquet", in order (the cursor's shard indexes them). */
  paths: opt(Schema.Array(Schema.String), []),
  /** Hub dataset: a known name (fineweb-10BT, fineweb-edu-10BT, …), "owner/name" or "owner/name:folder". */
  dataset: opt(Schema.String, "fineweb-10BT"),
  /** Branch, tag or commit of the dataset; pin a commit to reproduce a run exactly. */
  revision: opt(Schema.String.pipe(Schema.minLength(1)), "main"),
  /** The Hub or a mirror. */
  endpoint: opt(Schema.String.pipe(Schema.minLength(1)), DEFAULT_ENDPOINT),
  /** Which shards of the listing: "all", or indexes and ranges such as "0-2,5". */
  shards: opt(Schema.String, "all"),
  /** "download": fetch shards into the cache first; "stream": read them on the server by byte ranges. */
  mode: opt(Schema.Literal("download", "stream"), "download"),
  /** Cache root for shards, listings and token caches ("": $GLASSBOX_CACHE or ~/.cache/glassbox). */
  cache_dir: opt(Schema.String, ""),
  /** Cap on cached shards in GB; least recently used shards no job holds are evicted (0: no cap). */
  cache_max_gb: opt(Schema.Number.pipe(Schema.nonNegative()), 0),
  /** Row filters, e.g. ["language_score >= 0.65"] or, for fineweb-edu, ["int_score >= 3"]. */
  filters: opt(Schema.Array(Filter), []),
  /** Tokenizer worker threads (0: tokenise on the training thread). */
  workers: opt(NonNegativeInt, 1),
  /** Batches prepared ahead of the trainer. */
  prefetch: opt(NonNegativeInt, 4),
  /** Tokenise each shard once into <cache_dir>/tokens and read tokens on later runs and epochs. */
  token_cache: opt(Schema.Boolean, false),
  /** Share of documents (by id hash) held out for validation. */
  val_fraction: opt(Schema.Number.pipe(Schema.between(0, 1)), 0.01)
}

export const DataSection = Schema.Struct(DataSectionFields)
export type DataConfig = typeof DataSection.Type

/** The cache root: `cache_dir`, else $GLASSBOX_CACHE, else $XDG_CACHE_HOME/glassbox or ~/.cache/glassbox. */
export const cacheRoot = (configured: string, env: NodeJS.ProcessEnv = process.env): string =>
  configured !== "" ? configured
  : env.GLASSBOX_CACHE !== undefined && env.GLASSBOX_CACHE !== "" ? env.GLASSBOX_CACHE
  : join(env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== "" ? env.XDG_CACHE_HOME : join(homedir(), ".cache"), "glassbox")

/** Progress of downloads and token-cache builds as bars on `out` (stderr by default). */
export const progressReporter = (out: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr): HubSourceReporter => {
  const bars = new Map<string, ProgressBar>()
  const barFor = (key: string, make: () => ProgressBar) => {
    let bar = bars.get(key)
    if (bar === undefined) {
      bar = make()
      bars.set(key, bar)
    }
    return bar
  }
  return {
    note: (line) => out.write(`${line}\n`),
    download: (shard, p) =>
      barFor(`get ${shard.path}`, () => makeProgressBar({ label: `download ${shard.path}`, total: shard.size, unit: "bytes", out })).update(p.received),
    downloaded: (shard) => {
      const bar = bars.get(`get ${shard.path}`)
      if (bar === undefined) out.write(`${shard.path}: in the cache\n`)
      else bar.finish()
      bars.delete(`get ${shard.path}`)
    },
    build: (name, p) => {
      const bar = barFor(`tok ${name}`, () => makeProgressBar({ label: `tokenise ${name}`, total: p.rowGroups, unit: "count", noun: "row groups", out }))
      bar.update(p.rowGroup + 1)
      if (p.rowGroup + 1 === p.rowGroups) {
        bar.finish()
        bars.delete(`tok ${name}`)
      }
    }
  }
}

export interface DataLayerOptions {
  /** The run's tokenizer (config `tokenizer`). */
  readonly tokenizer: TokenizerName
  /** Which side of the split the source serves (default "train"; `withSplit("val")` gives the other). */
  readonly split?: Split
  /** Where progress goes (default stderr); pass `{ note() {} }`-like silence in tests. */
  readonly report?: HubSourceReporter
  readonly env?: NodeJS.ProcessEnv
}

/**
 * The data services a `data` section asks for. DocumentTokenizer is a pool of `workers`
 * threads (inline when 0); DocumentSource reads the chosen source, through the token cache
 * when `token_cache` is on. Building the layer lists, downloads and tokenises as needed, with
 * progress on stderr, so a pipeline's first step finds everything in place.
 */
export const dataLayer = (
  data: DataConfig,
  options: DataLayerOptions
): Layer.Layer<DocumentSource | DocumentTokenizer, DataError> => {
  const tokenizerLayer = DocumentTokenizer.layer({ tokenizer: options.tokenizer, workers: data.workers })
  const sourceLayer = Layer.scoped(
    DocumentSource,
    Effect.gen(function* () {
      const split = { split: options.split ?? "train", valFraction: data.val_fraction }
      yield* checkSplitOptions(split)
      const filters = parseFilters(data.filters)
      if (filters instanceof InvalidDataOption) return yield* filters
      const report = options.report ?? progressReporter()
      const root = cacheRoot(data.cache_dir, options.env)
      const pool = yield* DocumentTokenizer
      const tokenCache = data.token_cache ? { dir: join(root, "tokens"), tokenizer: pool } : undefined

      if (data.source === "fineweb") {
        const store = yield* makeLiveShardStore({
          cacheDir: root,
          maxBytes: data.cache_max_gb * 1e9,
          endpoint: data.endpoint,
          token: (options.env ?? process.env).HF_TOKEN || undefined
        })
        return yield* openHubSource({
          ...split,
          dataset: data.dataset,
          revision: data.revision,
          shards: data.shards,
          mode: data.mode,
          filters,
          tokenCache,
          report
        }).pipe(Effect.provideService(ShardStore, store))
      }

      const paths = data.source === "shipped"
        ? [data.path ?? shippedCorpusPath]
        : data.paths.length > 0 ? data.paths : data.path !== undefined ? [data.path] : []
      if (paths.length === 0) {
        return yield* new InvalidDataOption({ option: "data.paths", value: [], expected: "at least one parquet file for source \"parquet\"" })
      }
      const store = tokenCache === undefined
        ? yield* openParquetStore({ paths, filters })
        : yield* openTokenCacheStore({
          paths,
          filters,
          dir: tokenCache.dir,
          tokenizer: tokenCache.tokenizer,
          onBuild: (path, reason) => report.note?.(`token cache ${path}: ${reason === "missing" ? "building" : `rebuilding (${reason})`}`),
          onProgress: (i, p) => report.build?.(paths[i], p)
        })
      return makeDocumentSource(store, split)
    })
  )
  return Layer.provideMerge(sourceLayer, tokenizerLayer)
}

/** The names `data.dataset` accepts without a repository, for help texts. */
export const knownDatasetNames: ReadonlyArray<string> = datasets.map((d) => d.name)
