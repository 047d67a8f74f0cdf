// Training throughput, printed as JSON lines (never asserted in tests): tokens/s, ms/step, peak
// tensor memory and peak RSS for config A (byte vocabulary, d 128, 2 layers), config B (GPT-2
// vocabulary, d 256, 4 layers) and, when asked for, config C (GPT-2 small: d 768, 12 layers,
// context 1024, the largest batch whose estimated step fits 16 GB), the backend's measured
// matmul GFLOP/s, and model FLOPs utilisation (training FLOPs per second ÷ that matmul rate).
//   npx tsx bench/train.ts [--backend native|wasm|cpu|tensorflow|tensorflow-gpu|webgpu|auto] [--steps 5]
//                          [--only A|B|C] [--batch N] [--matmul 1024,2048,4096]   (MFU uses the first size)
// bench/compare.sh runs this beside bench/pytorch_reference.py and prints the ratios.
// On webgpu the backend line names the adapter and its binding limit. Without a GPU, webgpu runs
// on lavapipe with GLASSBOX_LAVAPIPE=.lavapipe (after bash .ci/lavapipe.sh): slow, a check only.
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import { parseArgs } from "node:util"
import { parseBackendChoice, selectBackend } from "../src/backend/backend.ts"
import { estimateStepMemory } from "../src/train/memory-budget.ts"
import type { ModelConfig } from "../src/model/config.ts"
import { initGPT } from "../src/model/gpt.ts"
import { defaultAdamW } from "../src/train/adamw.ts"
import { Trainer } from "../src/train/trainer.ts"

const { values } = parseArgs({
  options: {
    backend: { type: "string", default: "wasm" },
    steps: { type: "string", default: "5" },
    only: { type: "string" },
    batch: { type: "string" },
    matmul: { type: "string", default: "1024" }
  }
})
const backend = await Effect.runPromise(parseBackendChoice(values.backend!, "--backend").pipe(Effect.flatMap(selectBackend)))
const measuredSteps = Number(values.steps)

const emit = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ bench: "train", backend: backend.description, ...o }) + "\n")

/**
 * Square-ish matmul rate: the ceiling any model step can approach on this backend. Only the last
 * product is read back: a GPU runs its queue in order, so that read waits for all of them, and
 * reading each one would time the copy to the CPU instead of the multiplication.
 */
const matmulGflops = (n: number, k: number, m: number) => {
  const a = tf.randomNormal([n, k])
  const b = tf.randomNormal([k, m])
  const warm = tf.matMul(a, b) // kernels compile (GPU), weights pack (wasm)
  warm.dataSync()
  warm.dispose()
  const reps = 5
  const t0 = performance.now()
  let c: tf.Tensor | undefined
  for (let i = 0; i < reps; i++) {
    c?.dispose()
    c = tf.matMul(a, b)
  }
  c!.dataSync() // (not returned from tf.tidy, which would walk the array looking for tensors)
  const ms = (performance.now() - t0) / reps
  tf.dispose([a, b, c!])
  return (2 * n * k * m) / ms / 1e6
}

/**
 * Training FLOPs per token: 6 per weight in every matmul (forward 2, backward 4), the LM head
 * included, plus attention's score and mix products, 6·2·L·T·d (causal masking not subtracted).
 */
const flopsPerToken = (c: ModelConfig) => {
  const matmulWeights = c.layers * (4 * c.dModel * c.dModel + 2 * c.dModel * c.dFF) + c.vocabSize * c.dModel
  return 6 * matmulWeights + 12 * c.layers * c.context * c.dModel
}

const gpt2Small: ModelConfig = { vocabSize: 50257, context: 1024, dModel: 768, layers: 12, heads: 12, dFF: 3072, dropout: 0, position: "learned", tied: true, gelu: "tanh", lnEps: 1e-5 }
/** The largest batch whose estimated training step (src/train/memory-budget.ts) fits `bytes`. */
const largestBatch = (model: ModelConfig, bytes: number) => {
  let batch = 1
  while (estimateStepMemory(model, batch + 1).totalBytes <= bytes) batch++
  return batch
}

const configs: Record<string, { model: ModelConfig; batch: number; onlyWhenAsked?: boolean }> = {
  A: { model: { vocabSize: 256, context: 64, dModel: 128, layers: 2, heads: 4, dFF: 512, dropout: 0, position: "learned", tied: true, gelu: "tanh", lnEps: 1e-5 }, batch: 8 },
  B: { model: { vocabSize: 50257, context: 128, dModel: 256, layers: 4, heads: 4, dFF: 1024, dropout: 0, position: "learned", tied: true, gelu: "tanh", lnEps: 1e-5 }, batch: 8 },
  C: { model: gpt2Small, batch: largestBatch(gpt2Small, 16e9), onlyWhenAsked: true }
}

const sizes = values.matmul!.split(",").map(Number)
const rates = sizes.map((n) => {
  const rate = matmulGflops(n, n, n)
  emit({ metric: "matmul", shape: `${n}x${n}x${n}`, gflops: Number(rate.toFixed(2)) })
  return rate
})
const gflops = rates[0]

for (const [name, { model: c, batch: defaultBatch, onlyWhenAsked }] of Object.entries(configs)) {
  if (values.only !== undefined ? values.only !== name : onlyWhenAsked === true) continue
  const batch = values.batch !== undefined ? Number(values.batch) : defaultBatch
  const model = initGPT(c, 1)
  const trainer = new Trainer(model, { schedule: { lr: 3e-4, minLr: 3e-5, warmupSteps: 2, totalSteps: 1000 }, adamw: defaultAdamW, clip: 1 }, 1)
  const ids = new Int32Array(batch * (c.context + 1)).map((_, i) => (i * 7919 + 13) % c.vocabSize)
  const windows = [{ ids, batch, context: c.context }]
  await Effect.runPromise(trainer.trainStep(windows)) // warm-up: kernels compile, the heap grows
  // tf.profile runs one more step while it records every kernel: skipped for the large config.
  const profile = name === "C" ? undefined : await tf.profile(() => Effect.runPromise(trainer.trainStep(windows)).then(() => [] as tf.Tensor[]))
  let ms = 0
  for (let i = 0; i < measuredSteps; i++) ms += (await Effect.runPromise(trainer.trainStep(windows))).ms
  const msPerStep = ms / measuredSteps
  const tokensPerSecond = (batch * c.context * 1000) / msPerStep
  const achieved = (flopsPerToken(c) * tokensPerSecond) / 1e9
  emit({
    config: name,
    vocab: c.vocabSize,
    d_model: c.dModel,
    layers: c.layers,
    context: c.context,
    batch,
    steps: measuredSteps,
    ms_per_step: Number(msPerStep.toFixed(1)),
    tokens_per_s: Math.round(tokensPerSecond),
    peak_tensor_mb: profile === undefined ? null : Number((profile.peakBytes / 1e6).toFixed(1)),
    rss_mb: Math.round(process.memoryUsage().rss / 1e6),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1e3),
    model_gflops_per_s: Number(achieved.toFixed(2)),
    mfu_vs_matmul: Number((achieved / gflops).toFixed(3))
  })
  model.dispose()
}
