// Why this file exists: one front door to every tokenizer. `makeEncoding` is the pure
// constructor (cached, so the tables load once per process); `Tokenizer` is the service the
// pipeline asks for, with a layer chosen by the config's `tokenizer` field.
import { Context, Effect, Layer } from "effect"
import { makeBpeEncoding } from "./bpe.ts"
import { makeBytesEncoding } from "./bytes.ts"
import type { Encoding, TokenizerName } from "./encoding.ts"
import { UnknownTokenId } from "./errors.ts"

export { MAX_BPE_CHUNK_CHARS } from "./chunking.ts"
export { type Encoding, TokenizerName, tokenizerNames } from "./encoding.ts"
export { UnknownTokenId } from "./errors.ts"

const built = new Map<TokenizerName, Encoding>()

/** The encoding called `name`. Same name, same object: the tables are built once. */
export const makeEncoding = (name: TokenizerName): Encoding => {
  let encoding = built.get(name)
  if (encoding === undefined) {
    encoding = name === "bytes" ? makeBytesEncoding() : makeBpeEncoding(name)
    built.set(name, encoding)
  }
  return encoding
}

export class Tokenizer extends Context.Tag("glassbox/Tokenizer")<Tokenizer, Encoding>() {
  static readonly layer = (name: TokenizerName): Layer.Layer<Tokenizer> =>
    Layer.sync(Tokenizer, () => makeEncoding(name))
}

/**
 * The training stream for a list of documents: each document's tokens followed by
 * end-of-text, so the model learns where a document stops and never sees two documents
 * glued together without a marker.
 */
export const encodeDocuments = (encoding: Encoding, texts: Iterable<string>): number[] => {
  const ids: number[] = []
  for (const text of texts) {
    const docIds = encoding.encode(text)
    for (let i = 0; i < docIds.length; i++) ids.push(docIds[i])
    ids.push(encoding.eot)
  }
  return ids
}

/** `decode` as an Effect, for callers that would rather handle `UnknownTokenId` than catch it. */
export const decodeEffect = (encoding: Encoding, ids: ArrayLike<number>): Effect.Effect<string, UnknownTokenId> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(encoding.decode(ids))
    } catch (error) {
      return error instanceof UnknownTokenId ? Effect.fail(error) : Effect.die(error)
    }
  })
