// Position information, three ways. Learned: a table of vectors added to the token embeddings
// (GPT-2). RoPE: rotate each (q, k) pair of channels by an angle proportional to the position, so
// q·k depends only on the distance between them. ALiBi: no vectors at all; each head subtracts
// slope·distance from its attention scores, a linear recency bias with one slope per head.
import * as tf from "@tensorflow/tfjs"

/**
 * cos and sin tables [T, d_head] for positions offset..offset+T−1. Channel pair (i, i + d/2)
 * rotates at frequency θ_i = 10000^(−2i/d) (the GPT-NeoX "rotate half" layout).
 */
export const ropeTables = (offset: number, length: number, dHead: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } => {
  const half = dHead / 2
  const cos = new Float32Array(length * dHead)
  const sin = new Float32Array(length * dHead)
  for (let t = 0; t < length; t++) {
    for (let i = 0; i < half; i++) {
      const angle = (offset + t) * Math.pow(10000, (-2 * i) / dHead)
      const c = Math.cos(angle)
      const s = Math.sin(angle)
      cos[t * dHead + i] = c
      cos[t * dHead + i + half] = c
      sin[t * dHead + i] = s
      sin[t * dHead + i + half] = s
    }
  }
  return { cos: tf.tensor2d(cos, [length, dHead]), sin: tf.tensor2d(sin, [length, dHead]) }
}

/** x [B, H, T, d_head] rotated: x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁]. */
export const applyRope = (x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor =>
  tf.tidy(() => {
    const half = x.shape[3]! / 2
    const [x1, x2] = tf.split(x, [half, half], 3)
    const rotated = tf.concat([tf.neg(x2), x1], 3)
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin))
  })

/**
 * Per-head ALiBi slopes: for n heads a power of two, 2^(−8/n), 2^(−16/n), ...; otherwise the
 * slopes of the nearest lower power of two, then every other slope of the next one (Press et al.).
 */
export const alibiSlopes = (heads: number): number[] => {
  const powerOfTwo = (n: number) => Array.from({ length: n }, (_, i) => Math.pow(2, (-8 * (i + 1)) / n))
  if (Math.log2(heads) % 1 === 0) return powerOfTwo(heads)
  const lower = Math.pow(2, Math.floor(Math.log2(heads)))
  const extra = powerOfTwo(2 * lower).filter((_, i) => i % 2 === 0)
  return [...powerOfTwo(lower), ...extra.slice(0, heads - lower)]
}

/**
 * Additive attention bias [1, H, T, Tk] for queries at positions offset..offset+T−1 over keys
 * 0..Tk−1: −slope_h·(i − j) where key j is visible, −1e9 where it lies in the future. With
 * `slopes` empty it is the plain causal mask [1, 1, T, Tk].
 */
export const causalBias = (offset: number, length: number, keys: number, slopes: number[]): tf.Tensor4D => {
  const heads = Math.max(1, slopes.length)
  const bias = new Float32Array(heads * length * keys)
  for (let h = 0; h < heads; h++) {
    const slope = slopes.length === 0 ? 0 : slopes[h]
    for (let t = 0; t < length; t++) {
      const i = offset + t
      const row = (h * length + t) * keys
      for (let j = 0; j < keys; j++) bias[row + j] = j <= i ? -slope * (i - j) : -1e9
    }
  }
  return tf.tensor4d(bias, [1, heads, length, keys])
}
