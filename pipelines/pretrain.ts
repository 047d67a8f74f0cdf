// The main job as a short Effect program over the services: documents → packed batches →
// training steps, with held-out evaluation, metrics, a progress line and checkpoints on the
// way, then a sample from the trained model. `glassbox run config/tiny.json` executes it; copy
// it to experiment (the services come from layers, so a test swaps in a fixture source).
import { Chunk, Effect, Layer, Stream } from "effect"
import { TensorBackend, TensorBackendLive } from "../src/backend/backend.ts"
import { checkWasmHeap } from "../src/backend/memory-budget.ts"
import { saveCheckpoint } from "../src/checkpoint/checkpointer.ts"
import type { PipelineConfig } from "../src/config/schema.ts"
import { DocumentSource } from "../src/data/document-source.ts"
import { Packer, type Batch } from "../src/data/packer.ts"
import { evaluate, type EvalResult } from "../src/eval/evaluator.ts"
import { generateTokens } from "../src/generate/generator.ts"
import { presets } from "../src/generate/sampling.ts"
import { parameterCount, type ModelConfig } from "../src/model/config.ts"
import { initGPT, type GPT } from "../src/model/gpt.ts"
import { Tokenizer, type Encoding } from "../src/tokenizer/tokenizer.ts"
import { metricsLog } from "../src/train/metrics.ts"
import { formatDuration, makeProgress } from "../src/train/progress.ts"
import { Trainer, type StepResult } from "../src/train/trainer.ts"

export const modelConfigOf = (config: PipelineConfig, vocabSize: number): ModelConfig => ({
  vocabSize,
  context: config.model.context,
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
  clip: config.train.clip
})

/** The layers a pipeline config asks for: backend, tokenizer and the training side of the data. */
export const pipelineLayer = (config: PipelineConfig) =>
  Layer.mergeAll(
    TensorBackendLive(config.backend),
    Tokenizer.layer(config.tokenizer),
    DocumentSource.shipped({ path: config.data.path, split: "train", valFraction: config.data.val_fraction })
  )

