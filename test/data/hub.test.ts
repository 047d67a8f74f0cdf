// Why this file exists: the Hub client's promises are about misbehaving networks, so each
// fault is staged for real on a server on 127.0.0.1: a connection dropped mid-file must be
// resumed by Range, 5xx retried, 404 reported with its URL, a server ignoring Range handled
// by starting over, a damaged file deleted and fetched again, a silent server timed out.
// The small pure decisions (backoff, Link, Content-Range, shard selection) are pinned first.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { parseShardSelection, resolveDataset } from "../../src/data/datasets.ts"
import {
  backoffDelay,
  classifyStatus,
  downloadFile,
  hubOptions,
  listFiles,
  withRetries,
  nextLink,
  parseContentRange,
  readRange,
  resolveCommit,
  retryAfterMs
} from "../../src/data/hub.ts"
import { tempDir } from "./fixtures.ts"
import { DEFAULT_COMMIT, gitBlobSha1, hubServer, sha256 } from "./hub-server.ts"

/** Bytes that differ everywhere, so a misplaced range shows up in the checksum. */
const payload = (size: number, seed = 7): Uint8Array => {
  const bytes = new Uint8Array(size)
  let x = seed
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    bytes[i] = x >>> 24
  }
  return bytes
}

const FILE = payload(300_000)
const PATH = "sample/10BT/000_00000.parquet"
const REPO = "HuggingFaceFW/fineweb"
const fast = (endpoint: string) => hubOptions({ endpoint, backoffMs: 5, maxBackoffMs: 20, retries: 4, idleTimeoutMs: 2_000, notify: () => undefined }, {})
const urlOf = (endpoint: string, path = PATH) => `${endpoint}/datasets/${REPO}/resolve/main/${path}`

const download = (endpoint: string, dir: string, extra: Partial<ReturnType<typeof fast>> = {}) =>
  downloadFile({ url: urlOf(endpoint), partPath: join(dir, "shard.part"), size: FILE.length, sha256: sha256(FILE) }, { ...fast(endpoint), ...extra })

describe("pure decisions", () => {
  it("backoff doubles from the base and stops at the cap", () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, 100, 1000))).toEqual([100, 200, 400, 800, 1000, 1000])
    expect(retryAfterMs("3")).toBe(3000)
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000)
    expect(retryAfterMs(null)).toBeUndefined()
  })

  it("reads Link headers, Content-Range and status classes", () => {
    expect(nextLink('<https://h/api?cursor=abc>; rel="next"')).toBe("https://h/api?cursor=abc")
    expect(nextLink('<https://h/a>; rel="prev", <https://h/b>; rel="next"')).toBe("https://h/b")
    expect(nextLink('<https://h/a>; rel="prev"')).toBeUndefined()
    expect(parseContentRange("bytes 100-199/1000")).toEqual({ start: 100, end: 199, total: 1000 })
    expect(parseContentRange("bytes */1000")).toEqual({ start: undefined, end: undefined, total: 1000 })
    expect(parseContentRange("nonsense")).toBeUndefined()
    expect([200, 206, 404, 401, 403, 429, 500, 503, 400].map(classifyStatus)).toEqual([
      "ok", "ok", "not-found", "forbidden", "forbidden", "retry", "retry", "retry", "fatal"
    ])
  })

  it("resolves dataset names and shard selections", () => {
    expect(resolveDataset("fineweb-10BT")).toMatchObject({ location: { repo: REPO, prefix: "sample/10BT", revision: "main" } })
    expect(resolveDataset("fineweb-edu-10BT", "abc")).toMatchObject({
      location: { repo: "HuggingFaceFW/fineweb-edu", prefix: "sample/10BT", revision: "abc" },
      descriptor: { columns: expect.arrayContaining(["int_score", "score", "language_score"]) }
    })
    expect(resolveDataset("me/corpus:train/")).toMatchObject({ location: { repo: "me/corpus", prefix: "train" }, descriptor: undefined })
    expect(resolveDataset("not a dataset")).toMatchObject({ _tag: "InvalidDataOption", option: "data.dataset" })
    expect(parseShardSelection("0-2,5", 15)).toEqual([0, 1, 2, 5])
    expect(parseShardSelection("all", 3)).toEqual([0, 1, 2])
    expect(parseShardSelection("3,1,1", 4)).toEqual([1, 3])
    expect(parseShardSelection("0-15", 15)).toMatchObject({ _tag: "InvalidDataOption", option: "data.shards" })
    expect(parseShardSelection("2-1", 15)).toMatchObject({ _tag: "InvalidDataOption" })
    expect(parseShardSelection("x", 15)).toMatchObject({ _tag: "InvalidDataOption" })
  })
})

