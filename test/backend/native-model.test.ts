// The whole model on the native backend: its loss and every parameter's gradient against the
// plain cpu backend, twenty training steps against wasm, and fifty steps without a tensor or
// memory leak. Sizes are chosen so the threaded paths of the kernels run (rows × d ≥ 32k).
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import { supportsInPlace } from "../../src/backend/inplace.ts"
import { KVCache } from "../../src/model/attention.ts"
import { gptFromValues } from "../../src/model/gpt.ts"
import { defaultAdamW } from "../../src/train/adamw.ts"
import { Trainer, windowLoss } from "../../src/train/trainer.ts"
import { maxAbsDiff, randomValues, tinyConfig, tokenWindows, useBackend } from "../helpers.ts"
import { nativeTestsRun } from "./native-setup.ts"

const config = tinyConfig({ vocabSize: 301, context: 32, dModel: 64, heads: 4, dFF: 256, layers: 2 })
const batch = 4
const values = randomValues(config, 11)
const windows = tokenWindows(config, batch, 5)

const lossAndGrads = () => {
  const model = gptFromValues(config, values)
  const vars = [...model.params.values()]
  const { value, grads } = tf.variableGrads(() => windowLoss(model, windows), vars)
  const out = {
    loss: value.dataSync()[0],
    grads: new Map([...model.params].map(([name, v]) => [name, Array.from(grads[v.name].dataSync())] as const))
  }
  tf.dispose([value, ...Object.values(grads)])
  model.dispose()
  return out
}

const trainLosses = (steps: number) =>
  Effect.gen(function* () {
    const model = gptFromValues(config, values)
    const trainer = new Trainer(model, { schedule: { lr: 1e-3, minLr: 1e-4, warmupSteps: 3, totalSteps: steps }, adamw: defaultAdamW, clip: 1 }, 1)
    const losses: number[] = []
    for (let i = 0; i < steps; i++) losses.push((yield* trainer.trainStep([tokenWindows(config, batch, 100 + i)])).loss)
    model.dispose()
    return losses
  })

describe.runIf(nativeTestsRun)("the model on the native backend", () => {
  beforeAll(async () => {
    await useBackend("cpu")
    await useBackend("wasm")
    await useBackend("native")
  })

  it("loss and every parameter's gradient match the cpu backend (relative error < 1e-4)", async () => {
    await tf.setBackend("cpu")
    const cpu = lossAndGrads()
    await tf.setBackend("native")
    const native = lossAndGrads()
    expect(Math.abs(native.loss - cpu.loss) / cpu.loss).toBeLessThan(1e-6)
    expect(native.grads.size).toBe(cpu.grads.size)
    for (const [name, g] of cpu.grads) {
      const n = native.grads.get(name)!
      const scale = Math.max(...g.map(Math.abs))
      const diff = Math.max(...g.map((x, i) => Math.abs(x - n[i])))
      expect(diff / scale, name).toBeLessThan(1e-4)
    }
  })

  it.effect("twenty AdamW steps track the wasm backend (loss within 1e-3 relative at every step)", () =>
    Effect.gen(function* () {
      yield* Effect.promise(() => tf.setBackend("wasm"))
      const wasm = yield* trainLosses(20)
      yield* Effect.promise(() => tf.setBackend("native"))
      const native = yield* trainLosses(20)
      expect(native[19]).toBeLessThan(native[0]) // it learns
      for (let i = 0; i < 20; i++) expect(Math.abs(native[i] - wasm[i]) / wasm[i], `step ${i + 1}`).toBeLessThan(1e-3)
    })
  )

  it.effect("fifty steps leave the tensor count and the process's memory flat", () =>
    Effect.gen(function* () {
      yield* Effect.promise(() => tf.setBackend("native"))
      const model = gptFromValues(config, values)
      const trainer = new Trainer(model, { schedule: { lr: 1e-3, minLr: 1e-4, warmupSteps: 3, totalSteps: 50 }, adamw: defaultAdamW, clip: 1 }, 1)
      const counts: number[] = []
      const rss: number[] = []
      for (let i = 0; i < 50; i++) {
        yield* trainer.trainStep([tokenWindows(config, batch, 200 + i)])
        counts.push(tf.memory().numTensors)
        rss.push(process.memoryUsage().rss)
      }
      expect(new Set(counts.slice(1)).size).toBe(1)
      // One step allocates ~10 MB of short-lived arrays; a leak of even one of them per step
      // would add hundreds of MB over forty steps.
      expect(Math.max(...rss.slice(10)) - rss[9]).toBeLessThan(64e6)
      model.dispose()
    })
  )

  it("decoding with the in-place KV cache gives the uncached logits at every position", async () => {
    await tf.setBackend("native")
    expect(supportsInPlace()).toBe(true)
    const model = gptFromValues(config, values)
    const ids = Array.from({ length: 20 }, (_, i) => (i * 37 + 5) % config.vocabSize)
    const full = tf.tidy(() => model.forward(tf.tensor2d([ids], [1, ids.length], "int32")))
    const expected = full.dataSync().slice()
    full.dispose()
    const before = tf.memory().numTensors
    const cache = new KVCache(config.layers, 1, config.context)
    const steps: number[] = []
    const run = (chunk: number[]) => {
      const out = tf.tidy(() => model.forward(tf.tensor2d([chunk], [1, chunk.length], "int32"), { cache }))
      steps.push(...out.dataSync())
      out.dispose()
    }
    run(ids.slice(0, 6))
    for (let t = 6; t < ids.length; t++) run([ids[t]])
    expect(maxAbsDiff(expected, steps)).toBeLessThan(1e-4)
    cache.dispose()
    expect(tf.memory().numTensors).toBe(before)
    model.dispose()
  })
})
