// Shared test fixtures: backend selection and a tiny model whose every parameter (biases and
// LayerNorm gains included) is random, so no gradient formula is exercised only at zero or one.
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import { selectBackend, type BackendChoice } from "../src/backend/backend.ts"
import type { ModelConfig } from "../src/model/config.ts"
import { gptFromValues, initialValues, type GPT } from "../src/model/gpt.ts"
import { Rng } from "../src/rng/rng.ts"

export const useBackend = (choice: BackendChoice) => Effect.runPromise(selectBackend(choice))

export const tinyConfig = (overrides: Partial<ModelConfig> = {}): ModelConfig => ({
  vocabSize: 11,
  context: 8,
  dModel: 8,
  layers: 2,
  heads: 2,
  dFF: 16,
  dropout: 0,
  position: "learned",
  tied: true,
  gelu: "tanh",
  lnEps: 1e-5,
  ...overrides
})

/** GPT-2 init, then every tensor perturbed so biases and gains are non-trivial. */
export const randomValues = (config: ModelConfig, seed = 7) => {
  const values = initialValues(config, seed)
  for (const [name, v] of values) {
    const rng = Rng.seeded(seed + 1, name)
    const scale = name.includes("ln") ? 0.3 : name.endsWith(".bias") ? 0.1 : 0.2
    for (let i = 0; i < v.data.length; i++) v.data[i] += rng.normal() * scale
  }
  return values
}

export const tinyModel = (config: ModelConfig, seed = 7): GPT => gptFromValues(config, randomValues(config, seed))

export const tokenWindows = (config: ModelConfig, batch: number, seed = 3) => {
  const rng = Rng.seeded(seed, "tokens")
  const ids = new Int32Array(batch * (config.context + 1)).map(() => Math.floor(rng.uniform() * config.vocabSize))
  return { ids, batch, context: config.context }
}

export const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

export const numTensors = () => tf.memory().numTensors