describe("listing", () => {
  it.scopedLive("follows Link pagination, keeps files only, sorts by path and reads LFS sha256", () =>
    Effect.gen(function* () {
      const files = { [PATH]: FILE, "sample/10BT/001_00000.parquet": payload(10), "sample/10BT/README.md": payload(3), "other/x.parquet": payload(5) }
      const server = yield* hubServer({ repos: { [REPO]: files }, pageSize: 2 })
      const listed = yield* listFiles({ repo: REPO, revision: "main", prefix: "sample/10BT" }, fast(server.endpoint))
      expect(listed.map((f) => f.path)).toEqual([PATH, "sample/10BT/001_00000.parquet", "sample/10BT/README.md"])
      expect(listed[0]).toEqual({ path: PATH, size: FILE.length, sha256: sha256(FILE) })
      expect(server.log.filter((r) => r.url.includes("/tree/")).length).toBe(2)
      expect(yield* resolveCommit(REPO, "main", fast(server.endpoint))).toBe(DEFAULT_COMMIT)
      expect(yield* resolveCommit(REPO, DEFAULT_COMMIT.toUpperCase(), fast(server.endpoint))).toBe(DEFAULT_COMMIT)
    }))

  it.scopedLive("a missing repository is ShardNotFound naming the URL, without retries", () =>
    Effect.gen(function* () {
      const server = yield* hubServer({ repos: {} })
      const error = yield* Effect.flip(listFiles({ repo: "nobody/nothing", revision: "main", prefix: "" }, fast(server.endpoint)))
      expect(error).toMatchObject({ _tag: "ShardNotFound" })
      expect(error.message).toContain(`${server.endpoint}/api/datasets/nobody/nothing/tree/main`)
      expect(server.log.length).toBe(1)
    }))
})

