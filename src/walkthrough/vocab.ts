// The walkthrough's word-level tokenizer: `<BOS>`, `<EOS>`, then each word of the text in order
// of first appearance. Words are split on whitespace and kept as written (case and punctuation).
import { Data, Either } from "effect"

export const BOS = "<BOS>"
export const EOS = "<EOS>"
export const MAX_WORDS = 16
export const DEFAULT_TEXT = "I love transformers"

/** Bad walkthrough input (text or options); `message` is one line a person can act on. */
export class WalkthroughInputError extends Data.TaggedError("WalkthroughInputError")<{
  readonly field: string
  readonly reason: string
}> {
  override get message(): string {
    return `walkthrough ${this.field}: ${this.reason}`
  }
}

export interface Tokenized {
  readonly text: string
  /** id → token string */
  readonly vocab: ReadonlyArray<string>
  /** the whole sequence, `<BOS> words… <EOS>` */
  readonly tokens: ReadonlyArray<number>
  /** tokens[0..n-2]: what the model reads */
  readonly inputs: ReadonlyArray<number>
  /** tokens[1..n-1]: what it should predict at each input position */
  readonly targets: ReadonlyArray<number>
}

export const tokenize = (text: string): Either.Either<Tokenized, WalkthroughInputError> => {
  const words = text.trim().split(/\s+/).filter((w) => w.length > 0)
  if (words.length === 0) {
    return Either.left(new WalkthroughInputError({ field: "text", reason: "is empty; give a short sentence" }))
  }
  if (words.length > MAX_WORDS) {
    return Either.left(
      new WalkthroughInputError({
        field: "text",
        reason: `has ${words.length} words; give at most ${MAX_WORDS} so every matrix stays printable`
      })
    )
  }
  const vocab = [BOS, EOS]
  for (const w of words) if (!vocab.includes(w)) vocab.push(w)
  const tokens = [0, ...words.map((w) => vocab.indexOf(w)), 1]
  return Either.right({
    text: words.join(" "),
    vocab,
    tokens,
    inputs: tokens.slice(0, -1),
    targets: tokens.slice(1)
  })
}
