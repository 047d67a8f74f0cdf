// `glassbox interpret logit-lens|attention|induction|patch <checkpoint>`: the probes of
// src/interpret/ in the terminal, each with --html for a self-contained report.
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { BackendSetting } from "../config/schema.ts"
import { attentionCommand, inductionCommand, interpretSiteKinds, logitLensCommand, patchCommand } from "../interpret/cli.ts"
import { tokenizerNames } from "../tokenizer/tokenizer.ts"

const common = {
  checkpoint: Args.text({ name: "checkpoint" }).pipe(Args.withDescription("a run directory, a checkpoint directory or a .safetensors file")),
  html: Options.file("html").pipe(Options.optional, Options.withDescription("also write a self-contained HTML report here")),
  tokenizer: Options.choice("tokenizer", tokenizerNames).pipe(Options.optional, Options.withDescription("override the tokenizer recorded in the weights")),
  backend: Options.choice("backend", BackendSetting.literals).pipe(Options.withDefault("auto" as const)),
  noColor: Options.boolean("no-color")
}
const noBos = Options.boolean("no-bos").pipe(Options.withDescription("do not put end-of-text before the text"))

type Common = { checkpoint: string; html: Option.Option<string>; tokenizer: Option.Option<(typeof tokenizerNames)[number]>; backend: (typeof BackendSetting.literals)[number]; noColor: boolean }
const base = (o: Common) => ({
  checkpoint: o.checkpoint,
  html: Option.getOrUndefined(o.html),
  tokenizer: Option.getOrUndefined(o.tokenizer),
  backend: o.backend,
  ...(o.noColor ? { color: false } : {})
})

const lens = Command.make(
  "logit-lens",
  { ...common, text: Options.text("text"), noBos, topK: Options.integer("top-k").pipe(Options.withDefault(5)), position: Options.integer("position").pipe(Options.optional) },
  (o) => logitLensCommand({ ...base(o), text: o.text, bos: !o.noBos, topK: o.topK, position: Option.getOrUndefined(o.position) }).pipe(Effect.asVoid)
).pipe(Command.withDescription('Decode the residual stream after every layer. Example: glassbox interpret logit-lens runs/tiny --text "The whale" --html lens.html'))

const attention = Command.make(
  "attention",
  {
    ...common,
    text: Options.text("text"),
    noBos,
    layer: Options.integer("layer").pipe(Options.optional),
    head: Options.integer("head").pipe(Options.optional),
    threshold: Options.float("threshold").pipe(Options.optional)
  },
  (o) =>
    attentionCommand({ ...base(o), text: o.text, bos: !o.noBos, layer: Option.getOrUndefined(o.layer), head: Option.getOrUndefined(o.head), threshold: Option.getOrUndefined(o.threshold) }).pipe(Effect.asVoid)
).pipe(Command.withDescription('Score and label every head (previous-token, first-token, self, duplicate, induction, broad); --layer/--head shows one pattern. Example: glassbox interpret attention runs/tiny --text "a b a b" --layer 1 --head 0'))

const induction = Command.make(
  "induction",
  {
    ...common,
    repeat: Options.integer("repeat").pipe(Options.optional, Options.withDescription("random segment length R (default 50, or the most the model's context allows)")),
    batch: Options.integer("batch").pipe(Options.withDefault(10)),
    seed: Options.integer("seed").pipe(Options.withDefault(0)),
    threshold: Options.float("threshold").pipe(Options.withDefault(0.4))
  },
  (o) => inductionCommand({ ...base(o), repeatLength: Option.getOrUndefined(o.repeat), batch: o.batch, seed: o.seed, threshold: o.threshold }).pipe(Effect.asVoid)
).pipe(Command.withDescription("Find induction heads on BOS + R random tokens repeated twice. Example: glassbox interpret induction runs/tiny --html induction.html"))

const patch = Command.make(
  "patch",
  {
    ...common,
    clean: Options.text("clean"),
    corrupted: Options.text("corrupted"),
    answer: Options.text("answer").pipe(Options.withDescription("the clean prompt's answer (one token)")),
    wrong: Options.text("wrong").pipe(Options.withDescription("the corrupted prompt's answer (one token)")),
    sites: Options.choice("site", interpretSiteKinds).pipe(Options.repeated, Options.withDescription("sites to sweep (repeatable; default all)")),
    noBos
  },
  (o) =>
    patchCommand({ ...base(o), clean: o.clean, corrupted: o.corrupted, answer: o.answer, wrong: o.wrong, sites: o.sites.length === 0 ? undefined : o.sites, bos: !o.noBos }).pipe(Effect.asVoid)
).pipe(Command.withDescription('Activation patching: run the corrupted prompt with one clean activation at a time; 0 = corrupted, 1 = clean. Example: glassbox interpret patch runs/tiny --clean "The whale" --corrupted "The ship" --answer " is" --wrong " was"'))

export const interpretCommand = Command.make("interpret").pipe(
  Command.withDescription("Open a model up: logit-lens, attention, induction, patch (each with --html)."),
  Command.withSubcommands([lens, attention, induction, patch])
)
