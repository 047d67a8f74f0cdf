// Weights written by other tools: the directories in fixtures/foreign were made by an independent
// PyTorch GPT-2 (fixtures/make_foreign.py) in Hugging Face's layout: bare names or under
// "transformer.", attn.bias / attn.masked_bias buffers, F16, BF16 and F32, tied and separate
// heads, and head widths 32, 64 and 128 at the same d_model, so only config.json says how many
// heads there are. Each must load through a model reference and give PyTorch's logits. Without
// config.json the head count is refused, never guessed: a guess runs and gives wrong logits.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { openModel } from "../../src/model/reference.ts"
import { encodeSafetensors, readSafetensorsFile } from "../../src/format/safetensors.ts"
import { loadWeights } from "../../src/model/weights.ts"
import { maxAbsDiff, useBackend } from "../helpers.ts"

const fixtures = path.join(import.meta.dirname, "fixtures", "foreign")
const variants = [
  { name: "w32-f16-buffers", heads: 4, tied: true, gelu: "tanh" },
  { name: "w64-bf16-prefix-untied", heads: 2, tied: false, gelu: "tanh" },
  { name: "w128-f32-erf", heads: 1, tied: true, gelu: "erf" }
] as const

const expected = (name: string) => JSON.parse(fs.readFileSync(path.join(fixtures, name, "expected.json"), "utf8")) as { tokens: number[]; logits: number[] }
const logitsOf = (model: { forward: (ids: tf.Tensor2D) => tf.Tensor }, tokens: number[]) =>
  tf.tidy(() => Array.from(model.forward(tf.tensor2d([tokens], [1, tokens.length], "int32")).dataSync()))

/** The weights alone, copied where no config.json sits beside them. */
const weightsWithoutConfig = (name: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-foreign-"))
  const file = path.join(dir, "model.safetensors")
  fs.copyFileSync(path.join(fixtures, name, "model.safetensors"), file)
  return file
}

describe("foreign GPT-2 weights", () => {
  beforeAll(() => useBackend("cpu"))

  for (const v of variants) {
    it.effect(`${v.name}: config.json gives the shape, and the logits are PyTorch's`, () =>
      Effect.gen(function* () {
        const { model, encoding, origin } = yield* openModel(path.join(fixtures, v.name))
        expect(origin).toBe("config.json")
        expect(model.config).toMatchObject({ heads: v.heads, dModel: 128, layers: 2, dFF: 128, vocabSize: 257, context: 16, tied: v.tied, gelu: v.gelu })
        expect(encoding.name).toBe("bytes") // 257 rows: only the bytes tokenizer has that many ids
        const e = expected(v.name)
        expect(maxAbsDiff(logitsOf(model, e.tokens), e.logits)).toBeLessThan(2e-4)
        model.dispose()
      })
    )
  }

  it.effect("without config.json the head count is refused, naming config.json and --heads", () =>
    Effect.gen(function* () {
      const file = weightsWithoutConfig("w32-f16-buffers")
      const error = yield* Effect.flip(loadWeights(file))
      expect(error.message).toContain(file)
      expect(error.message).toContain("config.json")
      expect(error.message).toContain("--heads")
      expect(error.message.split("\n")).toHaveLength(1)
    })
  )

  it.effect("--heads supplies the count; the right one matches PyTorch, a wrong one does not", () =>
    Effect.gen(function* () {
      const file = weightsWithoutConfig("w32-f16-buffers")
      const e = expected("w32-f16-buffers")
      const right = yield* loadWeights(file, { heads: 4 })
      expect(right.origin).toBe("flags")
      expect(maxAbsDiff(logitsOf(right.model, e.tokens), e.logits)).toBeLessThan(2e-4)
      right.model.dispose()
      // The failure the old loader had: d_model 128 guessed as two 64-wide heads.
      const wrong = yield* loadWeights(file, { heads: 2 })
      expect(maxAbsDiff(logitsOf(wrong.model, e.tokens), e.logits)).toBeGreaterThan(1e-2)
      wrong.model.dispose()
    })
  )

  it.effect("--heads that contradicts config.json is refused", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(openModel(path.join(fixtures, "w64-bf16-prefix-untied"), { heads: 4 }))
      expect(error.message).toContain("--heads 4 contradicts the 2 heads recorded in config.json")
    })
  )

  it.effect("a file without wpe.weight is refused even with a config.json, naming the weights file", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-foreign-"))
      const source = yield* readSafetensorsFile(path.join(fixtures, "w32-f16-buffers", "model.safetensors"))
      delete source.tensors["wpe.weight"]
      fs.writeFileSync(path.join(dir, "model.safetensors"), encodeSafetensors(source.tensors))
      fs.copyFileSync(path.join(fixtures, "w32-f16-buffers", "config.json"), path.join(dir, "config.json"))
      const error = yield* Effect.flip(openModel(dir))
      expect(error.message).toBe(`${path.join(dir, "model.safetensors")}: no wpe.weight: this GPT-2 layout has no position table, and only a model recorded as rope or alibi may lack one`)
    })
  )
})
