// Every subcommand once, as a user would run it, on a small run trained here: exit code 0 and
// the output that says it worked; `--help` everywhere with an example.
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-smoke-"))
const runDir = path.join(dir, "run")
// Asynchronous on purpose: a blocking spawnSync would starve the test worker's own messaging.
const glassbox = (args: string[], input?: string) =>
  new Promise<{ code: number; out: string; err: string }>((resolve) => {
    const child = execFile(process.execPath, ["bin/glassbox.js", ...args], { encoding: "utf8", env: { ...process.env, GLASSBOX_BACKEND: "wasm" }, timeout: 180_000 }, (error, out, err) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, out, err })
    )
    if (input !== undefined) child.stdin!.end(input)
  })
const ok = async (args: string[], input?: string) => {
  const r = await glassbox(args, input)
  expect(r.code, `${args.join(" ")}: ${r.err}`).toBe(0)
  return r.out
}

const config = path.join(dir, "smoke.json")
fs.writeFileSync(
  config,
  JSON.stringify({
    run: { dir: runDir },
    tokenizer: "bytes",
    model: { layers: 1, heads: 2, d_model: 16, d_ff: 32, context: 16 },
    data: { val_fraction: 0.05 },
    train: { steps: 4, batch: 2, warmup_steps: 1 },
    eval: { every: 2, tokens: 256 },
    checkpoint: { every: 2, keep: 5 },
    generate: { max_new_tokens: 5, prompt: "a" }
  })
)

export const subcommands = ["run", "train", "resume", "eval", "compare", "plot", "generate", "chat", "walkthrough", "config"] as const

describe("every subcommand", () => {
  it("run, resume, eval, compare, plot", async () => {
    expect(await ok(["run", config])).toContain("saved")
    expect(await ok(["resume", runDir, "--set", "train.steps=6"])).toContain(`resuming ${runDir} at step 4`)
    expect(await ok(["eval", runDir])).toMatch(/step 6\): held-out loss \d+\.\d+, perplexity/)
    const table = await ok(["compare", runDir])
    expect(table).toContain("held-out loss")
    expect(table.split("\n").filter((l) => l.includes("step-0000")).length).toBe(3)
    const compared = JSON.parse(await ok(["compare", runDir, "--json"])) as { checkpoints: Array<{ step: number; loss: number }> }
    expect(compared.checkpoints.map((c) => c.step).sort()).toEqual([2, 4, 6])
    const evaluated = JSON.parse(await ok(["eval", runDir, "--json"])) as { step: number; loss: number; perplexity: number }
    expect(evaluated.step).toBe(6)
    expect(evaluated.perplexity).toBeCloseTo(Math.exp(evaluated.loss), 6)
    expect(await ok(["plot", runDir])).toContain(path.join(runDir, "plot.html"))
    expect(fs.readFileSync(path.join(runDir, "plot.html"), "utf8")).toContain("<svg")
  }, 240_000)

  it("train, generate, chat", async () => {
    expect(await ok(["train", config, "--set", `run.dir=${path.join(dir, "run2")}`, "--set", "train.steps=2"])).toContain("saved")
    expect(await ok(["generate", runDir, "--prompt", "ab", "--max-new-tokens", "4", "--preset", "precise"])).toMatch(/^ab/)
    expect(await ok(["chat", runDir, "--max-new-tokens", "3"], "hi\n/show\n/quit\n")).toContain("settings:")
  }, 240_000)

  it("walkthrough and config", async () => {
    expect(await ok(["walkthrough", "--stage", "loss"])).toContain("loss L: 1.648337937")
    const json = path.join(dir, "w.json")
    await ok(["walkthrough", "--json", json])
    expect(JSON.parse(fs.readFileSync(json, "utf8")).loss).toBeCloseTo(1.648337937, 8)
    expect(JSON.parse(await ok(["config", "show", config])).train.steps).toBe(4)
    const schema = JSON.parse(await ok(["config", "schema"]))
    expect(schema.$defs.PipelineConfig.properties.model.properties.position.enum).toEqual(["learned", "rope", "alibi"])
  }, 120_000)

  it("--help everywhere, with examples", async () => {
    const top = await ok(["--help"])
    for (const c of subcommands) expect(top).toContain(c)
    const helps = await Promise.all(subcommands.map((c) => ok([c, "--help"])))
    helps.forEach((h, i) => expect(h, subcommands[i]).toMatch(/Example|show|schema/))
  }, 240_000)
})