describe("downloadFile against a faulty server", () => {
  it.scopedLive("a clean download has the right bytes, and sends HF_TOKEN as a bearer token through a redirect", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE } }, redirect: true })
      const seen: number[] = []
      const got = yield* downloadFile(
        { url: urlOf(server.endpoint), partPath: join(dir, "a.part"), size: FILE.length, sha256: sha256(FILE) },
        { ...fast(server.endpoint), token: "hf_secret" },
        (p) => seen.push(p.received)
      )
      expect(got).toEqual({ size: FILE.length, sha256: sha256(FILE) })
      expect(readFileSync(join(dir, "a.part")).equals(Buffer.from(FILE))).toBe(true)
      expect(server.log.map((r) => r.url.split("/")[1])).toEqual(["datasets", "cdn"])
      expect(server.log.every((r) => r.authorization === "Bearer hf_secret")).toBe(true)
      expect(seen[seen.length - 1]).toBe(FILE.length)
      expect(seen.every((n, i) => i === 0 || n >= seen[i - 1])).toBe(true)
    }))

  it.scopedLive("a connection dropped mid-file is resumed with Range from the byte it stopped at", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE } }, faults: { [PATH]: { dropAfter: [100_000, 50_000] } } })
      yield* download(server.endpoint, dir)
      expect(readFileSync(join(dir, "shard.part")).equals(Buffer.from(FILE))).toBe(true)
      const ranges = server.log.map((r) => r.range)
      expect(ranges[0]).toBeUndefined()
      // Each resume starts exactly where the bytes on disk end.
      const starts = ranges.slice(1).map((r) => Number(/bytes=(\d+)-/.exec(r ?? "")?.[1]))
      expect(starts.length).toBe(2)
      expect(starts[0]).toBeGreaterThan(0)
      expect(starts[0]).toBeLessThanOrEqual(100_000)
      expect(starts[1]).toBeGreaterThan(starts[0])
      expect(server.bytesSent).toBeLessThan(FILE.length + 150_000 + 1)
    }))

  it.scopedLive("500 and 503 are retried until the file arrives", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE } }, faults: { [PATH]: { statuses: [500, 503, 502] } } })
      yield* download(server.endpoint, dir)
      expect(server.log.length).toBe(4)
      expect(readFileSync(join(dir, "shard.part")).equals(Buffer.from(FILE))).toBe(true)
    }))

  it.scopedLive("retries are bounded: a server that keeps failing is ShardUnavailable with the URL, status and count", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE } }, faults: { [PATH]: { statuses: Array(20).fill(503) } } })
      const error = yield* Effect.flip(download(server.endpoint, dir))
      expect(error).toMatchObject({ _tag: "ShardUnavailable", url: urlOf(server.endpoint), status: 503, retries: 4 })
      expect(error.message).toContain(urlOf(server.endpoint))
      expect(server.log.length).toBe(5)
    }))

  it.scopedLive("404 is ShardNotFound naming the URL, with no retries", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE } }, faults: { [PATH]: { missing: true } } })
      const error = yield* Effect.flip(download(server.endpoint, dir))
      expect(error).toMatchObject({ _tag: "ShardNotFound", url: urlOf(server.endpoint) })
      expect(error.message).toContain("404")
      expect(server.log.length).toBe(1)
    }))

  it.scopedLive("a server that ignores Range makes the download start over from zero, and still succeed", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE } }, faults: { [PATH]: { ignoreRange: true, dropAfter: [120_000] } } })
      yield* download(server.endpoint, dir)
      expect(server.log.length).toBe(2)
      expect(server.log[1].range).toBe("bytes=120000-")
      expect(readFileSync(join(dir, "shard.part")).equals(Buffer.from(FILE))).toBe(true)
    }))

  it.scopedLive("a damaged copy (sha256 mismatch) is deleted and fetched again; twice damaged is ShardCorrupt and nothing is kept", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const once = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE } }, faults: { [PATH]: { corruptTimes: 1 } } })
      yield* download(once.endpoint, dir)
      expect(once.log.length).toBe(2)
      expect(once.log[1].range).toBeUndefined() // the refetch starts from zero
      expect(readFileSync(join(dir, "shard.part")).equals(Buffer.from(FILE))).toBe(true)

      const always = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE } }, faults: { [PATH]: { corruptTimes: 99 } } })
      const dir2 = yield* tempDir
      const error = yield* Effect.flip(download(always.endpoint, dir2))
      expect(error).toMatchObject({ _tag: "ShardCorrupt", expectedSha256: sha256(FILE), attempts: 2 })
      expect(error.message).toContain("deleted")
      expect(existsSync(join(dir2, "shard.part"))).toBe(false)
    }))

  it.scopedLive("a server that goes silent mid-body times out and the download resumes", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE } }, faults: { [PATH]: { stallAfter: [64_000] } } })
      const started = Date.now()
      yield* download(server.endpoint, dir, { idleTimeoutMs: 300 })
      expect(Date.now() - started).toBeGreaterThanOrEqual(250)
      expect(server.log.length).toBe(2)
      expect(server.log[1].range).toMatch(/^bytes=\d+-$/)
      expect(readFileSync(join(dir, "shard.part")).equals(Buffer.from(FILE))).toBe(true)
    }))

  it.scopedLive("a part file left by an earlier run is resumed, not restarted", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      writeFileSync(join(dir, "shard.part"), FILE.subarray(0, 200_000))
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE } } })
      yield* download(server.endpoint, dir)
      expect(server.log.map((r) => r.range)).toEqual(["bytes=200000-"])
      expect(server.bytesSent).toBe(FILE.length - 200_000)
      expect(readFileSync(join(dir, "shard.part")).equals(Buffer.from(FILE))).toBe(true)
    }))
})

describe("readRange", () => {
  it.scopedLive("reads exactly the bytes asked for, also from a server that ignores Range, and retries a dropped one", () =>
    Effect.gen(function* () {
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE, "b.parquet": FILE } }, faults: { "b.parquet": { ignoreRange: true }, [PATH]: { dropAfter: [10] } } })
      const bytes = yield* readRange(urlOf(server.endpoint), 1000, 5000, fast(server.endpoint))
      expect(Buffer.from(bytes).equals(Buffer.from(FILE.subarray(1000, 5000)))).toBe(true)
      expect(server.log.map((r) => r.range)).toEqual(["bytes=1000-4999", "bytes=1000-4999"])
      const ignored = yield* readRange(urlOf(server.endpoint, "b.parquet"), 250_000, 250_100, fast(server.endpoint))
      expect(Buffer.from(ignored).equals(Buffer.from(FILE.subarray(250_000, 250_100)))).toBe(true)
    }))
})

/** A `notify` that collects the lines instead of writing them to stderr. */
const quiet = (lines: string[]) => (line: string) => void lines.push(line)

