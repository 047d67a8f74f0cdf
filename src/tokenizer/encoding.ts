// Why this file exists: the contract every tokenizer meets, kept apart from the
// implementations so the model, packer and generator depend only on this small shape.
import { Schema } from "effect"

export const TokenizerName = Schema.Literal("gpt2", "cl100k_base", "o200k_base", "bytes")
export type TokenizerName = typeof TokenizerName.Type

export const tokenizerNames: ReadonlyArray<TokenizerName> = TokenizerName.literals

export interface Encoding {
  readonly name: TokenizerName
  /** Number of rows the embedding table needs: every id `encode` or `eot` can produce is below it. */
  readonly vocabSize: number
  /** End-of-text id: written after every document, never produced by `encode`. */
  readonly eot: number
  /**
   * Text to ids. Special-token spellings such as "<|endoftext|>" are ordinary text here, so
   * a document cannot forge a document boundary.
   */
  encode(text: string): number[]
  /**
   * Ids to text. Bytes that do not form valid UTF-8 (a multi-byte character cut between two
   * tokens) become U+FFFD. Throws `UnknownTokenId` for an id outside [0, vocabSize).
   */
  decode(ids: ArrayLike<number>): string
  /**
   * The raw bytes one id stands for, so a token that is part of a multi-byte character (which
   * `decode` alone turns into U+FFFD) can still be shown, e.g. as \xe2\x80. Throws like `decode`.
   */
  tokenBytes?(id: number): Uint8Array
}
