// The command as a user meets it, run as a real process: bad input gets one line on stderr
// naming what is wrong and exit code 1 (never a stack trace); generation from a saved model
// streams text and reports its speed.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { saveWeights } from "../../src/model/weights.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"
import { expectOneLineError, runCli } from "../e2e/run-helpers.ts"

const glassbox = (...args: string[]) => runCli(args, undefined, { GLASSBOX_BACKEND: "wasm" })


describe("glassbox CLI", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-cli-"))
  const weights = path.join(dir, "model.safetensors")
  const chatWeights = path.join(dir, "chat.safetensors")
  beforeAll(async () => {
    await useBackend("wasm")
    for (const [file, context] of [[weights, 16], [chatWeights, 64]] as const) {
      const model = tinyModel(tinyConfig({ vocabSize: 257, context }))
      await Effect.runPromise(saveWeights(file, model, "bytes"))
      model.dispose()
    }
  })

  it("a malformed config lists every problem with its path, exit 1", async () => {
    const file = path.join(dir, "bad.json")
    fs.writeFileSync(file, JSON.stringify({ model: { heads: "four", d_model: 10, bogus: 1 }, backend: "gpu" }))
    const r = await glassbox("run", file)
    expectOneLineError(r, file)
    expect(r.stderr).toContain("model.heads: found \"four\", expected")
    expect(r.stderr).toContain("model.bogus: unknown key")
    expect(r.stderr).toContain('backend: found "gpu", expected "auto" | "tensorflow-gpu"')
  })

  it("a config that is not JSON, exit 1", async () => {
    const file = path.join(dir, "broken.json")
    fs.writeFileSync(file, "{ model: ")
    expectOneLineError(await glassbox("run", file), "not valid JSON")
  })

  it("a bad --set override, exit 1", async () => {
    expectOneLineError(await glassbox("run", "config/tiny.json", "--set", "model.d_model=100", "--set", "model.heads=3"), "model.d_model: 100 is not divisible by model.heads (3)")
  })

  it("a missing checkpoint, exit 1", async () => {
    expectOneLineError(await glassbox("generate", path.join(dir, "nothing-here")), "no such file or directory")
  })

  it("a corrupt checkpoint, exit 1", async () => {
    const file = path.join(dir, "corrupt.safetensors")
    fs.writeFileSync(file, Buffer.from("not a safetensors file at all"))
    expectOneLineError(await glassbox("generate", file), file)
  })

  it("a prompt longer than the context, exit 1", async () => {
    expectOneLineError(await glassbox("generate", weights, "--prompt", "x".repeat(40)), "the prompt is 40 tokens but the model's context is 16")
  })

  it("an invalid sampling value, exit 1", async () => {
    expectOneLineError(await glassbox("generate", weights, "--temperature", "-1"), "--temperature -1 is invalid")
  })

  it("generates from a saved model and reports tokens/s", async () => {
    const r = await glassbox("generate", weights, "--prompt", "ab", "--max-new-tokens", "5", "--preset", "greedy")
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.startsWith("ab")).toBe(true)
    expect(r.stderr).toMatch(/\[\d+ tokens in [\d.]+s, [\d.]+ tokens\/s on wasm \(simd, 1 thread\)\]/)
  })

  it("generate: stop strings end the text, sampling flags override the preset", async () => {
    const r = await glassbox("generate", weights, "--prompt", "ab", "--max-new-tokens", "12", "--preset", "greedy", "--stop", "zzz-never")
    expect(r.code, r.stderr).toBe(0)
    const greedyText = r.stdout.replace(/\n$/, "")
    const cut = greedyText.slice(3, 5)
    const stopped = await glassbox("generate", weights, "--prompt", "ab", "--max-new-tokens", "12", "--preset", "greedy", "--stop", cut)
    expect(stopped.stdout.replace(/\n$/, "")).toBe(greedyText.slice(0, greedyText.indexOf(cut, 2)))
    expectOneLineError(await glassbox("generate", weights, "--top-k", "0"), "--top-k 0 is invalid")
    expectOneLineError(await glassbox("generate", weights, "--top-p", "1.5"), "--top-p 1.5 is invalid")
  })

  it("chat: commands, history and an answer; Ctrl-C stops an answer without leaving", async () => {
    // top-k 3 keeps end-of-text (one byte value in 257) out of a random model's answers, so the
    // answer is still being written when Ctrl-C arrives.
    const child = spawn(process.execPath, ["bin/glassbox.js", "chat", chatWeights, "--max-new-tokens", "100000", "--top-k", "3"], {
      env: { ...process.env, GLASSBOX_BACKEND: "wasm" },
      stdio: ["pipe", "pipe", "pipe"]
    })
    let out = ""
    let err = ""
    child.stdout.on("data", (d) => (out += d))
    child.stderr.on("data", (d) => (err += d))
    const waitFor = (pattern: { test(text: string): boolean }) =>
      new Promise<void>((resolve, reject) => {
        const started = Date.now()
        const timer = setInterval(() => {
          if (pattern.test(out)) {
            clearInterval(timer)
            resolve()
          } else if (Date.now() - started > 60_000) {
            clearInterval(timer)
            reject(new Error(`timed out waiting for ${pattern}; output so far: ${out}`))
          }
        }, 20)
      })
    await waitFor(/\/help for commands/)
    child.stdin.write("/set temperature 0.9\n/set top-p 2\n/set top_k 7\n/set --min-p 0.01\n/show\n/preset nope\n/help\n")
    await waitFor(/Ctrl-C stops an answer/)
    const before = out.length
    child.stdin.write("hello\n")
    await waitFor({ test: (text) => text.length > before + 50 }) // an answer is being written
    child.kill("SIGINT")
    await waitFor(/\[stopped\]/)
    child.stdin.write("/quit\n")
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve))
    expect(code).toBe(0)
    expect(out).toContain("temperature = 0.9")
    expect(out).toContain("top-p = 2 is invalid")
    expect(out).toContain("top-k = 7")
    expect(out).toContain("min-p = 0.01")
    expect(out).toMatch(/settings: preset balanced \(modified\), greedy false, temperature 0.9, top-k 7, top-p 0.9, min-p 0.01, /)
    expect(out).toContain("a base model continues text rather than answering")
    expect(out).toContain('unknown preset "nope"')
    expect(err).toMatch(/\[\d+ tokens in [\d.]+s, [\d.]+ tokens\/s on wasm \(simd, 1 thread\)\]/)
  })
})
