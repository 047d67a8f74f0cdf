// Why this file exists: downloading 30 GB or tokenising a dataset takes long enough that a
// person needs to see bytes done, rate and time left. On a terminal one line is redrawn in
// place (at most ten times a second); in a log file or a pipe, plain lines are printed at
// every tenth of the way (and at least every 30 s), so logs stay short and readable.

/** "1.23 GB", "512 KB", "17 B" (decimal units, as disks and the Hub count). */
export const formatBytes = (n: number): string => {
  if (!Number.isFinite(n)) return "?"
  const units = ["B", "KB", "MB", "GB", "TB"]
  let value = n
  let unit = 0
  while (Math.abs(value) >= 1000 && unit < units.length - 1) {
    value /= 1000
    unit++
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`
}

export const formatCount = (n: number): string => Math.round(n).toLocaleString("en-US")

export const formatSeconds = (seconds: number): string => {
  if (!Number.isFinite(seconds) || seconds < 0) return "?"
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
}

export type ProgressUnit = "bytes" | "count"

export interface ProgressState {
  readonly label: string
  readonly done: number
  /** Undefined when the end is not known: no bar, no ETA. */
  readonly total: number | undefined
  readonly elapsedSeconds: number
  readonly unit: ProgressUnit
  /** What a `count` counts ("row groups", "tokens"). */
  readonly noun?: string
}

/** One progress line: label, bar, amounts, rate, ETA. Pure, so the format is tested without a terminal. */
export const progressText = (s: ProgressState, barWidth = 24): string => {
  const amount = s.unit === "bytes" ? formatBytes : formatCount
  const noun = s.unit === "count" && s.noun !== undefined ? ` ${s.noun}` : ""
  const rate = s.elapsedSeconds > 0 ? s.done / s.elapsedSeconds : 0
  const rateText = s.unit === "bytes" ? `${formatBytes(rate)}/s` : `${formatCount(rate)}${noun}/s`
  if (s.total === undefined || s.total <= 0) return `${s.label} ${amount(s.done)}${noun} | ${rateText}`
  const fraction = Math.min(1, s.done / s.total)
  const filled = Math.round(fraction * barWidth)
  const bar = `[${"=".repeat(Math.max(0, filled - 1))}${filled > 0 ? (fraction >= 1 ? "=" : ">") : ""}${" ".repeat(barWidth - filled)}]`
  const eta = rate > 0 ? (s.total - s.done) / rate : NaN
  return `${s.label} ${bar} ${(fraction * 100).toFixed(0).padStart(3)}% ${amount(s.done)}/${amount(s.total)}${noun} | ${rateText} | ETA ${formatSeconds(eta)}`
}

export interface ProgressBar {
  readonly update: (done: number) => void
  /** Print the final state and end the line. */
  readonly finish: (done?: number) => void
  /** A message on its own line, not overwritten by the bar. */
  readonly note: (line: string) => void
}

export interface ProgressBarOptions {
  readonly label: string
  readonly total: number | undefined
  readonly unit: ProgressUnit
  readonly noun?: string
  readonly out?: NodeJS.WritableStream & { isTTY?: boolean }
  /** Clock in milliseconds (tests pass a fake). */
  readonly now?: () => number
}

export const makeProgressBar = (options: ProgressBarOptions): ProgressBar => {
  const out = options.out ?? process.stderr
  const now = options.now ?? (() => performance.now())
  const tty = out.isTTY === true
  const started = now()
  let lastDraw = -Infinity
  let lastTenth = -1
  let done = 0
  let pending = false
  const text = () => progressText({ label: options.label, done, total: options.total, elapsedSeconds: (now() - started) / 1000, unit: options.unit, noun: options.noun })
  const draw = (force: boolean) => {
    const t = now()
    if (tty) {
      if (!force && t - lastDraw < 100) return
      out.write(`\r\x1b[2K${text()}`)
      pending = true
    } else {
      const tenth = options.total !== undefined && options.total > 0 ? Math.floor((done / options.total) * 10) : -1
      if (!force && tenth === lastTenth && t - lastDraw < 30_000) return
      lastTenth = tenth
      out.write(`${text()}\n`)
    }
    lastDraw = t
  }
  return {
    update: (value) => {
      done = value
      draw(false)
    },
    finish: (value) => {
      if (value !== undefined) done = value
      draw(true)
      if (tty && pending) out.write("\n")
      pending = false
    },
    note: (line) => {
      if (tty && pending) out.write("\n")
      pending = false
      out.write(`${line}\n`)
    }
  }
}
