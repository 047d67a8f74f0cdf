// A composed experiment: train two configs, compare their held-out loss, and run the
// induction-head test on both — does the deeper model grow an induction circuit the shallow one
// lacks? Layers, not rewiring: backend, tokenizer and data are built once and shared by every
// variant that keeps them; each variant swaps in its own Checkpointer (run directory), then the
// Probes layer over the model it trained. Run it with:
//   npx tsx pipelines/compare-models.ts config/tiny.json "model.layers=1" "model.layers=2" [--set train.steps=100]
import { Effect, Layer } from "effect"
import * as path from "node:path"
import { Checkpointer } from "../src/checkpoint/service.ts"
import { loadConfig } from "../src/config/load.ts"
import type { PipelineConfig } from "../src/config/schema.ts"
import { Probes } from "../src/interpret/probes.ts"
import { pretrain, sharedLayer } from "./pretrain.ts"

/** Whether two configs need the same backend, tokenizer and data layers. */
const sameShared = (a: PipelineConfig, b: PipelineConfig) => JSON.stringify([a.backend, a.tokenizer, a.data]) === JSON.stringify([b.backend, b.tokenizer, b.data])

export interface ModelReport {
  readonly name: string
  readonly runDir: string
  readonly heldOutLoss: number
  /** The strongest induction score of any head, and which head. */
  readonly bestInduction: { readonly layer: number; readonly head: number; readonly score: number }
  /** Loss on the repeated half of the induction sequences: low when the model copies. */
  readonly repeatLoss: number
}

/** Trains `configFile` under each variant's overrides, then evaluates and probes the result. */
export const compareModels = (configFile: string, variants: ReadonlyArray<{ name: string; overrides: readonly string[] }>, shared: readonly string[] = [], inductionLength = 20) =>
  Effect.scoped(
    Effect.gen(function* () {
      const base = yield* loadConfig(configFile, shared)
      const sharedServices = yield* Layer.build(sharedLayer(base))
      return yield* Effect.forEach(variants, ({ name, overrides }) =>
        Effect.gen(function* () {
          const runDir = path.join(base.run.dir, name)
          const config = yield* loadConfig(configFile, [...shared, ...overrides, `run.dir=${runDir}`])
          // A variant that changes the backend, tokenizer or data gets its own layers.
          const services = sameShared(base, config) ? Layer.succeedContext(sharedServices) : sharedLayer(config)
          // Not an acquireUseRelease: its acquire step is uninterruptible, and training streams
          // must be able to stop their data-preparation fibers.
          const trained = yield* pretrain(config).pipe(Effect.provide(Checkpointer.files(runDir)), Effect.provide(services))
          return yield* Effect.gen(function* () {
            const probes = yield* Probes
            const induction = yield* probes.inductionScores({ repeatLength: inductionLength, batch: 4, seed: 0 })
            let best = { layer: 0, head: 0, score: -Infinity }
            induction.induction.forEach((row, layer) => row.forEach((score, head) => (score > best.score ? (best = { layer, head, score }) : undefined)))
            return { name, runDir, heldOutLoss: trained.finalEval?.loss ?? NaN, bestInduction: best, repeatLoss: induction.lossSecondHalf } satisfies ModelReport
          }).pipe(Effect.provide(Probes.fromModel(trained.model)), Effect.ensuring(Effect.sync(() => trained.model.dispose())))
        })
      )
    })
  )

export const reportTable = (rows: readonly ModelReport[]) =>
  [
    "model      held-out loss  best induction head  repeat loss",
    ...rows.map((r) => `${r.name.padEnd(10)} ${r.heldOutLoss.toFixed(4).padStart(13)}  L${r.bestInduction.layer}H${r.bestInduction.head} ${r.bestInduction.score.toFixed(3).padStart(14)}  ${r.repeatLoss.toFixed(3).padStart(11)}`)
  ].join("\n")

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2)
  const shared = args.flatMap((a, i) => (args[i - 1] === "--set" ? [a] : []))
  const [file, ...variants] = args.filter((a, i) => a !== "--set" && args[i - 1] !== "--set")
  Effect.runPromise(compareModels(file, variants.map((v, i) => ({ name: `model-${i + 1}`, overrides: v.split(",") })), shared)).then(
    (rows) => process.stdout.write(reportTable(rows) + "\n"),
    (e) => {
      process.stderr.write(`compare-models: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}\n`)
      process.exit(1)
    }
  )
}
