// The KV cache must be invisible: for every position encoding, cached decoding gives the same
// logits and greedy tokens as running each window without a cache, across the sliding-window
// boundary too; batched prompts of different lengths decode as if each ran alone; bad prompts
// are clear errors; long generations leak no tensors.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Stream, Chunk } from "effect"
import * as tf from "@tensorflow/tfjs"
import { KVCache } from "../../src/model/attention.ts"
import { Decoder, generateBatch, generateTokens } from "../../src/generate/generator.ts"
import { argmax, presets } from "../../src/generate/sampling.ts"
import { maxAbsDiff, tinyConfig, tinyModel, useBackend } from "../helpers.ts"

const encodings = ["learned", "rope", "alibi"] as const
const greedy = presets.greedy

describe("KV cache and generator", () => {
  beforeAll(() => useBackend("wasm"))

  for (const position of encodings) {
    for (const inPlace of [true, false]) {
      it(`${position}, ${inPlace ? "in-place" : "copying"} cache: logits equal the uncached forward at every position`, () => {
        const config = tinyConfig({ position, context: 10, vocabSize: 23 })
        const model = tinyModel(config)
        const ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
        const full = tf.tidy(() => model.forward(tf.tensor2d([ids], [1, ids.length], "int32")))
        const expected = full.dataSync()
        full.dispose()
        const before = tf.memory().numTensors
        const cache = new KVCache(config.layers, 1, config.context, undefined, inPlace)
        const steps: number[] = []
        const run = (chunk: number[]) => {
          const out = tf.tidy(() => model.forward(tf.tensor2d([chunk], [1, chunk.length], "int32"), { cache }))
          steps.push(...out.dataSync())
          out.dispose()
        }
        run(ids.slice(0, 4))
        for (let t = 4; t < ids.length; t++) run([ids[t]])
        expect(cache.length).toBe(ids.length)
        expect(maxAbsDiff(expected, steps)).toBeLessThan(1e-4)
        cache.dispose()
        expect(tf.memory().numTensors).toBe(before)
        model.dispose()
      })
    }

    it(`${position}: cached and uncached decoding agree across the sliding window`, () => {
      const config = tinyConfig({ position, context: 8, vocabSize: 29 })
      const model = tinyModel(config)
      const notices: string[] = []
      const cached = new Decoder(model, [[5, 2, 7]], { useCache: true, onNotice: (m) => notices.push(m) })
      const plain = new Decoder(model, [[5, 2, 7]], { useCache: false })
      let a = cached.start()
      let b = plain.start()
      for (let step = 0; step < 20; step++) {
        expect(maxAbsDiff(a, b), `step ${step}`).toBeLessThan(1e-4)
        const next = argmax(a)
        expect(argmax(b)).toBe(next)
        a = cached.push([next])
        b = plain.push([next])
      }
      expect(notices).toHaveLength(1)
      cached.dispose()
      plain.dispose()
      model.dispose()
    })

    it(`${position}: a batch of prompts of different lengths decodes as if each ran alone`, () =>
      Effect.runPromise(
        Effect.gen(function* () {
          const config = tinyConfig({ position, context: 12, vocabSize: 31 })
          const model = tinyModel(config)
          const prompts = [[4], [7, 8, 9, 10, 11], [1, 2, 3]]
          const together = yield* generateBatch(model, prompts, { maxNewTokens: 12, sampling: greedy, seed: 0 })
          for (const [i, prompt] of prompts.entries()) {
            const alone = yield* generateBatch(model, [prompt], { maxNewTokens: 12, sampling: greedy, seed: 0 })
            expect(together[i], `prompt ${i}`).toEqual(alone[0])
          }
          model.dispose()
        })
      ))
  }

  it("max_new_tokens counts new tokens only, and the stop token ends a row", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const model = tinyModel(tinyConfig({ context: 16 }))
        const ids = yield* generateTokens(model, [1, 2, 3], { maxNewTokens: 6, sampling: greedy, seed: 0 }).pipe(Stream.runCollect)
        expect(Chunk.size(ids)).toBe(6)
        const first = Chunk.unsafeGet(ids, 0)
        const stopped = yield* generateTokens(model, [1, 2, 3], { maxNewTokens: 6, sampling: greedy, seed: 0, stopToken: first }).pipe(Stream.runCollect)
        expect(Chunk.size(stopped)).toBe(0)
        model.dispose()
      })
    ))

  it("the same seed gives the same sample, another seed another", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const model = tinyModel(tinyConfig({ context: 16, vocabSize: 50 }))
        const run = (seed: number) => generateBatch(model, [[1, 2]], { maxNewTokens: 12, sampling: presets["very-creative"], seed })
        expect(yield* run(1)).toEqual(yield* run(1))
        expect(yield* run(1)).not.toEqual(yield* run(2))
        model.dispose()
      })
    ))

  it("bad prompts are clear errors", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const model = tinyModel(tinyConfig({ context: 8, vocabSize: 11 }))
        const fail = (prompt: number[]) => Effect.flip(generateBatch(model, [prompt], { maxNewTokens: 2, sampling: greedy, seed: 0 })).pipe(Effect.map((e) => e.message))
        expect(yield* fail(Array.from({ length: 9 }, () => 1))).toBe("the prompt is 9 tokens but the model's context is 8; shorten it")
        expect(yield* fail([])).toContain("the prompt is empty")
        expect(yield* fail([3, 11])).toBe("the prompt contains token id 11, outside the vocabulary [0, 11)")
        expect(yield* fail([3, -1])).toContain("token id -1")
        model.dispose()
      })
    ))

  it("a long generation through several window slides leaks no tensors", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        for (const position of encodings) {
          const model = tinyModel(tinyConfig({ position, context: 16 }))
          yield* generateBatch(model, [[1, 2, 3]], { maxNewTokens: 5, sampling: greedy, seed: 0 })
          const before = tf.memory().numTensors
          const out = yield* generateBatch(model, [[1, 2, 3], [4]], { maxNewTokens: 100, sampling: presets.balanced, seed: 3 })
          expect(out[0]).toHaveLength(100)
          expect(tf.memory().numTensors).toBe(before)
          model.dispose()
        }
      })
    ))
})
