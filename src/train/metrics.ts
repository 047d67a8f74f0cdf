// The run's record: runs/<run>/metrics.jsonl, one JSON object per event (step, eval,
// checkpoint, sample), appended as they happen so any plotting tool can read a live run.
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

export type MetricEvent =
  | { readonly event: "step"; readonly step: number; readonly loss: number; readonly lr: number; readonly grad_norm: number; readonly tokens_per_s: number; readonly tokens: number; readonly elapsed_s: number }
  | { readonly event: "eval"; readonly step: number; readonly loss: number; readonly perplexity: number; readonly tokens: number; readonly elapsed_s: number }
  | { readonly event: "checkpoint"; readonly step: number; readonly path: string; readonly elapsed_s: number }
  | { readonly event: "sample"; readonly step: number; readonly prompt: string; readonly text: string; readonly elapsed_s: number }
  | { readonly event: "skip"; readonly step: number; readonly loss: number; readonly grad_norm: number; readonly reason: string }
  | { readonly event: "resume"; readonly step: number; readonly from: string }
  | { readonly event: "stop"; readonly step: number; readonly reason: string }

export interface MetricsLog {
  readonly path: string
  readonly record: (event: MetricEvent) => Effect.Effect<void>
}

export const metricsLog = (runDir: string): MetricsLog => {
  const file = path.join(runDir, "metrics.jsonl")
  return {
    path: file,
    record: (event) =>
      Effect.sync(() => {
        fs.mkdirSync(runDir, { recursive: true })
        fs.appendFileSync(file, JSON.stringify({ time: new Date().toISOString(), ...event }) + "\n")
      })
  }
}

/**
 * On resume, forget what happened after the checkpoint: those steps will run again, and the
 * log should read as if the run had never stopped. Rewritten atomically.
 */
export const truncateMetricsAfter = (runDir: string, step: number): Effect.Effect<void> =>
  Effect.sync(() => {
    const file = path.join(runDir, "metrics.jsonl")
    if (!fs.existsSync(file)) return
    const kept = fs
      .readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => {
        if (l.trim() === "") return false
        try {
          return (JSON.parse(l) as { step?: number }).step! <= step
        } catch {
          return false // a line cut off by the kill
        }
      })
    const temp = `${file}.${process.pid}.tmp`
    fs.writeFileSync(temp, kept.map((l) => l + "\n").join(""))
    fs.renameSync(temp, file)
  })

export const readMetrics = (runDir: string): Array<MetricEvent & { time: string }> => {
  const file = path.join(runDir, "metrics.jsonl")
  if (!fs.existsSync(file)) return []
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as MetricEvent & { time: string })
}
