// Which tokenizer a model is read with: the one it records, else the one its tokenizer.json or its
// vocabulary size identifies; a --tokenizer that disagrees is refused (the old behaviour, obeying
// it, fed a gpt2 model byte ids, or crashed with exit 2 on ids past its vocabulary).
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { chooseTokenizer } from "../../src/model/reference.ts"

const choose = (known: { recorded?: string; tokenizerJson?: number; vocabSize: number }, requested?: "gpt2" | "bytes" | "cl100k_base" | "o200k_base") =>
  Either.match(chooseTokenizer("m", { recorded: known.recorded, tokenizerJson: known.tokenizerJson, vocabSize: known.vocabSize }, requested), {
    onLeft: (e) => `refused: ${e.message}`,
    onRight: (name) => name
  })

describe("the tokenizer comes from the model", () => {
  it("metadata first, then tokenizer.json, then a vocabulary size only one tokenizer has", () => {
    expect(choose({ recorded: "bytes", vocabSize: 50257 })).toBe("bytes")
    expect(choose({ tokenizerJson: 50257, vocabSize: 50304 })).toBe("gpt2") // GPT-2 padded to 50,304 rows
    expect(choose({ vocabSize: 50257 })).toBe("gpt2")
    expect(choose({ vocabSize: 257 })).toBe("bytes")
    expect(choose({ vocabSize: 100277 })).toBe("cl100k_base")
  })

  it("a --tokenizer that disagrees is one line naming both", () => {
    expect(choose({ recorded: "gpt2", vocabSize: 50257 }, "bytes")).toBe("refused: m: --tokenizer bytes does not match the model: its metadata records gpt2 (vocabulary 50257); drop --tokenizer")
    expect(choose({ tokenizerJson: 50257, vocabSize: 50304 }, "bytes")).toContain("its tokenizer.json is gpt2")
    expect(choose({ recorded: "gpt2", vocabSize: 50257 }, "gpt2")).toBe("gpt2")
  })

  it("an unknown vocabulary needs --tokenizer, which must fit the embedding", () => {
    expect(choose({ vocabSize: 1000 })).toBe("refused: m: cannot tell which tokenizer the model uses (no glassbox metadata or tokenizer.json, vocabulary 1000); pass --tokenizer")
    expect(choose({ vocabSize: 1000 }, "bytes")).toBe("bytes")
    expect(choose({ vocabSize: 1000 }, "gpt2")).toBe("refused: m: tokenizer gpt2 has 50257 ids but the model's embedding has 1000 rows")
    expect(choose({ recorded: "klingon", vocabSize: 300 })).toContain('metadata glassbox.tokenizer is "klingon"')
  })
})
