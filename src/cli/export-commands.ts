// `glassbox export <model> --format <format> <out>` and `glassbox import <format> <file> <run>`:
// a model leaves for another engine (llm.c now; each format is one entry in `modelExportFormats`,
// so adding one is adding an entry) and comes back as a run directory every other command takes.
// Also `glassbox data export`, the same hand-off for the tokens (registered under `data`). The
// work is in src/checkpoint/llmc.ts and src/data/export.ts; this file only maps flags.
import { Args, Command, Options } from "@effect/cli"
import { Effect, Either, Option } from "effect"
import { TensorBackendLive } from "../backend/backend.ts"
import { exportLlmcModel, importLlmcModel } from "../checkpoint/llmc.ts"
import { exportHf, HfExportRefused } from "../model/hf-export.ts"
import { knownDatasetNames } from "../data/config.ts"
import { dataExport, DEFAULT_SHARD_TOKENS } from "../data/export.ts"
import { applyOverride, ConfigError, decodeConfig, loadConfig } from "../config/load.ts"
import { tokenizerNames } from "../tokenizer/tokenizer.ts"

const say = (line: string) => Effect.sync(() => void process.stdout.write(`${line}\n`))
const formatNumber = (n: number) => n.toLocaleString("en-US")

export interface ModelExportFlags {
  /** --dtype: f32 (default) or bf16, for formats that store either. */
  readonly dtype: "f32" | "bf16"
}

/** One way a model leaves glassbox: what it writes, and the program that writes it. */
export interface ModelExportFormat {
  readonly description: string
  readonly run: (model: string, out: string, flags: ModelExportFlags) => Effect.Effect<void, unknown>
}

/** Every `--format` of `glassbox export`, by name. */
export const modelExportFormats = {
  llmc: {
    description: "llm.c's model file (train_gpt2.c/.cu): version 3 float32, or 5 bfloat16 with --dtype bf16",
    run: (model, out, flags) =>
      exportLlmcModel(model, out, flags.dtype === "bf16" ? "bfloat16" : "float32").pipe(
        Effect.flatMap((r) =>
          say(
            `wrote ${r.file}: llm.c model version ${r.header.version} (${r.header.version === 3 ? "float32" : "bfloat16"}), ` +
              `${formatNumber(r.parameters)} values (vocabulary ${r.header.vocab} padded to ${r.header.paddedVocab}), ` +
              `${r.header.layers} layers, ${r.header.heads} heads, ${r.header.channels} channels, ${r.header.maxT} positions, ${formatNumber(r.bytes)} bytes`
          )
        )
      )
  },
  hf: {
    description: "a Hugging Face directory GPT2LMHeadModel.from_pretrained loads: config.json, generation_config.json, model.safetensors (float32), and GPT-2's tokenizer files for the gpt2 vocabulary",
    run: (model, out, flags): Effect.Effect<void, unknown> =>
      flags.dtype === "bf16"
        ? Effect.fail(new HfExportRefused({ model, reason: "--dtype bf16: this export writes float32 (load it with torch_dtype=torch.bfloat16 to cast)" }))
        : exportHf(model, out).pipe(
            Effect.flatMap((r) =>
              say(`wrote ${r.dir}: ${r.files.join(", ")} (GPT2LMHeadModel, ${r.config.layers} layers, ${r.config.heads} heads, d ${r.config.dModel}, ${r.config.context} positions, ${r.tokenizer} vocabulary ${r.config.vocabSize})`)
            )
          )
  }
} satisfies Record<string, ModelExportFormat>

export type ModelExportFormatName = keyof typeof modelExportFormats
const formatNames = Object.keys(modelExportFormats) as ReadonlyArray<ModelExportFormatName>

export const exportCommand = Command.make(
  "export",
  {
    format: Options.choice("format", formatNames).pipe(
      Options.withDescription(formatNames.map((name) => `${name}: ${modelExportFormats[name].description}`).join("\n"))
    ),
    dtype: Options.choice("dtype", ["f32", "bf16"] as const).pipe(Options.withDefault("f32" as const), Options.withDescription("stored precision")),
    model: Args.text({ name: "model" }).pipe(Args.withDescription("a run directory, a checkpoint directory or a .safetensors file")),
    out: Args.text({ name: "out" }).pipe(Args.withDescription("the file to write (replaced atomically)"))
  },
  (o) => modelExportFormats[o.format].run(o.model, o.out, { dtype: o.dtype }).pipe(Effect.provide(TensorBackendLive("cpu")))
).pipe(
  Command.withDescription(
    "Write a model in another engine's format, e.g. for llm.c on many GPUs. Example: glassbox export runs/tiny --format llmc runs/tiny.bin --dtype bf16"
  )
)

const importLlmc = Command.make(
  "llmc",
  {
    tokenizer: Options.choice("tokenizer", tokenizerNames).pipe(Options.optional, Options.withDescription("the tokenizer of the model's ids (default: the one with its vocabulary size)")),
    config: Options.file("config", { exists: "yes" }).pipe(Options.optional, Options.withDescription("the rest of the run's config (data, train, eval) for fine-tuning here; the model section comes from the file")),
    set: Options.text("set").pipe(Options.repeated, Options.withDescription("override a config leaf, e.g. --set train.lr=1e-4")),
    file: Args.file({ name: "file.bin", exists: "yes" }).pipe(Args.withDescription("an llm.c model file (version 3 or 5)")),
    run: Args.text({ name: "run" }).pipe(Args.withDescription("a new run directory to hold it"))
  },
  (o) =>
    Effect.gen(function* () {
      const config = Option.isSome(o.config) || o.set.length > 0
        ? yield* loadConfigOrDefaults(Option.getOrUndefined(o.config), o.set)
        : undefined
      const r = yield* importLlmcModel(o.file, o.run, { tokenizer: Option.getOrUndefined(o.tokenizer), config })
      const h = r.header
      yield* say(
        `imported ${o.file} (llm.c version ${h.version}, ${h.layers} layers, ${h.heads} heads, ${h.channels} channels, ${h.maxT} positions, ` +
          `${r.tokenizer} vocabulary ${h.vocab}) into ${r.checkpoint}`
      )
      yield* say(`use it: glassbox generate ${o.run} · glassbox eval ${o.run} · glassbox interpret … ${o.run} · fine-tune: glassbox resume ${o.run} --set train.steps=N`)
    }).pipe(Effect.provide(TensorBackendLive("cpu")))
).pipe(Command.withDescription("llm.c's model file (version 3 float32 or 5 bfloat16) as the first checkpoint of a new run. Example: glassbox import llmc gpt2_124M.bin runs/from-llmc"))

