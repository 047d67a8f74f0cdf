// Why this file exists: corpus shards are parquet files (FineWeb's format) of any size. This
// reader opens one lazily (only the footer is read up front), checks that it holds documents
// in a string `text` column, and hands out one row group at a time, decoded to apache-arrow,
// reading only the columns asked for, so memory stays flat however large the file is.
// Decoding runs in a worker thread (see parquet-worker.mjs for why).
import * as arrow from "apache-arrow"
import { Effect, Scope, Stream } from "effect"
import { stat } from "node:fs/promises"
import { basename } from "node:path"
import { Worker } from "node:worker_threads"
import { ParquetColumnType, ParquetCorrupt, type ParquetError, ParquetFileMissing, ParquetMissingColumn } from "./errors.ts"

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

export interface ParquetDecoder {
  /** Row counts per row group and the Arrow schema (as IPC bytes); fails with the decoder's reason. */
  readonly describe: (path: string) => Effect.Effect<DescribeResult, string>
  /** One row group, only `columns`, as an Arrow IPC stream; fails with the decoder's reason. */
  readonly read: (path: string, rowGroup: number, columns: ReadonlyArray<string>) => Effect.Effect<Uint8Array, string>
}

const workerUrl = new URL("./parquet-worker.mjs", import.meta.url)

/**
 * A decoder whose worker lives as long as the scope. The worker is unreferenced while idle
 * so it never keeps a finished program alive, and replaced after any failed request: a
 * WebAssembly instance that has panicked is not safe to reuse.
 */
export const makeParquetDecoder: Effect.Effect<ParquetDecoder, never, Scope.Scope> = Effect.gen(function* () {
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
    thread.on("message", (reply: Reply) => {
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
  yield* Effect.addFinalizer(() => Effect.sync(retire))

  return {
    describe: (path) => lock.withPermits(1)(request({ op: "describe", path })) as Effect.Effect<DescribeResult, string>,
    read: (path, rowGroup, columns) =>
      lock.withPermits(1)(request({ op: "read", path, rowGroup, columns: [...columns] })).pipe(
        Effect.map((result) => (result as { ipc: Uint8Array }).ipc)
      )
  }
})

// ---------------------------------------------------------------------------------------
// A validated shard.

/** The documents of one row group, in row order. A null `text` (a missing document) stays null. */
export interface RowGroupDocuments {
  readonly texts: ReadonlyArray<string | null>
  readonly ids: ReadonlyArray<string>
}

export interface ParquetShard {
  readonly path: string
  /** Rows in each row group, in file order. */
  readonly rowGroupRows: ReadonlyArray<number>
  /** The file's Arrow schema, from its footer. */
  readonly schema: arrow.Schema
  /** False when the file has no `id` column; ids are then `<file name>#<row group>:<row>`. */
  readonly hasIds: boolean
  /** One row group as an Arrow table holding only `columns`. */
  readonly readRowGroup: (rowGroup: number, columns: ReadonlyArray<string>) => Effect.Effect<arrow.Table, ParquetError>
  /** One row group's texts and ids as JavaScript strings. */
  readonly readDocuments: (rowGroup: number) => Effect.Effect<RowGroupDocuments, ParquetError>
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

/**
 * Open the parquet file at `path` and check it can serve documents: it exists, its footer
 * parses, and it has a string `text` column (and, if it has an `id` column, that is strings too).
 */
export const openParquetShard = (
  decoder: ParquetDecoder,
  path: string
): Effect.Effect<ParquetShard, ParquetError> =>
  Effect.gen(function* () {
    const info = yield* Effect.tryPromise({
      try: () => stat(path),
      catch: (error) => new ParquetFileMissing({ path, reason: (error as NodeJS.ErrnoException).code ?? String(error) })
    })
    if (!info.isFile()) return yield* new ParquetFileMissing({ path, reason: "not a regular file" })

    const described = yield* decoder.describe(path).pipe(
      Effect.mapError((reason) => new ParquetCorrupt({ path, reason }))
    )
    const schema = yield* Effect.try({
      try: () => arrow.tableFromIPC(described.schemaIpc).schema,
      catch: (error) => new ParquetCorrupt({ path, reason: `unreadable schema: ${String(error)}` })
    })
    yield* requireStringColumn(path, schema, "text", true)
    const hasIds = yield* requireStringColumn(path, schema, "id", false)
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
        const ipc = yield* decoder.read(path, rowGroup, columns).pipe(
          Effect.mapError((reason) => new ParquetCorrupt({ path, rowGroup, reason }))
        )
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
    const readDocuments = (rowGroup: number) =>
      readRowGroup(rowGroup, hasIds ? ["text", "id"] : ["text"]).pipe(
        Effect.map((table): RowGroupDocuments => {
          const textColumn = table.getChild("text")!
          const idColumn = hasIds ? table.getChild("id") : null
          const texts: Array<string | null> = new Array(table.numRows)
          const ids: string[] = new Array(table.numRows)
          for (let row = 0; row < table.numRows; row++) {
            texts[row] = textColumn.get(row) ?? null
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
): Stream.Stream<{ readonly rowGroup: number; readonly batch: arrow.RecordBatch }, ParquetError> =>
  Stream.fromIterable(shard.rowGroupRows.keys()).pipe(
    Stream.mapEffect((rowGroup) =>
      shard.readRowGroup(rowGroup, columns).pipe(
        Effect.map((table) => table.batches.map((batch) => ({ rowGroup, batch })))
      )
    ),
    Stream.flattenIterables
  )
