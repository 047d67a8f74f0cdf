// The training guards: a non-finite loss stops the step with an error naming it (and applies
// nothing); the optional outlier guard skips a step whose loss is far above the recent ones.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as tf from "@tensorflow/tfjs"
import { defaultAdamW } from "../../src/train/adamw.ts"
import { Trainer } from "../../src/train/trainer.ts"
import { Rng } from "../../src/rng/rng.ts"
import { tinyConfig, tinyModel, tokenWindows, useBackend } from "../helpers.ts"

const trainerConfig = (outlierZ = 0, lr = 1e-3) => ({ schedule: { lr, minLr: lr, warmupSteps: 0, totalSteps: 100 }, adamw: defaultAdamW, clip: 1, outlierZ })

describe("training guards", () => {
  beforeAll(() => useBackend("wasm"))

  it.effect("a non-finite loss fails the step, names it, and changes no weight", () =>
    Effect.gen(function* () {
      const config = tinyConfig()
      const model = tinyModel(config)
      const trainer = new Trainer(model, trainerConfig(), 1)
      const w = tokenWindows(config, 2)
      yield* trainer.trainStep([w])
      const ln = model.params.get("ln_f.weight")!
      ln.assign(tf.fill(ln.shape, NaN))
      const before = Array.from(model.params.get("wte.weight")!.dataSync())
      const error = yield* Effect.flip(trainer.trainStep([w]))
      expect(error._tag).toBe("NonFiniteLoss")
      expect(error.message).toContain("training stopped at step 2")
      expect(Array.from(model.params.get("wte.weight")!.dataSync())).toEqual(before)
      expect(trainer.optimizer.step).toBe(1)
    })
  )

  it.effect("the outlier guard skips a step far above the recent losses, and only that one", () =>
    Effect.gen(function* () {
      const config = tinyConfig({ vocabSize: 50 })
      const model = tinyModel(config)
      const trainer = new Trainer(model, trainerConfig(4, 3e-2), 1)
      // A repetitive sequence the model learns quickly, then one batch of random tokens.
      const easy = { ids: new Int32Array(4 * 9).map((_, i) => i % 3), batch: 4, context: 8 }
      const results = []
      for (let i = 0; i < 25; i++) results.push(yield* trainer.trainStep([easy]))
      expect(results.every((r) => !r.skipped)).toBe(true)
      const rng = Rng.seeded(3, "noise")
      const noise = { ids: new Int32Array(4 * 9).map(() => 3 + Math.floor(rng.uniform() * 47)), batch: 4, context: 8 }
      const updatesBefore = trainer.optimizer.step
      const odd = yield* trainer.trainStep([noise])
      expect(odd.skipped).toBe(true)
      expect(trainer.optimizer.step).toBe(updatesBefore)
      expect(trainer.step).toBe(26)
      const next = yield* trainer.trainStep([easy])
      expect(next.skipped).toBe(false)
    })
  )
})
