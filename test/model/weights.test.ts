// Weights in GPT-2's safetensors layout: our files round-trip with their config; a file laid out
// like Hugging Face's GPT-2 (no glassbox metadata, causal-mask buffers, optional "transformer."
// prefix) loads once its head count is given; damaged metadata, a missing position table, wrong
// shapes and corrupt files are refused clearly, each with the file and the field named.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as tf from "@tensorflow/tfjs"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { encodeSafetensors, type NamedTensor } from "../../src/format/safetensors.ts"
import { loadWeights, modelTensors, saveWeights } from "../../src/model/weights.ts"
import { maxAbsDiff, tinyConfig, tinyModel, useBackend } from "../helpers.ts"

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-weights-"))
const logitsOf = (m: { forward: (ids: tf.Tensor2D) => tf.Tensor }) =>
  tf.tidy(() => Array.from(m.forward(tf.tensor2d([[1, 2, 3, 4]], [1, 4], "int32")).dataSync()))

describe("weights", () => {
  beforeAll(() => useBackend("wasm"))

  it.effect("round-trip: same config, same tokenizer, same logits", () =>
    Effect.gen(function* () {
      const config = tinyConfig({ tied: false, position: "rope" })
      const model = tinyModel(config)
      const file = path.join(tmp(), "model.safetensors")
      yield* saveWeights(file, model, "bytes")
      const loaded = yield* loadWeights(file)
      expect(loaded.tokenizer).toBe("bytes")
      expect(loaded.model.config).toEqual(config)
      expect(maxAbsDiff(logitsOf(model), logitsOf(loaded.model))).toBe(0)
      model.dispose()
      loaded.model.dispose()
    })
  )

  it.effect("a GPT-2-style file (buffers, transformer. prefix, no metadata) loads with --heads, the rest from its tensors", () =>
    Effect.gen(function* () {
      const config = tinyConfig({ dModel: 64, heads: 1, dFF: 256 })
      const model = tinyModel(config)
      const tensors: Record<string, NamedTensor> = {}
      for (const [name, t] of Object.entries(modelTensors(model))) tensors[`transformer.${name}`] = t
      for (let i = 0; i < config.layers; i++) {
        tensors[`h.${i}.attn.bias`] = { dtype: "F32", shape: [1, 1, 8, 8], data: new Float32Array(64).fill(1) }
      }
      const file = path.join(tmp(), "model.safetensors")
      fs.writeFileSync(file, encodeSafetensors(tensors, { format: "pt" }))
      const refused = yield* Effect.flip(loadWeights(file))
      expect(refused.message).toBe(`${file}: the head count is not recorded (no glassbox metadata, no config.json beside it); put the model's config.json (n_head) beside the file or pass --heads`)
      const loaded = yield* loadWeights(file, { heads: 1 })
      expect(loaded.model.config).toMatchObject({ vocabSize: 11, context: 8, dModel: 64, layers: 2, heads: 1, dFF: 256, tied: true, position: "learned" })
      expect(maxAbsDiff(logitsOf(model), logitsOf(loaded.model))).toBeLessThan(1e-6)
      model.dispose()
      loaded.model.dispose()
    })
  )

  it.effect("a tensor of the wrong shape is refused, naming it", () =>
    Effect.gen(function* () {
      const config = tinyConfig()
      const model = tinyModel(config)
      const tensors = modelTensors(model)
      tensors["h.1.mlp.c_fc.weight"] = { dtype: "F32", shape: [8, 15], data: new Float32Array(120) }
      delete tensors["ln_f.bias"]
      const file = path.join(tmp(), "model.safetensors")
      fs.writeFileSync(file, encodeSafetensors(tensors, { "glassbox.model": JSON.stringify(config) }))
      const exit = yield* Effect.exit(loadWeights(file))
      expect(Exit.isFailure(exit)).toBe(true)
      const message = String(Exit.isFailure(exit) && (exit.cause as { error?: Error }).error?.message)
      expect(message).toContain("h.1.mlp.c_fc.weight has shape [8,15], expected [8,16]")
      expect(message).toContain("missing ln_f.bias")
      model.dispose()
    })
  )

  it.effect("a truncated file is refused with the file named", () =>
    Effect.gen(function* () {
      const model = tinyModel(tinyConfig())
      const file = path.join(tmp(), "model.safetensors")
      yield* saveWeights(file, model, "gpt2")
      const bytes = fs.readFileSync(file)
      fs.writeFileSync(file, bytes.subarray(0, bytes.length - 100))
      const error = yield* Effect.flip(loadWeights(file))
      expect(error.message).toContain(file)
      model.dispose()
    })
  )

  it.effect("incomplete or wrong glassbox metadata names each field in the metadata's own terms", () =>
    Effect.gen(function* () {
      const model = tinyModel(tinyConfig())
      const { heads: _heads, ...withoutHeads } = tinyConfig()
      const file = path.join(tmp(), "model.safetensors")
      fs.writeFileSync(file, encodeSafetensors(modelTensors(model), { "glassbox.model": JSON.stringify({ ...withoutHeads, dModel: "8", position: "sinusoid" }) }))
      const error = yield* Effect.flip(loadWeights(file))
      expect(error._tag).toBe("WeightsIncompatible")
      expect(error.message).toContain(`${file}: metadata glassbox.model:`)
      expect(error.message).toContain("glassbox.model.heads is missing")
      expect(error.message).toContain('glassbox.model.dModel is "8", expected number')
      expect(error.message).toContain('glassbox.model.position is "sinusoid", expected "learned" or "rope" or "alibi"')
      expect(error.message).not.toContain("model.d_model")
      fs.writeFileSync(file, encodeSafetensors(modelTensors(model), { "glassbox.model": JSON.stringify({ ...tinyConfig(), heads: 3 }) }))
      expect((yield* Effect.flip(loadWeights(file))).message).toBe(`${file}: glassbox.model.dModel (8) must be divisible by glassbox.model.heads (3)`)
      model.dispose()
    })
  )

  it.effect("a GPT-2 layout without wpe.weight is refused unless the model is recorded as rope or alibi", () =>
    Effect.gen(function* () {
      const model = tinyModel(tinyConfig())
      const tensors = modelTensors(model)
      delete tensors["wpe.weight"]
      const file = path.join(tmp(), "model.safetensors")
      fs.writeFileSync(file, encodeSafetensors(tensors))
      const bare = yield* Effect.flip(loadWeights(file, { heads: 2 }))
      expect(bare.message).toContain(`${file}: no wpe.weight and no glassbox metadata`)
      fs.writeFileSync(file, encodeSafetensors(tensors, { "glassbox.model": JSON.stringify(tinyConfig()) }))
      expect((yield* Effect.flip(loadWeights(file))).message).toContain("no wpe.weight: this GPT-2 layout has no position table")
      fs.writeFileSync(file, encodeSafetensors(tensors, { "glassbox.model": JSON.stringify(tinyConfig({ position: "alibi" })) }))
      const alibi = yield* loadWeights(file)
      expect(alibi.model.config.position).toBe("alibi")
      alibi.model.dispose()
      model.dispose()
    })
  )
})
