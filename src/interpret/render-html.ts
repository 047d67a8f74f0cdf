// Why this file exists: one self-contained HTML page per analysis, to open in any browser with no
// network: heatmaps are inline SVG (one <rect> per cell, coloured by the same scales as the
// terminal), and a few lines of inline script show the hovered cell's tokens and value in a
// read-out box (each cell also carries a <title>, the browser's own tooltip). Pure functions:
// result in, string out.
import type { AttentionAnalysis, HeadLabel } from "./attention.ts"
import { headPattern } from "./attention.ts"
import { colorFor, compact, hex, showToken, textColorOn, type GridSpec, type ScaleKind } from "./colors.ts"
import type { InductionResult } from "./induction.ts"
import type { LogitLensResult } from "./logit-lens.ts"
import type { PatchingResult, SiteKind } from "./patching.ts"
import type { TokenText } from "./render-terminal.ts"

import { escapeHtml } from "../report/html.ts"
export { escapeHtml }

export interface SvgHeatmapSpec extends GridSpec {
  /** Accessible name, also shown above the grid. */
  readonly title: string
  /** Hover text for a cell. */
  readonly tip: (row: number, col: number, value: number) => string
  /** Optional text drawn inside a cell. */
  readonly cellText?: (row: number, col: number, value: number) => string
  readonly cellWidth?: number
  readonly cellHeight?: number
  /** NaN cells: left out (default, e.g. above the causal diagonal) or drawn grey. */
  readonly missing?: "skip" | "grey"
}

const textWidth = (s: string, px = 7) => [...s].length * px

/** An inline SVG heatmap, one <g class="cell" data-tip> per cell. */
export const svgHeatmap = (spec: SvgHeatmapSpec): string => {
  const cw = spec.cellWidth ?? 28
  const ch = spec.cellHeight ?? 22
  const rows = spec.rowLabels.length
  const cols = spec.colLabels.length
  const left = Math.min(180, Math.max(30, ...spec.rowLabels.map((l) => textWidth(l) + 10)))
  const top = Math.min(120, Math.max(24, ...spec.colLabels.map((l) => textWidth(l) * 0.72 + 14)))
  const legendHeight = 34
  const width = left + cols * cw + 10
  const height = top + rows * ch + legendHeight
  const out: string[] = []
  out.push(`<figure class="heatmap"><figcaption>${escapeHtml(spec.title)}</figcaption>`)
  out.push(`<svg role="img" aria-label="${escapeHtml(spec.title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`)
  spec.colLabels.forEach((label, c) => {
    const x = left + c * cw + cw / 2
    out.push(`<text class="col" x="${x}" y="${top - 6}" transform="rotate(-45 ${x} ${top - 6})">${escapeHtml(label)}</text>`)
  })
  spec.rowLabels.forEach((label, r) => {
    out.push(`<text class="row" x="${left - 6}" y="${top + r * ch + ch / 2 + 4}" text-anchor="end">${escapeHtml(label)}</text>`)
  })
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = spec.values[r]?.[c] ?? NaN
      if (Number.isNaN(v) && spec.missing !== "grey") continue
      const fill = colorFor(spec.scale, v, spec.min, spec.max)
      const tip = escapeHtml(spec.tip(r, c, v))
      const x = left + c * cw
      const y = top + r * ch
      out.push(`<g class="cell" data-tip="${tip}"><rect x="${x}" y="${y}" width="${cw}" height="${ch}" fill="${hex(fill)}"><title>${tip}</title></rect>`)
      const label = spec.cellText?.(r, c, v)
      if (label !== undefined && label !== "") {
        out.push(`<text x="${x + cw / 2}" y="${y + ch / 2 + 4}" text-anchor="middle" fill="${hex(textColorOn(fill))}">${escapeHtml(label)}</text>`)
      }
      out.push(`</g>`)
    }
  }
  // Colour legend: the scale from min to max.
  const ly = top + rows * ch + 10
  const steps = 20
  const lw = Math.max(120, Math.min(240, cols * cw))
  for (let i = 0; i < steps; i++) {
    const v = spec.min + ((spec.max - spec.min) * (i + 0.5)) / steps
    out.push(`<rect x="${left + (i * lw) / steps}" y="${ly}" width="${lw / steps + 0.5}" height="8" fill="${hex(colorFor(spec.scale, v, spec.min, spec.max))}"/>`)
  }
  out.push(`<text class="legend" x="${left}" y="${ly + 22}">${escapeHtml(compact(spec.min))}</text>`)
  out.push(`<text class="legend" x="${left + lw}" y="${ly + 22}" text-anchor="end">${escapeHtml(compact(spec.max))}</text>`)
  out.push(`</svg></figure>`)
  return out.join("\n")
}

