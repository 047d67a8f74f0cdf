// Export for Hugging Face and back: a run's model written as a GPT2LMHeadModel directory reloads
// through its config.json with identical logits (tied and untied, tanh and exact GELU); RoPE and
// ALiBi models are refused in one line; GPT-2's tokenizer files rebuilt from our rank table
// tokenise text exactly as our tokenizer does: vocab.json + merges.txt, and tokenizer.json both
// by the byte-level BPE algorithm written out here and by Hugging Face's own code (the committed
// ids of fixtures/check_tokenizer_json.mjs, made from the very file the export writes).
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { readSafetensorsFile } from "../../src/format/safetensors.ts"
import { exportHf } from "../../src/model/hf-export.ts"
import { openModel } from "../../src/model/reference.ts"
import { saveWeights } from "../../src/model/weights.ts"
import { makeEncoding } from "../../src/tokenizer/tokenizer.ts"
import { byteToUnicode } from "../../src/format/hf-tokenizer.ts"
import { maxAbsDiff, tinyConfig, tinyModel, useBackend } from "../helpers.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-hf-export-"))
const ids = [50256, 464, 1893, 318, 257, 3797, 13, 198, 40, 12, 50255, 0]
const logitsOf = (model: { forward: (ids: tf.Tensor2D) => tf.Tensor }, tokens = ids) =>
  tf.tidy(() => Array.from(model.forward(tf.tensor2d([tokens], [1, tokens.length], "int32")).dataSync()))

/** A model saved as glassbox saves weights, with the gpt2 vocabulary unless told otherwise. */
const saved = (name: string, overrides: Parameters<typeof tinyConfig>[0], tokenizer = "gpt2") =>
  Effect.gen(function* () {
    const model = tinyModel(tinyConfig({ vocabSize: 50257, context: 16, dModel: 16, heads: 4, dFF: 40, ...overrides }))
    const file = path.join(root, `${name}.safetensors`)
    yield* saveWeights(file, model, tokenizer)
    return { model, file }
  })

/**
 * The algorithm transformers' GPT2Tokenizer and the `tokenizers` ByteLevel BPE run: split with
 * GPT-2's regex, spell each piece's bytes with the byte-to-unicode map, then repeatedly merge the
 * adjacent pair with the lowest rank (its line in merges.txt) until none is in the table.
 */
const byteLevelBpe = (vocab: Readonly<Record<string, number>>, merges: ReadonlyArray<string>) => {
  const rank = new Map(merges.map((m, i) => [m, i] as const))
  const show = byteToUnicode()
  const pattern = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu
  const bpe = (word: string[]) => {
    for (;;) {
      let best = -1
      let bestRank = Infinity
      for (let i = 0; i + 1 < word.length; i++) {
        const r = rank.get(`${word[i]} ${word[i + 1]}`)
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r]
      }
      if (best < 0) return word
      word = [...word.slice(0, best), word[best] + word[best + 1], ...word.slice(best + 2)]
    }
  }
  return (text: string) => (text.match(pattern) ?? []).flatMap((piece) => bpe(Array.from(new TextEncoder().encode(piece), (b) => show[b])).map((t) => vocab[t]))
}

