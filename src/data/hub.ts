// Why this file exists: FineWeb lives on the Hugging Face Hub as multi-gigabyte parquet files,
// and a download that long will meet a dropped connection, a 503 or a proxy that ignores
// ranges. This is the HTTP side of the shard store: list a dataset folder, resolve a branch
// to a commit, download a file resumably with its checksum, and read a byte range of a remote
// file. The decisions (what a status means, how long to wait, which range came back) are
// small pure functions; each request is one plain `fetch` attempt; the retry policy wraps
// attempts in Effect, so interrupting a run aborts the socket.
//
// Hub endpoints used (relative to the endpoint, default https://huggingface.co):
//   GET /api/datasets/{repo}/revision/{revision}          -> { sha }        (branch -> commit)
//   GET /api/datasets/{repo}/tree/{revision}/{folder}     -> [{ type, path, size, lfs?: { oid } }]
//       paginated with `Link: <next url>; rel="next"`
//   GET /datasets/{repo}/resolve/{revision}/{path}        -> the bytes (usually a redirect to a CDN)
import { Duration, Effect, Schema } from "effect"
import { createHash, type Hash } from "node:crypto"
import { createReadStream } from "node:fs"
import { open, rm, stat, truncate } from "node:fs/promises"
import type { DatasetLocation } from "./datasets.ts"
import { type HubError, ShardCacheError, ShardCorrupt, ShardForbidden, ShardNotFound, ShardUnavailable } from "./errors.ts"

export interface HubOptions {
  /** Base URL of the Hub or a mirror, without a trailing slash. */
  readonly endpoint: string
  /** Sent as `Authorization: Bearer <token>` when set (gated or private datasets). */
  readonly token: string | undefined
  /**
   * Consecutive failed attempts allowed before giving up. An attempt that took the file past the
   * most it ever held resets the count; one that only re-fetched bytes already had does not.
   */
  readonly retries: number
  /** Attempts allowed for one request in all, progress or not (default 30): nothing loops forever. */
  readonly maxAttempts?: number
  /** Where a retry, a reconnect or an unverifiable file is reported, one line each (default: stderr). */
  readonly notify?: (line: string) => void
  /** First wait after a failure; doubles per consecutive failure up to `maxBackoffMs`. */
  readonly backoffMs: number
  readonly maxBackoffMs: number
  /** Longest wait for response headers. */
  readonly connectTimeoutMs: number
  /** Longest silence while a body is streaming before the connection counts as dropped. */
  readonly idleTimeoutMs: number
}

export const DEFAULT_ENDPOINT = "https://huggingface.co"
export const DEFAULT_MAX_ATTEMPTS = 30

const notifyOf = (options: HubOptions) => options.notify ?? ((line: string) => void process.stderr.write(`glassbox: ${line}\n`))

/** Defaults for the public Hub, with `HF_TOKEN` from `env` when set. */
export const hubOptions = (overrides: Partial<HubOptions> = {}, env: NodeJS.ProcessEnv = process.env): HubOptions => ({
  endpoint: DEFAULT_ENDPOINT,
  token: env.HF_TOKEN !== undefined && env.HF_TOKEN !== "" ? env.HF_TOKEN : undefined,
  retries: 8,
  backoffMs: 500,
  maxBackoffMs: 30_000,
  connectTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  ...overrides,
  ...(overrides.endpoint !== undefined ? { endpoint: overrides.endpoint.replace(/\/+$/, "") } : {})
})

// ---------------------------------------------------------------------------------------
// Pure decisions.

/** Wait before retry number `failures` (1-based): base·2^(failures-1), capped. Deterministic, so tests can reason about it. */
export const backoffDelay = (failures: number, baseMs: number, maxMs: number): number =>
  Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1))

/** `Retry-After` in milliseconds (seconds or an HTTP date), or undefined. */
export const retryAfterMs = (header: string | null, now: number = Date.now()): number | undefined => {
  if (header === null) return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  const date = Date.parse(header)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/** The `rel="next"` target of a `Link` header (RFC 8288), or undefined. */
export const nextLink = (header: string | null): string | undefined => {
  if (header === null) return undefined
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part)
    if (m !== null && /;\s*rel\s*=\s*"?next"?/i.test(m[2])) return m[1]
  }
  return undefined
}

export interface ContentRange {
  /** First byte sent, or undefined for `bytes *\/total` (the answer to an unsatisfiable range). */
  readonly start: number | undefined
  readonly end: number | undefined
  readonly total: number | undefined
}

