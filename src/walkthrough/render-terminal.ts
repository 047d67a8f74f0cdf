// The walkthrough in a terminal: each stage with its formulas (Unicode), facts and matrices,
// numbers coloured by sign (blue positive, red negative) and brightness by magnitude relative to
// the largest entry of the same matrix. Wide matrices are cut to `maxCols` unless `full` is set.
import { Either } from "effect"
import { formatScaled, numberScale, scaleLabel, shapeLabel } from "./format.ts"
import type { Stage, StageValue, Table } from "./stages.ts"
import { WalkthroughInputError } from "./vocab.ts"
import type { WalkthroughResult } from "./walkthrough.ts"

export interface TerminalOptions {
  /** print only this stage (one of STAGE_NAMES) */
  readonly stage?: string
  /** ANSI colours (256-colour palette) */
  readonly color: boolean
  /** show every row and column (default: at most 16 columns and 24 rows per matrix) */
  readonly full?: boolean
  /** wrap prose at this width (default 100) */
  readonly width?: number
}

const MAX_COLS = 16
const MAX_ROWS = 24
const LABEL_WIDTH = 16

// 256-colour ramps, faint to strong
const POSITIVE = [246, 110, 74, 33, 27]
const NEGATIVE = [246, 174, 167, 160, 196]

interface Paint {
  readonly fg: (code: number, s: string) => string
  readonly bold: (s: string) => string
  readonly dim: (s: string) => string
}

const paint = (color: boolean): Paint =>
  color
    ? {
        fg: (code, s) => `\x1b[38;5;${code}m${s}\x1b[0m`,
        bold: (s) => `\x1b[1m${s}\x1b[0m`,
        dim: (s) => `\x1b[2m${s}\x1b[0m`
      }
    : { fg: (_c, s) => s, bold: (s) => s, dim: (s) => s }

const fit = (s: string, width: number): string => (s.length > width ? s.slice(0, width - 1) + "…" : s)

const wrap = (text: string, width: number, indent: string): string[] => {
  const lines: string[] = []
  let line = ""
  for (const word of text.split(/\s+/)) {
    if (line.length > 0 && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line)
      line = word
    } else line = line.length === 0 ? word : `${line} ${word}`
  }
  if (line.length > 0) lines.push(indent + line)
  return lines
}

const renderValue = (v: StageValue, p: Paint, full: boolean): string[] => {
  const [rows, cols] = v.shape.length === 1 ? [1, v.shape[0]] : [v.shape[0], v.shape.slice(1).reduce((a, b) => a * b, 1)]
  const scale = numberScale(v.data)
  const showRows = full ? rows : Math.min(rows, MAX_ROWS)
  const showCols = full ? cols : Math.min(cols, MAX_COLS)
  const cells: string[][] = []
  let width = 1
  for (let i = 0; i < showRows; i++) {
    const r: string[] = []
    for (let j = 0; j < showCols; j++) {
      const text = formatScaled(v.data[i * cols + j], scale)
      width = Math.max(width, text.length)
      r.push(text)
    }
    cells.push(r)
  }
  const colLabels = v.colLabels?.slice(0, showCols)
  if (colLabels !== undefined) width = Math.max(width, Math.min(10, Math.max(...colLabels.map((l) => l.length))))
  const rowLabelWidth = v.rowLabels === undefined ? 0 : Math.min(LABEL_WIDTH, Math.max(...v.rowLabels.map((l) => l.length)))
  const colour = (x: number, text: string): string => {
    if (!Number.isFinite(x)) return p.dim(text)
    if (x === 0 || scale.max === 0) return p.dim(text)
    const level = Math.min(4, Math.floor((Math.abs(x) / scale.max) * 5))
    const s = p.fg((x > 0 ? POSITIVE : NEGATIVE)[level], text)
    return level === 4 ? p.bold(s) : s
  }
  const header = [
    p.bold(`  ▸ ${v.label}`),
    p.dim(shapeLabel(v.shape)),
    ...(v.key === undefined || v.key === v.label ? [] : [p.dim(v.key)]),
    ...(scaleLabel(scale) === "" ? [] : [scaleLabel(scale)])
  ].join("  ")
  const lines = [header]
  const pad = " ".repeat(4 + (rowLabelWidth > 0 ? rowLabelWidth + 1 : 0))
  if (colLabels !== undefined) lines.push(p.dim(pad + colLabels.map((l) => fit(l, width).padStart(width)).join(" ")))
  cells.forEach((r, i) => {
    const label = v.rowLabels === undefined ? "" : fit(v.rowLabels[i] ?? "", rowLabelWidth).padEnd(rowLabelWidth) + " "
    const body = r.map((text, j) => colour(v.data[i * cols + j], text.padStart(width))).join(" ")
    lines.push(`    ${p.dim(label)}${body}${showCols < cols ? p.dim(` … +${cols - showCols} cols`) : ""}`)
  })
  if (showRows < rows) lines.push(p.dim(`    … +${rows - showRows} rows`))
  return lines
}

