// Position information, three ways. Learned: a table of vectors added to the token embeddings
// (GPT-2). RoPE: rotate each (q, k) pair of channels by an angle proportional to the position, so
// q·k depends only on the distance between them. ALiBi: no vectors at all; each head subtracts
// slope·distance from its attention scores, a linear recency bias with one slope per head.
import * as tf from "@tensorflow/tfjs"

/**
 * cos and sin tables for the given absolute positions, one row of positions per batch row
 * ([B, 1, T, d_head]; [1, 1, T, d_head] when every row has the same positions). Channel pair
 * (i, i + d/2) rotates at frequency θ_i = 10000^(−2i/d) (the GPT-NeoX "rotate half" layout).
 */
export const ropeTables = (positions: ReadonlyArray<ReadonlyArray<number>>, dHead: number): { cos: tf.Tensor4D; sin: tf.Tensor4D } => {
  const half = dHead / 2
  const rows = positions.every((r) => r.join() === positions[0].join()) ? [positions[0]] : positions
  const T = rows[0].length
  const cos = new Float32Array(rows.length * T * dHead)
  const sin = new Float32Array(rows.length * T * dHead)
  rows.forEach((row, b) =>
    row.forEach((position, t) => {
      const base = (b * T + t) * dHead
      for (let i = 0; i < half; i++) {
        const angle = position * Math.pow(10000, (-2 * i) / dHead)
        cos[base + i] = cos[base + i + half] = Math.cos(angle)
        sin[base + i] = sin[base + i + half] = Math.sin(angle)
      }
    })
  )
  const shape: [number, number, number, number] = [rows.length, 1, T, dHead]
  return { cos: tf.tensor4d(cos, shape), sin: tf.tensor4d(sin, shape) }
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

/** Where the queries and keys of one forward pass sit, for masking. */
export interface AttentionLayout {
  /** Queries (new tokens) per row. */
  readonly queries: number
  /** Key slots: the cache's capacity, or the number of queries without a cache. */
  readonly keys: number
  /** Key slot of the first query (the number of cached entries before this pass). */
  readonly queryStart: number
  /** Per batch row, the first key slot holding a real token (earlier slots are left padding); undefined: none. */
  readonly firstValidKey: ReadonlyArray<number> | undefined
  /** Sliding-window attention: a query sees at most this many keys, itself included. */
  readonly window?: number
}

/**
 * Additive attention bias [B|1, H|1, T, Tk]: query t (key slot queryStart + t) may see key j when
 * j ≤ queryStart + t and j is not padding; visible keys get −slope_h·(distance), hidden ones −1e9.
 * With `slopes` empty (no ALiBi) it is the plain causal mask. Built once per forward pass and
 * shared by every layer.
 */
export const attentionBias = (layout: AttentionLayout, slopes: readonly number[]): tf.Tensor4D => {
  const { queries: T, keys: Tk, queryStart } = layout
  const pads = layout.firstValidKey ?? [0]
  const B = pads.length
  const H = Math.max(1, slopes.length)
  const bias = new Float32Array(B * H * T * Tk)
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const slope = slopes.length === 0 ? 0 : slopes[h]
      for (let t = 0; t < T; t++) {
        const i = queryStart + t
        const row = ((b * H + h) * T + t) * Tk
        const oldest = Math.max(pads[b], layout.window === undefined ? 0 : i - layout.window + 1)
        for (let j = 0; j < Tk; j++) bias[row + j] = j <= i && j >= oldest ? -slope * (i - j) : -1e9
      }
    }
  }
  return tf.tensor4d(bias, [B, H, T, Tk])
}
