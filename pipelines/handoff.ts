// The round trip for a run that outgrows one machine, as one short program over the services:
//
//   handoffOut   the run's data path → token shards (llm.c or nanoGPT) + the run's model → model.bin
//   engine       the user's multi-GPU trainer (llm.c's train_gpt2.cu under mpirun, or nanoGPT under
//                torchrun: docs/scale-out.md has the command lines); here a function the caller gives
//   handoffBack  its llm.c checkpoint → a glassbox run → held-out loss on the same validation
//                shard the engine evaluated on → an interpretability report (induction heads,
//                logit lens) as HTML
//
// Held-out loss is computed from the exported validation shard itself, cut the way llm.c's
// loader cuts it (B rows of T+1 tokens, each batch B·T tokens further on), which is also how our
// evaluator packs the validation split, so the number is comparable with the engine's own
// "val loss" for the same B, T and batch count. Copy this file to change any step.
//   npx tsx pipelines/handoff.ts out  config/tiny.json handoff/        (shards + model.bin)
//   npx tsx pipelines/handoff.ts back config/tiny.json handoff/ trained.bin runs/back
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { TensorBackendLive } from "../src/backend/backend.ts"
import { latestGoodCheckpoint } from "../src/checkpoint/checkpointer.ts"
import { listCheckpoints } from "../src/format/checkpoint-dir.ts"
import { exportLlmcModel, importLlmcModel, type LlmcExportResult } from "../src/checkpoint/llmc.ts"
import { loadConfig } from "../src/config/load.ts"
import type { PipelineConfig } from "../src/config/schema.ts"
import { dataLayer } from "../src/data/config.ts"
import { DocumentSource } from "../src/data/document-source.ts"
import { EXPORT_MANIFEST, exportTokenShards, type ExportManifest } from "../src/data/export.ts"
import { DocumentTokenizer } from "../src/data/tokenize-pool.ts"
import { evaluate, type EvalResult } from "../src/eval/evaluator.ts"
import { ReadFailed, writeFileAtomic } from "../src/format/atomic.ts"
import { readTokenShard, type TokenShardFormat } from "../src/format/token-shards.ts"
import { Probes } from "../src/interpret/probes.ts"
import { inductionHtml } from "../src/interpret/render-html.ts"
import { makeEncoding, type TokenizerName } from "../src/tokenizer/tokenizer.ts"
import type { TokenWindows } from "../src/train/trainer.ts"

export interface HandoffOutOptions {
  readonly config: PipelineConfig
  /** The hand-off directory: data/ holds the token files, model.bin the run's model (when it has one). */
  readonly dir: string
  readonly format?: TokenShardFormat
  readonly shardTokens?: number
  readonly maxTrainTokens?: number
  /** Write the model as bfloat16 (llm.c version 5). */
  readonly bf16?: boolean
}

export interface HandoffOut {
  readonly dataDir: string
  readonly manifest: ExportManifest
  /** Absent when config.run.dir has no checkpoint yet (the engine then starts from scratch). */
  readonly model: LlmcExportResult | undefined
}

const noteTo = (line: string) => void process.stderr.write(`${line}\n`)

/** Token shards of the config's data (same split, same order) and the run's model, ready for the engine. */
export const handoffOut = (o: HandoffOutOptions): Effect.Effect<HandoffOut, unknown> =>
  Effect.gen(function* () {
    const dataDir = path.join(o.dir, "data")
    const data = o.config.data
    const { manifest } = yield* Effect.gen(function* () {
      const source = yield* DocumentSource
      const tokenizer = yield* DocumentTokenizer
      return yield* exportTokenShards(source, tokenizer, {
        format: o.format ?? "llmc",
        dir: dataDir,
        name: "data",
        shardTokens: o.shardTokens,
        maxTrainTokens: o.maxTrainTokens,
        seed: o.config.run.seed,
        source: { source: data.source, dataset: data.dataset, revision: data.revision, filters: data.filters },
        note: noteTo
      })
    }).pipe(Effect.provide(dataLayer(data, { tokenizer: o.config.tokenizer, split: "train" })))
    const model = (yield* listCheckpoints(o.config.run.dir)).length > 0
      ? yield* exportLlmcModel(o.config.run.dir, path.join(o.dir, "model.bin"), o.bf16 === true ? "bfloat16" : "float32").pipe(Effect.provide(TensorBackendLive("cpu")))
      : undefined
    return { dataDir, manifest, model }
  })

/**
 * Windows over a validation shard exactly as llm.c's loader reads it: batch k, row b covers tokens
 * [(k·B + b)·T, (k·B + b)·T + T], inputs the first T and targets the last T.
 */
export const shardWindows = (tokens: Uint16Array, batch: number, context: number, maxBatches: number): TokenWindows[] => {
  const out: TokenWindows[] = []
  for (let k = 0; k < maxBatches; k++) {
    const start = k * batch * context
    if (start + batch * context + 1 > tokens.length) break
    const ids = new Int32Array(batch * (context + 1))
    for (let b = 0; b < batch; b++) ids.set(tokens.subarray(start + b * context, start + b * context + context + 1), b * (context + 1))
    out.push({ ids, batch, context })
  }
  return out
}

