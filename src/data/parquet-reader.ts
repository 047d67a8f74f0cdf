// Why this file exists: corpus shards are parquet files (FineWeb's format) of any size. This
// reader opens one lazily (only the footer is read up front), checks that it holds documents
// in a string `text` column, and hands out one row group at a time, decoded to apache-arrow,
// reading only the columns asked for, so memory stays flat however large the file is.
// Decoding runs in a worker thread (see parquet-worker.mjs for why). A shard is a local file
// or a remote one read by byte ranges (`RemoteParquet`): the same reader serves both.
import * as arrow from "apache-arrow"
import { Effect, Runtime, Scope, Stream } from "effect"
import { type FileHandle, open, stat } from "node:fs/promises"
import { basename } from "node:path"
import { Worker } from "node:worker_threads"
import {
  type HubError,
  ParquetColumnType,
  ParquetCorrupt,
  type ParquetError,
  ParquetFileMissing,
  ParquetMissingColumn
} from "./errors.ts"
import { type ColumnFilter, filterColumns, filterProblem, rowMask } from "./filters.ts"

// ---------------------------------------------------------------------------------------
// The decoder: a worker thread that owns parquet-wasm, restarted after any failure.

interface DescribeResult {
  readonly rowGroupRows: number[]
  readonly schemaIpc: Uint8Array
}

interface Reply {
  readonly id: number
  readonly ok: boolean
  readonly result?: unknown
  readonly error?: string
}

/**
 * A parquet file on a server, read by byte ranges: `read(start, end)` returns bytes
 * [start, end). `key` identifies it to the decoder (a URL), `name` is for messages.
 */
export interface RemoteParquet {
  readonly key: string
  readonly name: string
  readonly size: number
  readonly read: (start: number, end: number) => Effect.Effect<Uint8Array, HubError>
}

/** A shard to open: a local path, or a remote file. */
export type ParquetLocation = string | RemoteParquet

/** Why a decoder request failed: the decoder's own reason, or the network error behind a remote read. */
export type DecodeFailure = string | HubError

export interface ParquetDecoder {
  /** Row counts per row group and the Arrow schema (as IPC bytes). */
  readonly describe: (location: ParquetLocation) => Effect.Effect<DescribeResult, DecodeFailure>
  /** One row group, only `columns`, as an Arrow IPC stream. */
  readonly read: (location: ParquetLocation, rowGroup: number, columns: ReadonlyArray<string>) => Effect.Effect<Uint8Array, DecodeFailure>
}

const workerUrl = new URL("./parquet-worker.mjs", import.meta.url)

/**
 * A decoder whose worker lives as long as the scope. The worker is unreferenced while idle
 * so it never keeps a finished program alive, and replaced after any failed request: a
 * WebAssembly instance that has panicked is not safe to reuse.
 */
