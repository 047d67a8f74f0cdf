// A composed experiment that swaps two services: every checkpoint of a finished run, measured on a
// second corpus. The Model layer is each checkpoint in turn (a model reference), the
// DocumentSource is the other corpus (all of it held out), and the Evaluator is the same held-out
// evaluator pretraining uses. Does the loss on text the run never saw fall as it does on its own
// validation split, or does it turn up (over-fitting to the training corpus)? Run it with:
//   npx tsx pipelines/eval-checkpoints.ts runs/tiny other-corpus.parquet [--tokens 4096]
import { Effect, Layer } from "effect"
import * as path from "node:path"
import { TensorBackendLive } from "../src/backend/backend.ts"
import { Checkpointer } from "../src/checkpoint/service.ts"
import { DocumentSource } from "../src/data/document-source.ts"
import { Evaluator } from "../src/eval/service.ts"
import { Model } from "../src/model/service.ts"
import { Tokenizer } from "../src/tokenizer/tokenizer.ts"

export interface CheckpointRow {
  readonly checkpoint: string
  readonly step: number
  readonly loss: number
  readonly perplexity: number
  readonly tokens: number
}

export interface CheckpointEvalOptions {
  readonly batch: number
  readonly context: number
  readonly maxTokens: number
}

/** Held-out loss of every checkpoint in `runDir` on `corpus`, oldest first. */
export const evaluateCheckpoints = <E>(runDir: string, corpus: Layer.Layer<DocumentSource, E>, options: CheckpointEvalOptions) =>
  Effect.gen(function* () {
    const checkpoints = [...(yield* Effect.provide(Effect.flatMap(Checkpointer, (c) => c.list), Checkpointer.files(runDir)))].reverse()
    return yield* Effect.forEach(checkpoints, (checkpoint) =>
      Effect.gen(function* () {
        const { encoding } = yield* Model
        const result = yield* Effect.flatMap(Evaluator, (e) => e.evaluate).pipe(
          Effect.provide(Evaluator.heldOut(options).pipe(Layer.provide(Layer.merge(corpus, Tokenizer.layer(encoding.name)))))
        )
        return { checkpoint, step: Number(/step-0*(\d+)$/.exec(checkpoint)?.[1] ?? NaN), ...result } satisfies CheckpointRow
      }).pipe(Effect.provide(Model.fromReference(checkpoint)))
    )
  })

export const checkpointTable = (rows: readonly CheckpointRow[]) =>
  ["step      held-out loss  perplexity  checkpoint", ...rows.map((r) => `${String(r.step).padEnd(9)} ${r.loss.toFixed(4).padStart(13)}  ${r.perplexity.toFixed(1).padStart(10)}  ${r.checkpoint}`)].join("\n")

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2)
  const tokensAt = args.indexOf("--tokens")
  const maxTokens = tokensAt >= 0 ? Number(args[tokensAt + 1]) : 4096
  const [runDir, corpus] = args.filter((_, i) => i !== tokensAt && i !== tokensAt + 1)
  const program = Effect.gen(function* () {
    const { config } = yield* Effect.provide(Model, Model.fromReference(runDir))
    return yield* evaluateCheckpoints(runDir, DocumentSource.parquet({ paths: [path.resolve(corpus)], split: "val", valFraction: 1 }), { batch: 4, context: config.context, maxTokens })
  })
  Effect.runPromise(program.pipe(Effect.provide(TensorBackendLive("auto")))).then(
    (rows) => process.stdout.write(checkpointTable(rows) + "\n"),
    (e) => {
      process.stderr.write(`eval-checkpoints: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}\n`)
      process.exit(1)
    }
  )
}
