// The `glassbox interpret …` programs end to end: weights saved to disk as a real checkpoint file
// (byte tokenizer), loaded, probed, printed, and written as HTML. Also the one-line failures a
// user meets: prompts of different token lengths, an answer that is two tokens, a head that
// does not exist, a missing checkpoint.
import { afterAll, beforeAll, describe, expect, it, vi } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { Effect, Exit } from "effect"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { attentionCommand, inductionCommand, logitLensCommand, patchCommand } from "../../src/interpret/cli.ts"
import { saveWeights } from "../../src/model/weights.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"

const dir = mkdtempSync(join(tmpdir(), "glassbox-interpret-cli-"))
const weights = join(dir, "model.safetensors")
const common = { checkpoint: weights, backend: "wasm" as const, color: false }

/** Runs a command, returning what it printed and how it ended. */
const run = async <A, E>(program: Effect.Effect<A, E>) => {
  const lines: string[] = []
  const spy = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(args.join(" ")))
  try {
    const exit = await Effect.runPromiseExit(program)
    return { out: lines.join("\n"), exit }
  } finally {
    spy.mockRestore()
  }
}

const failure = (exit: Exit.Exit<unknown, unknown>) => (Exit.isFailure(exit) ? String((exit.cause as { error?: { message: string } }).error?.message) : "succeeded")

describe("interpret commands", () => {
  beforeAll(async () => {
    await useBackend("wasm")
    const model = tinyModel(tinyConfig({ vocabSize: 257, context: 24, layers: 2, heads: 2, dModel: 16, dFF: 32 }))
    await Effect.runPromise(saveWeights(weights, model, "bytes"))
    model.dispose()
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it("logit-lens prints the table and writes the HTML report", async () => {
    const html = join(dir, "reports", "lens.html")
    const before = tf.memory().numTensors
    const { out, exit } = await run(logitLensCommand({ ...common, text: "abcab", topK: 3, html }))
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(out).toContain("Logit lens: top-1 read-out after each stage")
    expect(out).toContain("Top-3 at position 5 (b)")
    expect(out).toMatch(/embed\s+L0\s+L1/)
    expect(out).toContain(`HTML report written to ${html}`)
    expect(readFileSync(html, "utf8")).toContain("<svg")
    expect(tf.memory().numTensors).toBe(before) // the model is disposed with the command
  })

  it("attention shows one head's pattern for --layer/--head", async () => {
    const { out, exit } = await run(attentionCommand({ ...common, text: "hello", layer: 1, head: 0 }))
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(out).toContain("Attention L1H0")
    expect(out).toContain("tokens: 0:<|endoftext|> 1:h 2:e 3:l 4:l 5:o")
    expect(out).toMatch(/L1H1\s+\S+/)
    const bad = await run(attentionCommand({ ...common, text: "hello", layer: 0, head: 5 }))
    expect(failure(bad.exit)).toBe("head 5 does not exist; each layer has heads 0..1")
  })

  it("induction runs the repeated-random-tokens test", async () => {
    const html = join(dir, "induction.html")
    const { out, exit } = await run(inductionCommand({ ...common, repeatLength: 8, batch: 2, html }))
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(out).toContain("Induction test: BOS + 8 random tokens repeated twice, batch 2, seed 0")
    expect(out).toMatch(/Loss on first sight \(tokens 2\.\.8\): \d+\.\d+ nats/)
    expect(existsSync(html)).toBe(true)
    // Without --repeat the test fits the context (24 positions: R = 11) and says so.
    const fitted = await run(inductionCommand({ ...common, batch: 1 }))
    expect(Exit.isSuccess(fitted.exit)).toBe(true)
    expect(fitted.out).toContain("Induction test: BOS + 11 random tokens repeated twice")
    expect(fitted.out).toContain("note: repeat length 11: the default of 50 needs 101 positions and the model's context is 24")
    const tooLong = await run(inductionCommand({ ...common, repeatLength: 50 }))
    expect(failure(tooLong.exit)).toContain("use a repeat length of at most 11")
  })

  it("patch sweeps every site, and explains bad prompts and answers in one line", async () => {
    const { out, exit } = await run(patchCommand({ ...common, clean: "cat sat", corrupted: "dog sat", answer: "!", wrong: "?" }))
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(out).toContain("Activation patching: logit(!) − logit(?)")
    expect(out).toContain("c/d")
    expect(out).toContain("Each head's output")
    // 8 tokens with BOS: 3 kinds × 2 layers × 8 positions + 4 heads = 52 sites in one batch.
    expect(out).toContain("52 sites in 3 forward passes")
    const mismatch = await run(patchCommand({ ...common, clean: "cat sat", corrupted: "cats sat", answer: "!", wrong: "?" }))
    expect(failure(mismatch.exit)).toBe(
      "the clean prompt is 8 tokens but the corrupted prompt is 9 tokens; activation patching needs prompts of the same token length (reword one so they align)"
    )
    const twoTokens = await run(patchCommand({ ...common, clean: "a", corrupted: "b", answer: "ok", wrong: "?" }))
    expect(failure(twoTokens.exit)).toContain('the correct answer "ok" is 2 tokens [111, 107]')
  })

  it("a missing checkpoint is a one-line failure", async () => {
    const { exit } = await run(logitLensCommand({ ...common, checkpoint: join(dir, "nope"), text: "a" }))
    expect(failure(exit)).toContain("no such file or directory")
  })
})