export interface HandoffBackOptions {
  readonly config: PipelineConfig
  /** The hand-off directory handoffOut wrote (its data/ holds the validation shard). */
  readonly dir: string
  /** The engine's llm.c checkpoint (version 3 or 5). */
  readonly trained: string
  /** A new run directory for it. */
  readonly runDir: string
  /** Validation batches of [B, T+1] (default: the config's batch and context, up to eval.tokens). */
  readonly batch?: number
  readonly maxBatches?: number
}

export interface HandoffBack {
  readonly checkpoint: string
  readonly heldOut: EvalResult
  readonly induction: { readonly layer: number; readonly head: number; readonly score: number }
  readonly report: string
}

/** The engine's checkpoint back as a run, measured on the same held-out shard, with a report. */
export const handoffBack = (o: HandoffBackOptions): Effect.Effect<HandoffBack, unknown> =>
  Effect.gen(function* () {
    const dataDir = path.join(o.dir, "data")
    const manifestFile = path.join(dataDir, EXPORT_MANIFEST)
    const manifest = yield* Effect.tryPromise({
      try: async () => JSON.parse(await fs.readFile(manifestFile, "utf8")) as ExportManifest,
      catch: (e) => new ReadFailed({ path: manifestFile, reason: `${(e as Error).message} (run handoffOut into this directory first)` })
    })
    const format = manifest.settings.format as TokenShardFormat
    const imported = yield* importLlmcModel(o.trained, o.runDir, { config: o.config, tokenizer: o.config.tokenizer as TokenizerName })
    const { checkpoint } = yield* latestGoodCheckpoint(o.runDir)
    const model = checkpoint.model
    return yield* Effect.gen(function* () {
      const valFiles = manifest.files.filter((f) => f.split === "val")
      const tokens = new Uint16Array(valFiles.reduce((n, f) => n + f.tokens, 0))
      let at = 0
      for (const f of valFiles) {
        const t = yield* readTokenShard(path.join(dataDir, f.file), format)
        tokens.set(t, at)
        at += t.length
      }
      const B = o.batch ?? o.config.train.batch
      const T = Math.min(o.config.model.context, model.config.context)
      const windows = shardWindows(tokens, B, T, o.maxBatches ?? Math.max(1, Math.ceil(o.config.eval.tokens / (B * T))))
      const heldOut = yield* evaluate(model, windows)
      const probes = yield* Probes
      const induction = yield* probes.inductionScores({ repeatLength: Math.max(2, Math.min(20, Math.floor((model.config.context - 1) / 2))), batch: 4, seed: o.config.run.seed })
      let best = { layer: 0, head: 0, score: -Infinity }
      induction.induction.forEach((row, layer) => row.forEach((score, head) => (score > best.score ? (best = { layer, head, score }) : undefined)))
      const encoding = makeEncoding(imported.tokenizer)
      const report = path.join(o.runDir, "handoff-induction.html")
      yield* writeFileAtomic(report, inductionHtml(induction, (id) => encoding.decode([id]), `${o.trained} (imported from llm.c)`))
      return { checkpoint: imported.checkpoint, heldOut, induction: best, report }
    }).pipe(Effect.provide(Probes.fromModel(model)), Effect.ensuring(Effect.sync(() => model.dispose())))
  }).pipe(Effect.provide(TensorBackendLive("cpu")))

/** The whole round trip with `engine` in the middle: it gets the hand-off and returns its checkpoint file. */
export const handoff = (
  o: HandoffOutOptions & { readonly runDir: string; readonly engine: (out: HandoffOut & { readonly dir: string }) => Effect.Effect<string, unknown> }
) =>
  Effect.gen(function* () {
    const out = yield* handoffOut(o)
    const trained = yield* o.engine({ ...out, dir: o.dir })
    const back = yield* handoffBack({ config: o.config, dir: o.dir, trained, runDir: o.runDir })
    return { out, back }
  })

if (import.meta.url === `file://${process.argv[1]}`) {
  const [step, configFile, dir, trained, runDir] = process.argv.slice(2)
  const program = Effect.gen(function* () {
    const config = yield* loadConfig(configFile)
    if (step === "out") {
      const out = yield* handoffOut({ config, dir })
      process.stdout.write(`${out.manifest.files.length} token file(s) in ${out.dataDir}; model: ${out.model?.file ?? "none (run has no checkpoint)"}\n`)
    } else if (step === "back") {
      const back = yield* handoffBack({ config, dir, trained, runDir })
      process.stdout.write(`${back.checkpoint}: held-out loss ${back.heldOut.loss.toFixed(4)} on ${back.heldOut.tokens} tokens of the exported validation shard; strongest induction head L${back.induction.layer}H${back.induction.head} (${back.induction.score.toFixed(3)}); report ${back.report}\n`)
    } else {
      process.stderr.write("usage: handoff.ts out <config> <dir> | back <config> <dir> <trained.bin> <run-dir>\n")
      process.exitCode = 1
    }
  })
  Effect.runPromise(program).catch((e) => {
    process.stderr.write(`handoff: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}\n`)
    process.exit(1)
  })
}
