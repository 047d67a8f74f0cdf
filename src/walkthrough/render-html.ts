// The walkthrough as one self-contained HTML page: math rendered at build time by KaTeX's
// server-side renderer, KaTeX's stylesheet inlined with its woff2 fonts embedded as data: URLs
// (the woff/ttf fallbacks are dropped), no script, and no external URL, so the file opens offline.
// Matrices are tables whose cells are coloured by sign (blue +, red −) and magnitude relative to
// the matrix's largest entry; hovering a cell shows its full float64 value.
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import katex from "katex"
import { formatScaled, numberScale, scaleLabel, shapeLabel } from "./format.ts"
import type { Stage, StageValue, Table } from "./stages.ts"
import type { WalkthroughResult } from "./walkthrough.ts"
import { escapeHtml } from "../report/html.ts"

const BUCKETS = 8

let katexCss: string | undefined

/** KaTeX's CSS with every @font-face pointing at an embedded woff2 (read once per process). */
export const inlineKatexCss = (): string => {
  if (katexCss !== undefined) return katexCss
  const require = createRequire(import.meta.url)
  const cssPath = require.resolve("katex/dist/katex.min.css")
  const fontDir = join(dirname(cssPath), "fonts")
  katexCss = readFileSync(cssPath, "utf8").replace(/src:url\(fonts\/([\w-]+)\.woff2\)[^;}]*/g, (_all, font: string) => {
    const data = readFileSync(join(fontDir, `${font}.woff2`)).toString("base64")
    return `src:url(data:font/woff2;base64,${data}) format("woff2")`
  })
  return katexCss
}


const tex = (source: string, displayMode: boolean): string =>
  katex.renderToString(source, { displayMode, throwOnError: true, strict: "error", output: "htmlAndMathml" })

const minus = (s: string): string => s.replace(/-/g, "−")

const cellClass = (x: number, max: number): string => {
  if (!Number.isFinite(x)) return "m"
  if (x === 0 || max === 0) return "z"
  const k = Math.max(1, Math.min(BUCKETS, Math.ceil((Math.abs(x) / max) * BUCKETS)))
  return `${x > 0 ? "p" : "n"}${k}`
}

const renderValue = (v: StageValue): string => {
  const [rows, cols] = v.shape.length === 1 ? [1, v.shape[0]] : [v.shape[0], v.shape.slice(1).reduce((a, b) => a * b, 1)]
  const scale = numberScale(v.data)
  const head =
    v.colLabels === undefined
      ? ""
      : `<thead><tr>${v.rowLabels === undefined ? "" : "<th></th>"}${v.colLabels.map((l) => `<th>${escapeHtml(l)}</th>`).join("")}</tr></thead>`
  const body: string[] = []
  for (let i = 0; i < rows; i++) {
    const cells: string[] = []
    for (let j = 0; j < cols; j++) {
      const x = v.data[i * cols + j]
      cells.push(`<td class="${cellClass(x, scale.max)}" title="${minus(String(x))}">${minus(formatScaled(x, scale))}</td>`)
    }
    const label = v.rowLabels === undefined ? "" : `<th>${escapeHtml(v.rowLabels[i] ?? "")}</th>`
    body.push(`<tr>${label}${cells.join("")}</tr>`)
  }
  const caption = [
    `<strong>${escapeHtml(v.label)}</strong>`,
    v.tex === undefined ? "" : `<span class="sym">${tex(v.tex, false)}</span>`,
    `<span class="shape">${shapeLabel(v.shape)}</span>`,
    v.key === undefined || v.key === v.label ? "" : `<code>${escapeHtml(v.key)}</code>`,
    scaleLabel(scale) === "" ? "" : `<span class="scale">values ${minus(scaleLabel(scale))}</span>`
  ]
    .filter((x) => x !== "")
    .join(" ")
  return `<figure class="value"><figcaption>${caption}</figcaption><div class="scroll"><table class="matrix">${head}<tbody>${body.join("")}</tbody></table></div></figure>`
}

const renderTable = (t: Table): string =>
  `<table class="check"><thead><tr>${t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join("")}</tr></thead><tbody>${t.rows
    .map((r) => `<tr>${r.map((x) => `<td>${escapeHtml(x)}</td>`).join("")}</tr>`)
    .join("")}</tbody></table>`

const renderStage = (s: Stage, index: number): string => {
  const mark = s.ok === undefined ? "" : s.ok ? ` <span class="ok">✓</span>` : ` <span class="fail">✗</span>`
  const facts =
    s.facts.length === 0
      ? ""
      : `<dl class="facts">${s.facts.map((f) => `<dt>${escapeHtml(f.label)}</dt><dd>${escapeHtml(f.value)}</dd>`).join("")}</dl>`
  return [
    `<section id="stage-${s.name}" class="stage phase-${s.phase}">`,
    `<h2><span class="num">${index + 1}</span> ${escapeHtml(s.title)} <code class="name">${s.name}</code>${mark}</h2>`,
    `<p class="prose">${escapeHtml(s.prose)}</p>`,
    s.formulas.length === 0 ? "" : `<div class="formulas">${s.formulas.map((f) => tex(f.tex, true)).join("")}</div>`,
    facts,
    s.table === undefined ? "" : renderTable(s.table),
    ...s.values.map(renderValue),
    `</section>`
  ].join("\n")
}