export const makeParquetDecoder: Effect.Effect<ParquetDecoder, never, Scope.Scope> = Effect.gen(function* () {
  // Files the worker may ask bytes of, by key: local files read here with positioned reads,
  // remote ones through their `read`. The last network error of each remote file is kept
  // (the worker only sees a string; the caller gets the tagged error back).
  const files = new Map<string, RemoteParquet>()
  const remoteErrors = new Map<string, HubError>()
  const handles = new Map<string, Promise<FileHandle>>()
  const runtime = yield* Effect.runtime<never>()

  /** Positioned reads of a local file; its handle stays open until the decoder's scope closes. */
  const localRead = (path: string) => (start: number, end: number) =>
    Effect.tryPromise({
      try: async () => {
        let handle = handles.get(path)
        if (handle === undefined) {
          handle = open(path, "r")
          handles.set(path, handle)
        }
        const bytes = new Uint8Array(end - start)
        for (let at = 0; at < bytes.length;) {
          const { bytesRead } = await (await handle).read(bytes, at, bytes.length - at, start + at)
          if (bytesRead === 0) throw new Error(`the file ends at byte ${start + at}, before ${end} (it changed while open?)`)
          at += bytesRead
        }
        return bytes
      },
      catch: (error) => (error instanceof Error ? error.message : String(error))
    })

  const serveRange = (thread: Worker, ask: { rid: number; path: string; start: number; end: number }) => {
    const file = files.get(ask.path)
    if (file === undefined) {
      thread.postMessage({ rangeReply: ask.rid, ok: false, error: `no file registered as ${ask.path}` })
      return
    }
    Runtime.runCallback(runtime)(file.read(ask.start, ask.end) as Effect.Effect<Uint8Array, HubError | string>, {
      onExit: (exit) => {
        if (exit._tag === "Success") {
          thread.postMessage({ rangeReply: ask.rid, ok: true, bytes: exit.value }, [exit.value.buffer as ArrayBuffer])
        } else {
          const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          if (failure !== undefined && typeof failure !== "string") remoteErrors.set(ask.path, failure)
          const reason = failure === undefined ? "read interrupted" : typeof failure === "string" ? failure : failure.message
          thread.postMessage({ rangeReply: ask.rid, ok: false, error: reason })
        }
      }
    })
  }

  // Each worker answers only its own requests: when one dies, its late 'exit' event must not
  // fail the requests already sent to its replacement.
  interface Live {
    readonly thread: Worker
    readonly pending: Map<number, (reply: Reply) => void>
  }
  let live: Live | undefined
  let nextId = 0

  const retire = () => {
    const old = live
    live = undefined
    if (old !== undefined) void old.thread.terminate()
  }
  const spawn = (): Live => {
    const thread = new Worker(workerUrl)
    const pending = new Map<number, (reply: Reply) => void>()
    const failAll = (reason: string) => {
      if (live?.thread === thread) live = undefined
      for (const [id, resolve] of pending) resolve({ id, ok: false, error: reason })
      pending.clear()
    }
    thread.unref()
    thread.on("message", (reply: Reply & { range?: { rid: number; path: string; start: number; end: number } }) => {
      if (reply.range !== undefined) return serveRange(thread, reply.range)
      const resolve = pending.get(reply.id)
      pending.delete(reply.id)
      if (pending.size === 0) thread.unref()
      resolve?.(reply)
    })
    thread.on("error", (error) => failAll(`decoder crashed: ${error.message}`))
    thread.on("exit", (code) => failAll(`decoder exited with code ${code}`))
    return { thread, pending }
  }

  const request = (message: Record<string, unknown>): Effect.Effect<unknown, string> =>
    Effect.async<unknown, string>((resume) => {
      const worker = (live ??= spawn())
      const id = nextId++
      worker.pending.set(id, (reply) => {
        if (reply.ok) return resume(Effect.succeed(reply.result))
        if (live === worker) retire()
        resume(Effect.fail(reply.error ?? "unknown decoder error"))
      })
      worker.thread.ref()
      worker.thread.postMessage({ ...message, id })
      return Effect.sync(() => worker.pending.delete(id))
    })

  // One request at a time: memory holds at most one decoded row group.
  const lock = yield* Effect.makeSemaphore(1)
  yield* Effect.addFinalizer(() =>
    Effect.promise(async () => {
      retire()
      for (const handle of handles.values()) await handle.then((h) => h.close(), () => undefined)
      handles.clear()
    }))

  /** The request fields naming a location, registering it so the worker can ask for its bytes. */
  const target = (location: ParquetLocation): Effect.Effect<{ path: string; size: number }, string> => {
    if (typeof location !== "string") {
      files.set(location.key, location)
      return Effect.succeed({ path: location.key, size: location.size })
    }
    const known = files.get(location)
    if (known !== undefined) return Effect.succeed({ path: location, size: known.size })
    return Effect.tryPromise({
      try: () => stat(location),
      catch: (error) => (error instanceof Error ? error.message : String(error))
    }).pipe(Effect.map((info) => {
      files.set(location, { key: location, name: location, size: info.size, read: localRead(location) as unknown as RemoteParquet["read"] })
      return { path: location, size: info.size }
    }))
  }
  /** A failed request on a remote file reports the network error behind it, when there was one. */
  const explain = (location: ParquetLocation) => (reason: string): DecodeFailure => {
    if (typeof location === "string") return reason
    const network = remoteErrors.get(location.key)
    remoteErrors.delete(location.key)
    return network ?? reason
  }

  return {
    describe: (location) =>
      target(location).pipe(
        Effect.flatMap((file) => lock.withPermits(1)(request({ op: "describe", ...file }))),
        Effect.mapError(explain(location))
      ) as Effect.Effect<DescribeResult, DecodeFailure>,
    read: (location, rowGroup, columns) =>
      target(location).pipe(
        Effect.flatMap((file) => lock.withPermits(1)(request({ op: "read", ...file, rowGroup, columns: [...columns] }))),
        Effect.map((result) => (result as { ipc: Uint8Array }).ipc),
        Effect.mapError(explain(location))
      )
  }
})

