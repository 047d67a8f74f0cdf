// The experiment that swaps a service: the same tiny run trained with the AdamW Trainer layer and
// with the SGD one (pipelines/compare-optimizers.ts). Both start from the same weights and are
// measured on the same held-out set, so their starting losses agree; the optimizer is all that
// differs, so their final losses do not, and each run directory holds its own checkpoint.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { compareOptimizers, optimizerTable } from "../../pipelines/compare-optimizers.ts"
import { tinyRunOverrides } from "./tiny-runs.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-optimizers-"))
const tiny = tinyRunOverrides(dir, ["train.lr=1e-2", "train.min_lr=1e-2"])

describe("compare optimizers (a swapped Trainer layer)", () => {
  it.effect("AdamW and SGD from the same start: same first loss, different results, one run each", () =>
    Effect.gen(function* () {
      const rows = yield* compareOptimizers("config/tiny.json", tiny)
      expect(rows.map((r) => r.optimizer)).toEqual(["adamw", "sgd"])
      expect(rows[1].initialLoss).toBe(rows[0].initialLoss)
      expect(rows[1].finalLoss).not.toBe(rows[0].finalLoss)
      // At this rate and length AdamW moves much further than plain gradient descent.
      expect(rows[0].finalLoss).toBeLessThan(rows[1].finalLoss)
      for (const r of rows) {
        expect(Number.isFinite(r.finalLoss)).toBe(true)
        expect(fs.readFileSync(path.join(r.runDir, "latest"), "utf8").trim()).toBe("checkpoints/step-00000006")
      }
      expect(optimizerTable(rows)).toContain("sgd")
    }),
    240_000
  )
})
