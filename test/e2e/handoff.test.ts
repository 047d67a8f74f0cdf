// The hand-off to llm.c / nanoGPT and back, as a user runs it: real `glassbox` processes for
// import, export (float32 and bfloat16), generate and eval on an imported model, a data export
// killed with SIGKILL and continued, and every refusal as one line with exit code 1; then the
// pipeline (pipelines/handoff.ts) round trip with an engine that returns the model unchanged, whose
// held-out loss must equal the original model's on the same validation windows.
//
// The model is the committed numpy fixture (test/fixtures/llmc/make_fixture.py): exporting its
// import must give back the fixture's bytes exactly, in both versions, which checks the writer
// against files glassbox did not write.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { handoff, shardWindows } from "../../pipelines/handoff.ts"
import { latestGoodCheckpoint } from "../../src/checkpoint/checkpointer.ts"
import { PipelineConfig } from "../../src/config/schema.ts"
import { DocumentSource } from "../../src/data/document-source.ts"
import { dataLayer } from "../../src/data/config.ts"
import { Packer } from "../../src/data/packer.ts"
import { evaluate } from "../../src/eval/evaluator.ts"
import { dataExport } from "../../src/data/export.ts"
import { shippedCorpusPath } from "../../src/data/document-source.ts"
import { readTokenShard } from "../../src/format/token-shards.ts"
import { PassThrough } from "node:stream"
import { tempDir } from "../data/fixtures.ts"
import { hubServer } from "../data/hub-server.ts"
import { saveWeights } from "../../src/model/weights.ts"
import { makeEncoding } from "../../src/tokenizer/tokenizer.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"
import { expectOneLineError, runCli } from "./run-helpers.ts"

const FIXTURES = path.join(import.meta.dirname, "..", "fixtures", "llmc")
const V3 = path.join(FIXTURES, "tiny_v3.bin")
const V5 = path.join(FIXTURES, "tiny_v5.bin")

const glassbox = (...args: string[]) => runCli(args, undefined, { GLASSBOX_BACKEND: "wasm" })
const sha256 = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex")
const digest = (dir: string) => Object.fromEntries(fs.readdirSync(dir).sort().map((f) => [f, sha256(path.join(dir, f))]))

