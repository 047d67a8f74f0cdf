// The main job as a composition over the services: source → packer → trainer → taps → sample.
// Documents are packed into windows (DocumentSource, Packer), grouped into steps and handed to
// the Trainer service; after every step a row of small taps runs — metrics, progress, held-out
// evaluation (Evaluator), checkpoints (Checkpointer), signals — and at the end the Generator
// writes a sample. A run resumes from its newest good checkpoint and continues exactly as if it
// had never stopped: same weights, AdamW moments, schedule position, dropout RNG and data cursor.
// SIGINT/SIGTERM finish the current step, save, and exit cleanly. Every line the run prints is
// worded in `say` below. `glassbox run config/tiny.json` executes it; copy it to experiment (the
// services come from layers, so a test swaps in a fixture source, an in-memory checkpointer, or
// another optimizer through TrainerChoice).
import * as tf from "@tensorflow/tfjs"
import { Chunk, Context, Data, Effect, Layer, Stream } from "effect"
import { TensorBackend, TensorBackendLive } from "../src/backend/backend.ts"
import { checkStepMemory } from "../src/train/memory-budget.ts"
import type { LoadedCheckpoint } from "../src/checkpoint/checkpointer.ts"
import { Checkpointer } from "../src/checkpoint/service.ts"
import type { PipelineConfig } from "../src/config/schema.ts"
import type { DataCursor } from "../src/data/cursor.ts"
import { dataLayer } from "../src/data/config.ts"
import { DocumentSource } from "../src/data/document-source.ts"
import { DocumentTokenizer } from "../src/data/tokenize-pool.ts"
import { Packer } from "../src/data/packer.ts"
import type { EvalResult } from "../src/eval/evaluator.ts"
import { Evaluator } from "../src/eval/service.ts"
import { Generator } from "../src/generate/service.ts"
import { presets } from "../src/generate/sampling.ts"
import { parameterCount, type ModelConfig } from "../src/model/config.ts"
import { initGPT, type GPT } from "../src/model/gpt.ts"
import { openInitModel } from "../src/model/reference.ts"
import { Model, modelConfigOf } from "../src/model/service.ts"
import { Tokenizer, type Encoding } from "../src/tokenizer/tokenizer.ts"
import type { AdamWState } from "../src/train/adamw.ts"
import { metricsLog, truncateMetricsAfter, type MetricsLog } from "../src/train/metrics.ts"
import { formatDuration, makeProgress } from "../src/train/progress.ts"
import type { RngState } from "../src/rng/rng.ts"
import { Trainer, TrainerChoice, trainerConfigOf } from "../src/train/service.ts"
import type { NonFiniteLoss, OutlierWindow, StepResult, TokenWindows, TrainerRestore } from "../src/train/trainer.ts"

// Where the config's sections become the model's and the trainer's settings (kept under these
// names here for callers of the pipeline).
export { modelConfigOf } from "../src/model/service.ts"
export { trainerConfigOf } from "../src/train/service.ts"

/**
 * The layers a pipeline config asks for: backend, tokenizer, the training side of the data
 * (shipped corpus, local parquet files or a Hub dataset, with its tokenizer pool and caches), and
 * the run directory's checkpoints.
 */
export const pipelineLayer = (config: PipelineConfig) => Layer.merge(sharedLayer(config), Checkpointer.files(config.run.dir))

/**
 * The layers several runs of one experiment can share (backend, tokenizer, data): built once,
 * with a Checkpointer per run directory swapped in for each run.
 */
export const sharedLayer = (config: PipelineConfig) =>
  Layer.mergeAll(TensorBackendLive(config.backend), Tokenizer.layer(config.tokenizer), dataLayer(config.data, { tokenizer: config.tokenizer }))

/** A non-finite loss stopped the run; the last good state was saved first. */
export class TrainingDiverged extends Data.TaggedError("TrainingDiverged")<{ readonly cause: NonFiniteLoss; readonly saved: string }> {
  override get message() {
    return `${this.cause.message}; the last good state is saved in ${this.saved}`
  }
}