export interface HtmlSection {
  readonly heading: string
  /** Plain text; paragraphs separated by blank lines. */
  readonly intro?: string
  /** Trusted HTML (built by the functions in this file). */
  readonly body: string
}

const paragraphs = (text: string) =>
  text
    .split(/\n\s*\n/)
    .map((p) => `<p>${escapeHtml(p.trim())}</p>`)
    .join("\n")

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px 32px 96px; color: #1b1f24; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 6px; }
.subtitle { color: #57606a; margin: 0 0 18px; }
figure.heatmap { margin: 8px 0 16px; overflow-x: auto; } figcaption { font-weight: 600; margin-bottom: 4px; }
svg text { font: 11px ui-monospace, SFMono-Regular, Menlo, monospace; }
svg text.row, svg text.col, svg text.legend { fill: #1b1f24; }
svg g.cell text { pointer-events: none; font-size: 10px; }
svg g.cell:hover rect, svg g.cell.hot rect { stroke: #111; stroke-width: 2; }
table.data { border-collapse: collapse; font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
table.data th, table.data td { padding: 2px 10px; border-bottom: 1px solid #d0d7de; text-align: right; }
table.data th.l, table.data td.l { text-align: left; }
code, .tokens { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
#readout { position: fixed; right: 16px; bottom: 16px; max-width: 520px; min-height: 20px; white-space: pre-wrap;
  background: #fff; border: 1px solid #8c959f; border-radius: 6px; padding: 8px 12px; box-shadow: 0 2px 8px rgba(0,0,0,.15);
  font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
`

// Hover: the read-out box shows the hovered cell's data-tip (tokens and values).
const SCRIPT = `
(() => {
  const readout = document.getElementById("readout");
  let hot = null;
  document.addEventListener("mouseover", (event) => {
    const target = event.target instanceof Element ? event.target.closest("[data-tip]") : null;
    if (target === null) return;
    if (hot !== null) hot.classList.remove("hot");
    hot = target;
    hot.classList.add("hot");
    readout.textContent = target.getAttribute("data-tip");
  });
})();
`

/** A whole page: title, subtitle, sections, the read-out box and the hover script. Nothing external. */
export const htmlReport = (title: string, subtitle: string, sections: ReadonlyArray<HtmlSection>): string =>
  [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<h1>${escapeHtml(title)}</h1>`,
    `<p class="subtitle">${escapeHtml(subtitle)}</p>`,
    ...sections.map((s) => `<section><h2>${escapeHtml(s.heading)}</h2>\n${s.intro ? paragraphs(s.intro) : ""}\n${s.body}</section>`),
    '<div id="readout" aria-live="polite">Hover over a cell to see its tokens and value.</div>',
    `<script>${SCRIPT}</script>`,
    "</body></html>",
    ""
  ].join("\n")

const dataTable = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, leftColumns = 1): string =>
  `<table class="data"><thead><tr>${headers.map((h, i) => `<th${i < leftColumns ? ' class="l"' : ""}>${escapeHtml(h)}</th>`).join("")}</tr></thead><tbody>` +
  rows.map((r) => `<tr>${r.map((c, i) => `<td${i < leftColumns ? ' class="l"' : ""}>${escapeHtml(c)}</td>`).join("")}</tr>`).join("") +
  "</tbody></table>"

const quoted = (text: TokenText, id: number) => `'${showToken(text(id))}'`

// ─── logit lens ────────────────────────────────────────────────────────────────────────────

export const lensHtml = (result: LogitLensResult, text: TokenText, source = ""): string => {
  const T = result.tokens.length
  const colLabels = result.tokens.map((id, i) => `${i} ${showToken(text(id))}`)
  const tip = (s: number, t: number) => {
    const cell = result.cells[s][t]
    const lines = [`${result.stages[s]} · position ${t} ${quoted(text, result.tokens[t])}` + (cell.next ? ` → next ${quoted(text, cell.next.token)}` : "")]
    lines.push(`top: ${cell.top.map((p) => `${quoted(text, p.token)} ${p.prob.toFixed(3)}`).join(", ")}`)
    if (cell.next) lines.push(`p(next) ${cell.next.prob.toFixed(4)}, rank ${cell.next.rank}`)
    lines.push(`entropy ${cell.entropy.toFixed(3)} nats, KL to final ${cell.klToFinal.toFixed(3)} nats`)
    return lines.join("\n")
  }
  const pNext = result.cells.map((row) => row.map((c) => (c.next ? c.next.prob : NaN)))
  const kl = result.cells.map((row) => row.map((c) => c.klToFinal))
  const maxKl = Math.max(1e-6, ...kl.flat())
  const top1 = (s: number, t: number) => {
    const label = showToken(text(result.cells[s][t].top[0].token))
    return [...label].length > 5 ? [...label].slice(0, 4).join("") + "…" : label
  }
  return htmlReport("Logit lens", source, [
    {
      heading: "What the model would say after each stage",
      intro:
        "Each row decodes the residual stream after one stage (the embeddings, then each block) through the final LayerNorm and the unembedding. " +
        "Cells show the top-1 token; colour is the probability of the token that actually comes next (the last position has none). Hover for the top-k, entropy and KL to the final layer.",
      body: svgHeatmap({
        title: "p(actual next token), with the top-1 prediction",
        rowLabels: result.stages,
        colLabels,
        values: pNext,
        missing: "grey",
        scale: "sequential",
        min: 0,
        max: 1,
        tip: (s, t) => tip(s, t),
        cellText: (s, t) => top1(s, t),
        cellWidth: 56,
        cellHeight: 24
      })
    },
    {
      heading: "Distance to the final answer",
      intro: "KL(final ‖ stage) in nats: how far each stage's read-out is from what the model finally says. The last stage is 0 by construction.",
      body: svgHeatmap({ title: "KL to the final layer (nats)", rowLabels: result.stages, colLabels, values: kl, scale: "sequential", min: 0, max: maxKl, tip, cellWidth: Math.max(14, Math.min(40, Math.floor(1000 / T))) })
    }
  ])
}

// ─── attention ─────────────────────────────────────────────────────────────────────────────

const shortLabel: Record<HeadLabel, string> = {
  "previous-token": "prev",
  "first-token": "first",
  self: "self",
  "duplicate-token": "dup",
  induction: "ind",
  broad: "broad",
  unclassified: "?"
}

export const attentionHtml = (
  analysis: AttentionAnalysis,
  text: TokenText,
  options: { readonly layer?: number; readonly head?: number; readonly source?: string } = {}
): string => {
  const T = analysis.tokens.length
  const labels = analysis.tokens.map((id) => showToken(text(id)))
  const grid = Array.from({ length: analysis.layers }, (_, l) => Array.from({ length: analysis.heads }, (_, h) => analysis.reports[l * analysis.heads + h].score))
  const reportOf = (l: number, h: number) => analysis.reports[l * analysis.heads + h]
  const fmt = (v: number | null) => (v === null ? "–" : v.toFixed(3))
  const sections = [
    {
      heading: "Every head, labelled",
      intro: "Each head is scored against recurring shapes of attention (see docs/interpretability.md) and named after the best one. Colour is the score behind the label.",
      body:
        svgHeatmap({
          title: "Head labels (colour: score)",
          rowLabels: grid.map((_, l) => `L${l}`),
          colLabels: (grid[0] ?? []).map((_, h) => `H${h}`),
          values: grid,
          scale: "sequential",
          min: 0,
          max: 1,
          tip: (l, h) => {
            const r = reportOf(l, h)
            const s = r.scores
            return `L${l}H${h}: ${r.label} ${r.score.toFixed(3)}\nprev ${fmt(s.previousToken)}, first ${fmt(s.firstToken)}, self ${fmt(s.self)}, dup ${fmt(s.duplicateToken)}, induction ${fmt(s.induction)}, broad ${fmt(s.broad)}`
          },
          cellText: (l, h) => shortLabel[reportOf(l, h).label],
          cellWidth: 44,
          cellHeight: 26
        }) +
        dataTable(
          ["head", "label", "score", "prev", "first", "self", "dup", "induction", "broad"],
          analysis.reports.map((r) => [`L${r.layer}H${r.head}`, r.label, r.score.toFixed(3), fmt(r.scores.previousToken), fmt(r.scores.firstToken), fmt(r.scores.self), fmt(r.scores.duplicateToken), fmt(r.scores.induction), fmt(r.scores.broad)]),
          2
        )
    }
  ]
  // Which heads to draw in full: the one asked for, the layer asked for, or the most specialised few.
  let chosen: Array<[number, number]>
  if (options.layer !== undefined && options.head !== undefined) chosen = [[options.layer, options.head]]
  else if (options.layer !== undefined) chosen = Array.from({ length: analysis.heads }, (_, h) => [options.layer!, h] as [number, number])
  else {
    chosen = [...analysis.reports]
      .filter((r) => r.label !== "broad" && r.label !== "unclassified")
      .sort((a, b) => b.score - a.score)
      .slice(0, 4)
      .map((r) => [r.layer, r.head])
  }
  const cell = Math.max(6, Math.min(24, Math.floor(720 / T)))
  for (const [l, h] of chosen) {
    const pattern = headPattern(analysis, l, h)
    const r = reportOf(l, h)
    sections.push({
      heading: `L${l}H${h}: ${r.label} (${r.score.toFixed(3)})`,
      intro: "Row = the position attending (dest), column = the position attended to (src). Rows sum to 1; the upper triangle is masked (causal).",
      body: svgHeatmap({
        title: `Attention pattern L${l}H${h}`,
        rowLabels: labels.map((t, i) => `${i} ${t}`),
        colLabels: labels.map((t, i) => (T <= 40 ? `${i} ${t}` : `${i}`)),
        values: Array.from({ length: T }, (_, d) => Array.from({ length: T }, (_, s) => (s <= d ? pattern[d * T + s] : NaN))),
        scale: "sequential",
        min: 0,
        max: 1,
        tip: (d, s, v) => `L${l}H${h}: dest ${d} '${labels[d]}' ← src ${s} '${labels[s]}'  ${v.toFixed(4)}`,
        cellWidth: cell,
        cellHeight: cell
      })
    })
  }
  return htmlReport("Attention patterns", options.source ?? "", sections)
}

// ─── induction ─────────────────────────────────────────────────────────────────────────────

export const inductionHtml = (result: InductionResult, text: TokenText, source = ""): string => {
  const R = result.repeatLength
  const grid = (title: string, values: ReadonlyArray<ReadonlyArray<number>>, what: string) =>
    svgHeatmap({
      title,
      rowLabels: values.map((_, l) => `L${l}`),
      colLabels: (values[0] ?? []).map((_, h) => `H${h}`),
      values,
      scale: "sequential",
      min: 0,
      max: 1,
      tip: (l, h, v) => `L${l}H${h}: ${what} ${v.toFixed(4)}`,
      cellText: (_, __, v) => compact(v),
      cellWidth: 44,
      cellHeight: 26
    })
  const sample = result.sequences[0] ?? []
  return htmlReport("Induction heads", source, [
    {
      heading: "Scores",
      intro:
        (result.repeatLengthNote === undefined ? "" : `Note: ${result.repeatLengthNote}.\n\n`) +
        `${result.batch} sequences of a BOS token followed by ${R} random tokens, repeated twice (seed ${result.seed}). ` +
        `The induction score is the mean attention from each second-half position to the token after its earlier copy (the diagonal at offset ${R - 1}); ` +
        "the previous-token score is the mean attention to the position just before.",
      body: grid("Induction score", result.induction, "induction score") + grid("Previous-token score", result.previousToken, "previous-token score")
    },
    {
      heading: "Behaviour",
      body:
        dataTable(
          ["measure", "value"],
          [
            [`loss on first sight (tokens 2..${R}), nats`, result.lossFirstHalf.toFixed(4)],
            [`loss on the repeat (tokens ${R + 2}..${2 * R}), nats`, result.lossSecondHalf.toFixed(4)],
            [`induction heads (score ≥ ${result.threshold})`, result.heads.map((h) => `L${h.layer}H${h.head} ${h.score.toFixed(3)}`).join(", ") || "none"]
          ]
        ) + `<p>First sequence: <span class="tokens">${escapeHtml(sample.map((id) => showToken(text(id))).join(" "))}</span></p>`
    }
  ])
}

// ─── patching ──────────────────────────────────────────────────────────────────────────────

const siteHeadings: Record<SiteKind, string> = {
  resid_pre: "Residual stream entering each block (resid_pre)",
  attn_out: "Attention output (attn_out)",
  mlp_out: "MLP output (mlp_out)",
  head: "Each head's output (all positions)"
}

export const patchingHtml = (result: PatchingResult, text: TokenText, source = ""): string => {
  const cleanLabels = result.clean.map((id) => showToken(text(id)))
  const corruptLabels = result.corrupted.map((id) => showToken(text(id)))
  const colLabels = cleanLabels.map((c, i) => (c === corruptLabels[i] ? `${i} ${c}` : `${i} ${c}/${corruptLabels[i]}`))
  const sections: HtmlSection[] = [
    {
      heading: "Setup",
      intro:
        `Metric: logit('${showToken(text(result.answer))}') − logit('${showToken(text(result.wrong))}') at the last position. ` +
        `Clean run ${result.cleanDiff.toFixed(4)}, corrupted run ${result.corruptedDiff.toFixed(4)}. ` +
        "Each cell runs the corrupted prompt with one activation replaced by its clean value; score = (patched − corrupted) / (clean − corrupted), so 1 restores the clean answer and 0 changes nothing. " +
        `${result.sites} sites in ${result.forwards} forward passes.`,
      body: dataTable(["prompt", "tokens"], [["clean", cleanLabels.join(" ")], ["corrupted", corruptLabels.join(" ")]])
    }
  ]
  for (const kind of ["resid_pre", "attn_out", "mlp_out", "head"] as const) {
    const grid = result.grids[kind]
    if (grid === undefined) continue
    const isHead = kind === "head"
    sections.push({
      heading: siteHeadings[kind],
      body: svgHeatmap({
        title: `${siteHeadings[kind]}: normalised logit difference`,
        rowLabels: grid.map((_, l) => `L${l}`),
        colLabels: isHead ? (grid[0] ?? []).map((_, h) => `H${h}`) : colLabels,
        values: grid,
        scale: "diverging",
        min: -1,
        max: 1,
        tip: (l, c, v) =>
          isHead
            ? `${kind} L${l}H${c}: ${v.toFixed(4)}`
            : `${kind} L${l} · position ${c} '${cleanLabels[c]}'${cleanLabels[c] !== corruptLabels[c] ? ` (corrupted '${corruptLabels[c]}')` : ""}: ${v.toFixed(4)}`,
        cellText: (_, __, v) => compact(v),
        cellWidth: isHead ? 44 : 40,
        cellHeight: 24
      })
    })
  }
  return htmlReport("Activation patching", source, sections)
}
