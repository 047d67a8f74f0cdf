// Tensor bookkeeping: training steps and cached generation must not grow tf.memory().numTensors.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as tf from "@tensorflow/tfjs"
import { KVCache } from "../../src/model/attention.ts"
import { defaultAdamW } from "../../src/train/adamw.ts"
import { Trainer } from "../../src/train/trainer.ts"
import { tinyConfig, tinyModel, tokenWindows, useBackend } from "../helpers.ts"

describe("no tensor leaks", () => {
  beforeAll(() => useBackend("wasm"))

  it("numTensors is flat across training steps (with accumulation, clipping and dropout)", async () => {
    const config = tinyConfig({ dropout: 0.1 })
    const model = tinyModel(config)
    const trainer = new Trainer(model, { schedule: { lr: 1e-3, minLr: 1e-4, warmupSteps: 1, totalSteps: 10 }, adamw: defaultAdamW, clip: 0.5 }, 1)
    const windows = [tokenWindows(config, 2, 1), tokenWindows(config, 2, 2)]
    await Effect.runPromise(trainer.trainStep(windows))
    const after1 = tf.memory().numTensors
    for (let i = 0; i < 3; i++) await Effect.runPromise(trainer.trainStep(windows))
    expect(tf.memory().numTensors).toBe(after1)
  })

  it("numTensors is flat across cached generation steps", () => {
    const config = tinyConfig({ context: 32 })
    const model = tinyModel(config)
    const before = tf.memory().numTensors
    const cache = new KVCache(config.layers, 1, config.context)
    let next = 1
    for (let i = 0; i < 20; i++) {
      next = tf.tidy(() => model.forward(tf.tensor2d([[next]], [1, 1], "int32"), { cache }).reshape([-1]).argMax().dataSync()[0])
    }
    cache.dispose()
    expect(tf.memory().numTensors).toBe(before)
  })
})
