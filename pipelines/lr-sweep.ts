// A composed experiment: train the same config at several learning rates and compare held-out
// loss. The backend, tokenizer and data layers are built once and shared; each rate gets its own
// Checkpointer layer (its own run directory) swapped in under the same pretrain pipeline. This file
// only says what to vary and how to report it. Run it with:
//   npx tsx pipelines/lr-sweep.ts config/tiny.json 1e-3 3e-3 1e-2 [--set train.steps=100]
import { Effect, Layer } from "effect"
import * as path from "node:path"
import { Checkpointer } from "../src/checkpoint/service.ts"
import { loadConfig } from "../src/config/load.ts"
import { pretrain, sharedLayer } from "./pretrain.ts"

export interface SweepRow {
  readonly lr: number
  readonly runDir: string
  readonly initialLoss: number
  readonly finalLoss: number
}

/** Trains `configFile` once per learning rate, each in its own run directory; best first. */
export const lrSweep = (configFile: string, learningRates: readonly number[], overrides: readonly string[] = []) =>
  Effect.scoped(
    Effect.gen(function* () {
      const base = yield* loadConfig(configFile, overrides)
      const shared = yield* Layer.build(sharedLayer(base))
      const rows: SweepRow[] = []
      for (const lr of learningRates) {
        const runDir = path.join(base.run.dir, `lr-${lr}`)
        const config = yield* loadConfig(configFile, [...overrides, `train.lr=${lr}`, `train.min_lr=${lr / 10}`, `run.dir=${runDir}`])
        const result = yield* pretrain(config).pipe(Effect.provide(Checkpointer.files(runDir)), Effect.provide(shared))
        result.model.dispose()
        rows.push({ lr, runDir, initialLoss: result.initialEval?.loss ?? NaN, finalLoss: result.finalEval?.loss ?? NaN })
      }
      return rows.sort((a, b) => a.finalLoss - b.finalLoss)
    })
  )

export const sweepTable = (rows: readonly SweepRow[]) =>
  ["lr        held-out loss (start → end)  run", ...rows.map((r) => `${r.lr.toExponential(1).padEnd(9)} ${r.initialLoss.toFixed(4)} → ${r.finalLoss.toFixed(4)}        ${r.runDir}`)].join("\n")

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2)
  const sets = args.flatMap((a, i) => (args[i - 1] === "--set" ? [a] : []))
  const [file, ...rest] = args.filter((a, i) => a !== "--set" && args[i - 1] !== "--set")
  const rates = rest.map(Number)
  Effect.runPromise(lrSweep(file, rates, sets)).then(
    (rows) => process.stdout.write(sweepTable(rows) + "\n"),
    (e) => {
      process.stderr.write(`lr-sweep: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}\n`)
      process.exit(1)
    }
  )
}
