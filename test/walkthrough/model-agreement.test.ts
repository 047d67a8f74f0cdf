// The walkthrough's float64 arithmetic against the real model (src/model on the cpu backend):
// the same weights give the same activations at every hook point, the same loss, the same
// gradient for every parameter from autodiff, and the same parameters after one AdamW step,
// all to float32 precision. Two independent implementations agreeing is the proof.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { Either } from "effect"
import type { ModelConfig } from "../../src/model/config.ts"
import { gptFromValues } from "../../src/model/gpt.ts"
import { adamwUpdate, initAdamW } from "../../src/train/adamw.ts"
import { windowLoss } from "../../src/train/trainer.ts"
import { walkthrough, type WalkthroughResult } from "../../src/walkthrough/index.ts"
import { useBackend } from "../helpers.ts"

/** max |a − b| relative to the largest magnitude in `expected` (floored so zeros don't divide). */
const relativeError = (actual: ArrayLike<number>, expected: ArrayLike<number>) => {
  let diff = 0
  let scale = 1e-6
  for (let i = 0; i < expected.length; i++) {
    if (!Number.isFinite(expected[i])) continue
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]))
    scale = Math.max(scale, Math.abs(expected[i]))
  }
  return diff / scale
}

const realModel = (r: WalkthroughResult) => {
  const c = r.config
  const config: ModelConfig = { vocabSize: c.vocab, context: c.context, dModel: c.dModel, layers: c.layers, heads: c.heads, dFF: c.dFF, dropout: 0, position: "learned", tied: c.tied, gelu: c.gelu, lnEps: 1e-5 }
  const values = new Map(Object.entries(r.params).map(([name, t]) => [name, { shape: [...t.shape], data: Float32Array.from(t.data) }] as const))
  return gptFromValues(config, values)
}

const windowsOf = (r: WalkthroughResult) => ({ ids: Int32Array.from(r.tokens.tokens), batch: 1, context: r.tokens.inputs.length })

const variants = [
  { label: "default (tied, tanh GELU)", options: {} },
  { label: "untied head, erf GELU", options: { tied: false, gelu: "erf" as const } },
  { label: "another sentence, GPT-2 init", options: { text: "the cat sat on the mat", init: "gpt2" as const } }
]

describe("walkthrough agrees with the real model", () => {
  beforeAll(() => useBackend("cpu"))

  for (const { label, options } of variants) {
    it(`${label}: activations, loss, gradients and one AdamW step`, () => {
      const r = Either.getOrThrow(walkthrough({ ...options, verify: false }))
      const model = realModel(r)
      const w = windowsOf(r)

      // Forward: every hook point the walkthrough names.
      const seen = new Map<string, Float32Array>()
      tf.tidy(() => {
        const ids = tf.tensor2d([Array.from(r.tokens.inputs)], [1, w.context], "int32")
        model.forward(ids, { hooks: (name, x) => void seen.set(name, x.dataSync() as Float32Array) })
      })
      let compared = 0
      for (const [name, expected] of Object.entries(r.hooks)) {
        const actual = seen.get(name)
        if (actual === undefined) continue
        expect(actual.length, name).toBe(expected.data.length)
        // Masked scores are −∞ in the walkthrough and −1e9-biased in the model: compare the rest.
        expect(relativeError(actual, expected.data), name).toBeLessThan(2e-6)
        compared++
      }
      expect(compared).toBeGreaterThanOrEqual(14)

      // Loss and gradients.
      const vars = [...model.params.values()]
      const { value, grads } = tf.variableGrads(() => windowLoss(model, w), vars)
      expect(Math.abs(value.dataSync()[0] - r.loss)).toBeLessThan(2e-6)
      for (const [name, p] of model.params) {
        expect(relativeError(grads[p.name].dataSync(), r.grads[name].data), `gradient of ${name}`).toBeLessThan(5e-6)
      }

      // One AdamW step with the walkthrough's hyperparameters, fed the walkthrough's gradients:
      // the key bias's true gradient is exactly 0 (softmax ignores a constant added to every
      // score), so autodiff's float32 residue of ~1e-9 would meet ε = 1e-8 in g/(√v̂ + ε) and
      // the step would compare rounding noise rather than the optimiser's arithmetic.
      const gradMap = new Map([...model.params].map(([name, p]) => [name, tf.tensor(Float32Array.from(r.grads[name].data), p.shape)] as const))
      const state = initAdamW(model.params)
      const a = r.options.adamw
      adamwUpdate(model.params, gradMap, state, a.lr, { beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weightDecay, decayEmbeddings: a.decayEmbeddings })
      for (const [name, p] of model.params) {
        expect(relativeError(p.dataSync(), r.adamw.params[name].data), `updated ${name}`).toBeLessThan(2e-6)
      }
      const after = tf.tidy(() => windowLoss(model, w).dataSync()[0])
      expect(Math.abs(after - r.lossAfter)).toBeLessThan(5e-6)
      tf.dispose([value, ...Object.values(grads), ...gradMap.values()])
      model.dispose()
    })
  }
})