export interface PretrainResult {
  readonly model: GPT
  /** Held-out loss before the first step (undefined when this invocation resumed). */
  readonly initialEval: EvalResult | undefined
  readonly finalEval: EvalResult | undefined
  /** The steps this invocation ran. */
  readonly steps: ReadonlyArray<StepResult>
  readonly checkpoint: string | undefined
  readonly sample: string | undefined
  /** Set when a signal stopped the run early. */
  readonly stoppedBy: string | undefined
}

/** What a newcomer can do with the run just trained: the commands, ready to paste. */
export const nextSteps = (runDir: string, prompt: string) => {
  const rows: Array<[string, string]> = [
    [`glassbox generate ${runDir} --prompt ${JSON.stringify(prompt === "" ? "The" : prompt)}`, "continue a prompt"],
    [`glassbox chat ${runDir}`, "talk to it turn by turn"],
    [`glassbox interpret attention ${runDir} --html attention.html`, "open it up (also logit-lens, induction, patch)"],
    [`glassbox plot ${runDir}`, "the loss curves as a page"]
  ]
  const width = Math.max(...rows.map(([command]) => command.length))
  return ["next:", ...rows.map(([command, what]) => `  ${command.padEnd(width)}  ${what}`)].join("\n")
}

/** Decodes a sample continuation of the config's prompt (or of end-of-text when empty). */
export const sample = (config: PipelineConfig) =>
  Effect.gen(function* () {
    const { config: modelConfig, encoding } = yield* Model
    const generator = yield* Generator
    const promptIds = config.generate.prompt === "" ? [encoding.eot] : encoding.encode(config.generate.prompt)
    const ids = yield* generator.generate(promptIds.slice(-modelConfig.context), {
      maxNewTokens: config.generate.max_new_tokens,
      sampling: presets[config.generate.preset],
      seed: config.generate.seed,
      stopToken: encoding.eot
    }).pipe(Stream.runCollect)
    return config.generate.prompt + encoding.decode(Chunk.toReadonlyArray(ids))
  })

/** `sample` for a GPT held outside the services. */
export const sampleText = (model: GPT, encoding: Encoding, config: PipelineConfig) =>
  sample(config).pipe(Effect.provide(Generator.live.pipe(Layer.provideMerge(Model.fromGPT(model, encoding)))))

/**
 * Listens for SIGINT/SIGTERM for the life of the scope; the run polls `received` after each step.
 * The first signal asks for a checkpoint and a clean exit. A second one before the save has
 * started aborts at once (the previous checkpoint stays intact); once the save is under way, or
 * done, it is refused with a note: a half-written checkpoint helps no one.
 */
const stopSignals = Effect.acquireRelease(
  Effect.sync(() => {
    const state = { received: undefined as string | undefined, saving: false, saved: false }
    const handlers = (["SIGINT", "SIGTERM"] as const).map((signal) => {
      const handler = () => {
        if (state.received === undefined) {
          state.received = signal
          process.stderr.write(`\n${signal}: finishing the current step, then saving a checkpoint (send again to abort before the save starts)\n`)
        } else if (state.saving) {
          process.stderr.write(`\n${signal}: the checkpoint is being written; waiting for it to finish before exiting\n`)
        } else if (state.saved) {
          process.stderr.write(`\n${signal}: the checkpoint is saved; exiting\n`)
        } else {
          process.stderr.write(`\n${signal} again: aborting without saving; the previous checkpoint is intact\n`)
          process.exit(130)
        }
      }
      process.on(signal, handler)
      return () => process.off(signal, handler)
    })
    return { state, remove: () => handlers.forEach((off) => off()) }
  }),
  ({ remove }) => Effect.sync(remove)
)

/**
 * Lets the event loop turn once. A training step is synchronous tensor work and Effect resumes
 * fibers on microtasks, so without this a signal handler (or any timer) would wait until some
 * file write happened to yield: after every step, a pending SIGINT gets its turn.
 */