/** `bytes 100-199/1000`, `bytes 100-199/*` or `bytes *\/1000`. */
export const parseContentRange = (header: string | null): ContentRange | undefined => {
  if (header === null) return undefined
  const m = /^\s*bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(header)
  if (m === null) return undefined
  return {
    start: m[1] === undefined ? undefined : Number(m[1]),
    end: m[2] === undefined ? undefined : Number(m[2]),
    total: m[3] === "*" ? undefined : Number(m[3])
  }
}

export type StatusClass = "ok" | "not-found" | "forbidden" | "retry" | "fatal"

/** What an HTTP status means for a request we may repeat: 429 and 5xx are worth another try, 404 never is. */
export const classifyStatus = (status: number): StatusClass =>
  status >= 200 && status < 300 ? "ok"
  : status === 404 ? "not-found"
  : status === 401 || status === 403 ? "forbidden"
  : status === 408 || status === 429 || status >= 500 ? "retry"
  : "fatal"

const encodePath = (path: string): string => path.split("/").filter((s) => s !== "").map(encodeURIComponent).join("/")

/** Where a file's bytes are: `{endpoint}/datasets/{repo}/resolve/{revision}/{path}`. */
export const resolveUrl = (endpoint: string, repo: string, revision: string, path: string): string =>
  `${endpoint}/datasets/${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(path)}`

export const treeUrl = (endpoint: string, location: DatasetLocation): string =>
  `${endpoint}/api/datasets/${location.repo}/tree/${encodeURIComponent(location.revision)}` +
  (location.prefix === "" ? "" : `/${encodePath(location.prefix)}`) + "?recursive=true"

export const revisionUrl = (endpoint: string, repo: string, revision: string): string =>
  `${endpoint}/api/datasets/${repo}/revision/${encodeURIComponent(revision)}`

/** A commit id: 40 hex digits. A revision that already is one needs no resolving. */
export const isCommit = (revision: string): boolean => /^[0-9a-f]{40}$/i.test(revision)

// ---------------------------------------------------------------------------------------
// Attempts and the retry policy.

/** How one attempt ended: with a value, with a failure worth retrying, or with a final error. */
export type Outcome<A> =
  | { readonly _tag: "Done"; readonly value: A }
  | {
    readonly _tag: "Retry"
    readonly status?: number
    readonly reason: string
    /** The attempt took the file past the most it ever held: the failure count starts again. */
    readonly progressed: boolean
    readonly retryAfterMs?: number
  }
  | { readonly _tag: "Fail"; readonly error: HubError }

const done = <A>(value: A): Outcome<A> => ({ _tag: "Done", value })
const retry = (reason: string, extra: { status?: number; progressed?: boolean; retryAfterMs?: number } = {}): Outcome<never> => ({
  _tag: "Retry", reason, progressed: extra.progressed ?? false, status: extra.status, retryAfterMs: extra.retryAfterMs
})
const fail = (error: HubError): Outcome<never> => ({ _tag: "Fail", error })

/** The outcome for a response whose status is not a success. */
const statusOutcome = (url: string, response: Response): Outcome<never> => {
  const status = response.status
  switch (classifyStatus(status)) {
    case "not-found":
      return fail(new ShardNotFound({ url }))
    case "forbidden":
      return fail(new ShardForbidden({ url, status }))
    case "retry":
      return retry(`HTTP ${status}`, { status, retryAfterMs: retryAfterMs(response.headers.get("retry-after")) })
    default:
      return fail(new ShardUnavailable({ url, status, retries: 0, reason: `unexpected HTTP ${status}` }))
  }
}

/**
 * Run `attempt` until it is done, waiting `backoffDelay` between failures (or the server's
 * Retry-After, within the cap). Gives up with ShardUnavailable after `retries` consecutive
 * failures without progress, or after `maxAttempts` attempts in all: a flaky connection that
 * keeps getting further is followed, one that keeps failing at the same place is not. A host
 * name that does not resolve fails at once: retrying cannot bring the network back. Each retry
 * is reported in one line.
 */