describe("hand-off to llm.c and back, from the command line", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-handoff-"))
  const run = path.join(dir, "from-llmc")
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

  it("import llmc gives a run that export writes back byte for byte (v3 and v5), and generate/eval accept", async () => {
    const imported = await glassbox("import", "llmc", V3, run, "--set", "eval.tokens=256", "--set", "train.batch=2")
    expect(imported.code, imported.stderr).toBe(0)
    expect(imported.stdout).toContain("llm.c version 3, 2 layers, 2 heads, 16 channels, 16 positions, bytes vocabulary 257")
    const state = JSON.parse(fs.readFileSync(path.join(run, "checkpoints", "step-00000000", "state.json"), "utf8"))
    expect(state.tokenizer).toBe("bytes")
    expect(state.config.model).toMatchObject({ layers: 2, heads: 2, d_model: 16, d_ff: 64, positions: 16, context: 16, tied: true, gelu: "tanh" })

    const f32 = path.join(dir, "again.bin")
    const out = await glassbox("export", run, "--format", "llmc", f32)
    expect(out.code, out.stderr).toBe(0)
    expect(out.stdout).toContain("llm.c model version 3 (float32)")
    expect(sha256(f32)).toBe(sha256(V3))
    const bf16 = path.join(dir, "again-bf16.bin")
    expect((await glassbox("export", run, "--format", "llmc", bf16, "--dtype", "bf16")).code).toBe(0)
    expect(sha256(bf16)).toBe(sha256(V5))

    const generated = await glassbox("generate", run, "--max-new-tokens", "5", "--prompt", "Hi", "--seed", "1")
    expect(generated.code, generated.stderr).toBe(0)
    const evaluated = await glassbox("eval", run)
    expect(evaluated.code, evaluated.stderr).toBe(0)
    expect(evaluated.stdout).toMatch(/held-out loss \d+\.\d+/)
  })

  it("an imported model opens in interpret and fine-tunes with resume", async () => {
    const ft = path.join(dir, "fine-tune")
    const imported = await glassbox("import", "llmc", V5, ft, "--set", "train.steps=2", "--set", "train.warmup_steps=1", "--set", "train.batch=2", "--set", "eval.tokens=128", "--set", "eval.every=0")
    expect(imported.code, imported.stderr).toBe(0)
    const lens = await glassbox("interpret", "logit-lens", ft, "--text", "the whale")
    expect(lens.code, lens.stderr).toBe(0)
    const resumed = await glassbox("resume", ft)
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(resumed.stdout).toContain("resuming")
    expect(fs.readdirSync(path.join(ft, "checkpoints")).sort()).toEqual(["step-00000000", "step-00000002"])
  })

  it("refusals are one line and exit 1", async () => {
    await useBackend("cpu")
    const erf = path.join(dir, "erf.safetensors")
    const model = tinyModel(tinyConfig({ vocabSize: 257, dModel: 8, dFF: 32, gelu: "erf" }))
    await Effect.runPromise(saveWeights(erf, model, "bytes"))
    model.dispose()
    expectOneLineError(await glassbox("export", erf, "--format", "llmc", path.join(dir, "erf.bin")), `llm.c cannot represent this model: GELU is "erf"`)
    expect(fs.existsSync(path.join(dir, "erf.bin"))).toBe(false)

    const shard = path.join(dir, "shard.bin")
    const header = new Int32Array(256)
    header.set([20240520, 1, 2])
    fs.writeFileSync(shard, Buffer.concat([Buffer.from(header.buffer), Buffer.from([1, 0, 2, 0])]))
    expectOneLineError(await glassbox("import", "llmc", shard, path.join(dir, "nope")), "this is an llm.c token shard (magic 20240520), not a model file")
    const truncated = path.join(dir, "truncated.bin")
    fs.writeFileSync(truncated, fs.readFileSync(V3).subarray(0, 5000))
    expectOneLineError(await glassbox("import", "llmc", truncated, path.join(dir, "nope")), "(truncated)")
    expectOneLineError(await glassbox("import", "llmc", V3, run), "already holds checkpoints; import into a new run directory")
    expectOneLineError(await glassbox("import", "llmc", V3, path.join(dir, "nope"), "--tokenizer", "gpt2"), "vocabulary of 257 does not fit the gpt2 tokenizer")
    expectOneLineError(await glassbox("data", "export", "--format", "llmc", "--tokenizer", "cl100k_base", "shipped", path.join(dir, "cl100k")), "store uint16 ids (at most 65,536)")
  })

  it("a data export killed mid-way and run again gives the same files as one never stopped", async () => {
    const args = (out: string) => ["data", "export", "--format", "llmc", "shipped", out, "--max-tokens", "240000", "--shard-tokens", "50000", "--flush-tokens", "10000", "--workers", "0"]
    const reference = path.join(dir, "reference")
    const whole = await glassbox(...args(reference))
    expect(whole.code, whole.stderr).toBe(0)
    expect(whole.stdout).toContain("exported 6 file(s)")

    const killed = path.join(dir, "killed")
    const child = spawn(process.execPath, ["bin/glassbox.js", ...args(killed)], { stdio: "ignore" })
    // Kill it once it has recorded progress but before it finishes.
    const manifest = path.join(killed, "export.json")
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const text = fs.existsSync(manifest) ? fs.readFileSync(manifest, "utf8") : ""
        if (text.includes('"partial"') && text.includes('"train"') && !text.includes('"complete": true')) {
          clearInterval(timer)
          child.kill("SIGKILL")
          resolve()
        }
      }, 20)
      child.on("exit", () => {
        clearInterval(timer)
        resolve()
      })
      setTimeout(() => reject(new Error("export never recorded progress")), 150_000)
    })
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.on("exit", resolve)))
    const state = JSON.parse(fs.readFileSync(manifest, "utf8"))
    expect(state.complete, "the export finished before it could be killed; the test needs a slower export").toBe(false)
    const resumed = await glassbox(...args(killed))
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(resumed.stdout).toContain("resumed and finished")
    expect(digest(killed)).toEqual(digest(reference))
  })
})