const renderTable = (t: Table, p: Paint): string[] => {
  const widths = t.columns.map((c, j) => Math.max(c.length, ...t.rows.map((r) => r[j].length)))
  const line = (r: ReadonlyArray<string>) => "    " + r.map((x, j) => (j === 0 ? x.padEnd(widths[j]) : x.padStart(widths[j]))).join("  ")
  return [p.bold(line(t.columns)), ...t.rows.map(line)]
}

export const renderStage = (stage: Stage, index: number, total: number, options: TerminalOptions): string => {
  const p = paint(options.color)
  const width = options.width ?? 100
  const mark = stage.ok === undefined ? "" : stage.ok ? " " + p.fg(34, "✓") : " " + p.fg(196, "✗")
  const title = `━━ ${index + 1}/${total} ${stage.phase} · ${stage.name} — ${stage.title}`
  const lines: string[] = [p.bold(p.fg(220, title)) + mark, ...wrap(stage.prose, width, "  ")]
  if (stage.formulas.length > 0) lines.push("", ...stage.formulas.map((f) => "    " + p.fg(180, f.text)))
  if (stage.facts.length > 0) {
    lines.push("")
    for (const fact of stage.facts) {
      const [first, ...rest] = wrap(`${fact.label}: ${fact.value}`, width, "  ")
      lines.push(first.replace(`${fact.label}:`, p.bold(`${fact.label}:`)), ...rest)
    }
  }
  if (stage.table !== undefined) lines.push("", ...renderTable(stage.table, p))
  for (const v of stage.values) lines.push("", ...renderValue(v, p, options.full ?? false))
  return lines.join("\n") + "\n"
}

/** Unknown stage names are a one-line `WalkthroughInputError` listing the valid ones. */
export const selectStages = (
  result: WalkthroughResult,
  stage: string | undefined
): Either.Either<ReadonlyArray<{ stage: Stage; index: number }>, WalkthroughInputError> => {
  const all = result.stages.map((s, index) => ({ stage: s, index }))
  if (stage === undefined) return Either.right(all)
  const found = all.filter((s) => s.stage.name === stage)
  return found.length > 0
    ? Either.right(found)
    : Either.left(
        new WalkthroughInputError({
          field: "stage",
          reason: `"${stage}" is not a stage; choose one of ${result.stages.map((s) => s.name).join(", ")}`
        })
      )
}

/** The document for a terminal: every stage, or just `options.stage`. */
export const renderTerminal = (
  result: WalkthroughResult,
  options: TerminalOptions
): Either.Either<string, WalkthroughInputError> =>
  Either.map(selectStages(result, options.stage), (selected) => {
    const p = paint(options.color)
    const intro =
      options.stage === undefined
        ? [
            p.bold(`glassbox walkthrough: one training step of a tiny GPT on "${result.tokens.text}"`),
            `loss ${result.loss.toFixed(6)} → ${result.lossAfter.toFixed(6)} after one AdamW step` +
              (result.check === undefined ? "" : result.check.ok ? "; every gradient checked by finite differences" : "; GRADIENT CHECK FAILED"),
            ""
          ].join("\n") + "\n"
        : ""
    return intro + selected.map(({ stage, index }) => renderStage(stage, index, result.stages.length, options)).join("\n")
  })
