// Weights on disk: safetensors in GPT-2's names and layouts, with our model config (and the
// tokenizer it was trained with) in the header's metadata. A file without our metadata, such as
// Hugging Face's GPT-2 model.safetensors, is read by inferring the shape from its tensors.
import { Data, Effect } from "effect"
import type { ReadFailed, WriteFailed } from "../format/atomic.ts"
import {
  expectTensors,
  readSafetensorsFile,
  writeSafetensorsFile,
  type DecodedSafetensors,
  type NamedTensor,
  type SafetensorsError,
  type TensorsMismatch
} from "../format/safetensors.ts"
import { modelConfigProblems, parameterShapes, type ModelConfig } from "./config.ts"
import { gptFromValues, type GPT } from "./gpt.ts"

const CONFIG_KEY = "glassbox.model"
const TOKENIZER_KEY = "glassbox.tokenizer"

export class WeightsIncompatible extends Data.TaggedError("WeightsIncompatible")<{ readonly source: string; readonly reason: string }> {
  override get message() {
    return `${this.source}: ${this.reason}`
  }
}

export const weightsMetadata = (config: ModelConfig, tokenizer: string): Record<string, string> => ({
  format: "pt", // Hugging Face loaders expect this key
  [CONFIG_KEY]: JSON.stringify(config),
  [TOKENIZER_KEY]: tokenizer
})

export const modelTensors = (model: GPT): Record<string, NamedTensor> => {
  const out: Record<string, NamedTensor> = {}
  for (const [name, v] of model.snapshot()) out[name] = { dtype: "F32", shape: v.shape, data: v.data }
  return out
}

export const saveWeights = (path: string, model: GPT, tokenizer: string): Effect.Effect<void, WriteFailed | SafetensorsError> =>
  Effect.suspend(() => writeSafetensorsFile(path, modelTensors(model), weightsMetadata(model.config, tokenizer)))

/** GPT-2's checkpoints carry the causal-mask buffers as tensors; they are not parameters. */
const isBuffer = (name: string) => /\.attn\.(bias|masked_bias)$/.test(name)

/** Strips a "transformer." prefix (some exports nest the GPT-2 body under it). */
const normaliseNames = (decoded: DecodedSafetensors): Record<string, NamedTensor> => {
  const out: Record<string, NamedTensor> = {}
  for (const [name, t] of Object.entries(decoded.tensors)) out[name.replace(/^transformer\./, "")] = t
  return out
}

/** A model config read from metadata, or inferred from GPT-2-layout tensor shapes. */
export const configFromWeights = (
  tensors: Record<string, NamedTensor>,
  metadata: Record<string, string>,
  source: string
): Effect.Effect<ModelConfig, WeightsIncompatible> =>
  Effect.suspend(() => {
    const stored = metadata[CONFIG_KEY]
    if (stored !== undefined) {
      try {
        return Effect.succeed(JSON.parse(stored) as ModelConfig)
      } catch {
        return Effect.fail(new WeightsIncompatible({ source, reason: `metadata ${CONFIG_KEY} is not valid JSON` }))
      }
    }
    const wte = tensors["wte.weight"]
    const wpe = tensors["wpe.weight"]
    const fc = tensors["h.0.mlp.c_fc.weight"]
    if (wte === undefined || fc === undefined) {
      return Effect.fail(new WeightsIncompatible({ source, reason: "no glassbox metadata and no GPT-2 tensors (wte.weight, h.0.mlp.c_fc.weight)" }))
    }
    const layers = new Set(Object.keys(tensors).flatMap((n) => /^h\.(\d+)\./.exec(n)?.[1] ?? [])).size
    const dModel = wte.shape[1]
    return Effect.succeed({
      vocabSize: wte.shape[0],
      context: wpe?.shape[0] ?? 1024,
      dModel,
      layers,
      heads: Math.max(1, Math.round(dModel / 64)), // GPT-2 family: 64-dimensional heads
      dFF: fc.shape[1],
      dropout: 0,
      position: wpe === undefined ? "rope" : "learned",
      tied: tensors["lm_head.weight"] === undefined,
      gelu: "tanh",
      lnEps: 1e-5
    } satisfies ModelConfig)
  })

export interface LoadedWeights {
  readonly model: GPT
  readonly tokenizer: string | undefined
}

/** Reads a weights file, checks every tensor's name and shape, and builds the model. */
export const loadWeights = (
  path: string
): Effect.Effect<LoadedWeights, ReadFailed | SafetensorsError | TensorsMismatch | WeightsIncompatible> =>
  Effect.gen(function* () {
    const decoded = yield* readSafetensorsFile(path)
    const tensors = normaliseNames(decoded)
    const config = yield* configFromWeights(tensors, decoded.metadata, path)
    const problems = modelConfigProblems(config)
    if (problems.length > 0) return yield* new WeightsIncompatible({ source: path, reason: problems.join("; ") })
    const expected = Object.fromEntries(parameterShapes(config))
    yield* expectTensors({ tensors }, expected, path, { ignore: isBuffer })
    const values = new Map(parameterShapes(config).map(([name]) => [name, tensors[name]] as const))
    return { model: gptFromValues(config, values), tokenizer: decoded.metadata[TOKENIZER_KEY] }
  })
