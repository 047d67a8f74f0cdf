// The Evaluator service (DESIGN.md §3): token-weighted held-out loss of the Model service's GPT
// over a fixed set of windows, so two evaluations (or two runs) are comparable. `windows` takes
// the set as given; `heldOut` builds it from the DocumentSource's validation split the way
// pretraining does, so an experiment can measure the same model on a second corpus by providing
// a different DocumentSource. Both faces pass one conformance suite (test/eval/service.test.ts).
import { Context, Effect, Layer } from "effect"
import type { DataError, ValidationSetEmpty } from "../data/errors.ts"
import { DocumentSource } from "../data/document-source.ts"
import { Packer } from "../data/packer.ts"
import { Model } from "../model/service.ts"
import { Tokenizer } from "../tokenizer/tokenizer.ts"
import type { TokenWindows } from "../train/trainer.ts"
import { evaluate, type EvalResult } from "./evaluator.ts"

export interface EvaluatorShape {
  /** Loss (mean cross-entropy per token), perplexity = exp(loss), and the tokens measured. */
  readonly evaluate: Effect.Effect<EvalResult>
  /** The fixed windows measured. */
  readonly windows: ReadonlyArray<TokenWindows>
}

export interface HeldOutOptions {
  readonly batch: number
  readonly context: number
  /** At most this many tokens (eval.tokens). */
  readonly maxTokens: number
}

export class Evaluator extends Context.Tag("glassbox/Evaluator")<Evaluator, EvaluatorShape>() {
  /** Measures the Model on exactly these windows. */
  static readonly windows = (windows: ReadonlyArray<TokenWindows>): Layer.Layer<Evaluator, never, Model> =>
    Layer.effect(
      Evaluator,
      Effect.map(Model, ({ gpt }) => ({ evaluate: evaluate(gpt, windows), windows }))
    )

  /** The first `maxTokens` of the DocumentSource's validation split, packed as in training. */
  static readonly heldOut = (options: HeldOutOptions): Layer.Layer<Evaluator, DataError | ValidationSetEmpty, Model | Tokenizer | DocumentSource> =>
    Layer.effect(
      Evaluator,
      Effect.gen(function* () {
        const { gpt } = yield* Model
        const encoding = yield* Tokenizer
        const source = yield* DocumentSource
        const windows = yield* Packer.validationBatches(encoding, source.withSplit("val"), options)
        return { evaluate: evaluate(gpt, windows), windows }
      })
    )
}
