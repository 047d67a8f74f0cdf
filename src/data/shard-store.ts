// Why this file exists: a training run needs FineWeb shards as local files it can read at
// will, downloaded once, verified, and kept within a disk budget. `ShardStore` is that
// cache: `list` says what a dataset holds, `ensure` makes one shard a verified local file,
// `acquire` does the same and holds the shard against eviction while a job reads it, and
// `readRange` reads part of a shard without downloading it (streaming mode).
//
// Two layers: `ShardStore.live` talks to the Hub (or a mirror) and keeps files on disk;
// `ShardStore.memory` serves byte arrays held in memory, for tests and examples. Both pass
// the same conformance suite (test/data/shard-store.test.ts).
//
// On disk (`cacheDir`):
//   listings/<repo>/<revision>/<folder>.json   the last listing, used when the network is down
//   shards/<repo>/<path>                       verified shards, named as in the repository
//   shards/<repo>/<path>.meta.json             { sha256, size, revision, url, lastUsed }
//   shards/<repo>/<path>.part                  a download in progress (resumed by the next run)
//   shards/<repo>/<path>.lease-<pid>           process <pid> is reading this shard: never evict it
//
// Holding shards: each process counts its own holders in memory and keeps one lease file per
// shard while the count is above zero. Eviction skips a shard with a count here or a lease
// file whose process is alive (`kill(pid, 0)`); a lease left by a process that died is stale,
// ignored and removed. Only one process should download into a cache directory at a time
// (two downloaders of the same shard would share its .part file; the checksum catches it).
import { Context, Effect, Layer, Schema, type Scope } from "effect"
import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { basename, dirname, join, relative, sep } from "node:path"
import type { DatasetLocation } from "./datasets.ts"
import { type HubError, ShardCacheError, ShardCacheFull, ShardNotFound } from "./errors.ts"
import {
  describeError,
  type DownloadProgress,
  downloadFile,
  gitBlobSha1Of,
  type HubOptions,
  hubOptions,
  listFiles,
  readRange,
  resolveCommit,
  resolveUrl
} from "./hub.ts"

/** One parquet file of a dataset, as the listing describes it. */
export interface ShardInfo {
  readonly repo: string
  /** The commit the listing resolved the revision to (or the revision itself when it could not). */
  readonly revision: string
  /** Path inside the repository. */
  readonly path: string
  readonly size: number
  /** sha256 of the content (the Hub's LFS object id); undefined when the Hub does not give one. */
  readonly sha256: string | undefined
  /** For a file kept in git rather than LFS: its git blob id (sha1 of "blob <size>\0" + bytes). */
  readonly gitBlobSha1?: string
  /** Where the bytes are downloaded from. */
  readonly url: string
}

export interface ShardListing {
  readonly location: DatasetLocation
  /** The shards under the folder, parquet files only, sorted by path: a shard's index is its place here. */
  readonly shards: ReadonlyArray<ShardInfo>
  /** True when the network failed and this is the listing saved by an earlier run. */
  readonly offline: boolean
}

export interface CachedShard {
  readonly repo: string
  readonly path: string
  readonly localPath: string
  readonly size: number
  readonly sha256: string | undefined
  /** Milliseconds since the epoch of the last `ensure` or `acquire`. */
  readonly lastUsed: number
  /** Some running job holds it; eviction skips it. */
  readonly held: boolean
}

export interface EnsureOptions {
  /** Called as bytes arrive (not called when the shard is already cached). */
  readonly onProgress?: (shard: ShardInfo, progress: DownloadProgress) => void
}

export interface ShardStoreShape {
  readonly list: (location: DatasetLocation) => Effect.Effect<ShardListing, HubError>
  /** The shard as a verified local file (downloaded if missing), returned as its path. */
  readonly ensure: (shard: ShardInfo, options?: EnsureOptions) => Effect.Effect<string, HubError>
  /** `ensure`, and hold the shard against eviction until the scope closes. */
  readonly acquire: (shard: ShardInfo, options?: EnsureOptions) => Effect.Effect<string, HubError, Scope.Scope>
  /** Bytes [start, end) of the shard, from the cache when it is there, else from the network. */
  readonly readRange: (shard: ShardInfo, start: number, end: number) => Effect.Effect<Uint8Array, HubError>
  /** What the cache holds now. */
  readonly cached: Effect.Effect<ReadonlyArray<CachedShard>, HubError>
}

// ---------------------------------------------------------------------------------------
// Eviction, as a pure plan.

