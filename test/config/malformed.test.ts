// A catalogue of malformed configs: each is refused with exit code 1 and one line that names
// the JSON path, the value found and what was expected (every problem of a file at once).
// Checked in-process through the same decoder the CLI uses, plus a few through the CLI itself.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { loadConfig } from "../../src/config/load.ts"
import { runCli } from "../e2e/run-helpers.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-configs-"))
const file = (name: string, content: string) => {
  const p = path.join(dir, name)
  fs.writeFileSync(p, content)
  return p
}

/** [label, file content, every fragment the message must contain]. */
const catalogue: Array<[string, string, string[]]> = [
  ["not JSON", "{ model: ", ["not valid JSON"]],
  ["empty file", "", ["not valid JSON"]],
  ["an array at the top", "[1, 2]", ["expected a JSON object at the top level"]],
  ["a string at the top", '"tiny"', ["expected a JSON object at the top level"]],
  ["unknown top-level key", '{ "modle": {} }', ["modle: unknown key"]],
  ["unknown nested key", '{ "train": { "learning_rate": 1 } }', ["train.learning_rate: unknown key"]],
  ["layers as a string", '{ "model": { "layers": "four" } }', ['model.layers: found "four", expected']],
  ["fractional heads", '{ "model": { "heads": 2.5 } }', ["model.heads: found 2.5, expected"]],
  ["zero layers", '{ "model": { "layers": 0 } }', ["model.layers: found 0, expected"]],
  ["negative lr", '{ "train": { "lr": -0.001 } }', ["train.lr: found -0.001, expected a positive number"]],
  ["dropout of 1", '{ "model": { "dropout": 1 } }', ["model.dropout: found 1, expected"]],
  ["unknown backend", '{ "backend": "gpu" }', ['backend: found "gpu", expected "auto" | "tensorflow-gpu"']],
  ["unknown tokenizer", '{ "tokenizer": "llama" }', ['tokenizer: found "llama", expected "gpt2"']],
  ["unknown position encoding", '{ "model": { "position": "sinusoidal" } }', ['model.position: found "sinusoidal", expected "learned" | "rope" | "alibi"']],
  ["unknown pipeline", '{ "pipeline": "finetune" }', ['pipeline: found "finetune", expected']],
  ["tied as a string", '{ "model": { "tied": "yes" } }', ['model.tied: found "yes", expected boolean']],
  ["section as a number", '{ "train": 5 }', ["train: found 5, expected"]],
  ["val_fraction above 1", '{ "data": { "val_fraction": 1.5 } }', ["data.val_fraction: found 1.5, expected"]],
  ["d_model not divisible by heads", '{ "model": { "d_model": 100, "heads": 3 } }', ["model.d_model: 100 is not divisible by model.heads (3)"]],
  ["rope with an odd head size", '{ "model": { "d_model": 12, "heads": 4, "position": "rope" } }', ['model.position: "rope" needs an even head size']],
  ["warmup as long as the run", '{ "train": { "steps": 10, "warmup_steps": 10 } }', ["train.warmup_steps: 10 must be less than train.steps (10)"]],
  ["min_lr above lr", '{ "train": { "lr": 1e-4, "min_lr": 1e-3 } }', ["train.min_lr: 0.001 exceeds train.lr (0.0001)"]],
  ["context beyond the position table", '{ "model": { "context": 256, "positions": 128 } }', ["model.context: 256 exceeds the position table (model.positions = 128)"]],
  ["vocabulary not matching the tokenizer", '{ "tokenizer": "bytes", "model": { "vocab_size": 50257 } }', ["model.vocab_size: 50257 does not match the bytes tokenizer, which needs 257"]],
  [
    "several problems at once",
    '{ "model": { "layers": -1, "gelu": "relu" }, "train": { "batch": "8" }, "extra": 1 }',
    ["model.layers: found -1", 'model.gelu: found "relu"', 'train.batch: found "8"', "extra: unknown key"]
  ]
]

describe("malformed configs", () => {
  it("the catalogue has at least 20 entries", () => expect(catalogue.length).toBeGreaterThanOrEqual(20))

  for (const [label, content, fragments] of catalogue) {
    it.effect(`${label}: refused, naming the path and the problem`, () =>
      Effect.gen(function* () {
        const p = file(`${label.replace(/\W+/g, "-")}.json`, content)
        const error = yield* Effect.flip(loadConfig(p))
        expect(error._tag).toBe("ConfigError")
        expect(error.message.startsWith(`${p}: `)).toBe(true)
        expect(error.message).not.toContain("\n")
        for (const f of fragments) expect(error.message).toContain(f)
      })
    )
  }

  it.effect("bad --set overrides are refused too", () =>
    Effect.gen(function* () {
      const p = file("ok.json", "{}")
      expect((yield* Effect.flip(loadConfig(p, ["model.layers"]))).message).toContain("--set model.layers: expected key.path=value")
      expect((yield* Effect.flip(loadConfig(p, ["model.layers=abc"]))).message).toContain('model.layers: found "abc"')
      const withBackend = file("backend.json", '{ "backend": "wasm" }')
      expect((yield* Effect.flip(loadConfig(withBackend, ["backend.x=1"]))).message).toContain("backend is not a section")
    })
  )

  it.effect('a "$schema" pointer is accepted', () =>
    Effect.gen(function* () {
      const config = yield* loadConfig(file("schema.json", '{ "$schema": "./glassbox.schema.json", "train": { "steps": 5, "warmup_steps": 1 } }'))
      expect(config.train.steps).toBe(5)
    })
  )

  it("through the CLI: exit code 1 and exactly one line on stderr", async () => {
    for (const [label, content] of catalogue.slice(0, 4).concat(catalogue.slice(-3))) {
      const r = await runCli(["config", "show", file(`cli-${label.replace(/\W+/g, "-")}.json`, content)])
      expect(r.code, label).toBe(1)
      expect(r.stderr.trim().split("\n"), label).toHaveLength(1)
      expect(r.stdout).toBe("")
    }
  }, 120_000)
})

describe("shipped configs", () => {
  for (const name of fs.readdirSync("config").filter((f) => f.endsWith(".json") && !f.endsWith(".schema.json"))) {
    it.effect(`config/${name} validates`, () => Effect.asVoid(loadConfig(path.join("config", name))))
  }
})
