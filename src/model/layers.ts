// The small pieces every block uses: LayerNorm, GELU and an affine map in GPT-2's Conv1D
// layout (y = x·W + b with W stored [in, out]). Linear maps flatten to 2-D first: a plain
// [rows, in]·[in, out] product is the fast path on every backend.
import * as tf from "@tensorflow/tfjs"
import { fusedOps } from "../backend/fused.ts"
import type { GeluVariant } from "./config.ts"

/**
 * LayerNorm over the last axis: (x − mean) / √(var + ε) · γ + β, variance biased (÷ d). A backend
 * with fused kernels computes the same formula in one pass (src/backend/fused.ts).
 */
export const layerNorm = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor =>
  fusedOps()?.layerNorm(x, gamma, beta, eps) ??
  tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true)
    const normalised = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)))
    return tf.add(tf.mul(normalised, gamma), beta)
  })

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI)

/**
 * GELU(x) = x·Φ(x). "erf" is exact; "tanh" is GPT-2's approximation
 * 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
 */
export const gelu = (x: tf.Tensor, variant: GeluVariant): tf.Tensor =>
  tf.tidy(() => {
    if (variant === "erf") return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1))
    const fused = fusedOps()
    if (fused !== undefined) return fused.geluTanh(x)
    const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), SQRT_2_OVER_PI) // x³ as products: pow is slow
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1))
  })

/** x [..., in] · W [in, out] + b [out] → [..., out]. */
export const linear = (x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor =>
  tf.tidy(() => {
    const inDim = x.shape[x.shape.length - 1]
    const outShape = [...x.shape.slice(0, -1), weight.shape[1]!] as number[]
    const y = tf.add(tf.matMul(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, weight as tf.Tensor2D), bias)
    return tf.reshape(y, outShape)
  })
