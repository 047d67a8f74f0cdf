// The wasm backend's heap is one 32-bit linear memory: it stops near 4 GB and never shrinks, and
// running past it aborts with "memory access out of bounds". We estimate a training step's peak
// from the config before starting and refuse early, naming the values to reduce.
import { Data } from "effect"
import { parameterCount, type ModelConfig } from "../model/config.ts"
import { chunkRows } from "../model/loss.ts"
import { maxTensorBytes } from "./limits.ts"

export const WASM_HEAP_LIMIT_BYTES = 4_294_901_760
/** Keep headroom for fragmentation and the allocator's own growth steps. */
export const WASM_SAFE_FRACTION = 0.8

export class HeapTooSmall extends Data.TaggedError("HeapTooSmall")<{
  readonly backend: string
  readonly estimatedBytes: number
  readonly limitBytes: number
  readonly largest: string
}> {
  override get message() {
    const gb = (b: number) => (b / 1e9).toFixed(2)
    return `a training step needs about ${gb(this.estimatedBytes)} GB but the ${this.backend} heap stops at ${gb(this.limitBytes)} GB; the largest part is ${this.largest}: reduce train.batch (use train.accumulate to keep the effective batch), model.context, model.d_model or model.layers, or pick a smaller tokenizer vocabulary`
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

/** Undefined when the step fits the wasm heap, otherwise the error to report. */
export const checkWasmHeap = (model: ModelConfig, batch: number): HeapTooSmall | undefined => {
  const e = estimateStepMemory(model, batch)
  const limit = WASM_HEAP_LIMIT_BYTES * WASM_SAFE_FRACTION
  if (e.totalBytes <= limit) return undefined
  const parts: Array<[string, number]> = [
    [`the vocabulary projection (train.batch × model.context × vocabulary = ${batch}×${model.context}×${model.vocabSize})`, e.logitBytes],
    [`activations (train.batch, model.context, model.d_model, model.layers)`, e.activationBytes],
    [`parameters and optimizer state (${(e.parameters / 1e6).toFixed(1)}M parameters)`, e.parameterBytes]
  ]
  parts.sort((a, b) => b[1] - a[1])
  return new HeapTooSmall({ backend: "wasm", estimatedBytes: e.totalBytes, limitBytes: limit, largest: parts[0][0] })
}

/** True for the wasm runtime's own out-of-memory aborts, which carry no useful message. */
export const isWasmHeapAbort = (e: unknown): boolean => /memory access out of bounds|Aborted\(|Cannot enlarge memory|Out of memory/i.test(String(e instanceof Error ? e.message : e))