export const withRetries = <A>(
  url: string,
  options: HubOptions,
  attempt: (signal: AbortSignal) => Promise<Outcome<A>>
): Effect.Effect<A, HubError> =>
  Effect.gen(function* () {
    const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS
    const notify = notifyOf(options)
    let failures = 0
    for (let attempts = 1; ; attempts++) {
      const outcome = yield* Effect.promise((signal) =>
        attempt(signal).catch((error: unknown): Outcome<A> => {
          const host = unresolvedHost(error, url)
          return host === undefined
            ? retry(describeError(error))
            : fail(new ShardUnavailable({ url, retries: 0, reason: `cannot resolve ${host} (${errorCode(error)}): no network, or a wrong endpoint` }))
        })
      )
      if (outcome._tag === "Done") return outcome.value
      if (outcome._tag === "Fail") return yield* Effect.fail(outcome.error)
      failures = outcome.progressed ? 1 : failures + 1
      if (failures > options.retries || attempts >= maxAttempts) {
        const why = attempts >= maxAttempts ? `gave up after ${attempts} attempts` : `${failures} failures in a row without progress`
        return yield* new ShardUnavailable({ url, status: outcome.status, retries: attempts - 1, reason: `${outcome.reason}; ${why}` })
      }
      const wait = Math.min(options.maxBackoffMs, Math.max(backoffDelay(failures, options.backoffMs, options.maxBackoffMs), outcome.retryAfterMs ?? 0))
      notify(`${url}: ${outcome.reason}; retrying in ${(wait / 1000).toFixed(1)} s (attempt ${attempts + 1} of at most ${maxAttempts})`)
      yield* Effect.sleep(Duration.millis(wait))
    }
  })

const errorCode = (error: unknown): string | undefined => {
  const e = error as { code?: string; cause?: { code?: string } }
  return e?.cause?.code ?? e?.code
}

/** The host name when `error` says it could not be resolved (DNS), else undefined. */
const unresolvedHost = (error: unknown, url: string): string | undefined => {
  const code = errorCode(error)
  if (code !== "ENOTFOUND" && code !== "EAI_AGAIN") return undefined
  try {
    return new URL(url).hostname
  } catch {
    return url
  }
}

/** A one-line reason from whatever fetch or a stream threw (undici hides the socket error in `cause`). */
export const describeError = (error: unknown): string => {
  const e = error as { message?: string; cause?: { code?: string; message?: string } }
  const cause = e?.cause?.code ?? e?.cause?.message
  const message = e?.message ?? String(error)
  return cause !== undefined && !message.includes(cause) ? `${message} (${cause})` : message
}

/**
 * A fetch bounded by two clocks: `connectTimeoutMs` until headers arrive, then `idleTimeoutMs`
 * between body chunks (call `alive()` on each). Aborting the outer signal aborts the request.
 */
const guardedFetch = async (url: string, headers: Record<string, string>, outer: AbortSignal, options: HubOptions) => {
  const controller = new AbortController()
  const onAbort = () => controller.abort(outer.reason)
  outer.addEventListener("abort", onAbort)
  let timer: NodeJS.Timeout | undefined
  const arm = (ms: number, what: string) => {
    clearTimeout(timer)
    timer = setTimeout(() => controller.abort(new Error(`${what} for ${ms} ms`)), ms)
  }
  const release = () => {
    clearTimeout(timer)
    outer.removeEventListener("abort", onAbort)
  }
  arm(options.connectTimeoutMs, "no response")
  try {
    const response = await fetch(url, { headers, signal: controller.signal, redirect: "follow" })
    arm(options.idleTimeoutMs, "no data")
    return { response, alive: () => arm(options.idleTimeoutMs, "no data"), release, signal: controller.signal }
  } catch (error) {
    release()
    throw controller.signal.aborted && controller.signal.reason instanceof Error ? controller.signal.reason : error
  }
}

const authHeaders = (options: HubOptions): Record<string, string> =>
  options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }

/** Drop an unread body so the connection can be reused. */
const discard = (response: Response) => response.body?.cancel().catch(() => undefined)

/** GET a JSON document with retries; the `Link` header's next page comes along. */
export const getJson = (url: string, options: HubOptions): Effect.Effect<{ readonly json: unknown; readonly next: string | undefined }, HubError> =>
  withRetries(url, options, async (signal) => {
    const { response, release } = await guardedFetch(url, { ...authHeaders(options), accept: "application/json" }, signal, options)
    try {
      if (!response.ok) {
        await discard(response)
        return statusOutcome(url, response)
      }
      const text = await response.text()
      try {
        return done({ json: JSON.parse(text) as unknown, next: nextLink(response.headers.get("link")) })
      } catch {
        return fail(new ShardUnavailable({ url, status: response.status, retries: 0, reason: "the answer is not JSON" }))
      }
    } finally {
      release()
    }
  })

