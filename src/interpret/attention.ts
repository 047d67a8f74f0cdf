// Why this file exists: an attention pattern A[dest, src] says where each position reads from;
// a few shapes of A recur in every trained transformer and each has a job. This file fetches the
// patterns [batch, head, dest, src] through the hook `blocks.{L}.attn.hook_pattern` and scores
// every head against those shapes, so a person sees "L0H3: previous-token (0.97)" instead of a
// wall of numbers.
//
// Each score is a mean over the destination positions where the shape is defined and not
// confused with another one (so it is comparable across texts):
//   previous-token   A[d, d−1]                                  d ≥ 2 (at d = 1, d−1 is also 0)
//   first-token      A[d, 0]   (the "attention sink")          d ≥ 2
//   self             A[d, d]                                    d ≥ 1 (row 0 can only attend to 0)
//   duplicate-token  Σ A[d, s] over s < d with tok[s] = tok[d]       d with an earlier copy
//   induction        Σ A[d, s] over s < d with tok[s−1] = tok[d]     d with an earlier copy that has a successor
//                    (attend to the token *after* the earlier copy: "…A B … A → B")
//   broad            mean over d ≥ 1 of H(A[d, ·]) / log(d+1): 1 = uniform over the past, 0 = one-hot
// The previous-token score starts at d = 2 everywhere (this file and the induction test share
// PREVIOUS_TOKEN_FIRST_DEST): at d = 1 the previous position is position 0, where attention sinks
// put their weight, so counting it would credit every sink head with previous-token behaviour.
//
// A shape names a head only when the head beats chance at it: on a short prompt a uniform head
// already scores 1/(d+1) on "self" (0.42 on a 3-token prompt, above the 0.4 threshold). So each
// score is compared with what a uniform head scores on the same tokens, u, as the lift
//     lift = (score − u) / (1 − u)        (0 = no better than uniform, 1 = all weight on the shape)
// A head is labelled by the shape with the highest lift when both its score and its lift reach
// the threshold, else "broad" when its normalised entropy is high, else "unclassified".
import * as tf from "@tensorflow/tfjs"
import type { GPT } from "../model/gpt.ts"
import { blockHookNames } from "../model/hooks.ts"
import { cacheActivations, idsTensor } from "./hooks.ts"

export const headLabels = ["previous-token", "first-token", "self", "duplicate-token", "induction", "broad", "unclassified"] as const
export type HeadLabel = (typeof headLabels)[number]

export interface HeadScores {
  readonly previousToken: number | null
  readonly firstToken: number | null
  readonly self: number | null
  readonly duplicateToken: number | null
  readonly induction: number | null
  /** Mean normalised entropy of the rows (1 = uniform over the visible past). */
  readonly broad: number | null
}

export interface HeadReport {
  readonly layer: number
  readonly head: number
  readonly label: HeadLabel
  /** The score behind the label (for "unclassified": the best shape score). */
  readonly score: number
  readonly scores: HeadScores
}

export interface AttentionAnalysis {
  readonly tokens: ReadonlyArray<number>
  readonly layers: number
  readonly heads: number
  /** patterns[layer] holds [1, H, T, T] = [batch, head, dest, src], row-major. */
  readonly patterns: ReadonlyArray<Float32Array>
  readonly reports: ReadonlyArray<HeadReport>
}

export interface LabelThresholds {
  /** A shape score at least this high names the head (default 0.4). */
  readonly shape: number
  /** Otherwise a normalised entropy at least this high makes it "broad" (default 0.7). */
  readonly broad: number
}

export const defaultThresholds: LabelThresholds = { shape: 0.4, broad: 0.7 }

/** The first destination the previous-token score counts (d = 1 would also be the first token). */
export const PREVIOUS_TOKEN_FIRST_DEST = 2

const mean = (xs: number[]): number | null => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length)

/**
 * Scores one head's pattern. `pattern` is row-major [T, T] starting at `offset` (dest rows,
 * src columns); `tokens` are the T token ids.
 */
