// The experiment that swaps the Model and the DocumentSource: every checkpoint of a tiny run,
// measured on a second corpus (documents the run never trained on). One row per checkpoint,
// oldest first, all on the same tokens; the last row is what the trained model itself scores on
// that corpus, computed here without the services.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { checkpointTable, evaluateCheckpoints } from "../../pipelines/eval-checkpoints.ts"
import { pipelineLayer, pretrain } from "../../pipelines/pretrain.ts"
import { loadConfig } from "../../src/config/load.ts"
import { DocumentSource } from "../../src/data/document-source.ts"
import { Packer } from "../../src/data/packer.ts"
import { evaluate } from "../../src/eval/evaluator.ts"
import { makeEncoding } from "../../src/tokenizer/tokenizer.ts"
import { tinyRunOverrides } from "./tiny-runs.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-eval-ckpts-"))
const tiny = tinyRunOverrides(dir, ["train.lr=1e-2", "checkpoint.every=2", "checkpoint.keep=5"])
// A second corpus: nothing like the shipped one's prose.
const other = Array.from({ length: 30 }, (_, i) => ({ id: `ledger-${i}`, text: `${1000 + i * 37} ${i % 3 === 0 ? "DEBIT" : "CREDIT"} account-${i * 11} ; balance ${(i * 123.45).toFixed(2)}\n` }))
const corpus = () => DocumentSource.fromDocuments(other, { split: "val", valFraction: 1 })

describe("every checkpoint of a run on a second corpus", () => {
  it.effect("one row per checkpoint, oldest first, the last one the trained model's own score", () =>
    Effect.gen(function* () {
      const config = yield* loadConfig("config/tiny.json", tiny)
      const trained = yield* pretrain(config).pipe(Effect.provide(pipelineLayer(config)))
      const options = { batch: 2, context: 32, maxTokens: 256 }
      const rows = yield* evaluateCheckpoints(dir, corpus(), options)
      expect(rows.map((r) => r.step)).toEqual([2, 4, 6])
      expect(new Set(rows.map((r) => r.tokens)).size).toBe(1)
      expect(rows.every((r) => Number.isFinite(r.loss))).toBe(true)
      expect(new Set(rows.map((r) => r.loss)).size).toBe(3)
      // Independently: the final weights, still in memory, on the same windows of the same corpus.
      const windows = yield* Effect.flatMap(DocumentSource, (source) => Packer.validationBatches(makeEncoding("bytes"), source, options)).pipe(Effect.provide(corpus()))
      const direct = yield* evaluate(trained.model, windows)
      trained.model.dispose()
      expect(rows[2].loss).toBeCloseTo(direct.loss, 6)
      expect(rows[2].tokens).toBe(direct.tokens)
      expect(checkpointTable(rows)).toContain("step-00000004")
    }),
    240_000
  )
})