// ---------------------------------------------------------------------------------------
// Listing.

const TreeEntry = Schema.Struct({
  type: Schema.String,
  path: Schema.String,
  size: Schema.optional(Schema.Number),
  oid: Schema.optional(Schema.String),
  lfs: Schema.optional(Schema.Struct({ oid: Schema.String, size: Schema.optional(Schema.Number) }))
})
const TreePage = Schema.Array(TreeEntry)
const RevisionInfo = Schema.Struct({ sha: Schema.String })

export interface RemoteFile {
  readonly path: string
  readonly size: number
  /** The LFS object id, which is the sha256 of the content; absent for files kept in git itself. */
  readonly sha256: string | undefined
  /**
   * For a file kept in git itself (no LFS), its git blob id: sha1("blob <size>\0" + bytes),
   * which the listing's `oid` holds. (For an LFS file `oid` names the pointer, not the content.)
   */
  readonly gitBlobSha1?: string
}

/** Every file under the location's folder (all pages), sorted by path. */
export const listFiles = (location: DatasetLocation, options: HubOptions): Effect.Effect<ReadonlyArray<RemoteFile>, HubError> =>
  Effect.gen(function* () {
    const files: RemoteFile[] = []
    const seen = new Set<string>()
    let url: string | undefined = treeUrl(options.endpoint, location)
    while (url !== undefined) {
      const page: { json: unknown; next: string | undefined } = yield* getJson(url, options)
      const entries = yield* Schema.decodeUnknown(TreePage)(page.json).pipe(
        Effect.mapError(() => new ShardUnavailable({ url: url!, retries: 0, reason: "the answer is not a Hub tree listing" }))
      )
      for (const entry of entries) {
        if (entry.type !== "file" || seen.has(entry.path)) continue
        seen.add(entry.path)
        const gitBlobSha1 = entry.lfs === undefined && entry.oid !== undefined && /^[0-9a-f]{40}$/i.test(entry.oid) ? entry.oid.toLowerCase() : undefined
        files.push({ path: entry.path, size: entry.lfs?.size ?? entry.size ?? 0, sha256: entry.lfs?.oid, ...(gitBlobSha1 === undefined ? {} : { gitBlobSha1 }) })
      }
      // A next link pointing back at a page already read would loop forever.
      url = page.next !== undefined && page.next !== url ? new URL(page.next, url).toString() : undefined
    }
    return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  })

/** The commit a branch or tag points at now (a commit is returned as is). */
export const resolveCommit = (repo: string, revision: string, options: HubOptions): Effect.Effect<string, HubError> =>
  isCommit(revision)
    ? Effect.succeed(revision.toLowerCase())
    : getJson(revisionUrl(options.endpoint, repo, revision), options).pipe(
      Effect.flatMap(({ json }) => Schema.decodeUnknown(RevisionInfo)(json)),
      Effect.map((info) => info.sha),
      Effect.catchTag("ParseError", () =>
        Effect.fail(new ShardUnavailable({ url: revisionUrl(options.endpoint, repo, revision), retries: 0, reason: "no commit id in the answer" })))
    )

// ---------------------------------------------------------------------------------------
// Downloading one file, resumably.

export interface DownloadTarget {
  readonly url: string
  /** Where the bytes accumulate; left in place after a failure, so the next run resumes. */
  readonly partPath: string
  /** Expected size, when known (the listing gives it); checked before use. */
  readonly size: number | undefined
  /** Expected sha256 (hex), when known; checked before use. */
  readonly sha256: string | undefined
  /** Expected git blob id (hex sha1 of "blob <size>\0" + bytes), for files the Hub keeps outside LFS. */
  readonly gitBlobSha1?: string
}

export interface DownloadProgress {
  readonly received: number
  readonly total: number | undefined
}

/** How many complete-but-wrong copies to fetch before giving up on a file. */
const MAX_CORRUPT_FETCHES = 2

const hashFile = (path: string): Promise<Hash> =>
  new Promise((resolve, reject) => {
    const hash = createHash("sha256")
    createReadStream(path).on("data", (chunk) => hash.update(chunk)).on("error", reject).on("end", () => resolve(hash))
  })

