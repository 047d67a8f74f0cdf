// Every shipped config runs, at tiny sizes via --set overrides: the tiny pretrain, the two
// FineWeb recipes (against a Hub-like server on 127.0.0.1 serving a shard cut from the shipped
// corpus, so nothing leaves the machine), the walkthrough and the interpretability recipe.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { runPipeline } from "../../pipelines/index.ts"
import { loadConfig } from "../../src/config/load.ts"
import { startHubServer, type HubServer } from "../data/hub-server.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-shipped-"))
const small = [
  "backend=wasm",
  "model.layers=1",
  "model.heads=2",
  "model.d_model=16",
  "model.d_ff=32",
  "model.context=32",
  "train.steps=3",
  "train.warmup_steps=1",
  "train.batch=2",
  "train.accumulate=1",
  "eval.every=0",
  "eval.tokens=256",
  "checkpoint.every=0",
  "generate.max_new_tokens=3"
]
let hub: HubServer

describe("shipped configs run", () => {
  beforeAll(async () => {
    // FineWeb's layout: sample/10BT/000_00000.parquet, here holding the shipped corpus.
    hub = await startHubServer({ repos: { "HuggingFaceFW/fineweb": { "sample/10BT/000_00000.parquet": fs.readFileSync("data/corpus.parquet") } } })
  })
  afterAll(() => hub.close())

  it.effect("config/tiny.json", () =>
    Effect.gen(function* () {
      // Context 64, as shipped: the interpretability recipe below runs on this run with 64-byte prompts.
      yield* runPipeline(yield* loadConfig("config/tiny.json", [...small, "model.context=64", `run.dir=${dir}/tiny`]))
      expect(fs.existsSync(path.join(dir, "tiny", "latest"))).toBe(true)
    }), 120_000)

  for (const name of ["fineweb-small", "fineweb-gpt2-124m"]) {
    it.effect(`config/${name}.json (local Hub server, tiny sizes)`, () =>
      Effect.gen(function* () {
        const config = yield* loadConfig(`config/${name}.json`, [
          ...small,
          `run.dir=${dir}/${name}`,
          `data.endpoint=${hub.endpoint}`,
          `data.cache_dir=${dir}/cache`,
          "data.val_fraction=0.05",
          "data.workers=1"
        ])
        expect(config.data.source).toBe("fineweb")
        yield* runPipeline(config)
        expect(fs.existsSync(path.join(dir, name, "latest"))).toBe(true)
        expect(hub.log.some((r) => r.url.includes("/api/datasets/HuggingFaceFW/fineweb/tree/"))).toBe(true)
      }), 180_000)
  }

  it.effect("config/walkthrough.json", () =>
    Effect.gen(function* () {
      yield* runPipeline(yield* loadConfig("config/walkthrough.json", [`walkthrough.html=${dir}/walkthrough.html`, "walkthrough.stage=loss"]))
      expect(fs.readFileSync(path.join(dir, "walkthrough.html"), "utf8")).toContain("katex")
    }), 60_000)

  it.effect("config/interpret.json (on the tiny run above)", () =>
    Effect.gen(function* () {
      yield* runPipeline(
        yield* loadConfig("config/interpret.json", ["backend=wasm", `probes.checkpoint=${dir}/tiny`, `probes.html_dir=${dir}/reports`, "probes.induction_length=10", "probes.induction_batch=2"])
      )
      expect(fs.readdirSync(path.join(dir, "reports")).sort()).toEqual(["attention.html", "induction.html", "logit-lens.html", "patching.html"])
    }), 120_000)
})
