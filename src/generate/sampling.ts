// Turning logits into the next token. Each strategy reshapes the distribution, in this order:
// repetition penalty → temperature → top-k → top-p (nucleus) → min-p → sample.
//  - Temperature T divides the logits: T < 1 sharpens the distribution, T > 1 flattens it.
//  - Top-k keeps the k most likely tokens (ties broken by the lower token id).
//  - Top-p keeps a token while the probability mass ranked before it, renormalised over the
//    top-k survivors, is below p: the smallest head of the distribution that reaches p.
//  - Min-p keeps tokens at least min_p times as likely as the most likely one.
// Survivors are renormalised and one is drawn with the seeded RNG. Greedy is the argmax.
import { Data } from "effect"
import type { Rng } from "../rng/rng.ts"

export interface SamplingOptions {
  /** Always take the most likely token (the other fields are then ignored). */
  readonly greedy: boolean
  /** > 0. */
  readonly temperature: number
  /** Keep the k most likely tokens; undefined keeps all. */
  readonly topK: number | undefined
  /** In (0, 1]; 1 keeps all. */
  readonly topP: number
  /** In [0, 1); 0 keeps all. */
  readonly minP: number
  /** ≥ 1 discourages tokens already in the text (1: off); CTRL-style, applied to the logits. */
  readonly repetitionPenalty: number
}

export const presetNames = ["greedy", "precise", "balanced", "creative", "very-creative"] as const
export type PresetName = (typeof presetNames)[number]

const preset = (temperature: number, topK: number, topP: number): SamplingOptions => ({ greedy: false, temperature, topK, topP, minP: 0, repetitionPenalty: 1 })

/** The one source of truth for presets: the CLI prints this table and a test checks the docs against it. */
export const presets: Record<PresetName, SamplingOptions> = {
  greedy: { greedy: true, temperature: 1, topK: undefined, topP: 1, minP: 0, repetitionPenalty: 1 },
  precise: preset(0.7, 40, 0.85),
  balanced: preset(1.0, 50, 0.9),
  creative: preset(1.2, 100, 0.95),
  "very-creative": preset(1.5, 200, 0.98)
}

/** One line per preset, e.g. "precise        T 0.7  top-k 40   top-p 0.85". */
export const presetTable = (): string =>
  presetNames
    .map((name) => {
      const p = presets[name]
      return p.greedy ? `${name.padEnd(14)} argmax` : `${name.padEnd(14)} T ${String(p.temperature).padEnd(4)} top-k ${String(p.topK ?? "all").padEnd(4)} top-p ${p.topP}`
    })
    .join("\n")

export class InvalidSampling extends Data.TaggedError("InvalidSampling")<{ readonly field: string; readonly value: number; readonly expected: string }> {
  override get message() {
    return `${this.field} = ${this.value} is invalid: expected ${this.expected}`
  }
}

export const validateSampling = (s: SamplingOptions): InvalidSampling | undefined => {
  if (!(s.temperature > 0) || !Number.isFinite(s.temperature)) return new InvalidSampling({ field: "temperature", value: s.temperature, expected: "a number > 0 (use the greedy preset for argmax)" })
  if (s.topK !== undefined && !(Number.isInteger(s.topK) && s.topK >= 1)) return new InvalidSampling({ field: "top_k", value: s.topK, expected: "an integer ≥ 1" })
  if (!(s.topP > 0 && s.topP <= 1)) return new InvalidSampling({ field: "top_p", value: s.topP, expected: "a number in (0, 1]" })
  if (!(s.minP >= 0 && s.minP < 1)) return new InvalidSampling({ field: "min_p", value: s.minP, expected: "a number in [0, 1)" })
  if (!(s.repetitionPenalty >= 1) || !Number.isFinite(s.repetitionPenalty)) return new InvalidSampling({ field: "repetition_penalty", value: s.repetitionPenalty, expected: "a number ≥ 1 (1: off)" })
  return undefined
}

/** Index of the largest value; ties go to the lowest index. */
export const argmax = (xs: ArrayLike<number>): number => {
  let best = 0
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i
  return best
}

/** Higher score first, then lower id: the order "the k best" refers to. */
const before = (scores: ArrayLike<number>, a: number, b: number) => scores[a] > scores[b] || (scores[a] === scores[b] && a < b)

/**
 * The ids of the m best scores, best first, without sorting the whole vocabulary: one pass keeps
 * a small sorted buffer (m ≪ V for top-k), so a 50k-token step costs O(V + m log m)-ish.
 */