describe("export --format hf", () => {
  beforeAll(() => useBackend("wasm"))
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

  for (const variant of [
    { name: "tied-tanh", overrides: {} },
    { name: "untied-erf", overrides: { tied: false, gelu: "erf" as const } }
  ]) {
    it.effect(`${variant.name}: export, reload through config.json, identical logits`, () =>
      Effect.gen(function* () {
        const { model, file } = yield* saved(variant.name, variant.overrides)
        const dir = path.join(root, `${variant.name}-hf`)
        const result = yield* exportHf(file, dir)
        expect([...result.files].sort()).toEqual(["config.json", "generation_config.json", "merges.txt", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.json"])
        const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"))
        expect(config).toMatchObject({ architectures: ["GPT2LMHeadModel"], model_type: "gpt2", n_embd: 16, n_head: 4, n_layer: 2, n_positions: 16, n_inner: 40, vocab_size: 50257 })
        expect(JSON.parse(fs.readFileSync(path.join(dir, "generation_config.json"), "utf8"))).toEqual({ bos_token_id: 50256, eos_token_id: 50256 })
        // save_pretrained's names: the body under "transformer.", no glassbox shape metadata.
        const written = yield* readSafetensorsFile(path.join(dir, "model.safetensors"))
        expect(Object.keys(written.tensors)).toContain("transformer.h.1.mlp.c_fc.weight")
        expect(Object.keys(written.tensors).includes("lm_head.weight")).toBe(variant.name.startsWith("untied"))
        expect(written.metadata["glassbox.model"]).toBeUndefined()
        const reloaded = yield* openModel(dir)
        expect(reloaded.origin).toBe("config.json")
        expect(reloaded.encoding.name).toBe("gpt2")
        expect(reloaded.model.config).toEqual(model.config)
        expect(maxAbsDiff(logitsOf(reloaded.model), logitsOf(model))).toBe(0)
        reloaded.model.dispose()
        model.dispose()
      })
    )
  }

  it.effect("RoPE and ALiBi models are refused in one line saying why", () =>
    Effect.gen(function* () {
      for (const position of ["rope", "alibi"] as const) {
        const { model, file } = yield* saved(position, { position })
        model.dispose()
        const error = yield* Effect.flip(exportHf(file, path.join(root, `${position}-hf`)))
        expect(error._tag).toBe("HfExportRefused")
        expect(error.message).toBe(
          `${file} cannot be exported for Hugging Face: it uses ${position === "rope" ? "RoPE" : "ALiBi"} positions, and GPT2LMHeadModel only has a learned position table (wpe)`
        )
        expect(fs.existsSync(path.join(root, `${position}-hf`))).toBe(false)
      }
    })
  )

  it.effect("a bytes-vocabulary model exports without GPT-2 tokenizer files and reloads", () =>
    Effect.gen(function* () {
      const { model, file } = yield* saved("bytes", { vocabSize: 257 }, "bytes")
      const dir = path.join(root, "bytes-hf")
      const result = yield* exportHf(file, dir)
      expect([...result.files].sort()).toEqual(["config.json", "generation_config.json", "model.safetensors"])
      const reloaded = yield* openModel(dir)
      expect(reloaded.encoding.name).toBe("bytes")
      expect(maxAbsDiff(logitsOf(reloaded.model, [256, 1, 2, 3]), logitsOf(model, [256, 1, 2, 3]))).toBe(0)
      reloaded.model.dispose()
      model.dispose()
    })
  )

  it.effect("vocab.json + merges.txt tokenise like our gpt2 tokenizer (GPT-2's byte-level BPE, written out)", () =>
    Effect.gen(function* () {
      const { model, file } = yield* saved("tokenizer", {})
      model.dispose()
      const dir = path.join(root, "tokenizer-hf")
      yield* exportHf(file, dir)
      const vocab = JSON.parse(fs.readFileSync(path.join(dir, "vocab.json"), "utf8")) as Record<string, number>
      const mergeLines = fs.readFileSync(path.join(dir, "merges.txt"), "utf8").split("\n")
      expect(mergeLines[0]).toBe("#version: 0.2")
      const merges = mergeLines.slice(1, -1)
      expect(Object.keys(vocab)).toHaveLength(50257)
      expect(merges).toHaveLength(50000)
      expect(vocab["<|endoftext|>"]).toBe(50256)
      expect(vocab["Ġthe"]).toBe(262)
      expect(merges[0]).toBe("Ġ t")
      const encode = byteLevelBpe(vocab, merges)
      const gpt2 = makeEncoding("gpt2")
      for (const text of ["The whale swam past the ship, and the whale dived.", "naïve café — 東京 🐋 1234567 don't  \n\n  tabs\tend", "<|endoftext|> is text here"]) {
        expect(encode(text)).toEqual(gpt2.encode(text))
      }
    })
  )

  it.effect("tokenizer.json: the fast tokenizer's BPE, ByteLevel pieces and <|endoftext|>; encodes as our gpt2 tokenizer and as Hugging Face's code did", () =>
    Effect.gen(function* () {
      const { model, file } = yield* saved("tokenizer-json", {})
      model.dispose()
      const dir = path.join(root, "tokenizer-json-hf")
      yield* exportHf(file, dir)
      const raw = fs.readFileSync(path.join(dir, "tokenizer.json"))
      const json = JSON.parse(raw.toString("utf8"))
      expect(json.version).toBe("1.0")
      expect(json.added_tokens).toEqual([{ id: 50256, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }])
      expect(json.normalizer).toBeNull()
      expect(json.pre_tokenizer).toEqual({ type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true })
      expect(json.decoder.type).toBe("ByteLevel")
      expect(json.post_processor.type).toBe("ByteLevel")
      expect(json.model).toMatchObject({ type: "BPE", dropout: null, unk_token: null, byte_fallback: false })
      // The same table as the slow tokenizer's files: vocab.json's ids, merges.txt's lines in order.
      const vocab = JSON.parse(fs.readFileSync(path.join(dir, "vocab.json"), "utf8")) as Record<string, number>
      expect(json.model.vocab).toEqual(vocab)
      expect(json.model.merges).toEqual(fs.readFileSync(path.join(dir, "merges.txt"), "utf8").split("\n").slice(1, -1))
      expect(JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"))).toMatchObject({ add_prefix_space: false, eos_token: "<|endoftext|>" })

      const gpt2 = makeEncoding("gpt2")
      const encode = byteLevelBpe(json.model.vocab, json.model.merges)
      const fixture = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, "fixtures/tokenizer-json/ids.json"), "utf8")) as {
        tokenizer_json_sha256: string
        special: { text: string; ids: number[] }
        strings: Array<{ text: string; ids: number[]; decoded: string }>
      }
      // Hugging Face's ids were made from exactly this file: a changed export must rerun the script.
      expect(createHash("sha256").update(raw).digest("hex"), "tokenizer.json changed: rerun test/model/fixtures/check_tokenizer_json.mjs").toBe(fixture.tokenizer_json_sha256)
      expect(fixture.strings.length).toBeGreaterThanOrEqual(8)
      for (const { text, ids, decoded } of fixture.strings) {
        expect(gpt2.encode(text), text).toEqual(ids)
        expect(encode(text), text).toEqual(ids)
        expect(gpt2.decode(ids)).toBe(text)
        expect(decoded).toBe(text)
      }
      // By design glassbox reads "<|endoftext|>" in text as characters; transformers as the token.
      expect(fixture.special.ids).toEqual([64, 50256, 65])
      expect(gpt2.encode(fixture.special.text)).not.toContain(50256)
      // The exported directory reloads with the gpt2 tokenizer (its metadata and tokenizer.json agree).
      const reloaded = yield* openModel(dir)
      expect(reloaded.encoding.name).toBe("gpt2")
      reloaded.model.dispose()
    })
  )
})
