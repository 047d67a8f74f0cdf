// Why this file exists: the tiktoken byte-pair encodings (GPT-2's r50k_base, cl100k_base,
// o200k_base) come from gpt-tokenizer; this file adapts them to our `Encoding` contract:
// special-token text is plain text, long inputs are chunked before BPE, and decoding goes
// through bytes so a character split across tokens becomes U+FFFD instead of vanishing.
//
// The tables are loaded on first use with a synchronous require of the package's CommonJS
// build, so a program that only uses gpt2 never parses the 200k-entry o200k table.
import { createRequire } from "node:module"
import { splitForBpe } from "./chunking.ts"
import type { Encoding, TokenizerName } from "./encoding.ts"
import { UnknownTokenId } from "./errors.ts"

type BpeName = Exclude<TokenizerName, "bytes">

interface BpeSpec {
  /** gpt-tokenizer's name for the table. */
  readonly table: "r50k_base" | "cl100k_base" | "o200k_base"
  readonly eot: number
  /** tiktoken's `n_vocab`: one past the largest id, special tokens included. */
  readonly vocabSize: number
}

const specs: Record<BpeName, BpeSpec> = {
  gpt2: { table: "r50k_base", eot: 50256, vocabSize: 50257 },
  cl100k_base: { table: "cl100k_base", eot: 100257, vocabSize: 100277 },
  o200k_base: { table: "o200k_base", eot: 199999, vocabSize: 200019 }
}

interface GptTokenizerApi {
  encode(text: string, options?: { readonly disallowedSpecial?: Set<string> }): number[]
}
type RankTable = ReadonlyArray<string | ReadonlyArray<number>>

const require = createRequire(import.meta.url)
const loadApi = (table: BpeSpec["table"]): GptTokenizerApi =>
  require(`gpt-tokenizer/cjs/encoding/${table}`) as GptTokenizerApi
const loadRanks = (table: BpeSpec["table"]): RankTable =>
  (require(`gpt-tokenizer/cjs/bpeRanks/${table}`) as { default: RankTable }).default

/** Treat every special-token spelling as ordinary text (the library throws on them by default). */
const NO_SPECIAL_TOKENS = new Set<string>()
const utf8 = new TextEncoder()
const EOT_BYTES = utf8.encode("<|endoftext|>")
const REPLACEMENT_BYTES = utf8.encode("\uFFFD")

/**
 * Every id's bytes laid end to end, `offsets[id]..offsets[id + 1]` selecting one id. Ids
 * past the mergeable ranks are end-of-text (its spelling) or slots this project never
 * emits, such as other special tokens and unused ids (U+FFFD, so sampling them cannot crash
 * a printout).
 */
interface ByteTable {
  readonly bytes: Uint8Array
  readonly offsets: Int32Array
}

const buildByteTable = (ranks: RankTable, spec: BpeSpec): ByteTable => {
  const pieces: Uint8Array[] = new Array(spec.vocabSize)
  let total = 0
  for (let id = 0; id < spec.vocabSize; id++) {
    const rank = id < ranks.length ? ranks[id] : undefined
    const piece = rank === undefined
      ? (id === spec.eot ? EOT_BYTES : REPLACEMENT_BYTES)
      : typeof rank === "string" ? utf8.encode(rank) : Uint8Array.from(rank)
    pieces[id] = piece
    total += piece.length
  }
  const bytes = new Uint8Array(total)
  const offsets = new Int32Array(spec.vocabSize + 1)
  for (let id = 0; id < spec.vocabSize; id++) {
    bytes.set(pieces[id], offsets[id])
    offsets[id + 1] = offsets[id] + pieces[id].length
  }
  return { bytes, offsets }
}

export const makeBpeEncoding = (name: BpeName): Encoding => {
  const spec = specs[name]
  const api = loadApi(spec.table)
  let table: ByteTable | undefined
  const byteTable = (): ByteTable => (table ??= buildByteTable(loadRanks(spec.table), spec))

  const encode = (text: string): number[] => {
    const ids: number[] = []
    for (const chunk of splitForBpe(text)) {
      const chunkIds = api.encode(chunk, { disallowedSpecial: NO_SPECIAL_TOKENS })
      for (let i = 0; i < chunkIds.length; i++) ids.push(chunkIds[i])
    }
    return ids
  }

  const decode = (ids: ArrayLike<number>): string => {
    const { bytes, offsets } = byteTable()
    let length = 0
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]
      if (!(Number.isInteger(id) && id >= 0 && id < spec.vocabSize)) {
        throw new UnknownTokenId({ id, vocabSize: spec.vocabSize, encoding: name })
      }
      length += offsets[id + 1] - offsets[id]
    }
    const out = new Uint8Array(length)
    let at = 0
    for (let i = 0; i < ids.length; i++) {
      const piece = bytes.subarray(offsets[ids[i]], offsets[ids[i] + 1])
      out.set(piece, at)
      at += piece.length
    }
    return new TextDecoder("utf-8", { fatal: false }).decode(out)
  }

  const tokenBytes = (id: number): Uint8Array => {
    if (!(Number.isInteger(id) && id >= 0 && id < spec.vocabSize)) throw new UnknownTokenId({ id, vocabSize: spec.vocabSize, encoding: name })
    const { bytes, offsets } = byteTable()
    return bytes.slice(offsets[id], offsets[id + 1])
  }

  return { name, vocabSize: spec.vocabSize, eot: spec.eot, encode, decode, tokenBytes }
}
