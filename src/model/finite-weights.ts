// A weights file with no checksum beside it (a bare .safetensors, a Hugging Face directory)
// can still be checked for the damage that matters most: flipped exponent bits turn numbers
// into NaN or ±Infinity, and one such value poisons every activation after it. A trained
// model never holds one (the trainer stops on a non-finite loss), so finding one means the file
// is damaged: refused with the tensor named, before anything is generated from it.
import { Data, Effect } from "effect"
import type { GPT } from "./gpt.ts"

export class WeightsNotFinite extends Data.TaggedError("WeightsNotFinite")<{
  readonly source: string
  readonly tensor: string
  readonly count: number
}> {
  override get message() {
    return `${this.source}: tensor ${this.tensor} holds ${this.count} value${this.count === 1 ? "" : "s"} that are not finite numbers (NaN or ±Infinity); the file is damaged`
  }
}

/** Fails naming the first parameter tensor that holds a NaN or an infinity. */
export const verifyFiniteWeights = (model: GPT, source: string): Effect.Effect<void, WeightsNotFinite> =>
  Effect.suspend(() => {
    for (const [name, tensor] of model.params) {
      const values = tensor.dataSync()
      let count = 0
      for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) count++
      if (count > 0) return Effect.fail(new WeightsNotFinite({ source, tensor: name, count }))
    }
    return Effect.void
  })
