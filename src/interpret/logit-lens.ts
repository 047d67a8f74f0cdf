// Why this file exists: the logit lens (nostalgebraist, 2020) asks "what would the model say if it
// had to stop here?". The residual stream x_ℓ after layer ℓ lives in the same space as the final
// one, so we decode it exactly as the model decodes its last layer:
//     p_ℓ = softmax( LN_f(x_ℓ) · W_Uᵀ )
// and watch the prediction form layer by layer. At the last layer this *is* the model's output.
//
// Per stage (the embeddings, then after each block) and position we report the top-k tokens,
// the entropy H(p_ℓ) = −Σ p log p (nats), the rank and probability of the token that actually
// comes next, and KL(p_final ‖ p_ℓ) = Σ p_final (log p_final − log p_ℓ): how many nats the
// early read-out is from the final answer (0 at the last stage).
import * as tf from "@tensorflow/tfjs"
import type { GPT } from "../model/gpt.ts"
import { blockHookNames } from "../model/hooks.ts"
import { layerNorm } from "../model/layers.ts"
import { cacheActivations, idsTensor } from "./hooks.ts"

export interface LensPrediction {
  readonly token: number
  readonly prob: number
}

export interface LensCell {
  /** The k most likely tokens, most likely first. */
  readonly top: ReadonlyArray<LensPrediction>
  /** Entropy of the read-out distribution, in nats. */
  readonly entropy: number
  /** KL(final ‖ this stage), in nats. */
  readonly klToFinal: number
  /** The token at the next position: its rank (0 = top-1) and probability. Absent at the last position. */
  readonly next?: { readonly token: number; readonly rank: number; readonly prob: number }
}

export interface LogitLensResult {
  readonly tokens: ReadonlyArray<number>
  /** "embed", then "L0" … "L{n−1}" (the residual stream after each block). */
  readonly stages: ReadonlyArray<string>
  /** The hook each stage reads. */
  readonly hooks: ReadonlyArray<string>
  /** cells[stage][position] */
  readonly cells: ReadonlyArray<ReadonlyArray<LensCell>>
}

/** The residual-stream hook points the lens reads: before block 0, then after every block. */
export const lensStages = (layers: number): { stages: string[]; hooks: string[] } => ({
  stages: ["embed", ...Array.from({ length: layers }, (_, l) => `L${l}`)],
  hooks: [blockHookNames(0).residPre, ...Array.from({ length: layers }, (_, l) => blockHookNames(l).residPost)]
})

/** log softmax(LN_f(x) · W_Uᵀ) for a residual stream x [T, d] → [T, V]. */
export const decodeResidual = (model: GPT, x: tf.Tensor2D): tf.Tensor2D =>
  tf.tidy(() => {
    const gamma = model.params.get("ln_f.weight")!
    const beta = model.params.get("ln_f.bias")!
    const normalised = layerNorm(x, gamma, beta, model.config.lnEps) as tf.Tensor2D
    return tf.logSoftmax(model.unembed(normalised)) as tf.Tensor2D
  })

/** Positions decoded at once: bounds the [rows, V] temporaries (GPT-2: 128 × 50,257 floats ≈ 26 MB each). */
const POSITIONS_PER_CHUNK = 128

/** Runs the lens on one prompt (ids already validated). */
export const logitLens = (model: GPT, ids: ReadonlyArray<number>, topK = 5, chunk = POSITIONS_PER_CHUNK): LogitLensResult => {
  const T = ids.length
  const V = model.config.vocabSize
  const d = model.config.dModel
  const k = Math.max(1, Math.min(topK, V))
  const { stages, hooks } = lensStages(model.config.layers)
  const input = idsTensor([ids])
  const cache = cacheActivations(model, input, hooks)
  input.dispose()
  const cells: LensCell[][] = stages.map(() => [])
  try {
    for (let t0 = 0; t0 < T; t0 += chunk) {
      const n = Math.min(chunk, T - t0)
      const rows = (hook: string) => tf.slice(tf.reshape(cache.get(hook), [T, d]), [t0, 0], [n, d]) as tf.Tensor2D
      // The next token of each row (the last position has none: a placeholder, ignored).
      const next = Array.from({ length: n }, (_, i) => (t0 + i + 1 < T ? ids[t0 + i + 1] : 0))
      const nextFlat = tf.tensor1d(next.map((id, i) => i * V + id), "int32") // row i, column next[i] of [n, V]
      const finalLogp = tf.tidy(() => decodeResidual(model, rows(hooks[hooks.length - 1]))) // [n, V]
      const finalP = tf.exp(finalLogp)
      try {
        hooks.forEach((hook, s) => {
          const parts = tf.tidy(() => {
            const logp = decodeResidual(model, rows(hook)) // [n, V]
            const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1)) // [n]
            const kl = tf.sum(tf.mul(finalP, tf.sub(finalLogp, logp)), -1) // [n]
            const { values, indices } = tf.topk(logp, k) // [n, k]
            const nextLogp = tf.gather(tf.reshape(logp, [-1]), nextFlat) // [n]
            // rank = how many tokens the read-out prefers strictly over the true next token:
            // Σ_v step(log p_v − log p_next), where step(x) = 1 for x > 0, else 0
            const rank = tf.sum(tf.step(tf.sub(logp, tf.expandDims(nextLogp, 1))), -1)
            return [entropy, kl, values, indices, nextLogp, rank]
          })
          // Read outside tidy: tidy would walk returned typed arrays element by element.
          const [entropy, kl, values, indices, nextLogp, rank] = parts.map((t) => t.dataSync())
          tf.dispose(parts)
          for (let i = 0; i < n; i++) {
            const top: LensPrediction[] = []
            for (let j = 0; j < k; j++) top.push({ token: indices[i * k + j], prob: Math.exp(values[i * k + j]) })
            const cell: LensCell = { top, entropy: entropy[i], klToFinal: Math.max(0, kl[i]) }
            cells[s].push(t0 + i < T - 1 ? { ...cell, next: { token: next[i], rank: rank[i], prob: Math.exp(nextLogp[i]) } } : cell)
          }
        })
      } finally {
        tf.dispose([finalLogp, finalP, nextFlat])
      }
    }
  } finally {
    cache.dispose()
  }
  return { tokens: [...ids], stages, hooks, cells }
}
