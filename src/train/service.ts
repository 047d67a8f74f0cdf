// The Trainer service (DESIGN.md §3): one optimisation step over a group of windows, and the
// state a checkpoint needs to continue it exactly. The live layer wraps src/train/trainer.ts
// (accumulate, clip, non-finite guard, outlier guard, AdamW, schedule) over the Model service's
// GPT. `Trainer.sgd` is a second optimizer behind the same interface: the same gradients, clip
// and schedule, then plain gradient descent θ ← θ − lr·scale·g without moments or decay, so an
// experiment can ask what AdamW's per-parameter step sizes buy. One conformance suite
// (test/train/service.test.ts) holds both to the same contract.
import * as tf from "@tensorflow/tfjs"
import { Context, Effect, Layer } from "effect"
import type { PipelineConfig } from "../config/schema.ts"
import { Model } from "../model/service.ts"
import { initAdamW, type AdamWState } from "./adamw.ts"
import { Rng, type RngState } from "../rng/rng.ts"
import { learningRate } from "./schedule.ts"
import {
  accumulateGradients,
  clipScale,
  globalNorm,
  NonFiniteLoss,
  Trainer as AdamWTrainer,
  type OutlierWindow,
  type StepResult,
  type TokenWindows,
  type TrainerConfig,
  type TrainerRestore
} from "./trainer.ts"

/** The train section of a pipeline config as the trainer's settings. */
export const trainerConfigOf = (config: PipelineConfig): TrainerConfig => ({
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

/** Everything a checkpoint stores to continue training exactly where it stopped. */
export interface TrainerState {
  /** Steps taken so far, skipped ones included (the schedule's position). */
  readonly steps: number
  readonly optimizer: AdamWState
  readonly rng: RngState
  readonly outliers: OutlierWindow
}

export interface TrainerShape {
  /** Applies one update from the micro-batches of one step. */
  readonly step: (windows: ReadonlyArray<TokenWindows>) => Effect.Effect<StepResult, NonFiniteLoss>
  /** The current state, for a checkpoint (the optimizer's tensors are live: save, do not free). */
  readonly state: Effect.Effect<TrainerState>
}

/** Builds a Trainer layer for one run: its config, seed, and the state to continue from. */
export type TrainerLayer = (config: TrainerConfig, seed: number, restored?: TrainerRestore) => Layer.Layer<Trainer, never, Model>

const freeOptimizer = (optimizer: AdamWState) => Effect.sync(() => tf.dispose([...optimizer.m.values(), ...optimizer.v.values()]))

export class Trainer extends Context.Tag("glassbox/Trainer")<Trainer, TrainerShape>() {
  /** AdamW with warmup + cosine schedule, clipping and guards: src/train/trainer.ts. */
  static readonly live: TrainerLayer = (config, seed, restored) =>
    Layer.scoped(
      Trainer,
      Effect.gen(function* () {
        const { gpt } = yield* Model
        const trainer = yield* Effect.acquireRelease(
          Effect.sync(() => new AdamWTrainer(gpt, config, seed, restored)),
          (t) => freeOptimizer(t.optimizer)
        )
        return {
          step: (windows) => trainer.trainStep(windows),
          state: Effect.sync(() => ({ steps: trainer.step, optimizer: trainer.optimizer, rng: trainer.rngState(), outliers: trainer.outliers }))
        }
      })
    )

  /** Plain gradient descent at the same schedule and clip (no moments, no weight decay). */
  static readonly sgd: TrainerLayer = (config, seed, restored) =>
    Layer.scoped(
      Trainer,
      Effect.gen(function* () {
        const { gpt } = yield* Model
        // Kept only so the state has the checkpoint's shape; SGD never reads or changes the moments.
        const optimizer = yield* Effect.acquireRelease(Effect.sync(() => restored?.optimizer ?? initAdamW(gpt.params)), freeOptimizer)
        const rng = restored ? Rng.fromState(restored.rng) : Rng.seeded(seed, "dropout")
        const outliers = restored?.outliers ?? { losses: [], norms: [] }
        let steps = restored?.steps ?? 0
        return {
          step: (windows) =>
            Effect.suspend(() => {
              const started = performance.now()
              const { loss, grads } = accumulateGradients(gpt, windows, () => rng.nextSeed())
              const gradNorm = globalNorm(grads)
              if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
                tf.dispose([...grads.values()])
                return Effect.fail(new NonFiniteLoss({ step: steps + 1, loss, gradNorm }))
              }
              const lr = learningRate(config.schedule, steps)
              const scale = clipScale(gradNorm, config.clip)
              for (const [name, p] of gpt.params) p.assign(tf.tidy(() => tf.sub(p, tf.mul(grads.get(name)!, lr * scale))))
              tf.dispose([...grads.values()])
              steps += 1
              optimizer.step += 1
              const ms = performance.now() - started
              const tokens = windows.reduce((n, w) => n + w.batch * w.context, 0)
              return Effect.succeed({ step: steps, loss, gradNorm, lr, tokens, ms, tokensPerSecond: (tokens / ms) * 1000, skipped: false })
            }),
          state: Effect.sync(() => ({ steps, optimizer, rng: rng.state(), outliers }))
        }
      })
    )
}

/**
 * Which Trainer layer a pipeline builds once it knows its model (fresh or restored). Defaults to
 * AdamW; an experiment swaps the optimizer with `Effect.provideService(TrainerChoice, Trainer.sgd)`.
 */
export class TrainerChoice extends Context.Reference<TrainerChoice>()("glassbox/TrainerChoice", { defaultValue: (): TrainerLayer => Trainer.live }) {}
