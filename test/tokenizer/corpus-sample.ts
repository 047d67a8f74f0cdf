// Why this file exists: tokenizer tests round-trip real prose, and the realest prose we have
// is the shipped corpus. Reading it straight from the parquet file (not through the data
// path) keeps these tests independent of the code under test in src/data.
import * as arrow from "apache-arrow"
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import * as parquet from "parquet-wasm"

const CORPUS = fileURLToPath(new URL("../../data/corpus.parquet", import.meta.url))
/** Characters kept from each document, so a slice stays quick to tokenize three ways. */
const CHARS_PER_DOCUMENT = 6_000

let sample: Promise<string[]> | undefined

/** The first row group's documents, each cut to its first few thousand characters. */
export const shippedSample = (): Promise<string[]> =>
  (sample ??= readFile(CORPUS).then((bytes) => {
    const table = arrow.tableFromIPC(parquet.readParquet(bytes, { rowGroups: [0], columns: ["text"] }).intoIPCStream())
    const texts = table.getChild("text")!.toArray() as string[]
    return texts.map((t) => t.slice(0, CHARS_PER_DOCUMENT))
  }))
