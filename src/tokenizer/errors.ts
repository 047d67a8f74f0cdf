// Why this file exists: the one way a tokenizer can be misused at run time is asking it to
// decode an id it never issued (a model with the wrong vocabulary, a corrupt prompt file).
// The error carries the facts so the CLI can print one actionable line.
import { Data } from "effect"

export class UnknownTokenId extends Data.TaggedError("UnknownTokenId")<{
  readonly id: number
  readonly vocabSize: number
  readonly encoding: string
}> {
  override get message(): string {
    return `token id ${this.id} is not in the ${this.encoding} vocabulary (valid ids are 0..${this.vocabSize - 1}); ` +
      `was the model trained with another tokenizer?`
  }
}
