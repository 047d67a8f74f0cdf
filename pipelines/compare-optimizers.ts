// A composed experiment that needs a swapped service: the same run (same init, same data, same
// schedule and clip) trained once with AdamW and once with plain gradient descent, by providing a
// different Trainer layer through TrainerChoice; nothing in the pretrain pipeline changes. How much
// of the loss drop do AdamW's per-parameter step sizes buy at this learning rate? Run it with:
//   npx tsx pipelines/compare-optimizers.ts config/tiny.json [--set train.steps=100]
import { Effect, Layer } from "effect"
import * as path from "node:path"
import { Checkpointer } from "../src/checkpoint/service.ts"
import { loadConfig } from "../src/config/load.ts"
import { Trainer, TrainerChoice, type TrainerLayer } from "../src/train/service.ts"
import { pretrain, sharedLayer } from "./pretrain.ts"

export interface OptimizerRow {
  readonly optimizer: string
  readonly runDir: string
  readonly initialLoss: number
  readonly finalLoss: number
}

export const optimizers: ReadonlyArray<readonly [name: string, layer: TrainerLayer]> = [
  ["adamw", Trainer.live],
  ["sgd", Trainer.sgd]
]

/** Trains `configFile` once per optimizer layer, each in its own run directory, in the order given. */
export const compareOptimizers = (configFile: string, overrides: readonly string[] = [], choices = optimizers) =>
  Effect.scoped(
    Effect.gen(function* () {
      const base = yield* loadConfig(configFile, overrides)
      const shared = yield* Layer.build(sharedLayer(base))
      const rows: OptimizerRow[] = []
      for (const [name, layer] of choices) {
        const runDir = path.join(base.run.dir, name)
        const config = yield* loadConfig(configFile, [...overrides, `run.dir=${runDir}`])
        const result = yield* pretrain(config).pipe(
          Effect.provideService(TrainerChoice, layer),
          Effect.provide(Checkpointer.files(runDir)),
          Effect.provide(shared)
        )
        result.model.dispose()
        rows.push({ optimizer: name, runDir, initialLoss: result.initialEval?.loss ?? NaN, finalLoss: result.finalEval?.loss ?? NaN })
      }
      return rows
    })
  )

export const optimizerTable = (rows: readonly OptimizerRow[]) =>
  ["optimizer  held-out loss (start → end)  run", ...rows.map((r) => `${r.optimizer.padEnd(10)} ${r.initialLoss.toFixed(4)} → ${r.finalLoss.toFixed(4)}        ${r.runDir}`)].join("\n")

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2)
  const sets = args.flatMap((a, i) => (args[i - 1] === "--set" ? [a] : []))
  const [file] = args.filter((a, i) => a !== "--set" && args[i - 1] !== "--set")
  Effect.runPromise(compareOptimizers(file, sets)).then(
    (rows) => process.stdout.write(optimizerTable(rows) + "\n"),
    (e) => {
      process.stderr.write(`compare-optimizers: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}\n`)
      process.exit(1)
    }
  )
}
