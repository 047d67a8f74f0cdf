// Why this file exists: parquet-wasm decodes parquet inside WebAssembly, and damaged page
// data makes it panic ("RuntimeError: unreachable"): an exception nobody can catch and a
// promise that never settles. Running the decoder in its own worker thread turns that crash
// into a worker 'error' event the reader reports as ParquetCorrupt, and keeps decoding off
// the thread that trains. Plain JavaScript, because a worker thread gets no TypeScript loader.
//
// Protocol (one request at a time; the reader serialises them):
//   { id, op: "describe", path }                 -> { rowGroupRows: number[], schemaIpc: Uint8Array }
//   { id, op: "read", path, rowGroup, columns }  -> { ipc: Uint8Array }  (Arrow IPC stream)
// Replies are { id, ok: true, result } or { id, ok: false, error: string }.
import { openAsBlob } from "node:fs"
import { parentPort } from "node:worker_threads"
import * as parquet from "parquet-wasm"

// Files stay open between requests (a blob reads lazily, so an open file costs only its
// footer); the oldest is closed beyond this many.
const MAX_OPEN_FILES = 8
const open = new Map()

const fileFor = async (path) => {
  const cached = open.get(path)
  if (cached !== undefined) return cached
  const file = await parquet.ParquetFile.fromFile(await openAsBlob(path))
  open.set(path, file)
  if (open.size > MAX_OPEN_FILES) {
    const [oldestPath, oldest] = open.entries().next().value
    open.delete(oldestPath)
    oldest.free()
  }
  return file
}

const handle = async (request) => {
  const file = await fileFor(request.path)
  if (request.op === "describe") {
    const metadata = file.metadata()
    const rowGroupRows = []
    for (let i = 0; i < metadata.numRowGroups(); i++) rowGroupRows.push(metadata.rowGroup(i).numRows())
    return { result: { rowGroupRows, schemaIpc: file.schema().intoIPCStream() } }
  }
  const table = await file.read({ rowGroups: [request.rowGroup], columns: request.columns })
  return { result: { ipc: table.intoIPCStream() } }
}

parentPort.on("message", (request) => {
  handle(request).then(
    ({ result }) => {
      const transfer = [result.schemaIpc?.buffer ?? result.ipc.buffer]
      parentPort.postMessage({ id: request.id, ok: true, result }, transfer)
    },
    (error) => parentPort.postMessage({ id: request.id, ok: false, error: String(error?.message ?? error) })
  )
})
