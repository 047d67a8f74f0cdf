// The same tiny model on the wasm backend (with its kernel fixes) and on the plain cpu
// reference: loss and every gradient agree to float32 accumulation error.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { gptFromValues } from "../../src/model/gpt.ts"
import { windowLoss } from "../../src/train/trainer.ts"
import { maxAbsDiff, randomValues, tinyConfig, tokenWindows, useBackend } from "../helpers.ts"

const lossAndGrads = async (backend: "cpu" | "wasm", position: "learned" | "rope" | "alibi", tied: boolean) => {
  await tf.setBackend(backend)
  const config = tinyConfig({ position, tied, vocabSize: 37, context: 12, dModel: 16, heads: 4, dFF: 32 })
  const model = gptFromValues(config, randomValues(config))
  const windows = tokenWindows(config, 3)
  const vars = [...model.params.values()]
  const { value, grads } = tf.variableGrads(() => windowLoss(model, windows), vars)
  const out = {
    loss: value.dataSync()[0],
    grads: new Map([...model.params].map(([name, p]) => [name, Array.from(grads[p.name].dataSync())]))
  }
  tf.dispose([value, ...Object.values(grads)])
  model.dispose()
  return out
}

describe("wasm and cpu backends agree", () => {
  beforeAll(async () => {
    await useBackend("cpu")
    await useBackend("wasm")
  })
  for (const position of ["learned", "rope", "alibi"] as const) {
    for (const tied of [true, false]) {
      it(`${position}, ${tied ? "tied" : "untied"}: same loss and gradients`, async () => {
        const cpu = await lossAndGrads("cpu", position, tied)
        const wasm = await lossAndGrads("wasm", position, tied)
        expect(Math.abs(cpu.loss - wasm.loss)).toBeLessThan(1e-5)
        for (const [name, g] of cpu.grads) {
          const scale = Math.max(1e-3, ...g.map(Math.abs))
          expect(maxAbsDiff(g, wasm.grads.get(name)!) / scale, name).toBeLessThan(1e-4)
        }
      })
    }
  }
})
