// Why this file exists: induction heads (Olsson et al., 2022) are the circuit behind in-context
// copying: having seen "… A B … A", predict "B". They are found with a standard test: a BOS token
// then R random tokens, repeated once:
//     position  0    1 … R      R+1 … 2R
//     token     BOS  t₁ … t_R   t₁  … t_R
// At a second-half position t (token t_{t−R}), an induction head attends to the token *after* the
// earlier copy, position t−R+1, i.e. the diagonal at offset R−1 of A[dest, src]. So
//     induction score(head) = mean over the batch and t ∈ [R+1, 2R] of A[t, t−R+1]
//     previous-token score  = mean over the batch and t ∈ [2, 2R]  of A[t, t−1]
// (from t = 2, as in the attention analysis: at t = 1 the previous position is the BOS token,
// where attention sinks look, so counting it would credit sink heads with previous-token work)
// (a previous-token head in an earlier layer is the other half of the circuit: it writes "my
// predecessor was A" into position s, which the induction head's key then matches).
// The behavioural check is the loss: random tokens are unpredictable the first time (≈ log V nats)
// and predictable the second time if the model copies.
//
// Everything runs in one batched forward pass; the hooks reduce each layer's pattern
// [B, H, T, T] to two [H] vectors as it goes, so no pattern is kept.
import * as tf from "@tensorflow/tfjs"
import type { GPT } from "../model/gpt.ts"
import type { HookFn } from "../model/hooks.ts"
import { Rng } from "../rng/rng.ts"
import { PREVIOUS_TOKEN_FIRST_DEST } from "./attention.ts"
import { idsTensor } from "./hooks.ts"

export interface InductionOptions {
  /** R, the length of the random segment (default 50, or the most the context allows: ⌊(context − 1) / 2⌋). */
  readonly repeatLength?: number
  /** How many random sequences in the one batch (default 10). */
  readonly batch?: number
  readonly seed?: number
  /** Heads with an induction score at least this are reported (default 0.4). */
  readonly threshold?: number
  /** The token at position 0 (default: the last id, end-of-text in the GPT-2 vocabulary). */
  readonly bos?: number
}

export interface InductionHead {
  readonly layer: number
  readonly head: number
  readonly score: number
}

export interface InductionResult {
  readonly repeatLength: number
  /** Set when R was not given and the context cut the default down: says so, for the report. */
  readonly repeatLengthNote?: string
  readonly batch: number
  readonly seed: number
  readonly bos: number
  readonly threshold: number
  /** induction[layer][head] */
  readonly induction: ReadonlyArray<ReadonlyArray<number>>
  /** previousToken[layer][head] */
  readonly previousToken: ReadonlyArray<ReadonlyArray<number>>
  /** Mean loss (nats) predicting tokens 2…R (first sight) and R+2…2R (the repeat). */
  readonly lossFirstHalf: number
  readonly lossSecondHalf: number
  /** Heads at or above the threshold, strongest first. */
  readonly heads: ReadonlyArray<InductionHead>
  /** The sequences used, [batch][2R+1]. */
  readonly sequences: ReadonlyArray<ReadonlyArray<number>>
}

export const inductionDefaults = { repeatLength: 50, batch: 10, seed: 0, threshold: 0.4 } as const

/**
 * R when none is given: 50, or less when learned positions cap the sequence (2R + 1 ≤ context),
 * with a sentence saying so. RoPE and ALiBi have no position table, so nothing caps them.
 */
export const defaultRepeatLength = (config: Pick<GPT["config"], "context" | "position">): { repeatLength: number; note?: string } => {
  const fits = Math.floor((config.context - 1) / 2)
  if (config.position !== "learned" || fits >= inductionDefaults.repeatLength) return { repeatLength: inductionDefaults.repeatLength }
  return {
    repeatLength: fits,
    note: `repeat length ${fits}: the default of ${inductionDefaults.repeatLength} needs ${2 * inductionDefaults.repeatLength + 1} positions and the model's context is ${config.context} (2R + 1 ≤ ${config.context}); set it with --repeat`
  }
}

/**
 * `batch` sequences of BOS + R random tokens repeated twice. Within a sequence the R tokens are
 * distinct (when the vocabulary allows), so each second-half token has exactly one earlier copy.
 */
export const repeatedSequences = (vocabSize: number, R: number, batch: number, seed: number, bos: number): number[][] => {
  const rng = Rng.seeded(seed, "induction")
  const pool = Array.from({ length: vocabSize }, (_, i) => i).filter((i) => i !== bos)
  const distinct = pool.length >= R
  return Array.from({ length: batch }, () => {
    const segment: number[] = []
    if (distinct) {
      // Partial Fisher–Yates: the first R entries of a shuffled pool.
      for (let i = 0; i < R; i++) {
        const j = i + Math.floor(rng.uniform() * (pool.length - i))
        ;[pool[i], pool[j]] = [pool[j], pool[i]]
        segment.push(pool[i])
      }
    } else for (let i = 0; i < R; i++) segment.push(pool[Math.floor(rng.uniform() * pool.length)])
    return [bos, ...segment, ...segment]
  })
}

