// The main job as a short Effect program over the services: documents → packed batches →
// training steps, with held-out evaluation, metrics, a progress line and checkpoints on the
// way, then a sample from the trained model. A run resumes from its newest good checkpoint and
// continues exactly as if it had never stopped: same weights, AdamW moments, schedule position,
// dropout RNG and data cursor. SIGINT/SIGTERM finish the current step, save, and exit cleanly.
// `glassbox run config/tiny.json` executes it; copy it to experiment (the services come from
// layers, so a test swaps in a fixture source).
import * as tf from "@tensorflow/tfjs"
import { Chunk, Data, Effect, Layer, Stream } from "effect"
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
import { evaluate, type EvalResult } from "../src/eval/evaluator.ts"
import { generateTokens } from "../src/generate/generator.ts"
import { presets } from "../src/generate/sampling.ts"
import { parameterCount, type ModelConfig } from "../src/model/config.ts"
import { initGPT, type GPT } from "../src/model/gpt.ts"
import { openInitModel } from "../src/model/reference.ts"
import { Tokenizer, type Encoding } from "../src/tokenizer/tokenizer.ts"
import type { AdamWState } from "../src/train/adamw.ts"
import { metricsLog, truncateMetricsAfter } from "../src/train/metrics.ts"
import { formatDuration, makeProgress } from "../src/train/progress.ts"
import type { RngState } from "../src/rng/rng.ts"
import { Trainer, type NonFiniteLoss, type OutlierWindow, type StepResult } from "../src/train/trainer.ts"

export const modelConfigOf = (config: PipelineConfig, vocabSize: number): ModelConfig => ({
  vocabSize,
  // The learned position table may be longer than the windows trained on.
  context: config.model.positions ?? config.model.context,
  dModel: config.model.d_model,
  layers: config.model.layers,
  heads: config.model.heads,
  dFF: config.model.d_ff,
  dropout: config.model.dropout,
  position: config.model.position,
  tied: config.model.tied,
  gelu: config.model.gelu,
  lnEps: config.model.ln_eps
})

export const trainerConfigOf = (config: PipelineConfig) => ({
  schedule: { lr: config.train.lr, minLr: config.train.min_lr, warmupSteps: config.train.warmup_steps, totalSteps: config.train.steps },
  adamw: {
    beta1: config.train.beta1,
    beta2: config.train.beta2,
    eps: config.train.eps,
    weightDecay: config.train.weight_decay,
    decayEmbeddings: config.train.decay_embeddings
  },
  clip: config.train.clip,
  outlierZ: config.train.skip_outlier_z
})

/**
 * The layers a pipeline config asks for: backend, tokenizer, the training side of the data
 * (shipped corpus, local parquet files or a Hub dataset, with its tokenizer pool and caches), and
 * the run directory's checkpoints.
 */
export const pipelineLayer = (config: PipelineConfig) =>
  Layer.mergeAll(
    TensorBackendLive(config.backend),
    Tokenizer.layer(config.tokenizer),
    dataLayer(config.data, { tokenizer: config.tokenizer }),
    Checkpointer.files(config.run.dir)
  )

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

