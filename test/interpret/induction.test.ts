// The induction test on the hand-built circuit, where the truth is known: exactly one induction
// head (L1H0, score ≈ 1), one previous-token head (L0H0, score ≈ 1), the attention-sink head's
// previous-token score exactly 0 (it meets position t−1 = 0 only at t = 1, which the shared
// definition leaves out: the same score the attention analysis gives on each sequence), the uniform
// head's induction score the exact mean of 1/(t+1), and the repeat predicted with ≈ zero loss.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { Effect, Exit } from "effect"
import { attentionPatterns } from "../../src/interpret/attention.ts"
import { inductionScores, repeatedSequences } from "../../src/interpret/induction.ts"
import { renderInduction, stripAnsi } from "../../src/interpret/render-terminal.ts"
import { makeProbes } from "../../src/interpret/probes.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"
import { BOS, circuitModel, outLogitGap, V } from "./circuits.ts"

describe("induction heads", () => {
  beforeAll(() => useBackend("wasm"))

  it("the sequences are BOS + R tokens repeated, distinct within a row, seeded", () => {
    const rows = repeatedSequences(V, 8, 4, 3, BOS)
    expect(rows).toHaveLength(4)
    for (const row of rows) {
      expect(row).toHaveLength(17)
      expect(row[0]).toBe(BOS)
      expect(row.slice(1, 9)).toEqual(row.slice(9))
      expect(new Set(row.slice(1, 9)).size).toBe(8)
      expect(row.slice(1).includes(BOS)).toBe(false)
    }
    expect(repeatedSequences(V, 8, 4, 3, BOS)).toEqual(rows)
    expect(repeatedSequences(V, 8, 4, 4, BOS)).not.toEqual(rows)
  })

  it("finds exactly the circuit's induction head, with the constructed scores and losses", () => {
    const model = circuitModel()
    const before = tf.memory().numTensors
    const R = 8
    const result = inductionScores(model, { repeatLength: R, batch: 4, seed: 1, bos: BOS })
    expect(tf.memory().numTensors).toBe(before)
    expect(result.heads.map((h) => [h.layer, h.head])).toEqual([[1, 0]])
    expect(result.heads[0].score).toBeCloseTo(1, 6)
    expect(result.previousToken[0][0]).toBeCloseTo(1, 6)
    // The attention sink attends to 0 always; 0 is the previous position only for t = 1, which
    // the previous-token score leaves out (position 0 is where sinks look).
    expect(result.previousToken[0][1]).toBeLessThan(1e-6)
    // The all-zero head is uniform: A[t, s] = 1/(t+1) for every s ≤ t.
    const expected = Array.from({ length: R }, (_, i) => 1 / (R + 1 + i + 1)).reduce((a, b) => a + b, 0) / R
    expect(result.induction[0][2]).toBeCloseTo(expected, 6)
    for (const [l, h] of [[0, 0], [0, 1], [1, 1], [1, 2]]) expect(result.induction[l][h]).toBeLessThan(1e-6)
    // Behaviour: the repeat is predicted (the OUT block's one-hot gives a logit gap of ~22 nats).
    expect(result.lossSecondHalf).toBeLessThan((V - 1) * Math.exp(-outLogitGap) * 2)
    expect(result.lossFirstHalf).toBeGreaterThan(1)
    model.dispose()
  })

  it("the previous-token score is the attention analysis's, averaged over the batch (one definition)", () => {
    const model = circuitModel()
    const R = 8
    const result = inductionScores(model, { repeatLength: R, batch: 3, seed: 2, bos: BOS })
    const perSequence = result.sequences.map((seq) => attentionPatterns(model, seq).reports)
    for (let l = 0; l < 2; l++) {
      for (let h = 0; h < 3; h++) {
        const mean = perSequence.reduce((a, reports) => a + reports[l * 3 + h].scores.previousToken!, 0) / perSequence.length
        expect(result.previousToken[l][h], `L${l}H${h}`).toBeCloseTo(mean, 6)
      }
    }
    model.dispose()
  })

  it("without a repeat length, R fits the context, and the result says so", () => {
    const model = circuitModel() // context 24: R = 11
    const result = inductionScores(model, { batch: 2, bos: BOS })
    expect(result.repeatLength).toBe(11)
    expect(result.sequences[0]).toHaveLength(23)
    expect(result.repeatLengthNote).toBe(
      "repeat length 11: the default of 50 needs 101 positions and the model's context is 24 (2R + 1 ≤ 24); set it with --repeat"
    )
    expect(stripAnsi(renderInduction(result, { color: false }))).toContain("note: repeat length 11: the default of 50 needs 101 positions")
    expect(inductionScores(model, { repeatLength: 8, batch: 1, bos: BOS }).repeatLengthNote).toBeUndefined()
    model.dispose()
  })

  it.effect("the service accepts no repeat length on a short context", () =>
    Effect.gen(function* () {
      const model = circuitModel()
      const result = yield* makeProbes(model).inductionScores({ batch: 1 })
      expect(result.repeatLength).toBe(11)
      model.dispose()
    })
  )

  it("a random model has no induction head and no repeat advantage to speak of", () => {
    const config = tinyConfig({ vocabSize: 40, context: 24, layers: 2, heads: 2, dModel: 16, dFF: 32 })
    const model = tinyModel(config)
    const result = inductionScores(model, { repeatLength: 10, batch: 3 })
    expect(result.induction.flat().every((s) => s < 0.4)).toBe(true)
    expect(result.heads).toEqual([])
    expect(result.sequences).toHaveLength(3)
    model.dispose()
  })

  it.effect("asks for a shorter repeat when 2R + 1 exceeds the context", () =>
    Effect.gen(function* () {
      const model = circuitModel()
      const exit = yield* Effect.exit(makeProbes(model).inductionScores({ repeatLength: 50 }))
      expect(String(Exit.isFailure(exit) && exit.cause)).toContain(
        "the induction test needs 2·R + 1 = 101 positions but the model's context is 24; use a repeat length of at most 11"
      )
      model.dispose()
    })
  )
})
