// The report renderers as pure functions: terminal heatmaps carry the value in every cell and
// colour only when asked, wrap wide grids, show invisible tokens; HTML reports are one
// self-contained document (no external reference), escape token text, and put one hoverable
// cell per value with the tokens and the value in its tip.
import { describe, expect, it } from "@effect/vitest"
import { labelHead, scoreHead, uniformScores } from "../../src/interpret/attention.ts"
import { colorFor, compact, fit, hex, readableBytes, showToken } from "../../src/interpret/colors.ts"
import type { PatchingResult } from "../../src/interpret/patching.ts"
import { attentionHtml, escapeHtml, htmlReport, lensHtml, patchingHtml, svgHeatmap } from "../../src/interpret/render-html.ts"
import { heatmap, renderPatching, stripAnsi, table } from "../../src/interpret/render-terminal.ts"

const spec = {
  title: "grid",
  rowLabels: ["L0", "L1"],
  colLabels: ["a", "b", "c"],
  values: [[0, 0.5, 1], [NaN, 0.25, 0.75]],
  scale: "sequential" as const,
  min: 0,
  max: 1
}

describe("terminal rendering", () => {
  it("writes every value, marks missing ones, and colours only when asked", () => {
    const plain = heatmap(spec, { color: false })
    expect(plain).toBe(["grid", "      a    b    c", "L0  .00  .50  1.0", "L1    ·  .25  .75"].join("\n"))
    const coloured = heatmap(spec, { color: true })
    expect(coloured).toContain("\x1b[48;2;")
    expect(stripAnsi(coloured).split("\n").map((l) => l.trimEnd())).toEqual(plain.split("\n"))
  })

  it("wraps a wide grid into blocks of columns that fit the width", () => {
    const wide = { ...spec, colLabels: Array.from({ length: 30 }, (_, i) => String(i)), values: [Array.from({ length: 30 }, () => 0.5), Array.from({ length: 30 }, () => 0.5)] }
    const lines = heatmap(wide, { color: false, width: 60 }).split("\n")
    expect(Math.max(...lines.map((l) => [...l].length))).toBeLessThanOrEqual(60)
    expect(lines.filter((l) => l.startsWith("L0"))).toHaveLength(3) // 11 + 11 + 8 columns
  })

  it("tables pad columns and right-align numbers", () => {
    expect(table(["name", "n"], [["a", "1"], ["bbb", "10"]], [false, true])).toBe(["name   n", "────  ──", "a      1", "bbb   10"].join("\n"))
  })

  it("makes tokens visible and numbers compact", () => {
    expect(showToken(" the\n\t\u0001")).toBe("␣the\\n\\t\\x01")
    // C1 controls (drawn as □ by fonts) and cut UTF-8 characters (U+FFFD when decoded alone) read as bytes.
    expect(showToken("a\u0085b\u200b")).toBe("a\\x85b\\u{200b}")
    expect(readableBytes(Uint8Array.of(0x20, 0xe4, 0xb8))).toBe(" \\xe4\\xb8")
    expect(readableBytes(new TextEncoder().encode("é世🙂"))).toBe("é世🙂")
    expect(readableBytes(Uint8Array.of(0xc3, 0xa9, 0xf0, 0x9f))).toBe("é\\xf0\\x9f")
    expect(fit("abcdef", 4)).toBe("abc…")
    expect(fit("ab", 4, "right")).toBe("  ab")
    expect([0.934, 1, -0.5, 12.3, NaN].map(compact)).toEqual([".93", "1.0", "-.50", "12", "·"])
    expect(colorFor("diverging", 0, -1, 1)).toEqual([247, 247, 247])
    expect(colorFor("sequential", 0, 0, 1)).toEqual([247, 251, 255])
    expect(colorFor("sequential", 1, 0, 1)).toEqual([8, 48, 107])
  })
})

const patching: PatchingResult = {
  clean: [0, 1, 2],
  corrupted: [0, 3, 2],
  answer: 4,
  wrong: 5,
  cleanDiff: 2,
  corruptedDiff: -1,
  logitScale: 1.5,
  grids: { resid_pre: [[0, 1, 0], [0, 0.5, 0.25]], head: [[0.1, -0.2]] },
  forwards: 3,
  sites: 8
}
const names = ["<s>", " a", "<script>", " b", " yes", " no"]
const text = (id: number) => names[id]

