// Why this file exists: the train/validation split must never leak. Deciding by a hash of
// the document id (not by position, not by a random draw) puts each document on the same
// side in every run, on every machine, whatever the shard order or the shuffle seed.
import type { Split } from "./document-source.ts"

const utf8 = new TextEncoder()

/**
 * 64-bit FNV-1a of the UTF-8 bytes of `text`, as [high 32 bits, low 32 bits]. Computed in
 * two 32-bit halves so it stays in ordinary numbers: the FNV prime is 2^40 + 0x1b3, so
 * h·prime mod 2^64 = h·0x1b3 + (low half · 2^8) shifted into the high half.
 */
export const fnv1a64 = (text: string): readonly [number, number] => {
  let hi = 0xcbf29ce4
  let lo = 0x84222325
  for (const byte of utf8.encode(text)) {
    lo = (lo ^ byte) >>> 0
    const loTimesPrime = lo * 0x1b3 // below 2^41: exact in a double
    const carry = Math.floor(loTimesPrime / 0x1_0000_0000)
    hi = (Math.imul(hi, 0x1b3) + carry + (lo << 8)) >>> 0
    lo = loTimesPrime >>> 0
  }
  return [hi, lo]
}

/** A 32-bit integer hash (the finaliser of MurmurHash3): every input bit flips about half the output bits. */
const mix32 = (x: number): number => {
  let h = x >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/**
 * Where the id's hash falls in [0, 1). FNV-1a alone is not enough: its top bits barely
 * depend on the last few bytes, so ids that differ only at the end ("doc-001>", "doc-002>")
 * would all land together. Mixing both halves first spreads them evenly; the top 53 bits of
 * the result become a fraction that never rounds up to 1.
 */
export const idFraction = (id: string): number => {
  const [hi, lo] = fnv1a64(id)
  const top = mix32(hi ^ mix32(lo))
  const bottom = mix32(lo ^ Math.imul(top, 0x9e3779b1))
  return (top * 0x20_0000 + (bottom >>> 11)) / 2 ** 53
}

/** The side of the split a document belongs to: validation when its hash falls below `valFraction`. */
export const splitOf = (id: string, valFraction: number): Split =>
  idFraction(id) < valFraction ? "val" : "train"
