// config/interpret.json as a pipeline: the plan gives each probe its own threshold (the attention
// analysis gets attention_threshold, not induction_threshold), includes activation patching with
// prompts that align token for token, and leaves the induction repeat length to the model's context
// when the config does not set it. Then the whole recipe runs on a small random model with the
// GPT-2 vocabulary saved to a temporary .safetensors file and writes all four reports.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"
import { interpret, interpretPlan } from "../../pipelines/interpret.ts"
import { loadConfig } from "../../src/config/load.ts"
import { saveWeights } from "../../src/model/weights.ts"
import { makeEncoding } from "../../src/tokenizer/tokenizer.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"

const dir = mkdtempSync(join(tmpdir(), "glassbox-interpret-pipeline-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("the interpret pipeline", () => {
  it.effect("config/interpret.json runs every probe, each with its own threshold", () =>
    Effect.gen(function* () {
      const config = yield* loadConfig("config/interpret.json", ["probes.attention_threshold=0.3", "probes.induction_threshold=0.6"])
      const plan = interpretPlan(config)
      expect(plan.attention?.threshold).toBe(0.3)
      expect(plan.induction?.threshold).toBe(0.6)
      expect(plan.logitLens?.text).toBe(config.probes.text)
      expect(plan.patching).toBeDefined()
      // The recipe runs on the byte-level tiny run: prompts that match byte for byte, one-byte answers.
      const bytes = makeEncoding("bytes")
      const patching = plan.patching!
      expect(bytes.encode(patching.clean).length).toBe(bytes.encode(patching.corrupted).length)
      expect(bytes.encode(patching.answer)).toHaveLength(1)
      expect(bytes.encode(patching.wrong)).toHaveLength(1)
      expect(patching.html).toBe(join("runs/tiny/reports", "patching.html"))
      const bare = interpretPlan(yield* loadConfig("config/interpret.json", ["probes.patching=false", "probes.logit_lens=false"]))
      expect(Object.keys(bare).sort()).toEqual(["attention", "induction"])
    })
  )

  it.effect("writes the four reports on a random byte-level model, the repeat length fitted to its context", () =>
    Effect.gen(function* () {
      yield* Effect.promise(() => useBackend("wasm"))
      const model = tinyModel(tinyConfig({ vocabSize: 257, context: 64, dModel: 16, heads: 2, layers: 2, dFF: 32 }))
      const file = join(dir, "model.safetensors")
      yield* saveWeights(file, model, "bytes")
      model.dispose()
      const reports = join(dir, "reports")
      const config = yield* loadConfig("config/interpret.json", ["backend=wasm", `probes.checkpoint=${file}`, `probes.html_dir=${reports}`, "probes.induction_batch=2"])
      // The shipped config sets R = 30; leave it unset so the model's context decides.
      const { induction_length: _, ...probes } = config.probes
      yield* interpret({ ...config, probes })
      expect(readdirSync(reports).sort()).toEqual(["attention.html", "induction.html", "logit-lens.html", "patching.html"])
      const induction = readFileSync(join(reports, "induction.html"), "utf8")
      expect(induction).toContain("repeat length 31: the default of 50 needs 101 positions and the model&#39;s context is 64")
      expect(readFileSync(join(reports, "patching.html"), "utf8")).toContain("Each head")
    }), 120_000)
})
