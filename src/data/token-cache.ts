// Why this file exists: tokenising FineWeb costs more CPU than reading it, and every epoch
// would pay it again. The token cache pays once: each shard is tokenised into a flat file of
// uint16 (vocabularies up to 65,536) or uint32 token ids, laid out by row group so later
// epochs stream it one row group at a time, exactly as they would read the parquet file. The
// rows keep their numbers (a row without a document is stored as empty), so a data cursor
// means the same position in the cache and in the parquet file, and a run can switch between
// them and resume.
//
// File layout (little-endian):
//   [0, 256)             header: magic "GBTOKENS", version, dtype, token count, row groups,
//                        rows, index offset, tokenizer name, sha256 of the source parquet,
//                        sha256 of the options (filters), sha256 of everything after the header
//   [256, indexOffset)   one block per row group, in file order:
//                          u32 rows
//                          u32 × rows       tokens per row, end-of-text included (0: no document)
//                          u32 × (rows+1)   byte offsets of the ids
//                          u8  × …          the ids (UTF-8), padded to 4 bytes
//                          u16|u32 × …      the tokens of every document, end to end
//   [indexOffset, end)   the index: per row group u64 block offset, u64 block length, u32 rows, u32 documents
//
// A cache is trusted only when its header matches what is asked for (tokenizer, source,
// options) and its payload hashes to the recorded sha256; otherwise it is deleted and rebuilt.
import { Effect, Scope, Stream } from "effect"
import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { type FileHandle, mkdir, open, readdir, rename, rm } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import type { TokenizerName } from "../tokenizer/encoding.ts"
import type { RowGroupStore } from "./document-source.ts"
import { type DataError, TokenCacheError } from "./errors.ts"
import { type ColumnFilter, formatFilter } from "./filters.ts"
import {
  makeParquetDecoder,
  openParquetShard,
  type ParquetLocation,
  type ParquetShard,
  type RowGroupDocuments,
  type TokenArray
} from "./parquet-reader.ts"
import { hashOf } from "./shard-store.ts"
import type { DocumentTokenizerShape } from "./tokenize-pool.ts"

export const TOKEN_CACHE_MAGIC = "GBTOKENS"
export const TOKEN_CACHE_VERSION = 1
export const HEADER_BYTES = 256
const INDEX_ENTRY_BYTES = 24

export type TokenDtype = "uint16" | "uint32"

export interface TokenCacheHeader {
  readonly version: number
  readonly dtype: TokenDtype
  /** Tokens in the file, end-of-text markers included. */
  readonly tokenCount: number
  readonly rowGroups: number
  readonly rows: number
  readonly indexOffset: number
  readonly tokenizer: string
  readonly sourceSha256: string
  readonly optionsSha256: string
  readonly payloadSha256: string
}

/** The smallest dtype that holds every id below `vocabSize`. */
export const dtypeFor = (vocabSize: number): TokenDtype => (vocabSize <= 65_536 ? "uint16" : "uint32")
const bytesPer = (dtype: TokenDtype) => (dtype === "uint16" ? 2 : 4)

// ---------------------------------------------------------------------------------------
// Pure encoding and decoding.

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const hexBytes = (hex: string): Uint8Array => Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16))
const toHex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")

export const encodeHeader = (h: TokenCacheHeader): Uint8Array => {
  const bytes = new Uint8Array(HEADER_BYTES)
  const view = new DataView(bytes.buffer)
  bytes.set(encoder.encode(TOKEN_CACHE_MAGIC), 0)
  view.setUint32(8, h.version, true)
  view.setUint32(12, bytesPer(h.dtype), true)
  view.setBigUint64(16, BigInt(h.tokenCount), true)
  view.setUint32(24, h.rowGroups, true)
  view.setUint32(28, h.rows, true)
  view.setBigUint64(32, BigInt(h.indexOffset), true)
  bytes.set(encoder.encode(h.tokenizer).subarray(0, 32), 64)
  bytes.set(hexBytes(h.sourceSha256), 96)
  bytes.set(hexBytes(h.optionsSha256), 128)
  bytes.set(hexBytes(h.payloadSha256), 160)
  return bytes
}

