// Why this file exists: "train on FineWeb's 10-billion-token sample" should be one word in a
// config, not a repository, a folder and a column list to get right by hand. Each known
// dataset is described here once: where its parquet shards live on the Hugging Face Hub and
// which columns they carry, so filters can be checked before a single byte is downloaded.
// Anything else on the Hub is reachable as `owner/name` or `owner/name:folder`.
import { InvalidDataOption } from "./errors.ts"

/** Where a dataset's parquet shards live: a Hub dataset repository, a revision and a folder in it. */
export interface DatasetLocation {
  /** Hub repository, e.g. "HuggingFaceFW/fineweb". */
  readonly repo: string
  /** Branch, tag or commit. Pin a commit in a config so a run always reads the same bytes. */
  readonly revision: string
  /** Folder inside the repository holding the shards ("" for the root). */
  readonly prefix: string
}

export interface DatasetDescriptor extends Omit<DatasetLocation, "revision"> {
  /** The short name used in configs and on the command line. */
  readonly name: string
  /** Columns every shard has, in file order; `text` holds the document. */
  readonly columns: ReadonlyArray<string>
  /** One line for `glassbox data list`. */
  readonly description: string
}

const FINEWEB_COLUMNS = ["text", "id", "dump", "url", "date", "file_path", "language", "language_score", "token_count"]
// FineWeb-Edu keeps FineWeb's columns and adds the classifier's educational score (a float
// from 0 to 5) and its rounding, `int_score`, which the published subsets threshold at 3.
const FINEWEB_EDU_COLUMNS = [...FINEWEB_COLUMNS, "score", "int_score"]

const sample = (
  family: "fineweb" | "fineweb-edu",
  size: "10BT" | "100BT" | "350BT",
  note: string
): DatasetDescriptor => ({
  name: `${family}-${size}`,
  repo: `HuggingFaceFW/${family}`,
  prefix: `sample/${size}`,
  columns: family === "fineweb" ? FINEWEB_COLUMNS : FINEWEB_EDU_COLUMNS,
  description: `${family === "fineweb" ? "FineWeb" : "FineWeb-Edu"}, a random sample of about ${size.replace("BT", "")} billion gpt2 tokens; ${note}`
})

/** The datasets known by name. */
export const datasets: ReadonlyArray<DatasetDescriptor> = [
  sample("fineweb", "10BT", "15 shards of about 2.15 GB (the last about 550 MB)"),
  sample("fineweb", "100BT", "about 150 shards of about 2.15 GB"),
  sample("fineweb", "350BT", "about 510 shards of about 2.15 GB"),
  sample("fineweb-edu", "10BT", "documents scored educational (int_score >= 3), about 14 shards"),
  sample("fineweb-edu", "100BT", "documents scored educational (int_score >= 3)"),
  sample("fineweb-edu", "350BT", "documents scored educational (int_score >= 3)")
]

/** The default revision: a branch, so it moves. Configs that must reproduce exactly pin a commit. */
export const DEFAULT_REVISION = "main"

/**
 * A dataset by short name ("fineweb-10BT"), by repository ("HuggingFaceFW/fineweb", its root),
 * or by repository and folder ("HuggingFaceFW/fineweb:sample/10BT"). Unknown repositories are
 * allowed; their columns are unknown until a shard is opened.
 */
export const resolveDataset = (
  name: string,
  revision: string = DEFAULT_REVISION
): { readonly location: DatasetLocation; readonly descriptor: DatasetDescriptor | undefined } | InvalidDataOption => {
  const known = datasets.find((d) => d.name === name)
  if (known !== undefined) return { location: { repo: known.repo, prefix: known.prefix, revision }, descriptor: known }
  const match = /^([\w.-]+\/[\w.-]+)(?::(.*))?$/.exec(name)
  if (match === null) {
    return new InvalidDataOption({
      option: "data.dataset",
      value: name,
      expected: `one of ${datasets.map((d) => d.name).join(", ")}, or a Hub repository such as owner/name or owner/name:folder`
    })
  }
  const repo = match[1]
  const prefix = (match[2] ?? "").replace(/^\/+|\/+$/g, "")
  const descriptor = datasets.find((d) => d.repo === repo && d.prefix === prefix)
  return { location: { repo, prefix, revision }, descriptor }
}

/**
 * Which shards of a listing to use: "all", or indexes and ranges like "0-2,5" (inclusive,
 * counted from 0 in path order). Returns sorted, distinct indexes, or why the text is not one.
 */
export const parseShardSelection = (text: string, count: number): ReadonlyArray<number> | InvalidDataOption => {
  const invalid = (expected: string) => new InvalidDataOption({ option: "data.shards", value: text, expected })
  const trimmed = text.trim()
  if (trimmed === "all" || trimmed === "") return Array.from({ length: count }, (_, i) => i)
  const chosen = new Set<number>()
  for (const part of trimmed.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part)
    if (m === null) return invalid(`"all" or indexes and ranges such as "0-2,5"`)
    const from = Number(m[1])
    const to = m[2] === undefined ? from : Number(m[2])
    if (to < from) return invalid(`ranges written low-high ("${part.trim()}" runs backwards)`)
    if (to >= count) return invalid(`indexes below ${count}: the dataset has ${count} shard(s), numbered 0-${count - 1}`)
    for (let i = from; i <= to; i++) chosen.add(i)
  }
  return [...chosen].sort((a, b) => a - b)
}
