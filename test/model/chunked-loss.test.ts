// The chunked head + loss must equal the one-chunk computation: same loss, same gradients for
// the hidden states and the head, whatever the chunk size (including a ragged last chunk), and
// no tensors left behind.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { chunkRows, headCrossEntropy } from "../../src/model/loss.ts"
import { Rng } from "../../src/rng/rng.ts"
import { maxAbsDiff, useBackend } from "../helpers.ts"

const N = 13
const d = 6
const V = 17

const run = (maxBytes: number) => {
  const rng = Rng.seeded(4)
  const variable = (t: tf.Tensor) => {
    const v = tf.variable(t)
    t.dispose()
    return v
  }
  const h = variable(tf.tensor2d(rng.normalArray(N * d, 1), [N, d]))
  const W = variable(tf.tensor2d(rng.normalArray(V * d, 0.5), [V, d]))
  const targets = tf.tensor1d(Array.from({ length: N }, (_, i) => (i * 5) % V), "int32")
  const { value, grads } = tf.variableGrads(() => headCrossEntropy(h as tf.Tensor2D, W as tf.Tensor2D, targets, maxBytes), [h, W])
  const out = { loss: value.dataSync()[0], dh: Array.from(grads[h.name].dataSync()), dW: Array.from(grads[W.name].dataSync()) }
  tf.dispose([value, h, W, targets, ...Object.values(grads)])
  return out
}

describe("chunked head cross-entropy", () => {
  beforeAll(() => useBackend("wasm"))

  it("chunk sizes follow the byte limit", () => {
    expect(chunkRows(1024, 50257, 128 * 1024 * 1024)).toBe(667)
    expect(chunkRows(13, 17, 4 * 17 * 4)).toBe(4)
    expect(chunkRows(13, 17, 1)).toBe(1)
  })

  it("one chunk, ragged chunks and single rows give the same loss and gradients", () => {
    const whole = run(1e9)
    for (const maxBytes of [4 * V * 4, 4 * V * 5, 4 * V]) {
      const chunked = run(maxBytes)
      expect(Math.abs(chunked.loss - whole.loss)).toBeLessThan(1e-5)
      expect(maxAbsDiff(chunked.dh, whole.dh)).toBeLessThan(1e-5)
      expect(maxAbsDiff(chunked.dW, whole.dW)).toBeLessThan(1e-5)
    }
  })

  it("matches log-softmax computed directly", () => {
    const rng = Rng.seeded(4)
    const h = rng.normalArray(N * d, 1)
    const W = rng.normalArray(V * d, 0.5)
    let expected = 0
    for (let n = 0; n < N; n++) {
      const z = Array.from({ length: V }, (_, v) => Array.from({ length: d }, (_, k) => h[n * d + k] * W[v * d + k]).reduce((a, b) => a + b))
      const m = Math.max(...z)
      const lse = m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0))
      expected += lse - z[(n * 5) % V]
    }
    expect(run(4 * V * 4).loss).toBeCloseTo(expected / N, 5)
  })

  it("leaks no tensors", () => {
    run(4 * V * 4)
    const before = tf.memory().numTensors
    run(4 * V * 4)
    run(1e9)
    expect(tf.memory().numTensors).toBe(before)
  })
})
