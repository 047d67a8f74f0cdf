// The bridge between Hugging Face's GPT-2 config.json (src/format/hf-config.ts) and our
// ModelConfig: which shape a config.json describes, which of our models GPT2LMHeadModel can
// hold, and the config.json / generation_config.json an export writes (src/model/hf-export.ts).
import { hfActivations, type HfGpt2Config } from "../format/hf-config.ts"
import type { FieldNames, ModelConfig } from "./config.ts"

/** Problems in a config.json are named with its own keys. */
export const hfFieldNames: FieldNames = {
  vocabSize: "vocab_size",
  context: "n_positions",
  dModel: "n_embd",
  layers: "n_layer",
  heads: "n_head",
  dFF: "n_inner",
  position: "position",
  dropout: "dropout"
}

/** The model shape a decoded config.json describes (GPT-2: learned positions, no dropout at inference). */
export const modelConfigFromHf = (hf: HfGpt2Config): ModelConfig => ({
  vocabSize: hf.vocab_size,
  context: hf.n_positions,
  dModel: hf.n_embd,
  layers: hf.n_layer,
  heads: hf.n_head,
  dFF: hf.n_inner ?? 4 * hf.n_embd,
  dropout: 0,
  position: "learned",
  tied: hf.tie_word_embeddings,
  gelu: hfActivations[hf.activation_function],
  lnEps: hf.layer_norm_epsilon
})

/**
 * Why `config` cannot be a `GPT2LMHeadModel`, or undefined when it can. Positions are the only
 * obstacle: GPT-2 adds a learned table (wpe). The exact GELU is fine: transformers' GPT-2 takes
 * `activation_function: "gelu"` (x·Φ(x)) as readily as its default tanh approximation.
 */
export const hfIncompatibility = (config: ModelConfig): string | undefined =>
  config.position !== "learned"
    ? `it uses ${config.position === "rope" ? "RoPE" : "ALiBi"} positions, and GPT2LMHeadModel only has a learned position table (wpe)`
    : undefined

/** GPT-2's end-of-text id, the BOS and EOS of every GPT-2-vocabulary model. */
const GPT2_EOT = 50256

/** `config.json` for `GPT2LMHeadModel.from_pretrained`, as `save_pretrained` writes it. */
export const hfConfigOf = (config: ModelConfig, tokenizer: string): Record<string, unknown> => {
  const eot = tokenizer === "gpt2" ? GPT2_EOT : undefined
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: config.vocabSize,
    n_positions: config.context,
    n_ctx: config.context,
    n_embd: config.dModel,
    n_layer: config.layers,
    n_head: config.heads,
    n_inner: config.dFF === 4 * config.dModel ? null : config.dFF,
    activation_function: config.gelu === "erf" ? "gelu" : "gelu_new",
    layer_norm_epsilon: config.lnEps,
    resid_pdrop: config.dropout,
    embd_pdrop: config.dropout,
    attn_pdrop: config.dropout,
    initializer_range: 0.02,
    scale_attn_weights: true,
    tie_word_embeddings: config.tied,
    use_cache: true,
    torch_dtype: "float32",
    ...(eot === undefined ? {} : { bos_token_id: eot, eos_token_id: eot })
  }
}

/** `generation_config.json`: the token ids `generate` starts and stops at. */
export const hfGenerationConfigOf = (tokenizer: string): Record<string, unknown> =>
  tokenizer === "gpt2" ? { bos_token_id: GPT2_EOT, eos_token_id: GPT2_EOT } : {}