/** The header, or why these bytes are not one. */
export const decodeHeader = (bytes: Uint8Array): TokenCacheHeader | string => {
  if (bytes.length < HEADER_BYTES) return `the file is shorter than its ${HEADER_BYTES}-byte header`
  if (decoder.decode(bytes.subarray(0, 8)) !== TOKEN_CACHE_MAGIC) return "not a token cache (wrong magic)"
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES)
  const version = view.getUint32(8, true)
  if (version !== TOKEN_CACHE_VERSION) return `format version ${version}, this program reads version ${TOKEN_CACHE_VERSION}`
  const width = view.getUint32(12, true)
  if (width !== 2 && width !== 4) return `unknown token width ${width}`
  const name = bytes.subarray(64, 96)
  const end = name.indexOf(0)
  return {
    version,
    dtype: width === 2 ? "uint16" : "uint32",
    tokenCount: Number(view.getBigUint64(16, true)),
    rowGroups: view.getUint32(24, true),
    rows: view.getUint32(28, true),
    indexOffset: Number(view.getBigUint64(32, true)),
    tokenizer: decoder.decode(end === -1 ? name : name.subarray(0, end)),
    sourceSha256: toHex(bytes.subarray(96, 128)),
    optionsSha256: toHex(bytes.subarray(128, 160)),
    payloadSha256: toHex(bytes.subarray(160, 192))
  }
}

const align4 = (n: number) => (n + 3) & ~3

/** One row group's block. `tokens[row]` holds the document's ids with end-of-text, or null for no document. */
export const encodeBlock = (ids: ReadonlyArray<string>, tokens: ReadonlyArray<TokenArray | null>, dtype: TokenDtype): Uint8Array => {
  const rows = ids.length
  const idBytes = ids.map((id) => encoder.encode(id))
  const idTotal = idBytes.reduce((n, b) => n + b.length, 0)
  const tokenTotal = tokens.reduce((n, t) => n + (t?.length ?? 0), 0)
  const tokensAt = 4 + 4 * rows + 4 * (rows + 1) + align4(idTotal)
  const block = new Uint8Array(tokensAt + tokenTotal * bytesPer(dtype))
  const view = new DataView(block.buffer)
  view.setUint32(0, rows, true)
  let idAt = 4 + 8 * rows + 4
  const idStart = idAt
  for (let row = 0; row < rows; row++) {
    view.setUint32(4 + 4 * row, tokens[row]?.length ?? 0, true)
    view.setUint32(4 + 4 * rows + 4 * row, idAt - idStart, true)
    block.set(idBytes[row], idAt)
    idAt += idBytes[row].length
  }
  view.setUint32(4 + 4 * rows + 4 * rows, idAt - idStart, true)
  const out = dtype === "uint16" ? new Uint16Array(block.buffer, tokensAt, tokenTotal) : new Uint32Array(block.buffer, tokensAt, tokenTotal)
  let at = 0
  for (const t of tokens) {
    if (t === null) continue
    out.set(t, at)
    at += t.length
  }
  return block
}

/** A block back to documents: token arrays are views into `block` (no copy). */
export const decodeBlock = (block: Uint8Array, dtype: TokenDtype, expectedRows: number): RowGroupDocuments | string => {
  if (block.byteOffset % 4 !== 0) block = block.slice()
  if (block.length < 4) return "block shorter than its row count"
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength)
  const rows = view.getUint32(0, true)
  if (rows !== expectedRows) return `block holds ${rows} rows, the index says ${expectedRows}`
  const idStart = 4 + 8 * rows + 4
  if (block.length < idStart) return "block shorter than its row table"
  const idTotal = view.getUint32(4 + 8 * rows, true)
  const tokensAt = idStart + align4(idTotal)
  let tokenTotal = 0
  for (let row = 0; row < rows; row++) tokenTotal += view.getUint32(4 + 4 * row, true)
  if (block.length !== tokensAt + tokenTotal * bytesPer(dtype)) return "block length does not match its row table"
  const all = dtype === "uint16"
    ? new Uint16Array(block.buffer, block.byteOffset + tokensAt, tokenTotal)
    : new Uint32Array(block.buffer, block.byteOffset + tokensAt, tokenTotal)
  const ids: string[] = new Array(rows)
  const tokens: Array<TokenArray | null> = new Array(rows)
  let at = 0
  for (let row = 0; row < rows; row++) {
    const from = view.getUint32(4 + 4 * rows + 4 * row, true)
    const to = view.getUint32(4 + 4 * rows + 4 * (row + 1), true)
    if (to < from || to > idTotal) return "id offsets out of order"
    ids[row] = decoder.decode(block.subarray(idStart + from, idStart + to))
    const length = view.getUint32(4 + 4 * row, true)
    tokens[row] = length === 0 ? null : all.subarray(at, at + length)
    at += length
  }
  return { texts: [], ids, tokens }
}