// ---------------------------------------------------------------------------------------
// A validated shard.

/**
 * The documents of one row group, in row order. A row without a document (a null `text`, or
 * a row a filter rejected) has a null text: it keeps its row number but is never trained on.
 * A store that already holds tokens (the token cache) gives `tokens` instead of texts: each
 * document's ids followed by end-of-text, null where there is no document, and `texts` empty.
 */
export interface RowGroupDocuments {
  readonly texts: ReadonlyArray<string | null>
  readonly ids: ReadonlyArray<string>
  readonly tokens?: ReadonlyArray<TokenArray | null>
}

/** Token ids as stored: Int32Array when tokenised here, Uint16Array/Uint32Array from the token cache. */
export type TokenArray = Int32Array | Uint16Array | Uint32Array

/** Everything that can go wrong reading a shard, local or remote. */
export type ShardReadError = ParquetError | HubError

export interface ParquetShard {
  /** The file path, or the URL of a remote file: what messages name. */
  readonly path: string
  /** Rows in each row group, in file order. */
  readonly rowGroupRows: ReadonlyArray<number>
  /** The file's Arrow schema, from its footer. */
  readonly schema: arrow.Schema
  /** False when the file has no `id` column; ids are then `<file name>#<row group>:<row>`. */
  readonly hasIds: boolean
  /** One row group as an Arrow table holding only `columns`. */
  readonly readRowGroup: (rowGroup: number, columns: ReadonlyArray<string>) => Effect.Effect<arrow.Table, ShardReadError>
  /** One row group's texts and ids as JavaScript strings, with the filters applied (rejected rows have a null text). */
  readonly readDocuments: (rowGroup: number) => Effect.Effect<RowGroupDocuments, ShardReadError>
}

export interface OpenShardOptions {
  /** Keep only rows passing every filter (see filters.ts); checked against the schema on open. */
  readonly filters?: ReadonlyArray<ColumnFilter>
}

const isStringType = (type: arrow.DataType): boolean =>
  arrow.DataType.isUtf8(type) || arrow.DataType.isLargeUtf8(type) || arrow.DataType.isUtf8View(type) ||
  (arrow.DataType.isDictionary(type) && isStringType(type.dictionary))

const requireStringColumn = (path: string, schema: arrow.Schema, column: string, required: boolean) => {
  const field = schema.fields.find((f) => f.name === column)
  if (field === undefined) {
    return required
      ? Effect.fail(new ParquetMissingColumn({ path, column, found: schema.fields.map((f) => f.name) }))
      : Effect.succeed(false)
  }
  return isStringType(field.type)
    ? Effect.succeed(true)
    : Effect.fail(new ParquetColumnType({ path, column, found: String(field.type) }))
}

const checkFilters = (path: string, schema: arrow.Schema, filters: ReadonlyArray<ColumnFilter>) =>
  Effect.gen(function* () {
    for (const filter of filters) {
      const field = schema.fields.find((f) => f.name === filter.column)
      if (field === undefined) {
        return yield* new ParquetMissingColumn({ path, column: filter.column, found: schema.fields.map((f) => f.name) })
      }
      if (filterProblem([filter], schema) !== undefined) {
        return yield* new ParquetColumnType({ path, column: filter.column, found: String(field.type), expected: "numbers, for a numeric filter" })
      }
    }
  })

/** A decoder failure on `path`: the network error behind it, or the file's damage. */
const corrupt = (path: string, rowGroup?: number) => (failure: DecodeFailure): ShardReadError =>
  typeof failure === "string" ? new ParquetCorrupt({ path, rowGroup, reason: failure }) : failure

/**
 * Open a parquet shard (a local path, or a remote file read by ranges) and check it can serve
 * documents: it exists, its footer parses, it has a string `text` column (and, if it has an
 * `id` column, that is strings too), and every filter names a column it can compare.
 */
