// The optimiser's arithmetic against hand-computed numbers: the learning-rate schedule at named
// steps, one AdamW step (with and without decay), and global-norm clipping.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { adamwUpdate, decays, defaultAdamW, initAdamW } from "../../src/train/adamw.ts"
import { learningRate } from "../../src/train/schedule.ts"
import { clipGradients, globalNorm } from "../../src/train/trainer.ts"
import { useBackend } from "../helpers.ts"

describe("learning-rate schedule", () => {
  const s = { lr: 1e-3, minLr: 1e-4, warmupSteps: 10, totalSteps: 110 }
  it("warms up linearly and the first step already moves", () => {
    expect(learningRate(s, 0)).toBeCloseTo(1e-3 / 11, 12)
    expect(learningRate(s, 4)).toBeCloseTo((5 * 1e-3) / 11, 12)
    expect(learningRate(s, 9)).toBeCloseTo((10 * 1e-3) / 11, 12)
  })
  it("peaks after warmup, passes the midpoint of the cosine, and ends at the floor", () => {
    expect(learningRate(s, 10)).toBeCloseTo(1e-3, 12)
    expect(learningRate(s, 60)).toBeCloseTo(1e-4 + 0.5 * (1e-3 - 1e-4), 12)
    expect(learningRate(s, 35)).toBeCloseTo(1e-4 + 0.5 * (1 + Math.cos(Math.PI / 4)) * 9e-4, 12)
    expect(learningRate(s, 110)).toBeCloseTo(1e-4, 12)
    expect(learningRate(s, 5000)).toBe(1e-4)
  })
  it("is monotone non-increasing after warmup", () => {
    for (let t = 10; t < 120; t++) expect(learningRate(s, t + 1)).toBeLessThanOrEqual(learningRate(s, t))
  })
})

describe("AdamW", () => {
  beforeAll(() => useBackend("cpu"))

  it("one step matches hand-computed numbers", () => {
    // Step t = 1: m = (1-β1)g, v = (1-β2)g², m̂ = g, v̂ = g², so the update is g/(|g| + ε) ≈ sign(g).
    const cfg = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, decayEmbeddings: true }
    const w = tf.variable(tf.tensor2d([[1, -2], [0.5, 3]]))
    const b = tf.variable(tf.tensor1d([0.25, -0.25]))
    const params = new Map<string, tf.Variable>([["h.0.mlp.c_fc.weight", w], ["h.0.mlp.c_fc.bias", b]])
    const state = initAdamW(params)
    const grads = new Map<string, tf.Tensor>([["h.0.mlp.c_fc.weight", tf.tensor2d([[0.1, -0.2], [0.3, 0]])], ["h.0.mlp.c_fc.bias", tf.tensor1d([-0.5, 2])]])
    const lr = 0.01
    adamwUpdate(params, grads, state, lr, cfg)
    const upd = (p: number, g: number, decay: boolean) => (decay ? p * (1 - lr * 0.1) : p) - (lr * g) / (Math.abs(g) + 1e-8)
    const expectedW = [upd(1, 0.1, true), upd(-2, -0.2, true), upd(0.5, 0.3, true), upd(3, 0, true)]
    const expectedB = [upd(0.25, -0.5, false), upd(-0.25, 2, false)]
    Array.from(w.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(expectedW[i], 6))
    Array.from(b.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(expectedB[i], 6))
    Array.from(state.m.get("h.0.mlp.c_fc.bias")!.dataSync()).forEach((x, i) => expect(x).toBeCloseTo([-0.05, 0.2][i], 7))
    Array.from(state.v.get("h.0.mlp.c_fc.bias")!.dataSync()).forEach((x, i) => expect(x).toBeCloseTo([0.001 * 0.25, 0.001 * 4][i], 9))
    expect(state.step).toBe(1)

    // Step t = 2 with the same gradient for the bias: m = 0.19g·..., worked out in full.
    adamwUpdate(params, grads, state, lr, cfg)
    const g = 2
    const m2 = 0.9 * 0.1 * g + 0.1 * g
    const v2 = 0.999 * 0.001 * g * g + 0.001 * g * g
    const mh = m2 / (1 - 0.9 ** 2)
    const vh = v2 / (1 - 0.999 ** 2)
    const b1 = upd(-0.25, 2, false)
    expect(b.dataSync()[1]).toBeCloseTo(b1 - (lr * mh) / (Math.sqrt(vh) + 1e-8), 6)
  })

  it("decays matrices, never biases or norms, embeddings by choice", () => {
    expect(decays("h.0.attn.c_attn.weight", 2, defaultAdamW)).toBe(true)
    expect(decays("h.0.attn.c_attn.bias", 1, defaultAdamW)).toBe(false)
    expect(decays("ln_f.weight", 1, defaultAdamW)).toBe(false)
    expect(decays("wte.weight", 2, defaultAdamW)).toBe(true)
    expect(decays("wte.weight", 2, { ...defaultAdamW, decayEmbeddings: false })).toBe(false)
  })
})

describe("gradient clipping", () => {
  beforeAll(() => useBackend("cpu"))
  it("computes the global norm and scales to the ceiling", () => {
    const grads = new Map<string, tf.Tensor>([["a", tf.tensor1d([3, 0])], ["b", tf.tensor2d([[0, 4]])]])
    const norm = globalNorm(grads)
    expect(norm).toBeCloseTo(5, 6)
    clipGradients(grads, norm, 1)
    expect(globalNorm(grads)).toBeCloseTo(1, 5)
    expect(Array.from(grads.get("a")!.dataSync())[0]).toBeCloseTo(0.6, 5)
  })
  it("leaves gradients under the ceiling untouched", () => {
    const grads = new Map<string, tf.Tensor>([["a", tf.tensor1d([0.3, 0.4])]])
    clipGradients(grads, globalNorm(grads), 1)
    expect(Array.from(grads.get("a")!.dataSync())).toEqual([0.30000001192092896, 0.4000000059604645])
  })
})
