// The largest single tensor the model may build, per backend. WebGPU silently computes wrong
// numbers for a buffer past the device's storage-binding limit, and the wasm heap is one 4 GB
// memory; the vocabulary projection ([rows, V] logits) is the tensor that grows past both, so the
// model sizes its chunks from this number (see src/model/loss.ts).

/** A default ceiling for one [rows, V] tensor where the backend imposes none: 512 MiB. */
export const DEFAULT_MAX_TENSOR_BYTES = 512 * 1024 * 1024

let bindingLimit: number | undefined

/** Called by a backend whose device caps one buffer binding (WebGPU's maxStorageBufferBindingSize). */
export const registerBindingLimit = (bytes: number | undefined): void => {
  bindingLimit = bytes
}

/** The ceiling for one tensor on the current backend. */
export const maxTensorBytes = (): number => Math.min(DEFAULT_MAX_TENSOR_BYTES, bindingLimit ?? Number.POSITIVE_INFINITY)
