// Why this file exists: one self-contained HTML page per analysis, to open in any browser with no
// network: heatmaps are inline SVG (one <rect> per cell, coloured by the same scales as the
// terminal), and a few lines of inline script show the hovered cell's tokens and value in a
// read-out box. Layouts hold from 2 to 256 tokens and from 1 to 12 × 12 heads: labels are cut
// and thinned so they never touch, wide grids wrap into blocks of columns, and the colour legend
// always fits inside its SVG (test/interpret/html-layout.test.ts measures this in Chromium). The
// attention page adds an explorer in the spirit of CircuitsVis: every head's pattern travels in
// the page as bytes, and a small script colours the tokens by where a hovered token looks.
// Pure functions: result in, string out.
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
  /** Optional text drawn inside a cell (left out where it would not fit). */
  readonly cellText?: (row: number, col: number, value: number) => string
  /** Extra attributes on a cell's <g>, e.g. { "data-head": "3" } (names must be safe). */
  readonly cellAttributes?: (row: number, col: number) => Readonly<Record<string, string>>
  readonly cellWidth?: number
  readonly cellHeight?: number
  /** NaN cells: left out (default, e.g. above the causal diagonal) or drawn grey. */
  readonly missing?: "skip" | "grey"
  /** Wrap the columns into blocks no wider than this many pixels (default 960). */
  readonly maxWidth?: number
}

// Layout constants for 11 px monospace labels (≈ 6.6 px a character; a line box ≈ 13 px tall).
const CHAR_PX = 7
const CELL_CHAR_PX = 6.2
/** Label centres closer than this would touch: with smaller cells only every k-th label is drawn. */
const LABEL_PITCH = 15
const LABEL_CHARS = 18
const LEGEND_WIDTH = 160
/** Wide characters (CJK, Hangul, full-width forms, emoji) take two monospace cells. */
const isWide = (c: string) => {
  const p = c.codePointAt(0)!
  return (p >= 0x1100 && p <= 0x115f) || (p >= 0x2e80 && p <= 0xa4cf) || (p >= 0xac00 && p <= 0xd7a3) || (p >= 0xf900 && p <= 0xfaff) || (p >= 0xfe30 && p <= 0xfe4f) || (p >= 0xff00 && p <= 0xff60) || (p >= 0xffe0 && p <= 0xffe6) || p >= 0x1f000
}
/** Width in monospace cells. */
const cells = (s: string) => [...s].reduce((n, c) => n + (isWide(c) ? 2 : 1), 0)
const textWidth = (s: string, px = CHAR_PX) => cells(s) * px
/** Cuts `s` to at most `width` monospace cells, marking the cut with …. */
const clipLabel = (s: string, width = LABEL_CHARS) => {
  if (cells(s) <= width) return s
  let out = ""
  let used = 0
  for (const c of s) {
    const w = isWide(c) ? 2 : 1
    if (used + w > width - 1) break
    out += c
    used += w
  }
  return out + "…"
}
/** How many cells apart labels must be drawn so neighbours do not touch. */
const labelStep = (cellPx: number) => Math.max(1, Math.ceil(LABEL_PITCH / cellPx))

