// The largest single tensor the model may build, per backend. WebGPU silently computes wrong
// numbers for a buffer past the device's storage-binding limit, and the wasm heap is one 4 GB
// memory; the vocabulary projection ([rows, V] logits) is the tensor that grows past both, so the
// model sizes its chunks from this number (see src/model/loss.ts).
//
// The limit follows whichever backend is active *now* (tf.getBackend()), not the one selected at
// start: tests and tools switch between cpu and webgpu with tf.setBackend, and a stale limit
// would either chunk needlessly or let a too-large tensor through.
import * as tf from "@tensorflow/tfjs"

/** A default ceiling for one [rows, V] tensor where the backend imposes none: 512 MiB. */
export const DEFAULT_MAX_TENSOR_BYTES = 512 * 1024 * 1024

/** Per tfjs backend name, how to read its device's binding limit (bytes). */
const bindingLimits = new Map<string, () => number | undefined>()

/**
 * Called by a backend whose device caps one buffer binding (WebGPU's maxStorageBufferBindingSize),
 * with a function that reads the live device's limit.
 */
export const registerBindingLimit = (backendName: string, read: () => number | undefined): void => {
  bindingLimits.set(backendName, read)
}

/**
 * The current backend's largest bindable buffer in bytes: WebGPU's maxStorageBufferBindingSize
 * (128 MiB on lavapipe, 2-4 GiB on desktop GPUs), or undefined where the backend has no such
 * limit (cpu, wasm, tensorflow). A tensor larger than this cannot be an input or output of any
 * kernel on that backend; src/backend/webgpu-fixes.ts turns an attempt into an error.
 */
export const maxBindingBytes = (): number | undefined => {
  const name = tf.getBackend()
  return name === undefined ? undefined : bindingLimits.get(name)?.()
}

/** The ceiling for one tensor on the current backend. */
export const maxTensorBytes = (): number => Math.min(DEFAULT_MAX_TENSOR_BYTES, maxBindingBytes() ?? Number.POSITIVE_INFINITY)
