// Hugging Face's GPT-2 `config.json`: how a model that has no glassbox metadata says its shape.
// A safetensors file records tensor shapes but not how d_model splits into heads, nor the
// LayerNorm epsilon or the GELU flavour; without this file those would have to be guessed, and a
// wrong head count gives plausible-looking, wrong logits. So the file is decoded by a Schema that
// names every missing or wrong field in the file's own terms (`n_head`, not `model.heads`), and
// written back out (src/model/hf.ts) when a model is exported for `transformers`.
import { Data, Either, ParseResult, Schema } from "effect"

const PositiveInt = Schema.Int.pipe(Schema.positive())

/** The activations GPT-2 checkpoints use, and the GELU each one computes. */
export const hfActivations = {
  gelu_new: "tanh", // GPT-2's own: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
  gelu_pytorch_tanh: "tanh",
  gelu_fast: "tanh",
  gelu: "erf" // the exact one: x·Φ(x)
} as const satisfies Record<string, "tanh" | "erf">

export const HfGpt2Config = Schema.Struct({
  model_type: Schema.optional(Schema.String),
  n_embd: PositiveInt,
  n_head: PositiveInt,
  n_layer: PositiveInt,
  n_positions: PositiveInt,
  vocab_size: PositiveInt,
  /** Width of the MLP's hidden layer; null or absent means 4·n_embd. */
  n_inner: Schema.optional(Schema.NullOr(PositiveInt)),
  layer_norm_epsilon: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 1e-5 }),
  activation_function: Schema.optionalWith(Schema.Literal(...(Object.keys(hfActivations) as Array<keyof typeof hfActivations>)), {
    default: () => "gelu_new" as const
  }),
  tie_word_embeddings: Schema.optionalWith(Schema.Boolean, { default: () => true })
})
export type HfGpt2Config = typeof HfGpt2Config.Type

/** A config.json that is not JSON, not GPT-2's, or has missing or wrong fields: each one named. */
export class HfConfigInvalid extends Data.TaggedError("HfConfigInvalid")<{
  readonly file: string
  readonly problems: ReadonlyArray<string>
}> {
  override get message() {
    return `${this.file}: ${this.problems.join("; ")}`
  }
}

const describeValue = (value: unknown) => (value === undefined ? "nothing" : JSON.stringify(value))

/**
 * Every problem with a decoded value as "field: what is wrong", from a Schema ParseError. Shared
 * with the glassbox metadata decoder so both speak the same way.
 */
export const schemaProblems = (error: ParseResult.ParseError, input: unknown): string[] => {
  // A union (a literal among several) reports one issue per alternative: gather them per field.
  const byField = new Map<string, { path: ReadonlyArray<PropertyKey>; missing: boolean; expected: string[] }>()
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const key = issue.path.map(String).join(".")
    const entry = byField.get(key) ?? { path: issue.path, missing: false, expected: [] }
    byField.set(key, entry)
    if (issue._tag === "Missing") entry.missing = true
    const expected = issue.message.replace(/^Expected\s+/, "").replace(/, actual .*$/s, "")
    if (expected !== "undefined" && !entry.expected.includes(expected)) entry.expected.push(expected)
  }
  return [...byField].map(([field, { path, missing, expected }]) => {
    if (missing) return `${field} is missing`
    let value: unknown = input
    for (const key of path) value = value !== null && typeof value === "object" ? (value as Record<PropertyKey, unknown>)[key] : undefined
    const wanted = expected.join(" or ")
    return field === "" ? `expected ${wanted}` : `${field} is ${describeValue(value)}, expected ${wanted}`
  })
}

/** Decodes the text of a config.json (`file` names it in errors). */
export const decodeHfConfig = (text: string, file: string): Either.Either<HfGpt2Config, HfConfigInvalid> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (cause) {
    return Either.left(new HfConfigInvalid({ file, problems: [`not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`] }))
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return Either.left(new HfConfigInvalid({ file, problems: ["expected a JSON object"] }))
  }
  const modelType = (json as { model_type?: unknown }).model_type
  if (modelType !== undefined && modelType !== "gpt2") {
    return Either.left(new HfConfigInvalid({ file, problems: [`model_type is ${JSON.stringify(modelType)}; only GPT-2-layout models ("gpt2") load here`] }))
  }
  return Schema.decodeUnknownEither(HfGpt2Config, { errors: "all", onExcessProperty: "ignore" })(json).pipe(
    Either.mapLeft((error) => new HfConfigInvalid({ file, problems: schemaProblems(error, json) }))
  )
}

