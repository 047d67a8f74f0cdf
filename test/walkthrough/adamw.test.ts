// AdamW by hand: numbers worked out on paper for a two-parameter model, the decay rules, and
// the walkthrough's own step (update of every parameter, then a lower loss).
import { describe, expect, it } from "vitest"
import { adamwStep, defaultAdamW } from "../../src/walkthrough/adamw.ts"
import type { Params } from "../../src/walkthrough/model.ts"
import { run } from "./helpers.ts"

const params: Params = {
  "h.0.attn.c_proj.weight": { shape: [1, 2], data: Float64Array.from([0.5, -0.3]) },
  "h.0.attn.c_proj.bias": { shape: [2], data: Float64Array.from([0.1, 0]) },
  "wte.weight": { shape: [1, 1], data: Float64Array.from([0.2]) }
}
const grads: Params = {
  "h.0.attn.c_proj.weight": { shape: [1, 2], data: Float64Array.from([0.2, -0.001]) },
  "h.0.attn.c_proj.bias": { shape: [2], data: Float64Array.from([-0.05, 0]) },
  "wte.weight": { shape: [1, 1], data: Float64Array.from([0.4]) }
}

describe("AdamW, by hand", () => {
  it("step 1 with the defaults (lr 1e-2, β₁ 0.9, β₂ 0.999, ε 1e-8, λ 0.1)", () => {
    expect(defaultAdamW).toEqual({ lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, decayEmbeddings: true })
    const r = adamwStep(params, grads)
    expect(r.step).toBe(1)
    expect(r.biasCorrection1).toBeCloseTo(0.1, 15)
    expect(r.biasCorrection2).toBeCloseTo(0.001, 15)
    const w = "h.0.attn.c_proj.weight"
    // θ = 0.5, g = 0.2: m = 0.1·0.2 = 0.02, v = 0.001·0.04 = 4e-5, m̂ = 0.2, v̂ = 0.04, √v̂ = 0.2
    expect(r.m[w].data[0]).toBeCloseTo(0.02, 15)
    expect(r.v[w].data[0]).toBeCloseTo(4e-5, 18)
    expect(r.mHat[w].data[0]).toBeCloseTo(0.2, 14)
    expect(r.vHat[w].data[0]).toBeCloseTo(0.04, 14)
    // θ′ = 0.5·(1 − 0.01·0.1) − 0.01·0.2/(0.2 + 1e-8) = 0.4995 − 0.0099999995 = 0.4895000005
    expect(r.params[w].data[0]).toBeCloseTo(0.4895000005, 13)
    // θ = −0.3, g = −0.001: the step is still ≈ lr, against the sign: −0.3·0.999 + 0.01·0.001/(0.001 + 1e-8)
    expect(r.params[w].data[1]).toBeCloseTo(-0.2997 + 0.01 / 1.00001, 13)
    // a bias is not decayed: θ′ = 0.1 + 0.01·0.05/(0.05 + 1e-8)
    expect(r.decay["h.0.attn.c_proj.bias"]).toBe(0)
    expect(r.params["h.0.attn.c_proj.bias"].data[0]).toBeCloseTo(0.1 + 0.01 / 1.0000002, 13)
    // zero gradient and no decay: it does not move at all
    expect(r.params["h.0.attn.c_proj.bias"].data[1]).toBe(0)
    // embeddings are decayed by default: 0.2·0.999 − 0.01·0.4/(0.4 + 1e-8)
    expect(r.params["wte.weight"].data[0]).toBeCloseTo(0.1998 - 0.01 / 1.000000025, 13)
    expect(r.delta[w].data[0]).toBeCloseTo(0.4895000005 - 0.5, 13)
  })

  it("step 2 carries the moments; with a constant gradient m̂ = g and v̂ = g² again", () => {
    const first = adamwStep(params, grads)
    const second = adamwStep(first.params, grads, defaultAdamW, { step: first.step, m: first.m, v: first.v })
    const w = "h.0.attn.c_proj.weight"
    // m = 0.9·0.02 + 0.1·0.2 = 0.038, v = 0.999·4e-5 + 0.001·0.04 = 7.996e-5
    expect(second.m[w].data[0]).toBeCloseTo(0.038, 15)
    expect(second.v[w].data[0]).toBeCloseTo(7.996e-5, 18)
    expect(second.biasCorrection1).toBeCloseTo(0.19, 15)
    expect(second.biasCorrection2).toBeCloseTo(0.001999, 15)
    expect(second.mHat[w].data[0]).toBeCloseTo(0.2, 13)
    expect(second.vHat[w].data[0]).toBeCloseTo(0.04, 13)
  })

  it("decayEmbeddings: false leaves wte/wpe undecayed, other matrices still decay", () => {
    const r = adamwStep(params, grads, { ...defaultAdamW, decayEmbeddings: false })
    expect(r.decay["wte.weight"]).toBe(0)
    expect(r.decay["h.0.attn.c_proj.weight"]).toBe(0.1)
    expect(r.params["wte.weight"].data[0]).toBeCloseTo(0.2 - 0.01 / 1.000000025, 13)
  })
})

describe("the walkthrough's step", () => {
  it("updates every parameter by the formula and lowers the loss", () => {
    const r = run()
    const o = r.options.adamw
    for (const [name, t] of Object.entries(r.params)) {
      const lambda = t.shape.length === 2 ? o.weightDecay : 0
      expect(r.adamw.decay[name]).toBe(lambda)
      for (let i = 0; i < t.data.length; i += 7) {
        const g = r.grads[name].data[i]
        // at t = 1: m̂ = g and v̂ = g², so θ′ = θ(1 − lr·λ) − lr·g/(|g| + ε)
        const expected = t.data[i] * (1 - o.lr * lambda) - (o.lr * g) / (Math.abs(g) + o.eps)
        expect(r.adamw.params[name].data[i]).toBeCloseTo(expected, 14)
      }
    }
    expect(r.lossAfter).toBeLessThan(r.loss)
    expect(r.stages.find((s) => s.name === "second-forward")?.ok).toBe(true)
  })

  it("the loss goes down for other texts, seeds, heads and GELUs", () => {
    const cases = [
      { text: "the cat saw the dog", seed: 1 },
      { text: "a", seed: 2, tied: false },
      { text: "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen", seed: 3, gelu: "erf" as const },
      { init: "gpt2" as const, decayEmbeddings: false, lr: 1e-3 }
    ]
    for (const options of cases) {
      const r = run(options)
      expect(r.lossAfter, JSON.stringify(options)).toBeLessThan(r.loss)
    }
  })
})