export const openParquetShard = (
  decoder: ParquetDecoder,
  location: ParquetLocation,
  options: OpenShardOptions = {}
): Effect.Effect<ParquetShard, ShardReadError> =>
  Effect.gen(function* () {
    const path = typeof location === "string" ? location : location.name
    if (typeof location === "string") {
      const info = yield* Effect.tryPromise({
        try: () => stat(location),
        catch: (error) => new ParquetFileMissing({ path, reason: (error as NodeJS.ErrnoException).code ?? String(error) })
      })
      if (!info.isFile()) return yield* new ParquetFileMissing({ path, reason: "not a regular file" })
    }

    const described = yield* decoder.describe(location).pipe(Effect.mapError(corrupt(path)))
    const schema = yield* Effect.try({
      try: () => arrow.tableFromIPC(described.schemaIpc).schema,
      catch: (error) => new ParquetCorrupt({ path, reason: `unreadable schema: ${String(error)}` })
    })
    yield* requireStringColumn(path, schema, "text", true)
    const hasIds = yield* requireStringColumn(path, schema, "id", false)
    const filters = options.filters ?? []
    yield* checkFilters(path, schema, filters)
    const rowGroupRows = described.rowGroupRows

    const readRowGroup = (rowGroup: number, columns: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        // parquet-wasm panics (unrecoverably) on an out-of-range row group or unknown column,
        // so both are checked here first.
        if (!(Number.isInteger(rowGroup) && rowGroup >= 0 && rowGroup < rowGroupRows.length)) {
          return yield* new ParquetCorrupt({ path, rowGroup, reason: `the file has ${rowGroupRows.length} row groups` })
        }
        for (const column of columns) {
          if (schema.fields.every((f) => f.name !== column)) {
            return yield* new ParquetMissingColumn({ path, column, found: schema.fields.map((f) => f.name) })
          }
        }
        const ipc = yield* decoder.read(location, rowGroup, columns).pipe(Effect.mapError(corrupt(path, rowGroup)))
        const table = yield* Effect.try({
          try: () => arrow.tableFromIPC(ipc),
          catch: (error) => new ParquetCorrupt({ path, rowGroup, reason: `undecodable Arrow data: ${String(error)}` })
        })
        if (table.numRows !== rowGroupRows[rowGroup]) {
          return yield* new ParquetCorrupt({
            path, rowGroup, reason: `footer promises ${rowGroupRows[rowGroup]} rows, decoded ${table.numRows}`
          })
        }
        return table
      })

    const fileName = basename(path)
    const documentColumns = [...new Set([...(hasIds ? ["text", "id"] : ["text"]), ...filterColumns(filters)])]
    const readDocuments = (rowGroup: number) =>
      readRowGroup(rowGroup, documentColumns).pipe(
        Effect.map((table): RowGroupDocuments => {
          const textColumn = table.getChild("text")!
          const idColumn = hasIds ? table.getChild("id") : null
          const keep = filters.length > 0 ? rowMask(filters, table) : undefined
          const texts: Array<string | null> = new Array(table.numRows)
          const ids: string[] = new Array(table.numRows)
          for (let row = 0; row < table.numRows; row++) {
            texts[row] = keep === undefined || keep[row] ? (textColumn.get(row) ?? null) : null
            ids[row] = idColumn?.get(row) ?? `${fileName}#${rowGroup}:${row}`
          }
          return { texts, ids }
        })
      )

    return { path, rowGroupRows, schema, hasIds, readRowGroup, readDocuments }
  })

/** Every row group of a shard in file order, as Arrow record batches holding `columns`. */
export const rowGroupBatches = (
  shard: ParquetShard,
  columns: ReadonlyArray<string> = ["text"]
): Stream.Stream<{ readonly rowGroup: number; readonly batch: arrow.RecordBatch }, ShardReadError> =>
  Stream.fromIterable(shard.rowGroupRows.keys()).pipe(
    Stream.mapEffect((rowGroup) =>
      shard.readRowGroup(rowGroup, columns).pipe(
        Effect.map((table) => table.batches.map((batch) => ({ rowGroup, batch })))
      )
    ),
    Stream.flattenIterables
  )
