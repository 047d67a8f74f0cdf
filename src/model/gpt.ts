// The GPT itself: token (+ position) embeddings, a stack of pre-LN blocks, a final LayerNorm
// and the unembedding. Read top to bottom it is the diagram from the GPT-2 paper:
//   x = wte[ids] + wpe[pos]
//   for each block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
//   logits = ln_f(x) · wteᵀ
// Parameters are tf.Variables named exactly as in GPT-2's checkpoints.
import * as tf from "@tensorflow/tfjs"
import { attention, type KVCache } from "./attention.ts"
import { alibiSlopes, attentionBias, ropeTables } from "./positions.ts"
import { parameterShapes, type ModelConfig } from "./config.ts"
import { blockHookNames, hookPoint, type HookFn } from "./hooks.ts"
import { gelu, layerNorm, linear } from "./layers.ts"
import { Rng } from "../rng/rng.ts"
import { maxTensorBytes } from "../backend/limits.ts"
import { headCrossEntropy } from "./loss.ts"

export type Params = ReadonlyMap<string, tf.Variable>

export interface ForwardOptions {
  /** Continue from (and extend) these cached keys and values. */
  readonly cache?: KVCache
  /** Without a cache: per batch row, the number of leading columns that are left padding. */
  readonly pads?: readonly number[]
  /** Without a cache: the absolute position of column 0 (a window cut from a longer text). */
  readonly positionOffset?: number
  /**
   * Sliding-window attention: each query sees only the last `attentionWindow` keys. This is what a
   * RoPE or ALiBi cache that drops its oldest entries computes, so it is the uncached reference.
   */
  readonly attentionWindow?: number
  readonly hooks?: HookFn
  /** Training mode applies dropout, seeded by `dropoutSeed` for reproducibility. */
  readonly training?: boolean
  readonly dropoutSeed?: () => number
}

export class GPT {
  constructor(
    readonly config: ModelConfig,
    readonly params: Params
  ) {}

  private p(name: string): tf.Variable {
    const v = this.params.get(name)
    if (v === undefined) throw new Error(`model has no parameter ${name}`)
    return v
  }