const yieldToEventLoop = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

const restoredOptimizer = (loaded: LoadedCheckpoint, model: GPT): AdamWState => {
  const asVariables = (tensors: Map<string, tf.Tensor>) =>
    new Map(
      [...model.params.keys()].map((name) => {
        const t = tensors.get(name)!
        const v = tf.variable(t, false)
        t.dispose()
        return [name, v] as const
      })
    )
  return { step: loaded.optimizer.step, m: asVariables(loaded.optimizer.m), v: asVariables(loaded.optimizer.v) }
}

/** Every line a training run prints, worded in one place. */
export const say = {
  fineTuning: (init: string) => `fine-tuning from ${init}`,
  warning: (note: string) => `warning: ${note}`,
  resuming: (runDir: string, step: number, from: string) => `resuming ${runDir} at step ${step} from ${from}`,
  backend: (description: string) => `backend: ${description}`,
  model: (mc: ModelConfig, encoding: Encoding) =>
    `model: ${(parameterCount(mc) / 1e6).toFixed(2)}M parameters (${mc.layers} layers, ${mc.heads} heads, d_model ${mc.dModel}, context ${mc.context}, ${mc.position} positions, ${encoding.name} vocabulary ${encoding.vocabSize})`,
  plan: (config: PipelineConfig, startStep: number) => {
    const { batch, accumulate, steps } = config.train
    const { context } = config.model
    return `training: steps ${startStep}→${steps} × ${accumulate} × ${batch} windows × ${context} tokens = ${((steps - startStep) * accumulate * batch * context).toLocaleString("en-US")} tokens → ${config.run.dir}`
  },
  initialEval: (e: EvalResult) => `held-out loss at start: ${e.loss.toFixed(4)} (perplexity ${e.perplexity.toFixed(1)}, ${e.tokens.toLocaleString("en-US")} tokens)`,
  complete: (runDir: string, startStep: number, steps: number) =>
    `${runDir} is complete: it is at step ${startStep} and train.steps is ${steps}; to train further raise train.steps (e.g. glassbox resume ${runDir} --set train.steps=${Math.max(2 * startStep, startStep + 1)})`,
  skipped: (r: StepResult) => `step ${r.step}: skipped (loss ${r.loss.toFixed(4)}, gradient norm ${r.gradNorm.toFixed(3)} are outliers)`,
  eval: (step: number, e: EvalResult) => `step ${step}: held-out loss ${e.loss.toFixed(4)} (perplexity ${e.perplexity.toFixed(1)})`,
  stopped: (signal: string, step: number, runDir: string) => `stopped by ${signal} at step ${step}; checkpoint saved. Resume with: glassbox resume ${runDir}`,
  finalEval: (config: PipelineConfig, finalEval: EvalResult, initialEval: EvalResult | undefined, seconds: number, stepsRun: number) => {
    const { batch, accumulate, steps } = config.train
    return `held-out loss after ${steps} steps: ${finalEval.loss.toFixed(4)} (perplexity ${finalEval.perplexity.toFixed(1)}${initialEval ? `; started at ${initialEval.loss.toFixed(4)}` : ""}) in ${formatDuration(seconds)}, ${Math.round((stepsRun * accumulate * batch * config.model.context) / seconds).toLocaleString("en-US")} tokens/s overall`
  },
  saved: (path: string) => `saved ${path}`,
  stoppedAfterLast: (signal: string) => `stopped by ${signal} after the last step; the run is complete`,
  sample: (config: PipelineConfig, text: string) => `\nsample (${config.generate.preset}):\n${text}\n`,
  nextSteps: (config: PipelineConfig) => nextSteps(config.run.dir, config.generate.prompt)
} as const

const print = (line: string) => Effect.sync(() => process.stdout.write(line + "\n"))

/** Where a run starts: fresh (or fine-tuned) weights, or everything its newest good checkpoint holds. */
interface StartingPoint {
  readonly model: GPT
  readonly restored: TrainerRestore | undefined
  readonly tokensSeen: number
  readonly cursor: DataCursor
}

