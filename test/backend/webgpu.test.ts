// The webgpu backend against the plain cpu reference, on a tiny GPT: the same forward logits,
// loss, every gradient, and three AdamW steps; the same greedy tokens from cached generation;
// synchronous reads equal to asynchronous ones; and no tensor past the device's binding limit
// ever yields numbers (an error instead). Each backend builds its model from the same arrays,
// and every result is read back to plain arrays before the next backend runs.
// On a machine without a GPU this runs on lavapipe (.ci/lavapipe.sh); it skips locally without
// it and fails under CI.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import { maxBindingBytes } from "../../src/backend/backend.ts"
import { maxTensorBytes } from "../../src/backend/limits.ts"
import { activeWebGpuBackend } from "../../src/backend/webgpu.ts"
import { clearGpuErrors, GpuBindingLimitExceeded, GpuValidationError } from "../../src/backend/webgpu-fixes.ts"
import { BufferUsage } from "../../src/backend/webgpu-types.ts"
import { generateBatch } from "../../src/generate/generator.ts"
import { presets } from "../../src/generate/sampling.ts"
import type { ModelConfig } from "../../src/model/config.ts"
import { gptFromValues } from "../../src/model/gpt.ts"
import { adamwUpdate, defaultAdamW, disposeAdamW, initAdamW } from "../../src/train/adamw.ts"
import { Trainer, windowLoss, type TokenWindows } from "../../src/train/trainer.ts"
import { maxAbsDiff, randomValues, tinyConfig, tokenWindows, useBackend } from "../helpers.ts"
import { requireStarted, startWebGpu, webgpuTestsRun } from "./webgpu-setup.ts"

const start = await startWebGpu()

type Backend = "cpu" | "webgpu"

const read = async (t: tf.Tensor) => Array.from((await t.data()) as Float32Array)

/** |a − b| relative to the largest |a| (floored), the float32 yardstick of test/model. */
const relDiff = (a: number[], b: number[]) => maxAbsDiff(a, b) / Math.max(1e-3, ...a.map(Math.abs))

interface TrainingTrace {
  logits: number[]
  loss: number
  grads: Map<string, number[]>
  /** Loss before each AdamW step, and every parameter after the last. */
  stepLosses: number[]
  params: Map<string, number[]>
}

/** Forward, loss, gradients, then three AdamW steps, all read back to arrays. */
const trainingTrace = async (backend: Backend, config: ModelConfig, windows: TokenWindows): Promise<TrainingTrace> => {
  await tf.setBackend(backend)
  const model = gptFromValues(config, randomValues(config))
  const inputs = tf.tidy(() => tf.slice(tf.tensor2d(windows.ids, [windows.batch, config.context + 1], "int32"), [0, 0], [windows.batch, config.context]) as tf.Tensor2D)
  const logitsT = model.forward(inputs)
  const logits = await read(logitsT)
  tf.dispose([inputs, logitsT])

  const vars = [...model.params.values()]
  const lossAndGrads = () => {
    const { value, grads } = tf.variableGrads(() => windowLoss(model, windows), vars)
    return { value, grads: new Map([...model.params].map(([name, p]) => [name, grads[p.name]] as const)) }
  }
  const first = lossAndGrads()
  const loss = (await read(first.value))[0]
  const grads = new Map<string, number[]>()
  for (const [name, g] of first.grads) grads.set(name, await read(g))
  tf.dispose([first.value, ...first.grads.values()])

  const state = initAdamW(model.params)
  const stepLosses: number[] = []
  for (let step = 0; step < 3; step++) {
    const { value, grads: g } = lossAndGrads()
    adamwUpdate(model.params, g, state, 1e-2, defaultAdamW)
    stepLosses.push((await read(value))[0])
    tf.dispose([value, ...g.values()])
  }
  const params = new Map<string, number[]>()
  for (const [name, p] of model.params) params.set(name, await read(p))
  disposeAdamW(state)
  model.dispose()
  return { logits, loss, grads, stepLosses, params }
}

