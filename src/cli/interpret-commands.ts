// `glassbox interpret logit-lens|attention|induction|patch <checkpoint>`: the probes of
// src/interpret/ in the terminal, each with --html for a self-contained report and --json for
// scripts (the probe's full result as one JSON object on stdout; the terminal view goes away).
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { BackendSetting } from "../config/schema.ts"
import { attentionCommand, inductionCommand, interpretSiteKinds, logitLensCommand, patchCommand } from "../interpret/cli.ts"
import { tokenizerNames } from "../tokenizer/tokenizer.ts"

const common = {
  checkpoint: Args.text({ name: "checkpoint" }).pipe(Args.withDescription("a run directory (its newest good checkpoint), a checkpoint directory, a .safetensors file, a Hugging Face-style directory (config.json + model.safetensors), hf:<owner>/<name>[@revision], or gpt2, gpt2-medium, distilgpt2")),
  html: Options.file("html").pipe(Options.optional, Options.withDescription("also write a self-contained HTML report to this file")),
  json: Options.boolean("json").pipe(Options.withDescription("print the probe's result as JSON instead of the terminal view (token ids, not text)")),
  tokenizer: Options.choice("tokenizer", tokenizerNames).pipe(Options.optional, Options.withDescription("the model's tokenizer, for weights that do not record it (must agree when they do)")),
  heads: Options.integer("heads").pipe(Options.optional, Options.withDescription("attention heads, for weights with neither glassbox metadata nor a config.json")),
  backend: Options.choice("backend", BackendSetting.literals).pipe(Options.withDefault("auto" as const), Options.withDescription("tensor backend (GLASSBOX_BACKEND overrides auto)")),
  noColor: Options.boolean("no-color").pipe(Options.withDescription("no ANSI colours (also when NO_COLOR is set or stdout is not a terminal)"))
}
const noBos = Options.boolean("no-bos").pipe(Options.withDescription("do not put end-of-text before the text (training documents start with it)"))
const textOption = Options.text("text").pipe(Options.withDescription("the text to analyse"))

type Common = {
  checkpoint: string
  html: Option.Option<string>
  json: boolean
  tokenizer: Option.Option<(typeof tokenizerNames)[number]>
  heads: Option.Option<number>
  backend: (typeof BackendSetting.literals)[number]
  noColor: boolean
}
const base = (o: Common) => ({
  checkpoint: o.checkpoint,
  html: Option.getOrUndefined(o.html),
  tokenizer: Option.getOrUndefined(o.tokenizer),
  heads: Option.getOrUndefined(o.heads),
  backend: o.backend,
  ...(o.noColor || o.json ? { color: false } : {})
})

/** Plain JSON: typed arrays become arrays, non-finite numbers null. */
export const toJsonValue = (x: unknown): unknown => {
  if (typeof x === "number") return Number.isFinite(x) ? x : null
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return Array.from(x as unknown as ArrayLike<number>, (v) => toJsonValue(v))
  if (Array.isArray(x)) return x.map(toJsonValue)
  if (x !== null && typeof x === "object") return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, toJsonValue(v)]))
  return x
}

/** Attention patterns as [layer][head][dest][src] rather than flat [1, H, T, T] buffers. */
const nestPatterns = (a: { layers: number; heads: number; tokens: ReadonlyArray<number>; patterns: ReadonlyArray<Float32Array> }) => {
  const T = a.tokens.length
  return a.patterns.map((flat) =>
    Array.from({ length: a.heads }, (_, h) => Array.from({ length: T }, (_, d) => Array.from(flat.subarray((h * T + d) * T, (h * T + d + 1) * T))))
  )
}

/**
 * Runs a probe command; with `json`, its terminal view goes to stderr-less silence (report notes
 * to stderr) and its result is printed as JSON on stdout.
 */
const withJson = <A, E, R>(json: boolean, program: Effect.Effect<A, E, R>, shape: (a: A) => unknown = (a) => a) =>
  json
    ? Effect.consoleWith((console) =>
        program.pipe(
          Effect.withConsole({ ...console, log: (...args: ReadonlyArray<unknown>) => (String(args[0] ?? "").includes("report written") ? console.error(...args) : Effect.void) }),
          Effect.flatMap((a) => Console.log(JSON.stringify(toJsonValue(shape(a)))))
        )
      )
    : Effect.asVoid(program)

