// The KV cache must be invisible: logits from a prefill followed by one-token steps equal the
// logits of one uncached forward over the whole sequence, at every position, for every
// position encoding. Also checks the cache holds no stray tensors.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { disposeCache, emptyCache } from "../../src/model/attention.ts"
import { maxAbsDiff, tinyConfig, tinyModel, useBackend } from "../helpers.ts"

describe("KV cache", () => {
  beforeAll(() => useBackend("wasm"))
  for (const position of ["learned", "rope", "alibi"] as const) {
    it(`${position}: cached logits equal uncached logits at every position`, () => {
      const config = tinyConfig({ position, context: 10, vocabSize: 23 })
      const model = tinyModel(config)
      const ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
      const full = tf.tidy(() => Array.from(model.forward(tf.tensor2d([ids], [1, ids.length], "int32")).dataSync()))
      const before = tf.memory().numTensors
      const cache = emptyCache(config.layers)
      const steps: number[] = []
      const prefill = 4
      steps.push(...tf.tidy(() => Array.from(model.forward(tf.tensor2d([ids.slice(0, prefill)], [1, prefill], "int32"), { cache }).dataSync())))
      for (let t = prefill; t < ids.length; t++) {
        steps.push(...tf.tidy(() => Array.from(model.forward(tf.tensor2d([[ids[t]]], [1, 1], "int32"), { cache }).dataSync())))
      }
      expect(cache.length).toBe(ids.length)
      expect(steps.length).toBe(full.length)
      expect(maxAbsDiff(full, steps)).toBeLessThan(1e-4)
      disposeCache(cache)
      expect(tf.memory().numTensors).toBe(before)
      model.dispose()
    })
  }
})
