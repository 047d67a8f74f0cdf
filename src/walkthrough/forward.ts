// The forward pass of the tiny GPT, keeping every intermediate value so the walkthrough can print
// it and the backward pass can reuse it. It reads top to bottom like the diagram: embeddings,
// then per block LN → attention → residual → LN → MLP → residual, then final LN, logits, loss.
import {
  type Mat,
  type Tensor,
  addRow,
  add,
  asMat,
  concatCols,
  erf,
  map,
  matmul,
  matmulNT,
  row,
  rowMax,
  sliceCols,
  zeros
} from "./math.ts"
import { type GeluVariant, type Params, type TinyConfig, LN_EPS, dHead } from "./model.ts"

export interface LayerNormCache {
  readonly x: Mat // [T, d] input
  readonly mean: Float64Array // [T]
  readonly variance: Float64Array // [T] biased: divided by d
  readonly std: Float64Array // [T] √(variance + ε)
  readonly xhat: Mat // [T, d] (x − mean) / std
  readonly y: Mat // [T, d] xhat ⊙ weight + bias
}

export interface HeadCache {
  readonly q: Mat // [T, d_head]
  readonly k: Mat // [T, d_head]
  readonly v: Mat // [T, d_head]
  readonly raw: Mat // [T, T] q · kᵀ
  readonly scores: Mat // [T, T] raw / √d_head, −∞ above the diagonal
  readonly pattern: Mat // [T, T] row softmax of scores
  readonly z: Mat // [T, d_head] pattern · v
}

export interface BlockCache {
  readonly residPre: Mat // [T, d]
  readonly ln1: LayerNormCache
  readonly qkv: Mat // [T, 3d] columns [q | k | v]
  readonly heads: ReadonlyArray<HeadCache>
  readonly zcat: Mat // [T, d] heads side by side
  readonly attnOut: Mat // [T, d] zcat · W_O + b_O
  readonly residMid: Mat // [T, d]
  readonly ln2: LayerNormCache
  readonly mlpPre: Mat // [T, d_ff]
  readonly mlpPost: Mat // [T, d_ff] GELU(pre)
  readonly mlpOut: Mat // [T, d]
  readonly residPost: Mat // [T, d]
}

export interface ForwardCache {
  readonly inputs: ReadonlyArray<number>
  readonly targets: ReadonlyArray<number>
  readonly tokEmbed: Mat // [T, d] wte rows of the input ids
  readonly posEmbed: Mat // [T, d] wpe rows 0..T-1
  readonly blocks: ReadonlyArray<BlockCache>
  readonly lnFinal: LayerNormCache
  readonly logits: Mat // [T, V]
  readonly probs: Mat // [T, V]
  readonly losses: Float64Array // [T] −log p(target) per position
  readonly loss: number // mean over positions
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI)
export const GELU_TANH_COEFF = 0.044715

/** GELU: "tanh" is GPT-2's approximation, "erf" the exact x·Φ(x). */
export const gelu = (variant: GeluVariant) =>
  variant === "tanh"
    ? (x: number): number => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_COEFF * x * x * x)))
    : (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2))

export const layerNorm = (x: Mat, weight: Float64Array, bias: Float64Array): LayerNormCache => {
  const { rows: T, cols: d } = x
  const mean = new Float64Array(T)
  const variance = new Float64Array(T)
  const std = new Float64Array(T)
  const xhat = zeros(T, d)
  const y = zeros(T, d)
  for (let t = 0; t < T; t++) {
    const r = row(x, t)
    let s = 0
    for (let i = 0; i < d; i++) s += r[i]
    mean[t] = s / d
    let v = 0
    for (let i = 0; i < d; i++) v += (r[i] - mean[t]) ** 2
    variance[t] = v / d
    std[t] = Math.sqrt(variance[t] + LN_EPS)
    for (let i = 0; i < d; i++) {
      xhat.data[t * d + i] = (r[i] - mean[t]) / std[t]
      y.data[t * d + i] = xhat.data[t * d + i] * weight[i] + bias[i]
    }
  }
  return { x, mean, variance, std, xhat, y }
}

/** Row softmax; −∞ entries (the causal mask) get probability exactly 0. */
export const softmaxRows = (s: Mat): Mat => {
  const out = zeros(s.rows, s.cols)
  for (let i = 0; i < s.rows; i++) {
    const r = row(s, i)
    const m = rowMax(r)
    let z = 0
    for (let j = 0; j < s.cols; j++) z += Math.exp(r[j] - m)
    for (let j = 0; j < s.cols; j++) out.data[i * s.cols + j] = Math.exp(r[j] - m) / z
  }
  return out
}

