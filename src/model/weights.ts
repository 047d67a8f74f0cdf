// Weights on disk: safetensors in GPT-2's names and layouts, with our model config (and the
// tokenizer it was trained with) in the header's metadata. A file without our metadata, such as
// Hugging Face's GPT-2 model.safetensors, needs its shape from somewhere else, because tensor
// shapes alone do not say how d_model splits into heads: a wrong guess runs and gives wrong
// logits. So the shape comes, in order, from our metadata, from a Hugging Face config.json, or
// from explicit flags (--heads); when none says it, loading is refused, never guessed.
import { Data, Effect, Either, Schema } from "effect"
import type { ReadFailed, WriteFailed } from "../format/atomic.ts"
import { schemaProblems, type HfGpt2Config } from "../format/hf-config.ts"
import {
  expectTensors,
  readSafetensorsFile,
  writeSafetensorsFile,
  type DecodedSafetensors,
  type NamedTensor,
  type SafetensorsError,
  type TensorsMismatch
} from "../format/safetensors.ts"
import { modelConfigProblems, ModelConfigSchema, parameterShapes, type FieldNames, type ModelConfig } from "./config.ts"
import { gptFromValues, type GPT } from "./gpt.ts"
import { hfFieldNames, modelConfigFromHf } from "./hf.ts"

export const CONFIG_KEY = "glassbox.model"
export const TOKENIZER_KEY = "glassbox.tokenizer"

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

/** Strips a "transformer." prefix (GPT2LMHeadModel.save_pretrained nests the GPT-2 body under it). */
const normaliseNames = (decoded: DecodedSafetensors): Record<string, NamedTensor> => {
  const out: Record<string, NamedTensor> = {}
  for (const [name, t] of Object.entries(decoded.tensors)) out[name.replace(/^transformer\./, "")] = t
  return out
}

/** Where a shape may come from besides the weights file's own metadata. */
export interface ShapeSources {
  /** A Hugging Face config.json describing the file (read from beside it), and its path. */
  readonly hfConfig?: { readonly file: string; readonly config: HfGpt2Config }
  /** `--heads`: the head count, for a file that records no shape. */
  readonly heads?: number
}

/** Which source the shape came from, for messages ("12 heads from config.json"). */
export type ShapeOrigin = "metadata" | "config.json" | "flags"

const metadataNames: FieldNames = {
  vocabSize: `${CONFIG_KEY}.vocabSize`,
  context: `${CONFIG_KEY}.context`,
  dModel: `${CONFIG_KEY}.dModel`,
  layers: `${CONFIG_KEY}.layers`,
  heads: `${CONFIG_KEY}.heads`,
  dFF: `${CONFIG_KEY}.dFF`,
  position: `${CONFIG_KEY}.position`,
  dropout: `${CONFIG_KEY}.dropout`
}

/** Our metadata, decoded by Schema: every missing or wrong field named as the metadata spells it. */
const decodeMetadataConfig = (stored: string, source: string): Either.Either<ModelConfig, WeightsIncompatible> => {
  let json: unknown
  try {
    json = JSON.parse(stored)
  } catch {
    return Either.left(new WeightsIncompatible({ source, reason: `metadata ${CONFIG_KEY} is not valid JSON` }))
  }
  return Schema.decodeUnknownEither(ModelConfigSchema, { errors: "all", onExcessProperty: "ignore" })(json).pipe(
    Either.mapLeft((error) =>
      new WeightsIncompatible({ source, reason: `metadata ${CONFIG_KEY}: ${schemaProblems(error, json).map((p) => (p.startsWith("expected") ? p : `${CONFIG_KEY}.${p}`)).join("; ")}` })
    )
  )
}

/**
 * The model config for a weights file: from our metadata, else a config.json, else the tensor
 * shapes plus explicit flags for what shapes cannot tell (the head count). Refuses, naming the
 * file and the field, rather than guessing.
 */