export const scoreHead = (pattern: ArrayLike<number>, offset: number, tokens: ReadonlyArray<number>): HeadScores => {
  const T = tokens.length
  const a = (d: number, s: number) => pattern[offset + d * T + s]
  const prev: number[] = []
  const first: number[] = []
  const self: number[] = []
  const dup: number[] = []
  const ind: number[] = []
  const ent: number[] = []
  for (let d = 0; d < T; d++) {
    if (d >= PREVIOUS_TOKEN_FIRST_DEST) {
      prev.push(a(d, d - 1))
      first.push(a(d, 0))
    }
    if (d >= 1) {
      self.push(a(d, d))
      let h = 0
      for (let s = 0; s <= d; s++) {
        const p = a(d, s)
        if (p > 0) h -= p * Math.log(p)
      }
      ent.push(h / Math.log(d + 1))
    }
    let dupMass = 0
    let dupSeen = false
    let indMass = 0
    let indSeen = false
    for (let s = 0; s < d; s++) {
      if (tokens[s] === tokens[d]) {
        dupMass += a(d, s)
        dupSeen = true
      }
      if (s >= 1 && tokens[s - 1] === tokens[d]) {
        indMass += a(d, s)
        indSeen = true
      }
    }
    if (dupSeen) dup.push(dupMass)
    if (indSeen) ind.push(indMass)
  }
  return { previousToken: mean(prev), firstToken: mean(first), self: mean(self), duplicateToken: mean(dup), induction: mean(ind), broad: mean(ent) }
}

/** What a head attending uniformly over the visible past scores on these tokens (the chance level of each shape). */
export const uniformScores = (tokens: ReadonlyArray<number>): HeadScores => {
  const T = tokens.length
  const pattern = new Float64Array(T * T)
  for (let d = 0; d < T; d++) for (let s = 0; s <= d; s++) pattern[d * T + s] = 1 / (d + 1)
  return scoreHead(pattern, 0, tokens)
}

/** (score − chance) / (1 − chance); the raw score where no chance level is known. */
const liftOver = (score: number, chance: number | null | undefined) => (chance === null || chance === undefined ? score : chance >= 1 ? 0 : (score - chance) / (1 - chance))

/**
 * The label a head's scores earn, and the score behind it. With `chance` (uniformScores of the
 * same tokens) a shape must also beat a uniform head by the threshold's lift.
 */
export const labelHead = (scores: HeadScores, thresholds: LabelThresholds = defaultThresholds, chance?: HeadScores): { label: HeadLabel; score: number } => {
  const shapes: Array<[HeadLabel, keyof HeadScores]> = [
    ["previous-token", "previousToken"],
    ["first-token", "firstToken"],
    ["self", "self"],
    ["duplicate-token", "duplicateToken"],
    ["induction", "induction"]
  ]
  let best: { label: HeadLabel; score: number; lift: number } | undefined
  let bestScore = 0
  for (const [label, key] of shapes) {
    const score = scores[key]
    if (score === null) continue
    bestScore = Math.max(bestScore, score)
    const lift = liftOver(score, chance?.[key])
    if (score >= thresholds.shape && lift >= thresholds.shape && (best === undefined || lift > best.lift)) best = { label, score, lift }
  }
  if (best !== undefined) return { label: best.label, score: best.score }
  if (scores.broad !== null && scores.broad >= thresholds.broad) return { label: "broad", score: scores.broad }
  return { label: "unclassified", score: bestScore }
}

/** The attention patterns of every layer for one prompt (ids already validated), with every head scored. */
export const attentionPatterns = (
  model: GPT,
  ids: ReadonlyArray<number>,
  thresholds: LabelThresholds = defaultThresholds
): AttentionAnalysis => {
  const { layers, heads } = model.config
  const T = ids.length
  const names = Array.from({ length: layers }, (_, l) => blockHookNames(l).pattern)
  const input = idsTensor([ids])
  const cache = cacheActivations(model, input, names)
  input.dispose()
  const patterns = names.map((n) => cache.get(n).dataSync() as Float32Array) // [1, H, T, T] each
  cache.dispose()
  const chance = uniformScores(ids)
  const reports: HeadReport[] = []
  for (let layer = 0; layer < layers; layer++) {
    for (let head = 0; head < heads; head++) {
      const scores = scoreHead(patterns[layer], head * T * T, ids)
      reports.push({ layer, head, ...labelHead(scores, thresholds, chance), scores })
    }
  }
  return { tokens: [...ids], layers, heads, patterns, reports }
}

/** One head's [T, T] pattern out of an analysis. */
export const headPattern = (analysis: AttentionAnalysis, layer: number, head: number): Float32Array => {
  const T = analysis.tokens.length
  return analysis.patterns[layer].subarray(head * T * T, (head + 1) * T * T)
}