const causalScores = (raw: Mat, dh: number): Mat => {
  const out = zeros(raw.rows, raw.cols)
  const scale = 1 / Math.sqrt(dh)
  for (let i = 0; i < raw.rows; i++)
    for (let j = 0; j < raw.cols; j++) out.data[i * raw.cols + j] = j > i ? -Infinity : raw.data[i * raw.cols + j] * scale
  return out
}

const attentionHead = (qkv: Mat, h: number, d: number, dh: number): HeadCache => {
  const q = sliceCols(qkv, h * dh, (h + 1) * dh)
  const k = sliceCols(qkv, d + h * dh, d + (h + 1) * dh)
  const v = sliceCols(qkv, 2 * d + h * dh, 2 * d + (h + 1) * dh)
  const raw = matmulNT(q, k)
  // dividing by √d_head keeps the scores' variance near 1 whatever the head size, so the
  // softmax starts out soft instead of saturated
  const scores = causalScores(raw, dh)
  const pattern = softmaxRows(scores)
  return { q, k, v, raw, scores, pattern, z: matmul(pattern, v) }
}

const linear = (x: Mat, weight: Tensor, bias: Tensor): Mat => addRow(matmul(x, asMat(weight)), bias.data)

const block = (c: TinyConfig, p: Params, l: number, residPre: Mat): BlockCache => {
  const w = (name: string): Tensor => p[`h.${l}.${name}`]
  const ln1 = layerNorm(residPre, w("ln_1.weight").data, w("ln_1.bias").data)
  const qkv = linear(ln1.y, w("attn.c_attn.weight"), w("attn.c_attn.bias"))
  const heads = Array.from({ length: c.heads }, (_, h) => attentionHead(qkv, h, c.dModel, dHead(c)))
  const zcat = concatCols(heads.map((hd) => hd.z))
  const attnOut = linear(zcat, w("attn.c_proj.weight"), w("attn.c_proj.bias"))
  const residMid = add(residPre, attnOut)
  const ln2 = layerNorm(residMid, w("ln_2.weight").data, w("ln_2.bias").data)
  const mlpPre = linear(ln2.y, w("mlp.c_fc.weight"), w("mlp.c_fc.bias"))
  const mlpPost = map(mlpPre, gelu(c.gelu))
  const mlpOut = linear(mlpPost, w("mlp.c_proj.weight"), w("mlp.c_proj.bias"))
  const residPost = add(residMid, mlpOut)
  return { residPre, ln1, qkv, heads, zcat, attnOut, residMid, ln2, mlpPre, mlpPost, mlpOut, residPost }
}

const gatherRows = (table: Tensor, ids: ReadonlyArray<number>): Mat => {
  const d = table.shape[1]
  const out = zeros(ids.length, d)
  ids.forEach((id, t) => out.data.set(table.data.subarray(id * d, (id + 1) * d), t * d))
  return out
}

/** The unembedding matrix [V, d]: wte when tied, lm_head otherwise. */
export const unembedding = (c: TinyConfig, p: Params): Tensor => (c.tied ? p["wte.weight"] : p["lm_head.weight"])

export const forward = (
  c: TinyConfig,
  p: Params,
  inputs: ReadonlyArray<number>,
  targets: ReadonlyArray<number>
): ForwardCache => {
  const T = inputs.length
  if (T > c.context) throw new RangeError(`${T} positions exceed the context of ${c.context}`)
  const tokEmbed = gatherRows(p["wte.weight"], inputs)
  const posEmbed = gatherRows(p["wpe.weight"], Array.from({ length: T }, (_, t) => t))
  const blocks: BlockCache[] = []
  let resid = add(tokEmbed, posEmbed)
  for (let l = 0; l < c.layers; l++) {
    const b = block(c, p, l, resid)
    blocks.push(b)
    resid = b.residPost
  }
  const lnFinal = layerNorm(resid, p["ln_f.weight"].data, p["ln_f.bias"].data)
  const logits = matmulNT(lnFinal.y, asMat(unembedding(c, p))) // [T, d] · [V, d]ᵀ → [T, V]
  const probs = softmaxRows(logits)
  const losses = new Float64Array(T)
  for (let t = 0; t < T; t++) {
    // −log softmax(logits)[y], computed as logsumexp − logit so no probability underflows
    const r = row(logits, t)
    const m = rowMax(r)
    let z = 0
    for (let j = 0; j < c.vocab; j++) z += Math.exp(r[j] - m)
    losses[t] = m + Math.log(z) - r[targets[t]]
  }
  const loss = losses.reduce((a, b) => a + b, 0) / T
  return { inputs, targets, tokEmbed, posEmbed, blocks, lnFinal, logits, probs, losses, loss }
}

