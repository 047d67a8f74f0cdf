// Training throughput, printed as JSON lines (never asserted in tests): tokens/s, ms/step and
// peak tensor memory for config A (byte vocabulary, d 128, 2 layers) and config B (GPT-2
// vocabulary, d 256, 4 layers), the backend's measured matmul GFLOP/s, and model FLOPs
// utilisation (training FLOPs per second ÷ that matmul rate).
//   npx tsx bench/train.ts [--backend wasm|cpu|tensorflow|...] [--steps 5] [--only A|B]
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import { parseArgs } from "node:util"
import { parseBackendChoice, selectBackend } from "../src/backend/backend.ts"
import type { ModelConfig } from "../src/model/config.ts"
import { initGPT } from "../src/model/gpt.ts"
import { defaultAdamW } from "../src/train/adamw.ts"
import { Trainer } from "../src/train/trainer.ts"

const { values } = parseArgs({ options: { backend: { type: "string", default: "wasm" }, steps: { type: "string", default: "5" }, only: { type: "string" } } })
const backend = await Effect.runPromise(parseBackendChoice(values.backend!, "--backend").pipe(Effect.flatMap(selectBackend)))
const measuredSteps = Number(values.steps)

const emit = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ bench: "train", backend: backend.description, ...o }) + "\n")

/** Square-ish matmul rate: the ceiling any model step can approach on this backend. */
const matmulGflops = (n: number, k: number, m: number) => {
  const a = tf.randomNormal([n, k])
  const b = tf.randomNormal([k, m])
  tf.matMul(a, b).dispose()
  const reps = 5
  const t0 = performance.now()
  for (let i = 0; i < reps; i++) {
    const c = tf.matMul(a, b)
    c.dataSync() // (not returned from tf.tidy, which would walk the array looking for tensors)
    c.dispose()
  }
  const ms = (performance.now() - t0) / reps
  tf.dispose([a, b])
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

const configs: Record<string, { model: ModelConfig; batch: number }> = {
  A: { model: { vocabSize: 256, context: 64, dModel: 128, layers: 2, heads: 4, dFF: 512, dropout: 0, position: "learned", tied: true, gelu: "tanh", lnEps: 1e-5 }, batch: 8 },
  B: { model: { vocabSize: 50257, context: 128, dModel: 256, layers: 4, heads: 4, dFF: 1024, dropout: 0, position: "learned", tied: true, gelu: "tanh", lnEps: 1e-5 }, batch: 8 }
}

const gflops = matmulGflops(1024, 1024, 1024)
emit({ metric: "matmul", shape: "1024x1024x1024", gflops: Number(gflops.toFixed(2)) })

for (const [name, { model: c, batch }] of Object.entries(configs)) {
  if (values.only !== undefined && values.only !== name) continue
  const model = initGPT(c, 1)
  const trainer = new Trainer(model, { schedule: { lr: 3e-4, minLr: 3e-5, warmupSteps: 2, totalSteps: 1000 }, adamw: defaultAdamW, clip: 1 }, 1)
  const ids = new Int32Array(batch * (c.context + 1)).map((_, i) => (i * 7919 + 13) % c.vocabSize)
  const windows = [{ ids, batch, context: c.context }]
  await Effect.runPromise(trainer.trainStep(windows)) // warm-up: kernels compile, the heap grows
  const profile = await tf.profile(() => Effect.runPromise(trainer.trainStep(windows)).then(() => [] as tf.Tensor[]))
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
    peak_tensor_mb: Number((profile.peakBytes / 1e6).toFixed(1)),
    rss_mb: Math.round(process.memoryUsage().rss / 1e6),
    model_gflops_per_s: Number(achieved.toFixed(2)),
    mfu_vs_matmul: Number((achieved / gflops).toFixed(3))
  })
  model.dispose()
}
