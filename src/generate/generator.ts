// Decoding. The prompt is prefilled once; then each new token is one position of compute through
// the KV cache, and only the last position is projected onto the vocabulary, through a transposed
// copy of the tied head made once per generation. Prompts of different lengths decode together
// in one batch, left-padded, with the padding masked out and positions counted from each row's
// first real token. When the context fills, the window slides: with learned positions the last
// three quarters of the context are re-prefilled (positions restart at 0); with RoPE or ALiBi,
// which depend only on distances, the oldest cached entry is dropped and decoding continues.
// `useCache: false` computes the same thing without a cache — re-running the window for learned
// positions, or the whole text with sliding-window attention for RoPE/ALiBi (dropping a cached
// entry means later tokens never see it, while the kept entries still carry what it told them) —
// the reference the cache is tested against, and the baseline of bench/generate.ts.
import * as tf from "@tensorflow/tfjs"
import { Data, Effect, Option, Stream } from "effect"
import { KVCache } from "../model/attention.ts"
import type { GPT } from "../model/gpt.ts"
import { Rng } from "../rng/rng.ts"
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
  /** Stop a row when it produces this token (it is not emitted). */
  readonly stopToken?: number
  /** Default true. */
  readonly useCache?: boolean
  /** Told once when the context fills and the window starts to slide. */
  readonly onNotice?: (message: string) => void
}

/** How many columns survive a re-prefill with learned positions. */
export const reprefillKeep = (context: number) => Math.max(1, context - Math.max(1, Math.floor(context / 4)))

/** Checks prompts against the model; the padding id is any valid token (it is masked). */
export const checkPrompts = (model: GPT, prompts: ReadonlyArray<ReadonlyArray<number>>): PromptError | undefined => {
  const { context, vocabSize } = model.config
  if (prompts.length === 0) return new PromptError({ reason: "no prompts given" })
  for (const [i, prompt] of prompts.entries()) {
    const which = prompts.length > 1 ? `prompt ${i + 1}` : "the prompt"
    if (prompt.length === 0) return new PromptError({ reason: `${which} is empty: give at least one token (an empty text prompt starts from end-of-text)` })
    if (prompt.length > context) return new PromptError({ reason: `${which} is ${prompt.length} tokens but the model's context is ${context}; shorten it` })
    const bad = prompt.find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize)
    if (bad !== undefined) return new PromptError({ reason: `${which} contains token id ${bad}, outside the vocabulary [0, ${vocabSize})` })
  }
  return undefined
}

/**
 * The decoding state of a batch: every column fed so far, each row's left padding, and the
 * window of columns the model currently sees (mirrored by the cache when there is one).
 */
export class Decoder {
  private readonly columns: number[][]
  private readonly pads: number[]
  private windowStart = 0
  private cache: KVCache | undefined
  private noticeGiven = false

  constructor(
    readonly model: GPT,
    prompts: ReadonlyArray<ReadonlyArray<number>>,
    private readonly options: { readonly useCache: boolean; readonly onNotice?: (m: string) => void }
  ) {
    const width = Math.max(...prompts.map((p) => p.length))
    this.pads = prompts.map((p) => width - p.length)
    this.columns = prompts.map((p, b) => [...Array.from({ length: this.pads[b] }, () => p[0]), ...p])
  }

  get batch() {
    return this.columns.length
  }

  private get learned() {
    return this.model.config.position === "learned"
  }

  /** Pads and position origin of the current window, in the coordinates hidden() expects. */
  private windowFrame() {
    return this.learned
      ? { pads: this.pads.map((p) => Math.max(0, p - this.windowStart)), positionOffset: 0 }
      : { pads: this.pads, positionOffset: this.windowStart }
  }

  private window(from: number) {
    return this.columns.map((row) => row.slice(from))
  }

  /** Last-position logits [B, V] after feeding `ids` [B, T] (through the cache when there is one). */
  private project(ids: number[][], frame?: { pads: readonly number[]; positionOffset: number; attentionWindow?: number }): Float32Array {
    const B = ids.length
    const T = ids[0].length
    const last = tf.tidy(() => {
      const input = tf.tensor2d(ids, [B, T], "int32")
      const h = this.model.hidden(input, this.cache ? { cache: this.cache } : frame)
      const lastRow = tf.reshape(tf.slice(h, [0, T - 1, 0], [B, 1, this.model.config.dModel]), [B, this.model.config.dModel])
      return tf.matMul(lastRow as tf.Tensor2D, this.model.headTransposed()) // [B, V], a plain GEMV
    })
    // Read outside tidy: tidy walks a returned typed array element by element.
    const values = last.dataSync() as Float32Array
    last.dispose()
    return values
  }

