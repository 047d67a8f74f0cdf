// The live progress line: step/total, loss, tokens/s, learning rate and ETA. On a terminal it
// rewrites one line in place; when output is a file or a pipe it prints plain lines, spaced so
// a log stays readable (about 50 lines per run, plus the first and last step).
import { Effect } from "effect"
import type { StepResult } from "./trainer.ts"

export const formatDuration = (seconds: number): string => {
  if (!Number.isFinite(seconds)) return "?"
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
}

export const progressLine = (r: StepResult, total: number, elapsedSeconds: number, startStep: number): string => {
  const done = r.step - startStep
  const rate = done > 0 ? elapsedSeconds / done : NaN
  const eta = rate * (total - r.step)
  const width = String(total).length
  return `step ${String(r.step).padStart(width)}/${total} | loss ${r.loss.toFixed(4)} | ${Math.round(r.tokensPerSecond).toLocaleString("en-US")} tok/s | lr ${r.lr.toExponential(2)} | ETA ${formatDuration(eta)}`
}

export interface Progress {
  readonly step: (r: StepResult) => Effect.Effect<void>
  /** A message on its own line (eval results, checkpoints), not overwritten by the progress. */
  readonly note: (line: string) => Effect.Effect<void>
  readonly done: Effect.Effect<void>
}

export const makeProgress = (total: number, startStep: number, out: NodeJS.WriteStream = process.stdout): Progress => {
  const started = performance.now()
  const tty = out.isTTY === true
  const every = Math.max(1, Math.floor((total - startStep) / 50))
  let pending = false
  return {
    step: (r) =>
      Effect.sync(() => {
        const line = progressLine(r, total, (performance.now() - started) / 1000, startStep)
        if (tty) {
          out.write(`\r\x1b[2K${line}`)
          pending = true
        } else if (r.step === startStep + 1 || r.step % every === 0 || r.step === total) out.write(line + "\n")
      }),
    note: (line) =>
      Effect.sync(() => {
        if (pending) out.write("\n")
        pending = false
        out.write(line + "\n")
      }),
    done: Effect.sync(() => {
      if (pending) out.write("\n")
      pending = false
    })
  }
}
