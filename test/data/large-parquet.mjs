// Writes a large parquet file for the flat-memory test, in its own process so that building
// it (tens of megabytes of strings and a WebAssembly heap that never shrinks) does not count
// against the memory the test measures. Usage: node large-parquet.mjs <path> <rowGroups> <rowsPerGroup> <charsPerRow>
import * as arrow from "apache-arrow"
import { writeFileSync } from "node:fs"
import * as parquet from "parquet-wasm"

const [path, rowGroups, rowsPerGroup, charsPerRow] = [process.argv[2], ...process.argv.slice(3).map(Number)]
const words = ["whale", "harpoon", "ocean", "union", "congress", "nation", "ship", "captain", "the", "of", "and", "sea"]
let x = 12345
const random = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32)
const rows = rowGroups * rowsPerGroup
const texts = new Array(rows)
const ids = new Array(rows)
for (let i = 0; i < rows; i++) {
  const parts = []
  let length = 0
  while (length <= charsPerRow) {
    const w = words[Math.floor(random() * words.length)] + (random() < 0.1 ? String(Math.floor(random() * 1e6)) : "")
    parts.push(w)
    length += w.length + 1
  }
  texts[i] = parts.join(" ").slice(0, charsPerRow)
  ids[i] = `<urn:large:${i}>`
}
const table = new arrow.Table({
  text: arrow.vectorFromArray(texts, new arrow.Utf8()),
  id: arrow.vectorFromArray(ids, new arrow.Utf8())
})
const bytes = parquet.writeParquet(
  parquet.Table.fromIPCStream(arrow.tableToIPC(table, "stream")),
  new parquet.WriterPropertiesBuilder().setCompression(parquet.Compression.UNCOMPRESSED).setMaxRowGroupSize(rowsPerGroup).build()
)
writeFileSync(path, bytes)
