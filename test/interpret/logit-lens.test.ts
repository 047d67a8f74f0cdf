// The logit lens against numbers computed another way: at the last stage it must equal the
// model's own output distribution (softmax of forward's logits) with zero KL; every statistic
// (top-k, entropy, rank and probability of the next token) is recomputed here in float64 from
// those logits. On the hand-built circuit the answer is known: before the induction layer the
// read-out is exactly uniform (entropy log V), after it the repeat is predicted with p ≈ 1.
// Every intermediate stage is also decoded here from its cached residual through ln_f and the
// unembedding in float64, so a lens that skipped the final LayerNorm before the last stage fails.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { cacheActivations, idsTensor } from "../../src/interpret/hooks.ts"
import { logitLens } from "../../src/interpret/logit-lens.ts"
import { gptFromValues } from "../../src/model/gpt.ts"
import { randomValues, tinyConfig, tinyModel, useBackend } from "../helpers.ts"
import { circuitModel, repeatedText, V } from "./circuits.ts"

const softmax64 = (logits: ArrayLike<number>) => {
  const max = Math.max(...Array.from(logits))
  const e = Array.from(logits, (x) => Math.exp(x - max))
  const z = e.reduce((a, b) => a + b, 0)
  return e.map((x) => x / z)
}

describe("logit lens", () => {
  beforeAll(() => useBackend("wasm"))

  for (const tied of [true, false]) {
    it(`at the last stage equals the model's output distribution (${tied ? "tied" : "separate"} head)`, () => {
      const config = tinyConfig({ vocabSize: 17, context: 10, layers: 3, tied })
      const model = tinyModel(config)
      const ids = [3, 1, 4, 1, 5, 9, 2, 6]
      const T = ids.length
      const input = idsTensor([ids])
      const logits = model.forward(input)
      const flat = logits.dataSync()
      tf.dispose([input, logits])
      const before = tf.memory().numTensors
      const lens = logitLens(model, ids, 4)
      expect(tf.memory().numTensors).toBe(before)
      expect(lens.stages).toEqual(["embed", "L0", "L1", "L2"])
      const last = lens.cells[lens.cells.length - 1]
      for (let t = 0; t < T; t++) {
        const p = softmax64(flat.subarray(t * 17, (t + 1) * 17))
        const order = p.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0])
        expect(last[t].top.map((x) => x.token)).toEqual(order.slice(0, 4).map(([, i]) => i))
        last[t].top.forEach((x, j) => expect(x.prob).toBeCloseTo(order[j][0], 5))
        expect(last[t].entropy).toBeCloseTo(-p.reduce((a, x) => a + x * Math.log(x), 0), 4)
        expect(last[t].klToFinal).toBeLessThan(1e-5)
        if (t < T - 1) {
          const next = ids[t + 1]
          expect(last[t].next!.prob).toBeCloseTo(p[next], 5)
          expect(last[t].next!.rank).toBe(p.filter((x) => x > p[next]).length)
        } else expect(last[t].next).toBeUndefined()
      }
      // Earlier stages are different distributions, at a positive KL from the final one.
      expect(lens.cells[0].every((c) => c.klToFinal > 1e-4)).toBe(true)
      // Decoding a few positions at a time (bounded memory) gives the same cells.
      const chunked = logitLens(model, ids, 4, 3)
      chunked.cells.forEach((row, s) =>
        row.forEach((cell, t) => {
          expect(cell.top.map((x) => x.token)).toEqual(lens.cells[s][t].top.map((x) => x.token))
          expect(cell.entropy).toBeCloseTo(lens.cells[s][t].entropy, 5)
          expect(cell.klToFinal).toBeCloseTo(lens.cells[s][t].klToFinal, 5)
          expect(cell.next?.token).toBe(lens.cells[s][t].next?.token)
          expect(cell.next?.rank).toBe(lens.cells[s][t].next?.rank)
          expect(cell.next?.prob ?? 0).toBeCloseTo(lens.cells[s][t].next?.prob ?? 0, 6)
        })
      )
      model.dispose()
    })
  }

  it("every intermediate stage is read through the final LayerNorm (checked in float64 from the cached residuals)", () => {
    // Skipping ln_f on the stages before the last would leave the final stage right and every
    // other stage wrong; the residual scale and ln_f's random gain and bias make the difference large.
    const config = tinyConfig({ vocabSize: 17, context: 10, layers: 3 })
    const values = randomValues(config, 11)
    const model = gptFromValues(config, values)
    const ids = [3, 1, 4, 1, 5, 9, 2, 6]
    const T = ids.length
    const d = config.dModel
    const V = config.vocabSize
    const lens = logitLens(model, ids, 3)
    const input = idsTensor([ids])
    const cache = cacheActivations(model, input, lens.hooks)
    input.dispose()
    const gamma = values.get("ln_f.weight")!.data
    const beta = values.get("ln_f.bias")!.data
    const wte = values.get("wte.weight")!.data // tied: W_U = wte [V, d]
    let largestEntropyGap = 0
    lens.hooks.forEach((hook, s) => {
      const x = cache.get(hook).dataSync() // [1, T, d]
      for (let t = 0; t < T; t++) {
        const row = Array.from(x.subarray(t * d, (t + 1) * d))
        const mean = row.reduce((a, b) => a + b, 0) / d
        const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / d
        const normed = row.map((v, i) => ((v - mean) / Math.sqrt(variance + config.lnEps)) * gamma[i] + beta[i])
        const logits = Array.from({ length: V }, (_, v) => normed.reduce((a, h, i) => a + h * wte[v * d + i], 0))
        const p = softmax64(logits)
        const entropy = -p.reduce((a, q) => a + q * Math.log(q), 0)
        const cell = lens.cells[s][t]
        expect(cell.entropy, `${lens.stages[s]} position ${t}`).toBeCloseTo(entropy, 4)
        expect(cell.top[0].token, `${lens.stages[s]} position ${t}`).toBe(p.indexOf(Math.max(...p)))
        expect(cell.top[0].prob).toBeCloseTo(Math.max(...p), 5)
        if (t < T - 1) expect(cell.next!.prob).toBeCloseTo(p[ids[t + 1]], 5)
        // The same stage decoded without the LayerNorm, to show the check has teeth.
        const raw = softmax64(Array.from({ length: V }, (_, v) => row.reduce((a, h, i) => a + h * wte[v * d + i], 0)))
        largestEntropyGap = Math.max(largestEntropyGap, Math.abs(entropy + raw.reduce((a, q) => a + q * Math.log(q), 0)))
      }
    })
    cache.dispose()
    expect(largestEntropyGap).toBeGreaterThan(0.05)
    model.dispose()
  })

  it("on the circuit: uniform before the induction layer, the repeat predicted after it", () => {
    const model = circuitModel()
    const text = repeatedText(8)
    const lens = logitLens(model, text, 3)
    for (const stage of [0, 1]) {
      for (const cell of lens.cells[stage]) {
        expect(cell.entropy).toBeCloseTo(Math.log(V), 4)
        expect(cell.top[0].prob).toBeCloseTo(1 / V, 5)
      }
    }
    // Second-half positions 9..15 predict tokens 2..8 with certainty.
    for (let t = 9; t < 16; t++) {
      const cell = lens.cells[2][t]
      expect(cell.next!.rank).toBe(0)
      expect(cell.next!.prob).toBeGreaterThan(0.999)
      expect(cell.top[0].token).toBe(text[t + 1])
      // KL(final ‖ uniform) = log V − H(final) ≈ log V.
      expect(lens.cells[0][t].klToFinal).toBeCloseTo(Math.log(V) - cell.entropy, 3)
    }
    model.dispose()
  })
})
