// One conformance suite for the Model service's layers: fresh initialisation, a model reference
// (a .safetensors file written here), and a borrowed GPT. Each gives logits [B, T, V], GPT-2
// parameter names, every hook point, and the tokenizer; the layers that create a GPT free it
// when their scope closes, the borrowing one leaves it to its owner.
import * as tf from "@tensorflow/tfjs"
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { decodeConfig, loadConfig } from "../../src/config/load.ts"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { initialValues } from "../../src/model/gpt.ts"
import { Model } from "../../src/model/service.ts"
import { saveWeights } from "../../src/model/weights.ts"
import { makeEncoding } from "../../src/tokenizer/tokenizer.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"

const encoding = makeEncoding("bytes")
const config = tinyConfig({ vocabSize: encoding.vocabSize })

describe("Model conformance", () => {
  const borrowed = () => tinyModel(config)
  let weightsFile = ""
  beforeAll(async () => {
    await useBackend("wasm")
    weightsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-model-svc-")), "model.safetensors")
    const m = tinyModel(config)
    await Effect.runPromise(saveWeights(weightsFile, m, "bytes"))
    m.dispose()
  })

  const layers: Array<[string, () => Layer.Layer<Model, unknown>, boolean]> = [
    ["init", () => Model.init(config, 1, "bytes"), true],
    [
      "fromConfig",
      () => Layer.unwrapEffect(Effect.map(loadConfig("config/tiny.json", ["tokenizer=bytes", "model.layers=2", "model.heads=2", "model.d_model=8", "model.d_ff=16", "model.context=8"]), Model.fromConfig)),
      true
    ],
    ["fromReference", () => Model.fromReference(weightsFile), true],
    ["fromConfig with model.init (fine-tuning)", () => Layer.unwrapEffect(Effect.map(decodeConfig({ tokenizer: "bytes", model: { init: weightsFile, context: 8, dropout: 0.1 } }, "test"), Model.fromConfig)), true],
    ["fromGPT", () => Model.fromGPT(borrowed(), encoding), false]
  ]

  for (const [name, layer, owns] of layers) {
    describe(name, () => {
      it.effect("forward gives logits [B, T, V] and passes every hook point", () =>
        Effect.gen(function* () {
          const model = yield* Model
          expect(model.config).toEqual(model.gpt.config)
          expect({ ...model.config, dropout: 0 }).toEqual({ ...config, dropout: 0 })
          expect(model.config.vocabSize).toBe(encoding.vocabSize)
          expect(model.encoding.name).toBe("bytes")
          expect([...model.gpt.params.keys()]).toContain("h.0.attn.c_attn.weight")
          const seen: string[] = []
          const logits = tf.tidy(() => model.forward(tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], "int32"), { hooks: (n) => void seen.push(n) }))
          expect(logits.shape).toEqual([2, 3, config.vocabSize])
          logits.dispose()
          expect(seen).toContain("hook_embed")
          expect(seen).toContain("blocks.1.attn.hook_pattern")
          expect(seen).toContain("blocks.1.hook_resid_post")
        }).pipe(Effect.provide(layer()))
      )

      it.effect(owns ? "frees its parameters when the scope closes" : "leaves the borrowed parameters to their owner", () =>
        Effect.gen(function* () {
          const gpt = yield* Effect.provide(Effect.map(Model, (m) => m.gpt), layer())
          expect([...gpt.params.values()].every((p) => p.isDisposed)).toBe(owns)
          if (!owns) gpt.dispose()
        })
      )
    })
  }

  it.effect("init follows GPT-2's initialisation from the seed", () =>
    Effect.gen(function* () {
      const model = yield* Model
      const expected = initialValues(config, 5).get("wte.weight")!.data
      expect(Array.from(model.gpt.params.get("wte.weight")!.dataSync())).toEqual(Array.from(expected))
    }).pipe(Effect.provide(Model.init(config, 5, "bytes")))
  )

  it.effect("a reference that does not exist fails with one line naming it", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Effect.provide(Model, Model.fromReference("/nonexistent/model.safetensors")))
      expect(error.message).toContain("/nonexistent/model.safetensors")
      expect(error.message).not.toContain("\n")
    })
  )
})