export interface EvictionCandidate {
  readonly key: string
  readonly size: number
  readonly lastUsed: number
  readonly held: boolean
}

/**
 * Which shards to delete so that `incoming` more bytes fit under `capBytes`: least recently
 * used first, never a held one. `fits` is false when even deleting every unheld shard is
 * not enough. A cap of 0 or less means no cap.
 */
export const planEviction = (
  entries: ReadonlyArray<EvictionCandidate>,
  capBytes: number,
  incoming: number
): { readonly evict: ReadonlyArray<string>; readonly fits: boolean; readonly heldBytes: number } => {
  const heldBytes = entries.filter((e) => e.held).reduce((n, e) => n + e.size, 0)
  if (capBytes <= 0) return { evict: [], fits: true, heldBytes }
  let total = entries.reduce((n, e) => n + e.size, 0) + incoming
  const evict: string[] = []
  const oldestFirst = entries.filter((e) => !e.held).sort((a, b) => a.lastUsed - b.lastUsed || (a.key < b.key ? -1 : 1))
  for (const entry of oldestFirst) {
    if (total <= capBytes) break
    evict.push(entry.key)
    total -= entry.size
  }
  return { evict, fits: total <= capBytes, heldBytes }
}

// ---------------------------------------------------------------------------------------
// The live layer.

export interface ShardStoreOptions extends Partial<HubOptions> {
  /** Root of the cache. */
  readonly cacheDir: string
  /** Size cap in bytes for verified shards (0: no cap). */
  readonly maxBytes?: number
}

const ShardMeta = Schema.Struct({
  sha256: Schema.optional(Schema.String),
  size: Schema.Number,
  revision: Schema.String,
  url: Schema.String,
  lastUsed: Schema.Number
})
type ShardMeta = typeof ShardMeta.Type

const SavedListing = Schema.Struct({
  location: Schema.Struct({ repo: Schema.String, revision: Schema.String, prefix: Schema.String }),
  shards: Schema.Array(Schema.Struct({
    repo: Schema.String,
    revision: Schema.String,
    path: Schema.String,
    size: Schema.Number,
    sha256: Schema.UndefinedOr(Schema.String),
    gitBlobSha1: Schema.optional(Schema.String),
    url: Schema.String
  }))
})

const isParquet = (path: string) => path.toLowerCase().endsWith(".parquet")
/** A file-system-safe name for a revision or folder. */
const slug = (text: string) => (text === "" ? "_root" : text.replace(/[^\w.-]+/g, "_"))

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const attempt = <A>(path: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (error) => new ShardCacheError({ path, reason: describeError(error) }) })

/** Write `text` to `path` so that readers see the old or the new content, never half. */
const writeAtomic = (path: string, text: string) =>
  attempt(path, async () => {
    await mkdir(dirname(path), { recursive: true })
    const temp = `${path}.tmp-${process.pid}`
    await writeFile(temp, text)
    await rename(temp, path)
  })

