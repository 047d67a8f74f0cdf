// The two composed experiments in pipelines/ run end to end on tiny configs: a learning-rate
// sweep (held-out loss per rate, best first) and a two-model comparison with the induction probe.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { compareModels, reportTable } from "../../pipelines/compare-models.ts"
import { lrSweep, sweepTable } from "../../pipelines/lr-sweep.ts"
import { tinyRunOverrides } from "./tiny-runs.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-experiments-"))
const tiny = tinyRunOverrides(dir, ["model.context=48"])

describe("composed experiments", () => {
  it.effect("learning-rate sweep: one run per rate, best first", () =>
    Effect.gen(function* () {
      const rows = yield* lrSweep("config/tiny.json", [1e-4, 1e-2], tiny)
      expect(rows.map((r) => r.lr).sort()).toEqual([1e-4, 1e-2])
      expect(rows[0].finalLoss).toBeLessThanOrEqual(rows[1].finalLoss)
      // At 6 steps the larger rate learns more.
      expect(rows[0].lr).toBe(1e-2)
      for (const r of rows) expect(fs.existsSync(path.join(r.runDir, "latest"))).toBe(true)
      expect(sweepTable(rows)).toContain("1.0e-2")
    }),
    240_000
  )

  it.effect("two models compared on held-out loss and probed for induction heads", () =>
    Effect.gen(function* () {
      const rows = yield* compareModels("config/tiny.json", [
        { name: "one-layer", overrides: ["model.layers=1"] },
        { name: "two-layer", overrides: ["model.layers=2"] }
      ], tiny)
      expect(rows.map((r) => r.name)).toEqual(["one-layer", "two-layer"])
      for (const r of rows) {
        expect(Number.isFinite(r.heldOutLoss)).toBe(true)
        expect(r.bestInduction.score).toBeGreaterThanOrEqual(0)
        expect(r.bestInduction.score).toBeLessThanOrEqual(1)
      }
      expect(rows[1].bestInduction.layer).toBeLessThan(2)
      expect(reportTable(rows)).toContain("two-layer")
    }),
    240_000
  )
})
