// Turning logits into the next token. Each strategy reshapes the distribution, in this order:
// repetition penalty → temperature → top-k → top-p (nucleus) → min-p → sample. Temperature T
// divides logits (T < 1 sharpens, T > 1 flattens); top-k keeps the k most likely tokens; top-p
// keeps the smallest head of the sorted distribution whose mass reaches p; min-p keeps tokens at
// least min_p times as likely as the best one. Survivors are renormalised before sampling.
import { Data } from "effect"
import type { Rng } from "../train/rng.ts"

export interface SamplingOptions {
  /** 0 means greedy (argmax). */
  readonly temperature: number
  /** 0 disables. */
  readonly topK: number
  /** 1 disables. */
  readonly topP: number
  /** 0 disables. */
  readonly minP: number
  /** 1 disables; > 1 discourages tokens already present. */
  readonly repetitionPenalty: number
}

export const presetNames = ["greedy", "precise", "balanced", "creative", "very-creative"] as const
export type PresetName = (typeof presetNames)[number]

/** The one source of truth for presets (the CLI and docs print this table). */
export const presets: Record<PresetName, SamplingOptions> = {
  greedy: { temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 },
  precise: { temperature: 0.7, topK: 40, topP: 0.85, minP: 0, repetitionPenalty: 1 },
  balanced: { temperature: 1.0, topK: 50, topP: 0.9, minP: 0, repetitionPenalty: 1 },
  creative: { temperature: 1.2, topK: 100, topP: 0.95, minP: 0, repetitionPenalty: 1 },
  "very-creative": { temperature: 1.5, topK: 200, topP: 0.98, minP: 0, repetitionPenalty: 1 }
}

export class InvalidSampling extends Data.TaggedError("InvalidSampling")<{ readonly field: string; readonly value: number; readonly expected: string }> {
  override get message() {
    return `${this.field} = ${this.value} is invalid: expected ${this.expected}`
  }
}

export const validateSampling = (s: SamplingOptions): InvalidSampling | undefined => {
  if (!(s.temperature >= 0) || !Number.isFinite(s.temperature)) return new InvalidSampling({ field: "temperature", value: s.temperature, expected: "a number > 0 (or 0 for greedy)" })
  if (!Number.isInteger(s.topK) || s.topK < 0) return new InvalidSampling({ field: "top_k", value: s.topK, expected: "an integer ≥ 1 (0 disables)" })
  if (!(s.topP > 0 && s.topP <= 1)) return new InvalidSampling({ field: "top_p", value: s.topP, expected: "a number in (0, 1]" })
  if (!(s.minP >= 0 && s.minP < 1)) return new InvalidSampling({ field: "min_p", value: s.minP, expected: "a number in [0, 1)" })
  if (!(s.repetitionPenalty > 0) || !Number.isFinite(s.repetitionPenalty)) return new InvalidSampling({ field: "repetition_penalty", value: s.repetitionPenalty, expected: "a number > 0" })
  return undefined
}

/** Index of the largest value; ties go to the lowest index. */
export const argmax = (xs: ArrayLike<number>): number => {
  let best = 0
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i
  return best
}

/**
 * The final distribution the sampler draws from (zeros for removed tokens). Exposed so tests
 * can check each strategy's exact probabilities.
 */
export const samplingDistribution = (logits: ArrayLike<number>, s: SamplingOptions, previous: ArrayLike<number> = []): Float64Array => {
  const V = logits.length
  const z = Float64Array.from(logits as ArrayLike<number>)
  if (s.repetitionPenalty !== 1) {
    // CTRL-style: a seen token's logit is divided by the penalty if positive, multiplied if negative.
    const seen = new Set(Array.from(previous))
    for (const id of seen) if (id >= 0 && id < V) z[id] = z[id] > 0 ? z[id] / s.repetitionPenalty : z[id] * s.repetitionPenalty
  }
  const probs = new Float64Array(V)
  if (s.temperature === 0) {
    probs[argmax(z)] = 1
    return probs
  }
  let max = -Infinity
  for (let i = 0; i < V; i++) max = Math.max(max, z[i] / s.temperature)
  let total = 0
  for (let i = 0; i < V; i++) total += probs[i] = Math.exp(z[i] / s.temperature - max)
  for (let i = 0; i < V; i++) probs[i] /= total
  // Sorted by probability, ties by token id, so "the k best" is well defined.
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b)
  const keep = new Uint8Array(V)
  let kept = s.topK > 0 ? Math.min(s.topK, V) : V
  if (s.topP < 1) {
    // Keep a token while the mass before it (renormalised over the top-k survivors) is below p.
    let headMass = 0
    for (let r = 0; r < kept; r++) headMass += probs[order[r]]
    let before = 0
    let n = 0
    while (n < kept && before < s.topP * headMass) before += probs[order[n++]]
    kept = n
  }
  const floor = s.minP * probs[order[0]]
  for (let r = 0; r < kept; r++) if (probs[order[r]] >= floor) keep[order[r]] = 1
  let mass = 0
  for (let i = 0; i < V; i++) if (keep[i]) mass += probs[i]
  for (let i = 0; i < V; i++) probs[i] = keep[i] ? probs[i] / mass : 0
  return probs
}

/** Draws a token id from logits under the given options. */
export const sampleToken = (logits: ArrayLike<number>, s: SamplingOptions, rng: Rng, previous: ArrayLike<number> = []): number => {
  const probs = samplingDistribution(logits, s, previous)
  if (s.temperature === 0) return argmax(probs)
  let u = rng.uniform()
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i]
    if (u < 0) return i
  }
  return argmax(probs) // rounding left u ≥ 0: take the likeliest survivor
}