  /** The final normalised residual stream [B, T, d] for token ids [B, T]. */
  hidden(ids: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const c = this.config
      const { hooks, cache } = options
      const [B, T] = ids.shape
      // Where these tokens sit: absolute column of ids[:, 0], and each row's left padding.
      const firstColumn = cache ? cache.columns : (options.positionOffset ?? 0)
      const pads = cache ? cache.pads : (options.pads ?? Array.from({ length: B }, () => 0))
      const positions = pads.map((pad) => Array.from({ length: T }, (_, t) => Math.max(0, firstColumn + t - pad)))
      const maxPosition = Math.max(...positions.map((row) => row[T - 1]))
      if (c.position === "learned" && maxPosition >= c.context) {
        throw new Error(`position ${maxPosition} is beyond the model's context of ${c.context} learned positions`)
      }
      // Absolute column of key slot 0: the cache's dropped columns, or this window's first column.
      const keyOrigin = cache ? cache.dropped : firstColumn
      const bias = attentionBias(
        {
          queries: T,
          keys: cache ? cache.capacity : T,
          queryStart: cache ? cache.length : 0,
          firstValidKey: pads.some((p) => p > keyOrigin) ? pads.map((p) => Math.max(0, p - keyOrigin)) : undefined,
          window: cache ? undefined : options.attentionWindow
        },
        c.position === "alibi" ? alibiSlopes(c.heads) : []
      )
      const rope = c.position === "rope" ? ropeTables(positions, c.dModel / c.heads) : undefined
      const dropout = this.dropout(options)
      const tokens = hookPoint(hooks, "hook_embed", tf.reshape(tf.gather(this.p("wte.weight"), tf.reshape(ids, [-1])), [B, T, c.dModel]))
      let x = tokens
      if (c.position === "learned") {
        const samePositions = positions.every((row) => row.join() === positions[0].join())
        const table = tf.tensor2d(samePositions ? [positions[0]] : positions, undefined, "int32")
        const rows = samePositions ? 1 : B
        const shared = tf.reshape(tf.gather(this.p("wpe.weight"), tf.reshape(table, [-1])), [rows, T, c.dModel])
        // Hooks see [B, T, d] as in TransformerLens, so a per-row replacement fits; without hooks the
        // one shared row broadcasts in the add below.
        const pos = hooks === undefined ? shared : hookPoint(hooks, "hook_pos_embed", rows === B ? shared : tf.broadcastTo(shared, [B, T, c.dModel]))
        x = tf.add(tokens, pos)
      }
      x = dropout ? dropout(x) : x
      for (let layer = 0; layer < c.layers; layer++) x = this.block(layer, x as tf.Tensor3D, { bias, rope, cache, hooks, dropout })
      cache?.advance(T)
      const normalised = layerNorm(x, this.p("ln_f.weight"), this.p("ln_f.bias"), c.lnEps)
      return hookPoint(hooks, "ln_final.hook_normalized", normalised) as tf.Tensor3D
    })
  }

  /** Logits [B, T, V] for token ids [B, T]. */
  forward(ids: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const h = this.hidden(ids, options)
      const [B, T, d] = h.shape
      return tf.reshape(this.unembed(tf.reshape(h, [B * T, d]) as tf.Tensor2D), [B, T, this.config.vocabSize]) as tf.Tensor3D
    })
  }

  /** The head's weights [V, d]: the tied token embedding or the separate lm_head. */
  head(): tf.Variable {
    return this.config.tied ? this.p("wte.weight") : this.p("lm_head.weight")
  }

  /**
   * Mean next-token cross-entropy of hidden states h [N, d] against targets [N], with the head
   * projection chunked so no [rows, V] tensor exceeds the backend's limit.
   */
  loss(h: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
    return headCrossEntropy(h, this.head() as tf.Tensor2D, targets, maxTensorBytes())
  }

  private transposed: { dataId: object; tensor: tf.Tensor2D } | undefined

  /**
   * The head as [d, V], for decoding: h·Wᵀ as a plain GEMV. Cached until the weights change
   * (an update gives the variable new storage), because the transpose copies V·d values and the
   * wasm GEMM repacks any new right-hand operand.
   */
  headTransposed(): tf.Tensor2D {
    const head = this.head()
    if (this.transposed?.dataId !== head.dataId) {
      this.transposed?.tensor.dispose()
      this.transposed = { dataId: head.dataId, tensor: tf.keep(tf.transpose(head)) as tf.Tensor2D }
    }
    return this.transposed.tensor
  }

  /** h [N, d] → logits [N, V] through the tied embedding or the separate head. */
  unembed(h: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(h, this.head() as tf.Tensor2D, false, true)
  }

  private block(
    layer: number,
    x: tf.Tensor3D,
    ctx: { bias: tf.Tensor; rope?: { cos: tf.Tensor; sin: tf.Tensor }; cache?: KVCache; hooks?: HookFn; dropout?: (t: tf.Tensor) => tf.Tensor }
  ): tf.Tensor3D {
    const c = this.config
    const names = blockHookNames(layer)
    const h = `h.${layer}.`
    const { hooks, dropout } = ctx
    const residPre = hookPoint(hooks, names.residPre, x)
    const ln1 = hookPoint(hooks, names.ln1, layerNorm(residPre, this.p(`${h}ln_1.weight`), this.p(`${h}ln_1.bias`), c.lnEps))
    const attnWeights = {
      cAttnW: this.p(`${h}attn.c_attn.weight`),
      cAttnB: this.p(`${h}attn.c_attn.bias`),
      cProjW: this.p(`${h}attn.c_proj.weight`),
      cProjB: this.p(`${h}attn.c_proj.bias`)
    }
    const attnRaw = attention(ln1 as tf.Tensor3D, attnWeights, { config: c, layer, ...ctx })
    const attnOut = hookPoint(hooks, names.attnOut, dropout ? dropout(attnRaw) : attnRaw)
    const residMid = hookPoint(hooks, names.residMid, tf.add(residPre, attnOut))
    const ln2 = hookPoint(hooks, names.ln2, layerNorm(residMid, this.p(`${h}ln_2.weight`), this.p(`${h}ln_2.bias`), c.lnEps))
    const pre = hookPoint(hooks, names.mlpPre, linear(ln2, this.p(`${h}mlp.c_fc.weight`), this.p(`${h}mlp.c_fc.bias`)))
    const post = hookPoint(hooks, names.mlpPost, gelu(pre, c.gelu))
    const mlpRaw = linear(post, this.p(`${h}mlp.c_proj.weight`), this.p(`${h}mlp.c_proj.bias`))
    const mlpOut = hookPoint(hooks, names.mlpOut, dropout ? dropout(mlpRaw) : mlpRaw)
    return hookPoint(hooks, names.residPost, tf.add(residMid, mlpOut)) as tf.Tensor3D
  }

  private dropout(options: ForwardOptions): ((t: tf.Tensor) => tf.Tensor) | undefined {
    const rate = this.config.dropout
    if (!options.training || rate === 0) return undefined
    const seed = options.dropoutSeed ?? (() => 0)
    return (t) => tf.dropout(t, rate, undefined, seed())
  }

  /** Parameter values as plain arrays (GPT-2 names), e.g. for saving. */
  snapshot(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>()
    for (const [name, v] of this.params) out.set(name, { shape: v.shape.slice(), data: v.dataSync() as Float32Array })
    return out
  }

  dispose(): void {
    this.transposed?.tensor.dispose()
    this.transposed = undefined
    for (const v of this.params.values()) v.dispose()
  }
}