/** A config file with overrides, or the defaults (the empty config) with overrides. */
const loadConfigOrDefaults = (file: string | undefined, overrides: readonly string[]) =>
  file !== undefined
    ? loadConfig(file, overrides)
    : Effect.gen(function* () {
        let json: Record<string, never> = {}
        for (const assignment of overrides) {
          const next = applyOverride(json, assignment)
          if (Either.isLeft(next)) return yield* new ConfigError({ source: "--set", problems: [next.left] })
          json = next.right as Record<string, never>
        }
        return yield* decodeConfig(json, "--set")
      })

export const importCommand = Command.make("import").pipe(
  Command.withDescription("Bring a model trained elsewhere back as a run directory: generate, chat, eval, interpret and resume take it."),
  Command.withSubcommands([importLlmc])
)

const optionalText = (name: string, description: string) => Options.text(name).pipe(Options.optional, Options.withDescription(description))
const optionalInt = (name: string, description: string) => Options.integer(name).pipe(Options.optional, Options.withDescription(description))

/** `glassbox data export --format llmc|nanogpt <dataset or config> <dir>`. */
export const dataExportCommand = Command.make(
  "export",
  {
    format: Options.choice("format", ["llmc", "nanogpt"] as const).pipe(
      Options.withDescription("llmc: <name>_val_000000.bin, <name>_train_000001.bin, … (256-int32 header + uint16 tokens); nanogpt: train.bin, val.bin (raw uint16) + meta.json")
    ),
    name: optionalText("name", "llm.c file prefix (default: the dataset's name, e.g. fineweb-10BT, or shipped)"),
    shardTokens: optionalInt("shard-tokens", `llm.c tokens per shard (default ${DEFAULT_SHARD_TOKENS.toLocaleString("en-US")}, as llm.c's FineWeb script)`),
    maxTokens: optionalInt("max-tokens", "stop the train split after this many tokens (default: one whole pass)"),
    tokenizer: Options.choice("tokenizer", tokenizerNames).pipe(Options.optional, Options.withDescription("default: the config's, else gpt2 (vocabularies of 65,536 or more cannot be stored as uint16)")),
    valFraction: Options.float("val-fraction").pipe(Options.optional, Options.withDescription("share of documents held out by id hash (default: the config's, else 0.01)")),
    seed: optionalInt("seed", "row-group order (default: the config's run.seed, else 1337)"),
    revision: optionalText("revision", "branch, tag or commit of a Hub dataset (pin a commit to reproduce)"),
    endpoint: optionalText("endpoint", "the Hub or a mirror"),
    cacheDir: optionalText("cache-dir", "cache root (default $GLASSBOX_CACHE or ~/.cache/glassbox)"),
    shards: optionalText("shards", 'which shards of a Hub dataset, e.g. "0-2,5"'),
    filters: Options.text("filter").pipe(Options.repeated, Options.withDescription('row filter, repeatable, e.g. "int_score >= 3"')),
    workers: optionalInt("workers", "tokenizer threads"),
    stream: Options.boolean("stream").pipe(Options.withDescription("read Hub shards by range requests instead of downloading them")),
    flushTokens: optionalInt("flush-tokens", "record progress (for resuming) at least every this many tokens (default 10,000,000)"),
    target: Args.text({ name: "dataset or config" }).pipe(Args.withDescription(`shipped, a .parquet file, ${knownDatasetNames.join(", ")}, owner/name[:folder], or a pipeline config (.json)`)),
    dir: Args.text({ name: "dir" }).pipe(Args.withDescription("output directory; an interrupted export into it continues where it stopped"))
  },
  (o) =>
    Effect.asVoid(
      dataExport(o.target, o.dir, {
        format: o.format,
        name: Option.getOrUndefined(o.name),
        shardTokens: Option.getOrUndefined(o.shardTokens),
        maxTokens: Option.getOrUndefined(o.maxTokens),
        tokenizer: Option.getOrUndefined(o.tokenizer),
        valFraction: Option.getOrUndefined(o.valFraction),
        seed: Option.getOrUndefined(o.seed),
        revision: Option.getOrUndefined(o.revision),
        endpoint: Option.getOrUndefined(o.endpoint),
        cacheDir: Option.getOrUndefined(o.cacheDir),
        shards: Option.getOrUndefined(o.shards),
        filters: o.filters,
        workers: Option.getOrUndefined(o.workers),
        stream: o.stream,
        flushTokens: Option.getOrUndefined(o.flushTokens)
      })
    )
).pipe(
  Command.withDescription(
    "Token files for llm.c or nanoGPT from any data source, with the same train/validation split as training, a manifest (export.json) with sha256 of every file, resumable. Example: glassbox data export --format llmc fineweb-10BT out/fineweb"
  )
)