/** One SVG of columns [c0, c1): row labels, rotated column labels, cells and, optionally, the colour legend. */
const heatmapBlock = (spec: SvgHeatmapSpec, c0: number, c1: number, withLegend: boolean, left: number): string => {
  const cw = spec.cellWidth ?? 28
  const ch = spec.cellHeight ?? 22
  const rows = spec.rowLabels.length
  const cols = c1 - c0
  const rowStep = labelStep(ch)
  const colStep = labelStep(cw)
  const colLabels = spec.colLabels.slice(c0, c1).map((l, i) => ((c0 + i) % colStep === 0 ? clipLabel(l) : ""))
  const top = Math.max(16, ...colLabels.map((l) => textWidth(l) + 10))
  const legendHeight = withLegend ? 40 : 6
  const width = Math.max(left + cols * cw, left + LEGEND_WIDTH) + 12
  const height = top + rows * ch + legendHeight
  const withTitles = rows * (spec.colLabels.length) <= 4096 // a native tooltip too, while the page stays small
  const out: string[] = []
  out.push(`<svg role="img" aria-label="${escapeHtml(spec.title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`)
  colLabels.forEach((label, i) => {
    if (label === "") return
    const x = left + i * cw + cw / 2
    // Vertical labels: each takes the column's width only, so neighbours never collide.
    out.push(`<text class="col" x="${x}" y="${top - 6}" dominant-baseline="middle" transform="rotate(-90 ${x} ${top - 6})">${escapeHtml(label)}</text>`)
  })
  spec.rowLabels.forEach((label, r) => {
    if (r % rowStep !== 0) return
    out.push(`<text class="row" x="${left - 6}" y="${top + r * ch + ch / 2}" dominant-baseline="middle" text-anchor="end">${escapeHtml(clipLabel(label))}</text>`)
  })
  for (let r = 0; r < rows; r++) {
    for (let c = c0; c < c1; c++) {
      const v = spec.values[r]?.[c] ?? NaN
      if (Number.isNaN(v) && spec.missing !== "grey") continue
      const fill = colorFor(spec.scale, v, spec.min, spec.max)
      const tip = escapeHtml(spec.tip(r, c, v))
      const x = left + (c - c0) * cw
      const y = top + r * ch
      const extra = Object.entries(spec.cellAttributes?.(r, c) ?? {}).map(([k, val]) => ` ${k}="${escapeHtml(val)}"`).join("")
      out.push(`<g class="cell" data-tip="${tip}"${extra}><rect x="${x}" y="${y}" width="${cw}" height="${ch}" fill="${hex(fill)}">${withTitles ? `<title>${tip}</title>` : ""}</rect>`)
      const label = spec.cellText?.(r, c, v)
      if (label !== undefined && label !== "" && textWidth(label, CELL_CHAR_PX) + 3 <= cw && ch >= 14) {
        out.push(`<text x="${x + cw / 2}" y="${y + ch / 2}" dominant-baseline="middle" text-anchor="middle" fill="${hex(textColorOn(fill))}">${escapeHtml(label)}</text>`)
      }
      out.push(`</g>`)
    }
  }
  if (withLegend) {
    // Colour legend: the scale from min to max, always as wide as LEGEND_WIDTH (the SVG is at least that wide).
    const ly = top + rows * ch + 10
    const steps = 20
    for (let i = 0; i < steps; i++) {
      const v = spec.min + ((spec.max - spec.min) * (i + 0.5)) / steps
      out.push(`<rect class="legend" x="${left + (i * LEGEND_WIDTH) / steps}" y="${ly}" width="${LEGEND_WIDTH / steps}" height="8" fill="${hex(colorFor(spec.scale, v, spec.min, spec.max))}"/>`)
    }
    out.push(`<text class="legend" x="${left}" y="${ly + 22}">${escapeHtml(compact(spec.min))}</text>`)
    if (spec.scale === "diverging") out.push(`<text class="legend" x="${left + LEGEND_WIDTH / 2}" y="${ly + 22}" text-anchor="middle">${escapeHtml(compact((spec.min + spec.max) / 2))}</text>`)
    out.push(`<text class="legend" x="${left + LEGEND_WIDTH}" y="${ly + 22}" text-anchor="end">${escapeHtml(compact(spec.max))}</text>`)
  }
  out.push(`</svg>`)
  return out.join("\n")
}

/**
 * An inline SVG heatmap, one <g class="cell" data-tip> per cell. Labels are cut to 18 characters
 * and thinned to every k-th row or column when cells are smaller than a line of text; columns
 * wrap into blocks of at most `maxWidth` pixels, each block repeating the row labels.
 */