const bucketCss = (): string => {
  const rules: string[] = []
  for (let k = 1; k <= BUCKETS; k++) {
    const alpha = ((k / BUCKETS) * 0.85).toFixed(3)
    const text = k / BUCKETS > 0.6 ? "color:#fff;" : ""
    rules.push(`td.p${k}{background:rgba(33,102,172,${alpha});${text}}`, `td.n${k}{background:rgba(178,24,43,${alpha});${text}}`)
  }
  return rules.join("\n")
}

const PAGE_CSS = `
:root{--ink:#1d1d1f;--muted:#6b6b70;--line:#e3e3e8}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 .2em}
h2{font-size:1.2em;margin:0 0 .4em;border-bottom:1px solid var(--line);padding-bottom:.2em}
h2 .num{color:var(--muted);font-weight:400;margin-right:.3em}
code{font:12px ui-monospace,Menlo,Consolas,monospace;color:var(--muted)}
h2 code.name{font-size:.7em;margin-left:.5em}
.summary{background:#f6f6f8;border:1px solid var(--line);border-radius:6px;padding:10px 14px}
nav ol{columns:3;font-size:.9em;padding-left:1.4em}
section.stage{margin:28px 0}
.phase-backward h2{border-color:#e8c4c9}.phase-update h2{border-color:#c4d8e8}
.prose{max-width:860px}
.formulas{overflow-x:auto}
.katex-display{margin:.5em 0}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:.92em}
dl.facts dt{font-weight:600}dl.facts dd{margin:0;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;word-break:break-word}
figure.value{margin:12px 0}
figcaption{font-size:.9em;margin-bottom:3px}
figcaption .shape,figcaption .scale{color:var(--muted);margin-left:.4em}
figcaption .sym{margin:0 .3em}
.scroll{overflow-x:auto}
table.matrix{border-collapse:collapse;font:11px/1.3 ui-monospace,Menlo,Consolas,monospace}
table.matrix td{padding:1px 5px;text-align:right;border:1px solid #fff;min-width:3.6em}
table.matrix th{font-weight:400;color:var(--muted);padding:1px 6px;text-align:left;white-space:nowrap}
table.matrix thead th{text-align:right}
td.z{color:#aaa}td.m{color:#aaa;background:#f0f0f0}
table.check{border-collapse:collapse;font-size:.85em}
table.check td,table.check th{border-bottom:1px solid var(--line);padding:2px 10px;text-align:right}
table.check td:first-child,table.check th:first-child{text-align:left;font-family:ui-monospace,Menlo,Consolas,monospace}
.ok{color:#1a7f37}.fail{color:#c62828;font-weight:700}
.legend span{display:inline-block;padding:0 6px;margin-right:4px;font:11px ui-monospace,monospace}
`

/** The whole document as one HTML string. */
export const renderHtml = (result: WalkthroughResult): string => {
  const o = result.options
  const check =
    result.check === undefined
      ? "not run"
      : result.check.ok
        ? `all ${result.check.entries} gradient entries agree with finite differences (max relative error ${result.check.maxRelError.toExponential(2)})`
        : `FAILED in ${result.check.tensors.filter((t) => !t.ok).map((t) => t.name).join(", ")}`
  const legend = [8, 4, 1].map((k) => `<span style="background:rgba(33,102,172,${((k / BUCKETS) * 0.85).toFixed(3)})">+</span>`)
    .concat([1, 4, 8].map((k) => `<span style="background:rgba(178,24,43,${((k / BUCKETS) * 0.85).toFixed(3)})">−</span>`))
    .join("")
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>glassbox walkthrough: ${escapeHtml(result.tokens.text)}</title>
<style>${inlineKatexCss()}</style>
<style>${PAGE_CSS}${bucketCss()}</style>
</head>
<body>
<header>
<h1>One training step of a tiny GPT, every number</h1>
<div class="summary">
<p>Text <strong>“${escapeHtml(result.tokens.text)}”</strong>, seed ${o.seed}, ${o.tied ? "tied" : "untied"} head, GELU ${o.gelu}, init ${o.init}.
Loss <strong>${result.loss.toFixed(6)}</strong> → <strong>${result.lossAfter.toFixed(6)}</strong> after one AdamW step (lr ${o.adamw.lr}).
Gradient check: ${escapeHtml(check)}.</p>
<p class="legend">Cells are coloured by sign and by size relative to the largest entry of the same matrix: ${legend}. Hover a cell for its full float64 value.</p>
</div>
<nav><ol>${result.stages.map((s) => `<li><a href="#stage-${s.name}">${escapeHtml(s.title)}</a></li>`).join("")}</ol></nav>
</header>
<main>
${result.stages.map(renderStage).join("\n")}
</main>
<footer><p><code>glassbox walkthrough</code> · math typeset at build time with KaTeX ${katex.version}, fonts embedded.</p></footer>
</body>
</html>
`
}
