// Why this file exists: every probe is "run the model, read or replace some named activations".
// The model already calls a hook at each named point (src/model/hooks.ts); this file turns that
// single callback into the instruments probes need: a cache that keeps only the activations a
// filter asks for, hooks that replace an activation, and a way to compose them. The model has no
// probe mode; these are ordinary forward passes with a hook function.
//
// Memory: the model runs inside tf.tidy, which disposes every intermediate when the forward pass
// ends. A cached activation is therefore cloned and kept (tf.keep) and belongs to the cache until
// `dispose()`; nothing else outlives the forward pass.
import * as tf from "@tensorflow/tfjs"
import { Effect, type Scope } from "effect"
import type { ModelConfig } from "../model/config.ts"
import type { GPT } from "../model/gpt.ts"
import { blockHookNames, type HookFn } from "../model/hooks.ts"
import { ProbeInputError } from "./errors.ts"

/** Every hook name the model calls, in the order a forward pass reaches them. */
export const allHookNames = (config: ModelConfig): string[] => {
  const names = ["hook_embed"]
  if (config.position === "learned") names.push("hook_pos_embed")
  for (let layer = 0; layer < config.layers; layer++) {
    const b = blockHookNames(layer)
    names.push(b.residPre, b.ln1, b.q, b.k, b.v, b.scores, b.pattern, b.z, b.attnOut, b.residMid, b.ln2, b.mlpPre, b.mlpPost, b.mlpOut, b.residPost)
  }
  names.push("ln_final.hook_normalized")
  return names
}

/** Which activations to keep: a list of names, a pattern, or a predicate. */
export type NameFilter = ReadonlyArray<string> | RegExp | ((name: string) => boolean)

export const matchesFilter = (filter: NameFilter, name: string): boolean =>
  typeof filter === "function" ? filter(name) : filter instanceof RegExp ? filter.test(name) : filter.includes(name)

/** Names in a list filter that the model never calls (a typo would otherwise cache nothing, silently). */
export const unknownHookNames = (config: ModelConfig, filter: NameFilter): string[] => {
  if (typeof filter === "function" || filter instanceof RegExp) return []
  const known = new Set(allHookNames(config))
  return filter.filter((n) => !known.has(n))
}

/** Named activations kept after a forward pass. The cache owns them until `dispose()`. */
export class ActivationCache {
  private readonly store = new Map<string, tf.Tensor>()

  /** Keeps a copy of `activation` (the original is disposed with the forward pass's tidy scope). */
  add(name: string, activation: tf.Tensor): void {
    this.store.get(name)?.dispose()
    this.store.set(name, tf.keep(activation.clone()))
  }

  has(name: string): boolean {
    return this.store.has(name)
  }

  get(name: string): tf.Tensor {
    const t = this.store.get(name)
    if (t === undefined) throw new Error(`activation ${name} was not cached (cached: ${this.names().join(", ") || "none"})`)
    return t
  }

  names(): string[] {
    return [...this.store.keys()]
  }

  get size(): number {
    return this.store.size
  }

  dispose(): void {
    for (const t of this.store.values()) t.dispose()
    this.store.clear()
  }
}

/** A hook that records the activations `filter` selects into `cache` and replaces nothing. */
export const cachingHook = (filter: NameFilter, cache: ActivationCache): HookFn => (name, activation) => {
  if (matchesFilter(filter, name)) cache.add(name, activation)
}

/** A hook that replaces one named activation with `replace(activation)`. */
export const replaceHook = (target: string, replace: (activation: tf.Tensor) => tf.Tensor): HookFn => (name, activation) =>
  name === target ? replace(activation) : undefined

/**
 * Runs hooks in order at every point; each sees the activation as the previous hooks left it, so
 * `composeHooks(patch, cache)` caches the patched value and `composeHooks(cache, patch)` the original.
 */
export const composeHooks = (...hooks: ReadonlyArray<HookFn | undefined>): HookFn => (name, activation) => {
  let current = activation
  let replaced = false
  for (const hook of hooks) {
    if (hook === undefined) continue
    const next = hook(name, current)
    if (next !== undefined) {
      current = next
      replaced = true
    }
  }
  return replaced ? current : undefined
}

/** Token ids as the [B, T] int32 tensor the model takes. */
export const idsTensor = (rows: ReadonlyArray<ReadonlyArray<number>>): tf.Tensor2D =>
  tf.tensor2d(rows.map((r) => Array.from(r)), [rows.length, rows[0]?.length ?? 0], "int32")

/**
 * One forward pass that keeps the activations `filter` selects. Returns the logits [B, T, V]
 * (the caller disposes them) and the cache (the caller disposes it).
 */
export const runWithCache = (
  model: GPT,
  ids: tf.Tensor2D,
  filter: NameFilter,
  extra?: HookFn
): { logits: tf.Tensor3D; cache: ActivationCache } => {
  const cache = new ActivationCache()
  const logits = model.forward(ids, { hooks: composeHooks(extra, cachingHook(filter, cache)) })
  return { logits, cache }
}

/** Like `runWithCache` but without computing the logits: only the cache comes back. */
export const cacheActivations = (model: GPT, ids: tf.Tensor2D, filter: NameFilter, extra?: HookFn): ActivationCache => {
  const cache = new ActivationCache()
  model.hidden(ids, { hooks: composeHooks(extra, cachingHook(filter, cache)) }).dispose()
  return cache
}

/** The cache as a scoped resource: disposed when the scope closes, whatever happens in between. */
export const scopedCache = (
  model: GPT,
  ids: ReadonlyArray<ReadonlyArray<number>>,
  filter: NameFilter
): Effect.Effect<ActivationCache, ProbeInputError, Scope.Scope> =>
  Effect.gen(function* () {
    const unknown = unknownHookNames(model.config, filter)
    if (unknown.length > 0) return yield* new ProbeInputError({ reason: `no hook point named ${unknown.join(", ")}; names look like blocks.0.attn.hook_pattern` })
    const problem = promptProblem(model.config, ids[0] ?? [], "prompt")
    if (problem !== undefined) return yield* problem
    return yield* Effect.acquireRelease(
      Effect.sync(() => {
        const t = idsTensor(ids)
        try {
          return cacheActivations(model, t, filter)
        } finally {
          t.dispose()
        }
      }),
      (cache) => Effect.sync(() => cache.dispose())
    )
  })

/** Why a prompt cannot be run (empty, longer than the context, ids outside the vocabulary), or undefined. */
export const promptProblem = (config: ModelConfig, ids: ReadonlyArray<number>, what: string): ProbeInputError | undefined => {
  if (ids.length === 0) return new ProbeInputError({ reason: `the ${what} is empty: give at least one token` })
  if (ids.length > config.context && config.position === "learned") {
    return new ProbeInputError({ reason: `the ${what} is ${ids.length} tokens but the model's context is ${config.context}; shorten it` })
  }
  const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= config.vocabSize)
  if (bad !== undefined) return new ProbeInputError({ reason: `token id ${bad} in the ${what} is outside the vocabulary [0, ${config.vocabSize})` })
  return undefined
}
