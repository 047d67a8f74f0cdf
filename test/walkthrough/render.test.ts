// The renderings: the terminal document names every stage, one stage can be printed alone,
// colour is optional; the HTML page is self-contained with KaTeX markup and embedded fonts;
// the JSON carries every value under its name.
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { toJson } from "../../src/walkthrough/json.ts"
import { renderHtml } from "../../src/walkthrough/render-html.ts"
import { renderTerminal } from "../../src/walkthrough/render-terminal.ts"
import { STAGE_NAMES } from "../../src/walkthrough/stages.ts"
import { run } from "./helpers.ts"

const result = run({ verify: true })
const ESC = "\x1b["

describe("terminal", () => {
  it("the stages are STAGE_NAMES, in order, and the document shows each", () => {
    expect(result.stages.map((s) => s.name)).toEqual([...STAGE_NAMES])
    const text = Either.getOrThrow(renderTerminal(result, { color: false }))
    let from = 0
    for (const name of STAGE_NAMES) {
      const at = text.indexOf(` · ${name} — `, from)
      expect(at, name).toBeGreaterThan(from - 1)
      from = at
    }
    expect(text).not.toContain(ESC)
    expect(text).toContain("dL/dlogits_t = (p_t − onehot(target_t)) / T")
    expect(text).toContain("[16, 48]")
    expect(text).toContain("every gradient checked by finite differences")
  })

  it("--stage prints one stage; colours are ANSI codes when asked", () => {
    const one = Either.getOrThrow(renderTerminal(result, { stage: "grad-softmax", color: true }))
    expect(one).toContain("grad-softmax")
    expect(one).toContain("J = diag(a) − a·aᵀ")
    expect(one).not.toContain("grad-scores —")
    expect(one).toContain(`${ESC}38;5;`)
  })

  it("an unknown stage is a one-line error listing the valid names", () => {
    const r = renderTerminal(result, { stage: "attention", color: false })
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) {
      expect(r.left.message).toMatch(/^walkthrough stage: "attention" is not a stage; choose one of tokens, init, embed/)
      expect(r.left.message).not.toContain("\n")
    }
  })

  it("wide matrices are cut unless full", () => {
    const cut = Either.getOrThrow(renderTerminal(result, { stage: "mlp", color: false }))
    expect(cut).toContain("… +48 cols")
    const full = Either.getOrThrow(renderTerminal(result, { stage: "mlp", color: false, full: true }))
    expect(full).not.toContain("… +")
  })
})

describe("HTML", () => {
  const html = renderHtml(result)

  it("is self-contained: no external URL, no script, fonts embedded as data: URLs", () => {
    expect(html.startsWith("<!doctype html>")).toBe(true)
    expect(html).not.toMatch(/<script/i)
    expect(html).not.toMatch(/<link/i)
    expect(html).not.toMatch(/@import/)
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i)
    // every url(...) is a data: URL
    const urls = [...html.matchAll(/url\(([^)]*)\)/g)].map((m) => m[1])
    expect(urls.length).toBeGreaterThanOrEqual(20)
    expect(urls.filter((u) => !u.startsWith("data:font/woff2;base64,"))).toEqual([])
    // the only http(s) strings are XML namespace names (MathML, KaTeX's inline SVG), never fetched
    const http = [...html.matchAll(/https?:\/\/[^"'\s)]+/g)].map((m) => m[0])
    expect(new Set(http)).toEqual(new Set(["http://www.w3.org/1998/Math/MathML", "http://www.w3.org/2000/svg"]))
  })

  it("contains rendered KaTeX, every stage as a section, coloured matrices", () => {
    expect(html).toContain('class="katex-display"')
    expect(html).toContain('class="katex-html"')
    expect(html).toContain("<math")
    for (const name of STAGE_NAMES) expect(html).toContain(`<section id="stage-${name}"`)
    expect(html).toMatch(/<td class="p[1-8]" title="[0-9.e−]+">/)
    expect(html).toMatch(/<td class="n[1-8]" title="−[0-9.e−]+">/)
    expect(html).toContain('<td class="m" title="−Infinity">−∞</td>')
    expect(html).toContain("KaTeX_Main")
  })
})

describe("JSON", () => {
  it("every parameter, gradient, hook and AdamW value at full precision; −∞ as null", () => {
    const j = JSON.parse(toJson(result))
    expect(j.format).toBe("glassbox-walkthrough")
    expect(j.loss).toBe(result.loss)
    expect(Object.keys(j.params)).toEqual(Object.keys(result.params))
    expect(j.params["h.0.attn.c_attn.weight"].shape).toEqual([16, 48])
    expect(j.params["h.0.attn.c_attn.weight"].data[5]).toBe(result.params["h.0.attn.c_attn.weight"].data[5])
    expect(j.grads["wte.weight"].data[3]).toBe(result.grads["wte.weight"].data[3])
    expect(j.hooks["blocks.0.attn.hook_attn_scores"].data[1]).toBeNull()
    expect(j.adamw.params["ln_f.bias"].data[0]).toBe(result.adamw.params["ln_f.bias"].data[0])
    expect(j.stages.map((s: { name: string }) => s.name)).toEqual([...STAGE_NAMES])
    expect(j.check.ok).toBe(true)
  })
})
