// Every gradient of the hand-written backward pass against finite differences of the float64
// loss, for each head and GELU variant, both initialisations, a repeated token and two layers;
// and proof that the same checker rejects a backward pass with one planted mistake.
import { describe, expect, it } from "vitest"
import {
  type LinearSite,
  backward,
  layerNormBackwardCompact,
  layerNormBackwardFull,
  linearBackward,
  softmaxBackward,
  softmaxJacobian
} from "../../src/walkthrough/backward.ts"
import { checkGradients } from "../../src/walkthrough/check.ts"
import { forward, layerNorm } from "../../src/walkthrough/forward.ts"
import { type Mat, mat, matmul, maxAbsDiff, row } from "../../src/walkthrough/math.ts"
import { initParams, paramNames, tinyConfig } from "../../src/walkthrough/model.ts"
import { normalStream } from "../../src/walkthrough/random.ts"
import { run } from "./helpers.ts"

const expectAllAgree = (report: ReturnType<typeof checkGradients>) => {
  const failing = report.tensors.filter((t) => !t.ok).map((t) => `${t.name}: ${t.failures} entries, worst ${JSON.stringify(t.worst)}`)
  expect(failing).toEqual([])
  expect(report.maxRelError).toBeLessThan(1e-7)
}

describe("gradients vs central finite differences (every parameter, ~1e-7 relative)", () => {
  for (const tied of [true, false]) {
    for (const gelu of ["tanh", "erf"] as const) {
      it(`${tied ? "tied" : "untied"} head, GELU ${gelu}`, () => {
        const r = run({ tied, gelu })
        const report = checkGradients(r.config, r.params, r.tokens.inputs, r.tokens.targets, r.grads)
        expect(report.entries).toBe(Object.values(r.params).reduce((n, t) => n + t.data.length, 0))
        expect(report.tensors.map((t) => t.name)).toEqual(paramNames(r.config))
        expectAllAgree(report)
      })
    }
  }

  it("GPT-2 init (zero biases, unit LayerNorm) and a repeated token", () => {
    const r = run({ init: "gpt2", text: "the cat saw the dog", seed: 7 })
    expect(r.tokens.inputs.filter((id) => id === r.tokens.vocab.indexOf("the"))).toHaveLength(2)
    expectAllAgree(checkGradients(r.config, r.params, r.tokens.inputs, r.tokens.targets, r.grads))
  })

  it("two (narrower) layers and a longer context than the text", () => {
    const c = tinyConfig(6, 7, { layers: 2, dModel: 8, heads: 2, dFF: 32, tied: false, gelu: "erf" })
    const p = initParams(c, 11)
    const inputs = [0, 2, 3, 2, 4]
    const targets = [2, 3, 2, 4, 1]
    const f = forward(c, p, inputs, targets)
    const g = backward(c, p, f).grads
    // positions 5 and 6 of wpe are never read: their gradient is exactly zero
    expect(Array.from(g["wpe.weight"].data.subarray(5 * 8))).toEqual(new Array(2 * 8).fill(0))
    expectAllAgree(checkGradients(c, p, inputs, targets, g))
  })

  it("the walkthrough's own verify stage reports the check", () => {
    const r = run({ verify: true })
    expect(r.check?.ok).toBe(true)
    const stage = r.stages.find((s) => s.name === "verify")
    expect(stage?.ok).toBe(true)
    expect(stage?.table?.rows).toHaveLength(paramNames(r.config).length)
  })
})