/**
 * GPT-2 initialisation: weights N(0, 0.02); the two residual projections per block (attn.c_proj,
 * mlp.c_proj) N(0, 0.02/√(2·layers)), since each block adds two of them to the residual stream
 * and their variances add; biases 0; LayerNorm γ = 1, β = 0. Each tensor draws from its own
 * stream (seed, name), so results do not depend on creation order or backend.
 */
export const initialValues = (config: ModelConfig, seed: number): Map<string, { shape: number[]; data: Float32Array }> => {
  const values = new Map<string, { shape: number[]; data: Float32Array }>()
  for (const [name, shape] of parameterShapes(config)) {
    const size = shape.reduce((a, b) => a * b, 1)
    let data: Float32Array
    if (name.endsWith(".bias")) data = new Float32Array(size)
    else if (/ln_\d\.weight$|ln_f\.weight$/.test(name)) data = new Float32Array(size).fill(1)
    else {
      const std = name.endsWith("c_proj.weight") ? 0.02 / Math.sqrt(2 * config.layers) : 0.02
      data = Rng.seeded(seed, name).normalArray(size, std)
    }
    values.set(name, { shape, data })
  }
  return values
}

export const gptFromValues = (config: ModelConfig, values: ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>): GPT => {
  const params = new Map<string, tf.Variable>()
  for (const [name, shape] of parameterShapes(config)) {
    const v = values.get(name)
    if (v === undefined) throw new Error(`missing parameter ${name}`)
    if (v.shape.join(",") !== shape.join(",")) throw new Error(`parameter ${name} has shape [${v.shape}], expected [${shape}]`)
    const initial = tf.tensor(v.data, shape, "float32")
    params.set(name, tf.variable(initial, true)) // unnamed: tfjs variable names are process-global
    initial.dispose()
  }
  return new GPT(config, params)
}

export const initGPT = (config: ModelConfig, seed: number): GPT => gptFromValues(config, initialValues(config, seed))