/** Git's id for a file's content: sha1 over "blob <size>\0" followed by the bytes. */
export const gitBlobSha1Of = (path: string): Promise<string> =>
  stat(path).then(
    (s) =>
      new Promise((resolve, reject) => {
        const hash = createHash("sha1").update(`blob ${s.size}\0`)
        createReadStream(path).on("data", (chunk) => hash.update(chunk)).on("error", reject).on("end", () => resolve(hash.digest("hex")))
      })
  )

const sizeOf = (path: string): Promise<number> =>
  stat(path).then((s) => s.size, (error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? 0 : Promise.reject(error)))

const cacheError = (path: string) => (error: unknown) => new ShardCacheError({ path, reason: describeError(error) })

/**
 * Download `target.url` into `target.partPath`, resuming from what is already there. A
 * dropped connection resumes with `Range: bytes=<have>-`; a server that answers a range
 * request with the whole file (200) or another range restarts the file from zero. The
 * sha256 is computed as the bytes arrive. When the finished file's size or checksum is
 * wrong it is deleted and fetched again once; a second bad copy is ShardCorrupt. On success
 * the part file holds exactly the expected bytes (the caller renames it into place).
 */
export const downloadFile = (
  target: DownloadTarget,
  options: HubOptions,
  onProgress: (progress: DownloadProgress) => void = () => undefined
): Effect.Effect<{ readonly size: number; readonly sha256: string }, HubError> =>
  Effect.gen(function* () {
    const { url, partPath } = target
    for (let fetches = 1; ; fetches++) {
      // What is on disk from an earlier attempt or an earlier run, and its running hash.
      const state = yield* Effect.tryPromise({
        try: async () => {
          let have = await sizeOf(partPath)
          if (target.size !== undefined && have > target.size) {
            await truncate(partPath, 0)
            have = 0
          }
          return { have, hash: have > 0 ? await hashFile(partPath) : createHash("sha256") }
        },
        catch: cacheError(partPath)
      })
      const reset = async () => {
        await truncate(partPath, 0).catch((error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? undefined : Promise.reject(error)))
        state.have = 0
        state.hash = createHash("sha256")
      }

      // The most this part file has held: bytes fetched again after a restart are not progress.
      let best = state.have
      const pastBest = () => {
        const grew = state.have > best
        best = Math.max(best, state.have)
        return grew
      }
      yield* withRetries(url, options, async (signal): Promise<Outcome<void>> => {
        if (target.size !== undefined && state.have === target.size) return done(undefined)
        const headers: Record<string, string> = { ...authHeaders(options) }
        if (state.have > 0) headers.range = `bytes=${state.have}-`
        const { response, alive, release } = await guardedFetch(url, headers, signal, options)
        try {
          if (response.status === 416) {
            // Nothing left after our offset: either the part is complete, or the file changed.
            await discard(response)
            const total = parseContentRange(response.headers.get("content-range"))?.total ?? target.size
            if (total !== undefined && state.have === total) return done(undefined)
            await reset()
            return retry("range not satisfiable", { status: 416 })
          }
          if (!response.ok) {
            await discard(response)
            return statusOutcome(url, response)
          }
          if (response.status === 200 && state.have > 0) await reset() // the Range header was ignored: the body is the whole file
          if (response.status === 206) {
            const range = parseContentRange(response.headers.get("content-range"))
            if (range?.start !== state.have) {
              await discard(response)
              await reset()
              return retry(`asked for bytes from ${state.have}, got ${response.headers.get("content-range") ?? "no Content-Range"}`)
            }
          }
          if (response.body === null) return retry("empty body")
          const file = await open(partPath, "a").catch((error) => Promise.reject(new ShardCacheError({ path: partPath, reason: describeError(error) })))
          try {
            const reader = response.body.getReader()
            while (true) {
              let chunk: Awaited<ReturnType<typeof reader.read>>
              try {
                chunk = await reader.read()
              } catch (error) {
                return retry(describeError(error), { progressed: pastBest() })
              }
              if (chunk.done) break
              alive()
              try {
                await file.write(chunk.value)
              } catch (error) {
                return fail(new ShardCacheError({ path: partPath, reason: describeError(error) }))
              }
              state.hash.update(chunk.value)
              state.have += chunk.value.length
              onProgress({ received: state.have, total: target.size })
            }
          } finally {
            await file.close()
          }
          if (target.size !== undefined && state.have < target.size) {
            return retry(`connection closed at byte ${state.have} of ${target.size}`, { progressed: pastBest() })
          }
          return done(undefined)
        } catch (error) {
          if (error instanceof ShardCacheError) return fail(error)
          throw error
        } finally {
          release()
        }
      })

      const sha256 = state.hash.digest("hex")
      const sizeOk = target.size === undefined || state.have === target.size
      const shaOk = target.sha256 === undefined || sha256 === target.sha256.toLowerCase()
      const blob = target.gitBlobSha1 === undefined || !sizeOk ? undefined : yield* Effect.tryPromise({ try: () => gitBlobSha1Of(partPath), catch: cacheError(partPath) })
      const blobOk = blob === undefined || blob === target.gitBlobSha1!.toLowerCase()
      if (sizeOk && shaOk && blobOk) {
        if (target.sha256 === undefined && target.gitBlobSha1 === undefined) {
          notifyOf(options)(`warning: ${url} is unverified: the listing gives no checksum for it, only its size (${state.have} bytes)`)
        }
        return { size: state.have, sha256 }
      }
      // Never keep a wrong copy: the next fetch starts from zero.
      yield* Effect.tryPromise({ try: () => rm(partPath, { force: true }), catch: cacheError(partPath) })
      if (fetches >= MAX_CORRUPT_FETCHES) {
        return yield* new ShardCorrupt({
          url,
          expectedSha256: target.sha256 ?? (target.gitBlobSha1 === undefined ? "(unknown)" : `(git blob ${target.gitBlobSha1})`),
          actualSha256: sha256,
          expectedSize: target.size ?? state.have,
          actualSize: state.have,
          attempts: fetches
        })
      }
    }
  })

