// The walkthrough's model: the same GPT block as src/model/ (pre-LN, residuals around attention
// and MLP, final LayerNorm, learned positions, tied or untied head), small enough to print.
// Parameters carry GPT-2 safetensors names and layouts, so they load into the real model as-is.
import type { Tensor } from "./math.ts"
import { normalStream } from "./random.ts"

export type GeluVariant = "tanh" | "erf"

/**
 * "nonzero" (the walkthrough's default) draws biases and LayerNorm parameters small and random,
 * so that no gradient formula is checked against a trivial zero or one; "gpt2" is the usual
 * init: biases 0, LayerNorm weight 1 and bias 0.
 */
export type InitScheme = "nonzero" | "gpt2"

export interface TinyConfig {
  readonly vocab: number
  /** n_ctx: rows of wpe; at least the number of input positions. */
  readonly context: number
  readonly dModel: number
  readonly heads: number
  readonly dFF: number
  readonly layers: number
  /** Tied: logits = x · wteᵀ. Untied: logits = x · lm_headᵀ. */
  readonly tied: boolean
  readonly gelu: GeluVariant
}

/** The sizes: d_model 16, 2 heads of 8, one layer, d_ff 64. */
export const tinyConfig = (vocab: number, context: number, options: Partial<TinyConfig> = {}): TinyConfig => ({
  vocab,
  context,
  dModel: 16,
  heads: 2,
  dFF: 64,
  layers: 1,
  tied: true,
  gelu: "tanh",
  ...options
})

export const dHead = (c: TinyConfig): number => c.dModel / c.heads

export const LN_EPS = 1e-5

/** Parameters by GPT-2 name, e.g. `h.0.attn.c_attn.weight` → { shape: [16, 48], data }. */
export type Params = Record<string, Tensor>

/** Every parameter name with its shape, in the order of the forward pass. */
export const paramShapes = (c: TinyConfig): Array<[string, number[]]> => {
  const d = c.dModel
  const shapes: Array<[string, number[]]> = [
    ["wte.weight", [c.vocab, d]],
    ["wpe.weight", [c.context, d]]
  ]
  for (let l = 0; l < c.layers; l++) {
    shapes.push(
      [`h.${l}.ln_1.weight`, [d]],
      [`h.${l}.ln_1.bias`, [d]],
      [`h.${l}.attn.c_attn.weight`, [d, 3 * d]],
      [`h.${l}.attn.c_attn.bias`, [3 * d]],
      [`h.${l}.attn.c_proj.weight`, [d, d]],
      [`h.${l}.attn.c_proj.bias`, [d]],
      [`h.${l}.ln_2.weight`, [d]],
      [`h.${l}.ln_2.bias`, [d]],
      [`h.${l}.mlp.c_fc.weight`, [d, c.dFF]],
      [`h.${l}.mlp.c_fc.bias`, [c.dFF]],
      [`h.${l}.mlp.c_proj.weight`, [c.dFF, d]],
      [`h.${l}.mlp.c_proj.bias`, [d]]
    )
  }
  shapes.push(["ln_f.weight", [d]], ["ln_f.bias", [d]])
  if (!c.tied) shapes.push(["lm_head.weight", [c.vocab, d]])
  return shapes
}

export const paramNames = (c: TinyConfig): string[] => paramShapes(c).map(([name]) => name)

const isLayerNorm = (name: string): boolean => /(^|\.)ln_(1|2|f)\./.test(name)

export const isEmbedding = (name: string): boolean => name === "wte.weight" || name === "wpe.weight"

export const WEIGHT_STD = 0.02
export const NONZERO_BIAS_STD = 0.02
export const NONZERO_LN_WEIGHT_STD = 0.1
export const NONZERO_LN_BIAS_STD = 0.02

/**
 * Seeded initialisation. Matrices (embeddings included) draw from N(0, 0.02²); the residual
 * projections (`c_proj`) are scaled by 1/√(2·layers) because each block adds two of them to the
 * residual stream, whose variance would otherwise grow with depth (GPT-2 §2.3).
 */
export const initParams = (c: TinyConfig, seed: number, scheme: InitScheme = "nonzero"): Params => {
  const params: Params = {}
  for (const [name, shape] of paramShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1)
    const data = new Float64Array(n)
    const draw = normalStream(seed, name)
    if (shape.length === 2) {
      const std = name.endsWith("c_proj.weight") ? WEIGHT_STD / Math.sqrt(2 * c.layers) : WEIGHT_STD
      for (let i = 0; i < n; i++) data[i] = std * draw()
    } else if (scheme === "gpt2") {
      if (isLayerNorm(name) && name.endsWith(".weight")) data.fill(1)
    } else if (isLayerNorm(name) && name.endsWith(".weight")) {
      for (let i = 0; i < n; i++) data[i] = 1 + NONZERO_LN_WEIGHT_STD * draw()
    } else {
      const std = isLayerNorm(name) ? NONZERO_LN_BIAS_STD : NONZERO_BIAS_STD
      for (let i = 0; i < n; i++) data[i] = std * draw()
    }
    params[name] = { shape, data }
  }
  return params
}

export const cloneParams = (p: Params): Params =>
  Object.fromEntries(Object.entries(p).map(([k, t]) => [k, { shape: [...t.shape], data: Float64Array.from(t.data) }]))

export const zerosLike = (p: Params): Params =>
  Object.fromEntries(Object.entries(p).map(([k, t]) => [k, { shape: [...t.shape], data: new Float64Array(t.data.length) }]))

export const countParams = (p: Params): number => Object.values(p).reduce((n, t) => n + t.data.length, 0)
