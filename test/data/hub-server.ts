// Why this file exists: the Hub client must survive the network's real faults, so tests run
// it against a real HTTP server on 127.0.0.1 that speaks the Hub's API (revision, tree
// listing with Link pagination, resolve with byte ranges and a CDN-style redirect) and
// misbehaves on request: drops a connection mid-file, answers 500/503, ignores Range,
// stalls, or serves damaged bytes. Every request is logged so a test can check what the
// client asked for (which ranges, which headers).
import { createHash } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"

/** Faults for one file, consumed request by request. */
export interface FileFaults {
  /** Statuses answered (instead of the file) by the next requests, in order. */
  statuses?: number[]
  /** For the next requests, in order: send this many body bytes, then destroy the socket. */
  dropAfter?: number[]
  /** Answer range requests with the whole file (200), as some proxies do. */
  ignoreRange?: boolean
  /** The next this-many responses that reach the end of the file have one byte flipped. */
  corruptTimes?: number
  /** For the next requests: send this many bytes, then go silent (the client's idle timeout must fire). */
  stallAfter?: number[]
  /** Answer 404 always. */
  missing?: boolean
}

export interface HubServerOptions {
  /** `{ "owner/name": { "path/in/repo.parquet": bytes } }` */
  readonly repos: Record<string, Record<string, Uint8Array>>
  readonly faults?: Record<string, FileFaults>
  /** Entries per tree page; a `Link: rel="next"` header points at the next page. */
  readonly pageSize?: number
  /** The commit every branch resolves to. */
  readonly commit?: string
  /** Serve resolve URLs through a 302 to /cdn/..., as the Hub does for LFS files. */
  readonly redirect?: boolean
  /** Statuses answered by the next tree-listing requests, in order. */
  readonly listingStatuses?: number[]
  /**
   * Paths listed as files kept in git itself: no `lfs` entry, and `oid` is the real git blob id
   * (sha1 of "blob <size>\0" + bytes), as the Hub lists small files.
   */
  readonly gitFiles?: readonly string[]
}

export interface LoggedRequest {
  readonly method: string
  readonly url: string
  readonly range: string | undefined
  readonly authorization: string | undefined
}

export interface HubServer {
  readonly endpoint: string
  readonly log: LoggedRequest[]
  readonly options: HubServerOptions
  /** Bytes of file bodies sent so far. */
  bytesSent: number
  readonly close: () => Promise<void>
}

export const DEFAULT_COMMIT = "0123456789abcdef0123456789abcdef01234567"

export const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")
export const gitBlobSha1 = (bytes: Uint8Array): string => createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex")

const parseRange = (header: string | undefined, size: number): { start: number; end: number } | undefined => {
  if (header === undefined) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (m === null) return undefined
  if (m[1] === "") return { start: Math.max(0, size - Number(m[2])), end: size - 1 }
  return { start: Number(m[1]), end: m[2] === "" ? size - 1 : Math.min(size - 1, Number(m[2])) }
}

