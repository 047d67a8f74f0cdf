// One optimisation step: forward and backward over `accumulate` micro-batches, average their
// gradients, clip the global norm, refuse to continue on a non-finite loss or gradient, then
// apply AdamW at the scheduled learning rate. Accumulating k micro-batches of B rows gives the
// same gradient as one batch of k·B rows, in the memory of B.
import * as tf from "@tensorflow/tfjs"
import { Data, Effect } from "effect"
import { fusedOps } from "../backend/fused.ts"
import type { GPT } from "../model/gpt.ts"
import { adamwUpdate, initAdamW, type AdamWConfig, type AdamWState } from "./adamw.ts"
import { Rng, type RngState } from "../rng/rng.ts"
import { learningRate, type ScheduleConfig } from "./schedule.ts"

/** Token windows [batch, context + 1], row-major: inputs are [:, :-1], targets [:, 1:]. */
export interface TokenWindows {
  readonly ids: Int32Array
  readonly batch: number
  readonly context: number
}

export interface TrainerConfig {
  readonly schedule: ScheduleConfig
  readonly adamw: AdamWConfig
  /** Global gradient-norm ceiling; 0 disables clipping. */
  readonly clip: number
  /** Skip a step whose loss or gradient norm is this many standard deviations high; 0 disables. */
  readonly outlierZ?: number
}

export interface StepResult {
  readonly step: number
  readonly loss: number
  /** Global gradient norm before clipping. */
  readonly gradNorm: number
  readonly lr: number
  readonly tokens: number
  readonly ms: number
  readonly tokensPerSecond: number
  /** True when the outlier guard refused to apply this step. */
  readonly skipped: boolean
}

export class NonFiniteLoss extends Data.TaggedError("NonFiniteLoss")<{
  readonly step: number
  readonly loss: number
  readonly gradNorm: number
}> {
  override get message() {
    return `training stopped at step ${this.step}: loss ${this.loss}, gradient norm ${this.gradNorm} (not finite); lower train.lr, raise train.warmup_steps, or enable train.clip`
  }
}

/** Mean next-token loss of one micro-batch. */
export const windowLoss = (model: GPT, w: TokenWindows, options: { training?: boolean; dropoutSeed?: () => number } = {}): tf.Scalar =>
  tf.tidy(() => {
    const all = tf.tensor2d(w.ids, [w.batch, w.context + 1], "int32")
    const inputs = tf.slice(all, [0, 0], [w.batch, w.context]) as tf.Tensor2D
    const targets = tf.reshape(tf.slice(all, [0, 1], [w.batch, w.context]), [-1]) as tf.Tensor1D
    const h = model.hidden(inputs, options)
    return model.loss(tf.reshape(h, [w.batch * w.context, model.config.dModel]) as tf.Tensor2D, targets)
  })

/** Averaged gradients and loss over micro-batches (no update). Caller disposes the grads. */
export const accumulateGradients = (
  model: GPT,
  windows: readonly TokenWindows[],
  dropoutSeed?: () => number
): { loss: number; grads: Map<string, tf.Tensor> } => {
  const names = [...model.params.keys()]
  const vars = [...model.params.values()]
  const sums = new Map<string, tf.Tensor>()
  let lossSum = 0
  for (const w of windows) {
    const { value, grads } = tf.variableGrads(() => windowLoss(model, w, { training: true, dropoutSeed }), vars)
    lossSum += value.dataSync()[0]
    value.dispose()
    names.forEach((name, i) => {
      const g = grads[vars[i].name]
      const previous = sums.get(name)
      if (previous === undefined) sums.set(name, g)
      else {
        sums.set(name, tf.add(previous, g))
        tf.dispose([previous, g])
      }
    })
  }
  const k = windows.length
  if (k > 1) for (const [name, g] of sums) sums.set(name, tf.tidy(() => tf.div(g, k))), g.dispose()
  return { loss: lossSum / k, grads: sums }
}

/** √Σ‖g‖² over every parameter. */
export const globalNorm = (grads: ReadonlyMap<string, tf.Tensor>): number => {
  const fused = fusedOps()
  if (fused !== undefined) return Math.sqrt(fused.sumOfSquares([...grads.values()]))
  const squared = tf.tidy(() => tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g)))))
  const value = squared.dataSync()[0]
  squared.dispose()
  return Math.sqrt(value)
}

