// Autodiff checked against central finite differences, for every parameter tensor, every
// position encoding, tied and untied heads. float32 losses carry ~1e-7 relative rounding, so
// we probe each tensor along a random unit direction u (a strong signal: the directional
// derivative ∇L·u) with ε = 1e-2, and require agreement to 2% or 2e-4 absolute.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { windowLoss } from "../../src/train/trainer.ts"
import { Rng } from "../../src/rng/rng.ts"
import { tinyConfig, tinyModel, tokenWindows, useBackend } from "../helpers.ts"

const EPS = 1e-2

describe("gradients match central finite differences (cpu backend)", () => {
  beforeAll(() => useBackend("cpu"))

  for (const position of ["learned", "rope", "alibi"] as const) {
    for (const tied of [true, false]) {
      it(`${position} positions, ${tied ? "tied" : "untied"} head, erf=${position === "alibi"}`, () => {
        const config = tinyConfig({ position, tied, gelu: position === "alibi" ? "erf" : "tanh" })
        const model = tinyModel(config)
        const windows = tokenWindows(config, 2)
        const vars = [...model.params.values()]
        const { grads } = tf.variableGrads(() => windowLoss(model, windows), vars)
        const lossAt = () => tf.tidy(() => windowLoss(model, windows).dataSync()[0])
        let checked = 0
        for (const [name, p] of model.params) {
          const rng = Rng.seeded(11, name)
          const u = tf.tidy(() => {
            const raw = tf.tensor(Array.from({ length: p.size }, () => rng.normal()), p.shape)
            return tf.div(raw, tf.norm(raw))
          })
          const analytic = tf.tidy(() => tf.sum(tf.mul(grads[p.name], u)).dataSync()[0])
          const original = p.clone()
          p.assign(tf.tidy(() => tf.add(original, tf.mul(u, EPS))))
          const plus = lossAt()
          p.assign(tf.tidy(() => tf.sub(original, tf.mul(u, EPS))))
          const minus = lossAt()
          p.assign(original)
          const numeric = (plus - minus) / (2 * EPS)
          const tolerance = 2e-4 + 0.02 * Math.abs(numeric)
          expect(Math.abs(analytic - numeric), `${name}: autodiff ${analytic} vs finite difference ${numeric}`).toBeLessThan(tolerance)
          tf.dispose([u, original])
          checked++
        }
        expect(checked).toBe(model.params.size)
        tf.dispose(Object.values(grads))
        model.dispose()
      })
    }
  }
})