export const startHubServer = (options: HubServerOptions): Promise<HubServer> =>
  new Promise((resolve) => {
    const commit = options.commit ?? DEFAULT_COMMIT
    const faults = options.faults ?? {}
    const listingStatuses = [...(options.listingStatuses ?? [])]
    const server: HubServer = { endpoint: "", log: [], options, bytesSent: 0, close: async () => undefined }

    const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers })
      res.end(JSON.stringify(body))
    }

    const sendFile = (req: IncomingMessage, res: ServerResponse, repo: string, path: string) => {
      const bytes = options.repos[repo]?.[path]
      const fault = faults[path] ?? {}
      if (bytes === undefined || fault.missing === true) return json(res, 404, { error: "Entry not found" })
      const status = fault.statuses?.shift()
      if (status !== undefined) return json(res, status, { error: `injected ${status}` }, status === 503 ? { "retry-after": "0" } : {})
      const range = fault.ignoreRange === true ? undefined : parseRange(req.headers.range, bytes.length)
      if (range !== undefined && range.start >= bytes.length) {
        res.writeHead(416, { "content-range": `bytes */${bytes.length}` })
        return res.end()
      }
      const start = range?.start ?? 0
      const end = range?.end ?? bytes.length - 1
      let body = bytes.subarray(start, end + 1)
      if (end === bytes.length - 1 && (fault.corruptTimes ?? 0) > 0) {
        fault.corruptTimes! -= 1
        body = Uint8Array.from(body)
        body[Math.floor(body.length / 2)] ^= 0xff
      }
      const headers: Record<string, string> = {
        "content-length": String(body.length),
        "accept-ranges": "bytes",
        "content-type": "application/octet-stream"
      }
      if (range !== undefined) headers["content-range"] = `bytes ${start}-${end}/${bytes.length}`
      res.writeHead(range !== undefined ? 206 : 200, headers)
      const drop = fault.dropAfter?.shift()
      const stall = fault.stallAfter?.shift()
      if (drop !== undefined) {
        const part = body.subarray(0, Math.min(drop, body.length))
        server.bytesSent += part.length
        res.write(part, () => setTimeout(() => res.socket?.destroy(), 10))
        return
      }
      if (stall !== undefined) {
        const part = body.subarray(0, Math.min(stall, body.length))
        server.bytesSent += part.length
        res.write(part) // and nothing more; the socket is closed with the server
        return
      }
      server.bytesSent += body.length
      res.end(body)
    }

    const http = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1")
      server.log.push({
        method: req.method ?? "GET",
        url: url.pathname + url.search,
        range: req.headers.range,
        authorization: req.headers.authorization
      })
      const path = decodeURIComponent(url.pathname)
      let m = /^\/api\/datasets\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(path)
      if (m !== null) return options.repos[m[1]] === undefined ? json(res, 404, {}) : json(res, 200, { id: m[1], sha: commit })
      m = /^\/api\/datasets\/([^/]+\/[^/]+)\/tree\/([^/]+)\/?(.*)$/.exec(path)
      if (m !== null) {
        const status = listingStatuses.shift()
        if (status !== undefined) return json(res, status, { error: "injected" })
        const files = options.repos[m[1]]
        if (files === undefined) return json(res, 404, { error: "Repository not found" })
        const prefix = m[3]
        const inside = Object.keys(files).filter((p) => prefix === "" || p.startsWith(`${prefix}/`)).sort().reverse()
        const entries = [
          ...(prefix === "" ? [] : [{ type: "directory", oid: "d", size: 0, path: `${prefix}/nested` }]),
          ...inside.map((p) =>
            options.gitFiles?.includes(p) === true
              ? { type: "file", oid: gitBlobSha1(files[p]), size: files[p].length, path: p }
              : { type: "file", oid: "git-sha1", size: files[p].length, path: p, lfs: { oid: sha256(files[p]), size: files[p].length, pointerSize: 134 } })
        ]
        const pageSize = options.pageSize ?? 1000
        const cursor = Number(url.searchParams.get("cursor") ?? "0")
        const page = entries.slice(cursor, cursor + pageSize)
        const headers: Record<string, string> = {}
        if (cursor + pageSize < entries.length) {
          const next = new URL(url.toString())
          next.searchParams.set("cursor", String(cursor + pageSize))
          headers.link = `<${server.endpoint}${next.pathname}${next.search}>; rel="next"`
        }
        return json(res, 200, page, headers)
      }
      m = /^\/datasets\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path)
      if (m !== null) {
        if (options.redirect === true) {
          res.writeHead(302, { location: `/cdn/${m[1]}/${m[3]}` })
          return res.end()
        }
        return sendFile(req, res, m[1], m[3])
      }
      // Model repositories (same `repos` table): revision, tree listing and resolve without the /datasets prefix.
      m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(path)
      if (m !== null) {
        const status = listingStatuses.shift()
        if (status !== undefined) return json(res, status, { error: "injected" })
        return options.repos[m[1]] === undefined ? json(res, 404, { error: "Repository not found" }) : json(res, 200, { id: m[1], sha: commit })
      }
      m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)\/?$/.exec(path)
      if (m !== null) {
        const files = options.repos[m[1]]
        if (files === undefined) return json(res, 404, { error: "Repository not found" })
        return json(res, 200, Object.keys(files).sort().map((p) => ({ type: "file", oid: "git-sha1", size: files[p].length, path: p, ...(p.endsWith(".json") ? {} : { lfs: { oid: sha256(files[p]), size: files[p].length, pointerSize: 134 } }) })))
      }
      m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path)
      if (m !== null && m[1].split("/")[0] !== "datasets") {
        if (options.redirect === true) {
          res.writeHead(302, { location: `/cdn/${m[1]}/${m[3]}` })
          return res.end()
        }
        return sendFile(req, res, m[1], m[3])
      }
      m = /^\/cdn\/([^/]+\/[^/]+)\/(.+)$/.exec(path)
      if (m !== null) return sendFile(req, res, m[1], m[2])
      json(res, 404, { error: "no route" })
    })
    http.keepAliveTimeout = 1000
    http.listen(0, "127.0.0.1", () => {
      const { port } = http.address() as AddressInfo
      Object.assign(server, {
        endpoint: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            http.closeAllConnections()
            http.close(() => done())
          })
      })
      resolve(server)
    })
  })

/** A hub server for the duration of a scope. */
export const hubServer = (options: HubServerOptions) =>
  Effect.acquireRelease(Effect.promise(() => startHubServer(options)), (s) => Effect.promise(() => s.close()))