// ---------------------------------------------------------------------------------------
// Files.

export interface TokenCacheKey {
  readonly tokenizer: TokenizerName
  /** sha256 of the parquet file the tokens come from. */
  readonly sourceSha256: string
  /** Filters applied when reading the source (they change which rows hold documents). */
  readonly filters: ReadonlyArray<ColumnFilter>
}

/** sha256 of everything besides tokenizer and source that changes the cache's content. */
export const optionsSha256 = (key: TokenCacheKey): string =>
  createHash("sha256").update(JSON.stringify({ version: TOKEN_CACHE_VERSION, filters: key.filters.map(formatFilter) })).digest("hex")

/** Where the cache for `sourcePath` lives under `dir`: named by source, its hash, tokenizer and options. */
export const tokenCachePath = (dir: string, sourcePath: string, key: TokenCacheKey): string =>
  join(dir, `${basename(sourcePath).replace(/\.parquet$/i, "")}-${key.sourceSha256.slice(0, 16)}.${key.tokenizer}.${optionsSha256(key).slice(0, 8)}.tokens`)

export interface TokenCacheFile {
  readonly path: string
  readonly header: TokenCacheHeader
  readonly rowGroupRows: ReadonlyArray<number>
  /** Documents per row group (rows with a document). */
  readonly rowGroupDocuments: ReadonlyArray<number>
  readonly readRowGroup: (rowGroup: number) => Effect.Effect<RowGroupDocuments, TokenCacheError>
}

const cacheError = (path: string) => (error: unknown) =>
  new TokenCacheError({ path, reason: error instanceof Error ? error.message : String(error) })

const readAt = (handle: FileHandle, path: string, position: number, length: number) =>
  Effect.tryPromise({
    try: async () => {
      const bytes = new Uint8Array(length)
      const { bytesRead } = await handle.read(bytes, 0, length, position)
      if (bytesRead !== length) throw new Error(`the file ends before byte ${position + length}`)
      return bytes
    },
    catch: cacheError(path)
  })

const hashRange = (path: string, start: number) =>
  Effect.tryPromise({
    try: () =>
      new Promise<string>((resolve, reject) => {
        const hash = createHash("sha256")
        createReadStream(path, { start }).on("data", (c) => hash.update(c)).on("error", reject).on("end", () => resolve(hash.digest("hex")))
      }),
    catch: cacheError(path)
  })

/**
 * Open a cache file and check it is the one asked for: header fields, sizes, and (with
 * `verify`, the default) the sha256 of the whole payload. Any mismatch is TokenCacheError.
 */
