// Why this file exists: the terminal view of every probe, as pure functions from a result to a
// string (no printing, no tensors), so the CLI prints them and tests read them. Heatmaps use
// 24-bit ANSI background colours with the value written in each cell, so they still read when
// colour is off (NO_COLOR, a pipe) and in a screen reader; wide grids wrap into column blocks.
import type { AttentionAnalysis, HeadReport } from "./attention.ts"
import { headPattern } from "./attention.ts"
import { colorFor, compact, fit, showToken, textColorOn, type GridSpec, type ScaleKind } from "./colors.ts"
import type { InductionResult } from "./induction.ts"
import type { LogitLensResult } from "./logit-lens.ts"
import type { PatchingResult, SiteKind } from "./patching.ts"

export type TokenText = (id: number) => string

export interface TerminalOptions {
  /** Emit ANSI colours (default true). */
  readonly color?: boolean
  /** Wrap grids to this many characters (default 120). */
  readonly width?: number
}

const RESET = "\x1b[0m"
const BOLD = "\x1b[1m"

/** Removes ANSI escape sequences (for tests and width arithmetic). */
export const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, "")

const paint = (text: string, kind: ScaleKind, value: number, min: number, max: number, color: boolean): string => {
  if (!color) return text
  const bg = colorFor(kind, value, min, max)
  const fg = textColorOn(bg)
  return `\x1b[48;2;${bg.join(";")}m\x1b[38;2;${fg.join(";")}m${text}${RESET}`
}

const bold = (s: string, color: boolean) => (color ? `${BOLD}${s}${RESET}` : s)

/** values[row][col]; NaN shows as "·". */
export interface HeatmapSpec extends GridSpec {
  readonly title?: string
  /** Characters per cell, value included (default 5). */
  readonly cellWidth?: number
  /** A line under the grid explaining the scale. */
  readonly note?: string
}

/** A coloured grid with row and column labels, wrapped into blocks of columns to fit the width. */
export const heatmap = (spec: HeatmapSpec, options: TerminalOptions = {}): string => {
  const color = options.color ?? true
  const width = options.width ?? 120
  const cell = spec.cellWidth ?? 5
  const labelWidth = Math.min(16, Math.max(2, ...spec.rowLabels.map((l) => [...l].length)))
  const perBlock = Math.max(1, Math.floor((width - labelWidth - 1) / cell))
  const cols = spec.colLabels.length
  const lines: string[] = []
  if (spec.title !== undefined) lines.push(bold(spec.title, color))
  for (let start = 0; start < cols; start += perBlock) {
    const end = Math.min(cols, start + perBlock)
    if (start > 0) lines.push("")
    let header = " ".repeat(labelWidth + 1)
    for (let c = start; c < end; c++) header += fit(spec.colLabels[c], cell - 1, "right") + " "
    lines.push(header.trimEnd())
    spec.values.forEach((row, r) => {
      let line = fit(spec.rowLabels[r], labelWidth) + " "
      for (let c = start; c < end; c++) {
        const v = row[c]
        line += paint(fit(compact(v), cell - 1, "right") + " ", spec.scale, v, spec.min, spec.max, color)
      }
      lines.push(color ? line : line.trimEnd())
    })
  }
  if (spec.note !== undefined) lines.push(spec.note)
  return lines.join("\n")
}

