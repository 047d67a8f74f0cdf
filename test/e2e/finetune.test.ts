// Fine-tuning from a pretrained model (`model.init`), with real processes: a small model is
// pretrained first; a run that names it starts at that model's held-out loss, not at ln(V) as a
// fresh one would, and a fine-tune killed with SIGKILL and resumed ends bit-identical to one that
// was never interrupted. A config that sets the shape beside model.init, or names another
// tokenizer, is refused in one line with exit 1.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { runPipeline } from "../../pipelines/index.ts"
import { loadConfig } from "../../src/config/load.ts"
import { writeHfDirectory } from "../../src/model/hf-export.ts"
import { startHubServer } from "../data/hub-server.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"
import { expectOneLineError, latestCheckpoint, runCli, startCli, stepLosses, stepsLogged, waitFor } from "./run-helpers.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-finetune-"))
const source = path.join(root, "source")
const STEPS = 10

/** The same data, tokenizer, window and batch as the source run, so the held-out set is the same. */
const config = (name: string, extra: { model?: Record<string, unknown>; tokenizer?: string; train?: Record<string, unknown> } = {}) => {
  const dir = path.join(root, name)
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, "config.json")
  fs.writeFileSync(
    file,
    JSON.stringify({
      run: { dir: path.join(dir, "run"), seed: 5 },
      backend: "wasm",
      tokenizer: extra.tokenizer ?? "bytes",
      model: extra.model ?? { init: source, dropout: 0.1, context: 32 },
      data: { val_fraction: 0.05 },
      train: extra.train ?? { steps: STEPS, batch: 4, warmup_steps: 2, lr: 1e-3, min_lr: 1e-4 },
      eval: { every: 0, tokens: 512 },
      checkpoint: { every: 1, keep: 2 },
      generate: { max_new_tokens: 4 }
    })
  )
  return { file, runDir: path.join(dir, "run") }
}

const evals = (runDir: string) =>
  fs.readFileSync(path.join(runDir, "metrics.jsonl"), "utf8").split("\n").filter((l) => l.includes('"event":"eval"')).map((l) => JSON.parse(l) as { step: number; loss: number })


