// One AdamW step (Loshchilov & Hutter), written as PyTorch's torch.optim.AdamW computes it:
//   m = β₁m + (1−β₁)g          v = β₂v + (1−β₂)g²
//   m̂ = m / (1−β₁ᵗ)            v̂ = v / (1−β₂ᵗ)
//   θ ← θ·(1 − lr·λ) − lr · m̂ / (√v̂ + ε)
// Weight decay is decoupled: it shrinks θ directly instead of being added to the gradient, and
// only matrices are decayed (biases and LayerNorm parameters are not).
import { type Params, isEmbedding, zerosLike } from "./model.ts"

export interface AdamWOptions {
  readonly lr: number
  readonly beta1: number
  readonly beta2: number
  readonly eps: number
  readonly weightDecay: number
  /** Decay wte/wpe too (they are matrices); GPT-2-style recipes differ on this. */
  readonly decayEmbeddings: boolean
}

export const defaultAdamW: AdamWOptions = {
  lr: 1e-2,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.1,
  decayEmbeddings: true
}

export interface AdamWState {
  readonly step: number
  readonly m: Params
  readonly v: Params
}

export interface AdamWResult {
  readonly step: number
  readonly biasCorrection1: number // 1 − β₁ᵗ
  readonly biasCorrection2: number // 1 − β₂ᵗ
  readonly m: Params
  readonly v: Params
  readonly mHat: Params
  readonly vHat: Params
  /** the λ applied to each parameter: weightDecay or 0 */
  readonly decay: Record<string, number>
  /** θ_new − θ_old */
  readonly delta: Params
  readonly params: Params
}

export const isDecayed = (name: string, shape: ReadonlyArray<number>, o: AdamWOptions): boolean =>
  shape.length === 2 && (o.decayEmbeddings || !isEmbedding(name))

export const initialAdamWState = (params: Params): AdamWState => ({ step: 0, m: zerosLike(params), v: zerosLike(params) })

export const adamwStep = (
  params: Params,
  grads: Params,
  o: AdamWOptions = defaultAdamW,
  state: AdamWState = initialAdamWState(params)
): AdamWResult => {
  const step = state.step + 1
  const biasCorrection1 = 1 - o.beta1 ** step
  const biasCorrection2 = 1 - o.beta2 ** step
  const m = zerosLike(params)
  const v = zerosLike(params)
  const mHat = zerosLike(params)
  const vHat = zerosLike(params)
  const delta = zerosLike(params)
  const next = zerosLike(params)
  const decay: Record<string, number> = {}
  for (const [name, theta] of Object.entries(params)) {
    const lambda = isDecayed(name, theta.shape, o) ? o.weightDecay : 0
    decay[name] = lambda
    const g = grads[name].data
    for (let i = 0; i < theta.data.length; i++) {
      m[name].data[i] = o.beta1 * state.m[name].data[i] + (1 - o.beta1) * g[i]
      v[name].data[i] = o.beta2 * state.v[name].data[i] + (1 - o.beta2) * g[i] * g[i]
      mHat[name].data[i] = m[name].data[i] / biasCorrection1
      vHat[name].data[i] = v[name].data[i] / biasCorrection2
      next[name].data[i] =
        theta.data[i] * (1 - o.lr * lambda) - (o.lr * mHat[name].data[i]) / (Math.sqrt(vHat[name].data[i]) + o.eps)
      delta[name].data[i] = next[name].data[i] - theta.data[i]
    }
  }
  return { step, biasCorrection1, biasCorrection2, m, v, mHat, vHat, decay, delta, params: next }
}