export const makeLiveShardStore = (options: ShardStoreOptions): Effect.Effect<ShardStoreShape> =>
  Effect.gen(function* () {
    const hub = hubOptions(options)
    const cacheDir = options.cacheDir
    const maxBytes = options.maxBytes ?? 0
    const shardsDir = join(cacheDir, "shards")
    const localPathOf = (repo: string, path: string) => join(shardsDir, repo, ...path.split("/"))
    const keyOf = (shard: { repo: string; path: string }) => `${shard.repo}/${shard.path}`

    // In-process holders per shard key, and one lock per key so two fibers never download the same shard.
    const holders = new Map<string, number>()
    const locks = new Map<string, Effect.Semaphore>()
    const lockFor = (key: string) => {
      let lock = locks.get(key)
      if (lock === undefined) {
        lock = Effect.unsafeMakeSemaphore(1)
        locks.set(key, lock)
      }
      return lock
    }
    // Eviction reads and deletes across shards: one at a time.
    const evictionLock = yield* Effect.makeSemaphore(1)

    const readMeta = (localPath: string) =>
      Effect.promise(() => readFile(`${localPath}.meta.json`, "utf8").then((t) => JSON.parse(t) as unknown, () => undefined)).pipe(
        Effect.flatMap((json) => Schema.decodeUnknown(ShardMeta)(json)),
        Effect.option
      )

    /** Held by this process, or by another live process's lease file. Removes stale leases on the way. */
    const isHeld = (key: string, localPath: string) =>
      Effect.promise(async () => {
        if ((holders.get(key) ?? 0) > 0) return true
        const prefix = `${basename(localPath)}.lease-`
        const names = await readdir(dirname(localPath)).catch(() => [] as string[])
        let held = false
        for (const name of names) {
          if (!name.startsWith(prefix)) continue
          const pid = Number(name.slice(prefix.length))
          if (pid !== process.pid && Number.isInteger(pid) && isAlive(pid)) held = true
          else if (pid !== process.pid) await rm(join(dirname(localPath), name), { force: true })
        }
        return held
      })

    const walk = async (dir: string): Promise<string[]> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
      const found: string[] = []
      for (const entry of entries) {
        const full = join(dir, entry.name)
        if (entry.isDirectory()) found.push(...(await walk(full)))
        else if (entry.name.endsWith(".meta.json")) found.push(full.slice(0, -".meta.json".length))
      }
      return found
    }

    const cached: Effect.Effect<ReadonlyArray<CachedShard>, HubError> = Effect.gen(function* () {
      const paths = yield* Effect.promise(() => walk(shardsDir))
      const result: CachedShard[] = []
      for (const localPath of paths.sort()) {
        const meta = yield* readMeta(localPath)
        const size = yield* Effect.promise(() => stat(localPath).then((s) => s.size, () => -1))
        if (meta._tag === "None" || size < 0) continue
        const [repoOwner, repoName, ...rest] = relative(shardsDir, localPath).split(sep)
        const repo = `${repoOwner}/${repoName}`
        const path = rest.join("/")
        result.push({
          repo, path, localPath, size, sha256: meta.value.sha256, lastUsed: meta.value.lastUsed,
          held: yield* isHeld(keyOf({ repo, path }), localPath)
        })
      }
      return result
    })

    const remove = (localPath: string) =>
      attempt(localPath, async () => {
        await rm(localPath, { force: true })
        await rm(`${localPath}.meta.json`, { force: true })
      })

    /** Make room for `incoming` bytes, or fail with ShardCacheFull. */
    const makeRoom = (shard: ShardInfo) =>
      evictionLock.withPermits(1)(Effect.gen(function* () {
        if (maxBytes <= 0) return
        const entries = (yield* cached).filter((e) => keyOf(e) !== keyOf(shard))
        const plan = planEviction(entries.map((e) => ({ key: e.localPath, size: e.size, lastUsed: e.lastUsed, held: e.held })), maxBytes, shard.size)
        if (!plan.fits) {
          return yield* new ShardCacheFull({ shard: keyOf(shard), needed: shard.size, capBytes: maxBytes, heldBytes: plan.heldBytes })
        }
        yield* Effect.forEach(plan.evict, remove, { discard: true })
      }))

    const touch = (localPath: string, meta: ShardMeta) => writeAtomic(`${localPath}.meta.json`, JSON.stringify({ ...meta, lastUsed: Date.now() }))

    /** A cached copy that matches the listing, if there is one; adopts a verified file whose metadata was lost. */
    const findCached = (shard: ShardInfo, localPath: string) =>
      Effect.gen(function* () {
        const size = yield* Effect.promise(() => stat(localPath).then((s) => s.size, () => -1))
        if (size !== shard.size) return false
        const meta = yield* readMeta(localPath)
        if (meta._tag === "Some") {
          if ((shard.sha256 !== undefined && meta.value.sha256 !== shard.sha256) || meta.value.size !== shard.size) return false
          yield* touch(localPath, meta.value)
          return true
        }
        if (shard.sha256 === undefined && shard.gitBlobSha1 === undefined) return false
        const sha = yield* attempt(localPath, () => hashOf(localPath))
        if (shard.sha256 !== undefined && sha !== shard.sha256) return false
        if (shard.gitBlobSha1 !== undefined && (yield* attempt(localPath, () => gitBlobSha1Of(localPath))) !== shard.gitBlobSha1) return false
        yield* touch(localPath, { sha256: sha, size, revision: shard.revision, url: shard.url, lastUsed: 0 })
        return true
      })

    const ensure = (shard: ShardInfo, ensureOptions: EnsureOptions = {}): Effect.Effect<string, HubError> => {
      const localPath = localPathOf(shard.repo, shard.path)
      return lockFor(keyOf(shard)).withPermits(1)(Effect.gen(function* () {
        if (yield* findCached(shard, localPath)) return localPath
        yield* makeRoom(shard)
        yield* attempt(localPath, () => mkdir(dirname(localPath), { recursive: true }))
        const partPath = `${localPath}.part`
        const got = yield* downloadFile(
          { url: shard.url, partPath, size: shard.size, sha256: shard.sha256, ...(shard.gitBlobSha1 === undefined ? {} : { gitBlobSha1: shard.gitBlobSha1 }) },
          hub,
          (progress) => ensureOptions.onProgress?.(shard, progress)
        )
        yield* attempt(localPath, () => rename(partPath, localPath))
        yield* touch(localPath, { sha256: got.sha256, size: got.size, revision: shard.revision, url: shard.url, lastUsed: 0 })
        return localPath
      }))
    }

    const hold = (shard: ShardInfo, localPath: string) =>
      Effect.promise(async () => {
        const key = keyOf(shard)
        const count = (holders.get(key) ?? 0) + 1
        holders.set(key, count)
        if (count === 1) {
          await mkdir(dirname(localPath), { recursive: true }).catch(() => undefined)
          await writeFile(`${localPath}.lease-${process.pid}`, `${process.pid}\n`).catch(() => undefined)
        }
      })
    const release = (shard: ShardInfo, localPath: string) =>
      Effect.promise(async () => {
        const key = keyOf(shard)
        const count = (holders.get(key) ?? 1) - 1
        if (count > 0) return void holders.set(key, count)
        holders.delete(key)
        await rm(`${localPath}.lease-${process.pid}`, { force: true })
      })

    const acquire = (shard: ShardInfo, ensureOptions?: EnsureOptions) => {
      const localPath = localPathOf(shard.repo, shard.path)
      // Held before the download starts, so making room for a later shard cannot evict this one.
      return Effect.acquireRelease(hold(shard, localPath), () => release(shard, localPath)).pipe(
        Effect.zipRight(ensure(shard, ensureOptions))
      )
    }

    const listingPath = (location: DatasetLocation) =>
      join(cacheDir, "listings", location.repo, slug(location.revision), `${slug(location.prefix)}.json`)

    const savedListing = (location: DatasetLocation) =>
      Effect.promise(() => readFile(listingPath(location), "utf8").then((t) => JSON.parse(t) as unknown, () => undefined)).pipe(
        Effect.flatMap((json) => Schema.decodeUnknown(SavedListing)(json)),
        Effect.option
      )

    const list = (location: DatasetLocation): Effect.Effect<ShardListing, HubError> =>
      Effect.gen(function* () {
        const saved = yield* savedListing(location)
        // With a saved listing to fall back on, a dead network is not worth minutes of retries.
        const listHub = saved._tag === "Some" ? { ...hub, retries: Math.min(hub.retries, 2) } : hub
        const online = Effect.gen(function* () {
          const commit = yield* resolveCommit(location.repo, location.revision, listHub)
          const files = yield* listFiles({ ...location, revision: commit }, listHub)
          const shards: ShardInfo[] = files.filter((f) => isParquet(f.path)).map((f) => ({
            repo: location.repo,
            revision: commit,
            path: f.path,
            size: f.size,
            sha256: f.sha256,
            ...(f.gitBlobSha1 === undefined ? {} : { gitBlobSha1: f.gitBlobSha1 }),
            url: resolveUrl(hub.endpoint, location.repo, commit, f.path)
          }))
          const listing: ShardListing = { location, shards, offline: false }
          yield* writeAtomic(listingPath(location), JSON.stringify({ location, shards }, null, 1))
          return listing
        })
        return yield* online.pipe(
          Effect.catchTag("ShardUnavailable", (error) =>
            saved._tag === "Some"
              ? Effect.succeed<ShardListing>({ location, shards: saved.value.shards, offline: true })
              : Effect.fail(error))
        )
      })

    const readShardRange = (shard: ShardInfo, start: number, end: number) =>
      Effect.gen(function* () {
        const localPath = localPathOf(shard.repo, shard.path)
        const local = yield* Effect.promise(() => stat(localPath).then((s) => s.size === shard.size, () => false))
        if (local) {
          return yield* attempt(localPath, async () => {
            const handle = await open(localPath, "r")
            try {
              const out = new Uint8Array(end - start)
              await handle.read(out, 0, out.length, start)
              return out
            } finally {
              await handle.close()
            }
          })
        }
        return yield* readRange(shard.url, start, end, hub)
      })

    return { list, ensure, acquire, readRange: readShardRange, cached }
  })

