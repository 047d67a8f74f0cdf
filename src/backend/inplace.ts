// In-place writes into a preallocated tensor, for the KV cache. tfjs tensors are immutable, so a
// cache built from them would copy its whole contents on every decoded token (concat). On the
// wasm, cpu and native backends a tensor's values live in memory this process owns (the wasm heap,
// a JS typed array), and the cache owns its buffers outright, so we write the new rows where they
// belong. Other backends report `false` and the cache falls back to building a new buffer.
import * as tf from "@tensorflow/tfjs"

interface WasmLike {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array
}
interface CpuLike {
  data: { get(dataId: object): { values?: unknown } | undefined }
}

/** The float32 storage behind `t` on the current backend, or undefined where it is not reachable. */
const storage = (t: tf.Tensor): Float32Array | undefined => {
  if (t.dtype !== "float32") return undefined
  const name = tf.getBackend()
  const backend = tf.engine().findBackend(name) as unknown
  if (name === "wasm") return (backend as WasmLike).typedArrayFromHeap({ dataId: t.dataId, shape: t.shape, dtype: t.dtype })
  if (name === "cpu" || name === "native") {
    const values = (backend as CpuLike).data.get(t.dataId)?.values
    return values instanceof Float32Array ? values : undefined
  }
  return undefined
}

/** True when `writeRows` and `shiftRows` work in place on the current backend. */
export const supportsInPlace = (): boolean => ["wasm", "cpu", "native"].includes(tf.getBackend())

/**
 * buffer [B, H, capacity, d] ← update [B, H, T, d] at rows start..start+T−1, in place.
 * Returns false (writing nothing) when the backend does not allow it.
 */
export const writeRows = (buffer: tf.Tensor, update: tf.Tensor, start: number): boolean => {
  const [B, H, capacity, d] = buffer.shape
  const T = update.shape[2]!
  if (start + T > capacity!) throw new Error(`cache write of ${T} rows at ${start} exceeds capacity ${capacity}`)
  const src = storage(update)
  const dst = storage(buffer) // taken second: reading `update` cannot move the heap, but keep views fresh
  if (src === undefined || dst === undefined) return false
  const slab = capacity! * d!
  for (let bh = 0; bh < B! * H!; bh++) dst.set(src.subarray(bh * T * d!, (bh + 1) * T * d!), bh * slab + start * d!)
  return true
}

/** Drops the first `count` rows of every [b, h] slab, moving the rest to the front, in place. */
export const shiftRows = (buffer: tf.Tensor, count: number): boolean => {
  const [B, H, capacity, d] = buffer.shape
  const data = storage(buffer)
  if (data === undefined) return false
  const slab = capacity! * d!
  for (let bh = 0; bh < B! * H!; bh++) data.copyWithin(bh * slab, bh * slab + count * d!, (bh + 1) * slab)
  return true
}