/** Only the loss: what finite differences evaluate thousands of times. */
export const lossOf = (c: TinyConfig, p: Params, inputs: ReadonlyArray<number>, targets: ReadonlyArray<number>): number =>
  forward(c, p, inputs, targets).loss

const t2 = (m: Mat): Tensor => ({ shape: [m.rows, m.cols], data: m.data })
const col = (v: Float64Array): Tensor => ({ shape: [v.length, 1], data: v })

/** [T, H·d_head] per-head matrices → TransformerLens [pos, head, d_head]. */
const byPosHead = (heads: ReadonlyArray<HeadCache>, pick: (h: HeadCache) => Mat): Tensor => {
  const H = heads.length
  const { rows: T, cols: dh } = pick(heads[0])
  const data = new Float64Array(T * H * dh)
  heads.forEach((hd, h) => {
    const m = pick(hd)
    for (let t = 0; t < T; t++) for (let i = 0; i < dh; i++) data[(t * H + h) * dh + i] = m.data[t * dh + i]
  })
  return { shape: [T, H, dh], data }
}

/** [head][dest, src] → [head, dest, src] */
const byHead = (heads: ReadonlyArray<HeadCache>, pick: (h: HeadCache) => Mat): Tensor => {
  const T = pick(heads[0]).rows
  const data = new Float64Array(heads.length * T * T)
  heads.forEach((hd, h) => data.set(pick(hd).data, h * T * T))
  return { shape: [heads.length, T, T], data }
}

/**
 * Forward values by TransformerLens hook name (no batch dimension). As in TransformerLens,
 * `ln*.hook_normalized` is after the LayerNorm's weight and bias, `ln*.hook_scale` is
 * √(variance + ε) as [pos, 1], and `attn.hook_attn_scores` is scaled and masked with −∞.
 */
export const hooks = (f: ForwardCache): Record<string, Tensor> => {
  const out: Record<string, Tensor> = {
    hook_embed: t2(f.tokEmbed),
    hook_pos_embed: t2(f.posEmbed)
  }
  f.blocks.forEach((b, l) => {
    const k = `blocks.${l}`
    out[`${k}.hook_resid_pre`] = t2(b.residPre)
    out[`${k}.ln1.hook_scale`] = col(b.ln1.std)
    out[`${k}.ln1.hook_normalized`] = t2(b.ln1.y)
    out[`${k}.attn.hook_q`] = byPosHead(b.heads, (h) => h.q)
    out[`${k}.attn.hook_k`] = byPosHead(b.heads, (h) => h.k)
    out[`${k}.attn.hook_v`] = byPosHead(b.heads, (h) => h.v)
    out[`${k}.attn.hook_attn_scores`] = byHead(b.heads, (h) => h.scores)
    out[`${k}.attn.hook_pattern`] = byHead(b.heads, (h) => h.pattern)
    out[`${k}.attn.hook_z`] = byPosHead(b.heads, (h) => h.z)
    out[`${k}.hook_attn_out`] = t2(b.attnOut)
    out[`${k}.hook_resid_mid`] = t2(b.residMid)
    out[`${k}.ln2.hook_scale`] = col(b.ln2.std)
    out[`${k}.ln2.hook_normalized`] = t2(b.ln2.y)
    out[`${k}.mlp.hook_pre`] = t2(b.mlpPre)
    out[`${k}.mlp.hook_post`] = t2(b.mlpPost)
    out[`${k}.hook_mlp_out`] = t2(b.mlpOut)
    out[`${k}.hook_resid_post`] = t2(b.residPost)
  })
  out["ln_final.hook_scale"] = col(f.lnFinal.std)
  out["ln_final.hook_normalized"] = t2(f.lnFinal.y)
  out["logits"] = t2(f.logits)
  return out
}
