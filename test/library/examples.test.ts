// The README's "Use it from code" examples (examples/*.ts, quoted verbatim in the README) compile
// against the package's typed entry points and run: load a model by reference and continue a
// prompt, cache every hook activation, patch an activation, train a few steps with a custom layer.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { cacheEverything } from "../../examples/run-with-cache.ts"
import { continuePrompt } from "../../examples/load-model.ts"
import { patchResidual } from "../../examples/patch-activation.ts"
import { trainFewSteps } from "../../examples/train-custom-layer.ts"
import { allHookNames } from "../../src/interpret/hooks.ts"
import { saveWeights } from "../../src/model/weights.ts"
import { makeEncoding } from "../../src/tokenizer/tokenizer.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"

const root = path.resolve(import.meta.dirname, "../..")
const examples = ["load-model.ts", "run-with-cache.ts", "patch-activation.ts", "train-custom-layer.ts"]
const config = tinyConfig({ vocabSize: makeEncoding("bytes").vocabSize, context: 16 })
const weights = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-examples-")), "model.safetensors")

describe("Use it from code", () => {
  beforeAll(async () => {
    process.env.GLASSBOX_BACKEND = "wasm"
    await useBackend("wasm")
    const model = tinyModel(config)
    await Effect.runPromise(saveWeights(weights, model, "bytes"))
    model.dispose()
  })

  it("the README quotes every example verbatim", () => {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
    const section = readme.slice(readme.indexOf("## Use it from code"))
    for (const file of examples) {
      const code = fs.readFileSync(path.join(root, "examples", file), "utf8").trim()
      expect(section, file).toContain("```ts\n" + code + "\n```")
    }
  })

  // Asynchronous: tsc takes a minute on a loaded machine, and a blocking call would starve the
  // test worker's messaging with vitest (its RPC times out after 60 s).
  it("the examples compile against the package's typed entry points", async () => {
    await promisify(execFile)(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", "examples/tsconfig.json"], { cwd: root, encoding: "utf8" })
  })

  it.effect("load a model by reference and continue a prompt", () =>
    Effect.gen(function* () {
      const text = yield* continuePrompt(weights, "The whale")
      expect(text.startsWith("The whale")).toBe(true)
      expect(text.length).toBeGreaterThan("The whale".length)
    })
  )

  it.effect("run with a cache of every hook activation", () =>
    Effect.gen(function* () {
      const shapes = yield* cacheEverything(weights, "Ishmael")
      expect(Object.keys(shapes).sort()).toEqual(allHookNames(config).sort())
      expect(shapes["blocks.1.attn.hook_pattern"]).toEqual([1, config.heads, 7, 7])
      expect(shapes["blocks.0.hook_resid_post"]).toEqual([1, 7, config.dModel])
    })
  )

  it.effect("patch an activation: only what the patched position can reach comes back", () =>
    Effect.gen(function* () {
      // The prompts differ only at position 6 ("a" / "o"); the last position is 8.
      const atDifference = yield* patchResidual(weights, "The whale", "The whole", config.layers - 1, 6)
      expect(atDifference.corrupted).toBeGreaterThan(1e-3)
      // After the last block nothing mixes positions: a patch at 6 cannot move position 8's logits.
      expect(atDifference.patched).toBeCloseTo(atDifference.corrupted, 5)
      // The last block's output at the last position is all the last logits depend on.
      const atEnd = yield* patchResidual(weights, "The whale", "The whole", config.layers - 1, 8)
      expect(atEnd.patched).toBeLessThan(1e-4)
      // After block 0 the patched position is still read by block 1's attention: it reaches the end.
      const early = yield* patchResidual(weights, "The whale", "The whole", 0, 6)
      expect(Math.abs(early.patched - early.corrupted)).toBeGreaterThan(1e-5)
    })
  )

  it.effect("train a few steps with a custom layer", () =>
    Effect.gen(function* () {
      const log = yield* trainFewSteps(8)
      expect(log.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
      expect(log[7].loss).toBeLessThan(log[0].loss)
    })
  )
})
