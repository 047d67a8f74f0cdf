// Activation patching with answers known in advance.
// 1. The hand-built circuit: clean "BOS a b c a" → b, corrupted "BOS a d c a" → d. The only
//    difference is the token at position 2, read by the induction head L1H0 as its value and
//    written to the last position. So exactly these sites restore the answer (score 1): the
//    residual stream at position 2 entering either block, the last position's attention output in
//    block 1, and head L1H0. Every other site scores exactly 0.
// 2. A random model: patching a prompt's own activations back into it gives 1 (clean into clean)
//    or 0 (corrupted into corrupted) at every site; the input-embedding site at the one differing
//    position gives 1 and causally earlier positions 0; and the batched sweep equals patching
//    one site per forward pass.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { Effect, Either, Exit } from "effect"
import { cacheActivations, idsTensor } from "../../src/interpret/hooks.ts"
import { defaultBatchRows, logitDiff, normalise, patchedLogitDiffs, patchingSweep, siteHook, sweepSites } from "../../src/interpret/patching.ts"
import { makeProbes } from "../../src/interpret/probes.ts"
import { renderPatching, stripAnsi } from "../../src/interpret/render-terminal.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"
import { BOS, circuitModel } from "./circuits.ts"

const [a, b, c, d] = [1, 2, 3, 4]

describe("activation patching on the hand-built circuit", () => {
  beforeAll(() => useBackend("wasm"))

  it("only the sites on the answer's path score 1; every other site scores 0", () => {
    const model = circuitModel()
    const before = tf.memory().numTensors
    const result = Either.getOrThrow(patchingSweep(model, { clean: [BOS, a, b, c, a], corrupted: [BOS, a, d, c, a], answer: b, wrong: d }))
    expect(tf.memory().numTensors).toBe(before)
    expect(result.cleanDiff).toBeGreaterThan(10)
    expect(result.corruptedDiff).toBeCloseTo(-result.cleanDiff, 4)
    const expected = {
      resid_pre: [[0, 0, 1, 0, 0], [0, 0, 1, 0, 0]],
      attn_out: [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1]],
      mlp_out: [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
      head: [[0, 0, 0], [1, 0, 0]]
    }
    for (const [kind, grid] of Object.entries(expected)) {
      const got = result.grids[kind as keyof typeof expected]!
      grid.forEach((row, l) => row.forEach((v, i) => expect(Math.abs(got[l][i] - v), `${kind} L${l} ${i}`).toBeLessThan(1e-4)))
    }
    // 2 × 5 positions × 3 kinds + 6 heads = 36 sites, all in one batched pass (+ clean + corrupted).
    expect(result.sites).toBe(36)
    expect(result.forwards).toBe(3)
    model.dispose()
  })

  it.effect("prompts of different token lengths fail with both lengths named", () =>
    Effect.gen(function* () {
      const model = circuitModel()
      const exit = yield* Effect.exit(makeProbes(model).patch({ clean: [BOS, a, b, c, a], corrupted: [BOS, a, d, a], answer: b, wrong: d }))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = (exit.cause as { error?: { _tag: string; message: string } }).error
        expect(error?._tag).toBe("PromptLengthMismatch")
        expect(error?.message).toBe(
          "the clean prompt is 5 tokens but the corrupted prompt is 4 tokens; activation patching needs prompts of the same token length (reword one so they align)"
        )
      }
      model.dispose()
    })
  )

  it.effect("identical baselines fail instead of dividing by zero", () =>
    Effect.gen(function* () {
      const model = circuitModel()
      // Token 5 never appears, so neither prompt predicts it or 6: both logit differences are 0.
      const exit = yield* Effect.exit(makeProbes(model).patch({ clean: [BOS, a, b, c, a], corrupted: [BOS, a, d, c, a], answer: 5, wrong: 6 }))
      expect(String(Exit.isFailure(exit) && exit.cause)).toContain("the normalised patching metric is undefined")
      model.dispose()
    })
  )
})

