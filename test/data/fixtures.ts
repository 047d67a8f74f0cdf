// Why this file exists: data tests need small corpora they control (documents of known
// ids and lengths, written to memory or to real parquet files, some deliberately broken)
// and a temporary directory that is removed afterwards.
import * as arrow from "apache-arrow"
import { Effect } from "effect"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as parquet from "parquet-wasm"
import type { SourceDocument } from "../../src/data/document-source.ts"
import { mulberry32 } from "../../src/data/shuffle.ts"

const WORDS = ["whale", "sea", "ship", "the", "of", "Congress", "union", "harpoon", "and", "nation", "Ahab", "é", "😀"]

/** `count` documents with ids doc-000.. and 1 to `maxWords` words each, fixed by `seed`. */
export const fixtureDocuments = (count: number, seed: number = 1, maxWords: number = 40): SourceDocument[] => {
  const random = mulberry32(seed)
  return Array.from({ length: count }, (_, i) => {
    const words = Array.from({ length: 1 + Math.floor(random() * maxWords) }, () => WORDS[Math.floor(random() * WORDS.length)])
    return { id: `<urn:test:doc-${String(i).padStart(3, "0")}>`, text: `${i}: ${words.join(" ")}.` }
  })
}

/** Write an Arrow table to `path` as ZSTD parquet with at most `rowsPerGroup` rows per row group. */
export const writeParquetTable = (path: string, table: arrow.Table, rowsPerGroup: number) =>
  Effect.promise(() => writeFile(path, parquetBytes(table, rowsPerGroup)))

export const parquetBytes = (table: arrow.Table, rowsPerGroup: number): Uint8Array =>
  parquet.writeParquet(
    parquet.Table.fromIPCStream(arrow.tableToIPC(table, "stream")),
    new parquet.WriterPropertiesBuilder().setCompression(parquet.Compression.ZSTD).setMaxRowGroupSize(rowsPerGroup).build()
  )

export const documentsTable = (docs: ReadonlyArray<SourceDocument>): arrow.Table =>
  new arrow.Table({
    text: arrow.vectorFromArray(docs.map((d) => d.text), new arrow.Utf8()),
    id: arrow.vectorFromArray(docs.map((d) => d.id), new arrow.Utf8())
  })

/** A fresh directory under the system temp dir, deleted when the scope closes. */
export const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "glassbox-data-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)
