// Why this file exists: the `glassbox data` commands, as Effect programs the CLI wires to
// flags: `list` shows what a dataset holds and what is cached, `download` fetches shards
// into the cache with a progress bar, `prepare` tokenises shards into the token cache. Each
// program takes plain options and writes to the streams it is given, so tests run them
// against a local server and read the output.
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { basename, join } from "node:path"
import { makeEncoding, type TokenizerName } from "../tokenizer/tokenizer.ts"
import { cacheRoot, progressReporter } from "./config.ts"
import { datasets, DEFAULT_REVISION } from "./datasets.ts"
import { shippedCorpusPath } from "./document-source.ts"
import { type DataError, InvalidDataOption } from "./errors.ts"
import { parseFilters } from "./filters.ts"
import { DEFAULT_ENDPOINT } from "./hub.ts"
import { remoteParquet, selectShards } from "./hub-source.ts"
import type { ParquetLocation } from "./parquet-reader.ts"
import { formatBytes, formatCount, formatSeconds } from "./progress.ts"
import { makeLiveShardStore, type ShardStoreShape } from "./shard-store.ts"
import { type LazyParquet, openTokenCacheStore } from "./token-cache.ts"
import { inlineTokenizer, makeTokenizerPool } from "./tokenize-pool.ts"

type Out = NodeJS.WritableStream & { isTTY?: boolean }

/** Options every `glassbox data` command takes. */
export interface DataCommandOptions {
  /** --revision: branch, tag or commit (default main). */
  readonly revision?: string
  /** --endpoint: the Hub or a mirror (default https://huggingface.co). */
  readonly endpoint?: string
  /** --cache-dir: cache root (default $GLASSBOX_CACHE or ~/.cache/glassbox). */
  readonly cacheDir?: string
  /** --cache-max-gb: cap on cached shards (default 0: no cap). */
  readonly cacheMaxGb?: number
  /** Results go here (default stdout). */
  readonly out?: Out
  /** Progress bars and notes go here (default stderr). */
  readonly err?: Out
  readonly env?: NodeJS.ProcessEnv
}

const storeFor = (options: DataCommandOptions): Effect.Effect<ShardStoreShape> =>
  makeLiveShardStore({
    cacheDir: cacheRoot(options.cacheDir ?? "", options.env),
    maxBytes: (options.cacheMaxGb ?? 0) * 1e9,
    endpoint: options.endpoint ?? DEFAULT_ENDPOINT,
    token: (options.env ?? process.env).HF_TOKEN || undefined
  })

const writeLine = (out: Out | undefined, line: string) => Effect.sync(() => void (out ?? process.stdout).write(`${line}\n`))

/** `glassbox data list` without a dataset: the datasets known by name. */
export const dataDatasets = (options: Pick<DataCommandOptions, "out"> = {}): Effect.Effect<void> =>
  Effect.forEach(datasets, (d) => writeLine(options.out, `${d.name.padEnd(20)} ${d.repo}:${d.prefix}  ${d.description}`), { discard: true })

/**
 * `glassbox data list <dataset> [--json]`: every shard with its index, size and whether it is
 * cached. With --json, one JSON object per shard (index, path, size, sha256, cached, url).
 */
export const dataList = (dataset: string, options: DataCommandOptions & { readonly json?: boolean } = {}): Effect.Effect<void, DataError> =>
  Effect.gen(function* () {
    const store = yield* storeFor(options)
    const { listing } = yield* selectShards(store, { dataset, revision: options.revision ?? DEFAULT_REVISION })
    const cached = new Set((yield* store.cached).map((c) => `${c.repo}/${c.path}`))
    const { location } = listing
    if (options.json === true) {
      yield* Effect.forEach(listing.shards, (s, index) =>
        writeLine(options.out, JSON.stringify({ index, path: s.path, size: s.size, sha256: s.sha256, cached: cached.has(`${s.repo}/${s.path}`), url: s.url })),
      { discard: true })
      return
    }
    const total = listing.shards.reduce((n, s) => n + s.size, 0)
    const commit = listing.shards[0]?.revision ?? location.revision
    yield* writeLine(options.out,
      `${location.repo}:${location.prefix || "(root)"} at ${location.revision}${commit !== location.revision ? ` (${commit.slice(0, 12)})` : ""}: ` +
        `${listing.shards.length} shards, ${formatBytes(total)}${listing.offline ? " (offline: saved listing)" : ""}`)
    const width = String(listing.shards.length - 1).length
    yield* Effect.forEach(listing.shards, (s, i) =>
      writeLine(options.out, `${String(i).padStart(width)}  ${s.path}  ${formatBytes(s.size).padStart(8)}  ${cached.has(`${s.repo}/${s.path}`) ? "cached" : ""}`.trimEnd()),
    { discard: true })
  })

