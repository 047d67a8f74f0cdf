// `glassbox plot`: the run's loss and learning-rate curves as one self-contained HTML page
// (inline SVG, no scripts from anywhere, hover a point for its value), drawn from metrics.jsonl.
// Each chart is drawn on a 760 × 300 canvas (viewBox) and scales down with the window, so the page
// fits a phone-width window without scrolling sideways (there the labels are drawn larger, so they
// stay readable after the scaling).
import type { MetricEvent } from "./metrics.ts"

interface Series {
  readonly label: string
  readonly color: string
  readonly points: ReadonlyArray<readonly [number, number]>
}

import { escapeHtml } from "../report/html.ts"

const niceTicks = (lo: number, hi: number, count = 5): number[] => {
  if (!(hi > lo)) return [lo]
  const raw = (hi - lo) / count
  const magnitude = Math.pow(10, Math.floor(Math.log10(raw)))
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!
  const ticks: number[] = []
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12; t += step) ticks.push(Number(t.toPrecision(6)))
  return ticks
}

/** One chart: x = step, y = value, each series a polyline with hoverable points. */
export const svgChart = (title: string, series: readonly Series[], yLabel: string): string => {
  const W = 760
  const H = 300
  const m = { left: 88, right: 16, top: 32, bottom: 40 }
  const all = series.flatMap((s) => s.points)
  if (all.length === 0) return `<svg class="chart" viewBox="0 0 ${W} 60" role="img"><text x="10" y="30">${escapeHtml(title)}: no data yet</text></svg>`
  const xs = all.map((p) => p[0])
  const ys = all.map((p) => p[1]).filter(Number.isFinite)
  const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)]
  const pad = (Math.max(...ys) - Math.min(...ys)) * 0.05 || Math.abs(ys[0]) * 0.05 || 1
  const [y0, y1] = [Math.min(...ys) - pad, Math.max(...ys) + pad]
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * (W - m.left - m.right)
  const sy = (y: number) => H - m.bottom - ((y - y0) / (y1 - y0)) * (H - m.top - m.bottom)
  const fmt = (v: number) => (Math.abs(v) < 1e-2 && v !== 0 ? v.toExponential(1) : Number(v.toPrecision(4)).toString())
  const grid = niceTicks(y0, y1)
    .map((t) => `<line x1="${m.left}" x2="${W - m.right}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e7eb"/><text x="${m.left - 6}" y="${sy(t) + 4}" text-anchor="end" font-size="11">${fmt(t)}</text>`)
    .join("")
  const xTicks = niceTicks(x0, x1, 8)
    .map((t) => `<text x="${sx(t)}" y="${H - m.bottom + 16}" text-anchor="middle" font-size="11">${t}</text>`)
    .join("")
  const lines = series
    .map((s) => {
      const pts = s.points.filter((p) => Number.isFinite(p[1]))
      const poly = `<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${pts.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ")}"/>`
      const dots = pts
        .map((p) => `<circle class="pt" cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="${pts.length > 200 ? 1.5 : 3}" fill="${s.color}"><title>${escapeHtml(s.label)} · step ${p[0]}: ${p[1]}</title></circle>`)
        .join("")
      return poly + dots
    })
    .join("")
  const legend = series
    .map((s, i) => `<rect x="${m.left + i * 150}" y="10" width="12" height="3" fill="${s.color}"/><text x="${m.left + i * 150 + 16}" y="15" font-size="12">${escapeHtml(s.label)}</text>`)
    .join("")
  return `<svg class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(title)}" font-family="system-ui, sans-serif">
<text x="${W / 2}" y="${H - 4}" text-anchor="middle" font-size="12">step</text>
<text x="12" y="${H / 2}" dominant-baseline="middle" transform="rotate(-90 12 ${H / 2})" text-anchor="middle" font-size="12">${escapeHtml(yLabel)}</text>
${grid}${xTicks}<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${H - m.bottom}" stroke="#9ca3af"/>${legend}${lines}</svg>`
}

/** The whole page for a run's events. */
export const plotHtml = (runName: string, events: ReadonlyArray<MetricEvent>): string => {
  const steps = events.flatMap((e) => (e.event === "step" ? [e] : []))
  const evals = events.flatMap((e) => (e.event === "eval" ? [e] : []))
  const checkpoints = events.flatMap((e) => (e.event === "checkpoint" ? [e] : []))
  const lossChart = svgChart(
    "loss",
    [
      { label: "train loss", color: "#2563eb", points: steps.map((s) => [s.step, s.loss] as const) },
      { label: "held-out loss", color: "#dc2626", points: evals.map((e) => [e.step, e.loss] as const) }
    ],
    "cross-entropy (nats)"
  )
  const lrChart = svgChart("learning rate", [{ label: "learning rate", color: "#059669", points: steps.map((s) => [s.step, s.lr] as const) }], "learning rate")
  const last = evals[evals.length - 1]
  const summary = [
    `${steps.length} steps recorded`,
    last ? `last held-out loss ${last.loss.toFixed(4)} (perplexity ${last.perplexity.toFixed(1)}) at step ${last.step}` : "no evaluation yet",
    `${checkpoints.length} checkpoints saved`
  ].join(" · ")
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(runName)} — glassbox</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#111}h1{font-size:1.3rem;overflow-wrap:anywhere}.pt:hover{r:5}p{color:#374151;overflow-wrap:anywhere}
svg.chart{display:block;width:100%;max-width:760px;height:auto}
@media (max-width:600px){body{margin:.75rem}svg.chart text{font-size:17px}}</style>
</head><body>
<h1>${escapeHtml(runName)}</h1>
<p>${escapeHtml(summary)}</p>
<section id="loss"><h2>Loss</h2>${lossChart}</section>
<section id="lr"><h2>Learning rate</h2>${lrChart}</section>
</body></html>
`
}
