// Weights in GPT-2's safetensors layout: our files round-trip with their config; a file laid out
// like Hugging Face's GPT-2 (no glassbox metadata, causal-mask buffers, optional "transformer."
// prefix) loads with its shape inferred; wrong shapes and corrupt files are refused clearly.
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

  it.effect("a GPT-2-style file (buffers, transformer. prefix, no metadata) loads with inferred shape", () =>
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
      const loaded = yield* loadWeights(file)
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
})
