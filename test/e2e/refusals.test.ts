// Values that cannot mean anything are refused before a model is run: no new tokens, a
// negative seed, a tokenizer the model was not trained with. Each is one line on stderr and
// exit 1 (never exit 0 with nothing done, never an internal error). An empty prompt is not
// one of them: it starts from end-of-text, as --help and the README say.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { runCli, writeRunConfig } from "./run-helpers.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-refusals-"))
const run = path.join(root, "run")

const oneLineExit1 = (r: { code: number | null; stderr: string }, mentions: string) => {
  expect(r.code, r.stderr).toBe(1)
  const lines = r.stderr.trim().split("\n")
  expect(lines, r.stderr).toHaveLength(1)
  expect(lines[0]).toContain(mentions)
  expect(lines[0]).not.toContain("internal error")
}

describe("generate and chat refuse meaningless values", () => {
  beforeAll(async () => {
    const r = await runCli(["run", writeRunConfig(root, { steps: 2, dModel: 16, context: 16, every: 1 })])
    if (r.code !== 0) throw new Error(`training the fixture run failed: ${r.stderr}`)
  }, 180_000)

  const cases: Array<[string, string[], string]> = [
    ["--max-new-tokens 0", ["--max-new-tokens", "0"], "--max-new-tokens 0 is invalid: expected an integer ≥ 1"],
    ["--max-new-tokens -3", ["--max-new-tokens", "-3"], "--max-new-tokens -3 is invalid: expected an integer ≥ 1"],
    ["--seed -1", ["--seed", "-1"], "--seed -1 is invalid: expected an integer ≥ 0"],
    ["--tokenizer gpt2 on a bytes model", ["--tokenizer", "gpt2"], "--tokenizer gpt2 does not match the model"]
  ]
  for (const command of ["generate", "chat"] as const) {
    for (const [name, flags, mentions] of cases) {
      it(`${command} ${name}: one line, exit 1`, async () => {
        const r = await runCli([command, run, "--backend", "wasm", ...flags], command === "chat" ? "hello\n/quit\n" : undefined)
        oneLineExit1(r, mentions)
      }, 120_000)
    }
  }

  it("chat: /set seed -1 and /set max-new-tokens 0 are refused in the session, which goes on", async () => {
    const r = await runCli(["chat", run, "--backend", "wasm"], "/set seed -1\n/set max-new-tokens 0\n/show\n/quit\n")
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("seed = -1 is invalid: expected an integer ≥ 0")
    expect(r.stdout).toContain("max-new-tokens = 0 is invalid: expected an integer ≥ 1")
    expect(r.stdout).toMatch(/max-new-tokens[^,]*100/)
  }, 120_000)

  it("generate with an empty prompt starts from end-of-text", async () => {
    const r = await runCli(["generate", run, "--backend", "wasm", "--prompt", "", "--max-new-tokens", "3", "--json"])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as { prompt: string; samples: Array<{ tokens: number }> }
    expect(out.prompt).toBe("")
    expect(out.samples[0].tokens).toBeGreaterThan(0)
  }, 120_000)
})
