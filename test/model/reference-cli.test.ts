// Every refusal of a model reference, as a user meets it: the real `glassbox` process, one line on
// stderr naming the file and the field, exit 1 (never a stack trace, never exit 2). And the happy
// path once: generate from a Hugging Face-style directory and from hf: on a loopback Hub.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startHubServer, type HubServer } from "../data/hub-server.ts"
import { expectOneLineError, runCli } from "../e2e/run-helpers.ts"

const fixtures = path.join(import.meta.dirname, "fixtures", "foreign")
const root = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-reference-cli-"))

/** Runs the CLI without blocking this process (the loopback Hub must keep answering). */
const glassbox = (args: string[], env: Record<string, string> = {}) => runCli(args, undefined, { GLASSBOX_CACHE: path.join(root, "cache"), ...env })

const refused = async (args: string[], fragment: string, env?: Record<string, string>) => {
  const r = await glassbox(args, env)
  expectOneLineError(r, fragment)
}

/** A copy of a fixture directory with its config.json replaced (or removed, with `undefined`). */
const variant = (name: string, config: unknown) => {
  const dir = fs.mkdtempSync(path.join(root, `${name}-`))
  fs.copyFileSync(path.join(fixtures, "w32-f16-buffers", "model.safetensors"), path.join(dir, "model.safetensors"))
  if (config !== undefined) fs.writeFileSync(path.join(dir, "config.json"), typeof config === "string" ? config : JSON.stringify(config))
  return dir
}
const goodConfig = JSON.parse(fs.readFileSync(path.join(fixtures, "w32-f16-buffers", "config.json"), "utf8")) as Record<string, unknown>

describe("model references on the command line", () => {
  let hub: HubServer
  beforeAll(async () => {
    const files = Object.fromEntries(["config.json", "model.safetensors"].map((f) => [f, new Uint8Array(fs.readFileSync(path.join(fixtures, "w32-f16-buffers", f)))]))
    hub = await startHubServer({ repos: { "glassbox-test/tiny": files }, faults: {} })
  })
  afterAll(() => hub.close())

  it("generate from a Hugging Face directory, and from hf: through HF_ENDPOINT", async () => {
    const local = await glassbox(["generate", path.join(fixtures, "w32-f16-buffers"), "--prompt", "Hi", "--max-new-tokens", "3", "--backend", "cpu"])
    expect(local.code, local.stderr).toBe(0)
    expect(local.stdout.startsWith("Hi")).toBe(true)
    const remote = await glassbox(["generate", "hf:glassbox-test/tiny", "--prompt", "Hi", "--max-new-tokens", "3", "--backend", "cpu"], { HF_ENDPOINT: hub.endpoint })
    expect(remote.code, remote.stderr).toBe(0)
    expect(remote.stdout.startsWith("Hi")).toBe(true)
    expect(hub.log.some((r) => r.url.endsWith("/glassbox-test/tiny/resolve/0123456789abcdef0123456789abcdef01234567/model.safetensors"))).toBe(true)
  }, 120_000)

  it("eval measures any model reference on a config's held-out set", async () => {
    const r = await glassbox(["eval", path.join(fixtures, "w32-f16-buffers"), "--tokens", "256", "--json", "--backend", "cpu"])
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout) as { model: string; data: string; loss: number; tokens: number }
    expect(result).toMatchObject({ model: path.join(fixtures, "w32-f16-buffers"), data: "the shipped corpus" })
    expect(result.tokens).toBeGreaterThanOrEqual(256)
    expect(Number.isFinite(result.loss)).toBe(true)
    await refused(["eval", path.join(fixtures, "w32-f16-buffers"), "--config", "config/fineweb-small.json"], 'uses the bytes tokenizer but config/fineweb-small.json says "tokenizer": "gpt2"')
  }, 120_000)

  it("refusals: one line, exit 1, the file and the field named", async () => {
    const noConfig = variant("no-config", undefined)
    await refused(["generate", noConfig, "--max-new-tokens", "1"], `${path.join(noConfig, "model.safetensors")}: the head count is not recorded`)
    const badConfig = variant("bad-config", { ...goodConfig, n_head: "four", n_layer: undefined })
    await refused(["generate", badConfig], `${path.join(badConfig, "config.json")}: n_head is "four", expected number; n_layer is missing`)
    const notJson = variant("not-json", "{ n_head: ")
    await refused(["interpret", "attention", notJson, "--text", "ab"], `${path.join(notJson, "config.json")}: not valid JSON`)
    const indivisible = variant("indivisible", { ...goodConfig, n_head: 3 })
    await refused(["generate", indivisible], `${path.join(indivisible, "config.json")}: n_embd (128) must be divisible by n_head (3)`)
    await refused(["generate", path.join(fixtures, "w32-f16-buffers"), "--tokenizer", "gpt2"], "--tokenizer gpt2 does not match the model: its vocabulary size identifies bytes")
    await refused(["generate", path.join(fixtures, "w32-f16-buffers"), "--heads", "2"], "--heads 2 contradicts the 4 heads recorded in config.json")
    await refused(["generate", "hf:glassbox-test/missing"], "hf:glassbox-test/missing: glassbox-test/missing at revision main does not exist (HTTP 404", { HF_ENDPOINT: hub.endpoint })
    hub.options.faults!["model.safetensors"] = { statuses: [403] }
    await refused(["generate", "hf:glassbox-test/tiny"], "refused access (HTTP 403", { HF_ENDPOINT: hub.endpoint, GLASSBOX_CACHE: path.join(root, "empty-cache") })
    await refused(["generate", "hf:a/b/c"], 'model reference "hf:a/b/c": expected hf:<owner>/<name>')
    await refused(["generate", path.join(root, "nothing-here")], `${path.join(root, "nothing-here")}: no such file or directory`)
  }, 240_000)
})