const lens = Command.make(
  "logit-lens",
  {
    ...common,
    text: textOption,
    noBos,
    topK: Options.integer("top-k").pipe(Options.withDefault(5), Options.withDescription("tokens listed per cell")),
    position: Options.integer("position").pipe(Options.optional, Options.withDescription("the position whose predictions are listed stage by stage (default: the last)"))
  },
  (o) => withJson(o.json, logitLensCommand({ ...base(o), text: o.text, bos: !o.noBos, topK: o.topK, position: Option.getOrUndefined(o.position) }))
).pipe(
  Command.withDescription(`Decode the residual stream after every layer: what each layer would predict.
Examples:
glassbox interpret logit-lens runs/tiny --text "The whale" --html lens.html
glassbox interpret logit-lens runs/tiny --text "The whale" --json`)
)

const attention = Command.make(
  "attention",
  {
    ...common,
    text: textOption,
    noBos,
    layer: Options.integer("layer").pipe(Options.optional, Options.withDescription("show this layer's heads (counting from 0)")),
    head: Options.integer("head").pipe(Options.optional, Options.withDescription("with --layer: show this head's full pattern")),
    threshold: Options.float("threshold").pipe(Options.optional, Options.withDescription("a shape score at least this names a head (default 0.4)"))
  },
  (o) =>
    withJson(
      o.json,
      attentionCommand({ ...base(o), text: o.text, bos: !o.noBos, layer: Option.getOrUndefined(o.layer), head: Option.getOrUndefined(o.head), threshold: Option.getOrUndefined(o.threshold) }),
      (a) => ({ ...a, patterns: nestPatterns(a) })
    )
).pipe(
  Command.withDescription(`Score and label every head: previous-token, first-token, self, duplicate, induction, broad.
--layer and --head show one head's pattern.
Examples:
glassbox interpret attention runs/tiny --text "a b a b"
glassbox interpret attention runs/tiny --text "a b a b" --layer 1 --head 0`)
)

const induction = Command.make(
  "induction",
  {
    ...common,
    repeat: Options.integer("repeat").pipe(Options.optional, Options.withDescription("random segment length R (default 50, or the most the model's context allows: 2R + 1 ≤ context)")),
    batch: Options.integer("batch").pipe(Options.withDefault(10), Options.withDescription("random sequences averaged over")),
    seed: Options.integer("seed").pipe(Options.withDefault(0), Options.withDescription("seed of the random tokens")),
    threshold: Options.float("threshold").pipe(Options.withDefault(0.4), Options.withDescription("report heads with an induction score at least this"))
  },
  (o) => withJson(o.json, inductionCommand({ ...base(o), repeatLength: Option.getOrUndefined(o.repeat), batch: o.batch, seed: o.seed, threshold: o.threshold }))
).pipe(
  Command.withDescription(`Find induction heads: BOS + R random tokens, repeated twice; an induction head attends from each repeated token to the token after its first occurrence.
Examples:
glassbox interpret induction runs/tiny --html induction.html
glassbox interpret induction runs/tiny --repeat 20 --batch 4`)
)

const patch = Command.make(
  "patch",
  {
    ...common,
    clean: Options.text("clean").pipe(Options.withDescription("the prompt whose behaviour is traced")),
    corrupted: Options.text("corrupted").pipe(Options.withDescription("the same prompt with the key part changed; must have as many tokens")),
    answer: Options.text("answer").pipe(Options.withDescription("the clean prompt's answer (one token)")),
    wrong: Options.text("wrong").pipe(Options.withDescription("the corrupted prompt's answer (one token)")),
    sites: Options.choice("site", interpretSiteKinds).pipe(Options.repeated, Options.withDescription(`a kind of site to sweep, once per kind (default: all of ${interpretSiteKinds.join(", ")})`)),
    noBos
  },
  (o) =>
    withJson(
      o.json,
      patchCommand({ ...base(o), clean: o.clean, corrupted: o.corrupted, answer: o.answer, wrong: o.wrong, sites: o.sites.length === 0 ? undefined : o.sites, bos: !o.noBos })
    )
).pipe(
  Command.withDescription(`Activation patching: run the corrupted prompt with one clean activation at a time; 0 = corrupted, 1 = clean.
Examples:
glassbox interpret patch runs/tiny --clean "The whale" --corrupted "The ship" --answer " is" --wrong " was"
glassbox interpret patch runs/tiny --clean "The whale" --corrupted "The ship" --answer " is" --wrong " was" --site head --site resid_pre`)
)

export const interpretCommand = Command.make("interpret").pipe(
  Command.withDescription("Open a model up: logit lens, attention heads, induction heads, activation patching."),
  Command.withSubcommands([lens, attention, induction, patch])
)
