// Why this file exists: parquet-wasm decodes parquet inside WebAssembly, and damaged page
// data makes it panic ("RuntimeError: unreachable"): an exception nobody can catch and a
// promise that never settles. Running the decoder in its own worker thread turns that crash
// into a worker 'error' event the reader reports as ParquetCorrupt, and keeps decoding off
// the thread that trains. Plain JavaScript, because a worker thread gets no TypeScript loader.
//
// Protocol (one request at a time; the reader serialises them):
//   { id, op: "describe", path, size }                 -> { rowGroupRows: number[], schemaIpc: Uint8Array }
//   { id, op: "read", path, size, rowGroup, columns }  -> { ipc: Uint8Array }  (Arrow IPC stream)
// Replies are { id, ok: true, result } or { id, ok: false, error: string }.
//
// Bytes come from the parent. parquet-wasm reads a file through the Blob interface (size,
// slice, arrayBuffer), so a Blob-shaped object whose arrayBuffer() asks the parent thread for
// a byte range lets it read any file the parent can reach: a local file (positioned reads),
// or one on a web server (HTTP range requests, with the parent's retries and credentials):
// the footer first, then only the column chunks of the row group asked for. `path` is the
// parent's key for the file. This thread touches neither disk nor network; it only asks:
//   worker -> parent  { range: { rid, path, start, end } }
//   parent -> worker  { rangeReply: rid, ok: true, bytes: Uint8Array } | { rangeReply: rid, ok: false, error }
// (Node's fs.openAsBlob would also serve local files, but over a large file its reads kept
// tens of megabytes of buffers alive in this thread; fresh buffers from the parent do not.)
import { parentPort } from "node:worker_threads"
import * as parquet from "parquet-wasm"

// Files stay open between requests (a blob reads lazily, so an open file costs only its
// footer); the oldest is closed beyond this many.
const MAX_OPEN_FILES = 8
const open = new Map()

const ranges = new Map()
let nextRange = 0
const fetchRange = (path, start, end) =>
  new Promise((resolve, reject) => {
    const rid = nextRange++
    ranges.set(rid, { resolve, reject })
    parentPort.postMessage({ range: { rid, path, start, end } })
  })

/** A read-only Blob over bytes [start, end) of a file, with Blob's slice arithmetic; bytes come from the parent. */
class RangeBlob {
  constructor(path, start, end) {
    this.path = path
    this.start = start
    this.end = end
  }
  get size() {
    return this.end - this.start
  }
  slice(start = 0, end = this.size) {
    const clamp = (i) => Math.max(0, Math.min(this.size, i < 0 ? this.size + i : i))
    const from = clamp(start)
    return new RangeBlob(this.path, this.start + from, this.start + Math.max(from, clamp(end)))
  }
  async arrayBuffer() {
    const bytes = await fetchRange(this.path, this.start, this.end)
    return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
      ? bytes.buffer
      : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
  }
}

const fileFor = async (request) => {
  const cached = open.get(request.path)
  if (cached !== undefined) return cached
  const file = await parquet.ParquetFile.fromFile(new RangeBlob(request.path, 0, request.size))
  open.set(request.path, file)
  if (open.size > MAX_OPEN_FILES) {
    const [oldestPath, oldest] = open.entries().next().value
    open.delete(oldestPath)
    oldest.free()
  }
  return file
}

const handle = async (request) => {
  const file = await fileFor(request)
  if (request.op === "describe") {
    const metadata = file.metadata()
    const rowGroupRows = []
    for (let i = 0; i < metadata.numRowGroups(); i++) rowGroupRows.push(metadata.rowGroup(i).numRows())
    return { result: { rowGroupRows, schemaIpc: file.schema().intoIPCStream() } }
  }
  const table = await file.read({ rowGroups: [request.rowGroup], columns: request.columns })
  return { result: { ipc: table.intoIPCStream() } }
}

parentPort.on("message", (message) => {
  if (message.rangeReply !== undefined) {
    const waiting = ranges.get(message.rangeReply)
    ranges.delete(message.rangeReply)
    if (message.ok) waiting?.resolve(message.bytes)
    else waiting?.reject(new Error(message.error))
    return
  }
  const request = message
  handle(request).then(
    ({ result }) => {
      const transfer = [result.schemaIpc?.buffer ?? result.ipc.buffer]
      parentPort.postMessage({ id: request.id, ok: true, result }, transfer)
    },
    (error) => parentPort.postMessage({ id: request.id, ok: false, error: String(error?.message ?? error) })
  )
})