  /** Logits for the prompt's next token. */
  start(): Float32Array {
    if (!this.options.useCache) return this.project(this.window(0), this.windowFrame())
    this.cache = new KVCache(this.model.config.layers, this.batch, this.model.config.context, this.pads)
    return this.project(this.window(0))
  }

  /** Appends one token per row and returns the logits for the next. */
  push(tokens: readonly number[]): Float32Array {
    this.columns.forEach((row, b) => row.push(tokens[b]))
    const total = this.columns[0].length
    const context = this.model.config.context
    if (total - this.windowStart > context) {
      if (this.learned) this.windowStart = total - reprefillKeep(context)
      else this.windowStart = total - context
      if (!this.noticeGiven) {
        this.noticeGiven = true
        this.options.onNotice?.(
          this.learned
            ? `context of ${context} tokens is full: re-prefilling the last ${reprefillKeep(context)} tokens each time it fills (learned positions restart)`
            : `context of ${context} tokens is full: sliding the window one token at a time`
        )
      }
      if (this.cache !== undefined) {
        if (this.learned) {
          this.cache.dispose()
          this.cache = new KVCache(this.model.config.layers, this.batch, context, this.windowFrame().pads)
          return this.project(this.window(this.windowStart))
        }
        this.cache.shift(1)
      }
    }
    if (this.cache === undefined) {
      return this.learned
        ? this.project(this.window(this.windowStart), this.windowFrame())
        : this.project(this.window(0), { pads: this.pads, positionOffset: 0, attentionWindow: context })
    }
    return this.project(this.columns.map((row) => [row[row.length - 1]]))
  }

  dispose(): void {
    this.cache?.dispose()
  }
}

/**
 * Generates for several prompts at once; each row stops at `maxNewTokens` or its stop token.
 * Returns the new tokens of each row.
 */
export const generateBatch = (
  model: GPT,
  prompts: ReadonlyArray<ReadonlyArray<number>>,
  options: GenerateOptions
): Effect.Effect<number[][], PromptError | InvalidSampling> =>
  Effect.suspend(() => {
    const invalid = validateSampling(options.sampling) ?? checkPrompts(model, prompts)
    if (invalid) return Effect.fail(invalid)
    return Effect.acquireUseRelease(
      Effect.sync(() => new Decoder(model, prompts, { useCache: options.useCache ?? true, onNotice: options.onNotice })),
      (decoder) =>
        Effect.sync(() => {
          const V = model.config.vocabSize
          const rngs = prompts.map((_, b) => Rng.seeded(options.seed + b, "sampling"))
          const outputs: number[][] = prompts.map(() => [])
          // Each row's text so far, for the repetition penalty; grown in place, not rebuilt per token.
          const histories = prompts.map((prompt) => [...prompt])
          const done = prompts.map(() => false)
          let logits = decoder.start()
          for (let step = 0; step < options.maxNewTokens; step++) {
            const next = prompts.map((prompt, b) => {
              if (done[b]) return prompt[0] // keeps the batch rectangular; never emitted
              const id = sampleToken(logits.subarray(b * V, (b + 1) * V), options.sampling, rngs[b], histories[b])
              if (id === options.stopToken) done[b] = true
              else {
                outputs[b].push(id)
                histories[b].push(id)
              }
              return id
            })
            if (done.every(Boolean) || step === options.maxNewTokens - 1) break
            logits = decoder.push(next)
          }
          return outputs
        }),
      (decoder) => Effect.sync(() => decoder.dispose())
    )
  })

/** A stream of generated token ids for one prompt (the prompt itself is not repeated). */
export const generateTokens = (
  model: GPT,
  prompt: readonly number[],
  options: GenerateOptions
): Stream.Stream<number, PromptError | InvalidSampling> => {
  const invalid = validateSampling(options.sampling) ?? checkPrompts(model, [prompt])
  if (invalid) return Stream.fail(invalid)
  return Stream.acquireRelease(
    Effect.sync(() => new Decoder(model, [prompt], { useCache: options.useCache ?? true, onNotice: options.onNotice })),
    (decoder) => Effect.sync(() => decoder.dispose())
  ).pipe(
    Stream.flatMap((decoder) => {
      const rng = Rng.seeded(options.seed, "sampling")
      const history = [...prompt]
      let logits: Float32Array | undefined
      let produced = 0
      return Stream.repeatEffectOption(
        Effect.suspend(() => {
          if (produced >= options.maxNewTokens) return Effect.fail(Option.none())
          logits = logits === undefined ? decoder.start() : decoder.push([history[history.length - 1]])
          const next = sampleToken(logits, options.sampling, rng, history)
          if (next === options.stopToken) return Effect.fail(Option.none())
          history.push(next)
          produced++
          return Effect.succeed(next)
        })
      )
    })
  )
}
