// Saving a run so it can be reopened: runs/<run>/checkpoints/step-<n>/ holds the weights, the
// AdamW moments and state.json (step, tokens seen, data cursor, RNG, resolved config, metrics,
// and the sha256 of each file). Everything is written into a hidden temporary directory, flushed,
// then renamed into place, and runs/<run>/latest is replaced atomically, so a crash at any
// instant leaves either the previous checkpoint or the complete new one.
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import type { GPT } from "../model/gpt.ts"
import { weightsMetadata } from "../model/weights.ts"
import type { AdamWState } from "../train/adamw.ts"
import { ReadFailed, sha256File, syncDirectory, WriteFailed, writeFileAtomic } from "./atomic.ts"
import { encodeSafetensors, type NamedTensor } from "./safetensors.ts"

export const CHECKPOINT_FORMAT_VERSION = 1

export interface CheckpointState {
  readonly step: number
  readonly tokensSeen: number
  readonly cursor: unknown
  readonly rng: readonly number[]
  readonly config: unknown
  readonly metrics: Record<string, number>
}

const toNamed = (tensors: ReadonlyMap<string, tf.Tensor>, prefix: string): Record<string, NamedTensor> => {
  const out: Record<string, NamedTensor> = {}
  for (const [name, t] of tensors) out[`${prefix}${name}`] = { dtype: "F32", shape: t.shape.slice(), data: t.dataSync() as Float32Array }
  return out
}

const attempt = <A>(target: string, what: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (e) => new WriteFailed({ path: target, reason: `${what}: ${String(e)}` }) })

export const checkpointName = (step: number) => `step-${String(step).padStart(8, "0")}`

/** Writes a checkpoint directory atomically and points runs/<run>/latest at it. */
export const saveCheckpoint = (
  runDir: string,
  model: GPT,
  optimizer: AdamWState,
  tokenizer: string,
  state: CheckpointState,
  keep: number
): Effect.Effect<string, WriteFailed> =>
  Effect.gen(function* () {
    const root = path.join(runDir, "checkpoints")
    const name = checkpointName(state.step)
    const final = path.join(root, name)
    const temp = path.join(root, `.${name}.${process.pid}.tmp`)
    yield* attempt(temp, "create directory", async () => {
      await fs.rm(temp, { recursive: true, force: true })
      await fs.mkdir(temp, { recursive: true })
    })
    const write = (file: string, bytes: Uint8Array | string) => writeFileAtomic(path.join(temp, file), bytes)
    yield* write("model.safetensors", encodeSafetensors(toNamed(model.params, ""), weightsMetadata(model.config, tokenizer)))
    yield* write("optimizer.safetensors", encodeSafetensors({ ...toNamed(optimizer.m, "m."), ...toNamed(optimizer.v, "v.") }, { step: String(optimizer.step) }))
    const files = ["model.safetensors", "optimizer.safetensors"]
    const sha256: Record<string, string> = {}
    for (const f of files) sha256[f] = yield* sha256File(path.join(temp, f)).pipe(Effect.mapError((e) => new WriteFailed({ path: e.path, reason: e.reason })))
    yield* write(
      "state.json",
      JSON.stringify({ format_version: CHECKPOINT_FORMAT_VERSION, tokenizer, ...state, sha256 }, null, 2) + "\n"
    )
    yield* attempt(final, "rename into place", async () => {
      await fs.rm(final, { recursive: true, force: true })
      await fs.rename(temp, final)
    })
    yield* syncDirectory(root)
    yield* writeFileAtomic(path.join(runDir, "latest"), path.join("checkpoints", name) + "\n")
    yield* prune(root, keep)
    return final
  })

/** Keeps the newest `keep` checkpoints. */
const prune = (root: string, keep: number) =>
  attempt(root, "remove old checkpoints", async () => {
    const names = (await fs.readdir(root)).filter((n) => /^step-\d+$/.test(n)).sort()
    for (const old of names.slice(0, Math.max(0, names.length - keep))) await fs.rm(path.join(root, old), { recursive: true, force: true })
  })

/**
 * Where the weights for `target` are: a .safetensors file as given; a checkpoint directory's
 * model.safetensors; a run directory's latest checkpoint.
 */
export const resolveWeightsPath = (target: string): Effect.Effect<string, ReadFailed> =>
  Effect.tryPromise({
    try: async () => {
      const stat = await fs.stat(target)
      if (stat.isFile()) return target
      const direct = path.join(target, "model.safetensors")
      if (await exists(direct)) return direct
      const latest = path.join(target, "latest")
      if (await exists(latest)) return path.join(target, (await fs.readFile(latest, "utf8")).trim(), "model.safetensors")
      throw new Error("no model.safetensors and no latest checkpoint in this directory")
    },
    catch: (e) => new ReadFailed({ path: target, reason: (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (e as Error).message })
  })

const exists = (p: string) => fs.access(p).then(() => true, () => false)