const startingPoint = (config: PipelineConfig, resume: boolean) =>
  Effect.gen(function* () {
    const backend = yield* TensorBackend
    const encoding = yield* Tokenizer
    const source = yield* DocumentSource
    const checkpointer = yield* Checkpointer
    const runDir = config.run.dir
    const { batch, steps } = config.train
    const { context } = config.model
    if (!resume) {
      // Fine-tuning starts from model.init's weights and shape; pretraining from GPT-2's init.
      const init = config.model.init
      const initial = init === undefined ? undefined : (yield* openInitModel(init, { tokenizer: encoding.name, window: context, dropout: config.model.dropout })).model
      const modelConfig = initial?.config ?? modelConfigOf(config, encoding.vocabSize)
      const tooBig = checkStepMemory(backend, initial === undefined ? modelConfig : { ...modelConfig, context }, batch)
      if (tooBig !== undefined) {
        initial?.dispose()
        return yield* tooBig
      }
      const model = initial ?? initGPT(modelConfig, config.run.seed)
      if (init !== undefined) yield* print(say.fineTuning(init))
      // Steps logged by an earlier attempt that was killed before its first checkpoint will run again.
      yield* truncateMetricsAfter(runDir, -1)
      return { model, restored: undefined, tokensSeen: 0, cursor: source.start(config.run.seed) } satisfies StartingPoint
    }
    const { checkpoint, notes } = yield* checkpointer.latestGood
    for (const note of notes) yield* print(say.warning(note))
    const s = checkpoint.state
    const model = checkpoint.model
    const extra = (s.extra ?? {}) as { outliers?: OutlierWindow }
    const restored: TrainerRestore = { steps: s.step, optimizer: restoredOptimizer(checkpoint, model), rng: s.rng as unknown as RngState, outliers: extra.outliers }
    // A resume with nothing left to train writes nothing (see the check in `pretrain`).
    if (s.step < steps) {
      yield* truncateMetricsAfter(runDir, s.step)
      yield* metricsLog(runDir).record({ event: "resume", step: s.step, from: checkpoint.dir })
      yield* print(say.resuming(runDir, s.step, checkpoint.dir))
    }
    return { model, restored, tokensSeen: s.tokensSeen, cursor: s.cursor as DataCursor } satisfies StartingPoint
  })

/** What the taps share: where the data stands, the last evaluation, the last save. */
interface RunState {
  tokensSeen: number
  cursor: DataCursor
  lastEval: EvalResult | undefined
  lastSaved: { step: number; at: number }
}

type Signals = Effect.Effect.Success<typeof stopSignals>

/** Saves a checkpoint of the run as it stands; a signal that arrived before or during the save is answered by it. */
const saveCheckpoint = (config: PipelineConfig, run: RunState, stop: Signals, metrics: MetricsLog, elapsed: () => number) => (step: number) =>
  Effect.gen(function* () {
    const checkpointer = yield* Checkpointer
    const { gpt, encoding } = yield* Model
    const trainer = yield* (yield* Trainer).state
    stop.state.saving = true
    return yield* checkpointer.save(
      gpt,
      trainer.optimizer,
      encoding.name,
      {
        step,
        tokensSeen: run.tokensSeen,
        cursor: run.cursor,
        rng: [...trainer.rng],
        config,
        metrics: run.lastEval ? { val_loss: run.lastEval.loss, val_perplexity: run.lastEval.perplexity } : {},
        extra: { outliers: trainer.outliers }
      },
      config.checkpoint.keep
    ).pipe(
      Effect.tap(() => Effect.sync(() => (stop.state.saved = stop.state.received !== undefined))),
      Effect.ensuring(Effect.sync(() => (stop.state.saving = false))),
      Effect.tap((p) => {
        run.lastSaved = { step, at: performance.now() }
        return metrics.record({ event: "checkpoint", step, path: p, elapsed_s: elapsed() })
      })
    )
  })

