// The HTML walkthrough in a real browser: headless Chromium loads the file with no console
// errors, requests nothing but the file itself (and its embedded data: fonts), and lays out the
// KaTeX math with KaTeX's own fonts. Where Chromium is missing the test is skipped locally but
// fails under CI (env CI set), so CI cannot pass without having run it.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { renderHtml } from "../../src/walkthrough/render-html.ts"
import { STAGE_NAMES } from "../../src/walkthrough/stages.ts"
import { CHROMIUM, inspectPage } from "./chromium.ts"
import { run } from "./helpers.ts"

const available = existsSync(CHROMIUM)
const required = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false"
const dir = mkdtempSync(join(tmpdir(), "glassbox-walkthrough-html-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const PROBE = `(() => {
  const display = document.querySelector(".katex-display .katex-html");
  const box = display ? display.getBoundingClientRect() : { width: 0, height: 0 };
  const letter = document.querySelector(".katex .mathnormal");
  return {
    katex: document.querySelectorAll(".katex").length,
    displays: document.querySelectorAll(".katex-display").length,
    sections: [...document.querySelectorAll("section.stage")].map((s) => s.id),
    cells: document.querySelectorAll("table.matrix td").length,
    loadedFonts: [...document.fonts].filter((f) => f.status === "loaded").map((f) => f.family),
    failedFonts: [...document.fonts].filter((f) => f.status === "error").map((f) => f.family),
    mathFont: letter ? getComputedStyle(letter).fontFamily : "",
    width: box.width,
    height: box.height
  };
})()`

describe("the HTML walkthrough in headless Chromium", () => {
  if (!available && required) {
    it("needs Chromium under CI", () => {
      throw new Error(`${CHROMIUM} is missing; install it (apt-get install -y chromium) or set CHROMIUM_PATH`)
    })
    return
  }

  it.skipIf(!available)("renders with no console errors, no requests, and typeset math", async () => {
    const file = join(dir, "walkthrough.html")
    writeFileSync(file, renderHtml(run({ verify: true })))
    const url = pathToFileURL(file).href
    const report = await inspectPage(url, PROBE, { screenshot: process.env.WALKTHROUGH_SCREENSHOT })
    expect(report.errors).toEqual([])
    expect(report.requests.filter((u) => u !== url && !u.startsWith("data:"))).toEqual([])
    const v = report.value as {
      katex: number
      displays: number
      sections: string[]
      cells: number
      loadedFonts: string[]
      failedFonts: string[]
      mathFont: string
      width: number
      height: number
    }
    expect(v.sections).toEqual(STAGE_NAMES.map((n) => `stage-${n}`))
    expect(v.displays).toBeGreaterThan(40)
    expect(v.katex).toBeGreaterThan(v.displays)
    expect(v.cells).toBeGreaterThan(10_000)
    expect(v.failedFonts).toEqual([])
    expect(v.loadedFonts).toEqual(expect.arrayContaining(["KaTeX_Main", "KaTeX_Math"]))
    expect(v.mathFont).toContain("KaTeX_Math")
    expect(v.width).toBeGreaterThan(50)
    expect(v.height).toBeGreaterThan(10)
  })

  it.skipIf(!available)("the checker itself sees console errors, exceptions and outside requests", async () => {
    const file = join(dir, "broken.html")
    writeFileSync(
      file,
      `<!doctype html><html><head><meta charset="utf-8"></head><body><img src="http://127.0.0.1:9/missing.png">
<script>console.error("planted error"); throw new Error("planted exception")</script></body></html>`
    )
    const report = await inspectPage(pathToFileURL(file).href, "document.title")
    expect(report.errors.join("\n")).toContain("planted error")
    expect(report.errors.join("\n")).toContain("planted exception")
    expect(report.requests).toContain("http://127.0.0.1:9/missing.png")
  })
})