describe.runIf(webgpuTestsRun(start, "webgpu.test.ts"))("webgpu backend", () => {
  beforeAll(async () => {
    requireStarted(start)
    await useBackend("cpu")
    // tfjs-webgpu hands ops on small CPU-resident tensors (< 1000 values) to its cpu kernels;
    // at these tiny sizes that would be most of the model. Off, so every kernel runs on the GPU.
    tf.env().set("WEBGPU_CPU_FORWARD", false)
  })
  afterAll(async () => {
    if (!start.ok) return
    tf.env().set("WEBGPU_CPU_FORWARD", true)
    await tf.setBackend("cpu")
  })

  it("starts on an adapter it describes, and reports its binding limit", async () => {
    const backend = requireStarted(start)
    expect(backend.name).toBe("webgpu")
    expect(backend.description).toMatch(/binding limit \d+ MiB/)
    await tf.setBackend("webgpu")
    const limit = activeWebGpuBackend()!.device.limits.maxStorageBufferBindingSize
    expect(maxBindingBytes()).toBe(limit)
    expect(maxTensorBytes()).toBeLessThanOrEqual(limit)
    await tf.setBackend("cpu")
    expect(maxBindingBytes()).toBeUndefined()
  })

  for (const [label, overrides] of [
    ["learned positions, tied head", {}],
    ["rope, separate head", { position: "rope", tied: false }]
  ] as const) {
    it(`${label}: forward, loss, every gradient and three AdamW steps equal the cpu backend's`, async () => {
      const config = tinyConfig({ vocabSize: 37, context: 12, dModel: 16, heads: 4, dFF: 32, ...overrides })
      const windows = tokenWindows(config, 3)
      const cpu = await trainingTrace("cpu", config, windows)
      const gpu = await trainingTrace("webgpu", config, windows)

      expect(relDiff(cpu.logits, gpu.logits)).toBeLessThan(1e-5)
      expect(Math.abs(cpu.loss - gpu.loss)).toBeLessThan(1e-5)
      expect([...gpu.grads.keys()]).toEqual([...cpu.grads.keys()])
      for (const [name, g] of cpu.grads) expect(relDiff(g, gpu.grads.get(name)!), `gradient of ${name}`).toBeLessThan(1e-4)
      for (let s = 0; s < 3; s++) expect(Math.abs(cpu.stepLosses[s] - gpu.stepLosses[s]), `loss before step ${s + 1}`).toBeLessThan(2e-5)
      // Parameters after three steps, except where the true gradient is zero and the computed one
      // is rounding noise: Adam's m̂/√v̂ turns any noise into a full ±lr step whose sign differs
      // between backends. (With learned positions that is the key bias, c_attn.bias[d:2d]: it adds
      // q·b_k to every score of a row, and softmax ignores a constant shift.)
      for (const [name, p] of cpu.params) {
        const g = cpu.grads.get(name)!
        const noise = 1e-6 * Math.max(...g.map(Math.abs))
        const q = gpu.params.get(name)!
        const compared = p.map((_, i) => i).filter((i) => Math.abs(g[i]) > noise)
        expect(maxAbsDiff(compared.map((i) => p[i]), compared.map((i) => q[i])), `${name} after 3 steps`).toBeLessThan(1e-4)
      }
      expect(cpu.stepLosses[2]).toBeLessThan(cpu.stepLosses[0]) // the steps did train
    })
  }

  it("Trainer steps (global norm over every gradient, clipping, AdamW) equal the cpu backend's", async () => {
    const config = tinyConfig({ vocabSize: 37, context: 12, dModel: 16, heads: 4, dFF: 32 })
    const values = randomValues(config, 5)
    const windows = [tokenWindows(config, 2, 1), tokenWindows(config, 2, 2)] // two micro-batches
    const steps = async (backend: Backend) => {
      await tf.setBackend(backend)
      const model = gptFromValues(config, values)
      const trainer = new Trainer(model, { schedule: { lr: 1e-2, minLr: 1e-3, warmupSteps: 1, totalSteps: 10 }, adamw: defaultAdamW, clip: 0.5 }, 1)
      const out: Array<[number, number]> = []
      for (let i = 0; i < 3; i++) {
        const r = await Effect.runPromise(trainer.trainStep(windows))
        out.push([r.loss, r.gradNorm])
      }
      disposeAdamW(trainer.optimizer)
      model.dispose()
      return out
    }
    const cpu = await steps("cpu")
    const gpu = await steps("webgpu")
    for (let i = 0; i < 3; i++) {
      expect(Math.abs(cpu[i][0] - gpu[i][0]), `loss, step ${i + 1}`).toBeLessThan(2e-5)
      expect(Math.abs(cpu[i][1] - gpu[i][1]) / cpu[i][1], `gradient norm, step ${i + 1}`).toBeLessThan(1e-4)
    }
    expect(cpu[0][1]).toBeGreaterThan(0.5) // so clipping took part
  })

  it("addN over more tensors than a shader may bind equals the cpu sum", async () => {
    const parts = Array.from({ length: 40 }, (_, i) => Array.from({ length: 1500 }, (_, j) => Math.sin(i * 1500 + j)))
    const sum = async (backend: Backend) => {
      await tf.setBackend(backend)
      const ts = parts.map((p) => tf.tensor1d(p))
      const before = tf.memory().numTensors
      const total = tf.addN(ts)
      const out = await read(total)
      expect(tf.memory().numTensors).toBe(before + 1)
      tf.dispose([...ts, total])
      return out
    }
    expect(maxAbsDiff(await sum("cpu"), await sum("webgpu"))).toBeLessThan(1e-5)
  })

  it("synchronous reads (dataSync) equal asynchronous ones, for float32 and int32", async () => {
    await tf.setBackend("webgpu")
    const x = tf.randomNormal([33, 17], 0, 1, "float32", 5)
    const y = tf.matMul(x, x, true, false)
    const arg = tf.argMax(y, 1)
    const sync = { y: Array.from(y.dataSync()), arg: Array.from(arg.dataSync()) }
    const z = tf.matMul(x, x, true, false) // the same values in a tensor never read before
    const zArg = tf.argMax(z, 1)
    expect(Array.from(await z.data())).toEqual(sync.y)
    expect(Array.from(await zArg.data())).toEqual(sync.arg)
    tf.dispose([x, y, arg, z, zArg])
  })

  it("cached greedy generation gives the cpu backend's tokens, through the sliding window", async () => {
    const config = tinyConfig({ vocabSize: 37, context: 12, dModel: 16, heads: 4, dFF: 32 })
    const values = randomValues(config, 11)
    // Two prompts of different lengths (left padding), and 10 new tokens on a context of 12,
    // so the window fills and the learned-position cache re-prefills.
    const prompts = [
      [3, 14, 15, 9, 2],
      [6, 5]
    ]
    const tokens = async (backend: Backend) => {
      await tf.setBackend(backend)
      const model = gptFromValues(config, values)
      const out = await Effect.runPromise(generateBatch(model, prompts, { maxNewTokens: 10, sampling: presets.greedy, seed: 0, useCache: true }))
      model.dispose()
      return out
    }
    const cpu = await tokens("cpu")
    const gpu = await tokens("webgpu")
    expect(gpu).toEqual(cpu)
    expect(cpu[0]).toHaveLength(10)
  })

  it("a tensor past the binding limit is an error naming the limit, never numbers", async () => {
    await tf.setBackend("webgpu")
    const limit = maxBindingBytes()!
    // The shape of the real case: a vocabulary projection whose [rows, V] output is too large.
    const vocab = Math.floor(limit / 4 / 1024) + 1
    const h = tf.ones([1024, 8])
    const head = tf.ones([8, vocab])
    const before = tf.memory().numTensors
    let caught: unknown
    try {
      const logits = tf.matMul(h, head)
      caught = `no error; logits[0] read back as ${(await logits.data())[0]}` // (WebGPU would give 0, not 8)
    } catch (e) {
      caught = e
    }
    expect(caught).toBeInstanceOf(GpuBindingLimitExceeded)
    expect((caught as Error).message).toMatch(/maxStorageBufferBindingSize/)
    expect(tf.memory().numTensors).toBe(before)
    // The device is still usable, and (where that is cheap: lavapipe's 128 MiB) a tensor exactly
    // at the limit is allowed.
    const n = limit <= 256 * 2 ** 20 ? Math.floor(limit / 4) : 1024
    const atLimit = tf.fill([n], 2)
    const tail = tf.sum(tf.slice(atLimit, [n - 3], [3]))
    expect((await tail.data())[0]).toBe(6)
    tf.dispose([h, head, atLimit, tail])
  })

  it("any other error the device reports fails the next read, instead of returning its numbers", async () => {
    await tf.setBackend("webgpu")
    const earlier = tf.add(tf.ones([4]), 1) // computed on the GPU (forwarding is off)
    expect(Array.from(earlier.dataSync())).toEqual([2, 2, 2, 2])
    // An invalid request straight to the device: WebGPU reports it only as an event.
    activeWebGpuBackend()!.device.createBuffer({ size: 4, usage: BufferUsage.MAP_READ | BufferUsage.STORAGE })
    const later = tf.add(tf.ones([4]), 2)
    expect(() => later.dataSync()).toThrow(GpuValidationError)
    await expect(later.data()).rejects.toBeInstanceOf(GpuValidationError)
    expect(Array.from(earlier.dataSync())).toEqual([2, 2, 2, 2]) // read before the error: kept
    clearGpuErrors()
    expect(Array.from(await later.data())).toEqual([3, 3, 3, 3])
    tf.dispose([earlier, later])
  })
})