export const openTokenCache = (
  path: string,
  key: TokenCacheKey,
  options: { readonly verify?: boolean } = {}
): Effect.Effect<TokenCacheFile, TokenCacheError, Scope.Scope> =>
  Effect.gen(function* () {
    const invalid = (reason: string) => new TokenCacheError({ path, reason })
    const handle = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => open(path, "r"), catch: cacheError(path) }),
      (h) => Effect.promise(() => h.close())
    )
    const size = yield* Effect.tryPromise({ try: () => handle.stat().then((s) => s.size), catch: cacheError(path) })
    const header = decodeHeader(yield* readAt(handle, path, 0, Math.min(HEADER_BYTES, size)))
    if (typeof header === "string") return yield* invalid(header)
    if (header.tokenizer !== key.tokenizer) return yield* invalid(`built with tokenizer ${header.tokenizer}, not ${key.tokenizer}`)
    if (header.sourceSha256 !== key.sourceSha256) return yield* invalid("built from another version of the source file")
    if (header.optionsSha256 !== optionsSha256(key)) return yield* invalid("built with other filters")
    if (header.indexOffset + header.rowGroups * INDEX_ENTRY_BYTES !== size) {
      return yield* invalid(`size ${size} bytes does not match the header (truncated or padded)`)
    }
    if (options.verify !== false) {
      const actual = yield* hashRange(path, HEADER_BYTES)
      if (actual !== header.payloadSha256) return yield* invalid("checksum mismatch (the file is damaged)")
    }
    const index = yield* readAt(handle, path, header.indexOffset, header.rowGroups * INDEX_ENTRY_BYTES)
    const view = new DataView(index.buffer)
    const blocks: Array<{ offset: number; length: number; rows: number; docs: number }> = []
    for (let rg = 0; rg < header.rowGroups; rg++) {
      const at = rg * INDEX_ENTRY_BYTES
      const entry = {
        offset: Number(view.getBigUint64(at, true)),
        length: Number(view.getBigUint64(at + 8, true)),
        rows: view.getUint32(at + 16, true),
        docs: view.getUint32(at + 20, true)
      }
      if (entry.offset < HEADER_BYTES || entry.offset + entry.length > header.indexOffset) return yield* invalid(`row group ${rg} lies outside the file`)
      blocks.push(entry)
    }
    if (blocks.reduce((n, b) => n + b.rows, 0) !== header.rows) return yield* invalid("row counts disagree with the header")

    const readRowGroup = (rowGroup: number) =>
      Effect.gen(function* () {
        const block = blocks[rowGroup]
        if (block === undefined) return yield* invalid(`no row group ${rowGroup} (the file has ${blocks.length})`)
        const decoded = decodeBlock(yield* readAt(handle, path, block.offset, block.length), header.dtype, block.rows)
        return typeof decoded === "string" ? yield* invalid(`row group ${rowGroup}: ${decoded}`) : decoded
      })

    return { path, header, rowGroupRows: blocks.map((b) => b.rows), rowGroupDocuments: blocks.map((b) => b.docs), readRowGroup }
  })

export interface BuildProgress {
  readonly rowGroup: number
  readonly rowGroups: number
  readonly tokens: number
  /** Characters of text tokenised so far. */
  readonly chars: number
}

/**
 * Tokenise every row group of `shard` (opened with the key's filters) with `tokenizer` and
 * write the cache to `path`: into a temporary file first, renamed into place when complete,
 * so a crash never leaves a file that looks valid. Row groups are read one ahead of the
 * tokenizer; memory holds a few row groups at most.
 */
