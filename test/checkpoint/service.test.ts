// One conformance suite for both Checkpointer layers (files and memory): save and restore give
// back the same weights, moments and state; retention keeps the newest K plus the best by
// held-out loss; an empty run has nothing to resume. Then a training run resumes through the
// memory layer exactly as through the files, proving the pipeline only sees the interface.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pretrain, pipelineLayer } from "../../pipelines/pretrain.ts"
import { Checkpointer } from "../../src/checkpoint/service.ts"
import { loadConfig } from "../../src/config/load.ts"
import { initAdamW } from "../../src/train/adamw.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"

const state = (step: number, valLoss?: number) => ({
  step,
  tokensSeen: step * 10,
  cursor: { shard: 0, rowGroup: 1, row: step, tokenOffset: 3, epoch: 0, seed: 1 },
  rng: [1, 2, 3, step],
  config: { note: "resolved config" },
  metrics: (valLoss === undefined ? {} : { val_loss: valLoss }) as Record<string, number>
})

const layers: Array<[string, () => Layer.Layer<Checkpointer>]> = [
  ["files", () => Checkpointer.files(fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-ckpt-svc-")))],
  ["memory", () => Checkpointer.memory()]
]

describe("Checkpointer conformance", () => {
  beforeAll(() => useBackend("wasm"))

  for (const [name, layer] of layers) {
    describe(name, () => {
      it.effect("restores exactly what was saved", () =>
        Effect.gen(function* () {
          const c = yield* Checkpointer
          const model = tinyModel(tinyConfig())
          const optimizer = initAdamW(model.params)
          optimizer.step = 7
          yield* c.save(model, optimizer, "bytes", state(3, 2.5), 5)
          const { checkpoint, notes } = yield* c.latestGood
          expect(notes).toEqual([])
          expect(checkpoint.state.step).toBe(3)
          expect(checkpoint.state.cursor).toEqual(state(3).cursor)
          expect(checkpoint.state.rng).toEqual([1, 2, 3, 3])
          expect(checkpoint.state.tokenizer).toBe("bytes")
          expect(checkpoint.optimizer.step).toBe(7)
          expect(checkpoint.model.config).toEqual(model.config)
          for (const [n, p] of model.params) expect(Array.from(checkpoint.model.params.get(n)!.dataSync())).toEqual(Array.from(p.dataSync()))
          checkpoint.model.dispose()
        }).pipe(Effect.provide(layer()))
      )

      it.effect("keeps the newest K plus the best, newest first", () =>
        Effect.gen(function* () {
          const c = yield* Checkpointer
          const model = tinyModel(tinyConfig())
          const optimizer = initAdamW(model.params)
          for (const [step, loss] of [[1, 5], [2, 3], [3, 4], [4, 4.5], [5, 4.2]]) yield* c.save(model, optimizer, "gpt2", state(step, loss), 2)
          const ids = yield* c.list
          expect(ids.map((id) => /step-0+(\d+)/.exec(id)![1])).toEqual(["5", "4", "2"])
          expect((yield* c.latestGood).checkpoint.state.step).toBe(5)
        }).pipe(Effect.provide(layer()))
      )

      it.effect("an empty run has nothing to resume", () =>
        Effect.gen(function* () {
          const c = yield* Checkpointer
          expect(yield* c.list).toEqual([])
          expect((yield* Effect.flip(c.latestGood)).message).toContain("no checkpoints to resume from")
        }).pipe(Effect.provide(layer()))
      )
    })
  }
})

describe("a training run resumed through the memory layer", () => {
  it.effect("continues with the same losses as an uninterrupted run", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-ckpt-mem-"))
      const overrides = [`run.dir=${dir}`, "backend=wasm", "tokenizer=bytes", "model.layers=1", "model.heads=2", "model.d_model=16", "model.d_ff=32", "model.context=16", "model.dropout=0.1", "train.warmup_steps=1", "train.lr=3e-3", "train.min_lr=3e-3", "train.batch=2", "eval.every=0", "eval.tokens=128", "checkpoint.every=2", "generate.max_new_tokens=2"]
      const losses = (run: { steps: ReadonlyArray<{ step: number; loss: number }> }) => run.steps.map((s) => [s.step, s.loss])
      // A constant learning rate after warmup, so stopping at 4 of 4 and continuing to 6 follows
      // the same schedule as 6 straight. The memory checkpointer is provided innermost, so it replaces the files layer that
      // pipelineLayer brings; the first and second halves share one.
      const train = (steps: number, resume: boolean, memory: Context.Context<Checkpointer>) =>
        loadConfig("config/tiny.json", [...overrides, `train.steps=${steps}`]).pipe(
          Effect.flatMap((config) => pretrain(config, resume).pipe(Effect.provide(memory), Effect.provide(pipelineLayer(config)))),
          Effect.tap((run) => Effect.sync(() => run.model.dispose()))
        )
      const full = yield* train(6, false, yield* Layer.build(Checkpointer.memory()))
      const shared = yield* Layer.build(Checkpointer.memory())
      const first = yield* train(4, false, shared)
      const second = yield* train(6, true, shared)
      expect(second.steps[0].step).toBe(5)
      expect(fs.existsSync(path.join(dir, "checkpoints"))).toBe(false) // nothing went to disk
      expect([...losses(first), ...losses(second)]).toEqual(losses(full))
    }).pipe(Effect.scoped),
    120_000
  )
})