export interface PretrainResult {
  readonly model: GPT
  readonly initialEval: EvalResult
  readonly finalEval: EvalResult
  readonly steps: ReadonlyArray<StepResult>
  readonly checkpoint: string
  readonly sample: string
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

export const pretrain = (config: PipelineConfig) =>
  Effect.gen(function* () {
    const backend = yield* TensorBackend
    const encoding = yield* Tokenizer
    const source = yield* DocumentSource
    const modelConfig = modelConfigOf(config, encoding.vocabSize)
    const { batch, accumulate, steps } = config.train
    const { context } = config.model
    if (backend.name === "wasm") {
      const tooBig = checkWasmHeap(modelConfig, batch)
      if (tooBig !== undefined) return yield* tooBig
    }
    const runDir = config.run.dir
    const metrics = metricsLog(runDir)
    const say = (line: string) => Effect.sync(() => process.stdout.write(line + "\n"))
    yield* say(`backend: ${backend.description}`)
    yield* say(
      `model: ${(parameterCount(modelConfig) / 1e6).toFixed(2)}M parameters (${modelConfig.layers} layers, ${modelConfig.heads} heads, d_model ${modelConfig.dModel}, context ${context}, ${encoding.name} vocabulary ${encoding.vocabSize})`
    )
    yield* say(`training: ${steps} steps × ${accumulate} × ${batch} windows × ${context} tokens = ${(steps * accumulate * batch * context).toLocaleString("en-US")} tokens → ${runDir}`)

    const model = initGPT(modelConfig, config.run.seed)
    const trainer = new Trainer(model, trainerConfigOf(config), config.run.seed)
    const heldOut = yield* Packer.validationBatches(encoding, source.withSplit("val"), { batch, context, maxTokens: config.eval.tokens })
    const started = performance.now()
    const elapsed = () => (performance.now() - started) / 1000

    const runEval = (step: number) =>
      evaluate(model, heldOut).pipe(
        Effect.tap((r) => metrics.record({ event: "eval", step, loss: r.loss, perplexity: r.perplexity, tokens: r.tokens, elapsed_s: elapsed() }))
      )
    const initialEval = yield* runEval(0)
    yield* say(`held-out loss at start: ${initialEval.loss.toFixed(4)} (perplexity ${initialEval.perplexity.toFixed(1)}, ${initialEval.tokens.toLocaleString("en-US")} tokens)`)

    const progress = makeProgress(steps, 0)
    let tokensSeen = 0
    let lastCursor: Batch["cursor"] = source.start(config.run.seed)
    const checkpoint = (step: number, lastEval?: EvalResult) =>
      saveCheckpoint(
        runDir,
        model,
        trainer.optimizer,
        encoding.name,
        { step, tokensSeen, cursor: lastCursor, rng: [...trainer.rngState()], config, metrics: lastEval ? { val_loss: lastEval.loss } : {} },
        config.checkpoint.keep
      ).pipe(Effect.tap((p) => metrics.record({ event: "checkpoint", step, path: p, elapsed_s: elapsed() })))

    const results: StepResult[] = []
    yield* Packer.batches(encoding, source, { batch, context, cursor: lastCursor }).pipe(
      Stream.buffer({ capacity: 2 * accumulate }), // data preparation runs ahead of the step
      Stream.grouped(accumulate),
      Stream.take(steps),
      Stream.mapEffect((group) => {
        const windows = Chunk.toReadonlyArray(group)
        return trainer.trainStep(windows).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              lastCursor = windows[windows.length - 1].cursor
              tokensSeen += windows.reduce((n, w) => n + w.batch * w.context, 0)
            })
          )
        )
      }),
      Stream.tap((r) =>
        Effect.all([
          progress.step(r),
          metrics.record({ event: "step", step: r.step, loss: r.loss, lr: r.lr, grad_norm: r.gradNorm, tokens_per_s: r.tokensPerSecond, tokens: tokensSeen, elapsed_s: elapsed() }),
          Effect.sync(() => results.push(r))
        ])
      ),
      Stream.tap((r) =>
        config.eval.every > 0 && r.step % config.eval.every === 0 && r.step < steps
          ? runEval(r.step).pipe(Effect.flatMap((e) => progress.note(`step ${r.step}: held-out loss ${e.loss.toFixed(4)} (perplexity ${e.perplexity.toFixed(1)})`)))
          : Effect.void
      ),
      Stream.tap((r) => (config.checkpoint.every > 0 && r.step % config.checkpoint.every === 0 && r.step < steps ? checkpoint(r.step) : Effect.void)),
      Stream.runDrain
    )
    yield* progress.done
    const finalEval = yield* runEval(steps)
    const seconds = elapsed()
    yield* say(
      `held-out loss after ${steps} steps: ${finalEval.loss.toFixed(4)} (perplexity ${finalEval.perplexity.toFixed(1)}; started at ${initialEval.loss.toFixed(4)}) in ${formatDuration(seconds)}, ${Math.round(tokensSeen / seconds).toLocaleString("en-US")} tokens/s overall`
    )
    const saved = yield* checkpoint(steps, finalEval)
    yield* say(`saved ${saved}`)
    const sample = yield* sampleText(model, encoding, config)
    yield* metrics.record({ event: "sample", step: steps, prompt: config.generate.prompt, text: sample, elapsed_s: elapsed() })
    yield* say(`\nsample (${config.generate.preset}):\n${sample}\n`)
    return { model, initialEval, finalEval, steps: results, checkpoint: saved, sample } satisfies PretrainResult
  })

/** Runs `pretrain` with the layers its config names; the model is freed afterwards. */
export const runPretrain = (config: PipelineConfig) =>
  pretrain(config).pipe(
    Effect.map(({ model, ...rest }) => {
      model.dispose()
      return rest
    }),
    Effect.provide(pipelineLayer(config))
  )