export const topIndices = (scores: ArrayLike<number>, m: number): number[] => {
  const n = scores.length
  if (m >= n) return Array.from({ length: n }, (_, i) => i).sort((a, b) => (before(scores, a, b) ? -1 : before(scores, b, a) ? 1 : 0))
  const best: number[] = []
  for (let i = 0; i < n; i++) {
    if (best.length === m && !before(scores, i, best[m - 1])) continue
    let lo = 0
    let hi = best.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (before(scores, best[mid], i)) lo = mid + 1
      else hi = mid
    }
    best.splice(lo, 0, i)
    if (best.length > m) best.pop()
  }
  return best
}

/** Logits after the repetition penalty: a seen token's logit is divided by it if positive, multiplied if negative. */
const penalised = (logits: ArrayLike<number>, penalty: number, previous: ArrayLike<number>): Float64Array => {
  const z = Float64Array.from(logits as ArrayLike<number>)
  if (penalty === 1) return z
  for (const id of new Set(Array.from(previous))) if (id >= 0 && id < z.length) z[id] = z[id] > 0 ? z[id] / penalty : z[id] * penalty
  return z
}

export interface Candidates {
  /** Surviving token ids, most likely first. */
  readonly ids: number[]
  /** Their renormalised probabilities (sum 1). */
  readonly probs: number[]
}

/**
 * The survivors and their probabilities: what the sampler draws from. Pure, so tests can check
 * each strategy's exact distribution.
 */
export const candidates = (logits: ArrayLike<number>, s: SamplingOptions, previous: ArrayLike<number> = []): Candidates => {
  const z = penalised(logits, s.repetitionPenalty, previous)
  const V = z.length
  if (s.greedy) return { ids: [argmax(z)], probs: [1] }
  // Softmax of z/T over the whole vocabulary (the normaliser needs every token).
  let max = -Infinity
  for (let i = 0; i < V; i++) max = Math.max(max, z[i] / s.temperature)
  const p = new Float64Array(V)
  let total = 0
  for (let i = 0; i < V; i++) total += p[i] = Math.exp(z[i] / s.temperature - max)
  for (let i = 0; i < V; i++) p[i] /= total
  // Ranked head: top-k directly; without k, grow the head until it holds the nucleus.
  const k = s.topK === undefined ? V : Math.min(s.topK, V)
  let ranked: number[]
  if (s.topK !== undefined || s.topP >= 1) ranked = topIndices(p, k)
  else {
    let m = 64
    for (;;) {
      ranked = topIndices(p, Math.min(m, V))
      let mass = 0
      for (const id of ranked) mass += p[id]
      if (mass >= s.topP || ranked.length === V) break
      m *= 4
    }
  }
  let kept = ranked.length
  if (s.topP < 1) {
    // The mass top-p is measured against: all of it without top-k, the top-k survivors' with it.
    let headMass = 1
    if (s.topK !== undefined) {
      headMass = 0
      for (let r = 0; r < ranked.length; r++) headMass += p[ranked[r]]
    }
    let massBefore = 0
    let n = 0
    while (n < ranked.length && massBefore < s.topP * headMass) massBefore += p[ranked[n++]]
    kept = n
  }
  const floor = s.minP * p[ranked[0]]
  const ids = ranked.slice(0, kept).filter((id) => p[id] >= floor)
  const mass = ids.reduce((a, id) => a + p[id], 0)
  return { ids, probs: ids.map((id) => p[id] / mass) }
}

/** The full distribution the sampler draws from, as a dense array (zeros for removed tokens). */
export const samplingDistribution = (logits: ArrayLike<number>, s: SamplingOptions, previous: ArrayLike<number> = []): Float64Array => {
  const { ids, probs } = candidates(logits, s, previous)
  const out = new Float64Array(logits.length)
  ids.forEach((id, i) => (out[id] = probs[i]))
  return out
}

/** Draws a token id from logits under the given options. */
export const sampleToken = (logits: ArrayLike<number>, s: SamplingOptions, rng: Rng, previous: ArrayLike<number> = []): number => {
  const { ids, probs } = candidates(logits, s, previous)
  if (ids.length === 1) return ids[0]
  let u = rng.uniform()
  for (let i = 0; i < ids.length; i++) {
    u -= probs[i]
    if (u < 0) return ids[i]
  }
  return ids[0] // rounding left u ≥ 0: take the likeliest survivor
}