describe("activation patching on a random model", () => {
  beforeAll(() => useBackend("wasm"))
  const config = tinyConfig({ vocabSize: 19, context: 10, layers: 2, heads: 2 })
  const clean = [2, 7, 1, 8, 2, 8, 1]
  const corrupted = [2, 7, 1, 5, 2, 8, 1] // differs at position 3 only
  const [answer, wrong] = [4, 9]

  for (const tied of [true, false]) {
    it(`the metric equals the difference of the model's own logits (${tied ? "tied" : "separate"} head)`, () => {
      const model = tinyModel({ ...config, tied })
      const input = idsTensor([clean])
      const logits = model.forward(input)
      const V = config.vocabSize
      const last = Array.from(logits.dataSync().slice((clean.length - 1) * V, clean.length * V))
      tf.dispose([input, logits])
      expect(logitDiff(model, clean, answer, wrong)).toBeCloseTo(last[answer] - last[wrong], 4)
      model.dispose()
    })
  }

  it("patching a prompt with its own activations: clean into clean gives 1, corrupted into corrupted gives 0", () => {
    const model = tinyModel(config)
    const cleanDiff = logitDiff(model, clean, answer, wrong)
    const corruptedDiff = logitDiff(model, corrupted, answer, wrong)
    expect(Math.abs(cleanDiff - corruptedDiff)).toBeGreaterThan(1e-3)
    const sites = sweepSites(config.layers, config.heads, clean.length, ["resid_pre", "attn_out", "mlp_out", "head"])
    const needed = new Set(sites.map(siteHook))
    const before = tf.memory().numTensors
    for (const [prompt, baseline] of [[clean, 1], [corrupted, 0]] as const) {
      const input = idsTensor([prompt])
      const own = cacheActivations(model, input, (n) => needed.has(n))
      const { diffs } = patchedLogitDiffs(model, prompt, own, sites, answer, wrong)
      for (const m of diffs) expect(normalise(m, cleanDiff, corruptedDiff)).toBeCloseTo(baseline, 4)
      own.dispose()
      input.dispose()
    }
    expect(tf.memory().numTensors).toBe(before)
    model.dispose()
  })

  it("the embedding site at the differing position restores everything; earlier positions nothing", () => {
    const model = tinyModel(config)
    const result = Either.getOrThrow(patchingSweep(model, { clean, corrupted, answer, wrong }))
    const resid = result.grids.resid_pre!
    expect(resid[0][3]).toBeCloseTo(1, 4)
    for (const p of [0, 1, 2, 4, 5, 6]) expect(resid[0][p]).toBeCloseTo(0, 5)
    // Causality: nothing before position 3 differs, in any block.
    for (const kind of ["resid_pre", "attn_out", "mlp_out"] as const) {
      for (let l = 0; l < config.layers; l++) for (const p of [0, 1, 2]) expect(result.grids[kind]![l][p]).toBeCloseTo(0, 5)
    }
    model.dispose()
  })

  it("a gap that is small against the logit scale earns a warning; a clear one does not", () => {
    const model = tinyModel(config)
    // The scale, computed here in float64 from forward's logits: σ over the vocabulary at the last position.
    const input = idsTensor([clean])
    const logits = model.forward(input)
    const V = config.vocabSize
    const last = Array.from(logits.dataSync().slice((clean.length - 1) * V, clean.length * V))
    tf.dispose([input, logits])
    const mean = last.reduce((x, y) => x + y, 0) / V
    const sigma = Math.sqrt(last.reduce((x, y) => x + (y - mean) ** 2, 0) / V)
    // Every answer pair, ranked by how far apart the two prompts put it relative to σ.
    const pairs: Array<{ answer: number; wrong: number; ratio: number }> = []
    for (let i = 0; i < V; i++) {
      for (let j = i + 1; j < V; j++) {
        const gap = Math.abs(logitDiff(model, clean, i, j) - logitDiff(model, corrupted, i, j))
        pairs.push({ answer: i, wrong: j, ratio: gap / sigma })
      }
    }
    pairs.sort((x, y) => x.ratio - y.ratio)
    const weak = pairs.find((p) => p.ratio > 1e-3 && p.ratio < 0.05)!
    const strong = pairs[pairs.length - 1]
    expect(strong.ratio).toBeGreaterThan(0.2)
    const weakResult = Either.getOrThrow(patchingSweep(model, { clean, corrupted, answer: weak.answer, wrong: weak.wrong, kinds: ["head"] }))
    expect(weakResult.logitScale).toBeCloseTo(sigma, 4)
    expect(weakResult.warning).toContain("amplify noise")
    expect(weakResult.warning).toContain(`σ of the logits = ${sigma.toFixed(3)}`)
    expect(stripAnsi(renderPatching(weakResult, (id) => String(id), { color: false }))).toContain("warning: the clean and corrupted logit differences are only")
    const strongResult = Either.getOrThrow(patchingSweep(model, { clean, corrupted, answer: strong.answer, wrong: strong.wrong, kinds: ["head"] }))
    expect(strongResult.warning).toBeUndefined()
    expect(renderPatching(strongResult, (id) => String(id), { color: false })).not.toContain("warning")
    model.dispose()
  })

  it("the default batch holds about 4,096 tokens at width 256, fewer as the model widens", () => {
    expect(defaultBatchRows(16)).toBe(256)
    expect(defaultBatchRows(64)).toBe(64)
    expect(defaultBatchRows(64, 128)).toBe(64)
    expect(defaultBatchRows(11, 768)).toBe(124)
    expect(defaultBatchRows(1024, 768)).toBe(1)
    expect(defaultBatchRows(5000)).toBe(1)
  })

  it("the batched sweep equals one forward pass per site", () => {
    const model = tinyModel(config)
    const batched = Either.getOrThrow(patchingSweep(model, { clean, corrupted, answer, wrong }))
    const single = Either.getOrThrow(patchingSweep(model, { clean, corrupted, answer, wrong, batchRows: 1 }))
    expect(batched.forwards).toBe(3)
    expect(single.forwards).toBe(2 + batched.sites)
    for (const kind of ["resid_pre", "attn_out", "mlp_out", "head"] as const) {
      const x = batched.grids[kind]!.flat()
      const y = single.grids[kind]!.flat()
      x.forEach((v, i) => expect(Math.abs(v - y[i])).toBeLessThan(1e-4))
    }
    // Some site other than the trivial ones carries part of the answer in a random model.
    expect(batched.grids.head!.flat().some((v) => Math.abs(v) > 1e-3)).toBe(true)
    model.dispose()
  })
})
