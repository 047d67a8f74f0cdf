// The command as a user meets it, run as a real process: bad input gets one line on stderr
// naming what is wrong and exit code 1 (never a stack trace); generation from a saved model
// streams text and reports its speed.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { saveWeights } from "../../src/model/weights.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"

const glassbox = (...args: string[]) => {
  const r = spawnSync(process.execPath, ["bin/glassbox.js", ...args], { encoding: "utf8", env: { ...process.env, GLASSBOX_BACKEND: "wasm" }, timeout: 120_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

const expectOneLineError = (r: ReturnType<typeof glassbox>, fragment: string) => {
  expect(r.code).toBe(1)
  const lines = r.stderr.trim().split("\n")
  expect(lines, r.stderr).toHaveLength(1)
  expect(lines[0]).toContain(fragment)
  expect(r.stderr).not.toMatch(/\n\s+at /)
}

describe("glassbox CLI", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-cli-"))
  const weights = path.join(dir, "model.safetensors")
  beforeAll(async () => {
    await useBackend("wasm")
    const model = tinyModel(tinyConfig({ vocabSize: 257, context: 16 }))
    await Effect.runPromise(saveWeights(weights, model, "bytes"))
    model.dispose()
  })

  it("a malformed config lists every problem with its path, exit 1", () => {
    const file = path.join(dir, "bad.json")
    fs.writeFileSync(file, JSON.stringify({ model: { heads: "four", d_model: 10, bogus: 1 }, backend: "gpu" }))
    const r = glassbox("run", file)
    expectOneLineError(r, file)
    expect(r.stderr).toContain("model.heads: found \"four\", expected")
    expect(r.stderr).toContain("model.bogus: unknown key")
    expect(r.stderr).toContain('backend: found "gpu", expected "auto" | "tensorflow-gpu"')
  })

  it("a config that is not JSON, exit 1", () => {
    const file = path.join(dir, "broken.json")
    fs.writeFileSync(file, "{ model: ")
    expectOneLineError(glassbox("run", file), "not valid JSON")
  })

  it("a bad --set override, exit 1", () => {
    expectOneLineError(glassbox("run", "config/tiny.json", "--set", "model.d_model=100", "--set", "model.heads=3"), "model.d_model: 100 is not divisible by model.heads (3)")
  })

  it("a missing checkpoint, exit 1", () => {
    expectOneLineError(glassbox("generate", path.join(dir, "nothing-here")), "no such file or directory")
  })

  it("a corrupt checkpoint, exit 1", () => {
    const file = path.join(dir, "corrupt.safetensors")
    fs.writeFileSync(file, Buffer.from("not a safetensors file at all"))
    expectOneLineError(glassbox("generate", file), file)
  })

  it("a prompt longer than the context, exit 1", () => {
    expectOneLineError(glassbox("generate", weights, "--prompt", "x".repeat(40)), "the prompt is 40 tokens but the model's context is 16")
  })

  it("an invalid sampling value, exit 1", () => {
    expectOneLineError(glassbox("generate", weights, "--temperature", "-1"), "temperature = -1 is invalid")
  })

  it("generates from a saved model and reports tokens/s", () => {
    const r = glassbox("generate", weights, "--prompt", "ab", "--max-new-tokens", "5", "--preset", "greedy")
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.startsWith("ab")).toBe(true)
    expect(r.stdout).toMatch(/\[\d+ tokens in [\d.]+s, [\d.]+ tokens\/s\]/)
  })
})
