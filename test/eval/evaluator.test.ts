// Held-out evaluation: deterministic (the same number twice), token-weighted (a short batch
// counts by its tokens, not as a whole batch), and perplexity = exp(loss).
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as tf from "@tensorflow/tfjs"
import { evaluate } from "../../src/eval/evaluator.ts"
import { windowLoss } from "../../src/train/trainer.ts"
import { tinyConfig, tinyModel, tokenWindows, useBackend } from "../helpers.ts"

describe("evaluator", () => {
  beforeAll(() => useBackend("wasm"))

  it.effect("is deterministic and weights each batch by its tokens", () =>
    Effect.gen(function* () {
      const config = tinyConfig()
      const model = tinyModel(config)
      const big = tokenWindows(config, 4, 1)
      const small = tokenWindows(config, 1, 2)
      const first = yield* evaluate(model, [big, small])
      const second = yield* evaluate(model, [big, small])
      expect(second).toEqual(first)
      const lossOf = (w: typeof big) => tf.tidy(() => windowLoss(model, w).dataSync()[0])
      const expected = (lossOf(big) * 4 * 8 + lossOf(small) * 1 * 8) / (5 * 8)
      expect(first.loss).toBeCloseTo(expected, 6)
      expect(first.loss).not.toBeCloseTo((lossOf(big) + lossOf(small)) / 2, 4)
      expect(first.tokens).toBe(40)
      expect(first.perplexity).toBeCloseTo(Math.exp(first.loss), 6)
      model.dispose()
    })
  )
})
