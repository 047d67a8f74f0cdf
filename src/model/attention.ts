// Causal multi-head self-attention. Each head asks (q) and offers (k, v) a d_head-sized vector
// per position; position i mixes the values of positions j ≤ i weighted by softmax(q_i·k_j/√d_head).
// Dividing by √d_head keeps the scores' variance near 1 at init, so softmax starts soft rather
// than one-hot. A KV cache keeps past keys and values so decoding one new token costs O(T).
import * as tf from "@tensorflow/tfjs"
import { fusedOps } from "../backend/fused.ts"
import { shiftRows, writeRows } from "../backend/inplace.ts"
import { blockHookNames, hookPoint, type HookFn } from "./hooks.ts"
import { linear } from "./layers.ts"
import { applyRope } from "./positions.ts"
import type { ModelConfig } from "./config.ts"

/**
 * Past keys and values, preallocated per layer as [B, H, capacity, d_head] and filled in place
 * (see src/backend/inplace.ts), so a decoded token writes one row instead of copying the cache.
 * Slots past `length` hold nothing yet; the attention mask hides them as "future" positions.
 * Columns count every token position fed so far; `dropped` of them have slid out of the window
 * (RoPE and ALiBi depend only on distances, so the oldest entries can simply be dropped).
 */
export class KVCache {
  /** Entries held: slots 0..length−1 are filled. */
  length = 0
  /** Token columns fed so far (the column index of the next token). */
  columns = 0
  /** Columns that have slid out of the window. */
  dropped = 0
  readonly layers: Array<{ k: tf.Tensor4D; v: tf.Tensor4D } | undefined>
  /** Per batch row, how many leading columns are left padding. */
  readonly pads: number[]

  constructor(
    layerCount: number,
    readonly batch: number,
    readonly capacity: number,
    pads?: readonly number[],
    /** Write in place where the backend allows (default); false forces the copying fallback. */
    private readonly inPlace = true
  ) {
    this.layers = Array.from({ length: layerCount }, () => undefined)
    this.pads = pads ? [...pads] : Array.from({ length: batch }, () => 0)
    if (this.pads.length !== batch) throw new Error(`cache for ${batch} rows given ${this.pads.length} padding counts`)
  }

  /** Stores k, v [B, H, T, dh] at slot `length` of `layer`; returns the full buffers to attend over. */
  append(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): { keys: tf.Tensor4D; values: tf.Tensor4D } {
    const [B, H, T, dh] = k.shape
    if (this.length + T > this.capacity) throw new Error(`KV cache overflow: ${this.length} + ${T} tokens exceed its capacity of ${this.capacity}`)
    let entry = this.layers[layer]
    if (entry === undefined) {
      entry = { k: tf.keep(tf.zeros([B, H, this.capacity, dh])), v: tf.keep(tf.zeros([B, H, this.capacity, dh])) }
      this.layers[layer] = entry
    }
    for (const key of ["k", "v"] as const) {
      const update = key === "k" ? k : v
      if (!(this.inPlace && writeRows(entry[key], update, this.length))) {
        // Backends whose memory we cannot reach: build the new buffer (one copy per write).
        const old = entry[key]
        const rest = this.capacity - this.length - T
        const parts = [tf.slice(old, [0, 0, 0, 0], [B, H, this.length, dh]), update]
        if (rest > 0) parts.push(tf.slice(old, [0, 0, this.length + T, 0], [B, H, rest, dh]))
        entry[key] = tf.keep(tf.concat(parts, 2))
        old.dispose()
      }
    }
    return { keys: entry.k, values: entry.v }
  }

  /** Records that `T` new columns went through every layer. */
  advance(T: number): void {
    this.length += T
    this.columns += T
  }

  /** Drops the oldest `count` entries of every layer (a sliding window for RoPE and ALiBi). */
  shift(count: number): void {
    if (count <= 0) return
    if (count > this.length) throw new Error(`cannot drop ${count} of ${this.length} cached entries`)
    for (const entry of this.layers) {
      if (entry === undefined) continue
      for (const key of ["k", "v"] as const) {
        if (!(this.inPlace && shiftRows(entry[key], count))) {
          const old = entry[key]
          const [B, H, C, dh] = old.shape
          entry[key] = tf.keep(tf.concat([tf.slice(old, [0, 0, count, 0], [B, H, C - count, dh]), tf.zeros([B, H, count, dh])], 2))
          old.dispose()
        }
      }
    }
    this.length -= count
    this.dropped += count
  }

