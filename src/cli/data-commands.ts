// `glassbox data list|download|prepare`: FineWeb (or any Hub parquet dataset) shards listed,
// fetched into the cache (resumable, checksummed), and tokenised once into the token cache, with
// progress bars on stderr. The work is in src/data/cli.ts; this file only maps flags.
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { dataDatasets, dataDownload, dataList, dataPrepare } from "../data/cli.ts"
import { knownDatasetNames } from "../data/config.ts"
import { dataExportCommand } from "./export-commands.ts"
import { tokenizerNames } from "../tokenizer/tokenizer.ts"

const common = {
  revision: Options.text("revision").pipe(Options.optional, Options.withDescription("branch, tag or commit (default main); pin a commit to reproduce a run")),
  endpoint: Options.text("endpoint").pipe(Options.optional, Options.withDescription("the Hub or a mirror (default https://huggingface.co)")),
  cacheDir: Options.text("cache-dir").pipe(Options.optional, Options.withDescription("cache root (default $GLASSBOX_CACHE or ~/.cache/glassbox)")),
  cacheMaxGb: Options.float("cache-max-gb").pipe(Options.optional, Options.withDescription("cap on cached shards; least recently used are evicted"))
}
type Common = { [K in keyof typeof common]: Option.Option<K extends "cacheMaxGb" ? number : string> }
const commonOf = (o: Common) => ({
  revision: Option.getOrUndefined(o.revision),
  endpoint: Option.getOrUndefined(o.endpoint),
  cacheDir: Option.getOrUndefined(o.cacheDir),
  cacheMaxGb: Option.getOrUndefined(o.cacheMaxGb)
})
const datasetArg = Args.text({ name: "dataset" }).pipe(Args.withDescription(`${knownDatasetNames.join(", ")}, or owner/name[:folder]`))

const list = Command.make("list", { dataset: datasetArg.pipe(Args.optional), json: Options.boolean("json").pipe(Options.withDescription("print the shard list as JSON")), ...common }, (o) =>
  Option.match(o.dataset, {
    onNone: () => dataDatasets({}),
    onSome: (dataset) => dataList(dataset, { ...commonOf(o), json: o.json })
  })
).pipe(Command.withDescription(`Known datasets, or a dataset's shards (index, size, cached?).
Examples:
glassbox data list
glassbox data list fineweb-10BT`))

const download = Command.make("download", { dataset: datasetArg, shards: Options.text("shards").pipe(Options.withDefault("all"), Options.withDescription('which shards, e.g. "0-2,5"')), ...common }, (o) =>
  Effect.asVoid(dataDownload(o.dataset, { ...commonOf(o), shards: o.shards }))
).pipe(Command.withDescription("Fetch shards into the cache: resumed after a dropped connection, retried, checksummed. Example: glassbox data download fineweb-10BT --shards 0-2"))

const prepare = Command.make(
  "prepare",
  {
    dataset: Args.text({ name: "dataset" }).pipe(Args.withDescription("a dataset, shipped, or a local .parquet file")),
    shards: Options.text("shards").pipe(Options.optional, Options.withDescription('which shards, e.g. "0-2,5" (default: all)')),
    tokenizer: Options.choice("tokenizer", tokenizerNames).pipe(Options.withDefault("gpt2" as const), Options.withDescription("the tokenizer the cache is for (must match the config that reads it)")),
    workers: Options.integer("workers").pipe(Options.withDefault(1), Options.withDescription("tokeniser worker threads")),
    filters: Options.text("filter").pipe(Options.repeated, Options.withDescription('row filter, e.g. "int_score >= 3"')),
    stream: Options.boolean("stream").pipe(Options.withDescription("read Hub shards by range requests instead of downloading them")),
    ...common
  },
  (o) =>
    dataPrepare(o.dataset, {
      ...commonOf(o),
      shards: Option.getOrUndefined(o.shards),
      tokenizer: o.tokenizer,
      workers: o.workers,
      filters: o.filters,
      stream: o.stream
    })
).pipe(Command.withDescription("Tokenise shards once into the token cache, read on later runs. Example: glassbox data prepare shipped --tokenizer gpt2"))

export const dataCommand = Command.make("data").pipe(
  Command.withDescription("FineWeb and other parquet datasets: list, download, prepare (tokenise into the cache)."),
  Command.withSubcommands([list, download, prepare, dataExportCommand])
)
