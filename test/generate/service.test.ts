// One conformance suite for the Generator service's layers: cached decoding (live) and the full
// window recomputed for every token (uncached). Both stop at maxNewTokens or the stop token
// (never emitting it), repeat themselves for the same seed, agree with each other token for
// token, decode a batch as its rows would decode alone, and refuse a prompt longer than the
// model's context with one line.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Stream } from "effect"
import { Generator } from "../../src/generate/service.ts"
import { presets } from "../../src/generate/sampling.ts"
import { Model } from "../../src/model/service.ts"
import { makeEncoding } from "../../src/tokenizer/tokenizer.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"

const encoding = makeEncoding("bytes")
const config = tinyConfig({ vocabSize: encoding.vocabSize, context: 16 })
const options = (overrides: Partial<Parameters<Generator["Type"]["generate"]>[1]> = {}) => ({ maxNewTokens: 10, sampling: presets.balanced, seed: 4, ...overrides })

const run = <A, E>(layer: Layer.Layer<Generator, never, Model>, body: Effect.Effect<A, E, Generator>) => {
  const gpt = tinyModel(config)
  return body.pipe(Effect.provide(layer.pipe(Layer.provide(Model.fromGPT(gpt, encoding)))), Effect.ensuring(Effect.sync(() => gpt.dispose())))
}
const collect = (prompt: number[], o = options()) => Effect.flatMap(Generator, (g) => Stream.runCollect(g.generate(prompt, o)).pipe(Effect.map(Chunk.toArray)))

const layers: Array<[string, Layer.Layer<Generator, never, Model>]> = [
  ["live (cached)", Generator.live],
  ["uncached", Generator.uncached]
]

describe("Generator conformance", () => {
  beforeAll(() => useBackend("wasm"))

  for (const [name, layer] of layers) {
    describe(name, () => {
      it.effect("gives maxNewTokens tokens, the same for the same seed", () =>
        run(layer, Effect.gen(function* () {
          const a = yield* collect([1, 2, 3])
          expect(a).toHaveLength(10)
          expect(a.every((t) => Number.isInteger(t) && t >= 0 && t < config.vocabSize)).toBe(true)
          expect(yield* collect([1, 2, 3])).toEqual(a)
        }))
      )

      it.effect("stops before the stop token", () =>
        run(layer, Effect.gen(function* () {
          const a = yield* collect([1, 2, 3])
          const stop = a[4]
          const b = yield* collect([1, 2, 3], options({ stopToken: stop }))
          expect(b).toEqual(a.slice(0, a.indexOf(stop)))
        }))
      )

      it.effect("a batch decodes each row as it would alone (greedy)", () =>
        run(layer, Effect.gen(function* () {
          const greedy = options({ sampling: { ...presets.balanced, greedy: true } })
          const g = yield* Generator
          const rows = yield* g.generateBatch([[1, 2, 3], [7, 8, 9]], greedy)
          expect(rows[0]).toEqual(yield* collect([1, 2, 3], greedy))
          expect(rows[1]).toEqual(yield* collect([7, 8, 9], greedy))
        }))
      )

      it.effect("refuses a prompt longer than the context with one line", () =>
        run(layer, Effect.gen(function* () {
          const error = yield* Effect.flip(collect(Array.from({ length: 40 }, (_, i) => i % 10)))
          expect(error._tag).toBe("PromptError")
          expect(error.message).not.toContain("\n")
        }))
      )
    })
  }

  it.effect("cached and uncached decoding give the same tokens for the same seed", () =>
    Effect.gen(function* () {
      const cached = yield* run(Generator.live, collect([5, 6, 7], options({ maxNewTokens: 12 })))
      const uncached = yield* run(Generator.uncached, collect([5, 6, 7], options({ maxNewTokens: 12 })))
      expect(uncached).toEqual(cached)
    })
  )
})
