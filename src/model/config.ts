// The shape of a GPT, in one small object (nanoGPT's GPTConfig): everything needed to build
// the parameters and run the forward pass, and nothing about training. The same object is stored
// as JSON in every weights file we write (metadata "glassbox.model") and decoded back by
// `ModelConfigSchema`, so a damaged or hand-edited header is refused field by field.
import { Schema } from "effect"

export type PositionEncoding = "learned" | "rope" | "alibi"
export type GeluVariant = "tanh" | "erf"

export interface ModelConfig {
  readonly vocabSize: number
  /** Longest sequence the model sees; the size of the learned position table. */
  readonly context: number
  readonly dModel: number
  readonly layers: number
  readonly heads: number
  readonly dFF: number
  readonly dropout: number
  readonly position: PositionEncoding
  /** Tied: the LM head reuses the token embedding (logits = x · wteᵀ), as GPT-2 does. */
  readonly tied: boolean
  readonly gelu: GeluVariant
  readonly lnEps: number
}

const PositiveInt = Schema.Int.pipe(Schema.positive())

/** A ModelConfig as stored in weights metadata; field names are the object's own. */
export const ModelConfigSchema = Schema.Struct({
  vocabSize: PositiveInt,
  context: PositiveInt,
  dModel: PositiveInt,
  layers: PositiveInt,
  heads: PositiveInt,
  dFF: PositiveInt,
  dropout: Schema.Number.pipe(Schema.between(0, 0.99)),
  position: Schema.Literal("learned", "rope", "alibi"),
  tied: Schema.Boolean,
  gelu: Schema.Literal("tanh", "erf"),
  lnEps: Schema.Number.pipe(Schema.positive())
})

export const gpt2SmallConfig: ModelConfig = {
  vocabSize: 50257,
  context: 1024,
  dModel: 768,
  layers: 12,
  heads: 12,
  dFF: 3072,
  dropout: 0,
  position: "learned",
  tied: true,
  gelu: "tanh",
  lnEps: 1e-5
}

export const headDim = (c: ModelConfig) => c.dModel / c.heads

/** What each field is called where a config came from: the pipeline config's model section by default. */
export type FieldNames = Record<"vocabSize" | "context" | "dModel" | "layers" | "heads" | "dFF" | "position" | "dropout", string>

export const pipelineFieldNames: FieldNames = {
  vocabSize: "model.vocab",
  context: "model.context",
  dModel: "model.d_model",
  layers: "model.layers",
  heads: "model.heads",
  dFF: "model.d_ff",
  position: "model.position",
  dropout: "model.dropout"
}

/** Problems with a config, each one line, in the terms of wherever it came from; empty when usable. */
export const modelConfigProblems = (c: ModelConfig, names: FieldNames = pipelineFieldNames): string[] => {
  const problems: string[] = []
  const positiveInt = (field: keyof FieldNames, v: number) => {
    if (!Number.isInteger(v) || v < 1) problems.push(`${names[field]} must be a positive integer, got ${v}`)
  }
  positiveInt("vocabSize", c.vocabSize)
  positiveInt("context", c.context)
  positiveInt("dModel", c.dModel)
  positiveInt("layers", c.layers)
  positiveInt("heads", c.heads)
  positiveInt("dFF", c.dFF)
  if (Number.isInteger(c.dModel) && Number.isInteger(c.heads) && c.heads > 0 && c.dModel % c.heads !== 0) {
    problems.push(`${names.dModel} (${c.dModel}) must be divisible by ${names.heads} (${c.heads})`)
  }
  if (c.position === "rope" && (c.dModel / c.heads) % 2 !== 0) {
    problems.push(`${names.position} "rope" needs an even head size, got ${names.dModel}/${names.heads} = ${c.dModel / c.heads}`)
  }
  if (!(c.dropout >= 0 && c.dropout < 1)) problems.push(`${names.dropout} must be in [0, 1), got ${c.dropout}`)
  return problems
}

/** Every parameter's GPT-2 name and shape, in a stable order. */
export const parameterShapes = (c: ModelConfig): Array<[string, number[]]> => {
  const d = c.dModel
  const shapes: Array<[string, number[]]> = [["wte.weight", [c.vocabSize, d]]]
  if (c.position === "learned") shapes.push(["wpe.weight", [c.context, d]])
  for (let i = 0; i < c.layers; i++) {
    const p = `h.${i}.`
    shapes.push(
      [`${p}ln_1.weight`, [d]],
      [`${p}ln_1.bias`, [d]],
      [`${p}attn.c_attn.weight`, [d, 3 * d]],
      [`${p}attn.c_attn.bias`, [3 * d]],
      [`${p}attn.c_proj.weight`, [d, d]],
      [`${p}attn.c_proj.bias`, [d]],
      [`${p}ln_2.weight`, [d]],
      [`${p}ln_2.bias`, [d]],
      [`${p}mlp.c_fc.weight`, [d, c.dFF]],
      [`${p}mlp.c_fc.bias`, [c.dFF]],
      [`${p}mlp.c_proj.weight`, [c.dFF, d]],
      [`${p}mlp.c_proj.bias`, [d]]
    )
  }
  shapes.push(["ln_f.weight", [d]], ["ln_f.bias", [d]])
  if (!c.tied) shapes.push(["lm_head.weight", [c.vocabSize, d]])
  return shapes
}

export const parameterCount = (c: ModelConfig) =>
  parameterShapes(c).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0)
