// Training-side commands: run/train (fresh, or resuming an existing run directory), resume,
// eval (held-out loss of one checkpoint), compare (every checkpoint of a run on the same
// held-out set) and plot (loss and learning-rate curves as a self-contained HTML page).
import { Args, Command, Options } from "@effect/cli"
import { Data, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { runPipeline } from "../../pipelines/index.ts"
import { runPretrain } from "../../pipelines/pretrain.ts"
import { planResume, planRun } from "../checkpoint/resume.ts"
import { TensorBackendLive } from "../backend/backend.ts"
import { ReadFailed, writeFileAtomic } from "../format/atomic.ts"
import { latestGoodCheckpoint, loadCheckpoint, type LoadedCheckpoint } from "../checkpoint/checkpointer.ts"
import { listCheckpoints, NoCheckpoint } from "../format/checkpoint-dir.ts"
import { decodeConfig, loadConfig } from "../config/load.ts"
import { BackendSetting, type PipelineConfig } from "../config/schema.ts"
import { dataLayer } from "../data/config.ts"
import { DocumentSource } from "../data/document-source.ts"
import { Packer, type Batch } from "../data/packer.ts"
import { evaluate } from "../eval/evaluator.ts"
import { openModel } from "../model/reference.ts"
import { makeEncoding, type TokenizerName } from "../tokenizer/tokenizer.ts"
import { readMetrics } from "../train/metrics.ts"
import { plotHtml } from "../train/plot.ts"

const setOption = Options.text("set").pipe(
  Options.repeated,
  Options.withDescription("override any config leaf, e.g. --set train.lr=3e-4 --set model.layers=6")
)
const freshOption = Options.boolean("fresh").pipe(
  Options.withDescription("start a new run even if run.dir already holds one (the old one is moved aside to <dir>.previous, never deleted)")
)
const jsonOption = Options.boolean("json").pipe(Options.withDescription("print the result as JSON, for scripts"))
const configArg = Args.file({ name: "config", exists: "yes" }).pipe(Args.withDescription("a pipeline config, e.g. config/tiny.json"))
const runDirArg = Args.directory({ name: "run", exists: "yes" }).pipe(Args.withDescription("a run directory, e.g. runs/tiny"))
const backendOption = Options.choice("backend", BackendSetting.literals).pipe(Options.withDefault("auto" as const), Options.withDescription("tensor backend (GLASSBOX_BACKEND overrides auto)"))
const tokensOption = Options.integer("tokens").pipe(Options.optional, Options.withDescription("held-out tokens to measure on (default: the run's eval.tokens)"))

/** A command that only makes sense for one pipeline, given a config for another. */
export class WrongPipeline extends Data.TaggedError("WrongPipeline")<{ readonly file: string; readonly pipeline: string; readonly command: string }> {
  override get message() {
    return `${this.file} describes the ${this.pipeline} pipeline, not training; run it with: glassbox run ${this.file}`
  }
}

const notice = (line: string) => Effect.sync(() => process.stderr.write(`note: ${line}\n`))

/**
 * A config loaded for a quick run: when `--set train.steps=N` leaves no room for the config's
 * warmup, the warmup keeps the config's share of the run (at most N − 1 steps) and a note says
 * so, rather than refusing a five-step trial run. A warmup the user set explicitly is left alone.
 */
export const loadRunConfig = (file: string, overrides: readonly string[]) =>
  loadConfig(file, overrides).pipe(
    Effect.catchTag("ConfigError", (error) =>
      Effect.gen(function* () {
        const warmupOnly = error.problems.length === 1 && error.problems[0].startsWith("train.warmup_steps:")
        if (!warmupOnly || overrides.some((o) => o.trim().startsWith("train.warmup_steps="))) return yield* error
        const asked = yield* loadConfig(file, [...overrides, "train.warmup_steps=0"]).pipe(Effect.mapError(() => error))
        // The config's own share of warmup (10% when the file alone does not load either).
        const own = yield* Effect.option(loadConfig(file, []))
        const share = Option.match(own, { onNone: () => 0.1, onSome: (c) => c.train.warmup_steps / c.train.steps })
        const configWarmup = /warmup_steps: (\d+)/.exec(error.problems[0])?.[1] ?? "?"
        const steps = asked.train.steps
        const warmup = Math.max(0, Math.min(steps - 1, Math.round(share * steps)))
        yield* notice(
          `train.warmup_steps ${configWarmup} does not fit in train.steps ${steps}; using ${warmup} (the config's share of warmup, at most steps − 1). Set train.warmup_steps to choose.`
        )
        return yield* loadConfig(file, [...overrides, `train.warmup_steps=${warmup}`])
      })
    )
  )

/** The step of a run directory's newest checkpoint with a readable state.json, if any. */
const newestStep = (runDir: string) =>
  listCheckpoints(runDir).pipe(
    Effect.map((dirs) => {
      for (const dir of dirs) {
        try {
          return (JSON.parse(fs.readFileSync(path.join(dir, "state.json"), "utf8")) as { step: number }).step
        } catch {
          continue
        }
      }
      return undefined
    })
  )

/** Moves an existing run directory aside (never deletes it); returns where it went. */
const moveAside = (runDir: string): string => {
  let target = `${runDir}.previous`
  for (let n = 2; fs.existsSync(target); n++) target = `${runDir}.previous-${n}`
  fs.renameSync(runDir, target)
  return target
}

/**
 * Trains as a pretrain config says: a fresh run, or the continuation of run.dir. A run that has
 * already reached train.steps is reported as complete (nothing is trained, nothing is written)
 * with the commands that train it further or start over.
 */
const train = (config: PipelineConfig, o: { command: string; file: string; fresh: boolean; overrides: readonly string[] }) =>
  Effect.gen(function* () {
    const runDir = config.run.dir
    if (o.fresh && fs.existsSync(runDir) && fs.readdirSync(runDir).length > 0) {
      const movedTo = moveAside(runDir)
      yield* notice(`--fresh: moved the previous run in ${runDir} to ${movedTo} (delete it when you no longer need it)`)
    }
    // Checked before the config is compared with the stored one: a finished run is finished.
    const at = yield* newestStep(runDir)
    if (at !== undefined && at >= config.train.steps) {
      const again = ["glassbox", o.command, o.file, ...o.overrides.map((s) => `--set ${s}`)].join(" ")
      process.stdout.write(
        `${runDir} is complete: it has trained ${at} steps and the config asks for ${config.train.steps}. Nothing to do.\n` +
          `  train further:  glassbox resume ${runDir} --set train.steps=${Math.max(at * 2, at + 1)}\n` +
          `  start over:     ${again} --fresh   (moves the old run aside)\n`
      )
      return
    }
    const plan = yield* planRun(config)
    yield* runPretrain(plan.config, plan.resumeFrom)
  })

const runOrTrain = (file: string, set: readonly string[], fresh: boolean, only: "pretrain" | "any") =>
  Effect.gen(function* () {
    const config = yield* loadRunConfig(file, set)
    if (config.pipeline !== "pretrain") {
      if (only === "pretrain") return yield* new WrongPipeline({ file, pipeline: config.pipeline, command: "train" })
      return yield* runPipeline(config)
    }
    return yield* train(config, { command: only === "pretrain" ? "train" : "run", file, fresh, overrides: set })
  })

export const runCommand = Command.make("run", { config: configArg, set: setOption, fresh: freshOption }, ({ config, set, fresh }) => runOrTrain(config, set, fresh, "any")).pipe(
  Command.withDescription(`Run the pipeline a config describes (pretrain, walkthrough or interpret).
A pretrain run whose run.dir already has checkpoints continues from the newest; one that has reached train.steps is reported as complete.
Examples:
glassbox run config/tiny.json
glassbox run config/tiny.json --set train.steps=300
glassbox run config/walkthrough.json`)
)

export const trainCommand = Command.make("train", { config: configArg, set: setOption, fresh: freshOption }, ({ config, set, fresh }) => runOrTrain(config, set, fresh, "pretrain")).pipe(
  Command.withDescription(`Train from a pretrain config; other pipelines are refused (use run).
Examples:
glassbox train config/tiny.json --set run.dir=runs/mine --set train.steps=20
glassbox train config/tiny.json --fresh`)
)

export const resumeCommand = Command.make("resume", { run: runDirArg, set: setOption }, ({ run, set }) =>
  planResume(run, set).pipe(
    Effect.flatMap(({ config, resumeFrom }) =>
      Effect.gen(function* () {
        const at = yield* newestStep(run)
        if (at !== undefined && at >= config.train.steps) {
          process.stdout.write(`${run} is complete: it has trained ${at} steps and train.steps is ${config.train.steps}. Nothing to do.\n  train further:  glassbox resume ${run} --set train.steps=${Math.max(at * 2, at + 1)}\n`)
          return
        }
        yield* runPretrain(config, resumeFrom)
      })
    ),
    Effect.asVoid
  )
).pipe(
  Command.withDescription(`Continue a run from its newest good checkpoint, exactly as if it had never stopped.
Only run length, evaluation, checkpointing, sampling, learning rate and clipping may change.
Example: glassbox resume runs/tiny --set train.steps=250`)
)

/** The held-out set a checkpoint's own config defines. */
const heldOutFor = (config: PipelineConfig, tokens: number) =>
  Effect.gen(function* () {
    const encoding = makeEncoding(config.tokenizer as TokenizerName)
    const source = yield* DocumentSource
    return yield* Packer.validationBatches(encoding, source, { batch: config.train.batch, context: config.model.context, maxTokens: tokens })
  }).pipe(Effect.provide(dataLayer(config.data, { tokenizer: config.tokenizer, split: "val" })))

const configOf = (c: LoadedCheckpoint) => decodeConfig(c.state.config, path.join(c.dir, "state.json"))

const isRunOrCheckpoint = (target: string) => ["state.json", "latest", "checkpoints"].some((f) => fs.existsSync(path.join(target, f)))

/** The model's tokenizer must be the one the held-out set is tokenised with. */
class EvalTokenizerMismatch extends Data.TaggedError("EvalTokenizerMismatch")<{ readonly model: string; readonly modelTokenizer: string; readonly config: string; readonly configTokenizer: string }> {
  override get message() {
    return `${this.model} uses the ${this.modelTokenizer} tokenizer but ${this.config} says "tokenizer": "${this.configTokenizer}"; use a config with "tokenizer": "${this.modelTokenizer}"`
  }
}

/** `glassbox eval <model reference>`: held-out loss of any model on a config's held-out set. */
const evalReference = (o: { checkpoint: string; config: Option.Option<string>; tokens: Option.Option<number>; json: boolean }) =>
  Effect.gen(function* () {
    const { model, encoding, files } = yield* openModel(o.checkpoint)
    const file = Option.getOrUndefined(o.config)
    const base = file === undefined ? yield* decodeConfig({ tokenizer: encoding.name }, "defaults") : yield* loadConfig(file, [])
    if (base.tokenizer !== encoding.name) {
      model.dispose()
      return yield* new EvalTokenizerMismatch({ model: files.label, modelTokenizer: encoding.name, config: file ?? "defaults", configTokenizer: base.tokenizer })
    }
    // The window is the config's, cut to the model's learned positions.
    const config = { ...base, model: { ...base.model, context: Math.min(base.model.context, model.config.context) } }
    const heldOut = yield* heldOutFor(config, Option.getOrElse(o.tokens, () => config.eval.tokens))
    const r = yield* evaluate(model, heldOut).pipe(Effect.ensuring(Effect.sync(() => model.dispose())))
    const on = file === undefined ? "the shipped corpus" : file
    if (o.json) process.stdout.write(JSON.stringify({ model: files.label, data: on, loss: r.loss, perplexity: r.perplexity, tokens: r.tokens }) + "\n")
    else process.stdout.write(`${files.label} on ${on}: held-out loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(2)}, ${r.tokens.toLocaleString("en-US")} tokens\n`)
  })

export const evalCommand = Command.make(
  "eval",
  {
    checkpoint: Args.text({ name: "checkpoint" }).pipe(
      Args.withDescription("a run directory (its newest good checkpoint), a checkpoint directory, or any model reference (gpt2, hf:<owner>/<name>, a .safetensors file, a Hugging Face directory)")
    ),
    config: Options.file("config", { exists: "yes" }).pipe(
      Options.optional,
      Options.withDescription("for a model reference: the config whose data, batch and context define the held-out set (default: the shipped corpus with default settings)")
    ),
    tokens: tokensOption,
    json: jsonOption,
    backend: backendOption
  },
  (o) =>
    Effect.gen(function* () {
      if (!isRunOrCheckpoint(o.checkpoint)) return yield* evalReference(o)
      const isCheckpoint = fs.existsSync(path.join(o.checkpoint, "state.json"))
      const { checkpoint: loaded, notes } = isCheckpoint ? { checkpoint: yield* loadCheckpoint(o.checkpoint), notes: [] } : yield* latestGoodCheckpoint(o.checkpoint)
      for (const note of notes) process.stderr.write(`glassbox: warning: ${note.replace(/^resuming from/, "evaluating")}\n`)
      const config = yield* configOf(loaded)
      const heldOut = yield* heldOutFor(config, Option.getOrElse(o.tokens, () => config.eval.tokens))
      const r = yield* evaluate(loaded.model, heldOut)
      loaded.model.dispose()
      if (o.json) process.stdout.write(JSON.stringify({ checkpoint: loaded.dir, step: loaded.state.step, loss: r.loss, perplexity: r.perplexity, tokens: r.tokens }) + "\n")
      else process.stdout.write(`${loaded.dir} (step ${loaded.state.step}): held-out loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(2)}, ${r.tokens.toLocaleString("en-US")} tokens\n`)
    }).pipe(Effect.provide(TensorBackendLive(o.backend)))
).pipe(
  Command.withDescription(`Held-out loss and perplexity of a checkpoint, on the held-out set its own config defines.
Examples:
glassbox eval runs/tiny
glassbox eval runs/tiny --tokens 4096 --json
glassbox eval gpt2 --config config/finetune-gpt2.json`)
)

export const compareCommand = Command.make(
  "compare",
  { run: runDirArg, tokens: tokensOption, json: jsonOption, backend: backendOption },
  (o) =>
    Effect.gen(function* () {
      const dirs = yield* listCheckpoints(o.run)
      if (dirs.length === 0) return yield* new NoCheckpoint({ runDir: o.run, reason: "no checkpoints to compare" })
      const rows: Array<{ dir: string; step: number; tokens: number; loss: number; perplexity: number }> = []
      const skipped: Array<{ dir: string; reason: string }> = []
      let heldOut: ReadonlyArray<Batch> | undefined
      for (const dir of dirs) {
        const loaded = yield* Effect.either(loadCheckpoint(dir))
        if (loaded._tag === "Left") {
          process.stderr.write(`skipping ${loaded.left.message}\n`)
          skipped.push({ dir, reason: loaded.left.message })
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
      if (o.json) {
        const json = { run: o.run, checkpoints: rows.map((r) => ({ checkpoint: r.dir, step: r.step, tokens_seen: r.tokens, loss: r.loss, perplexity: r.perplexity })), skipped }
        process.stdout.write(JSON.stringify(json, null, 2) + "\n")
        return
      }
      const header = ["", "step", "tokens seen", "held-out loss", "perplexity", "checkpoint"]
      const table = rows.map((r, i) => [i === 0 ? "best" : "", String(r.step), r.tokens.toLocaleString("en-US"), r.loss.toFixed(4), r.perplexity.toFixed(2), path.relative(process.cwd(), r.dir)])
      const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)))
      const line = (cells: string[]) => cells.map((c, i) => (i >= 1 && i <= 4 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ")
      process.stdout.write([line(header), ...table.map(line)].join("\n") + "\n")
    }).pipe(Effect.provide(TensorBackendLive(o.backend)))
).pipe(
  Command.withDescription(`Every checkpoint of a run on the same held-out set, best first.
Examples:
glassbox compare runs/tiny
glassbox compare runs/tiny --json`)
)

export const plotCommand = Command.make(
  "plot",
  { run: runDirArg, out: Options.file("out").pipe(Options.optional, Options.withDescription("output file (default: <run>/plot.html)")) },
  (o) =>
    Effect.gen(function* () {
      const events = readMetrics(o.run)
      if (events.length === 0) return yield* new ReadFailed({ path: path.join(o.run, "metrics.jsonl"), reason: "no metrics recorded yet, nothing to plot" })
      const out = Option.getOrElse(o.out, () => path.join(o.run, "plot.html"))
      yield* writeFileAtomic(out, plotHtml(path.basename(path.resolve(o.run)), events))
      process.stdout.write(`wrote ${out}\n`)
    })
).pipe(
  Command.withDescription(`Loss and learning-rate curves (train and held-out) as a self-contained HTML page.
Example: glassbox plot runs/tiny --out plot.html`)
)