/** `glassbox data download <dataset> --shards 0-2`: fetch the chosen shards into the cache (missing ones only). */
export const dataDownload = (
  dataset: string,
  options: DataCommandOptions & { readonly shards?: string } = {}
): Effect.Effect<ReadonlyArray<string>, DataError> =>
  Effect.gen(function* () {
    const store = yield* storeFor(options)
    const { chosen, listing } = yield* selectShards(store, { dataset, revision: options.revision, shards: options.shards ?? "all" })
    const report = progressReporter(options.err ?? process.stderr)
    if (listing.offline) report.note?.(`offline: using the saved listing of ${dataset}`)
    const started = performance.now()
    const paths: string[] = []
    for (const shard of chosen) {
      paths.push(yield* store.ensure(shard, { onProgress: report.download }))
      report.downloaded?.(shard)
    }
    const bytes = chosen.reduce((n, s) => n + s.size, 0)
    yield* writeLine(options.out, `${chosen.length} shard(s), ${formatBytes(bytes)}, ready in ${formatSeconds((performance.now() - started) / 1000)}:`)
    yield* Effect.forEach(paths, (p) => writeLine(options.out, `  ${p}`), { discard: true })
    return paths
  })

export interface PrepareOptions extends DataCommandOptions {
  /** --shards (Hub datasets): "all" or ranges such as "0-2". */
  readonly shards?: string
  /** --tokenizer (default gpt2). */
  readonly tokenizer?: TokenizerName
  /** --workers: tokenizer threads (default 1; 0 tokenises on the main thread). */
  readonly workers?: number
  /** --filter, repeatable: e.g. "int_score >= 3". */
  readonly filters?: ReadonlyArray<string>
  /** --stream: read Hub shards by range requests instead of downloading them first. */
  readonly stream?: boolean
}

/**
 * `glassbox data prepare <dataset|shipped|file.parquet>`: tokenise the chosen shards into the
 * token cache (under <cache>/tokens), downloading them first unless --stream. Caches that
 * already exist and verify are kept. Prints tokens, documents and throughput.
 */
export const dataPrepare = (dataset: string, options: PrepareOptions = {}): Effect.Effect<void, DataError> =>
  Effect.scoped(Effect.gen(function* () {
    const filters = parseFilters(options.filters ?? [], "--filter")
    if (filters instanceof InvalidDataOption) return yield* filters
    const tokenizerName = options.tokenizer ?? "gpt2"
    const workers = options.workers ?? 1
    const report = progressReporter(options.err ?? process.stderr)
    const root = cacheRoot(options.cacheDir ?? "", options.env)

    let paths: Array<ParquetLocation | LazyParquet>
    let sha256s: Array<string | undefined> = []
    if (dataset === "shipped" || (dataset.endsWith(".parquet") && existsSync(dataset))) {
      paths = [dataset === "shipped" ? shippedCorpusPath : dataset]
    } else {
      const store = yield* storeFor(options)
      const { chosen } = yield* selectShards(store, { dataset, revision: options.revision, shards: options.shards ?? "all", filters })
      sha256s = chosen.map((s) => s.sha256)
      // Fetched only for shards whose token cache is missing or invalid.
      paths = chosen.map((shard) => ({
        name: shard.path,
        open: options.stream === true
          ? Effect.succeed(remoteParquet(store, shard))
          : Effect.tap(store.acquire(shard, { onProgress: report.download }), () => report.downloaded?.(shard))
      }))
    }

    const tokenizer = workers > 0
      ? yield* makeTokenizerPool({ tokenizer: tokenizerName, workers })
      : inlineTokenizer(makeEncoding(tokenizerName))
    const started = performance.now()
    const names = paths.map((p) => (typeof p === "string" ? basename(p) : p.name))
    const store = yield* openTokenCacheStore({
      paths,
      sha256s,
      filters,
      dir: join(root, "tokens"),
      tokenizer,
      onBuild: (path, reason) => report.note?.(`${basename(path)}: ${reason === "missing" ? "building" : `rebuilding (${reason})`}`),
      onProgress: (i, p) => report.build?.(names[i], p)
    })
    const seconds = (performance.now() - started) / 1000
    const tokens = store.files.reduce((n, f) => n + f.header.tokenCount, 0)
    const docs = store.files.reduce((n, f) => n + f.rowGroupDocuments.reduce((a, b) => a + b, 0), 0)
    yield* writeLine(options.out,
      `${store.files.length} token cache(s), ${formatCount(tokens)} ${tokenizerName} tokens in ${formatCount(docs)} documents, ready in ${formatSeconds(seconds)}:`)
    yield* Effect.forEach(store.files, (f) => writeLine(options.out, `  ${f.path}`), { discard: true })
  }))