// ---------------------------------------------------------------------------------------
// Reading part of a remote file.

/**
 * Bytes [start, end) of the file at `url`, with retries. A server that ignores the Range
 * header sends the whole file; then the wanted bytes are cut out of the stream and the
 * rest of the transfer is cancelled, which is slow but correct.
 */
export const readRange = (url: string, start: number, end: number, options: HubOptions): Effect.Effect<Uint8Array, HubError> =>
  end <= start
    ? Effect.succeed(new Uint8Array(0))
    : withRetries(url, options, async (signal): Promise<Outcome<Uint8Array>> => {
      const headers = { ...authHeaders(options), range: `bytes=${start}-${end - 1}` }
      const { response, alive, release } = await guardedFetch(url, headers, signal, options)
      try {
        if (!response.ok) {
          await discard(response)
          return statusOutcome(url, response)
        }
        const skip = response.status === 206 ? (parseContentRange(response.headers.get("content-range"))?.start ?? -1) : 0
        if (skip !== start && response.status === 206) {
          await discard(response)
          return retry(`asked for bytes ${start}-${end - 1}, got ${response.headers.get("content-range") ?? "no Content-Range"}`)
        }
        // Position in the file of the body's first byte: `start` for a range answer, 0 for the whole file.
        const bodyStart = response.status === 206 ? start : 0
        const out = new Uint8Array(end - start)
        let at = bodyStart
        if (response.body === null) return retry("empty body")
        const reader = response.body.getReader()
        try {
          while (at < end) {
            let chunk: Awaited<ReturnType<typeof reader.read>>
            try {
              chunk = await reader.read()
            } catch (error) {
              return retry(describeError(error))
            }
            if (chunk.done) break
            alive()
            const bytes = chunk.value
            const from = Math.max(start, at)
            const to = Math.min(end, at + bytes.length)
            if (to > from) out.set(bytes.subarray(from - at, to - at), from - start)
            at += bytes.length
          }
        } finally {
          await reader.cancel().catch(() => undefined)
        }
        return at >= end ? done(out) : retry(`the file ended at byte ${at}, before ${end}`)
      } finally {
        release()
      }
    })

/** Size of a remote file from a one-byte range request (for URLs without a listing). */
export const remoteSize = (url: string, options: HubOptions): Effect.Effect<number, HubError> =>
  withRetries(url, options, async (signal): Promise<Outcome<number>> => {
    const { response, release } = await guardedFetch(url, { ...authHeaders(options), range: "bytes=0-0" }, signal, options)
    try {
      await discard(response)
      if (!response.ok) return statusOutcome(url, response)
      const total = response.status === 206
        ? parseContentRange(response.headers.get("content-range"))?.total
        : Number(response.headers.get("content-length") ?? NaN)
      return total !== undefined && Number.isFinite(total)
        ? done(total)
        : fail(new ShardUnavailable({ url, status: response.status, retries: 0, reason: "the server does not say how large the file is" }))
    } finally {
      release()
    }
  })
