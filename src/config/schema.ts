// The pipeline config: one Schema for every section of config/*.json, with defaults, so a file
// only states what differs. Field names are the public contract (DESIGN.md §4): extend them,
// never rename. Cross-field rules (d_model divisible by heads, warmup shorter than the run) are
// checked after decoding so every problem is reported at once.
import { Schema } from "effect"

const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())
const NonNegative = Schema.Number.pipe(Schema.nonNegative())
const Fraction = Schema.Number.pipe(Schema.between(0, 1))
const opt = <A, I, R>(schema: Schema.Schema<A, I, R>, value: NoInfer<A>) =>
  Schema.optionalWith(schema, { default: () => value, exact: true })

export const BackendSetting = Schema.Literal("auto", "tensorflow-gpu", "tensorflow", "webgpu", "native", "wasm", "cpu")
export const TokenizerSetting = Schema.Literal("gpt2", "cl100k_base", "o200k_base", "bytes")

export const RunSection = Schema.Struct({
  dir: opt(Schema.String.pipe(Schema.minLength(1)), "runs/default"),
  seed: opt(NonNegativeInt, 1337)
})

export const ModelSection = Schema.Struct({
  layers: opt(PositiveInt, 4),
  heads: opt(PositiveInt, 4),
  d_model: opt(PositiveInt, 256),
  d_ff: opt(PositiveInt, 1024),
  context: opt(PositiveInt, 128),
  dropout: opt(Schema.Number.pipe(Schema.between(0, 0.99)), 0),
  position: opt(Schema.Literal("learned", "rope", "alibi"), "learned"),
  tied: opt(Schema.Boolean, true),
  gelu: opt(Schema.Literal("tanh", "erf"), "tanh"),
  ln_eps: opt(Schema.Number.pipe(Schema.positive()), 1e-5),
  /** Rows of the learned position table (default: context); must be at least the context. */
  positions: Schema.optionalWith(PositiveInt, { exact: true }),
  /** Optional check: the embedding rows the tokenizer needs (gpt2 50257, bytes 257, ...). */
  vocab_size: Schema.optionalWith(PositiveInt, { exact: true }),
  /**
   * Fine-tune: start from this model reference (run or checkpoint directory, .safetensors file,
   * Hugging Face directory, hf:<repo>, gpt2) with its weights and shape; then only dropout and
   * context (the training window) may be set here.
   */
  init: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1)), { exact: true })
})

/** The data section's fields live with the data room (src/data/config.ts), which builds the layer. */
export { DataSection } from "../data/config.ts"
import { DataSection } from "../data/config.ts"

export const TrainSection = Schema.Struct({
  steps: opt(PositiveInt, 2000),
  /** Rows per micro-batch. */
  batch: opt(PositiveInt, 8),
  /** Micro-batches per optimiser step. */
  accumulate: opt(PositiveInt, 1),
  lr: opt(Schema.Number.pipe(Schema.positive()), 3e-4),
  min_lr: opt(NonNegative, 3e-5),
  warmup_steps: opt(NonNegativeInt, 100),
  weight_decay: opt(NonNegative, 0.1),
  decay_embeddings: opt(Schema.Boolean, true),
  beta1: opt(Fraction, 0.9),
  beta2: opt(Fraction, 0.95),
  eps: opt(Schema.Number.pipe(Schema.positive()), 1e-8),
  /** Global gradient-norm ceiling; 0 turns clipping off. */
  clip: opt(NonNegative, 1.0),
  /** Skip (and log) a step whose loss or gradient norm is this many standard deviations above the recent mean; 0 turns it off. */
  skip_outlier_z: opt(NonNegative, 0)
})

export const EvalSection = Schema.Struct({
  /** Evaluate every n steps (0: only at the end). */
  every: opt(NonNegativeInt, 200),
  /** Held-out tokens per evaluation. */
  tokens: opt(PositiveInt, 100_000)
})

export const CheckpointSection = Schema.Struct({
  /** Save every n steps (0: only at the end, on a signal, or by time). */
  every: opt(NonNegativeInt, 200),
  /** Also save when this many minutes have passed since the last save (0: off). */
  every_minutes: opt(NonNegative, 0),
  /** Newest checkpoints kept; the best by held-out loss is kept as well. */
  keep: opt(PositiveInt, 3)
})

export const GenerateSection = Schema.Struct({
  preset: opt(Schema.Literal("greedy", "precise", "balanced", "creative", "very-creative"), "balanced"),
  max_new_tokens: opt(PositiveInt, 100),
  prompt: opt(Schema.String, ""),
  seed: opt(NonNegativeInt, 0)
})

export const WalkthroughSection = Schema.Struct({
  text: opt(Schema.String, "I love transformers"),
  seed: opt(NonNegativeInt, 1337),
  tied: opt(Schema.Boolean, true),
  gelu: opt(Schema.Literal("tanh", "erf"), "tanh"),
  /** Print one stage only (a stage name, e.g. "scores"). */
  stage: Schema.optionalWith(Schema.String, { exact: true }),
  /** Also write the self-contained HTML document here. */
  html: Schema.optionalWith(Schema.String, { exact: true }),
  /** Also write every value as JSON here. */
  json: Schema.optionalWith(Schema.String, { exact: true })
})

