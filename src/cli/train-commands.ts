// Training-side commands: run/train (fresh, or resuming an existing run directory), resume,
// eval (held-out loss of one checkpoint), compare (every checkpoint of a run on the same
// held-out set) and plot (loss and learning-rate curves as a self-contained HTML page).
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { runPipeline } from "../../pipelines/index.ts"
import { runPretrain } from "../../pipelines/pretrain.ts"
import { TensorBackendLive } from "../backend/backend.ts"
import { ReadFailed, writeFileAtomic } from "../format/atomic.ts"
import { latestGoodCheckpoint, listCheckpoints, loadCheckpoint, NoCheckpoint, type LoadedCheckpoint } from "../checkpoint/checkpointer.ts"
import { planResume } from "../checkpoint/resume.ts"
import { decodeConfig, loadConfig } from "../config/load.ts"
import { BackendSetting, type PipelineConfig } from "../config/schema.ts"
import { dataLayer } from "../data/config.ts"
import { DocumentSource } from "../data/document-source.ts"
import { Packer, type Batch } from "../data/packer.ts"
import { evaluate } from "../eval/evaluator.ts"
import { makeEncoding, type TokenizerName } from "../tokenizer/tokenizer.ts"
import { readMetrics } from "../train/metrics.ts"
import { plotHtml } from "../train/plot.ts"

const setOption = Options.text("set").pipe(
  Options.repeated,
  Options.withDescription("override any config leaf, e.g. --set train.lr=3e-4 --set model.layers=6")
)
const configArg = Args.file({ name: "config", exists: "yes" }).pipe(Args.withDescription("a pipeline config, e.g. config/tiny.json"))
const runDirArg = Args.directory({ name: "run", exists: "yes" }).pipe(Args.withDescription("a run directory, e.g. runs/tiny"))
const backendOption = Options.choice("backend", BackendSetting.literals).pipe(Options.withDefault("auto" as const), Options.withDescription("tensor backend"))

const runConfig = (file: string, overrides: readonly string[]) => loadConfig(file, overrides).pipe(Effect.flatMap(runPipeline))

export const runCommand = Command.make("run", { config: configArg, set: setOption }, ({ config, set }) => runConfig(config, set)).pipe(
  Command.withDescription(
    "Run the pipeline a config describes; on a run directory that has checkpoints, continue it. Example: glassbox run config/tiny.json --set train.steps=300"
  )
)

export const trainCommand = Command.make("train", { config: configArg, set: setOption }, ({ config, set }) =>
  loadConfig(config, [...set, "pipeline=pretrain"]).pipe(Effect.flatMap(runPipeline))
).pipe(
  Command.withDescription("Train from a config (the pretrain pipeline). Example: glassbox train config/tiny.json --set run.dir=runs/mine")
)

export const resumeCommand = Command.make("resume", { run: runDirArg, set: setOption }, ({ run, set }) =>
  planResume(run, set).pipe(
    Effect.flatMap(({ config, resumeFrom }) => runPretrain(config, resumeFrom)),
    Effect.asVoid
  )
).pipe(
  Command.withDescription(
    "Continue a run from its newest good checkpoint, exactly as if it had never stopped. Only run length, evaluation, checkpointing, sampling, learning rate and clipping may change. Example: glassbox resume runs/tiny --set train.steps=400"
  )
)

/** The held-out set a checkpoint's own config defines. */
const heldOutFor = (config: PipelineConfig, tokens: number) =>
  Effect.gen(function* () {
    const encoding = makeEncoding(config.tokenizer as TokenizerName)
    const source = yield* DocumentSource
    return yield* Packer.validationBatches(encoding, source, { batch: config.train.batch, context: config.model.context, maxTokens: tokens })
  }).pipe(Effect.provide(dataLayer(config.data, { tokenizer: config.tokenizer, split: "val" })))

const configOf = (c: LoadedCheckpoint) => decodeConfig(c.state.config, path.join(c.dir, "state.json"))

