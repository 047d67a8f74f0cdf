// The wasm heap guard: a training step that cannot fit the 4 GB heap is refused before it
// starts, with a message naming the config values to reduce; one that fits passes.
import { describe, expect, it } from "@effect/vitest"
import { checkStepMemory, checkWasmHeap, estimateStepMemory, machineMemoryBytes } from "../../src/train/memory-budget.ts"
import { gpt2SmallConfig, parameterCount } from "../../src/model/config.ts"

describe("wasm heap budget", () => {
  it("config B (gpt2 vocabulary, d 256, 4 layers, batch 8) fits", () => {
    const b = { ...gpt2SmallConfig, context: 128, dModel: 256, layers: 4, heads: 4, dFF: 1024 }
    expect(checkWasmHeap(b, 8)).toBeUndefined()
  })

  it("GPT-2 small at batch 16, context 1024 does not, and the message says what to reduce", () => {
    const error = checkWasmHeap(gpt2SmallConfig, 16)
    expect(error).toBeDefined()
    expect(error!.message).toMatch(/^a training step needs about \d+\.\d\d GB but the wasm heap stops at 3\.44 GB; the largest part is activations/)
    expect(error!.message).toContain("reduce train.batch (use train.accumulate to keep the effective batch), model.context, model.d_model or model.layers")
  })

  it("counts five copies of every parameter and chunks the vocabulary projection", () => {
    const e = estimateStepMemory(gpt2SmallConfig, 1)
    expect(e.parameters).toBe(parameterCount(gpt2SmallConfig))
    expect(e.parameterBytes).toBe(4 * 5 * e.parameters)
    // 1024 rows × 50257 × 4 bytes = 206 MB fits one 512 MiB chunk: four such tensors.
    expect(e.logitBytes).toBe(4 * 4 * 1024 * 50257)
    expect(estimateStepMemory(gpt2SmallConfig, 8).logitBytes).toBe(4 * 4 * Math.floor((512 * 1024 * 1024) / (4 * 50257)) * 50257)
  })
})

describe("memory guard on every backend", () => {
  const huge = { ...gpt2SmallConfig, layers: 48, dModel: 1600, heads: 25, dFF: 6400 }
  it("native and cpu compare the step with this machine's memory and name what to lower", () => {
    for (const name of ["native", "cpu"]) {
      const error = checkStepMemory({ name }, huge, 32, 24e9)
      expect(error).toBeDefined()
      expect(error!.message).toMatch(/^a training step needs about \d+\.\d\d GB but this machine's memory allows 20\.40 GB; the largest part is activations/)
      expect(error!.message).toContain("reduce train.batch")
    }
    expect(checkStepMemory({ name: "native" }, gpt2SmallConfig, 2, 24e9)).toBeUndefined()
  })

  it("reads the machine's memory (and a container's limit)", () => {
    expect(machineMemoryBytes()).toBeGreaterThan(1e8)
  })

  it("webgpu checks the largest single tensor against the device's buffer cap", () => {
    const error = checkStepMemory({ name: "webgpu", adapter: { maxBufferSize: 64 * 2 ** 20 } }, gpt2SmallConfig, 1)
    expect(error?.message).toMatch(/needs about 0\.15 GB but one buffer on this GPU holds at most 0\.07 GB; the largest part is the token embedding/)
    expect(checkStepMemory({ name: "webgpu", adapter: { maxBufferSize: 2 ** 31 } }, gpt2SmallConfig, 8)).toBeUndefined()
  })
})
