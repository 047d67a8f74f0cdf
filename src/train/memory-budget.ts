// Before a run starts, its training step's peak memory is estimated from the config and compared
// with what the backend can hold, so an oversized config is refused with one line naming the
// values to reduce, instead of dying later: the wasm heap is one 32-bit linear memory that stops
// near 4 GB ("memory access out of bounds"), the native and cpu backends live in RAM (the OOM
// killer ends the process without a word), and a WebGPU device caps each buffer.
import { Data } from "effect"
import { readFileSync } from "node:fs"
import { totalmem } from "node:os"
import { parameterCount, type ModelConfig } from "../model/config.ts"
import { chunkRows } from "../model/loss.ts"
import { maxTensorBytes } from "../backend/limits.ts"

export const WASM_HEAP_LIMIT_BYTES = 4_294_901_760
/** Keep headroom for fragmentation and the allocator's own growth steps. */
export const WASM_SAFE_FRACTION = 0.8

export class HeapTooSmall extends Data.TaggedError("HeapTooSmall")<{
  readonly backend: string
  readonly estimatedBytes: number
  readonly limitBytes: number
  readonly largest: string
  /** What holds the memory, e.g. "the wasm heap stops at" or "this machine has". */
  readonly where?: string
}> {
  override get message() {
    const gb = (b: number) => (b / 1e9).toFixed(2)
    const where = this.where ?? `the ${this.backend} heap stops at`
    return `a training step needs about ${gb(this.estimatedBytes)} GB but ${where} ${gb(this.limitBytes)} GB; the largest part is ${this.largest}: reduce train.batch (use train.accumulate to keep the effective batch), model.context, model.d_model or model.layers, or pick a smaller tokenizer vocabulary`
  }
}

export interface StepMemoryEstimate {
  readonly parameters: number
  readonly parameterBytes: number
  readonly activationBytes: number
  readonly logitBytes: number
  readonly totalBytes: number
}

/**
 * Peak bytes of one training step, float32:
 *  - parameters ×5: weights, gradients, the accumulation sum, AdamW's m and v;
 *  - activations kept for backward, per layer: ~16 [B,T,d] tensors, 3 [B,T,d_ff], 4 [B,H,T,T];
 *  - the vocabulary projection: logits, probabilities, their gradient and the one-hot, [rows, V]
 *    each, where rows is B·T or, when that is too large, one chunk of it (src/model/loss.ts).
 */
export const estimateStepMemory = (model: ModelConfig, batch: number): StepMemoryEstimate => {
  const parameters = parameterCount(model)
  const rows = batch * model.context
  const perLayer = rows * (16 * model.dModel + 3 * model.dFF) + 4 * batch * model.heads * model.context * model.context
  const activationBytes = 4 * (model.layers * perLayer + 4 * rows * model.dModel)
  const logitBytes = 4 * 4 * chunkRows(rows, model.vocabSize, maxTensorBytes()) * model.vocabSize
  const parameterBytes = 4 * 5 * parameters
  return { parameters, parameterBytes, activationBytes, logitBytes, totalBytes: parameterBytes + activationBytes + logitBytes }
}

/** Of RAM, what a step may take: the rest is the runtime, the data workers and the page cache. */
export const RAM_SAFE_FRACTION = 0.85

/** This machine's memory, or the container's limit when a cgroup sets a smaller one. */
export const machineMemoryBytes = (): number => {
  let limit = totalmem()
  for (const file of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    try {
      const value = Number(readFileSync(file, "utf8").trim())
      if (Number.isFinite(value) && value > 0) limit = Math.min(limit, value)
    } catch {
      // no such controller here
    }
  }
  return limit
}

/** Undefined when the step fits the wasm heap, otherwise the error to report. */
export const checkWasmHeap = (model: ModelConfig, batch: number): HeapTooSmall | undefined =>
  checkAgainst(model, batch, "wasm", WASM_HEAP_LIMIT_BYTES * WASM_SAFE_FRACTION, "the wasm heap stops at")

/**
 * The guard for any backend, before anything is allocated: the wasm heap for wasm; RAM for
 * native, cpu and tensorflow (tensors live in the process's memory); for webgpu, the largest
 * single tensor (the token embedding, or the attention scores) against the device's buffer cap.
 */
export const checkStepMemory = (
  backend: { readonly name: string; readonly adapter?: { readonly maxBufferSize: number } },
  model: ModelConfig,
  batch: number,
  ramBytes: number = machineMemoryBytes()
): HeapTooSmall | undefined => {
  switch (backend.name) {
    case "wasm":
      return checkWasmHeap(model, batch)
    case "webgpu": {
      const cap = backend.adapter?.maxBufferSize
      if (cap === undefined) return undefined
      const embedding = 4 * model.vocabSize * model.dModel
      const scores = 4 * batch * model.heads * model.context * model.context
      const largest = Math.max(embedding, scores)
      if (largest <= cap) return undefined
      return new HeapTooSmall({
        backend: "webgpu",
        estimatedBytes: largest,
        limitBytes: cap,
        where: "one buffer on this GPU holds at most",
        largest: embedding >= scores ? `the token embedding (vocabulary × model.d_model = ${model.vocabSize}×${model.dModel})` : `the attention scores (train.batch × model.heads × model.context² = ${batch}×${model.heads}×${model.context}²)`
      })
    }
    default:
      return checkAgainst(model, batch, backend.name, ramBytes * RAM_SAFE_FRACTION, "this machine's memory allows")
  }
}

const checkAgainst = (model: ModelConfig, batch: number, backend: string, limit: number, where: string): HeapTooSmall | undefined => {
  const e = estimateStepMemory(model, batch)
  if (e.totalBytes <= limit) return undefined
  const parts: Array<[string, number]> = [
    [`the vocabulary projection (train.batch × model.context × vocabulary = ${batch}×${model.context}×${model.vocabSize})`, e.logitBytes],
    [`activations (train.batch, model.context, model.d_model, model.layers)`, e.activationBytes],
    [`parameters and optimizer state (${(e.parameters / 1e6).toFixed(1)}M parameters)`, e.parameterBytes]
  ]
  parts.sort((a, b) => b[1] - a[1])
  return new HeapTooSmall({ backend, estimatedBytes: e.totalBytes, limitBytes: limit, largest: parts[0][0], where })
}

/** True for the wasm runtime's own out-of-memory aborts, which carry no useful message. */
export const isWasmHeapAbort = (e: unknown): boolean => /memory access out of bounds|Aborted\(|Cannot enlarge memory|Out of memory/i.test(String(e instanceof Error ? e.message : e))