export const configFromWeights = (
  tensors: Record<string, NamedTensor>,
  metadata: Record<string, string>,
  source: string,
  sources: ShapeSources = {}
): Effect.Effect<{ readonly config: ModelConfig; readonly origin: ShapeOrigin }, WeightsIncompatible> =>
  Effect.suspend(() => {
    const refuse = (reason: string, where = source) => Effect.fail(new WeightsIncompatible({ source: where, reason }))
    const checked = (config: ModelConfig, origin: ShapeOrigin, names: FieldNames, where: string) => {
      const problems = modelConfigProblems(config, names)
      if (problems.length > 0) return refuse(problems.join("; "), where)
      if (sources.heads !== undefined && sources.heads !== config.heads) {
        return refuse(`--heads ${sources.heads} contradicts the ${config.heads} heads recorded in ${origin === "metadata" ? `metadata ${CONFIG_KEY}` : "config.json"}`, where)
      }
      if (config.position === "learned" && tensors["wpe.weight"] === undefined) {
        return refuse(`no wpe.weight: this GPT-2 layout has no position table, and only a model recorded as rope or alibi may lack one`)
      }
      return Effect.succeed({ config, origin })
    }

    const stored = metadata[CONFIG_KEY]
    if (stored !== undefined) {
      return Either.match(decodeMetadataConfig(stored, source), {
        onLeft: (e) => Effect.fail(e),
        onRight: (config) => checked(config, "metadata", metadataNames, source)
      })
    }
    if (sources.hfConfig !== undefined) {
      return checked(modelConfigFromHf(sources.hfConfig.config), "config.json", hfFieldNames, sources.hfConfig.file)
    }

    const wte = tensors["wte.weight"]
    const wpe = tensors["wpe.weight"]
    const fc = tensors["h.0.mlp.c_fc.weight"]
    if (wte === undefined || fc === undefined) {
      return refuse("no glassbox metadata and no GPT-2 tensors (wte.weight, h.0.mlp.c_fc.weight): not a GPT-2-layout weights file")
    }
    if (wpe === undefined) {
      return refuse("no wpe.weight and no glassbox metadata: a GPT-2 layout needs a learned position table; only a model recorded as rope or alibi may lack one")
    }
    if (sources.heads === undefined) {
      return refuse("the head count is not recorded (no glassbox metadata, no config.json beside it); put the model's config.json (n_head) beside the file or pass --heads")
    }
    const layers = new Set(Object.keys(tensors).flatMap((n) => /^h\.(\d+)\./.exec(n)?.[1] ?? [])).size
    return checked(
      {
        vocabSize: wte.shape[0],
        context: wpe.shape[0],
        dModel: wte.shape[1],
        layers,
        heads: sources.heads,
        dFF: fc.shape[1],
        dropout: 0,
        position: "learned",
        tied: tensors["lm_head.weight"] === undefined,
        gelu: "tanh",
        lnEps: 1e-5
      },
      "flags",
      { ...hfFieldNames, heads: "--heads" },
      source
    )
  })

/** Exactly the same numbers: an lm_head that only repeats the tied embedding (some exporters write it). */
const sameValues = (a: NamedTensor | undefined, b: NamedTensor | undefined) =>
  a !== undefined && b !== undefined && a.data.length === b.data.length && a.data.every((v, i) => v === b.data[i])

export interface LoadedWeights {
  readonly model: GPT
  readonly tokenizer: string | undefined
  readonly origin: ShapeOrigin
}

/** Reads a weights file, decides its shape (see configFromWeights), checks every tensor, builds the model. */
export const loadWeights = (
  path: string,
  sources: ShapeSources = {}
): Effect.Effect<LoadedWeights, ReadFailed | SafetensorsError | TensorsMismatch | WeightsIncompatible> =>
  Effect.gen(function* () {
    const decoded = yield* readSafetensorsFile(path)
    const tensors = normaliseNames(decoded)
    const { config, origin } = yield* configFromWeights(tensors, decoded.metadata, path, sources)
    if (config.tied && sameValues(tensors["lm_head.weight"], tensors["wte.weight"])) delete tensors["lm_head.weight"]
    const expected = Object.fromEntries(parameterShapes(config))
    yield* expectTensors({ tensors }, expected, path, { ignore: isBuffer })
    const values = new Map(parameterShapes(config).map(([name]) => [name, tensors[name]] as const))
    return { model: gptFromValues(config, values), tokenizer: decoded.metadata[TOKENIZER_KEY], origin }
  })