/** A [T, T] mask with ones on A[t, t−offset] for t in [from, to]. */
const diagonalMask = (T: number, offset: number, from: number, to: number): { mask: tf.Tensor2D; count: number } => {
  const data = new Float32Array(T * T)
  let count = 0
  for (let t = from; t <= to; t++) {
    data[t * T + (t - offset)] = 1
    count++
  }
  return { mask: tf.tensor2d(data, [T, T]), count }
}

/**
 * Cross-entropy of each target given hidden states h [N, d] (already through ln_f), computed in
 * chunks so the [N, V] logits never exist all at once (config B: V = 50,257).
 */
export const tokenLosses = (model: GPT, h: tf.Tensor2D, targets: ReadonlyArray<number>, chunk = 256): Float32Array => {
  const [N] = h.shape
  const V = model.config.vocabSize
  const out = new Float32Array(N)
  for (let start = 0; start < N; start += chunk) {
    const n = Math.min(chunk, N - start)
    const losses = tf.tidy(() => {
      const logp = tf.logSoftmax(model.unembed(tf.slice(h, [start, 0], [n, -1]))) // [n, V]
      const flat = tf.tensor1d(Array.from({ length: n }, (_, i) => i * V + targets[start + i]), "int32")
      return tf.neg(tf.gather(tf.reshape(logp, [-1]), flat)) // [n]
    })
    out.set(losses.dataSync(), start)
    losses.dispose()
  }
  return out
}

/** The induction test (options already validated: 2R + 1 ≤ context, bos in the vocabulary). */
export const inductionScores = (model: GPT, options: InductionOptions = {}): InductionResult => {
  const { layers, heads, vocabSize, dModel } = model.config
  const chosen = options.repeatLength === undefined ? defaultRepeatLength(model.config) : { repeatLength: options.repeatLength }
  const R = chosen.repeatLength
  const B = options.batch ?? inductionDefaults.batch
  const seed = options.seed ?? inductionDefaults.seed
  const threshold = options.threshold ?? inductionDefaults.threshold
  const bos = options.bos ?? vocabSize - 1
  const T = 2 * R + 1
  const sequences = repeatedSequences(vocabSize, R, B, seed, bos)

  const induction = diagonalMask(T, R - 1, R + 1, 2 * R)
  const previous = diagonalMask(T, 1, PREVIOUS_TOKEN_FIRST_DEST, 2 * R)
  const perLayer: Array<{ induction: tf.Tensor; previous: tf.Tensor }> = []
  const patternName = /^blocks\.(\d+)\.attn\.hook_pattern$/
  // Reduce each pattern [B, H, T, T] to per-head means as the forward pass reaches it.
  const hooks: HookFn = (name, pattern) => {
    const match = patternName.exec(name)
    if (match === null) return
    const reduce = (m: { mask: tf.Tensor2D; count: number }) => tf.keep(tf.div(tf.sum(tf.mul(pattern, m.mask), [0, 2, 3]), B * m.count)) // [H]
    perLayer[Number(match[1])] = { induction: reduce(induction), previous: reduce(previous) }
  }
  const input = idsTensor(sequences)
  const hidden = model.hidden(input, { hooks }) // [B, T, d]
  input.dispose()
  tf.dispose([induction.mask, previous.mask])

  // Position t predicts token t+1. First half: targets 2…R; second half: targets R+2…2R.
  const rows: number[] = []
  const targets: number[] = []
  for (let b = 0; b < B; b++) {
    for (let t = 1; t < 2 * R; t++) {
      if (t === R) continue // predicting the first repeated token: unpredictable, in neither half
      rows.push(b * T + t)
      targets.push(sequences[b][t + 1])
    }
  }
  const rowIndex = tf.tensor1d(rows, "int32")
  const picked = tf.tidy(() => tf.gather(tf.reshape(hidden, [B * T, dModel]), rowIndex) as tf.Tensor2D)
  const losses = tokenLosses(model, picked, targets)
  tf.dispose([hidden, rowIndex, picked])
  let first = 0
  let second = 0
  const half = R - 1
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < half; i++) {
      first += losses[b * 2 * half + i]
      second += losses[b * 2 * half + half + i]
    }
  }

  const read = (t: tf.Tensor) => Array.from(t.dataSync())
  const inductionGrid = perLayer.map((l) => read(l.induction))
  const previousGrid = perLayer.map((l) => read(l.previous))
  tf.dispose(perLayer.flatMap((l) => [l.induction, l.previous]))
  const found: InductionHead[] = []
  for (let layer = 0; layer < layers; layer++) {
    for (let head = 0; head < heads; head++) {
      const score = inductionGrid[layer][head]
      if (score >= threshold) found.push({ layer, head, score })
    }
  }
  found.sort((a, b) => b.score - a.score)
  return {
    repeatLength: R,
    ...(chosen.note === undefined ? {} : { repeatLengthNote: chosen.note }),
    batch: B,
    seed,
    bos,
    threshold,
    induction: inductionGrid,
    previousToken: previousGrid,
    lossFirstHalf: half > 0 ? first / (B * half) : NaN,
    lossSecondHalf: half > 0 ? second / (B * half) : NaN,
    heads: found,
    sequences
  }
}
