// The wasm fixes, each checked against the plain cpu backend on the same inputs: the missing
// UnsortedSegmentSum (embedding gradients), float32 oneHot, and the matmul wrapper for every
// combination of transposes, batching and broadcasting.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { Rng } from "../../src/rng/rng.ts"
import { maxAbsDiff, useBackend } from "../helpers.ts"

const onBoth = async <T>(f: () => T): Promise<{ cpu: T; wasm: T }> => {
  await tf.setBackend("cpu")
  const cpu = f()
  await tf.setBackend("wasm")
  const wasm = f()
  return { cpu, wasm }
}

const randomArray = (n: number, seed: number) => Rng.seeded(seed).normalArray(n, 1)

describe("wasm kernel fixes", () => {
  beforeAll(async () => {
    await useBackend("cpu")
    await useBackend("wasm")
  })

  it("gather's gradient (UnsortedSegmentSum) sums repeated rows", async () => {
    const { cpu, wasm } = await onBoth(() =>
      tf.tidy(() => {
        const table = tf.tensor2d(randomArray(40, 1), [10, 4])
        const idx = tf.tensor1d([1, 1, 3, 9, 1], "int32")
        const weights = tf.tensor2d(randomArray(20, 2), [5, 4])
        return Array.from(tf.grad((w: tf.Tensor) => tf.sum(tf.mul(tf.gather(w, idx), weights)))(table).dataSync())
      })
    )
    expect(maxAbsDiff(cpu, wasm)).toBeLessThan(1e-6)
    expect(wasm.slice(0, 4).every((x) => x === 0)).toBe(true)
  })

  it("oneHot in float32 gives ones and zeros, not int32 bit patterns", async () => {
    const { cpu, wasm } = await onBoth(() => Array.from(tf.tidy(() => tf.oneHot(tf.tensor1d([0, 2, 1], "int32"), 3, 1, 0, "float32").dataSync())))
    expect(wasm).toEqual([1, 0, 0, 0, 0, 1, 0, 1, 0])
    expect(wasm).toEqual(cpu)
  })

  const cases: Array<[string, number[], number[], boolean, boolean]> = [
    ["plain 2-D", [5, 7], [7, 3], false, false],
    ["transposed B", [5, 7], [3, 7], false, true],
    ["transposed A", [7, 5], [7, 3], true, false],
    ["both transposed", [7, 5], [3, 7], true, true],
    ["tall transposed A (cheaper reversed plan)", [64, 3], [64, 5], true, false],
    ["batched, shared B", [2, 3, 5, 7], [7, 4], false, false],
    ["batched, shared B transposed", [2, 3, 5, 7], [4, 7], false, true],
    ["batched both", [6, 5, 7], [6, 7, 4], false, false],
    ["batched both, B transposed", [6, 5, 7], [6, 4, 7], false, true],
    ["batched both, A transposed", [6, 7, 5], [6, 7, 4], true, false],
    ["broadcast A", [7, 5], [6, 5, 4], false, false],
    ["4-D attention shape", [2, 2, 5, 4], [2, 2, 5, 4], false, true],
    ["long shared dimension (split into K blocks)", [3, 20001], [20001, 2], false, false],
    ["long shared dimension, transposed B", [3, 20001], [2, 20001], false, true]
  ]
  for (const [label, aShape, bShape, ta, tb] of cases) {
    it(`matmul: ${label}`, async () => {
      const a = randomArray(aShape.reduce((x, y) => x * y), 3)
      const b = randomArray(bShape.reduce((x, y) => x * y), 4)
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const out = tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb)
          return { shape: out.shape, data: Array.from(out.dataSync()) }
        })
      )
      expect(wasm.shape).toEqual(cpu.shape)
      expect(maxAbsDiff(cpu.data, wasm.data)).toBeLessThan(1e-5 * Math.sqrt(Math.max(...aShape)))
    })
  }

  it("the matmul wrapper leaks no tensors", async () => {
    await tf.setBackend("wasm")
    const a = tf.tensor(randomArray(6 * 5 * 7, 5), [6, 5, 7])
    const b = tf.tensor(randomArray(6 * 4 * 7, 6), [6, 4, 7])
    tf.tidy(() => tf.matMul(a, b, false, true))
    const before = tf.memory()
    for (let i = 0; i < 3; i++) tf.tidy(() => tf.matMul(a, b, false, true).dataSync())
    expect(tf.memory().numTensors).toBe(before.numTensors)
    expect(tf.memory().numBytes).toBe(before.numBytes)
    tf.dispose([a, b])
  })
})
