// How long the interpretability probes take on config B (GPT-2 vocabulary 50,257, d 256,
// 4 layers × 4 heads, context 128; random init: timing does not depend on the weights), printed
// as JSON lines and never asserted in tests:
//   - the induction test: one batched forward over 10 × (1 + 2·50) tokens plus the loss;
//   - a full activation-patching sweep (resid_pre, attn_out, mlp_out per layer × position and
//     every head) batched, against the same sites patched one forward pass each;
//   - the logit lens and the attention analysis on one prompt.
//   npx tsx bench/interpret.ts [--backend wasm|cpu|tensorflow|...] [--tokens 24] [--repeats 3]
import * as tf from "@tensorflow/tfjs"
import { Effect, Either } from "effect"
import { parseArgs } from "node:util"
import { parseBackendChoice, selectBackend } from "../src/backend/backend.ts"
import { attentionPatterns } from "../src/interpret/attention.ts"
import { inductionScores } from "../src/interpret/induction.ts"
import { logitLens } from "../src/interpret/logit-lens.ts"
import { logitDiff, patchingSweep } from "../src/interpret/patching.ts"
import type { ModelConfig } from "../src/model/config.ts"
import { initGPT } from "../src/model/gpt.ts"
import { Rng } from "../src/rng/rng.ts"

const { values } = parseArgs({
  options: { backend: { type: "string", default: "wasm" }, tokens: { type: "string", default: "24" }, repeats: { type: "string", default: "3" } }
})
const backend = await Effect.runPromise(parseBackendChoice(values.backend!, "--backend").pipe(Effect.flatMap(selectBackend)))
const T = Number(values.tokens)
const repeats = Number(values.repeats)

const emit = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ bench: "interpret", backend: backend.description, ...o }) + "\n")

/** Best of `repeats` wall-clock runs, in ms (after one warm-up run). */
const time = <A>(f: () => A): { ms: number; result: A } => {
  let result = f()
  let best = Infinity
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now()
    result = f()
    best = Math.min(best, performance.now() - t0)
  }
  return { ms: Number(best.toFixed(1)), result }
}

const configB: ModelConfig = { vocabSize: 50257, context: 128, dModel: 256, layers: 4, heads: 4, dFF: 1024, dropout: 0, position: "learned", tied: true, gelu: "tanh", lnEps: 1e-5 }
const model = initGPT(configB, 1)
const rng = Rng.seeded(5, "bench-prompt")
const clean = Array.from({ length: T }, () => Math.floor(rng.uniform() * configB.vocabSize))
const corrupted = clean.slice()
corrupted[Math.floor(T / 2)] = (clean[Math.floor(T / 2)] + 1) % configB.vocabSize
const [answer, wrong] = [262, 290]
const startTensors = tf.memory().numTensors

const forward = time(() => logitDiff(model, clean, answer, wrong))
emit({ metric: "forward", config: "B", tokens: T, batch: 1, ms: forward.ms })

const induction = time(() => inductionScores(model, { repeatLength: 50, batch: 10 }))
emit({ metric: "induction", config: "B", repeat: 50, batch: 10, tokens: 10 * 101, forwards: 1, ms: induction.ms, heads_found: induction.result.heads.length })

const sweep = time(() => Either.getOrThrow(patchingSweep(model, { clean, corrupted, answer, wrong })))
const s = sweep.result
emit({ metric: "patching_sweep", config: "B", tokens: T, sites: s.sites, forwards: s.forwards, ms: sweep.ms, ms_per_site: Number((sweep.ms / s.sites).toFixed(2)) })

// The same sweep, one forward pass per site: what batching saves.
const single = time(() => Either.getOrThrow(patchingSweep(model, { clean, corrupted, answer, wrong, batchRows: 1 })))
emit({
  metric: "patching_sweep_unbatched",
  config: "B",
  tokens: T,
  sites: single.result.sites,
  forwards: single.result.forwards,
  ms: single.ms,
  ms_per_site: Number((single.ms / single.result.sites).toFixed(2)),
  batched_speedup: Number((single.ms / sweep.ms).toFixed(2))
})

const lens = time(() => logitLens(model, clean, 5))
emit({ metric: "logit_lens", config: "B", tokens: T, stages: lens.result.stages.length, ms: lens.ms })

const attention = time(() => attentionPatterns(model, clean))
emit({ metric: "attention_analysis", config: "B", tokens: T, heads: attention.result.reports.length, ms: attention.ms })

emit({ metric: "leaked_tensors", count: tf.memory().numTensors - startTensors })
model.dispose()