/** The factor min(1, clip/norm) that brings the global norm to at most `clip` (1 when off). */
export const clipScale = (norm: number, clip: number): number => (clip <= 0 || norm <= clip ? 1 : clip / (norm + 1e-6))

/** Scales gradients by min(1, clip/norm) so their global norm is at most `clip`. */
export const clipGradients = (grads: Map<string, tf.Tensor>, norm: number, clip: number): void => {
  const scale = clipScale(norm, clip)
  if (scale === 1) return
  for (const [name, g] of grads) {
    grads.set(name, tf.mul(g, scale))
    g.dispose()
  }
}

/**
 * Running statistics for the optional outlier guard: a step whose loss or gradient norm lies more
 * than z standard deviations above the mean of the recent window is skipped, not applied.
 */
export interface OutlierWindow {
  readonly losses: number[]
  readonly norms: number[]
}

const WINDOW = 50
const MIN_HISTORY = 20

const zScore = (xs: readonly number[], x: number) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length
  return (x - mean) / Math.sqrt(variance + 1e-12)
}

export interface TrainerRestore {
  /** Steps taken so far, skipped ones included (the schedule's position). */
  readonly steps: number
  readonly optimizer: AdamWState
  readonly rng: RngState
  readonly outliers?: OutlierWindow
}

export class Trainer {
  readonly optimizer: AdamWState
  private rng: Rng
  private stepsTaken: number
  readonly outliers: OutlierWindow

  constructor(
    readonly model: GPT,
    readonly config: TrainerConfig,
    seed: number,
    restored?: TrainerRestore
  ) {
    this.optimizer = restored?.optimizer ?? initAdamW(model.params)
    this.rng = restored ? Rng.fromState(restored.rng) : Rng.seeded(seed, "dropout")
    this.stepsTaken = restored?.steps ?? 0
    this.outliers = restored?.outliers ?? { losses: [], norms: [] }
  }

  /** Steps taken so far (skipped steps included). */
  get step(): number {
    return this.stepsTaken
  }

  rngState(): RngState {
    return this.rng.state()
  }

  /** One update from `windows` (the micro-batches of one step). */
  trainStep(windows: readonly TokenWindows[]): Effect.Effect<StepResult, NonFiniteLoss> {
    return Effect.suspend(() => {
      const started = performance.now()
      const step = this.stepsTaken
      const { loss, grads } = accumulateGradients(this.model, windows, () => this.rng.nextSeed())
      const gradNorm = globalNorm(grads)
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        tf.dispose([...grads.values()])
        return Effect.fail(new NonFiniteLoss({ step: step + 1, loss, gradNorm }))
      }
      const lr = learningRate(this.config.schedule, step)
      const skipped = this.isOutlier(loss, gradNorm)
      if (skipped) tf.dispose([...grads.values()])
      else {
        // Clipping is applied as AdamW reads each gradient: no extra pass over the gradients.
        adamwUpdate(this.model.params, grads, this.optimizer, lr, this.config.adamw, clipScale(gradNorm, this.config.clip))
        tf.dispose([...grads.values()])
        this.remember(loss, gradNorm)
      }
      this.stepsTaken = step + 1
      const ms = performance.now() - started
      const tokens = windows.reduce((n, w) => n + w.batch * w.context, 0)
      return Effect.succeed({ step: step + 1, loss, gradNorm, lr, tokens, ms, tokensPerSecond: (tokens / ms) * 1000, skipped })
    })
  }

  private isOutlier(loss: number, norm: number): boolean {
    const z = this.config.outlierZ ?? 0
    if (z <= 0 || this.outliers.losses.length < MIN_HISTORY) return false
    return zScore(this.outliers.losses, loss) > z || zScore(this.outliers.norms, norm) > z
  }

  private remember(loss: number, norm: number) {
    this.outliers.losses.push(loss)
    this.outliers.norms.push(norm)
    if (this.outliers.losses.length > WINDOW) {
      this.outliers.losses.shift()
      this.outliers.norms.shift()
    }
  }
}