export const buildTokenCache = (options: {
  readonly path: string
  readonly shard: ParquetShard
  readonly key: TokenCacheKey
  readonly tokenizer: DocumentTokenizerShape
  readonly onProgress?: (progress: BuildProgress) => void
}): Effect.Effect<void, DataError> =>
  Effect.gen(function* () {
    const { path, shard, key, tokenizer } = options
    const dtype = dtypeFor(tokenizer.encoding.vocabSize)
    const temp = `${path}.tmp-${process.pid}`
    yield* Effect.tryPromise({ try: () => mkdir(join(path, ".."), { recursive: true }), catch: cacheError(path) })
    yield* removeStaleTemporaries(path)
    const handle = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => open(temp, "w"), catch: cacheError(temp) }),
      (h) => Effect.promise(() => h.close().catch(() => undefined))
    )
    const write = (bytes: Uint8Array, position: number) =>
      Effect.tryPromise({ try: () => handle.write(bytes, 0, bytes.length, position), catch: cacheError(temp) })

    const hash = createHash("sha256")
    const index = new Uint8Array(shard.rowGroupRows.length * INDEX_ENTRY_BYTES)
    const indexView = new DataView(index.buffer)
    let at = HEADER_BYTES
    let tokenCount = 0
    let chars = 0
    const rowGroups = shard.rowGroupRows.length

    yield* Stream.range(0, rowGroups - 1).pipe(
      Stream.take(rowGroups),
      Stream.mapEffect((rowGroup) => Effect.map(shard.readDocuments(rowGroup), (docs) => ({ rowGroup, docs })), { concurrency: 2 }),
      Stream.mapEffect(({ rowGroup, docs }) => {
        const rows = docs.ids.map((_, row) => row).filter((row) => docs.texts[row] !== null)
        const texts = rows.map((row) => docs.texts[row]!)
        const batch = { texts, ids: rows.map((row) => docs.ids[row]), rows, shard: 0, rowGroup, firstRow: rows[0] ?? 0, epoch: 0 }
        return Effect.map(tokenizer.tokenize(batch), (tokens) => ({ rowGroup, docs, rows, tokens, chars: texts.reduce((n, t) => n + t.length, 0) }))
      }, { concurrency: Math.max(1, tokenizer.workers) }),
      Stream.runForEach(({ rowGroup, docs, rows, tokens, chars: groupChars }) =>
        Effect.gen(function* () {
          const perRow: Array<TokenArray | null> = new Array(docs.ids.length).fill(null)
          rows.forEach((row, i) => (perRow[row] = tokens[i]))
          const block = encodeBlock(docs.ids, perRow, dtype)
          yield* write(block, at)
          hash.update(block)
          indexView.setBigUint64(rowGroup * INDEX_ENTRY_BYTES, BigInt(at), true)
          indexView.setBigUint64(rowGroup * INDEX_ENTRY_BYTES + 8, BigInt(block.length), true)
          indexView.setUint32(rowGroup * INDEX_ENTRY_BYTES + 16, docs.ids.length, true)
          indexView.setUint32(rowGroup * INDEX_ENTRY_BYTES + 20, rows.length, true)
          at += block.length
          tokenCount += tokens.reduce((n, t) => n + t.length, 0)
          chars += groupChars
          options.onProgress?.({ rowGroup, rowGroups, tokens: tokenCount, chars })
        }))
    )
    const indexOffset = at
    yield* write(index, indexOffset)
    hash.update(index)
    const header: TokenCacheHeader = {
      version: TOKEN_CACHE_VERSION,
      dtype,
      tokenCount,
      rowGroups,
      rows: shard.rowGroupRows.reduce((n, r) => n + r, 0),
      indexOffset,
      tokenizer: tokenizer.encoding.name,
      sourceSha256: key.sourceSha256,
      optionsSha256: optionsSha256(key),
      payloadSha256: hash.digest("hex")
    }
    yield* write(encodeHeader(header), 0)
    yield* Effect.tryPromise({ try: () => handle.sync(), catch: cacheError(temp) })
    yield* Effect.tryPromise({ try: () => rename(temp, path), catch: cacheError(path) })
  }).pipe(
    Effect.scoped,
    // Failed or interrupted: the partial file goes (a kill -9 is caught by the next build instead).
    Effect.onError(() => Effect.promise(() => rm(`${options.path}.tmp-${process.pid}`, { force: true })))
  )

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Partial builds of `path` left by processes that died (`<path>.tmp-<pid>`): removed before a new build. */
const removeStaleTemporaries = (path: string) =>
  Effect.promise(async () => {
    const dir = dirname(path)
    const prefix = `${basename(path)}.tmp-`
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!name.startsWith(prefix)) continue
      const pid = Number(name.slice(prefix.length))
      if (!Number.isInteger(pid) || pid === process.pid || !isAlive(pid)) await rm(join(dir, name), { force: true }).catch(() => undefined)
    }
  })

export interface EnsureTokenCacheOptions {
  /** Directory of cache files. */
  readonly dir: string
  /** The parquet shard, opened with `key.filters`. */
  readonly shard: ParquetShard
  /** The source file's sha256 if known (the shard store knows it); computed otherwise. */
  readonly sourceSha256?: string
  readonly filters: ReadonlyArray<ColumnFilter>
  readonly tokenizer: DocumentTokenizerShape
  readonly verify?: boolean
  /** Told why a cache is (re)built: "missing", or the reason the old one was rejected. */
  readonly onBuild?: (path: string, reason: string) => void
  readonly onProgress?: (progress: BuildProgress) => void
}

/**
 * The shard's token cache, opened and verified; built when missing, rebuilt when it does not
 * match or fails its checksum. A cache that fails again right after being built is an error.
 */
