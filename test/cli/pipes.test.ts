// The command in a pipeline: output arrives complete however slowly the reader reads, a reader
// that stops early ends the command quietly (exit 0), only the text goes to stdout, and the
// prompt can come from stdin or a file. Real processes over real pipes.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { saveWeights } from "../../src/model/weights.ts"
import { renderTerminal, toJson, walkthrough } from "../../src/walkthrough/index.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"

interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs glassbox with stdin from `input` (or /dev/null). With `holdMs`, stdout is not read until
 * that long after the start, so a large output fills the pipe and must wait for the reader.
 */
const glassbox = (args: string[], o: { input?: string; holdMs?: number } = {}) =>
  new Promise<Finished>((resolve) => {
    const child = spawn(process.execPath, ["bin/glassbox.js", ...args], {
      env: { ...process.env, GLASSBOX_BACKEND: "wasm" },
      stdio: [o.input === undefined ? "ignore" : "pipe", "pipe", "pipe"]
    })
    const out: Buffer[] = []
    let err = ""
    const stdout = child.stdout!
    if (o.holdMs !== undefined) {
      stdout.pause()
      setTimeout(() => stdout.resume(), o.holdMs)
    }
    stdout.on("data", (d: Buffer) => out.push(d))
    child.stderr!.on("data", (d) => (err += d))
    if (o.input !== undefined) child.stdin!.end(o.input)
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: err }))
  })

describe("glassbox in pipes", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-pipes-"))
  const weights = path.join(dir, "model.safetensors")
  beforeAll(async () => {
    await useBackend("wasm")
    const model = tinyModel(tinyConfig({ vocabSize: 257, context: 32 }))
    await Effect.runPromise(saveWeights(weights, model, "bytes"))
    model.dispose()
  })

  it("the whole walkthrough reaches a slow reader (far more than one 64 KiB pipe buffer)", async () => {
    const result = await Effect.runPromise(walkthrough({}))
    const expected = Either.getOrThrow(renderTerminal(result, { color: false, full: false })) + "\n"
    expect(Buffer.byteLength(expected)).toBeGreaterThan(2 * 65536)
    const r = await glassbox(["walkthrough"], { holdMs: 3000 })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.length).toBe(expected.length)
    expect(r.stdout).toBe(expected)
  }, 120_000)

  it("walkthrough --json - is one valid JSON document, complete", async () => {
    const r = await glassbox(["walkthrough", "--json", "-"], { holdMs: 3000 })
    expect(r.code, r.stderr).toBe(0)
    const expected = toJson(await Effect.runPromise(walkthrough({}))) + "\n"
    expect(r.stdout).toBe(expected)
    expect(JSON.parse(r.stdout).loss).toBeCloseTo(1.648337937, 8)
  }, 120_000)

  it("a reader that closes the pipe early: exit 0, nothing on stderr", async () => {
    const r = await new Promise<Finished>((resolve) => {
      const child = spawn(process.execPath, ["bin/glassbox.js", "generate", weights, "--prompt", "ab", "--max-new-tokens", "5000", "--top-k", "3"], {
        env: { ...process.env, GLASSBOX_BACKEND: "wasm" },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let err = ""
      let got = ""
      child.stderr.on("data", (d) => (err += d))
      child.stdout.on("data", (d) => {
        got += d
        // Like `| head -c 20`: take a little, then close our end.
        if (got.length >= 20) child.stdout.destroy()
      })
      child.on("close", (code) => resolve({ code, stdout: got, stderr: err }))
    })
    expect(r.stdout.length).toBeGreaterThanOrEqual(20)
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
  }, 120_000)

  it("generate: the prompt from stdin; only the text on stdout, the speed line on stderr", async () => {
    const r = await glassbox(["generate", weights, "--max-new-tokens", "6", "--preset", "greedy"], { input: "ab\n" })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.startsWith("ab")).toBe(true)
    expect(r.stdout).not.toContain("tokens/s")
    expect(r.stderr).toMatch(/\[\d+ tokens in [\d.]+s, [\d.]+ tokens\/s on wasm/)
    // The same prompt by flag gives the same text (greedy): stdin lost only its final newline.
    const byFlag = await glassbox(["generate", weights, "--prompt", "ab", "--max-new-tokens", "6", "--preset", "greedy"])
    expect(r.stdout).toBe(byFlag.stdout)
  }, 120_000)

  it("interpret --json: the probe's result as one JSON document, no terminal view", async () => {
    const r = await glassbox(["interpret", "attention", weights, "--text", "abab", "--json"])
    expect(r.code, r.stderr).toBe(0)
    const a = JSON.parse(r.stdout) as { tokens: number[]; layers: number; heads: number; patterns: number[][][][]; reports: unknown[] }
    expect(a.tokens).toHaveLength(5) // end-of-text + 4 bytes
    expect(a.patterns).toHaveLength(a.layers)
    expect(a.patterns[0]).toHaveLength(a.heads)
    // Causal: each row of a pattern sums to 1 over the positions it can see.
    for (const row of a.patterns[0][0]) expect(row.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 5)
    expect(a.reports).toHaveLength(a.layers * a.heads)
    const induction = await glassbox(["interpret", "induction", weights, "--batch", "2", "--json"])
    expect(induction.code, induction.stderr).toBe(0)
    const i = JSON.parse(induction.stdout) as { repeatLength: number; repeatLengthNote?: string }
    expect(i.repeatLength).toBe(15) // the most a 32-token context allows: 2R + 1 ≤ 32
    expect(i.repeatLengthNote).toContain("repeat length 15")
  }, 120_000)

  it("generate: --prompt-file, --num-samples and --json", async () => {
    const file = path.join(dir, "prompt.txt")
    fs.writeFileSync(file, "ab\n")
    const r = await glassbox(["generate", weights, "--prompt-file", file, "--max-new-tokens", "4", "--num-samples", "3", "--json"])
    expect(r.code, r.stderr).toBe(0)
    const json = JSON.parse(r.stdout) as { prompt: string; samples: Array<{ seed: number; text: string; tokens: number }>; sampling: Record<string, unknown> }
    expect(json.prompt).toBe("ab")
    expect(json.samples.map((s) => s.seed)).toEqual([0, 1, 2])
    for (const s of json.samples) expect(s.tokens).toBeGreaterThan(0)
    expect(json.sampling["top-k"]).toBe(50)
    const text = await glassbox(["generate", weights, "--prompt", "ab", "--max-new-tokens", "4", "--num-samples", "2"])
    expect(text.stdout).toContain("--- sample 1 of 2 (seed 0) ---\nab")
    expect(text.stdout).toContain("--- sample 2 of 2 (seed 1) ---\nab")
    const missing = await glassbox(["generate", weights, "--prompt-file", path.join(dir, "none.txt")])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain("--prompt-file")
    const bad = await glassbox(["generate", weights, "--top-k", "0"])
    expect(bad.stderr.trim()).toBe("glassbox: --top-k 0 is invalid: expected an integer ≥ 1")
  }, 180_000)
})
