// The hook machinery every probe stands on: the cache keeps exactly the names asked for and
// their values equal what the model computed; a replacing hook really changes the forward pass;
// composition order is as documented; and nothing leaks a tensor.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { Effect, Exit } from "effect"
import { blockHookNames } from "../../src/model/hooks.ts"
import {
  allHookNames,
  cacheActivations,
  composeHooks,
  idsTensor,
  replaceHook,
  runWithCache,
  scopedCache
} from "../../src/interpret/hooks.ts"
import { maxAbsDiff, tinyConfig, tinyModel, useBackend } from "../helpers.ts"

const config = tinyConfig({ vocabSize: 13, context: 8, layers: 2, heads: 2 })
const prompt = [3, 1, 4, 1, 5, 9]

describe("hooks", () => {
  beforeAll(() => useBackend("wasm"))

  it("the model calls every listed hook name, and only those", () => {
    const model = tinyModel(config)
    const seen: string[] = []
    const ids = idsTensor([prompt])
    model.forward(ids, { hooks: (name) => void seen.push(name) }).dispose()
    ids.dispose()
    model.dispose()
    expect(seen).toEqual(allHookNames(config))
  })

  it("hook_pos_embed is [B, T, d], and a per-row [B, T, d] replacement changes only its row", () => {
    const model = tinyModel(config)
    const ids = idsTensor([prompt, prompt])
    const shapes: number[][] = []
    const plain = model.forward(ids, { hooks: (name, x) => void (name === "hook_pos_embed" && shapes.push(x.shape)) })
    expect(shapes).toEqual([[2, prompt.length, config.dModel]])
    // Zero the position embedding of row 1 only (TransformerLens-style per-batch replacement).
    const rowMask = tf.tensor3d([1, 0], [2, 1, 1])
    const patched = model.forward(ids, { hooks: replaceHook("hook_pos_embed", (x) => tf.mul(x, rowMask)) })
    const V = config.vocabSize
    const [a, b] = [plain.dataSync(), patched.dataSync()]
    const rowSize = prompt.length * V
    expect(maxAbsDiff(a.subarray(0, rowSize), b.subarray(0, rowSize))).toBe(0)
    expect(maxAbsDiff(a.subarray(rowSize), b.subarray(rowSize))).toBeGreaterThan(1e-3)
    tf.dispose([ids, plain, patched, rowMask])
    model.dispose()
  })

  it("caches only the requested names, with the model's own values, and leaks nothing", () => {
    const model = tinyModel(config)
    const ids = idsTensor([prompt])
    const before = tf.memory().numTensors
    const names = [blockHookNames(1).pattern, "ln_final.hook_normalized", blockHookNames(0).residPost]
    const { logits, cache } = runWithCache(model, ids, names)
    expect(cache.names().sort()).toEqual([...names].sort())
    expect(cache.get(blockHookNames(1).pattern).shape).toEqual([1, 2, 6, 6])
    // ln_final.hook_normalized is what the unembedding reads: recompute the logits from it.
    const h = cache.get("ln_final.hook_normalized")
    const again = tf.tidy(() => model.unembed(tf.reshape(h, [6, config.dModel]) as tf.Tensor2D).dataSync())
    expect(maxAbsDiff(again, logits.dataSync())).toBeLessThan(1e-5)
    // Pattern rows sum to one.
    const p = Array.from(cache.get(blockHookNames(1).pattern).dataSync())
    for (let r = 0; r < 2 * 6; r++) expect(p.slice(r * 6, r * 6 + 6).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5)
    logits.dispose()
    cache.dispose()
    expect(tf.memory().numTensors).toBe(before)
    ids.dispose()
    model.dispose()
  })

  it("a regular expression filter selects by pattern", () => {
    const model = tinyModel(config)
    const ids = idsTensor([prompt])
    const cache = cacheActivations(model, ids, /hook_resid_pre$/)
    expect(cache.names()).toEqual([blockHookNames(0).residPre, blockHookNames(1).residPre])
    cache.dispose()
    ids.dispose()
    model.dispose()
  })

  it("a replacing hook changes the output; replacing with the same value does not", () => {
    const model = tinyModel(config)
    const ids = idsTensor([prompt])
    const before = tf.memory().numTensors
    const plain = model.forward(ids)
    const same = model.forward(ids, { hooks: replaceHook(blockHookNames(0).attnOut, (x) => tf.mul(x, 1)) })
    const ablated = model.forward(ids, { hooks: replaceHook(blockHookNames(0).attnOut, (x) => tf.zerosLike(x)) })
    expect(maxAbsDiff(plain.dataSync(), same.dataSync())).toBe(0)
    expect(maxAbsDiff(plain.dataSync(), ablated.dataSync())).toBeGreaterThan(1e-3)
    tf.dispose([plain, same, ablated])
    expect(tf.memory().numTensors).toBe(before)
    ids.dispose()
    model.dispose()
  })

  it("composed hooks run in order: a cache after a patch sees the patched value", () => {
    const model = tinyModel(config)
    const ids = idsTensor([prompt])
    const name = blockHookNames(1).mlpOut
    const zero = replaceHook(name, (x) => tf.zerosLike(x))
    const after = cacheActivations(model, ids, [name], composeHooks(zero))
    expect(Math.max(...after.get(name).dataSync())).toBe(0)
    const untouched = cacheActivations(model, ids, [name])
    expect(Math.max(...untouched.get(name).dataSync().map(Math.abs))).toBeGreaterThan(0)
    after.dispose()
    untouched.dispose()
    ids.dispose()
    model.dispose()
  })

  it.effect("the scoped cache is freed when its scope closes, and rejects unknown names", () =>
    Effect.gen(function* () {
      const model = tinyModel(config)
      const before = tf.memory().numTensors
      const names = yield* Effect.scoped(
        Effect.gen(function* () {
          const cache = yield* scopedCache(model, [prompt], [blockHookNames(0).z])
          expect(tf.memory().numTensors).toBe(before + 1)
          return cache.names()
        })
      )
      expect(names).toEqual([blockHookNames(0).z])
      expect(tf.memory().numTensors).toBe(before)
      const typo = yield* Effect.exit(Effect.scoped(scopedCache(model, [prompt], ["blocks.0.attn.hook_patern"])))
      expect(Exit.isFailure(typo)).toBe(true)
      if (Exit.isFailure(typo)) expect(String(typo.cause)).toContain("no hook point named blocks.0.attn.hook_patern")
      const tooLong = yield* Effect.exit(Effect.scoped(scopedCache(model, [[1, 2, 3, 4, 5, 6, 7, 8, 9]], [blockHookNames(0).z])))
      expect(String(Exit.isFailure(tooLong) && tooLong.cause)).toContain("the prompt is 9 tokens but the model's context is 8")
      expect(tf.memory().numTensors).toBe(before)
      model.dispose()
    })
  )
})
