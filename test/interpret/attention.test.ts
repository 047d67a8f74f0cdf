// Attention analysis against answers known in advance: the scoring formulas on hand-written
// patterns, then the hand-built circuit model (test/interpret/circuits.ts), whose six heads each
// have one job. The probe must name every head correctly, with the scores the construction gives:
// ≈ 1 for the built-in shape, and the exact uniform-attention values for the all-zero head.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { Effect, Exit } from "effect"
import { attentionPatterns, headPattern, labelHead, scoreHead, uniformScores } from "../../src/interpret/attention.ts"
import { makeProbes, validateHead } from "../../src/interpret/probes.ts"
import { useBackend } from "../helpers.ts"
import { circuitModel, repeatedText } from "./circuits.ts"

/** A [T, T] causal pattern with all weight on src = f(dest) (clamped to the visible past). */
const oneHot = (T: number, f: (d: number) => number) => {
  const a = new Float32Array(T * T)
  for (let d = 0; d < T; d++) a[d * T + Math.max(0, Math.min(d, f(d)))] = 1
  return a
}
const uniform = (T: number) => {
  const a = new Float32Array(T * T)
  for (let d = 0; d < T; d++) for (let s = 0; s <= d; s++) a[d * T + s] = 1 / (d + 1)
  return a
}
const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe("head scores on hand-written patterns", () => {
  const tokens = [9, 1, 2, 3, 1, 2, 3] // BOS, then "1 2 3" twice
  const T = tokens.length

  it("a previous-token pattern scores 1 as previous-token and 0 as self", () => {
    const s = scoreHead(oneHot(T, (d) => d - 1), 0, tokens)
    expect(s.previousToken).toBe(1)
    expect(s.self).toBe(0)
    expect(labelHead(s)).toEqual({ label: "previous-token", score: 1 })
  })

  it("induction: attending to the token after the earlier copy", () => {
    // d = 4,5,6 hold tokens 1,2,3 whose earlier copies sit at 1,2,3; their successors at 2,3,4.
    const s = scoreHead(oneHot(T, (d) => (d >= 4 ? d - 2 : 0)), 0, tokens)
    expect(s.induction).toBe(1)
    expect(s.duplicateToken).toBe(0)
    expect(labelHead(s).label).toBe("induction")
  })

  it("duplicate-token: attending to the earlier copy itself", () => {
    const s = scoreHead(oneHot(T, (d) => (d >= 4 ? d - 3 : 0)), 0, tokens)
    expect(s.duplicateToken).toBe(1)
    expect(s.induction).toBe(0)
    expect(labelHead(s).label).toBe("duplicate-token")
  })

  it("uniform attention is broad, with scores 1/(d+1) averaged", () => {
    const s = scoreHead(uniform(T), 0, tokens)
    expect(s.broad).toBeCloseTo(1, 6)
    expect(s.previousToken).toBeCloseTo(meanOf(range(2, T - 1).map((d) => 1 / (d + 1))), 6)
    expect(s.self).toBeCloseTo(meanOf(range(1, T - 1).map((d) => 1 / (d + 1))), 6)
    expect(labelHead(s).label).toBe("broad")
  })

  it("a uniform head on a 2- or 3-token prompt is broad, not self; a real self head still is self", () => {
    // Uniform rows give self = mean of 1/(d+1): 0.5 at T = 2 and 0.42 at T = 3, both above the
    // 0.4 threshold, but no better than chance.
    for (const T of [2, 3]) {
      const tokens = Array.from({ length: T }, (_, i) => 5 + i)
      const chance = uniformScores(tokens)
      const s = scoreHead(uniform(T), 0, tokens)
      expect(s.self!).toBeGreaterThanOrEqual(0.4)
      expect(labelHead(s, undefined, chance).label).toBe("broad")
      expect(labelHead(scoreHead(oneHot(T, (d) => d), 0, tokens), undefined, chance)).toEqual({ label: "self", score: 1 })
    }
  })

  it("scores with no eligible position are null (no repeated token, no induction score)", () => {
    const s = scoreHead(uniform(4), 0, [5, 6, 7, 8])
    expect(s.duplicateToken).toBeNull()
    expect(s.induction).toBeNull()
  })
})

