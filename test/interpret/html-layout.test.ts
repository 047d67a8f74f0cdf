// The four reports' layouts at both extremes, measured in headless Chromium: 2 tokens with one
// layer of one head, and 256 tokens with 12 × 12 heads. In every SVG each text and rect lies
// inside the SVG (nothing clipped, the colour legend included), no two texts overlap (row,
// column, legend and in-cell labels), each in-cell label sits inside its cell, and every SVG fits
// the 1200-px window. Token text comes from the real GPT-2 encoding over text with accents, CJK
// and emoji, so cut multi-byte characters appear and must show as \xNN, never as U+FFFD or □.
// The attention page's explorer is driven like a person would: pick a head, hover a token.
// The results are synthetic (the renderers are pure functions of them), so the test is quick.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll } from "vitest"
import { labelHead, scoreHead, uniformScores, type AttentionAnalysis, type HeadReport } from "../../src/interpret/attention.ts"
import { tokenText } from "../../src/interpret/cli.ts"
import { showToken } from "../../src/interpret/colors.ts"
import type { InductionResult } from "../../src/interpret/induction.ts"
import type { LogitLensResult } from "../../src/interpret/logit-lens.ts"
import type { PatchingResult } from "../../src/interpret/patching.ts"
import { attentionHtml, inductionHtml, lensHtml, patchingHtml } from "../../src/interpret/render-html.ts"
import { Rng } from "../../src/rng/rng.ts"
import { makeEncoding } from "../../src/tokenizer/tokenizer.ts"
import { CHROMIUM, inspectPage } from "../walkthrough/chromium.ts"

