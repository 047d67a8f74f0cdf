// Causal multi-head self-attention. Each head asks (q) and offers (k, v) a d_head-sized vector
// per position; position i mixes the values of positions j ≤ i weighted by softmax(q_i·k_j/√d_head).
// Dividing by √d_head keeps the scores' variance near 1 at init, so softmax starts soft rather
// than one-hot. A KV cache keeps past keys and values so decoding one new token costs O(T).
import * as tf from "@tensorflow/tfjs"
import { blockHookNames, hookPoint, type HookFn } from "./hooks.ts"
import { linear } from "./layers.ts"
import { alibiSlopes, applyRope, causalBias, ropeTables } from "./positions.ts"
import type { ModelConfig } from "./config.ts"

/** Past keys and values per layer, [B, H, T_past, d_head] each; `length` = T_past. */
export interface KVCache {
  length: number
  layers: Array<{ k: tf.Tensor4D; v: tf.Tensor4D } | undefined>
}

export const emptyCache = (layers: number): KVCache => ({ length: 0, layers: Array.from({ length: layers }, () => undefined) })

export const disposeCache = (cache: KVCache) => {
  for (const entry of cache.layers) if (entry) tf.dispose([entry.k, entry.v])
  cache.layers = cache.layers.map(() => undefined)
  cache.length = 0
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
  /** Absolute position of the first query (the cache length before this call). */
  readonly offset: number
  readonly cache?: KVCache
  readonly hooks?: HookFn
  readonly dropout?: (x: tf.Tensor) => tf.Tensor
}

export const attention = (x: tf.Tensor3D, w: AttentionWeights, ctx: AttentionContext): tf.Tensor3D => {
  const { config, layer, offset, cache, hooks } = ctx
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
  if (config.position === "rope") {
    const { cos, sin } = ropeTables(offset, T, dh)
    q = applyRope(q, cos, sin) as tf.Tensor4D
    k = applyRope(k, cos, sin) as tf.Tensor4D
  }
  let keys = k
  let values = v
  if (cache !== undefined) {
    const past = cache.layers[layer]
    if (past !== undefined) {
      keys = tf.concat([past.k, k], 2)
      values = tf.concat([past.v, v], 2)
      tf.dispose([past.k, past.v])
    }
    cache.layers[layer] = { k: tf.keep(keys), v: tf.keep(values) }
  }
  const Tk = keys.shape[2]
  const bias = causalBias(offset, T, Tk, config.position === "alibi" ? alibiSlopes(H) : [])
  const scores = tf.add(tf.mul(tf.matMul(q, keys, false, true), 1 / Math.sqrt(dh)), bias) // [B, H, T, Tk]
  const pattern = hookPoint(hooks, names.pattern, tf.softmax(hookPoint(hooks, names.scores, scores)))
  const attended = ctx.dropout ? ctx.dropout(pattern) : pattern
  const z = hookPoint(hooks, names.z, tf.transpose(tf.matMul(attended, values), [0, 2, 1, 3])) // [B, T, H, dh]
  return linear(tf.reshape(z, [B, T, d]), w.cProjW, w.cProjB) as tf.Tensor3D
}
