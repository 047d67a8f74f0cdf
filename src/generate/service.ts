// The Generator service (DESIGN.md §3): streaming decode from the Model service's GPT with a
// sampling strategy. The live layer prefills the prompt once and decodes with the KV cache
// (src/generate/generator.ts); `Generator.uncached` recomputes the whole window for every token.
// They must produce the same tokens for the same seed, which is what makes the uncached face a
// test double worth having: one conformance suite (test/generate/service.test.ts) runs both.
import { Context, Effect, Layer, type Stream } from "effect"
import { Model } from "../model/service.ts"
import { generateBatch, generateTokens, type GenerateOptions, type PromptError } from "./generator.ts"
import type { InvalidSampling } from "./sampling.ts"

export interface GeneratorShape {
  /** New token ids after `prompt` (not repeating it), until `maxNewTokens` or the stop token. */
  readonly generate: (prompt: ReadonlyArray<number>, options: GenerateOptions) => Stream.Stream<number, PromptError | InvalidSampling>
  /** Several prompts decoded together; the new tokens of each row. */
  readonly generateBatch: (prompts: ReadonlyArray<ReadonlyArray<number>>, options: GenerateOptions) => Effect.Effect<number[][], PromptError | InvalidSampling>
}

const decoding = (useCache: boolean): Layer.Layer<Generator, never, Model> =>
  Layer.effect(
    Generator,
    Effect.map(Model, ({ gpt }) => ({
      generate: (prompt, options) => generateTokens(gpt, [...prompt], { ...options, useCache }),
      generateBatch: (prompts, options) => generateBatch(gpt, prompts, { ...options, useCache })
    }))
  )

export class Generator extends Context.Tag("glassbox/Generator")<Generator, GeneratorShape>() {
  /** Prefill once, then one cached step per token. */
  static get live(): Layer.Layer<Generator, never, Model> {
    return decoding(true)
  }
  /** The full window recomputed for every token: slow, independent of the cache. */
  static get uncached(): Layer.Layer<Generator, never, Model> {
    return decoding(false)
  }
}
