// The Checkpointer service: where a run's checkpoints live, behind one interface. The files
// layer is the real one (src/checkpoint/checkpointer.ts: atomic directories, checksums, fallback
// to the previous good checkpoint); the memory layer keeps snapshots in a Map, so a pipeline test
// can run without a disk. Both keep the newest K plus the best by held-out loss, and one
// conformance suite (test/checkpoint/service.test.ts) runs against both.
import * as tf from "@tensorflow/tfjs"
import { Context, Effect, Layer } from "effect"
import type { GPT } from "../model/gpt.ts"
import { gptFromValues } from "../model/gpt.ts"
import type { AdamWState } from "../train/adamw.ts"
import type { WriteFailed } from "../format/atomic.ts"
import { CHECKPOINT_FORMAT_VERSION, checkpointName, listCheckpoints, NoCheckpoint, type CheckpointState } from "../format/checkpoint-dir.ts"
import { latestGoodCheckpoint, saveCheckpoint, type LoadedCheckpoint } from "./checkpointer.ts"

export interface CheckpointerShape {
  /** Saves one checkpoint and applies retention (newest `keep` plus the best); returns its id. */
  readonly save: (model: GPT, optimizer: AdamWState, tokenizer: string, state: CheckpointState, keep: number) => Effect.Effect<string, WriteFailed>
  /** The newest checkpoint that loads and verifies, and notes on any skipped as damaged. */
  readonly latestGood: Effect.Effect<{ checkpoint: LoadedCheckpoint; notes: string[] }, NoCheckpoint>
  /** Checkpoint ids, newest first. */
  readonly list: Effect.Effect<string[]>
}

export class Checkpointer extends Context.Tag("glassbox/Checkpointer")<Checkpointer, CheckpointerShape>() {
  /** runs/<run>/checkpoints/step-<n>/ on disk. */
  static readonly files = (runDir: string): Layer.Layer<Checkpointer> =>
    Layer.succeed(Checkpointer, {
      save: (model, optimizer, tokenizer, state, keep) => saveCheckpoint(runDir, model, optimizer, tokenizer, state, keep),
      latestGood: latestGoodCheckpoint(runDir),
      list: listCheckpoints(runDir)
    })

  /** Snapshots in memory, for tests: same retention and restore behaviour, no disk. */
  static readonly memory = (): Layer.Layer<Checkpointer> => Layer.sync(Checkpointer, makeMemoryCheckpointer)
}

type Values = Map<string, { shape: number[]; data: Float32Array }>

interface Snapshot {
  readonly id: string
  readonly step: number
  readonly tokenizer: string
  readonly state: CheckpointState
  readonly config: GPT["config"]
  readonly params: Values
  readonly m: Values
  readonly v: Values
  readonly optimizerStep: number
}

const copyValues = (tensors: ReadonlyMap<string, tf.Tensor>): Values =>
  new Map([...tensors].map(([name, t]) => [name, { shape: t.shape.slice(), data: Float32Array.from(t.dataSync() as Float32Array) }] as const))

const makeMemoryCheckpointer = (): CheckpointerShape => {
  const store = new Map<string, Snapshot>()
  const newestFirst = () => [...store.values()].sort((a, b) => b.step - a.step)
  return {
    save: (model, optimizer, tokenizer, state, keep) =>
      Effect.sync(() => {
        const id = `memory:${checkpointName(state.step)}`
        store.set(id, {
          id,
          step: state.step,
          tokenizer,
          state,
          config: model.config,
          params: copyValues(model.params),
          m: copyValues(optimizer.m),
          v: copyValues(optimizer.v),
          optimizerStep: optimizer.step
        })
        const ordered = newestFirst()
        const newest = new Set(ordered.slice(0, keep).map((s) => s.id))
        const scored = ordered.filter((s) => Number.isFinite(s.state.metrics.val_loss))
        const best = scored.sort((a, b) => a.state.metrics.val_loss - b.state.metrics.val_loss)[0]?.id
        for (const s of ordered) if (!newest.has(s.id) && s.id !== best) store.delete(s.id)
        return id
      }),
    latestGood: Effect.suspend(() => {
      const newest = newestFirst()[0]
      if (newest === undefined) return Effect.fail(new NoCheckpoint({ runDir: "memory", reason: "no checkpoints to resume from" }))
      const toTensors = (values: Values) => new Map([...values].map(([name, v]) => [name, tf.tensor(v.data, v.shape)] as const))
      return Effect.sync(() => ({
        checkpoint: {
          dir: newest.id,
          state: { ...newest.state, format_version: CHECKPOINT_FORMAT_VERSION, tokenizer: newest.tokenizer, sha256: {} },
          model: gptFromValues(newest.config, newest.params),
          optimizer: { step: newest.optimizerStep, m: toTensors(newest.m), v: toTensors(newest.v) }
        },
        notes: []
      }))
    }),
    list: Effect.sync(() => newestFirst().map((s) => s.id))
  }
}
