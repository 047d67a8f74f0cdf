// The by-hand walkthrough as a pipeline: `glassbox run config/walkthrough.json` computes one
// training step of the tiny GPT in plain float64 and prints it (or one stage of it), and writes
// the HTML document and the JSON of every value when the config asks for them.
import { Effect } from "effect"
import { writeFileAtomic } from "../src/format/atomic.ts"
import type { PipelineConfig } from "../src/config/schema.ts"
import { renderHtml, renderTerminal, toJson, walkthrough as runWalkthrough } from "../src/walkthrough/index.ts"

export const walkthrough = (config: PipelineConfig) =>
  Effect.gen(function* () {
    const w = config.walkthrough
    const result = yield* runWalkthrough({ text: w.text, seed: w.seed, tied: w.tied, gelu: w.gelu })
    const text = yield* renderTerminal(result, { stage: w.stage, color: process.stdout.isTTY === true })
    process.stdout.write(text + "\n")
    if (w.html !== undefined) {
      yield* writeFileAtomic(w.html, renderHtml(result))
      process.stdout.write(`wrote ${w.html}\n`)
    }
    if (w.json !== undefined) {
      yield* writeFileAtomic(w.json, toJson(result))
      process.stdout.write(`wrote ${w.json}\n`)
    }
    return result
  })