describe("downloads never loop, and say what they do", () => {
  it.scopedLive("a server that ignores Range and drops at the same byte every time is given up on after retries + 1 attempts", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE } }, faults: { [PATH]: { ignoreRange: true, dropAfter: Array(40).fill(100_000) } } })
      const lines: string[] = []
      const error = yield* Effect.flip(download(server.endpoint, dir, { notify: quiet(lines) }))
      expect(error).toMatchObject({ _tag: "ShardUnavailable", url: urlOf(server.endpoint) })
      expect(error.message).toContain("without progress")
      // One attempt that got somewhere (the first failure), then failures 2 to 5 that only fetched
      // the same bytes again: the fifth in a row exceeds retries (4).
      expect(server.log.length).toBe(5)
      expect(lines).toHaveLength(4)
      expect(lines.every((l) => l.includes(urlOf(server.endpoint)) && l.includes("retrying in"))).toBe(true)
    }))

  it.scopedLive("progress or not, one request makes at most maxAttempts attempts", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      // Honours Range and gets 10 kB further each time: progress that would take 30 attempts.
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE } }, faults: { [PATH]: { dropAfter: Array(40).fill(10_000) } } })
      const error = yield* Effect.flip(download(server.endpoint, dir, { maxAttempts: 5, notify: () => undefined }))
      expect(error).toMatchObject({ _tag: "ShardUnavailable" })
      expect(error.message).toContain("gave up after 5 attempts")
      expect(server.log.length).toBe(5)
    }))

  it.scopedLive("each retry is reported in one line naming the URL and the reason", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* hubServer({ repos: { [REPO]: { [PATH]: FILE } }, faults: { [PATH]: { statuses: [500, 503], dropAfter: [50_000] } } })
      const lines: string[] = []
      yield* download(server.endpoint, dir, { notify: quiet(lines) })
      expect(lines).toHaveLength(3)
      expect(lines[0]).toContain("HTTP 500; retrying in")
      expect(lines[1]).toContain("HTTP 503; retrying in")
      expect(lines[2]).toMatch(/connection closed at byte \d+ of 300000|terminated|other side closed/)
      expect(readFileSync(join(dir, "shard.part")).equals(Buffer.from(FILE))).toBe(true)
    }))

  it.effect("a host name that does not resolve fails at once, without backed-off retries", () =>
    Effect.gen(function* () {
      let attempts = 0
      const lines: string[] = []
      const dnsError = Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("getaddrinfo ENOTFOUND hub.invalid"), { code: "ENOTFOUND" }) })
      const error = yield* Effect.flip(
        withRetries("https://hub.invalid/x", { ...fast("https://hub.invalid"), notify: quiet(lines) }, () => {
          attempts++
          return Promise.reject(dnsError)
        })
      )
      expect(attempts).toBe(1)
      expect(lines).toEqual([])
      expect(error).toMatchObject({ _tag: "ShardUnavailable" })
      expect(error.message).toContain("cannot resolve hub.invalid (ENOTFOUND)")
    }))
})

describe("files the listing gives no sha256 for", () => {
  const TEXT = "sample/10BT/README.md"

  it.scopedLive("the listing's git blob id is read and checked: wrong bytes are refused, right ones accepted", () =>
    Effect.gen(function* () {
      const readme = payload(5_000, 3)
      const server = yield* hubServer({ repos: { [REPO]: { [TEXT]: readme } }, gitFiles: [TEXT], faults: { [TEXT]: { corruptTimes: 2 } } })
      const [listed] = yield* listFiles({ repo: REPO, revision: "main", prefix: "sample/10BT" }, fast(server.endpoint))
      expect(listed).toEqual({ path: TEXT, size: readme.length, sha256: undefined, gitBlobSha1: gitBlobSha1(readme) })
      const dir = yield* tempDir
      const target = { url: urlOf(server.endpoint, TEXT), partPath: join(dir, "readme.part"), size: readme.length, sha256: undefined, gitBlobSha1: listed.gitBlobSha1 }
      const error = yield* Effect.flip(downloadFile(target, fast(server.endpoint)))
      expect(error).toMatchObject({ _tag: "ShardCorrupt", attempts: 2 })
      expect(error.message).toContain("git blob")
      expect(existsSync(target.partPath)).toBe(false)
      // The server now sends the right bytes: they pass.
      const got = yield* downloadFile(target, fast(server.endpoint))
      expect(got.sha256).toBe(sha256(readme))
    }))

  it.scopedLive("a file with no checksum at all is downloaded with a warning that it is unverified", () =>
    Effect.gen(function* () {
      const bytes = payload(2_000, 9)
      const server = yield* hubServer({ repos: { [REPO]: { [TEXT]: bytes } } })
      const dir = yield* tempDir
      const lines: string[] = []
      yield* downloadFile({ url: urlOf(server.endpoint, TEXT), partPath: join(dir, "x.part"), size: bytes.length, sha256: undefined }, { ...fast(server.endpoint), notify: quiet(lines) })
      expect(lines).toEqual([`warning: ${urlOf(server.endpoint, TEXT)} is unverified: the listing gives no checksum for it, only its size (2000 bytes)`])
    }))
})
