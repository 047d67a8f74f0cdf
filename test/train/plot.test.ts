// `glassbox plot`: the page draws the train and held-out loss and the learning rate from the
// run's events, is self-contained, and renders in headless Chromium without console errors, at
// full width and in a 380-px window (no sideways scrolling).
import { describe, expect, it } from "@effect/vitest"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import type { MetricEvent } from "../../src/train/metrics.ts"
import { plotHtml } from "../../src/train/plot.ts"
import { CHROMIUM, inspectPage } from "../walkthrough/chromium.ts"

const events: MetricEvent[] = [
  ...Array.from({ length: 60 }, (_, i): MetricEvent => ({ event: "step", step: i + 1, loss: 10 - Math.log(i + 1), lr: 1e-3 * Math.min(1, (i + 1) / 10), grad_norm: 1, tokens_per_s: 500, tokens: (i + 1) * 512, elapsed_s: i })),
  ...[0, 20, 40, 60].map((step): MetricEvent => ({ event: "eval", step, loss: 10.5 - step / 15, perplexity: Math.exp(10.5 - step / 15), tokens: 4096, elapsed_s: step })),
  { event: "checkpoint", step: 60, path: "runs/x/checkpoints/step-00000060", elapsed_s: 61 }
]

const available = existsSync(CHROMIUM)
const required = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false"

describe("plot", () => {
  it("draws both loss series and the learning rate, with values on hover", () => {
    const html = plotHtml("tiny", events)
    expect(html).toContain("last held-out loss 6.5000 (perplexity 665.1) at step 60")
    expect((html.match(/<polyline/g) ?? []).length).toBe(3)
    expect(html).toContain("<title>held-out loss · step 40: 7.833333333333334</title>")
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/)
  })

  if (!available && required) {
    it("needs Chromium under CI", () => {
      throw new Error(`${CHROMIUM} is missing; install it (apt-get install -y chromium) or set CHROMIUM_PATH`)
    })
    return
  }
  it.skipIf(!available)("renders in headless Chromium with no console errors and no requests", async () => {
    const dir = mkdtempSync(join(tmpdir(), "glassbox-plot-"))
    const file = join(dir, "plot.html")
    writeFileSync(file, plotHtml("tiny", events))
    const url = pathToFileURL(file).href
    const report = await inspectPage(url, `(() => ({ svgs: document.querySelectorAll("svg").length, points: document.querySelectorAll("circle.pt").length, width: document.querySelector("svg").getBoundingClientRect().width }))()`, { screenshot: join(dir, "plot.png") })
    expect(report.errors).toEqual([])
    expect(report.requests.filter((u) => u !== url)).toEqual([])
    expect(report.value).toEqual({ svgs: 2, points: 124, width: 760 })
  })

  it.skipIf(!available)("fits a narrow window: no sideways scrolling, every chart inside the window", async () => {
    const dir = mkdtempSync(join(tmpdir(), "glassbox-plot-narrow-"))
    const file = join(dir, "plot.html")
    writeFileSync(file, plotHtml("a-run-with-a-rather-long-name-that-must-wrap-somewhere", events))
    const url = pathToFileURL(file).href
    const measure = `(() => {
      const vw = document.documentElement.clientWidth;
      const charts = [...document.querySelectorAll("svg")].map((s) => s.getBoundingClientRect());
      return { vw, scrollWidth: document.documentElement.scrollWidth, widest: Math.max(...charts.map((r) => r.right)), narrowest: Math.min(...charts.map((r) => r.width)) };
    })()`
    const report = await inspectPage(url, measure, { window: [380, 800], screenshot: process.env.PLOT_SHOT })
    const v = report.value as { vw: number; scrollWidth: number; widest: number; narrowest: number }
    expect(v.vw).toBeLessThanOrEqual(380)
    expect(v.scrollWidth).toBeLessThanOrEqual(v.vw)
    expect(v.widest).toBeLessThanOrEqual(v.vw)
    expect(v.narrowest).toBeGreaterThan(0.8 * (v.vw - 30)) // scaled down to the window, not collapsed
    rmSync(dir, { recursive: true, force: true })
  })
})
