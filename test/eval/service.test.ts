// One conformance suite for the Evaluator service's layers: the windows given, and the held-out
// split of a DocumentSource packed as in training. Each measures a fixed set (two evaluations
// agree), weights every window by its tokens (the result is the per-token mean over the set),
// reports perplexity = exp(loss), and sees the Model it is given (a different model, a
// different loss).
import * as tf from "@tensorflow/tfjs"
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { DocumentSource } from "../../src/data/document-source.ts"
import { Evaluator } from "../../src/eval/service.ts"
import { Model } from "../../src/model/service.ts"
import { makeEncoding, Tokenizer } from "../../src/tokenizer/tokenizer.ts"
import { windowLoss } from "../../src/train/trainer.ts"
import { tinyConfig, tinyModel, tokenWindows, useBackend } from "../helpers.ts"

const encoding = makeEncoding("bytes")
const config = tinyConfig({ vocabSize: encoding.vocabSize })
// Windows of different sizes, so an unweighted mean of window losses would differ.
const given = [tokenWindows(config, 1, 3), tokenWindows(config, 3, 4)]
const documents = Array.from({ length: 40 }, (_, i) => ({ id: `doc-${i}`, text: `document ${i}: the whale swims ${"and swims ".repeat(i % 5)}under the sea.` }))

const layers: Array<[string, () => Layer.Layer<Evaluator, unknown, Model>]> = [
  ["windows", () => Evaluator.windows(given)],
  [
    "heldOut",
    () =>
      Evaluator.heldOut({ batch: 2, context: config.context, maxTokens: 64 }).pipe(
        Layer.provide(Layer.merge(Tokenizer.layer("bytes"), DocumentSource.fromDocuments(documents, { split: "train", valFraction: 0.5 })))
      )
  ]
]

describe("Evaluator conformance", () => {
  beforeAll(() => useBackend("wasm"))

  for (const [name, layer] of layers) {
    describe(name, () => {
      it.effect("measures a fixed set: token-weighted mean loss, perplexity exp(loss), same twice", () => {
        const gpt = tinyModel(config)
        return Effect.gen(function* () {
          const evaluator = yield* Evaluator
          const first = yield* evaluator.evaluate
          const second = yield* evaluator.evaluate
          expect(second).toEqual(first)
          const tokens = evaluator.windows.reduce((n, w) => n + w.batch * w.context, 0)
          expect(evaluator.windows.length).toBeGreaterThan(0)
          expect(first.tokens).toBe(tokens)
          const weighted = evaluator.windows.reduce((sum, w) => sum + tf.tidy(() => windowLoss(gpt, w).dataSync()[0]) * w.batch * w.context, 0)
          expect(first.loss).toBeCloseTo(weighted / tokens, 6)
          expect(first.perplexity).toBeCloseTo(Math.exp(first.loss), 6)
        }).pipe(Effect.provide(layer().pipe(Layer.provide(Model.fromGPT(gpt, encoding)))), Effect.ensuring(Effect.sync(() => gpt.dispose())))
      })

      it.effect("measures the model it is given", () =>
        Effect.gen(function* () {
          const measure = (seed: number) =>
            Effect.gen(function* () {
              const evaluator = yield* Evaluator
              return (yield* evaluator.evaluate).loss
            }).pipe(Effect.provide(layer().pipe(Layer.provide(Model.init(config, seed, "bytes")))))
          expect(yield* measure(1)).not.toBe(yield* measure(2))
        })
      )
    })
  }

  it.effect("heldOut on a source with no held-out documents fails with one line", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.provide(
          Evaluator,
          Evaluator.heldOut({ batch: 2, context: config.context, maxTokens: 64 }).pipe(
            Layer.provide(Layer.mergeAll(Model.init(config, 1, "bytes"), Tokenizer.layer("bytes"), DocumentSource.fromDocuments(documents, { split: "train", valFraction: 0 })))
          )
        )
      )
      expect(error._tag).toBe("ValidationSetEmpty")
      expect(error.message).not.toContain("\n")
    })
  )
})
