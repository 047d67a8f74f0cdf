// A pretrained model by reference (default: GPT-2 small from the Hub, downloaded once into the
// cache), timed the way a user meets it, printed as JSON lines and never asserted in tests:
//   - opening it (download on the first run, then the cache; shape from config.json);
//   - greedy generation from a prompt (prefill + cached decode), tokens/s;
//   - the four probes: the induction test (with the heads it finds and their scores), the
//     attention analysis and the logit lens on one prompt, and a patching sweep.
// The figures for GPT-2 small in the docs come from this script run with downloaded weights.
//   npx tsx bench/pretrained.ts [--model gpt2] [--backend native|wasm|...] [--new-tokens 20]
import * as tf from "@tensorflow/tfjs"
import { Chunk, Effect, Either, Stream } from "effect"
import { parseArgs } from "node:util"
import { parseBackendChoice, selectBackend } from "../src/backend/backend.ts"
import { generateTokens } from "../src/generate/generator.ts"
import { presets } from "../src/generate/sampling.ts"
import { attentionPatterns } from "../src/interpret/attention.ts"
import { inductionScores } from "../src/interpret/induction.ts"
import { logitLens } from "../src/interpret/logit-lens.ts"
import { patchingSweep } from "../src/interpret/patching.ts"
import { openModel } from "../src/model/reference.ts"

const { values } = parseArgs({
  options: { model: { type: "string", default: "gpt2" }, backend: { type: "string", default: "auto" }, "new-tokens": { type: "string", default: "20" } }
})
const backend = await Effect.runPromise(parseBackendChoice(values.backend!, "--backend").pipe(Effect.flatMap(selectBackend)))
const emit = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ bench: "pretrained", model: values.model, backend: backend.description, ...o }) + "\n")
const timed = <A>(f: () => A): { ms: number; result: A } => {
  const t0 = performance.now()
  const result = f()
  return { ms: Number((performance.now() - t0).toFixed(1)), result }
}

const t0 = performance.now()
const opened = await Effect.runPromise(openModel(values.model!))
const { model, encoding, files } = opened
const c = model.config
emit({ metric: "open", ms: Number((performance.now() - t0).toFixed(1)), label: files.label, shape_from: opened.origin, layers: c.layers, heads: c.heads, d_model: c.dModel, context: c.context, tokenizer: encoding.name })

const newTokens = Number(values["new-tokens"])
// (Cut to the context only for the small test models this script is also run on.)
const prompt = encoding.encode("The whale swam past the ship, and").slice(-Math.max(1, c.context - newTokens))
const g0 = performance.now()
const ids = await Effect.runPromise(Stream.runCollect(generateTokens(model, prompt, { maxNewTokens: newTokens, sampling: presets.greedy, seed: 0 })))
const gMs = performance.now() - g0
emit({ metric: "generate", prompt_tokens: prompt.length, new_tokens: ids.length, ms: Number(gMs.toFixed(1)), tokens_per_s: Number((ids.length / (gMs / 1000)).toFixed(2)), text: encoding.decode(Chunk.toReadonlyArray(ids)) })

const induction = timed(() => inductionScores(model, { bos: encoding.eot }))
emit({
  metric: "induction",
  ms: induction.ms,
  repeat: induction.result.repeatLength,
  batch: induction.result.batch,
  loss_first_half: Number(induction.result.lossFirstHalf.toFixed(3)),
  loss_second_half: Number(induction.result.lossSecondHalf.toFixed(3)),
  heads: induction.result.heads.slice(0, 10).map((h) => `${h.layer}.${h.head}:${h.score.toFixed(2)}`)
})

const text = [encoding.eot, ...encoding.encode("The Eiffel Tower is in the city of")].slice(0, c.context)
const attention = timed(() => attentionPatterns(model, text))
emit({ metric: "attention_analysis", ms: attention.ms, tokens: text.length, heads: attention.result.reports.length })
const lens = timed(() => logitLens(model, text, 5))
emit({ metric: "logit_lens", ms: lens.ms, tokens: text.length, stages: lens.result.stages.length })

const corrupted = [encoding.eot, ...encoding.encode("The Colosseum is in the city of")].slice(0, c.context)
const [answer, wrong] = [encoding.encode(" Paris")[0], encoding.encode(" Rome")[0]]
const sweep = timed(() => patchingSweep(model, { clean: text, corrupted, answer, wrong }))
if (Either.isRight(sweep.result)) emit({ metric: "patching_sweep", ms: sweep.ms, tokens: text.length, sites: sweep.result.right.sites, forwards: sweep.result.right.forwards })
else emit({ metric: "patching_sweep", skipped: sweep.result.left.message })
emit({ metric: "tensors_left", count: tf.memory().numTensors })
model.dispose()
