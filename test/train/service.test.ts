// One conformance suite for the Trainer service's layers, AdamW (live) and plain gradient
// descent (sgd): steps are numbered from where the state says, count their tokens, follow the
// learning-rate schedule, lower the loss on the windows they fit, refuse a non-finite loss without
// touching the weights, and a trainer rebuilt from an exported state continues exactly as an
// uninterrupted one.
import * as tf from "@tensorflow/tfjs"
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { GPT } from "../../src/model/gpt.ts"
import { Model } from "../../src/model/service.ts"
import { makeEncoding } from "../../src/tokenizer/tokenizer.ts"
import type { AdamWState } from "../../src/train/adamw.ts"
import { learningRate } from "../../src/train/schedule.ts"
import { Trainer, type TrainerLayer, type TrainerState } from "../../src/train/service.ts"
import { windowLoss, type TrainerConfig } from "../../src/train/trainer.ts"
import { tinyConfig, tinyModel, tokenWindows, useBackend } from "../helpers.ts"

const config = tinyConfig({ dropout: 0.1 })
const trainerConfig: TrainerConfig = {
  schedule: { lr: 1e-2, minLr: 1e-3, warmupSteps: 2, totalSteps: 6 },
  adamw: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, decayEmbeddings: false },
  clip: 1.0
}
const windows = [tokenWindows(config, 2, 3), tokenWindows(config, 2, 4)]
const encoding = makeEncoding("bytes")

const copyOptimizer = (o: AdamWState): AdamWState => ({
  step: o.step,
  m: new Map([...o.m].map(([n, t]) => [n, tf.variable(t.clone(), false)])),
  v: new Map([...o.v].map(([n, t]) => [n, tf.variable(t.clone(), false)]))
})

/** Runs `steps` steps of `layer` on `gpt`; returns the losses and a copy of the final state. */
const train = (layer: TrainerLayer, gpt: GPT, steps: number, restored?: TrainerState) =>
  Effect.gen(function* () {
    const trainer = yield* Trainer
    const losses: number[] = []
    const results = []
    for (let i = 0; i < steps; i++) {
      const r = yield* trainer.step(windows)
      losses.push(r.loss)
      results.push(r)
    }
    const s = yield* trainer.state
    return { losses, results, state: { ...s, optimizer: copyOptimizer(s.optimizer), rng: [...s.rng] as TrainerState["rng"], outliers: structuredClone(s.outliers) } }
  }).pipe(Effect.provide(layer(trainerConfig, 11, restored).pipe(Layer.provide(Model.fromGPT(gpt, encoding)))))

const layers: Array<[string, TrainerLayer]> = [
  ["live (AdamW)", Trainer.live],
  ["sgd", Trainer.sgd]
]

describe("Trainer conformance", () => {
  beforeAll(() => useBackend("wasm"))

  for (const [name, layer] of layers) {
    describe(name, () => {
      it.effect("numbers its steps, counts tokens, follows the schedule and lowers the loss", () =>
        Effect.gen(function* () {
          const gpt = tinyModel(config)
          const fitLoss = () => windows.reduce((sum, w) => sum + tf.tidy(() => windowLoss(gpt, w).dataSync()[0]), 0)
          const before = fitLoss()
          const { results, state } = yield* train(layer, gpt, 4)
          expect(results.map((r) => r.step)).toEqual([1, 2, 3, 4])
          expect(results.every((r) => r.tokens === 2 * 2 * config.context)).toBe(true)
          expect(results.map((r) => r.lr)).toEqual([0, 1, 2, 3].map((s) => learningRate(trainerConfig.schedule, s)))
          expect(fitLoss()).toBeLessThan(before) // measured without dropout
          expect(state.steps).toBe(4)
          gpt.dispose()
        })
      )

      it.effect("continues from an exported state exactly as an uninterrupted run", () =>
        Effect.gen(function* () {
          const straight = tinyModel(config)
          const full = yield* train(layer, straight, 4)
          const halves = tinyModel(config)
          const first = yield* train(layer, halves, 2)
          const second = yield* train(layer, halves, 2, first.state)
          expect(second.results.map((r) => r.step)).toEqual([3, 4])
          expect([...first.losses, ...second.losses]).toEqual(full.losses)
          for (const [n, p] of straight.params) expect(Array.from(halves.params.get(n)!.dataSync())).toEqual(Array.from(p.dataSync()))
          straight.dispose()
          halves.dispose()
        })
      )

      it.effect("refuses a non-finite loss and leaves the weights as they were", () =>
        Effect.gen(function* () {
          const gpt = tinyModel(config)
          const wte = gpt.params.get("wte.weight")!
          wte.assign(tf.fill(wte.shape, NaN))
          const before = Array.from(gpt.params.get("h.0.mlp.c_fc.weight")!.dataSync())
          const error = yield* Effect.flip(train(layer, gpt, 1))
          expect(error._tag).toBe("NonFiniteLoss")
          expect(error.message).toContain("training stopped at step 1")
          expect(Array.from(gpt.params.get("h.0.mlp.c_fc.weight")!.dataSync())).toEqual(before)
          gpt.dispose()
        })
      )
    })
  }

  it.effect("the two optimizers are different layers: same first loss, different weights after", () =>
    Effect.gen(function* () {
      const a = tinyModel(config)
      const b = tinyModel(config)
      const adamw = yield* train(Trainer.live, a, 3)
      const sgd = yield* train(Trainer.sgd, b, 3)
      expect(sgd.losses[0]).toBe(adamw.losses[0])
      expect(sgd.losses[2]).not.toBe(adamw.losses[2])
      a.dispose()
      b.dispose()
    })
  )
})