  dispose(): void {
    for (const entry of this.layers) if (entry) tf.dispose([entry.k, entry.v])
    this.layers.fill(undefined)
    this.length = 0
  }
}

export interface AttentionWeights {
  readonly cAttnW: tf.Tensor
  readonly cAttnB: tf.Tensor
  readonly cProjW: tf.Tensor
  readonly cProjB: tf.Tensor
}

export interface AttentionContext {
  readonly config: ModelConfig
  readonly layer: number
  /** Additive mask (and ALiBi) bias [B|1, H|1, T, Tk], shared by all layers. */
  readonly bias: tf.Tensor
  /** RoPE tables for the new tokens' positions. */
  readonly rope?: { readonly cos: tf.Tensor; readonly sin: tf.Tensor }
  readonly cache?: KVCache
  readonly hooks?: HookFn
  readonly dropout?: (x: tf.Tensor) => tf.Tensor
}

/** Whether a bias has the [B|1, H|1, T, Tk] layout the fused attention reads. */
const biasFits = (bias: tf.Tensor, B: number, H: number, T: number, Tk: number) =>
  bias.rank === 4 && (bias.shape[0] === 1 || bias.shape[0] === B) && (bias.shape[1] === 1 || bias.shape[1] === H) && bias.shape[2] === T && bias.shape[3] === Tk

export const attention = (x: tf.Tensor3D, w: AttentionWeights, ctx: AttentionContext): tf.Tensor3D => {
  const { config, layer, cache, hooks } = ctx
  const names = blockHookNames(layer)
  const [B, T, d] = x.shape
  const H = config.heads
  const dh = d / H
  const qkv = linear(x, w.cAttnW, w.cAttnB) // [B, T, 3d]
  const [q0, k0, v0] = tf.split(qkv, 3, 2).map((t) => tf.reshape(t, [B, T, H, dh])) // [B, T, H, dh]
  const toHeads = (t: tf.Tensor) => tf.transpose(t, [0, 2, 1, 3]) as tf.Tensor4D // [B, H, T, dh]
  let q = toHeads(hookPoint(hooks, names.q, q0))
  let k = toHeads(hookPoint(hooks, names.k, k0))
  const v = toHeads(hookPoint(hooks, names.v, v0))
  if (ctx.rope !== undefined) {
    q = applyRope(q, ctx.rope.cos, ctx.rope.sin) as tf.Tensor4D
    k = applyRope(k, ctx.rope.cos, ctx.rope.sin) as tf.Tensor4D
  }
  const { keys, values } = cache !== undefined ? cache.append(layer, k, v) : { keys: k, values: v }
  const fused = fusedOps()
  let heads: tf.Tensor // [B, H, T, dh]
  if (fused?.attention !== undefined && hooks === undefined && ctx.dropout === undefined && biasFits(ctx.bias, B, H, T, keys.shape[2])) {
    // The same formula in one pass per head, when nothing needs to see the scores or the pattern.
    heads = fused.attention(q, keys as tf.Tensor4D, values as tf.Tensor4D, ctx.bias, 1 / Math.sqrt(dh))
  } else {
    // (q/√dh)·kᵀ: scaling q costs T·dh multiplications where scaling the scores costs T·Tk.
    const scores = tf.add(tf.matMul(tf.mul(q, 1 / Math.sqrt(dh)), keys, false, true), ctx.bias) // [B, H, T, Tk]
    const softmax = fused?.softmax ?? tf.softmax
    const pattern = hookPoint(hooks, names.pattern, softmax(hookPoint(hooks, names.scores, scores)))
    const attended = ctx.dropout ? ctx.dropout(pattern) : pattern
    heads = tf.matMul(attended, values)
  }
  const z = hookPoint(hooks, names.z, tf.transpose(heads, [0, 2, 1, 3])) // [B, T, H, dh]
  return linear(tf.reshape(z, [B, T, d]), w.cProjW, w.cProjB) as tf.Tensor3D
}