describe("data export from the Hub", () => {
  it.scoped("FineWeb through a loopback Hub with a row filter: the filter applies, the manifest records source and filter", () =>
    Effect.gen(function* () {
      const server = yield* hubServer({ repos: { "HuggingFaceFW/fineweb": { "sample/10BT/000_00000.parquet": fs.readFileSync(shippedCorpusPath) } } })
      const cacheDir = yield* tempDir
      const out = yield* tempDir
      const sink = () => new PassThrough().resume()
      const common = { tokenizer: "bytes" as const, endpoint: server.endpoint, cacheDir, env: {}, workers: 0, out: sink(), err: sink() }
      const all = yield* dataExport("fineweb-10BT", path.join(out, "all"), { ...common, format: "nanogpt" })
      const long = yield* dataExport("fineweb-10BT", path.join(out, "long"), { ...common, format: "nanogpt", filters: ["token_count >= 5000"] })
      expect(long.manifest.settings.source).toEqual({ source: "fineweb", dataset: "fineweb-10BT", revision: "main", shards: "all", filters: ["token_count >= 5000"] })
      expect(all.manifest.settings.source).toMatchObject({ source: "fineweb", filters: [] })
      const docs = (m: typeof all.manifest) => m.documents.train + m.documents.val
      expect(docs(long.manifest)).toBeGreaterThan(0)
      expect(docs(long.manifest)).toBeLessThan(docs(all.manifest))
      // The same corpus read from the local file gives the same tokens as through the Hub.
      const local = yield* dataExport(shippedCorpusPath, path.join(out, "local"), { ...common, format: "nanogpt" })
      expect(local.manifest.files.map((f) => f.sha256)).toEqual(all.manifest.files.map((f) => f.sha256))
    }))
})

describe("pipelines/handoff.ts", () => {
  beforeAll(() => useBackend("cpu"))

  it.effect("out, an engine, back: held-out loss on the exported validation shard, the same windows eval uses", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-handoff-pipe-"))
      const source = path.join(dir, "source-run")
      expect((yield* Effect.promise(() => glassbox("import", "llmc", V3, source))).code).toBe(0)
      const config = Schema.decodeUnknownSync(PipelineConfig)({
        run: { dir: source, seed: 5 },
        tokenizer: "bytes",
        model: { context: 16 },
        data: { source: "shipped", val_fraction: 0.01, workers: 0 },
        train: { batch: 4, steps: 10, warmup_steps: 1 },
        eval: { tokens: 512 }
      })
      let handed: string | undefined
      const result = yield* handoff({
        config,
        dir: path.join(dir, "handoff"),
        runDir: path.join(dir, "back"),
        shardTokens: 100_000,
        maxTrainTokens: 150_000,
        // The identity engine: llm.c run for zero steps. Its output is the model it was given.
        engine: (out) =>
          Effect.sync(() => {
            handed = out.model?.file
            const trained = path.join(dir, "trained.bin")
            fs.copyFileSync(out.model!.file, trained)
            return trained
          })
      })
      expect(sha256(handed!)).toBe(sha256(V3))
      expect(result.out.manifest.files.map((f) => f.file)).toEqual(["data_val_000000.bin", "data_train_000001.bin", "data_train_000002.bin"])
      expect(result.out.manifest.tokens.train).toBe(150_000)

      // The loss `back` reports is the original model's on the same windows of the val shard...
      const valTokens = yield* readTokenShard(path.join(dir, "handoff", "data", "data_val_000000.bin"), "llmc")
      const windows = shardWindows(valTokens, 4, 16, 8)
      expect(windows).toHaveLength(8)
      const { checkpoint } = yield* latestGoodCheckpoint(source)
      const original = yield* evaluate(checkpoint.model, windows)
      expect(result.back.heldOut.loss).toBe(original.loss)
      expect(result.back.heldOut.tokens).toBe(512)
      // ...and those windows are the held-out batches `glassbox eval` builds from the config's split.
      const packed = yield* Effect.gen(function* () {
        const val = yield* DocumentSource
        return yield* Packer.validationBatches(makeEncoding("bytes"), val, { batch: 4, context: 16, maxTokens: 512 })
      }).pipe(Effect.provide(dataLayer(config.data, { tokenizer: "bytes", split: "val" })), Effect.scoped)
      expect(packed.map((b) => Array.from(b.ids))).toEqual(windows.map((w) => Array.from(w.ids)))
      const packedLoss = yield* evaluate(checkpoint.model, packed.map((b) => ({ ids: b.ids, batch: b.batch, context: b.context })))
      expect(packedLoss.loss).toBe(original.loss)
      checkpoint.model.dispose()

      expect(Number.isFinite(result.back.induction.score)).toBe(true)
      expect(fs.readFileSync(result.back.report, "utf8")).toContain("<svg")
      fs.rmSync(dir, { recursive: true, force: true })
    }))
})
