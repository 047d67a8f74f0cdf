// The learning path must not rot: every relative link in docs/*.md and README.md names a file or
// folder that exists (web links and #anchors are not checked), docs/README.md lists the pages in
// the order the path teaches them, every page in docs/ is reachable from it, and the parameter
// counts the pages quote are what parameterCount computes. Plain file reads: it runs in
// milliseconds.
import { describe, expect, it } from "@effect/vitest"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { gpt2SmallConfig, parameterCount, type ModelConfig } from "../../src/model/config.ts"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const docsDir = join(root, "docs")

/** The learning path, in order (docs/README.md numbers exactly these). */
const PATH = [
  "tokens-and-embeddings.md",
  "attention.md",
  "multi-head-attention.md",
  "mlp.md",
  "block.md",
  "model.md",
  "training.md",
  "data.md",
  "kv-cache.md",
  "sampling.md",
  "interpretability.md",
  "walkthrough.md"
]

const markdownFiles = (): string[] => [
  join(root, "README.md"),
  ...readdirSync(docsDir)
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => join(docsDir, f))
]

/** Markdown with fenced code blocks removed and inline code spans blanked, so code is never read as links. */
const prose = (markdown: string): string =>
  markdown
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "")
    .replace(/`[^`\n]*`/g, "code")

/** Link targets: inline links and images `[text](target "title")`, and reference definitions `[id]: target`. */
const linkTargets = (markdown: string): string[] => {
  const text = prose(markdown)
  const inline = [...text.matchAll(/!?\[[^\]]*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+["'(][^)]*)?\)/g)].map((m) => m[1])
  const references = [...text.matchAll(/^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/gm)].map((m) => m[1])
  return [...inline, ...references].map((t) => t.replace(/^<|>$/g, ""))
}

/** The file path a target points to, or undefined for web links, mail links and in-page anchors. */
const localPath = (target: string): string | undefined => {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("#") || target.startsWith("//")) return undefined
  const path = decodeURIComponent(target.replace(/[#?].*$/, ""))
  return path === "" ? undefined : path
}

describe("links in the docs", () => {
  it("the link parser sees inline links, images and references, and skips code", () => {
    const sample = [
      "See [a](../src/a.ts), ![img](pic.png \"title\") and [`b.ts`](<b c.ts#x>).",
      "`[not](a-link.md)` and [web](https://example.com) and [anchor](#here)",
      "```",
      "[in code](nowhere.md)",
      "```",
      "[ref]: ./ref.md"
    ].join("\n")
    expect(linkTargets(sample)).toEqual(["../src/a.ts", "pic.png", "b c.ts#x", "https://example.com", "#here", "./ref.md"])
    expect(linkTargets(sample).map(localPath)).toEqual(["../src/a.ts", "pic.png", "b c.ts", undefined, undefined, "./ref.md"])
  })

  for (const file of markdownFiles()) {
    const name = file.slice(root.length + 1)
    it(`every relative link in ${name} points to an existing file`, () => {
      const broken = linkTargets(readFileSync(file, "utf8"))
        .flatMap((target) => {
          const path = localPath(target)
          return path === undefined || existsSync(resolve(dirname(file), path)) ? [] : [target]
        })
      expect(broken, `${name} links to missing files`).toEqual([])
    })
  }
})

describe("the learning path index (docs/README.md)", () => {
  const index = readFileSync(join(docsDir, "README.md"), "utf8")
  const numbered = [...prose(index).matchAll(/^(\d+)\.\s+\[[^\]]*\]\(([^)\s]+)\)/gm)].map((m) => ({ n: Number(m[1]), target: m[2] }))

  it("numbers the pages 1, 2, 3, … in the order of the path, one line each", () => {
    expect(numbered.map((e) => e.n)).toEqual(PATH.map((_, i) => i + 1))
    expect(numbered.map((e) => e.target)).toEqual(PATH)
  })

  it("links every page in docs/", () => {
    const linked = new Set(linkTargets(index).flatMap((t) => localPath(t) ?? []).map((p) => resolve(docsDir, p)))
    const pages = readdirSync(docsDir).filter((f) => f.endsWith(".md") && f !== "README.md")
    expect(pages.filter((f) => !linked.has(join(docsDir, f)))).toEqual([])
  })
})

describe("figures the docs quote", () => {
  const count = (c: ModelConfig) => parameterCount(c).toLocaleString("en-US")
  const tiny: ModelConfig = { ...gpt2SmallConfig, layers: 2, heads: 4, dModel: 64, dFF: 256, context: 64 }
  const configB: ModelConfig = { ...gpt2SmallConfig, layers: 4, heads: 4, dModel: 256, dFF: 1024, context: 128 }
  const embedding = (c: ModelConfig) => (c.vocabSize * c.dModel).toLocaleString("en-US")

  it("the parameter counts in model.md and tokens-and-embeddings.md are parameterCount's", () => {
    const model = readFileSync(join(docsDir, "model.md"), "utf8")
    for (const c of [tiny, configB, gpt2SmallConfig]) {
      expect(model).toContain(count(c))
      expect(model).toContain(embedding(c))
    }
    expect(model).toContain(count({ ...gpt2SmallConfig, tied: false })) // the untied GPT-2 small
    const tokens = readFileSync(join(docsDir, "tokens-and-embeddings.md"), "utf8")
    expect(tokens).toContain(count(tiny))
    expect(tokens).toContain(embedding(tiny))
  })

  it("config/tiny.json is the tiny model the pages describe", () => {
    const config = JSON.parse(readFileSync(join(root, "config/tiny.json"), "utf8")) as { model: Record<string, unknown>; tokenizer: string }
    expect(config.tokenizer).toBe("bytes")
    expect(config.model).toMatchObject({ layers: 4, heads: 4, d_model: 128, d_ff: 512, context: 64, tied: true })
    const shipped: ModelConfig = { ...gpt2SmallConfig, vocabSize: 257, layers: 4, heads: 4, dModel: 128, dFF: 512, context: 64 }
    for (const page of ["model.md", "tokens-and-embeddings.md"]) {
      const text = readFileSync(join(docsDir, page), "utf8")
      expect(text, page).toContain(count(shipped))
      expect(text, page).toContain(embedding(shipped))
    }
  })
})