/** sha256 (hex) of a file, streamed. */
export const hashOf = (path: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const hash = createHash("sha256")
    createReadStream(path).on("data", (c) => hash.update(c)).on("error", reject).on("end", () => resolve(hash.digest("hex")))
  })

// ---------------------------------------------------------------------------------------
// The in-memory layer.

/** Repositories as maps from path to bytes: `{ "owner/name": { "sample/a.parquet": bytes } }`. */
export type MemoryRepos = Readonly<Record<string, Readonly<Record<string, Uint8Array>>>>

/**
 * A store over bytes held in memory: listing filters by folder like the Hub, `ensure` writes
 * the shard into a temporary directory removed with the scope. There is no network, so
 * nothing is ever offline and nothing is evicted.
 */
export const makeMemoryShardStore = (repos: MemoryRepos, endpoint = "memory:"): Effect.Effect<ShardStoreShape, never, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(join(tmpdir(), "glassbox-shards-"))),
      (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
    )
    const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")
    const used = new Map<string, number>()
    const holders = new Map<string, number>()
    const bytesOf = (shard: ShardInfo) => Effect.suspend(() => {
      const bytes = repos[shard.repo]?.[shard.path]
      return bytes === undefined ? Effect.fail(new ShardNotFound({ url: shard.url })) : Effect.succeed(bytes)
    })
    const localPathOf = (shard: ShardInfo) => join(dir, shard.repo, ...shard.path.split("/"))
    const keyOf = (shard: { repo: string; path: string }) => `${shard.repo}/${shard.path}`

    const list = (location: DatasetLocation): Effect.Effect<ShardListing, HubError> =>
      Effect.suspend(() => {
        const files = repos[location.repo]
        const url = `${endpoint}/api/datasets/${location.repo}/tree/${location.revision}/${location.prefix}`
        if (files === undefined) return Effect.fail(new ShardNotFound({ url }))
        const inside = (path: string) => location.prefix === "" || path.startsWith(`${location.prefix}/`)
        const shards = Object.keys(files).filter((p) => inside(p) && isParquet(p)).sort().map((path): ShardInfo => ({
          repo: location.repo,
          revision: location.revision,
          path,
          size: files[path].length,
          sha256: sha(files[path]),
          url: `${endpoint}/datasets/${location.repo}/resolve/${location.revision}/${path}`
        }))
        return Effect.succeed({ location, shards, offline: false })
      })

    const ensure = (shard: ShardInfo) =>
      Effect.gen(function* () {
        const bytes = yield* bytesOf(shard)
        const localPath = localPathOf(shard)
        used.set(keyOf(shard), Date.now())
        yield* attempt(localPath, async () => {
          const present = await stat(localPath).then((s) => s.size === bytes.length, () => false)
          if (present) return
          await mkdir(dirname(localPath), { recursive: true })
          await writeFile(localPath, bytes)
        })
        return localPath
      })

    return {
      list,
      ensure,
      acquire: (shard) =>
        Effect.acquireRelease(
          Effect.sync(() => void holders.set(keyOf(shard), (holders.get(keyOf(shard)) ?? 0) + 1)),
          () => Effect.sync(() => void holders.set(keyOf(shard), (holders.get(keyOf(shard)) ?? 1) - 1))
        ).pipe(Effect.zipRight(ensure(shard))),
      readRange: (shard, start, end) => Effect.map(bytesOf(shard), (bytes) => bytes.slice(start, end)),
      cached: Effect.sync(() =>
        [...used.keys()].sort().map((key): CachedShard => {
          const [owner, name, ...rest] = key.split("/")
          const repo = `${owner}/${name}`
          const path = rest.join("/")
          const bytes = repos[repo][path]
          return {
            repo, path, localPath: join(dir, repo, ...rest), size: bytes.length, sha256: sha(bytes),
            lastUsed: used.get(key) ?? 0, held: (holders.get(key) ?? 0) > 0
          }
        })
      )
    }
  })

export class ShardStore extends Context.Tag("glassbox/ShardStore")<ShardStore, ShardStoreShape>() {
  /** Shards from the Hub (or `endpoint`), cached under `cacheDir`; `HF_TOKEN` is used when set. */
  static readonly live = (options: ShardStoreOptions): Layer.Layer<ShardStore> => Layer.effect(ShardStore, makeLiveShardStore(options))
  /** Shards from memory, for tests and examples. */
  static readonly memory = (repos: MemoryRepos): Layer.Layer<ShardStore> => Layer.scoped(ShardStore, makeMemoryShardStore(repos))
}
