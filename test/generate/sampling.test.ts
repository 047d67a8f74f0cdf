// Each sampling strategy's exact distribution on hand-made logits, the order they combine in,
// and the validation of their parameters.
import { describe, expect, it } from "@effect/vitest"
import { candidates, presets, presetTable, sampleToken, samplingDistribution, topIndices, validateSampling, type SamplingOptions } from "../../src/generate/sampling.ts"
import { Rng } from "../../src/rng/rng.ts"

const base: SamplingOptions = { greedy: false, temperature: 1, topK: undefined, topP: 1, minP: 0, repetitionPenalty: 1 }
/** Logits whose softmax is exactly `probs`. */
const logitsOf = (probs: number[]) => probs.map(Math.log)
const close = (actual: ArrayLike<number>, expected: number[]) => expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, 10))

describe("sampling distributions", () => {
  const p = [0.1, 0.4, 0.2, 0.3]
  const z = logitsOf(p)

  it("plain sampling is the softmax", () => close(samplingDistribution(z, base), p))

  it("temperature divides the logits", () => {
    const T = 0.5
    const raw = p.map((x) => Math.pow(x, 1 / T))
    const total = raw.reduce((a, b) => a + b)
    close(samplingDistribution(z, { ...base, temperature: T }), raw.map((x) => x / total))
  })

  it("greedy takes the argmax, ties to the lower id", () => {
    close(samplingDistribution(z, presets.greedy), [0, 1, 0, 0])
    close(samplingDistribution([1, 3, 3, 0], presets.greedy), [0, 1, 0, 0])
  })

  it("top-k keeps the k best and renormalises", () => close(samplingDistribution(z, { ...base, topK: 2 }), [0, 0.4 / 0.7, 0, 0.3 / 0.7]))

  it("top-k ties are broken by the lower token id", () => {
    const tie = logitsOf([0.3, 0.2, 0.3, 0.2])
    close(samplingDistribution(tie, { ...base, topK: 3 }), [0.3 / 0.8, 0.2 / 0.8, 0.3 / 0.8, 0])
  })

  it("top-p keeps a token while the mass before it is below p (the nucleus boundary)", () => {
    // Sorted: 0.4, 0.3, 0.2, 0.1. Mass before: 0, 0.4, 0.7, 0.9.
    close(samplingDistribution(z, { ...base, topP: 0.4 }), [0, 1, 0, 0]) // 0.4 reaches p: stop
    close(samplingDistribution(z, { ...base, topP: 0.41 }), [0, 0.4 / 0.7, 0, 0.3 / 0.7])
    close(samplingDistribution(z, { ...base, topP: 0.7 }), [0, 0.4 / 0.7, 0, 0.3 / 0.7])
    close(samplingDistribution(z, { ...base, topP: 0.7000001 }), [0, 0.4 / 0.9, 0.2 / 0.9, 0.3 / 0.9])
    close(samplingDistribution(z, { ...base, topP: 1 }), p)
  })

  it("top-p applies to the renormalised top-k survivors", () => {
    // top-k 3 leaves 0.4, 0.3, 0.2 (mass 0.9); renormalised 4/9, 3/9, 2/9; p = 0.5 keeps two.
    close(samplingDistribution(z, { ...base, topK: 3, topP: 0.5 }), [0, 0.4 / 0.7, 0, 0.3 / 0.7])
    // p = 0.42: the best survivor alone holds 4/9 ≥ 0.42, so it is kept alone; measured against
    // the raw masses (0.4 < 0.42) a second token would have been let in.
    close(samplingDistribution(z, { ...base, topK: 3, topP: 0.42 }), [0, 1, 0, 0])
  })

  it("min-p keeps tokens at least min_p times as likely as the best", () => {
    close(samplingDistribution(z, { ...base, minP: 0.5 }), [0, 0.4 / 0.9, 0.2 / 0.9, 0.3 / 0.9])
    close(samplingDistribution(z, { ...base, minP: 0.51 }), [0, 0.4 / 0.7, 0, 0.3 / 0.7])
  })

  it("the repetition penalty divides positive and multiplies negative logits of seen tokens", () => {
    const logits = [2, -1, 1, 0.5]
    const expected = [2 / 2, -1 * 2, 1, 0.5]
    const e = expected.map(Math.exp)
    const total = e.reduce((a, b) => a + b)
    close(samplingDistribution(logits, { ...base, repetitionPenalty: 2 }, [0, 1, 1]), e.map((x) => x / total))
  })

  it("nucleus without top-k over a large vocabulary finds the same head as a full sort", () => {
    const rng = Rng.seeded(5)
    const big = Array.from({ length: 5000 }, () => rng.normal() * 3)
    const got = candidates(big, { ...base, topP: 0.9 })
    const order = big.map((_, i) => i).sort((a, b) => big[b] - big[a])
    // The true nucleus: softmax over everything, keep while the mass before is below 0.9.
    const m = Math.max(...big)
    const e = big.map((x) => Math.exp(x - m))
    const total = e.reduce((a, b) => a + b)
    let before = 0
    let n = 0
    while (before < 0.9) before += e[order[n++]] / total
    expect(got.ids).toEqual(order.slice(0, n))
    expect(candidates(big, { ...base, topP: 0.9, topK: 5000 }).ids).toEqual(got.ids)
    expect(topIndices(big, 50)).toEqual(order.slice(0, 50))
  })

  it("draws follow the distribution (seeded)", () => {
    const rng = Rng.seeded(9)
    const counts = [0, 0, 0, 0]
    for (let i = 0; i < 20000; i++) counts[sampleToken(z, base, rng)]++
    counts.forEach((c, i) => expect(c / 20000).toBeCloseTo(p[i], 1))
  })
})

describe("sampling parameters", () => {
  it("invalid values are clear errors", () => {
    expect(validateSampling({ ...base, temperature: 0 })?.message).toBe("temperature = 0 is invalid: expected a number > 0 (use the greedy preset for argmax)")
    expect(validateSampling({ ...base, temperature: -1 })?.message).toContain("temperature = -1")
    expect(validateSampling({ ...base, topK: 0 })?.message).toBe("top_k = 0 is invalid: expected an integer ≥ 1")
    expect(validateSampling({ ...base, topK: 2.5 })?.message).toContain("top_k = 2.5")
    expect(validateSampling({ ...base, topP: 0 })?.message).toBe("top_p = 0 is invalid: expected a number in (0, 1]")
    expect(validateSampling({ ...base, topP: 1.01 })?.message).toContain("top_p = 1.01")
    expect(validateSampling({ ...base, minP: 1 })?.message).toContain("min_p = 1")
    expect(validateSampling({ ...base, repetitionPenalty: 0.5 })?.message).toContain("repetition_penalty = 0.5")
    for (const preset of Object.values(presets)) expect(validateSampling(preset)).toBeUndefined()
  })

  it("presets are the documented values", () => {
    expect(presets.precise).toMatchObject({ temperature: 0.7, topK: 40, topP: 0.85 })
    expect(presets.balanced).toMatchObject({ temperature: 1.0, topK: 50, topP: 0.9 })
    expect(presets.creative).toMatchObject({ temperature: 1.2, topK: 100, topP: 0.95 })
    expect(presets["very-creative"]).toMatchObject({ temperature: 1.5, topK: 200, topP: 0.98 })
    expect(presetTable()).toContain("precise        T 0.7  top-k 40   top-p 0.85")
  })
})
