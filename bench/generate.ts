// Generation speed, printed as JSON lines (never asserted in tests): tokens/s with and without the
// KV cache for 10, 50, 100, 200 and 500 new tokens on config B (gpt2 vocabulary, d 256, 4 layers,
// context 128), batch 1 and 8, and the cache's speed-up. Greedy decoding, so every run does the
// same work. Past 128 tokens the window slides (learned positions: re-prefill).
//   npx tsx bench/generate.ts [--backend native|wasm|webgpu|...] [--lengths 10,50,100] [--batches 1,8] [--position learned]
//   --compare: only batch 1, 100 new tokens, cached, as bench/pytorch_reference.py --generate does
//   (bench/compare.sh puts the two side by side).
// (webgpu without a GPU: GLASSBOX_LAVAPIPE=.lavapipe, see bench/train.ts.)
import { Effect } from "effect"
import { parseArgs } from "node:util"
import { parseBackendChoice, selectBackend } from "../src/backend/backend.ts"
import { generateBatch } from "../src/generate/generator.ts"
import { presets } from "../src/generate/sampling.ts"
import type { ModelConfig } from "../src/model/config.ts"
import { initGPT } from "../src/model/gpt.ts"

const { values } = parseArgs({
  options: {
    backend: { type: "string", default: "wasm" },
    lengths: { type: "string", default: "10,50,100,200,500" },
    batches: { type: "string", default: "1,8" },
    position: { type: "string", default: "learned" },
    "skip-uncached-above": { type: "string", default: "200" },
    compare: { type: "boolean", default: false }
  }
})
const backend = await Effect.runPromise(parseBackendChoice(values.backend!, "--backend").pipe(Effect.flatMap(selectBackend)))
const config: ModelConfig = { vocabSize: 50257, context: 128, dModel: 256, layers: 4, heads: 4, dFF: 1024, dropout: 0, position: values.position as ModelConfig["position"], tied: true, gelu: "tanh", lnEps: 1e-5 }
const model = initGPT(config, 1)
const prompt = Array.from({ length: 10 }, (_, i) => (i * 7919) % config.vocabSize)

const timed = async (batch: number, tokens: number, useCache: boolean) => {
  const prompts = Array.from({ length: batch }, () => prompt)
  const started = performance.now()
  await Effect.runPromise(generateBatch(model, prompts, { maxNewTokens: tokens, sampling: presets.greedy, seed: 0, useCache }))
  return (performance.now() - started) / 1000
}

// Warm-up: XNNPACK packs each new weight operand once (the head alone takes ~200 ms), the heap grows.
for (const useCache of [true, false]) await timed(2, 12, useCache)
if (values.compare) {
  const seconds = await timed(1, 100, true)
  process.stdout.write(JSON.stringify({ bench: "generate", compare: true, backend: backend.description, config: "B", batch: 1, new_tokens: 100, cached: true, tokens_per_s: Math.round((100 / seconds) * 10) / 10 }) + "\n")
  model.dispose()
  process.exit(0)
}
for (const batch of values.batches!.split(",").map(Number)) {
  for (const tokens of values.lengths!.split(",").map(Number)) {
    const cached = await timed(batch, tokens, true)
    const skip = tokens > Number(values["skip-uncached-above"])
    const uncached = skip ? undefined : await timed(batch, tokens, false)
    const rate = (s: number) => Math.round(((batch * tokens) / s) * 10) / 10
    process.stdout.write(
      JSON.stringify({
        bench: "generate",
        backend: backend.description,
        config: "B",
        position: config.position,
        batch,
        new_tokens: tokens,
        cached_tokens_per_s: rate(cached),
        uncached_tokens_per_s: uncached === undefined ? null : rate(uncached),
        speedup: uncached === undefined ? null : Math.round((uncached / cached) * 10) / 10
      }) + "\n"
    )
  }
}
model.dispose()