const available = existsSync(CHROMIUM)
const required = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false"
const ARTIFACTS = resolve("test-artifacts")
const dir = mkdtempSync(join(tmpdir(), "glassbox-interpret-layout-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const gpt2 = makeEncoding("gpt2")
const text = tokenText(gpt2)
// Accents, CJK and emoji (cut between tokens), and some of GPT-2's longest tokens (runs of "=" and "-").
const SOURCE = "Café «naïve» résumé — 東京の夜景は綺麗です 🙂🚀 déjà vu, Zürich straße; ================================ ---------------------------------------------------------------- internationalization "

/** T token ids of real GPT-2 text, with multi-byte characters cut between tokens. */
const promptIds = (T: number): number[] => {
  const ids = [gpt2.eot]
  while (ids.length < T) ids.push(...gpt2.encode(SOURCE))
  return ids.slice(0, T)
}

/** Causal softmax rows; head (l, h) with (l + h) % 3 === 0 is a previous-token head, % 3 === 1 uniform. */
const syntheticAttention = (T: number, layers: number, heads: number): AttentionAnalysis => {
  const rng = Rng.seeded(5, "layout")
  const tokens = promptIds(T)
  const chance = uniformScores(tokens)
  const patterns: Float32Array[] = []
  const reports: HeadReport[] = []
  for (let l = 0; l < layers; l++) {
    const p = new Float32Array(heads * T * T)
    for (let h = 0; h < heads; h++) {
      const kind = (l + h) % 3
      for (let d = 0; d < T; d++) {
        const row = h * T * T + d * T
        if (kind === 0) p[row + Math.max(0, d - 1)] = 1
        else if (kind === 1) for (let s = 0; s <= d; s++) p[row + s] = 1 / (d + 1)
        else {
          let z = 0
          for (let s = 0; s <= d; s++) z += p[row + s] = Math.exp(3 * rng.normal())
          for (let s = 0; s <= d; s++) p[row + s] /= z
        }
      }
      const scores = scoreHead(p, h * T * T, tokens)
      reports.push({ layer: l, head: h, ...labelHead(scores, undefined, chance), scores })
    }
    patterns.push(p)
  }
  return { tokens, layers, heads, patterns, reports }
}

const syntheticLens = (T: number, layers: number): LogitLensResult => {
  const rng = Rng.seeded(6, "lens")
  const tokens = promptIds(T)
  const stages = ["embed", ...Array.from({ length: layers }, (_, l) => `L${l}`)]
  const cells = stages.map((_, s) =>
    tokens.map((_, t) => {
      const guess = s % 2 === 0 && t + 1 < T ? tokens[t + 1] : tokens[Math.floor(rng.uniform() * T)]
      const top = [guess, 50256, 13].map((token, k) => ({ token, prob: 0.6 / (k + 1) }))
      const cell = { top, entropy: 2 * rng.uniform(), klToFinal: s === stages.length - 1 ? 0 : rng.uniform() * 3 }
      return t + 1 < T ? { ...cell, next: { token: tokens[t + 1], rank: guess === tokens[t + 1] ? 0 : 3, prob: rng.uniform() } } : cell
    })
  )
  return { tokens, stages, hooks: stages, cells }
}

const syntheticPatching = (T: number, layers: number, heads: number): PatchingResult => {
  const rng = Rng.seeded(7, "patching")
  const clean = promptIds(T)
  const corrupted = clean.map((id, i) => (i === Math.floor(T / 2) ? 13 : id))
  const grid = (cols: number) => Array.from({ length: layers }, () => Array.from({ length: cols }, () => 2.4 * rng.uniform() - 1.2))
  return {
    clean,
    corrupted,
    answer: 6342,
    wrong: 1757,
    cleanDiff: 0.016,
    corruptedDiff: 0.001,
    logitScale: 2.5,
    warning: "the clean and corrupted logit differences are only 0.015 apart, 0.006 of the logit scale",
    grids: { resid_pre: grid(T), attn_out: grid(T), mlp_out: grid(T), head: grid(heads) },
    forwards: 10,
    sites: 3 * layers * T + layers * heads
  }
}

const syntheticInduction = (layers: number, heads: number): InductionResult => {
  const rng = Rng.seeded(8, "induction")
  const grid = () => Array.from({ length: layers }, () => Array.from({ length: heads }, () => rng.uniform()))
  return {
    repeatLength: 31,
    repeatLengthNote: "repeat length 31: the default of 50 needs 101 positions and the model's context is 64 (2R + 1 ≤ 64); set it with --repeat",
    batch: 2,
    seed: 0,
    bos: 50256,
    threshold: 0.4,
    induction: grid(),
    previousToken: grid(),
    lossFirstHalf: 10.5,
    lossSecondHalf: 3.2,
    heads: [],
    sequences: [promptIds(63)]
  }
}

/** Measures the page: clipped or overlapping SVG content, SVGs wider than the window, unreadable bytes. */
const LAYOUT = `(() => {
  const problems = [];
  const vw = document.documentElement.clientWidth;
  const svgs = [...document.querySelectorAll("svg")];
  let texts = 0;
  svgs.forEach((svg, k) => {
    const box = svg.getBoundingClientRect();
    const where = "svg " + k + " (" + (svg.getAttribute("aria-label") || "") + ")";
    if (box.right > vw + 0.5) problems.push(where + " runs past the window: right " + box.right + " > " + vw);
    const items = [...svg.querySelectorAll("text, rect")].map((el) => ({ el, r: el.getBoundingClientRect() }));
    for (const { el, r } of items) {
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5) {
        problems.push(where + ": " + el.tagName + " '" + el.textContent + "' is clipped (" + [r.left, r.top, r.right, r.bottom].map(Math.round) + " outside " + [box.left, box.top, box.right, box.bottom].map(Math.round) + ")");
      }
    }
    const labels = items.filter((i) => i.el.tagName === "text").sort((a, b) => a.r.left - b.r.left);
    texts += labels.length;
    for (let i = 0; i < labels.length; i++) {
      for (let j = i + 1; j < labels.length && labels[j].r.left < labels[i].r.right - 0.5; j++) {
        const a = labels[i].r, b = labels[j].r;
        if (Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5) problems.push(where + ": '" + labels[i].el.textContent + "' overlaps '" + labels[j].el.textContent + "'");
      }
    }
    for (const g of svg.querySelectorAll("g.cell")) {
      const t = g.querySelector("text");
      if (t === null) continue;
      const c = g.querySelector("rect").getBoundingClientRect(), r = t.getBoundingClientRect();
      if (r.left < c.left - 0.5 || r.right > c.right + 0.5 || r.top < c.top - 0.5 || r.bottom > c.bottom + 0.5) problems.push(where + ": cell text '" + t.textContent + "' spills out of its cell");
    }
  });
  const strip = document.getElementById("token-strip");
  if (strip !== null && strip.scrollWidth > strip.clientWidth + 1) problems.push("token strip overflows: " + strip.scrollWidth + " > " + strip.clientWidth);
  const body = document.body.innerText + [...document.querySelectorAll("[data-tip]")].map((e) => e.getAttribute("data-tip")).join("");
  for (const bad of ["\\uFFFD", "\\u25A1"]) if (body.includes(bad)) problems.push("unreadable character U+" + bad.charCodeAt(0).toString(16) + " on the page");
  return { problems: problems.slice(0, 15), count: problems.length, svgs: svgs.length, texts, escapes: (body.match(/\\\\x[0-9a-f]{2}/g) || []).length, width: document.documentElement.scrollWidth, vw };
})()`

interface Layout {
  problems: string[]
  count: number
  svgs: number
  texts: number
  escapes: number
  width: number
  vw: number
}

const measure = async (name: string, html: string, extra = ""): Promise<{ layout: Layout; extra: unknown }> => {
  const file = join(dir, `${name}.html`)
  writeFileSync(file, html)
  mkdirSync(ARTIFACTS, { recursive: true })
  const url = pathToFileURL(file).href
  const report = await inspectPage(url, `({ layout: ${LAYOUT}, extra: ${extra === "" ? "null" : extra} })`, { screenshot: join(ARTIFACTS, `layout-${name}.png`), timeoutMs: 120_000 })
  expect(report.errors).toEqual([])
  expect(report.requests.filter((u) => u !== url)).toEqual([])
  return report.value as { layout: Layout; extra: unknown }
}

const expectClean = (layout: Layout) => {
  expect(layout.problems).toEqual([])
  expect(layout.count).toBe(0)
  expect(layout.svgs).toBeGreaterThan(0)
  expect(layout.width).toBeLessThanOrEqual(layout.vw)
}

// Pick head `k` in the explorer, hover token `d`, and read what the explorer shows.
const explore = (k: number, d: number) => `(() => {
  const select = document.getElementById("head-select");
  select.value = "${k}";
  select.dispatchEvent(new Event("change"));
  const spans = [...document.querySelectorAll("#token-strip .tok")];
  spans[${d}].dispatchEvent(new MouseEvent("mouseenter"));
  return {
    tokens: spans.length,
    readout: document.getElementById("explorer-readout").textContent,
    coloured: spans.filter((s) => s.style.background !== "").length,
    focus: spans.findIndex((s) => s.classList.contains("focus")),
    canvas: document.getElementById("pattern-canvas").getBoundingClientRect().width
  };
})()`

const extremes = [
  { name: "2 tokens, 1×1 heads", T: 2, layers: 1, heads: 1 },
  { name: "256 tokens, 12×12 heads", T: 256, layers: 12, heads: 12 }
] as const

describe("report layouts from 2 to 256 tokens and 1 to 12×12 heads, in headless Chromium", () => {
  if (!available && required) {
    it("needs Chromium under CI", () => {
      throw new Error(`${CHROMIUM} is missing; install it (apt-get install -y chromium) or set CHROMIUM_PATH`)
    })
    return
  }
  beforeAll(() => {
    // The fixture really holds cut multi-byte characters: their decode alone is U+FFFD.
    expect(promptIds(256).some((id) => gpt2.decode([id]).includes("\uFFFD"))).toBe(true)
  })

  for (const x of extremes) {
    const tag = `${x.T}-${x.layers}x${x.heads}`

    it.skipIf(!available)(`attention (${x.name}): nothing clipped or overlapping; the explorer shows the picked head`, async () => {
      const analysis = syntheticAttention(x.T, x.layers, x.heads)
      // Ask for one head's full heatmap too, so the T × T grid is measured.
      const { layout, extra } = await measure(`attention-${tag}`, attentionHtml(analysis, text, { layer: x.layers - 1, head: 0 }), explore(0, x.T - 1))
      expectClean(layout)
      if (x.T === 256) expect(layout.escapes).toBeGreaterThan(0)
      const e = extra as { tokens: number; readout: string; coloured: number; focus: number; canvas: number }
      expect(e.tokens).toBe(x.T)
      expect(e.focus).toBe(x.T - 1)
      expect(e.coloured).toBe(x.T) // every token up to the hovered one
      // Head L0H0 is a previous-token head: the hovered token attends fully to the one before it.
      const last = x.T - 1
      expect(e.readout).toContain(`L0H0 · ${analysis.reports[0].label}`)
      expect(e.readout).toContain(`position ${last} '${showToken(text(analysis.tokens[last]))}' attends to:`)
      expect(e.readout).toContain(`${last - 1} '${showToken(text(analysis.tokens[last - 1]))}' 1.000`)
      expect(e.canvas).toBeGreaterThan(20)
    }, 180_000)

    it.skipIf(!available)(`logit lens (${x.name}): nothing clipped or overlapping`, async () => {
      const { layout } = await measure(`lens-${tag}`, lensHtml(syntheticLens(x.T, x.layers), text))
      expectClean(layout)
    }, 180_000)

    it.skipIf(!available)(`patching (${x.name}): nothing clipped or overlapping`, async () => {
      const { layout } = await measure(`patching-${tag}`, patchingHtml(syntheticPatching(x.T, x.layers, x.heads), text))
      expectClean(layout)
    }, 180_000)

    it.skipIf(!available)(`induction (${x.name}): nothing clipped or overlapping`, async () => {
      const { layout } = await measure(`induction-${tag}`, inductionHtml(syntheticInduction(x.layers, x.heads), text))
      expectClean(layout)
    }, 180_000)
  }
})
