// Why this file exists: every encoding must turn any valid text into ids and back without
// loss, agree with the reference ids, treat special-token spellings as text, and fail with
// a readable error on ids it never issued. These tests pin all of that down per encoding.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { createRequire } from "node:module"
import { mulberry32 } from "../../src/data/shuffle.ts"
import { MAX_BPE_CHUNK_CHARS, splitForBpe } from "../../src/tokenizer/chunking.ts"
import {
  decodeEffect,
  encodeDocuments,
  makeEncoding,
  Tokenizer,
  tokenizerNames,
  UnknownTokenId
} from "../../src/tokenizer/tokenizer.ts"
import { shippedSample } from "./corpus-sample.ts"

const require = createRequire(import.meta.url)

/** Code point ranges that stress a tokenizer: ASCII, accents, combining marks, CJK, emoji, astral planes, odd spaces. */
const RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x20, 0x7e], [0x20, 0x7e], [0x20, 0x7e],
  [0x09, 0x0d],
  [0xa0, 0xff],
  [0x300, 0x36f],
  [0x400, 0x4ff],
  [0x4e00, 0x9fff],
  [0x1f300, 0x1faff],
  [0x10000, 0x10ffff],
  [0x2000, 0x200d],
  [0xe000, 0xfffd]
]
const SPECIAL_SPELLINGS = ["<|endoftext|>", "<|fim_prefix|>", "<|im_start|>", "<|endofprompt|>"]

/** A random string of valid code points (never a lone surrogate: those cannot survive UTF-8). */
const randomText = (random: () => number, length: number): string => {
  let text = ""
  for (let i = 0; i < length; i++) {
    if (random() < 0.02) {
      text += SPECIAL_SPELLINGS[Math.floor(random() * SPECIAL_SPELLINGS.length)]
      continue
    }
    const [lo, hi] = RANGES[Math.floor(random() * RANGES.length)]
    text += String.fromCodePoint(lo + Math.floor(random() * (hi - lo + 1)))
  }
  return text
}

describe("encodings", () => {
  it("have the published vocabulary sizes and end-of-text ids", () => {
    const facts = tokenizerNames.map((name) => {
      const e = makeEncoding(name)
      return [name, e.vocabSize, e.eot]
    })
    expect(facts).toEqual([
      ["gpt2", 50257, 50256],
      ["cl100k_base", 100277, 100257],
      ["o200k_base", 200019, 199999],
      ["bytes", 257, 256]
    ])
  })

  it("match the reference ids for 'Hello world'", () => {
    expect(makeEncoding("gpt2").encode("Hello world")).toEqual([15496, 995])
    expect(makeEncoding("cl100k_base").encode("Hello world")).toEqual([9906, 1917])
    expect(makeEncoding("o200k_base").encode("Hello world")).toEqual([13225, 2375])
    expect(makeEncoding("bytes").encode("Hi é")).toEqual([72, 105, 32, 0xc3, 0xa9])
  })

  it("return the same object for the same name", () => {
    expect(makeEncoding("gpt2")).toBe(makeEncoding("gpt2"))
  })

  for (const name of tokenizerNames) {
    describe(name, () => {
      const enc = makeEncoding(name)

      it("round-trips a slice of the shipped corpus", async () => {
        const texts = await shippedSample()
        expect(texts.length).toBeGreaterThan(10)
        for (const text of texts) {
          const ids = enc.encode(text)
          expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < enc.vocabSize && id !== enc.eot)).toBe(true)
          expect(enc.decode(ids)).toBe(text)
        }
      })

      it("round-trips random Unicode, astral planes and combining marks included", () => {
        const random = mulberry32(name.length * 7919)
        for (let i = 0; i < 150; i++) {
          const text = randomText(random, 1 + Math.floor(random() * 120))
          const ids = enc.encode(text)
          expect(ids).not.toContain(enc.eot)
          expect(enc.decode(ids)).toBe(text)
        }
      })

      it("round-trips text longer than the BPE chunk cap", () => {
        const random = mulberry32(42)
        const text = randomText(random, MAX_BPE_CHUNK_CHARS * 3 + 17)
        expect(enc.decode(enc.encode(text))).toBe(text)
      })

      it("encodes special-token spellings as ordinary text", () => {
        for (const spelling of SPECIAL_SPELLINGS) {
          const text = `before ${spelling} after${spelling}`
          const ids = enc.encode(text)
          expect(ids).not.toContain(enc.eot)
          expect(ids.length).toBeGreaterThan(3)
          expect(enc.decode(ids)).toBe(text)
        }
      })

      it("decodes end-of-text to its spelling", () => {
        expect(enc.decode([...enc.encode("a"), enc.eot])).toBe("a<|endoftext|>")
      })

      it("turns a character cut between tokens into U+FFFD instead of throwing", () => {
        const ids = enc.encode("😀")
        expect(enc.decode(ids)).toBe("😀")
        if (ids.length > 1) expect(enc.decode(ids.slice(0, 1))).toBe("\uFFFD")
        // The cut must not leak into the next, separate call.
        expect(enc.decode(enc.encode("ok"))).toBe("ok")
      })

      it("fails with UnknownTokenId for ids outside [0, vocabSize)", () => {
        for (const bad of [enc.vocabSize, -1, 1.5, Number.NaN]) {
          let caught: unknown
          try {
            enc.decode([1, bad])
          } catch (error) {
            caught = error
          }
          expect(caught).toBeInstanceOf(UnknownTokenId)
          const error = caught as UnknownTokenId
          expect(error._tag).toBe("UnknownTokenId")
          expect(Object.is(error.id, bad)).toBe(true)
          expect(error.vocabSize).toBe(enc.vocabSize)
          expect(error.message).toContain(String(bad))
          expect(error.message).toContain(String(enc.vocabSize - 1))
          expect(error.message).not.toContain("\n")
        }
      })
    })
  }

  it("bytes: every byte is its own id and invalid UTF-8 becomes U+FFFD", () => {
    const bytes = makeEncoding("bytes")
    expect(bytes.encode("😀")).toEqual([0xf0, 0x9f, 0x98, 0x80])
    expect(bytes.decode([0xc3])).toBe("\uFFFD")
    expect(bytes.decode([0xff, 0x41, 0xc3, 0xa9])).toBe("\uFFFDAé")
    expect(bytes.decode([256])).toBe("<|endoftext|>")
    const all = Array.from({ length: 256 }, (_, i) => i)
    expect(bytes.decode(all.slice(0, 128))).toBe(String.fromCharCode(...all.slice(0, 128)))
  })
})