export const evalCommand = Command.make(
  "eval",
  {
    checkpoint: Args.directory({ name: "checkpoint", exists: "yes" }).pipe(Args.withDescription("a run directory (its newest good checkpoint) or a checkpoint directory")),
    tokens: Options.integer("tokens").pipe(Options.optional, Options.withDescription("held-out tokens (default: the run's eval.tokens)")),
    backend: backendOption
  },
  (o) =>
    Effect.gen(function* () {
      const isCheckpoint = fs.existsSync(path.join(o.checkpoint, "state.json"))
      const { checkpoint: loaded, notes } = isCheckpoint ? { checkpoint: yield* loadCheckpoint(o.checkpoint), notes: [] } : yield* latestGoodCheckpoint(o.checkpoint)
      for (const note of notes) process.stderr.write(`glassbox: warning: ${note.replace(/^resuming from/, "evaluating")}\n`)
      const config = yield* configOf(loaded)
      const heldOut = yield* heldOutFor(config, Option.getOrElse(o.tokens, () => config.eval.tokens))
      const r = yield* evaluate(loaded.model, heldOut)
      process.stdout.write(`${loaded.dir} (step ${loaded.state.step}): held-out loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(2)}, ${r.tokens.toLocaleString("en-US")} tokens\n`)
      loaded.model.dispose()
    }).pipe(Effect.provide(TensorBackendLive(o.backend)))
).pipe(Command.withDescription("Held-out loss and perplexity of a checkpoint. Example: glassbox eval runs/tiny"))

export const compareCommand = Command.make(
  "compare",
  { run: runDirArg, tokens: Options.integer("tokens").pipe(Options.optional), backend: backendOption },
  (o) =>
    Effect.gen(function* () {
      const dirs = yield* listCheckpoints(o.run)
      if (dirs.length === 0) return yield* new NoCheckpoint({ runDir: o.run, reason: "no checkpoints to compare" })
      const rows: Array<{ dir: string; step: number; tokens: number; loss: number; perplexity: number }> = []
      let heldOut: ReadonlyArray<Batch> | undefined
      for (const dir of dirs) {
        const loaded = yield* Effect.either(loadCheckpoint(dir))
        if (loaded._tag === "Left") {
          process.stdout.write(`skipping ${loaded.left.message}\n`)
          continue
        }
        const c = loaded.right
        const config = yield* configOf(c)
        heldOut ??= yield* heldOutFor(config, Option.getOrElse(o.tokens, () => config.eval.tokens))
        const r = yield* evaluate(c.model, heldOut)
        rows.push({ dir, step: c.state.step, tokens: c.state.tokensSeen, loss: r.loss, perplexity: r.perplexity })
        c.model.dispose()
      }
      rows.sort((a, b) => a.loss - b.loss)
      const header = ["", "step", "tokens seen", "held-out loss", "perplexity", "checkpoint"]
      const table = rows.map((r, i) => [i === 0 ? "best" : "", String(r.step), r.tokens.toLocaleString("en-US"), r.loss.toFixed(4), r.perplexity.toFixed(2), path.relative(process.cwd(), r.dir)])
      const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)))
      const line = (cells: string[]) => cells.map((c, i) => (i >= 1 && i <= 4 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ")
      process.stdout.write([line(header), ...table.map(line)].join("\n") + "\n")
    }).pipe(Effect.provide(TensorBackendLive(o.backend)))
).pipe(Command.withDescription("Every checkpoint of a run on the same held-out set, best first. Example: glassbox compare runs/tiny"))

export const plotCommand = Command.make(
  "plot",
  { run: runDirArg, out: Options.file("out").pipe(Options.optional, Options.withDescription("output file (default <run>/plot.html)")) },
  (o) =>
    Effect.gen(function* () {
      const events = readMetrics(o.run)
      if (events.length === 0) return yield* new ReadFailed({ path: path.join(o.run, "metrics.jsonl"), reason: "no metrics recorded yet, nothing to plot" })
      const out = Option.getOrElse(o.out, () => path.join(o.run, "plot.html"))
      yield* writeFileAtomic(out, plotHtml(path.basename(path.resolve(o.run)), events))
      process.stdout.write(`wrote ${out}\n`)
    })
).pipe(Command.withDescription("Loss and learning-rate curves (train and held-out) as a self-contained HTML page. Example: glassbox plot runs/tiny"))