/** A plain text table: columns padded to their widest cell, numbers right-aligned. */
export const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, rightAlign: ReadonlyArray<boolean> = []): string => {
  const widths = headers.map((h, i) => Math.max([...h].length, ...rows.map((r) => [...(r[i] ?? "")].length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => fit(c, widths[i], rightAlign[i] ? "right" : "left")).join("  ").trimEnd()
  return [line(headers), widths.map((w) => "─".repeat(w)).join("  "), ...rows.map(line)].join("\n")
}

const tokenLabels = (ids: ReadonlyArray<number>, text: TokenText) => ids.map((id) => showToken(text(id)))

/** Position legend: "0 '␣The'  1 '␣cat' …", wrapped. */
const legend = (ids: ReadonlyArray<number>, text: TokenText, width: number): string => {
  const items = ids.map((id, i) => `${i}:${showToken(text(id))}`)
  const lines: string[] = []
  let current = "tokens:"
  for (const item of items) {
    if ([...current].length + 1 + [...item].length > width) {
      lines.push(current)
      current = "  "
    }
    current += " " + item
  }
  lines.push(current)
  return lines.join("\n")
}

// ─── logit lens ────────────────────────────────────────────────────────────────────────────

/**
 * One row per position: the token, the true next token, then each stage's top-1 prediction and
 * its probability, a * when it is the true next token. A summary per stage follows.
 */
export const renderLens = (result: LogitLensResult, text: TokenText, options: TerminalOptions & { readonly detail?: number } = {}): string => {
  const color = options.color ?? true
  const T = result.tokens.length
  const headers = ["pos", "token", "next", ...result.stages]
  const rows: string[][] = []
  for (let t = 0; t < T; t++) {
    const next = t + 1 < T ? showToken(text(result.tokens[t + 1])) : ""
    const cells = result.cells.map((stage) => {
      const cell = stage[t]
      const top = cell.top[0]
      const star = cell.next !== undefined && cell.next.token === top.token ? "*" : ""
      return `${fit(showToken(text(top.token)), 10).trimEnd()}${star} ${compact(top.prob)}`
    })
    rows.push([String(t), fit(showToken(text(result.tokens[t])), 12).trimEnd(), fit(next, 12).trimEnd(), ...cells])
  }
  const parts = [bold("Logit lens: top-1 read-out after each stage (probability); * = the actual next token", color), table(headers, rows, [true])]

  // Per stage: how far the read-out is from the answer, averaged over positions.
  const summary = result.stages.map((stage, s) => {
    const cells = result.cells[s]
    const withNext = cells.filter((c) => c.next !== undefined)
    const mean = (f: (c: (typeof cells)[number]) => number, xs = cells) => xs.reduce((a, c) => a + f(c), 0) / Math.max(1, xs.length)
    return [
      stage,
      mean((c) => c.entropy).toFixed(3),
      mean((c) => c.klToFinal).toFixed(3),
      withNext.length ? mean((c) => c.next!.prob, withNext).toFixed(3) : "–",
      withNext.length ? mean((c) => c.next!.rank, withNext).toFixed(1) : "–",
      withNext.length ? `${withNext.filter((c) => c.top[0].token === c.next!.token).length}/${withNext.length}` : "–"
    ]
  })
  parts.push("", bold("Per stage (means over positions)", color))
  parts.push(table(["stage", "entropy (nats)", "KL to final", "p(next)", "rank(next)", "top-1 = next"], summary, [false, true, true, true, true, true]))

  // The top-k at one position, stage by stage.
  const detail = options.detail ?? T - 1
  if (detail >= 0 && detail < T) {
    parts.push("", bold(`Top-${result.cells[0][detail].top.length} at position ${detail} (${showToken(text(result.tokens[detail]))})`, color))
    parts.push(
      table(
        ["stage", "top predictions"],
        result.stages.map((stage, s) => [stage, result.cells[s][detail].top.map((p) => `${showToken(text(p.token))} ${p.prob.toFixed(3)}`).join("   ")])
      )
    )
  }
  return parts.join("\n")
}

// ─── attention ─────────────────────────────────────────────────────────────────────────────

const score = (v: number | null) => (v === null ? "–" : v.toFixed(3))

/** The head table: label, the score behind it, and every shape score. */
export const renderHeadTable = (reports: ReadonlyArray<HeadReport>): string =>
  table(
    ["head", "label", "score", "prev", "first", "self", "dup", "induct", "broad"],
    reports.map((r) => [
      `L${r.layer}H${r.head}`,
      r.label,
      r.score.toFixed(3),
      score(r.scores.previousToken),
      score(r.scores.firstToken),
      score(r.scores.self),
      score(r.scores.duplicateToken),
      score(r.scores.induction),
      score(r.scores.broad)
    ]),
    [false, false, true, true, true, true, true, true, true]
  )

/** One head's pattern, dest rows × src columns, labelled with the tokens. */
export const renderHeadPattern = (analysis: AttentionAnalysis, layer: number, head: number, text: TokenText, options: TerminalOptions = {}): string => {
  const T = analysis.tokens.length
  const pattern = headPattern(analysis, layer, head)
  const labels = tokenLabels(analysis.tokens, text)
  const report = analysis.reports.find((r) => r.layer === layer && r.head === head)
  const values = Array.from({ length: T }, (_, d) => Array.from({ length: T }, (_, s) => (s <= d ? pattern[d * T + s] : NaN)))
  return [
    heatmap(
      {
        title: `Attention L${layer}H${head}${report ? `: ${report.label} (${report.score.toFixed(3)})` : ""}; rows attend (dest) to columns (src)`,
        rowLabels: labels.map((l, i) => `${i} ${l}`),
        colLabels: labels.map((_, i) => String(i)),
        values,
        scale: "sequential",
        min: 0,
        max: 1,
        cellWidth: 4
      },
      options
    ),
    legend(analysis.tokens, text, options.width ?? 120)
  ].join("\n")
}

export const renderAttention = (
  analysis: AttentionAnalysis,
  text: TokenText,
  options: TerminalOptions & { readonly layer?: number; readonly head?: number } = {}
): string => {
  const color = options.color ?? true
  const parts: string[] = []
  if (options.layer !== undefined && options.head !== undefined) {
    parts.push(renderHeadPattern(analysis, options.layer, options.head, text, options), "")
  }
  const reports = options.layer === undefined ? analysis.reports : analysis.reports.filter((r) => r.layer === options.layer)
  parts.push(bold("Heads, scored against the shapes (see docs/interpretability.md)", color), renderHeadTable(reports))
  if (options.layer !== undefined && options.head === undefined) {
    for (const r of reports) parts.push("", renderHeadPattern(analysis, r.layer, r.head, text, options))
  }
  return parts.join("\n")
}

// ─── induction ─────────────────────────────────────────────────────────────────────────────

const layerHeadGrid = (title: string, grid: ReadonlyArray<ReadonlyArray<number>>, options: TerminalOptions) =>
  heatmap(
    {
      title,
      rowLabels: grid.map((_, l) => `L${l}`),
      colLabels: (grid[0] ?? []).map((_, h) => `H${h}`),
      values: grid,
      scale: "sequential",
      min: 0,
      max: 1
    },
    options
  )

export const renderInduction = (result: InductionResult, options: TerminalOptions = {}): string => {
  const color = options.color ?? true
  const R = result.repeatLength
  const found = result.heads.length === 0
    ? `no head reaches the threshold ${result.threshold}`
    : result.heads.map((h) => `L${h.layer}H${h.head} ${h.score.toFixed(3)}`).join(", ")
  return [
    bold(`Induction test: BOS + ${R} random tokens repeated twice, batch ${result.batch}, seed ${result.seed}`, color),
    ...(result.repeatLengthNote === undefined ? [] : [`note: ${result.repeatLengthNote}`]),
    layerHeadGrid(`Induction score: mean attention to the token after the earlier copy (offset ${R - 1})`, result.induction, options),
    "",
    layerHeadGrid("Previous-token score: mean attention to the position before (offset 1, from position 2)", result.previousToken, options),
    "",
    `Loss on first sight (tokens 2..${R}): ${result.lossFirstHalf.toFixed(3)} nats; on the repeat (tokens ${R + 2}..${2 * R}): ${result.lossSecondHalf.toFixed(3)} nats`,
    `Induction heads (score ≥ ${result.threshold}): ${found}`
  ].join("\n")
}

// ─── patching ──────────────────────────────────────────────────────────────────────────────

const siteTitles: Record<SiteKind, string> = {
  resid_pre: "Residual stream entering each block (resid_pre), per position",
  attn_out: "Attention output of each block (attn_out), per position",
  mlp_out: "MLP output of each block (mlp_out), per position",
  head: "Each head's output (z, all positions)"
}

export const renderPatching = (result: PatchingResult, text: TokenText, options: TerminalOptions = {}): string => {
  const color = options.color ?? true
  const T = result.clean.length
  const colLabels = result.clean.map((id, i) => (id === result.corrupted[i] ? showToken(text(id)) : `${showToken(text(id))}/${showToken(text(result.corrupted[i]))}`))
  const parts = [
    bold(`Activation patching: logit(${showToken(text(result.answer))}) − logit(${showToken(text(result.wrong))}) at the last position`, color),
    `clean ${result.cleanDiff.toFixed(3)}, corrupted ${result.corruptedDiff.toFixed(3)}; score = (patched − corrupted) / (clean − corrupted): 1 restores the clean answer, 0 does nothing`,
    `${result.sites} sites in ${result.forwards} forward passes`
  ]
  if (result.warning !== undefined) parts.unshift(bold(`warning: ${result.warning}`, color), "")
  for (const kind of ["resid_pre", "attn_out", "mlp_out", "head"] as const) {
    const grid = result.grids[kind]
    if (grid === undefined) continue
    parts.push(
      "",
      heatmap(
        {
          title: siteTitles[kind],
          rowLabels: grid.map((_, l) => `L${l}`),
          colLabels: kind === "head" ? (grid[0] ?? []).map((_, h) => `H${h}`) : colLabels.map((l, i) => (T > 12 ? `${i}` : l)),
          values: grid,
          scale: "diverging",
          min: -1,
          max: 1,
          cellWidth: kind === "head" || T > 12 ? 5 : 9
        },
        options
      )
    )
  }
  if (T > 12) parts.push(legend(result.clean, text, options.width ?? 120))
  return parts.join("\n")
}