export const svgHeatmap = (spec: SvgHeatmapSpec): string => {
  const cw = spec.cellWidth ?? 28
  const ch = spec.cellHeight ?? 22
  const cols = spec.colLabels.length
  const rowStep = labelStep(ch)
  const left = Math.max(30, ...spec.rowLabels.map((l, r) => (r % rowStep === 0 ? textWidth(clipLabel(l)) + 10 : 0)))
  const maxWidth = spec.maxWidth ?? 960
  const perBlock = Math.max(1, Math.floor((maxWidth - left - 12) / cw))
  const blocks: string[] = []
  for (let c0 = 0; c0 < Math.max(1, cols); c0 += perBlock) blocks.push(heatmapBlock(spec, c0, Math.min(cols, c0 + perBlock), c0 + perBlock >= cols, left))
  return `<figure class="heatmap"><figcaption>${escapeHtml(spec.title)}</figcaption>\n${blocks.join("\n")}</figure>`
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
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px 32px 120px; color: #1b1f24; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 6px; }
.subtitle { color: #57606a; margin: 0 0 18px; overflow-wrap: anywhere; }
.warning { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 8px 12px; }
figure.heatmap { margin: 8px 0 16px; overflow-x: auto; } figcaption { font-weight: 600; margin-bottom: 4px; }
figure.heatmap svg { display: block; margin-bottom: 8px; }
svg text { font: 11px ui-monospace, SFMono-Regular, Menlo, monospace; }
svg text.row, svg text.col, svg text.legend { fill: #1b1f24; }
svg g.cell text { pointer-events: none; font-size: 10px; }
svg g.cell:hover rect, svg g.cell.hot rect { stroke: #111; stroke-width: 2; }
svg g.cell[data-head] { cursor: pointer; }
svg g.cell.picked rect { stroke: #d1242f; stroke-width: 3; }
table.data { border-collapse: collapse; font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; margin: 6px 0 12px; }
table.data th, table.data td { padding: 2px 10px; border-bottom: 1px solid #d0d7de; text-align: right; }
table.data th.l, table.data td.l { text-align: left; overflow-wrap: anywhere; }
code, .tokens { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; }
.explorer { border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 14px; max-width: 1100px; }
.explorer label { font-weight: 600; margin-right: 6px; }
.explorer select { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; max-width: 100%; }
.strip { display: flex; flex-wrap: wrap; gap: 2px; margin: 10px 0; font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.strip .tok { padding: 1px 3px; border: 1px solid #d0d7de; border-radius: 3px; white-space: pre; max-width: 100%; overflow: hidden; text-overflow: ellipsis; cursor: default; }
.strip .tok.focus { outline: 2px solid #d1242f; }
.strip .tok.future { color: #8c959f; border-style: dashed; }
#explorer-readout { min-height: 3.2em; white-space: pre-wrap; font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; background: #f6f8fa; padding: 6px 8px; border-radius: 4px; }
canvas.pattern { display: block; margin-top: 8px; image-rendering: pixelated; border: 1px solid #d0d7de; cursor: crosshair; }
#readout { position: fixed; right: 16px; bottom: 16px; max-width: min(520px, calc(100vw - 48px)); min-height: 20px; white-space: pre-wrap;
  background: #fff; border: 1px solid #8c959f; border-radius: 6px; padding: 8px 12px; box-shadow: 0 2px 8px rgba(0,0,0,.15);
  font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; }
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
export const htmlReport = (title: string, subtitle: string, sections: ReadonlyArray<HtmlSection>, extraScript = ""): string =>
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
    `<script>${SCRIPT}${extraScript}</script>`,
    "</body></html>",
    ""
  ].join("\n")

const dataTable = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, leftColumns = 1): string =>
  `<table class="data"><thead><tr>${headers.map((h, i) => `<th${i < leftColumns ? ' class="l"' : ""}>${escapeHtml(h)}</th>`).join("")}</tr></thead><tbody>` +
  rows.map((r) => `<tr>${r.map((c, i) => `<td${i < leftColumns ? ' class="l"' : ""}>${escapeHtml(c)}</td>`).join("")}</tr>`).join("") +
  "</tbody></table>"

const quoted = (text: TokenText, id: number) => `'${showToken(text(id))}'`

const warningBox = (text: string) => `<p class="warning" role="note"><strong>Warning:</strong> ${escapeHtml(text)}</p>`

/** A sequence-axis cell: wide enough for about 7 characters of the top-1 token. */
const LENS_CELL = 58

// ─── logit lens ────────────────────────────────────────────────────────────────────────────

export const lensHtml = (result: LogitLensResult, text: TokenText, source = ""): string => {
  const colLabels = result.tokens.map((id, i) => `${i} ${showToken(text(id))}`)
  const hit = (s: number, t: number) => {
    const cell = result.cells[s][t]
    return cell.next !== undefined && cell.next.token === cell.top[0].token
  }
  const tip = (s: number, t: number) => {
    const cell = result.cells[s][t]
    const lines = [`${result.stages[s]} · position ${t} ${quoted(text, result.tokens[t])}` + (cell.next ? ` → next ${quoted(text, cell.next.token)}` : "")]
    lines.push(`top: ${cell.top.map((p) => `${quoted(text, p.token)} ${p.prob.toFixed(3)}`).join(", ")}`)
    if (cell.next) lines.push(`p(next) ${cell.next.prob.toFixed(4)}, rank ${cell.next.rank}${hit(s, t) ? " (* top-1 = next)" : ""}`)
    lines.push(`entropy ${cell.entropy.toFixed(3)} nats, KL to final ${cell.klToFinal.toFixed(3)} nats`)
    return lines.join("\n")
  }
  const pNext = result.cells.map((row) => row.map((c) => (c.next ? c.next.prob : NaN)))
  const kl = result.cells.map((row) => row.map((c) => c.klToFinal))
  const maxKl = Math.max(1e-6, ...kl.flat())
  // The top-1 token, cut to fit the cell, with * when it is the actual next token (as in the terminal).
  const room = Math.floor((LENS_CELL - 3) / CELL_CHAR_PX)
  const top1 = (s: number, t: number) => {
    const star = hit(s, t) ? "*" : ""
    return clipLabel(showToken(text(result.cells[s][t].top[0].token)), room - star.length) + star
  }
  const summary = result.stages.map((stage, s) => {
    const cells = result.cells[s]
    const withNext = cells.filter((c) => c.next !== undefined)
    const mean = (f: (c: (typeof cells)[number]) => number, xs = cells) => xs.reduce((a, c) => a + f(c), 0) / Math.max(1, xs.length)
    return [
      stage,
      mean((c) => c.entropy).toFixed(3),
      mean((c) => c.klToFinal).toFixed(3),
      withNext.length ? mean((c) => c.next!.prob, withNext).toFixed(3) : "–",
      withNext.length ? `${withNext.filter((c) => c.top[0].token === c.next!.token).length}/${withNext.length}` : "–"
    ]
  })
  return htmlReport("Logit lens", source, [
    {
      heading: "What the model would say after each stage",
      intro:
        "Each row decodes the residual stream after one stage (the embeddings, then each block) through the final LayerNorm and the unembedding. " +
        "Cells show the top-1 token, marked * when it is the token that actually comes next; colour is the probability of that next token (grey: the last position has none). " +
        "Hover for the top-k, entropy and KL to the final layer.",
      body: svgHeatmap({
        title: "p(actual next token), with the top-1 prediction (* = top-1 is the next token)",
        rowLabels: result.stages,
        colLabels,
        values: pNext,
        missing: "grey",
        scale: "sequential",
        min: 0,
        max: 1,
        tip: (s, t) => tip(s, t),
        cellText: (s, t) => top1(s, t),
        cellWidth: LENS_CELL,
        cellHeight: 24
      })
    },
    {
      heading: "Per stage",
      intro: "Means over positions; top-1 = next counts the positions whose top-1 read-out is the actual next token.",
      body: dataTable(["stage", "entropy (nats)", "KL to final", "p(next)", "top-1 = next"], summary)
    },
    {
      heading: "Distance to the final answer",
      intro: "KL(final ‖ stage) in nats: how far each stage's read-out is from what the model finally says. The last stage is 0 by construction.",
      body: svgHeatmap({ title: "KL to the final layer (nats)", rowLabels: result.stages, colLabels, values: kl, scale: "sequential", min: 0, max: maxKl, tip, cellWidth: 20, cellHeight: 20 })
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
  unclassified: "other"
}

/** Sequential-ramp colours at 0, 0.05, …, 1 for the explorer's script (the same scale as the heatmaps). */
const scriptRamp = (): string[] => Array.from({ length: 21 }, (_, i) => hex(colorFor("sequential", i / 20, 0, 1)))

/**
 * Every head's pattern for the page's script: the causal lower triangle (T(T+1)/2 weights per
 * head, layer-major, row by row) as bytes round(255·p), base64. 12 × 12 heads at 256 tokens is
 * 4.7 MB of weights, 6.3 MB as text.
 */
export const packPatterns = (analysis: AttentionAnalysis): string => {
  const T = analysis.tokens.length
  const per = (T * (T + 1)) / 2
  const bytes = new Uint8Array(analysis.layers * analysis.heads * per)
  let at = 0
  for (let l = 0; l < analysis.layers; l++) {
    for (let h = 0; h < analysis.heads; h++) {
      const pattern = headPattern(analysis, l, h)
      for (let d = 0; d < T; d++) for (let s = 0; s <= d; s++) bytes[at++] = Math.round(Math.min(1, Math.max(0, pattern[d * T + s])) * 255)
    }
  }
  return Buffer.from(bytes).toString("base64")
}

// The explorer, in the spirit of CircuitsVis: pick a head (list or head grid), hover a token to
// colour every earlier token by how much it attends there, or hover the pattern itself.
const EXPLORER_SCRIPT = `
(() => {
  const data = JSON.parse(document.getElementById("attention-data").textContent);
  const T = data.tokens.length, H = data.heads, per = T * (T + 1) / 2;
  const raw = atob(data.patterns);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const select = document.getElementById("head-select");
  const spans = Array.from(document.querySelectorAll("#token-strip .tok"));
  const canvas = document.getElementById("pattern-canvas");
  const out = document.getElementById("explorer-readout");
  const cell = Number(canvas.dataset.cell);
  let head = Number(select.value);
  let focus = -1;
  const weight = (d, s) => (s > d ? 0 : bytes[head * per + d * (d + 1) / 2 + s] / 255);
  const colour = (w) => data.ramp[Math.round(Math.max(0, Math.min(1, w)) * 20)];
  const name = (k) => "L" + Math.floor(k / H) + "H" + (k % H);
  const tok = (i) => i + " '" + data.tokens[i] + "'";
  function draw() {
    const g = canvas.getContext("2d");
    g.fillStyle = "#ffffff";
    g.fillRect(0, 0, canvas.width, canvas.height);
    for (let d = 0; d < T; d++) for (let s = 0; s <= d; s++) { g.fillStyle = colour(weight(d, s)); g.fillRect(s * cell, d * cell, cell, cell); }
    if (focus >= 0) { g.strokeStyle = "#d1242f"; g.lineWidth = 1; g.strokeRect(0.5, focus * cell + 0.5, (focus + 1) * cell - 1, cell - 1); }
  }
  function show(d, src) {
    focus = d;
    spans.forEach((el, s) => {
      const w = weight(d, s);
      el.style.background = s <= d ? colour(w) : "";
      el.style.color = s <= d && w > 0.55 ? "#ffffff" : "";
      el.classList.toggle("focus", s === d);
      el.classList.toggle("future", s > d);
    });
    const ranked = [];
    for (let s = 0; s <= d; s++) ranked.push([weight(d, s), s]);
    ranked.sort((a, b) => b[0] - a[0]);
    const lines = [name(head) + " · " + data.labels[head] + " · position " + tok(d) + " attends to:"];
    lines.push(ranked.slice(0, 5).map((x) => tok(x[1]) + " " + x[0].toFixed(3)).join(", "));
    if (src !== undefined) lines.push("this cell: dest " + tok(d) + " ← src " + tok(src) + "  " + weight(d, src).toFixed(3));
    out.textContent = lines.join("\\n");
    draw();
  }
  function pick(k) {
    head = k;
    select.value = String(k);
    document.querySelectorAll("g.cell[data-head]").forEach((g) => g.classList.toggle("picked", Number(g.getAttribute("data-head")) === k));
    if (focus >= 0) show(focus); else { out.textContent = name(head) + " · " + data.labels[head] + ": hover a token or the pattern."; draw(); }
  }
  select.addEventListener("change", () => pick(Number(select.value)));
  document.querySelectorAll("g.cell[data-head]").forEach((g) => g.addEventListener("click", () => pick(Number(g.getAttribute("data-head")))));
  spans.forEach((el, i) => { el.addEventListener("mouseenter", () => show(i)); el.addEventListener("focus", () => show(i)); });
  canvas.addEventListener("mousemove", (event) => {
    const box = canvas.getBoundingClientRect();
    const s = Math.floor((event.clientX - box.left) * canvas.width / box.width / cell);
    const d = Math.floor((event.clientY - box.top) * canvas.height / box.height / cell);
    if (d >= 0 && d < T && s >= 0 && s <= d) show(d, s);
  });
  pick(head);
})();
`

export const attentionHtml = (
  analysis: AttentionAnalysis,
  text: TokenText,
  options: { readonly layer?: number; readonly head?: number; readonly source?: string } = {}
): string => {
  const T = analysis.tokens.length
  const H = analysis.heads
  const labels = analysis.tokens.map((id) => showToken(text(id)))
  const reportOf = (l: number, h: number) => analysis.reports[l * H + h]
  const named = (r: { label: HeadLabel }) => r.label !== "broad" && r.label !== "unclassified"
  // Colour only the heads a shape names; broad and other are grey, so a uniform head never looks strong.
  const grid = Array.from({ length: analysis.layers }, (_, l) => Array.from({ length: H }, (_, h) => (named(reportOf(l, h)) ? reportOf(l, h).score : NaN)))
  const fmt = (v: number | null) => (v === null ? "–" : v.toFixed(3))
  // The head the explorer opens on: the one asked for, else the most specialised one.
  const strongest = [...analysis.reports].filter(named).sort((a, b) => b.score - a.score)[0]
  const initial = options.layer !== undefined ? options.layer * H + (options.head ?? 0) : strongest !== undefined ? strongest.layer * H + strongest.head : 0
  const canvasCell = Math.max(1, Math.min(32, Math.floor(512 / T)))
  const explorerData = {
    tokens: labels,
    heads: H,
    labels: analysis.reports.map((r) => `${r.label} ${r.score.toFixed(2)}`),
    ramp: scriptRamp(),
    patterns: packPatterns(analysis)
  }
  const sections: HtmlSection[] = [
    {
      heading: "Every head, labelled",
      intro:
        "Each head is scored against recurring shapes of attention (see docs/interpretability.md) and named after the shape it follows best, " +
        "when that beats a head attending uniformly: prev = previous-token, first = first-token (attention sink), self, dup = duplicate-token, ind = induction. " +
        "Colour is the score behind the name. Grey cells are heads no shape names: broad = attention spread evenly over the past, other (unclassified) = neither. " +
        "Click a head to open it in the explorer below.",
      body:
        svgHeatmap({
          title: "Head labels (colour: the score of the named shape; grey: no shape)",
          rowLabels: grid.map((_, l) => `L${l}`),
          colLabels: Array.from({ length: H }, (_, h) => `H${h}`),
          values: grid,
          missing: "grey",
          scale: "sequential",
          min: 0,
          max: 1,
          tip: (l, h) => {
            const r = reportOf(l, h)
            const s = r.scores
            return `L${l}H${h}: ${r.label} ${r.score.toFixed(3)}\nprev ${fmt(s.previousToken)}, first ${fmt(s.firstToken)}, self ${fmt(s.self)}, dup ${fmt(s.duplicateToken)}, induction ${fmt(s.induction)}, broad ${fmt(s.broad)}`
          },
          cellText: (l, h) => shortLabel[reportOf(l, h).label],
          cellAttributes: (l, h) => ({ "data-head": String(l * H + h) }),
          cellWidth: 44,
          cellHeight: 26
        }) +
        // Past 16 heads the table is folded away, so the explorer stays near the top.
        `<details${analysis.reports.length <= 16 ? " open" : ""}><summary>Every score of every head (${analysis.reports.length} heads)</summary>` +
        dataTable(
          ["head", "label", "score", "prev", "first", "self", "dup", "induction", "broad"],
          analysis.reports.map((r) => [`L${r.layer}H${r.head}`, r.label, r.score.toFixed(3), fmt(r.scores.previousToken), fmt(r.scores.firstToken), fmt(r.scores.self), fmt(r.scores.duplicateToken), fmt(r.scores.induction), fmt(r.scores.broad)]),
          2
        ) +
        "</details>"
    },
    {
      heading: "Explore the patterns",
      intro:
        "Pick a head, then hover a token: every earlier token is coloured by how much the hovered one attends to it (darker = more), and the five it attends to most are listed. " +
        "The square below is the whole pattern: row = the position attending (dest), column = the position attended to (src); hover it for single weights.",
      body:
        `<div class="explorer"><label for="head-select">Head</label><select id="head-select">` +
        analysis.reports.map((r) => `<option value="${r.layer * H + r.head}"${r.layer * H + r.head === initial ? " selected" : ""}>L${r.layer}H${r.head} · ${escapeHtml(r.label)} ${r.score.toFixed(2)}</option>`).join("") +
        `</select>` +
        `<div class="strip" id="token-strip">${labels.map((t, i) => `<span class="tok" tabindex="0" title="${i}">${escapeHtml(t)}</span>`).join("")}</div>` +
        `<div id="explorer-readout" aria-live="polite"></div>` +
        `<canvas class="pattern" id="pattern-canvas" data-cell="${canvasCell}" width="${T * canvasCell}" height="${T * canvasCell}" aria-label="attention pattern of the selected head"></canvas></div>` +
        `<script type="application/json" id="attention-data">${JSON.stringify(explorerData).replace(/</g, "\\u003c")}</script>`
    }
  ]
  // Full SVG heatmaps for what the command asked for: one head, or every head of a layer.
  const chosen: Array<[number, number]> =
    options.layer === undefined ? [] : options.head !== undefined ? [[options.layer, options.head]] : Array.from({ length: H }, (_, h) => [options.layer!, h] as [number, number])
  const cell = Math.max(2, Math.min(24, Math.floor(720 / T)))
  for (const [l, h] of chosen) {
    const pattern = headPattern(analysis, l, h)
    const r = reportOf(l, h)
    sections.push({
      heading: `L${l}H${h}: ${r.label} (${r.score.toFixed(3)})`,
      intro: "Row = the position attending (dest), column = the position attended to (src). Rows sum to 1; the upper triangle is masked (causal).",
      body: svgHeatmap({
        title: `Attention pattern L${l}H${h}`,
        rowLabels: labels.map((t, i) => `${i} ${t}`),
        colLabels: labels.map((t, i) => `${i} ${t}`),
        values: Array.from({ length: T }, (_, d) => Array.from({ length: T }, (_, s) => (s <= d ? pattern[d * T + s] : NaN))),
        scale: "sequential",
        min: 0,
        max: 1,
        tip: (d, s, v) => `L${l}H${h}: dest ${d} '${labels[d]}' ← src ${s} '${labels[s]}'  ${v.toFixed(4)}`,
        cellWidth: cell,
        cellHeight: cell,
        maxWidth: Number.POSITIVE_INFINITY
      })
    })
  }
  return htmlReport("Attention patterns", options.source ?? "", sections, EXPLORER_SCRIPT)
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
        "the previous-token score is the mean attention to the position just before, from position 2 on (position 1's predecessor is the BOS token, where attention sinks look).",
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
        `Clean run ${result.cleanDiff.toFixed(4)}, corrupted run ${result.corruptedDiff.toFixed(4)} (logit scale σ ${result.logitScale.toFixed(3)}). ` +
        "Each cell runs the corrupted prompt with one activation replaced by its clean value; score = (patched − corrupted) / (clean − corrupted), so 1 restores the clean answer and 0 changes nothing. " +
        `${result.sites} sites in ${result.forwards} forward passes.`,
      body:
        (result.warning === undefined ? "" : warningBox(result.warning)) +
        dataTable(["prompt", "tokens"], [["clean", cleanLabels.join(" ")], ["corrupted", corruptLabels.join(" ")]])
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
