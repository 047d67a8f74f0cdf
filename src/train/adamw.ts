// AdamW (Loshchilov & Hutter) with PyTorch's update order, so our numbers match torch.optim.AdamW:
//   θ ← θ·(1 − lr·λ)                          decoupled weight decay (only where λ applies)
//   m ← β₁m + (1 − β₁)g,   v ← β₂v + (1 − β₂)g²
//   m̂ = m/(1 − β₁ᵗ),      v̂ = v/(1 − β₂ᵗ)
//   θ ← θ − lr·m̂/(√v̂ + ε)
// Decay is "decoupled": it shrinks weights directly instead of adding λθ to the gradient, where
// Adam's per-coordinate scaling would weaken it for parameters with large gradients.
import * as tf from "@tensorflow/tfjs"
import { fusedOps } from "../backend/fused.ts"

export interface AdamWConfig {
  readonly beta1: number
  readonly beta2: number
  readonly eps: number
  readonly weightDecay: number
  /** Whether the token/position embeddings decay (nanoGPT: yes). Biases and norms never do. */
  readonly decayEmbeddings: boolean
}

export const defaultAdamW: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, decayEmbeddings: true }

/** Which parameters decay: matrices yes; biases and LayerNorm gains no; embeddings by choice. */
export const decays = (name: string, rank: number, config: AdamWConfig): boolean => {
  if (rank < 2) return false
  if (name === "wte.weight" || name === "wpe.weight") return config.decayEmbeddings
  return true
}

export interface AdamWState {
  /** Number of updates applied so far (t of the bias correction is step + 1). */
  step: number
  readonly m: Map<string, tf.Variable>
  readonly v: Map<string, tf.Variable>
}

export const initAdamW = (params: ReadonlyMap<string, tf.Variable>): AdamWState => {
  const zeros = () => new Map([...params].map(([n, p]) => [n, tf.variable(tf.zerosLike(p), false)] as const))
  return { step: 0, m: zeros(), v: zeros() }
}

/**
 * Applies one update in place. Gradients are multiplied by `gradScale` (averaging over
 * micro-batches, clipping) as they are read; a backend with a fused AdamW updates every
 * parameter in one pass over memory.
 */
export const adamwUpdate = (
  params: ReadonlyMap<string, tf.Variable>,
  grads: ReadonlyMap<string, tf.Tensor>,
  state: AdamWState,
  lr: number,
  config: AdamWConfig,
  gradScale = 1
): void => {
  const t = state.step + 1
  const c1 = 1 - Math.pow(config.beta1, t)
  const c2 = 1 - Math.pow(config.beta2, t)
  const fused = fusedOps()
  if (fused !== undefined) {
    const items = [...params].flatMap(([name, param]) => {
      const grad = grads.get(name)
      return grad === undefined ? [] : [{ param, grad, m: state.m.get(name)!, v: state.v.get(name)!, decay: decays(name, param.rank, config) && config.weightDecay > 0 }]
    })
    fused.adamw(items, { lr, beta1: config.beta1, beta2: config.beta2, eps: config.eps, weightDecay: config.weightDecay, c1, c2, gradScale })
    state.step = t
    return
  }
  for (const [name, p] of params) {
    const unscaled = grads.get(name)
    if (unscaled === undefined) continue
    tf.tidy(() => {
      const g = gradScale === 1 ? unscaled : tf.mul(unscaled, gradScale)
      const m = state.m.get(name)!
      const v = state.v.get(name)!
      const m1 = tf.add(tf.mul(m, config.beta1), tf.mul(g, 1 - config.beta1))
      const v1 = tf.add(tf.mul(v, config.beta2), tf.mul(tf.square(g), 1 - config.beta2))
      const decayed = decays(name, p.rank, config) && config.weightDecay > 0 ? tf.mul(p, 1 - lr * config.weightDecay) : p
      const update = tf.div(tf.div(m1, c1), tf.add(tf.sqrt(tf.div(v1, c2)), config.eps))
      m.assign(m1)
      v.assign(v1)
      p.assign(tf.sub(decayed, tf.mul(update, lr)))
    })
  }
  state.step = t
}

export const disposeAdamW = (state: AdamWState) => {
  for (const x of [...state.m.values(), ...state.v.values()]) x.dispose()
}