export const ProbesSection = Schema.Struct({
  /** The model to open: a run directory, checkpoint directory or .safetensors file (default: run.dir). */
  checkpoint: Schema.optionalWith(Schema.String, { exact: true }),
  /** Text for the logit lens and the attention analysis. */
  text: opt(Schema.String, "The whale swam past the ship, and the whale dived."),
  logit_lens: opt(Schema.Boolean, true),
  attention: opt(Schema.Boolean, true),
  induction: opt(Schema.Boolean, true),
  patching: opt(Schema.Boolean, true),
  /** A shape score at least this names a head in the attention analysis. */
  attention_threshold: opt(Fraction, 0.4),
  /** Induction setup: R random tokens repeated twice (default 50, or the most the context allows), in a batch of this many sequences. */
  induction_length: Schema.optionalWith(PositiveInt, { exact: true }),
  induction_batch: opt(PositiveInt, 10),
  induction_threshold: opt(Fraction, 0.4),
  /** Activation patching: two prompts of the same token length and each one's one-token answer. */
  patch_clean: opt(Schema.String, "When Mary and John went to the store, John gave a drink to"),
  patch_corrupted: opt(Schema.String, "When Mary and John went to the store, Mary gave a drink to"),
  patch_answer: opt(Schema.String, " Mary"),
  patch_wrong: opt(Schema.String, " John"),
  /** Sites to sweep (default all). */
  patch_sites: Schema.optionalWith(Schema.Array(Schema.Literal("resid_pre", "attn_out", "mlp_out", "head")), { exact: true }),
  top_k: opt(PositiveInt, 5),
  /** Write one HTML report per analysis into this directory. */
  html_dir: Schema.optionalWith(Schema.String, { exact: true })
})

export const PipelineConfig = Schema.Struct({
  pipeline: opt(Schema.Literal("pretrain", "walkthrough", "interpret"), "pretrain"),
  run: opt(RunSection, Schema.decodeSync(RunSection)({})),
  backend: opt(BackendSetting, "auto"),
  tokenizer: opt(TokenizerSetting, "gpt2"),
  model: opt(ModelSection, Schema.decodeSync(ModelSection)({})),
  data: opt(DataSection, Schema.decodeSync(DataSection)({})),
  train: opt(TrainSection, Schema.decodeSync(TrainSection)({})),
  eval: opt(EvalSection, Schema.decodeSync(EvalSection)({})),
  checkpoint: opt(CheckpointSection, Schema.decodeSync(CheckpointSection)({})),
  generate: opt(GenerateSection, Schema.decodeSync(GenerateSection)({})),
  walkthrough: opt(WalkthroughSection, Schema.decodeSync(WalkthroughSection)({})),
  probes: opt(ProbesSection, Schema.decodeSync(ProbesSection)({}))
}).annotations({ identifier: "PipelineConfig" })

/** Embedding rows each tokenizer needs. */
export const tokenizerVocabSizes = { gpt2: 50257, cl100k_base: 100277, o200k_base: 200019, bytes: 257 } as const

export type PipelineConfig = typeof PipelineConfig.Type

/** Rules spanning several fields; each problem names its JSON path. */
export const crossFieldProblems = (c: PipelineConfig): string[] => {
  const problems: string[] = []
  if (c.model.init !== undefined) {
    // The shape is the init model's: a shape field set here would be silently ignored.
    const defaults = Schema.decodeSync(ModelSection)({}) as Record<string, unknown>
    for (const [key, value] of Object.entries(c.model)) {
      if (key === "init" || key === "dropout" || key === "context" || JSON.stringify(value) === JSON.stringify(defaults[key])) continue
      problems.push(`model.${key}: the shape comes from model.init (${c.model.init}); only model.dropout and model.context (the training window) may be set with it`)
    }
    return problems.concat(crossFieldProblems({ ...c, model: { ...defaults, init: undefined, dropout: c.model.dropout, context: c.model.context } as PipelineConfig["model"] }).filter((p) => !p.startsWith("model.")))
  }
  if (c.model.d_model % c.model.heads !== 0) {
    problems.push(`model.d_model: ${c.model.d_model} is not divisible by model.heads (${c.model.heads})`)
  }
  if (c.model.position === "rope" && (c.model.d_model / c.model.heads) % 2 !== 0) {
    problems.push(`model.position: "rope" needs an even head size, but d_model/heads = ${c.model.d_model / c.model.heads}`)
  }
  if (c.train.warmup_steps >= c.train.steps) {
    problems.push(`train.warmup_steps: ${c.train.warmup_steps} must be less than train.steps (${c.train.steps})`)
  }
  if (c.train.min_lr > c.train.lr) problems.push(`train.min_lr: ${c.train.min_lr} exceeds train.lr (${c.train.lr})`)
  if (c.model.positions !== undefined && c.model.positions < c.model.context) {
    problems.push(`model.context: ${c.model.context} exceeds the position table (model.positions = ${c.model.positions})`)
  }
  if (c.model.positions !== undefined && c.model.position !== "learned") {
    problems.push(`model.positions: only learned positions have a table; "${c.model.position}" has none`)
  }
  const needed = tokenizerVocabSizes[c.tokenizer]
  if (c.model.vocab_size !== undefined && c.model.vocab_size !== needed) {
    problems.push(`model.vocab_size: ${c.model.vocab_size} does not match the ${c.tokenizer} tokenizer, which needs ${needed}`)
  }
  if (c.train.accumulate * c.train.batch * c.model.context > 50_000_000) {
    problems.push(`train: batch × accumulate × context = ${c.train.accumulate * c.train.batch * c.model.context} tokens per step is beyond any machine this runs on`)
  }
  return problems
}