describe("HTML rendering", () => {
  it("an SVG heatmap has one hoverable cell per value, with its tip as data and title", () => {
    const svg = svgHeatmap({ ...spec, tip: (r, c, v) => `r${r} c${c} = ${v}` })
    expect(svg.match(/<g class="cell"/g)).toHaveLength(5) // the NaN cell is left out
    expect(svg).toContain('data-tip="r1 c2 = 0.75"')
    expect(svg).toContain("<title>r0 c1 = 0.5</title>")
  })

  it("a report is one self-contained document with escaped token text", () => {
    const html = patchingHtml(patching, text, "source <line>")
    expect(html.startsWith("<!doctype html>")).toBe(true)
    expect(html).not.toMatch(/\b(src|href)=/)
    expect(html).not.toMatch(/https?:\/\//)
    expect(html).not.toContain("<script>'")
    expect(html).toContain("&lt;script&gt;")
    expect(html).toContain("source &lt;line&gt;")
    expect(html.match(/<g class="cell"/g)).toHaveLength(8)
    expect(html).toContain("resid_pre L0 · position 1 &#39;␣a&#39; (corrupted &#39;␣b&#39;): 1.0000")
    expect(htmlReport("t", "s", [])).toContain('<div id="readout"')
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
  })

  it("the head grid colours only heads a shape names: broad and other heads are grey, whatever their entropy", () => {
    const tokens = [0, 1, 2, 1]
    const T = tokens.length
    const p = new Float32Array(2 * T * T)
    for (let d = 0; d < T; d++) {
      for (let s = 0; s <= d; s++) p[d * T + s] = 1 / (d + 1) // head 0: uniform
      p[T * T + d * T + Math.max(0, d - 1)] = 1 // head 1: previous token
    }
    const chance = uniformScores(tokens)
    const reports = [0, 1].map((head) => {
      const scores = scoreHead(p, head * T * T, tokens)
      return { layer: 0, head, ...labelHead(scores, undefined, chance), scores }
    })
    expect(reports.map((r) => r.label)).toEqual(["broad", "previous-token"])
    const html = attentionHtml({ tokens, layers: 1, heads: 2, patterns: [p], reports }, text)
    const fillOf = (head: number) => new RegExp(`data-head="${head}"><rect [^>]*fill="(#[0-9a-f]{6})"`).exec(html)?.[1]
    expect(fillOf(0)).toBe(hex(colorFor("sequential", NaN, 0, 1))) // grey, though its entropy score is 1
    expect(fillOf(1)).toBe(hex(colorFor("sequential", 1, 0, 1)))
    expect(html).not.toMatch(/>\?</) // no unexplained "?" cells
    expect(html).toContain(">broad</text>")
    expect(html).toContain('id="head-select"')
    expect(html).toContain('<option value="1" selected>L0H1 · previous-token 1.00</option>')
  })

  it("the lens page marks top-1 = next with * and counts it per stage", () => {
    const cell = (top: number, next?: number) => ({ top: [{ token: top, prob: 0.9 }], entropy: 0.1, klToFinal: 0, ...(next === undefined ? {} : { next: { token: next, rank: top === next ? 0 : 2, prob: 0.5 } }) })
    const html = lensHtml({ tokens: [0, 1, 4], stages: ["embed", "L0"], hooks: ["a", "b"], cells: [[cell(5, 1), cell(5, 4), cell(5)], [cell(1, 1), cell(4, 4), cell(5)]] }, text)
    expect(html).toContain(">␣a*</text>")
    expect(html).toContain(">␣yes*</text>")
    expect(html).toContain("(* top-1 = next)")
    expect(html).toMatch(/<td class="l">L0<\/td><td>[^<]*<\/td><td>[^<]*<\/td><td>[^<]*<\/td><td>2\/2<\/td>/)
  })

  it("a weak patching baseline shows its warning on the page", () => {
    expect(patchingHtml({ ...patching, warning: "only 0.001 apart" }, text)).toContain('<p class="warning" role="note"><strong>Warning:</strong> only 0.001 apart</p>')
  })

  it("the terminal patching view names the answer tokens and shows both prompts' tokens where they differ", () => {
    const out = stripAnsi(renderPatching(patching, text, { color: false }))
    expect(out).toContain("logit(␣yes) − logit(␣no)")
    expect(out).toContain("clean 2.000, corrupted -1.000")
    expect(out).toContain("␣a/␣b")
    expect(out).toContain("8 sites in 3 forward passes")
  })
})