describe("fine-tuning from model.init", () => {
  let sourceLoss = NaN
  beforeAll(async () => {
    const c = config("pretrain", { model: { layers: 2, heads: 2, d_model: 32, d_ff: 128, context: 32 }, train: { steps: 80, batch: 4, warmup_steps: 5, lr: 1e-2, min_lr: 1e-3 } })
    const r = await runCli(["run", c.file])
    expect(r.code, r.stderr).toBe(0)
    fs.renameSync(c.runDir, source)
    sourceLoss = evals(source).at(-1)!.loss
  }, 240_000)

  /** The uninterrupted fine-tune, run once and shared by the tests that need it. */
  let referenceRun: Promise<{ r: Awaited<ReturnType<typeof runCli>>; runDir: string }> | undefined
  const reference = () =>
    (referenceRun ??= (async () => {
      const { file, runDir } = config("reference")
      return { r: await runCli(["run", file]), runDir }
    })())

  it("starts at the source model's held-out loss, not at ln(V), and keeps its shape", async () => {
    const { r, runDir } = await reference()
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`fine-tuning from ${source}`)
    expect(r.stdout).toContain("2 layers, 2 heads, d_model 32")
    const start = evals(runDir)[0]
    expect(start.step).toBe(0)
    expect(Math.abs(start.loss - sourceLoss)).toBeLessThan(1e-5)
    expect(start.loss).toBeLessThan(Math.log(257) - 1) // a fresh model starts near ln(257) ≈ 5.55
    expect(stepLosses(runDir).size).toBe(STEPS)
  }, 240_000)

  it("killed with SIGKILL and resumed: the same losses and final state as the uninterrupted run", async () => {
    const { runDir: referenceDir } = await reference()
    const { file, runDir } = config("killed")
    const first = startCli(["run", file])
    await waitFor(() => stepsLogged(runDir) >= 4, first.finished).catch(async (e: Error) => {
      const ended = await first.finished
      throw new Error(`${e.message}: exit ${ended.code}, ${stepsLogged(runDir)} steps logged; ${ended.stderr.trim().split("\n").slice(-3).join(" | ")}`)
    })
    first.child.kill("SIGKILL")
    expect((await first.finished).signal).toBe("SIGKILL")
    const resumed = await runCli(["resume", runDir])
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(resumed.stdout).toMatch(/resuming .* at step \d+/)
    expect([...stepLosses(runDir)]).toEqual([...stepLosses(referenceDir)])
    const a = latestCheckpoint(runDir)
    const b = latestCheckpoint(referenceDir)
    expect(a.step).toBe(STEPS)
    expect(a.model).toBe(b.model)
    expect(a.optimizer).toBe(b.optimizer)
  }, 240_000)

  it("a shape beside model.init, or another tokenizer, is refused in one line", async () => {
    const shaped = config("shaped", { model: { init: source, layers: 6 } })
    expectOneLineError(await runCli(["run", shaped.file]), "model.layers: the shape comes from model.init")
    const other = config("other-tokenizer", { tokenizer: "gpt2" })
    expectOneLineError(await runCli(["run", other.file]), `model.init ${source}: the model's tokenizer is bytes but the config says "tokenizer": "gpt2"`)
    const missing = config("missing", { model: { init: path.join(root, "nowhere") } })
    expectOneLineError(await runCli(["run", missing.file]), `${path.join(root, "nowhere")}`)
  }, 240_000)

  it.live("config/finetune-gpt2.json fetches gpt2 from the Hub (here a loopback one serving a small GPT-2-vocabulary model) and fine-tunes it", () =>
    Effect.gen(function* () {
      yield* Effect.promise(() => useBackend("wasm"))
      // A small model with GPT-2's vocabulary, published as Hugging Face lays it out.
      const model = tinyModel(tinyConfig({ vocabSize: 50257, context: 32, dModel: 16, heads: 2, dFF: 32 }))
      const published = path.join(root, "published")
      yield* writeHfDirectory(model, "gpt2", published, "tiny")
      model.dispose()
      const files = Object.fromEntries(["config.json", "model.safetensors"].map((f) => [f, new Uint8Array(fs.readFileSync(path.join(published, f)))]))
      const hub = yield* Effect.promise(() => startHubServer({ repos: { "openai-community/gpt2": files } }))
      const saved = { endpoint: process.env.HF_ENDPOINT, cache: process.env.GLASSBOX_CACHE }
      process.env.HF_ENDPOINT = hub.endpoint
      process.env.GLASSBOX_CACHE = path.join(root, "cache")
      const runDir = path.join(root, "finetune-gpt2")
      yield* Effect.gen(function* () {
        const loaded = yield* loadConfig("config/finetune-gpt2.json", [
          `run.dir=${runDir}`, "backend=wasm", "model.context=16", "train.steps=2", "train.warmup_steps=1", "train.batch=2",
          "eval.every=0", "eval.tokens=256", "checkpoint.every=0", "generate.max_new_tokens=3"
        ])
        expect(loaded.model.init).toBe("gpt2")
        yield* runPipeline(loaded)
      }).pipe(
        Effect.ensuring(Effect.promise(async () => {
          process.env.HF_ENDPOINT = saved.endpoint
          process.env.GLASSBOX_CACHE = saved.cache
          if (saved.endpoint === undefined) delete process.env.HF_ENDPOINT
          if (saved.cache === undefined) delete process.env.GLASSBOX_CACHE
          await hub.close()
        }))
      )
      expect(hub.log.some((r) => r.url === "/openai-community/gpt2/resolve/0123456789abcdef0123456789abcdef01234567/model.safetensors")).toBe(true)
      expect(latestCheckpoint(runDir).step).toBe(2)
      const state = JSON.parse(fs.readFileSync(path.join(latestCheckpoint(runDir).dir, "state.json"), "utf8")) as { tokenizer: string }
      expect(state.tokenizer).toBe("gpt2")
    }), 240_000)
})
