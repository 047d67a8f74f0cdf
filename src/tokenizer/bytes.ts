// Why this file exists: the smallest honest tokenizer. Each UTF-8 byte is a token, so the
// vocabulary is 256 plus end-of-text; models train fast on it and nothing is ever unknown.
// It is also the baseline that shows what BPE buys.
import type { Encoding } from "./encoding.ts"
import { UnknownTokenId } from "./errors.ts"

const BYTE_EOT = 256
const EOT_TEXT = new TextEncoder().encode("<|endoftext|>")
const utf8 = new TextEncoder()

export const makeBytesEncoding = (): Encoding => ({
  name: "bytes",
  vocabSize: BYTE_EOT + 1,
  eot: BYTE_EOT,
  encode: (text) => Array.from(utf8.encode(text)),
  decode: (ids) => {
    let length = 0
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]
      if (!(Number.isInteger(id) && id >= 0 && id <= BYTE_EOT)) {
        throw new UnknownTokenId({ id, vocabSize: BYTE_EOT + 1, encoding: "bytes" })
      }
      length += id === BYTE_EOT ? EOT_TEXT.length : 1
    }
    const bytes = new Uint8Array(length)
    let at = 0
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] === BYTE_EOT) {
        bytes.set(EOT_TEXT, at)
        at += EOT_TEXT.length
      } else {
        bytes[at++] = ids[i]
      }
    }
    // A fresh, non-streaming decoder: invalid sequences become U+FFFD instead of throwing,
    // and no half-character is carried over into the next call.
    return new TextDecoder("utf-8", { fatal: false }).decode(bytes)
  },
  tokenBytes: (id) => {
    if (!(Number.isInteger(id) && id >= 0 && id <= BYTE_EOT)) throw new UnknownTokenId({ id, vocabSize: BYTE_EOT + 1, encoding: "bytes" })
    return id === BYTE_EOT ? EOT_TEXT.slice() : Uint8Array.of(id)
  }
})