describe("attention analysis of the hand-built circuit", () => {
  beforeAll(() => useBackend("wasm"))

  it("names every head and scores it as constructed", () => {
    const model = circuitModel()
    const before = tf.memory().numTensors
    const text = repeatedText(8) // T = 17
    const T = text.length
    const analysis = attentionPatterns(model, text)
    expect(tf.memory().numTensors).toBe(before)
    expect(analysis.patterns.map((p) => p.length)).toEqual([3 * T * T, 3 * T * T])
    const byHead = Object.fromEntries(analysis.reports.map((r) => [`L${r.layer}H${r.head}`, r]))
    expect(Object.fromEntries(Object.entries(byHead).map(([k, r]) => [k, r.label]))).toEqual({
      L0H0: "previous-token",
      L0H1: "first-token",
      L0H2: "broad",
      L1H0: "induction",
      L1H1: "self",
      L1H2: "duplicate-token"
    })
    for (const k of ["L0H0", "L0H1", "L1H0", "L1H1", "L1H2"]) expect(byHead[k].score).toBeCloseTo(1, 6)
    // The all-zero head attends uniformly: its scores are exact averages of 1/(d+1).
    const zero = byHead.L0H2.scores
    expect(zero.broad).toBeCloseTo(1, 5)
    expect(zero.previousToken).toBeCloseTo(meanOf(range(2, T - 1).map((d) => 1 / (d + 1))), 5)
    expect(zero.induction).toBeCloseTo(meanOf(range(9, 16).map((d) => 1 / (d + 1))), 5)
    // Shapes a head was not built for score ≈ 0 where its pattern is one-hot.
    expect(byHead.L0H0.scores.self).toBeLessThan(1e-6)
    expect(byHead.L1H0.scores.duplicateToken).toBeLessThan(1e-6)
    expect(byHead.L1H2.scores.induction).toBeLessThan(1e-6)
    // The previous-token head's pattern is the sub-diagonal, read straight from the hook.
    const p = headPattern(analysis, 0, 0)
    for (let d = 1; d < T; d++) expect(p[d * T + d - 1]).toBeCloseTo(1, 6)
    model.dispose()
  })

  it("on 2- and 3-token prompts the uniform head is broad and the self head is self", () => {
    const model = circuitModel()
    for (const text of [[11, 1], [11, 1, 2]]) {
      const byHead = Object.fromEntries(attentionPatterns(model, text).reports.map((r) => [`L${r.layer}H${r.head}`, r.label]))
      expect(byHead.L0H2, `T = ${text.length}`).toBe("broad")
      expect(byHead.L1H1, `T = ${text.length}`).toBe("self")
    }
    model.dispose()
  })

  it.effect("the service rejects bad prompts and bad layer/head numbers with one-line reasons", () =>
    Effect.gen(function* () {
      const model = circuitModel()
      const probes = makeProbes(model)
      const long = yield* Effect.exit(probes.attentionPatterns(Array.from({ length: 25 }, () => 1)))
      expect(String(Exit.isFailure(long) && long.cause)).toContain("the prompt is 25 tokens but the model's context is 24")
      const unknownId = yield* Effect.exit(probes.attentionPatterns([1, 99]))
      expect(String(Exit.isFailure(unknownId) && unknownId.cause)).toContain("token id 99 in the prompt is outside the vocabulary [0, 12)")
      const badLayer = yield* Effect.exit(validateHead(model, 2, 0))
      expect(String(Exit.isFailure(badLayer) && badLayer.cause)).toContain("layer 2 does not exist; the model has layers 0..1")
      const badHead = yield* Effect.exit(validateHead(model, 0, 3))
      expect(String(Exit.isFailure(badHead) && badHead.cause)).toContain("head 3 does not exist")
      model.dispose()
    })
  )
})
