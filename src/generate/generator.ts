// Decoding: prefill the prompt once, then feed one token at a time through the KV cache, so each
// new token costs one position of compute instead of the whole sequence. When the context fills
// up, the window slides: the cache is rebuilt from the most recent half-context of tokens.
import * as tf from "@tensorflow/tfjs"
import { Data, Effect, Option, Stream } from "effect"
import { disposeCache, emptyCache } from "../model/attention.ts"
import type { GPT } from "../model/gpt.ts"
import { Rng } from "../train/rng.ts"
import { sampleToken, validateSampling, type InvalidSampling, type SamplingOptions } from "./sampling.ts"

export class PromptError extends Data.TaggedError("PromptError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

export interface GenerateOptions {
  readonly maxNewTokens: number
  readonly sampling: SamplingOptions
  readonly seed: number
  /** Stop when this token is produced (it is not emitted). */
  readonly stopToken?: number
}

/** Logits of the last position for `ids` fed through the cache. */
const step = (model: GPT, ids: number[], cache: ReturnType<typeof emptyCache>): Float32Array => {
  const V = model.config.vocabSize
  const last = tf.tidy(() => {
    const logits = model.forward(tf.tensor2d([ids], [1, ids.length], "int32"), { cache })
    return tf.slice(tf.reshape(logits, [-1, V]), [ids.length - 1, 0], [1, V])
  })
  // Read outside tidy: tidy walks a returned typed array element by element looking for tensors.
  const values = last.dataSync() as Float32Array
  last.dispose()
  return values
}

/** A stream of generated token ids (the prompt itself is not repeated). */
export const generateTokens = (
  model: GPT,
  prompt: readonly number[],
  options: GenerateOptions
): Stream.Stream<number, PromptError | InvalidSampling> => {
  const { context, vocabSize } = model.config
  const invalid = validateSampling(options.sampling)
  if (invalid) return Stream.fail(invalid)
  if (prompt.length === 0) return Stream.fail(new PromptError({ reason: "the prompt is empty: give at least one token (for example the end-of-text token)" }))
  if (prompt.length > context) return Stream.fail(new PromptError({ reason: `the prompt is ${prompt.length} tokens but the model's context is ${context}; shorten it` }))
  const bad = prompt.find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize)
  if (bad !== undefined) return Stream.fail(new PromptError({ reason: `token id ${bad} is outside the vocabulary [0, ${vocabSize})` }))

  return Stream.acquireRelease(Effect.sync(() => emptyCache(model.config.layers)), (cache) => Effect.sync(() => disposeCache(cache))).pipe(
    Stream.flatMap((cache) => {
      const rng = Rng.seeded(options.seed, "sampling")
      const history = [...prompt]
      let pending: number[] = [...prompt]
      let produced = 0
      return Stream.repeatEffectOption(
        Effect.suspend(() => {
          if (produced >= options.maxNewTokens) return Effect.fail(Option.none())
          if (cache.length + pending.length > context) {
            // Slide: keep the last half-context of tokens and rebuild the cache from them.
            disposeCache(cache)
            pending = history.slice(-Math.max(1, Math.floor(context / 2)))
          }
          const logits = step(model, pending, cache)
          const next = sampleToken(logits, options.sampling, rng, history)
          if (next === options.stopToken) return Effect.fail(Option.none())
          history.push(next)
          pending = [next]
          produced++
          return Effect.succeed(next)
        })
      )
    })
  )
}
