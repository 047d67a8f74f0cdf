// Why this file exists: one conformance suite for both ShardStore layers (the live one over a
// Hub server on 127.0.0.1, and the in-memory one), then what only the live one promises: it
// never downloads a cached shard twice, works offline from a filled cache, evicts least
// recently used shards under its cap but never one a job holds, and resumes a part file.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { planEviction, type ShardStoreShape, makeLiveShardStore, makeMemoryShardStore } from "../../src/data/shard-store.ts"
import { tempDir } from "./fixtures.ts"
import { DEFAULT_COMMIT, type HubServer, hubServer, sha256 } from "./hub-server.ts"

const REPO = "HuggingFaceFW/fineweb"
const bytes = (size: number, seed: number) => Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed * 17 + (i >> 8)) & 0xff)
const FILES: Record<string, Uint8Array> = {
  "sample/10BT/000_00000.parquet": bytes(40_000, 1),
  "sample/10BT/001_00000.parquet": bytes(30_000, 2),
  "sample/10BT/002_00000.parquet": bytes(20_000, 3),
  "sample/10BT/notes.txt": bytes(10, 4),
  "sample/100BT/000_00000.parquet": bytes(10, 5)
}
const LOCATION = { repo: REPO, revision: "main", prefix: "sample/10BT" }
const SHARD_PATHS = ["sample/10BT/000_00000.parquet", "sample/10BT/001_00000.parquet", "sample/10BT/002_00000.parquet"]

const live = (server: HubServer, cacheDir: string, maxBytes = 0) =>
  makeLiveShardStore({ cacheDir, maxBytes, endpoint: server.endpoint, backoffMs: 5, maxBackoffMs: 20, retries: 2, token: undefined })

const layers: ReadonlyArray<{ name: string; make: Effect.Effect<ShardStoreShape, never, Scope.Scope> }> = [
  {
    name: "live (Hub server on 127.0.0.1)",
    make: Effect.gen(function* () {
      const server = yield* hubServer({ repos: { [REPO]: FILES }, pageSize: 2, redirect: true })
      return yield* live(server, yield* tempDir)
    })
  },
  { name: "in memory", make: makeMemoryShardStore({ [REPO]: FILES }) }
]

for (const layer of layers) {
  describe(`ShardStore conformance: ${layer.name}`, () => {
    it.scopedLive("lists the folder's parquet files in path order with sizes and sha256", () =>
      Effect.gen(function* () {
        const store = yield* layer.make
        const listing = yield* store.list(LOCATION)
        expect(listing.offline).toBe(false)
        expect(listing.shards.map((s) => s.path)).toEqual(SHARD_PATHS)
        for (const shard of listing.shards) {
          expect(shard.size).toBe(FILES[shard.path].length)
          expect(shard.sha256).toBe(sha256(FILES[shard.path]))
          expect(shard.repo).toBe(REPO)
        }
      }))

    it.scopedLive("ensure gives a local file with exactly the shard's bytes; cached lists it", () =>
      Effect.gen(function* () {
        const store = yield* layer.make
        const [first, second] = (yield* store.list(LOCATION)).shards
        const path = yield* store.ensure(second)
        expect(readFileSync(path).equals(Buffer.from(FILES[second.path]))).toBe(true)
        expect(yield* store.ensure(second)).toBe(path)
        const cached = yield* store.cached
        expect(cached.map((c) => c.path)).toEqual([second.path])
        expect(cached[0]).toMatchObject({ repo: REPO, size: second.size, sha256: second.sha256, held: false, localPath: path })
        expect(cached.some((c) => c.path === first.path)).toBe(false)
      }))

    it.scopedLive("readRange returns the bytes asked for", () =>
      Effect.gen(function* () {
        const store = yield* layer.make
        const [shard] = (yield* store.list(LOCATION)).shards
        const got = yield* store.readRange(shard, 1234, 5678)
        expect(Buffer.from(got).equals(Buffer.from(FILES[shard.path].subarray(1234, 5678)))).toBe(true)
      }))

    it.scopedLive("a shard that does not exist is ShardNotFound naming its URL", () =>
      Effect.gen(function* () {
        const store = yield* layer.make
        const [shard] = (yield* store.list(LOCATION)).shards
        const ghost = { ...shard, path: "sample/10BT/999_00000.parquet", url: shard.url.replace("000_00000", "999_00000") }
        const error = yield* Effect.flip(store.ensure(ghost))
        expect(error).toMatchObject({ _tag: "ShardNotFound", url: ghost.url })
        expect((yield* Effect.flip(store.list({ ...LOCATION, repo: "nobody/nothing" })))._tag).toBe("ShardNotFound")
      }))

    it.scopedLive("acquire holds a shard until its scope closes", () =>
      Effect.gen(function* () {
        const store = yield* layer.make
        const [shard] = (yield* store.list(LOCATION)).shards
        const scope = yield* Scope.make()
        yield* Scope.extend(store.acquire(shard), scope)
        expect((yield* store.cached).find((c) => c.path === shard.path)?.held).toBe(true)
        yield* Scope.close(scope, Exit.void)
        expect((yield* store.cached).find((c) => c.path === shard.path)?.held).toBe(false)
      }))
  })
}