describe("a wrong backward pass is caught by the same checker", () => {
  // The classic mistake: the attention output projection's input gradient without the transpose.
  // W_O is square, so the shapes still fit and only the numbers are wrong.
  const noTranspose = (site: LinearSite, dY: Mat, x: Mat, w: Mat) =>
    site === "attn.c_proj" ? { ...linearBackward(site, dY, x, w), dX: matmul(dY, w) } : linearBackward(site, dY, x, w)

  it("output projection without its transpose fails the finite-difference check", () => {
    const r = run({ verify: true }, { linear: noTranspose })
    expect(r.check?.ok).toBe(false)
    const failed = r.check!.tensors.filter((t) => !t.ok).map((t) => t.name)
    // everything upstream of the mistake is wrong; everything downstream is still right
    expect(failed).toEqual(expect.arrayContaining(["h.0.attn.c_attn.weight", "h.0.ln_1.weight", "wpe.weight"]))
    expect(failed).not.toContain("h.0.attn.c_proj.weight")
    expect(failed).not.toContain("h.0.mlp.c_fc.weight")
    expect(failed).not.toContain("ln_f.weight")
    expect(r.stages.find((s) => s.name === "verify")?.ok).toBe(false)
  })

  it("a softmax backward that forgets the Jacobian's off-diagonal part also fails", () => {
    const diagonalOnly = (dA: Mat, a: Mat) => {
      const out = mat(a.rows, a.cols)
      for (let i = 0; i < a.data.length; i++) out.data[i] = a.data[i] * (1 - a.data[i]) * dA.data[i]
      return out
    }
    const r = run({}, { softmax: diagonalOnly })
    const only = ["h.0.attn.c_attn.weight", "h.0.attn.c_proj.weight"]
    const report = checkGradients(r.config, r.params, r.tokens.inputs, r.tokens.targets, r.grads, { only })
    expect(report.tensors.map((t) => [t.name, t.ok])).toEqual([
      ["h.0.attn.c_attn.weight", false],
      ["h.0.attn.c_proj.weight", true]
    ])
  })
})

describe("LayerNorm backward: full Jacobian and compact form agree", () => {
  const draw = normalStream(3, "layernorm-test")
  const T = 5
  const d = 16
  const x = mat(T, d, Float64Array.from({ length: T * d }, () => 0.5 * draw()))
  const weight = Float64Array.from({ length: d }, () => 1 + 0.3 * draw())
  const bias = Float64Array.from({ length: d }, () => 0.1 * draw())
  const dY = mat(T, d, Float64Array.from({ length: T * d }, () => draw()))

  it("to rounding, on random inputs", () => {
    const cache = layerNorm(x, weight, bias)
    const full = layerNormBackwardFull("ln_f", dY, cache, weight)
    const compact = layerNormBackwardCompact("ln_f", dY, cache, weight)
    expect(maxAbsDiff(full.dX.data, compact.dX.data)).toBeLessThan(1e-13)
    expect(Array.from(full.dWeight)).toEqual(Array.from(compact.dWeight))
    // the gradient of a normalised row sums to zero: shifting x does not change x̂
    for (let t = 0; t < T; t++) expect(Math.abs(row(compact.dX, t).reduce((a, b) => a + b, 0))).toBeLessThan(1e-12)
  })

  it("and the walkthrough's grad-ln-final stage shows it", () => {
    const r = run()
    const stage = r.stages.find((s) => s.name === "grad-ln-final")!
    expect(stage.ok).toBe(true)
    expect(stage.values[0].shape).toEqual([16, 16])
  })
})

describe("softmax Jacobian", () => {
  it("Jᵀ·da equals the compact row formula and rows of J sum to zero", () => {
    const a = Float64Array.from([0.1, 0.2, 0.3, 0.4])
    const da = Float64Array.from([0.5, -1, 2, 0.25])
    const jac = softmaxJacobian(a)
    for (let i = 0; i < 4; i++) expect(Math.abs(row(jac, i).reduce((s, x) => s + x, 0))).toBeLessThan(1e-16)
    const viaJac = Array.from({ length: 4 }, (_, j) => [0, 1, 2, 3].reduce((s, i) => s + jac.data[i * 4 + j] * da[i], 0))
    const compact = softmaxBackward(mat(1, 4, da), mat(1, 4, a))
    expect(maxAbsDiff(viaJac, compact.data)).toBeLessThan(1e-15)
    // by hand: a·da = 0.05 − 0.2 + 0.6 + 0.1 = 0.55, ds_0 = 0.1 · (0.5 − 0.55) = −0.005
    expect(compact.data[0]).toBeCloseTo(-0.005, 15)
  })
})