/**
 * Trains as `config` says. With `resume`, continues from the Checkpointer's newest good
 * checkpoint; the caller has already checked that `config` only changes what may change.
 */
export const pretrain = (config: PipelineConfig, resume = false) =>
  Effect.scoped(
    Effect.gen(function* () {
      const backend = yield* TensorBackend
      const encoding = yield* Tokenizer
      const source = yield* DocumentSource
      const pool = yield* DocumentTokenizer
      const runDir = config.run.dir
      const metrics = metricsLog(runDir)
      const { batch, accumulate, steps } = config.train
      const { context } = config.model

      // The services of this run: the model it starts from, and the trainer that continues it.
      const start = yield* startingPoint(config, resume)
      const model = start.model
      const trainerLayer = yield* TrainerChoice
      const modelLayer = Model.fromGPT(model, encoding)
      const services = yield* Layer.build(Layer.provideMerge(trainerLayer(trainerConfigOf(config), config.run.seed, start.restored), modelLayer))
      const trainer = Context.get(services, Trainer)
      const startStep = start.restored?.steps ?? 0
      const run: RunState = { tokensSeen: start.tokensSeen, cursor: start.cursor, lastEval: undefined, lastSaved: { step: startStep, at: performance.now() } }

      yield* print(say.backend(backend.description))
      yield* print(say.model(model.config, encoding))
      if (startStep < steps) yield* print(say.plan(config, startStep))

      const evaluation = yield* Layer.build(Evaluator.heldOut({ batch, context, maxTokens: config.eval.tokens }).pipe(Layer.provide(modelLayer)))
      const evaluator = Context.get(evaluation, Evaluator)
      const started = performance.now()
      const elapsed = () => (performance.now() - started) / 1000
      const evaluate = (step: number) =>
        evaluator.evaluate.pipe(Effect.tap((r) => metrics.record({ event: "eval", step, loss: r.loss, perplexity: r.perplexity, tokens: r.tokens, elapsed_s: elapsed() })))
      const stop = yield* stopSignals
      const checkpoint = (step: number) => saveCheckpoint(config, run, stop, metrics, elapsed)(step).pipe(Effect.provide(services))

      let initialEval: EvalResult | undefined
      if (startStep === 0) {
        initialEval = yield* evaluate(0)
        yield* print(say.initialEval(initialEval))
      }
      if (startStep >= steps) {
        yield* print(say.complete(runDir, startStep, steps))
        return { model, initialEval, finalEval: undefined, steps: [], checkpoint: undefined, sample: undefined, stoppedBy: undefined } satisfies PretrainResult
      }

      const progress = makeProgress(steps, startStep)
      const results: StepResult[] = []

      // One step: the trainer's update, then where the data now stands. A non-finite loss was
      // not applied, so the weights are the last good state: save it, then stop.
      const trainStep = (windows: ReadonlyArray<TokenWindows & { readonly cursor: DataCursor }>) =>
        trainer.step(windows).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              run.cursor = windows[windows.length - 1].cursor
              run.tokensSeen += windows.reduce((n, w) => n + w.batch * w.context, 0)
            })
          ),
          Effect.catchTag("NonFiniteLoss", (cause) =>
            Effect.gen(function* () {
              const at = (yield* trainer.state).steps
              yield* progress.done
              const saved = yield* checkpoint(at)
              yield* metrics.record({ event: "stop", step: at, reason: cause.message })
              return yield* new TrainingDiverged({ cause, saved })
            })
          )
        )

      // The taps, in the order they run after each step.
      const metricsTap = (r: StepResult) =>
        Effect.all([
          metrics.record({ event: "step", step: r.step, loss: r.loss, lr: r.lr, grad_norm: r.gradNorm, tokens_per_s: r.tokensPerSecond, tokens: run.tokensSeen, elapsed_s: elapsed() }),
          r.skipped ? metrics.record({ event: "skip", step: r.step, loss: r.loss, grad_norm: r.gradNorm, reason: `outlier beyond ${config.train.skip_outlier_z} standard deviations` }) : Effect.void
        ])
      const progressTap = (r: StepResult) => Effect.zipRight(progress.step(r), r.skipped ? progress.note(say.skipped(r)) : Effect.void)
      const evaluationTap = (r: StepResult) =>
        config.eval.every > 0 && r.step % config.eval.every === 0 && r.step < steps && stop.state.received === undefined
          ? evaluate(r.step).pipe(
              Effect.tap((e) => Effect.sync(() => (run.lastEval = e))),
              Effect.flatMap((e) => progress.note(say.eval(r.step, e)))
            )
          : Effect.void
      const minutes = config.checkpoint.every_minutes
      const checkpointTap = (r: StepResult) => {
        const byStep = config.checkpoint.every > 0 && r.step % config.checkpoint.every === 0
        const byTime = minutes > 0 && performance.now() - run.lastSaved.at >= minutes * 60_000
        const bySignal = stop.state.received !== undefined
        return r.step < steps && (byStep || byTime || bySignal) ? checkpoint(r.step) : Effect.void
      }

      // Data preparation runs ahead of the step: tokenised in worker threads, `prefetch` batches deep.
      yield* Packer.batches(encoding, source, { batch, context, cursor: run.cursor, tokenizer: pool, prefetch: Math.max(config.data.prefetch, accumulate) }).pipe(
        Stream.grouped(accumulate),
        Stream.take(steps - startStep),
        Stream.mapEffect((group) => trainStep(Chunk.toReadonlyArray(group))),
        // Let a pending SIGINT/SIGTERM handler run before deciding whether to save and stop.
        Stream.tap(() => yieldToEventLoop),
        Stream.tap((r) => Effect.all([progressTap(r), metricsTap(r), Effect.sync(() => results.push(r))])),
        Stream.tap(evaluationTap),
        Stream.tap(checkpointTap),
        Stream.takeUntil(() => stop.state.received !== undefined),
        Stream.runDrain
      )
      yield* progress.done
      const stepsTaken = (yield* trainer.state).steps
      if (stop.state.received !== undefined && stepsTaken < steps) {
        const signal = stop.state.received
        yield* metrics.record({ event: "stop", step: stepsTaken, reason: signal })
        yield* print(say.stopped(signal, stepsTaken, runDir))
        return { model, initialEval, finalEval: undefined, steps: results, checkpoint: undefined, sample: undefined, stoppedBy: signal } satisfies PretrainResult
      }
      const finalEval = yield* evaluate(steps)
      run.lastEval = finalEval
      yield* print(say.finalEval(config, finalEval, initialEval, elapsed(), results.length))
      const saved = yield* checkpoint(steps)
      yield* print(say.saved(saved))
      if (stop.state.received !== undefined) {
        // The signal came after the last step: the run is complete and saved; only the sample is skipped.
        yield* print(say.stoppedAfterLast(stop.state.received))
        return { model, initialEval, finalEval, steps: results, checkpoint: saved, sample: undefined, stoppedBy: stop.state.received } satisfies PretrainResult
      }
      const text = yield* sample(config).pipe(Effect.provide(Generator.live.pipe(Layer.provideMerge(modelLayer))))
      yield* metrics.record({ event: "sample", step: steps, prompt: config.generate.prompt, text, elapsed_s: elapsed() })
      yield* print(say.sample(config, text))
      yield* print(say.nextSteps(config))
      return { model, initialEval, finalEval, steps: results, checkpoint: saved, sample: text, stoppedBy: undefined } satisfies PretrainResult
    })
  )

/** Runs `pretrain` with the layers its config names; the model is freed afterwards. */
export const runPretrain = (config: PipelineConfig, resumeFrom?: string) =>
  pretrain(config, resumeFrom !== undefined).pipe(
    Effect.map(({ model, ...rest }) => {
      model.dispose()
      return rest
    }),
    Effect.provide(pipelineLayer(config))
  )