/** Decodes a sample continuation of `prompt` (or of end-of-text when empty). */
export const sampleText = (model: GPT, encoding: Encoding, config: PipelineConfig) =>
  Effect.gen(function* () {
    const promptIds = config.generate.prompt === "" ? [encoding.eot] : encoding.encode(config.generate.prompt)
    const ids = yield* generateTokens(model, promptIds.slice(-model.config.context), {
      maxNewTokens: config.generate.max_new_tokens,
      sampling: presets[config.generate.preset],
      seed: config.generate.seed,
      stopToken: encoding.eot
    }).pipe(Stream.runCollect)
    return config.generate.prompt + encoding.decode(Chunk.toReadonlyArray(ids))
  })

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
      const checkpointer = yield* Checkpointer
      const runDir = config.run.dir
      const metrics = metricsLog(runDir)
      const say = (line: string) => Effect.sync(() => process.stdout.write(line + "\n"))
      const { batch, accumulate, steps } = config.train
      const { context } = config.model

      // Fresh weights, or everything a checkpoint holds.
      let model: GPT
      let trainer: Trainer
      let tokensSeen = 0
      let cursor: DataCursor = source.start(config.run.seed)
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
        model = initial ?? initGPT(modelConfig, config.run.seed)
        if (init !== undefined) yield* say(`fine-tuning from ${init}`)
        trainer = new Trainer(model, trainerConfigOf(config), config.run.seed)
        // Steps logged by an earlier attempt that was killed before its first checkpoint will run again.
        yield* truncateMetricsAfter(runDir, -1)
      } else {
        const { checkpoint, notes } = yield* checkpointer.latestGood
        for (const note of notes) yield* say(`warning: ${note}`)
        const s = checkpoint.state
        model = checkpoint.model
        const extra = (s.extra ?? {}) as { outliers?: OutlierWindow }
        trainer = new Trainer(model, trainerConfigOf(config), config.run.seed, {
          steps: s.step,
          optimizer: restoredOptimizer(checkpoint, model),
          rng: s.rng as unknown as RngState,
          outliers: extra.outliers
        })
        tokensSeen = s.tokensSeen
        cursor = s.cursor as DataCursor
        // A resume with nothing left to train writes nothing (see the check below).
        if (s.step < steps) {
          yield* truncateMetricsAfter(runDir, s.step)
          yield* metrics.record({ event: "resume", step: s.step, from: checkpoint.dir })
          yield* say(`resuming ${runDir} at step ${s.step} from ${checkpoint.dir}`)
        }
      }
      yield* Effect.addFinalizer(() => Effect.sync(() => tf.dispose([...trainer.optimizer.m.values(), ...trainer.optimizer.v.values()])))
      const mc = model.config
      const startStep = trainer.step
      yield* say(`backend: ${backend.description}`)
      yield* say(
        `model: ${(parameterCount(mc) / 1e6).toFixed(2)}M parameters (${mc.layers} layers, ${mc.heads} heads, d_model ${mc.dModel}, context ${mc.context}, ${mc.position} positions, ${encoding.name} vocabulary ${encoding.vocabSize})`
      )
      if (startStep < steps) yield* say(`training: steps ${startStep}→${steps} × ${accumulate} × ${batch} windows × ${context} tokens = ${((steps - startStep) * accumulate * batch * context).toLocaleString("en-US")} tokens → ${runDir}`)

      const heldOut = yield* Packer.validationBatches(encoding, source.withSplit("val"), { batch, context, maxTokens: config.eval.tokens })
      const started = performance.now()
      const elapsed = () => (performance.now() - started) / 1000
      const runEval = (step: number) =>
        evaluate(model, heldOut).pipe(
          Effect.tap((r) => metrics.record({ event: "eval", step, loss: r.loss, perplexity: r.perplexity, tokens: r.tokens, elapsed_s: elapsed() }))
        )
      let lastEval: EvalResult | undefined
      let lastSaved = { step: startStep, at: performance.now() }
      const stop = yield* stopSignals
      const checkpoint = (step: number) =>
        Effect.sync(() => (stop.state.saving = true)).pipe(Effect.zipRight(checkpointer.save(
          model,
          trainer.optimizer,
          encoding.name,
          {
            step,
            tokensSeen,
            cursor,
            rng: [...trainer.rngState()],
            config,
            metrics: lastEval ? { val_loss: lastEval.loss, val_perplexity: lastEval.perplexity } : {},
            extra: { outliers: trainer.outliers }
          },
          config.checkpoint.keep
        )),
          // A signal that arrived before or during this save is answered by it.
          Effect.tap(() => Effect.sync(() => (stop.state.saved = stop.state.received !== undefined))),
          Effect.ensuring(Effect.sync(() => (stop.state.saving = false))),
          Effect.tap((p) => {
            lastSaved = { step, at: performance.now() }
            return metrics.record({ event: "checkpoint", step, path: p, elapsed_s: elapsed() })
          })
        )

      let initialEval: EvalResult | undefined
      if (startStep === 0) {
        initialEval = yield* runEval(0)
        yield* say(`held-out loss at start: ${initialEval.loss.toFixed(4)} (perplexity ${initialEval.perplexity.toFixed(1)}, ${initialEval.tokens.toLocaleString("en-US")} tokens)`)
      }
      if (startStep >= steps) {
        yield* say(`${runDir} is complete: it is at step ${startStep} and train.steps is ${steps}; to train further raise train.steps (e.g. glassbox resume ${runDir} --set train.steps=${Math.max(2 * startStep, startStep + 1)})`)
        return { model, initialEval, finalEval: undefined, steps: [], checkpoint: undefined, sample: undefined, stoppedBy: undefined } satisfies PretrainResult
      }

      const progress = makeProgress(steps, startStep)
      const results: StepResult[] = []
      const minutes = config.checkpoint.every_minutes
      // Data preparation runs ahead of the step: tokenised in worker threads, `prefetch` batches deep.
      yield* Packer.batches(encoding, source, { batch, context, cursor, tokenizer: pool, prefetch: Math.max(config.data.prefetch, accumulate) }).pipe(
        Stream.grouped(accumulate),
        Stream.take(steps - startStep),
        Stream.mapEffect((group) => {
          const windows = Chunk.toReadonlyArray(group)
          return trainer.trainStep(windows).pipe(
            Effect.tap(() =>
              Effect.sync(() => {
                cursor = windows[windows.length - 1].cursor
                tokensSeen += windows.reduce((n, w) => n + w.batch * w.context, 0)
              })
            ),
            // The failed step was not applied: the weights are the last good state.
            Effect.catchTag("NonFiniteLoss", (cause) =>
              progress.done.pipe(
                Effect.zipRight(checkpoint(trainer.step)),
                Effect.tap(() => metrics.record({ event: "stop", step: trainer.step, reason: cause.message })),
                Effect.flatMap((saved) => Effect.fail(new TrainingDiverged({ cause, saved })))
              )
            )
          )
        }),
        // Let a pending SIGINT/SIGTERM handler run before deciding whether to save and stop.
        Stream.tap(() => yieldToEventLoop),
        Stream.tap((r) =>
          Effect.all([
            progress.step(r),
            metrics.record({ event: "step", step: r.step, loss: r.loss, lr: r.lr, grad_norm: r.gradNorm, tokens_per_s: r.tokensPerSecond, tokens: tokensSeen, elapsed_s: elapsed() }),
            r.skipped
              ? Effect.zipRight(
                  metrics.record({ event: "skip", step: r.step, loss: r.loss, grad_norm: r.gradNorm, reason: `outlier beyond ${config.train.skip_outlier_z} standard deviations` }),
                  progress.note(`step ${r.step}: skipped (loss ${r.loss.toFixed(4)}, gradient norm ${r.gradNorm.toFixed(3)} are outliers)`)
                )
              : Effect.void,
            Effect.sync(() => results.push(r))
          ])
        ),
        Stream.tap((r) =>
          config.eval.every > 0 && r.step % config.eval.every === 0 && r.step < steps && stop.state.received === undefined
            ? runEval(r.step).pipe(
                Effect.tap((e) => Effect.sync(() => (lastEval = e))),
                Effect.flatMap((e) => progress.note(`step ${r.step}: held-out loss ${e.loss.toFixed(4)} (perplexity ${e.perplexity.toFixed(1)})`))
              )
            : Effect.void
        ),
        Stream.tap((r) => {
          const byStep = config.checkpoint.every > 0 && r.step % config.checkpoint.every === 0
          const byTime = minutes > 0 && performance.now() - lastSaved.at >= minutes * 60_000
          const bySignal = stop.state.received !== undefined
          return r.step < steps && (byStep || byTime || bySignal) ? checkpoint(r.step) : Effect.void
        }),
        Stream.takeUntil(() => stop.state.received !== undefined),
        Stream.runDrain
      )
      yield* progress.done
      if (stop.state.received !== undefined && trainer.step < steps) {
        const signal = stop.state.received
        yield* metrics.record({ event: "stop", step: trainer.step, reason: signal })
        yield* say(`stopped by ${signal} at step ${trainer.step}; checkpoint saved. Resume with: glassbox resume ${runDir}`)
        return { model, initialEval, finalEval: undefined, steps: results, checkpoint: undefined, sample: undefined, stoppedBy: signal } satisfies PretrainResult
      }
      const finalEval = yield* runEval(steps)
      lastEval = finalEval
      const seconds = elapsed()
      yield* say(
        `held-out loss after ${steps} steps: ${finalEval.loss.toFixed(4)} (perplexity ${finalEval.perplexity.toFixed(1)}${initialEval ? `; started at ${initialEval.loss.toFixed(4)}` : ""}) in ${formatDuration(seconds)}, ${Math.round((results.length * accumulate * batch * context) / seconds).toLocaleString("en-US")} tokens/s overall`
      )
      const saved = yield* checkpoint(steps)
      yield* say(`saved ${saved}`)
      if (stop.state.received !== undefined) {
        // The signal came after the last step: the run is complete and saved; only the sample is skipped.
        yield* say(`stopped by ${stop.state.received} after the last step; the run is complete`)
        return { model, initialEval, finalEval, steps: results, checkpoint: saved, sample: undefined, stoppedBy: stop.state.received } satisfies PretrainResult
      }
      const sample = yield* sampleText(model, encoding, config)
      yield* metrics.record({ event: "sample", step: steps, prompt: config.generate.prompt, text: sample, elapsed_s: elapsed() })
      yield* say(`\nsample (${config.generate.preset}):\n${sample}\n`)
      yield* say(nextSteps(runDir, config.generate.prompt))
      return { model, initialEval, finalEval, steps: results, checkpoint: saved, sample, stoppedBy: undefined } satisfies PretrainResult
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
