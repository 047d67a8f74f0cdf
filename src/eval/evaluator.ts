// Held-out measurement on a fixed validation set: the same tokens every time, so two
// evaluations (or two runs) are comparable. Loss is the token-weighted mean cross-entropy and
// perplexity = exp(loss): the effective number of equally likely next tokens the model hesitates
// between. A model that always guesses uniformly over V tokens scores perplexity V.
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import type { GPT } from "../model/gpt.ts"
import { windowLoss, type TokenWindows } from "../train/trainer.ts"

export interface EvalResult {
  readonly loss: number
  readonly perplexity: number
  readonly tokens: number
}

export const evaluate = (model: GPT, batches: readonly TokenWindows[]): Effect.Effect<EvalResult> =>
  Effect.sync(() => {
    let weighted = 0
    let tokens = 0
    for (const w of batches) {
      const n = w.batch * w.context
      const loss = tf.tidy(() => windowLoss(model, w).dataSync()[0])
      weighted += loss * n
      tokens += n
    }
    const loss = tokens === 0 ? NaN : weighted / tokens
    return { loss, perplexity: Math.exp(loss), tokens }
  })