export const ensureTokenCache = (options: EnsureTokenCacheOptions): Effect.Effect<TokenCacheFile, DataError, Scope.Scope> =>
  Effect.gen(function* () {
    const sourceSha256 = options.sourceSha256 ??
      (yield* Effect.tryPromise({ try: () => hashOf(options.shard.path), catch: cacheError(options.shard.path) }))
    const key: TokenCacheKey = { tokenizer: options.tokenizer.encoding.name, sourceSha256, filters: options.filters }
    const path = tokenCachePath(options.dir, options.shard.path, key)
    const exists = yield* Effect.promise(() => open(path, "r").then((h) => h.close().then(() => true), () => false))
    if (exists) {
      const found = yield* Effect.either(openTokenCache(path, key, { verify: options.verify }))
      if (found._tag === "Right") return found.right
      options.onBuild?.(path, found.left.reason)
      yield* Effect.promise(() => rm(path, { force: true }))
    } else {
      options.onBuild?.(path, "missing")
    }
    yield* buildTokenCache({ path, shard: options.shard, key, tokenizer: options.tokenizer, onProgress: options.onProgress })
    return yield* openTokenCache(path, key, { verify: options.verify })
  })

/** A row-group store over token caches: the document source then never tokenises. */
export const tokenCacheStore = (files: ReadonlyArray<TokenCacheFile>): RowGroupStore => ({
  shards: files.map((f) => ({ name: f.path, rowGroupRows: f.rowGroupRows })),
  read: (shard, rowGroup) => files[shard].readRowGroup(rowGroup),
  tokenizer: files[0]?.header.tokenizer
})

/**
 * A shard whose bytes are only fetched when needed: a valid token cache of it makes the
 * parquet file unnecessary (the Hub source uses this so a prepared shard is never downloaded).
 */
export interface LazyParquet {
  /** The file's name, used to name its token cache. */
  readonly name: string
  readonly open: Effect.Effect<ParquetLocation, DataError, Scope.Scope>
}

export interface CachedStoreOptions {
  /** Parquet shards, local, remote or fetched on demand, in order. */
  readonly paths: ReadonlyArray<ParquetLocation | LazyParquet>
  /** sha256 of each shard when known (from the shard store); computed for local files otherwise. */
  readonly sha256s?: ReadonlyArray<string | undefined>
  readonly filters: ReadonlyArray<ColumnFilter>
  readonly dir: string
  readonly tokenizer: DocumentTokenizerShape
  readonly verify?: boolean
  readonly onBuild?: (path: string, reason: string) => void
  readonly onProgress?: (shard: number, progress: BuildProgress) => void
}

const isLazy = (location: ParquetLocation | LazyParquet): location is LazyParquet => typeof location !== "string" && "open" in location
const nameOf = (location: ParquetLocation | LazyParquet) => (typeof location === "string" ? location : location.name)

/**
 * A row-group store reading token caches of parquet shards, building each cache that is
 * missing or invalid first. Row numbers are the parquet file's, so cursors carry over. When a
 * shard's sha256 is known and its cache is valid, the parquet file is not even opened.
 */
export const openTokenCacheStore = (
  options: CachedStoreOptions
): Effect.Effect<RowGroupStore & { readonly files: ReadonlyArray<TokenCacheFile> }, DataError, Scope.Scope> =>
  Effect.gen(function* () {
    const decoder = yield* makeParquetDecoder
    const files = yield* Effect.forEach(options.paths, (location, i) =>
      Effect.gen(function* () {
        const sha256 = options.sha256s?.[i]
        if (sha256 !== undefined) {
          const key: TokenCacheKey = { tokenizer: options.tokenizer.encoding.name, sourceSha256: sha256, filters: options.filters }
          const ready = yield* Effect.either(openTokenCache(tokenCachePath(options.dir, nameOf(location), key), key, { verify: options.verify }))
          if (ready._tag === "Right") return ready.right
        }
        const resolved = isLazy(location) ? yield* location.open : location
        const shard = yield* openParquetShard(decoder, resolved, { filters: options.filters })
        return yield* ensureTokenCache({
          dir: options.dir,
          shard,
          sourceSha256: sha256,
          filters: options.filters,
          tokenizer: options.tokenizer,
          verify: options.verify,
          onBuild: options.onBuild,
          onProgress: (progress) => options.onProgress?.(i, progress)
        })
      }))
    return { ...tokenCacheStore(files), files }
  })