describe("chunking before BPE", () => {
  it("changes no token of ordinary prose", async () => {
    const prose = (await shippedSample()).join("\n\n").slice(0, 60_000)
    expect(splitForBpe(prose).length).toBeGreaterThan(10)
    const reference = require("gpt-tokenizer/cjs/encoding/r50k_base") as { encode: (t: string) => number[] }
    expect(makeEncoding("gpt2").encode(prose)).toEqual(reference.encode(prose))
  })

  it("splits into bounded chunks that concatenate back, never between surrogate halves", () => {
    const random = mulberry32(7)
    for (let round = 0; round < 20; round++) {
      const text = randomText(random, 3000) + "😀".repeat(500) + "x".repeat(1000)
      const chunks = splitForBpe(text, 97)
      expect(chunks.join("")).toBe(text)
      for (const chunk of chunks) {
        expect(chunk.length).toBeLessThanOrEqual(97)
        expect(chunk.length).toBeGreaterThan(0)
        // Well-formed: the chunk survives a UTF-8 round trip, so no surrogate half was cut off.
        expect(new TextDecoder().decode(new TextEncoder().encode(chunk))).toBe(chunk)
      }
    }
  })

  it("keeps a 300,000-letter word from exploding", () => {
    const random = mulberry32(3)
    const word = Array.from({ length: 300_000 }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join("")
    const gpt2 = makeEncoding("gpt2")
    const started = performance.now()
    const ids = gpt2.encode(word)
    expect(performance.now() - started).toBeLessThan(15_000)
    expect(gpt2.decode(ids)).toBe(word)
  })
})

describe("encodeDocuments", () => {
  it("follows every document with end-of-text", () => {
    const gpt2 = makeEncoding("gpt2")
    expect(encodeDocuments(gpt2, ["Hello world", "", "Hello"])).toEqual([15496, 995, 50256, 50256, 15496, 50256])
  })
})

describe("Tokenizer service", () => {
  it.effect("provides the encoding named by its layer", () =>
    Effect.gen(function* () {
      const tokenizer = yield* Tokenizer
      expect(tokenizer.name).toBe("cl100k_base")
      expect(tokenizer.encode("Hello world")).toEqual([9906, 1917])
    }).pipe(Effect.provide(Tokenizer.layer("cl100k_base"))))

  it.effect("decodeEffect fails with the tagged error instead of throwing", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(decodeEffect(makeEncoding("bytes"), [65, 300]))
      expect(exit).toEqual(Exit.fail(new UnknownTokenId({ id: 300, vocabSize: 257, encoding: "bytes" })))
      expect(yield* decodeEffect(makeEncoding("bytes"), [65, 66])).toBe("AB")
    }))
})