describe("ShardStore.live", () => {
  it.scopedLive("resolves the revision to a commit and downloads from that commit; a cached shard is never fetched again", () =>
    Effect.gen(function* () {
      const server = yield* hubServer({ repos: { [REPO]: FILES } })
      const dir = yield* tempDir
      const store = yield* live(server, dir)
      const [shard] = (yield* store.list(LOCATION)).shards
      expect(shard.revision).toBe(DEFAULT_COMMIT)
      expect(shard.url).toContain(`/resolve/${DEFAULT_COMMIT}/`)
      yield* store.ensure(shard)
      const before = server.log.length
      // A second store on the same directory (a later run) finds it too.
      const again = yield* live(server, dir)
      yield* again.ensure(shard)
      yield* again.readRange(shard, 0, 100)
      expect(server.log.length).toBe(before)
    }))

  it.scopedLive("works offline from a filled cache: saved listing, cached shards", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: FILES } })
      const online = yield* live(server, dir)
      const listing = yield* online.list(LOCATION)
      yield* online.ensure(listing.shards[0])
      yield* Effect.promise(() => server.close())

      const offline = yield* live(server, dir)
      const saved = yield* offline.list(LOCATION)
      expect(saved.offline).toBe(true)
      expect(saved.shards).toEqual(listing.shards)
      const path = yield* offline.ensure(saved.shards[0])
      expect(readFileSync(path).equals(Buffer.from(FILES[saved.shards[0].path]))).toBe(true)
      // A shard that was never downloaded cannot appear from nowhere.
      expect((yield* Effect.flip(offline.ensure(saved.shards[1])))._tag).toBe("ShardUnavailable")
      // Nor can a listing that was never saved.
      expect((yield* Effect.flip(offline.list({ ...LOCATION, prefix: "sample/100BT" })))._tag).toBe("ShardUnavailable")
    }))

  it.scopedLive("a listing that fails with 503 falls back to the saved one", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: FILES } })
      yield* (yield* live(server, dir)).list(LOCATION)
      const flaky = yield* hubServer({ repos: { [REPO]: FILES }, listingStatuses: [503, 503, 503, 503] })
      const listing = yield* (yield* live(flaky, dir)).list(LOCATION)
      expect(listing.offline).toBe(true)
      expect(listing.shards.length).toBe(3)
    }))

  it.scopedLive("evicts least recently used shards to stay under the cap, never a held one", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: FILES } })
      const store = yield* live(server, dir, 75_000) // room for 000 (40k) + 001 (30k), not all three
      const [a, b, c] = (yield* store.list(LOCATION)).shards
      const holding = yield* Scope.make()
      const pathA = yield* Scope.extend(store.acquire(a), holding)
      // Other processes see the hold through a lease file named with this process's pid.
      expect(existsSync(`${pathA}.lease-${process.pid}`)).toBe(true)
      yield* Effect.sleep("5 millis")
      yield* store.ensure(b)
      yield* Effect.sleep("5 millis")
      // c needs room: b is the only unheld shard, so b goes although a is older.
      yield* store.ensure(c)
      expect((yield* store.cached).map((s) => s.path).sort()).toEqual([a.path, c.path])
      expect(existsSync(pathA)).toBe(true)
      // With a and c both held, b cannot fit: a clear error, nothing deleted.
      yield* Scope.extend(store.acquire(c), holding)
      const error = yield* Effect.flip(store.ensure(b))
      expect(error).toMatchObject({ _tag: "ShardCacheFull", needed: b.size, capBytes: 75_000, heldBytes: a.size + c.size })
      expect(error.message).toContain("data.cache_max_gb")
      yield* Scope.close(holding, Exit.void)
      expect(existsSync(`${pathA}.lease-${process.pid}`)).toBe(false)
      // Released: now the least recently used (a) makes way.
      yield* store.ensure(b)
      expect((yield* store.cached).map((s) => s.path).sort()).toEqual([b.path, c.path])
    }))

  it.scopedLive("a lease file of a live process protects a shard; one of a dead process is stale and removed", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: FILES } })
      const store = yield* live(server, dir)
      const [a, b] = (yield* store.list(LOCATION)).shards
      const pathA = yield* store.ensure(a)
      const pathB = yield* store.ensure(b)
      // The parent of this test process is alive; pid 2^22+1 is above Linux's pid limit, so never alive.
      writeFileSync(`${pathA}.lease-${process.ppid}`, "")
      writeFileSync(`${pathB}.lease-${4_194_305}`, "")
      const cached = yield* store.cached
      expect(cached.find((s) => s.path === a.path)?.held).toBe(true)
      expect(cached.find((s) => s.path === b.path)?.held).toBe(false)
      expect(existsSync(`${pathB}.lease-4194305`)).toBe(false)
    }))

  it.scopedLive("a part file from an interrupted run is resumed with Range", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: FILES } })
      const store = yield* live(server, dir)
      const [a] = (yield* store.list(LOCATION)).shards
      const local = join(dir, "shards", REPO, ...a.path.split("/"))
      mkdirSync(join(local, ".."), { recursive: true })
      writeFileSync(`${local}.part`, FILES[a.path].subarray(0, 25_000))
      const before = server.log.length
      yield* store.ensure(a)
      expect(server.log.slice(before).map((r) => r.range)).toEqual(["bytes=25000-"])
      expect(existsSync(`${local}.part`)).toBe(false)
      expect(readFileSync(local).equals(Buffer.from(FILES[a.path]))).toBe(true)
    }))

  it.scopedLive("a file in the cache that does not match the listing is fetched again", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: FILES } })
      const store = yield* live(server, dir)
      const [a] = (yield* store.list(LOCATION)).shards
      const path = yield* store.ensure(a)
      const damaged = Uint8Array.from(FILES[a.path])
      damaged[7] ^= 1
      writeFileSync(path, damaged)
      // Metadata lost too: the store must hash the file rather than trust its size.
      writeFileSync(`${path}.meta.json`, "{}")
      yield* store.ensure(a)
      expect(readFileSync(path).equals(Buffer.from(FILES[a.path]))).toBe(true)
    }))
})

describe("planEviction", () => {
  const entries = [
    { key: "old", size: 40, lastUsed: 1, held: false },
    { key: "held", size: 30, lastUsed: 0, held: true },
    { key: "new", size: 20, lastUsed: 5, held: false }
  ]
  it("deletes least recently used unheld entries until the newcomer fits", () => {
    expect(planEviction(entries, 100, 25)).toEqual({ evict: ["old"], fits: true, heldBytes: 30 })
    expect(planEviction(entries, 100, 10)).toEqual({ evict: [], fits: true, heldBytes: 30 })
    expect(planEviction(entries, 100, 60)).toEqual({ evict: ["old", "new"], fits: true, heldBytes: 30 })
    expect(planEviction(entries, 100, 80)).toMatchObject({ fits: false })
    expect(planEviction(entries, 0, 1e12)).toEqual({ evict: [], fits: true, heldBytes: 30 })
  })
})
