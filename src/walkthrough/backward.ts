// The backward pass by hand: the chain rule applied stage by stage in reverse, keeping every
// intermediate gradient for the document. The local rules (linear layer, LayerNorm, GELU,
// softmax, unembedding) are passed in as `BackwardRules`, so a test can swap one for a wrong
// version and prove that the finite-difference checker notices.
import {
  type Mat,
  add,
  asMat,
  concatCols,
  erf,
  hadamard,
  map,
  mat,
  matmul,
  matmulNT,
  matmulTN,
  row,
  scale,
  sumRows,
  zeros
} from "./math.ts"
import type { ForwardCache, LayerNormCache } from "./forward.ts"
import { GELU_TANH_COEFF, unembedding } from "./forward.ts"
import { type GeluVariant, type Params, type TinyConfig, dHead, zerosLike } from "./model.ts"

export type LinearSite = "attn.c_attn" | "attn.c_proj" | "mlp.c_fc" | "mlp.c_proj"
export type LayerNormSite = "ln_1" | "ln_2" | "ln_f"

export interface LinearGrads {
  readonly dX: Mat
  readonly dW: Mat
  readonly db: Float64Array
}

export interface LayerNormGrads {
  readonly dX: Mat
  readonly dWeight: Float64Array
  readonly dBias: Float64Array
}

export interface BackwardRules {
  /** y = x·W + b, given dL/dy. */
  readonly linear: (site: LinearSite, dY: Mat, x: Mat, w: Mat) => LinearGrads
  /** logits = x·Uᵀ, given dL/dlogits. */
  readonly unembed: (dLogits: Mat, x: Mat, u: Mat) => { readonly dX: Mat; readonly dU: Mat }
  readonly layerNorm: (site: LayerNormSite, dY: Mat, cache: LayerNormCache, weight: Float64Array) => LayerNormGrads
  /** dL/dpre from dL/dpost = dL/dpost ⊙ GELU′(pre). */
  readonly gelu: (variant: GeluVariant, dPost: Mat, pre: Mat) => Mat
  /** dL/dscores from dL/dpattern, row by row through the softmax Jacobian. */
  readonly softmax: (dPattern: Mat, pattern: Mat) => Mat
}

// ---- the local rules -------------------------------------------------------------------

/** y = xW + b ⇒ dx = dy·Wᵀ (the transpose!), dW = xᵀ·dy, db = Σ_t dy. */
export const linearBackward = (_site: LinearSite, dY: Mat, x: Mat, w: Mat): LinearGrads => ({
  dX: matmulNT(dY, w),
  dW: matmulTN(x, dY),
  db: sumRows(dY)
})

/** logits = x·Uᵀ ⇒ dx = dlogits·U, dU = dlogitsᵀ·x. */
export const unembedBackward = (dLogits: Mat, x: Mat, u: Mat): { dX: Mat; dU: Mat } => ({
  dX: matmul(dLogits, u),
  dU: matmulTN(dLogits, x)
})

/**
 * The full Jacobian of one LayerNorm row, ∂y_i/∂x_j = γ_i/σ · (δ_ij − 1/d − x̂_i x̂_j / d),
 * a d×d matrix: the mean couples every input to every output, and so does σ.
 */
export const layerNormJacobian = (cache: LayerNormCache, weight: Float64Array, t: number): Mat => {
  const d = cache.x.cols
  const xh = row(cache.xhat, t)
  const s = cache.std[t]
  const jac = zeros(d, d)
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      jac.data[i * d + j] = (weight[i] / s) * ((i === j ? 1 : 0) - 1 / d - (xh[i] * xh[j]) / d)
    }
  }
  return jac
}

const layerNormParamGrads = (dY: Mat, cache: LayerNormCache): { dWeight: Float64Array; dBias: Float64Array } => ({
  dWeight: sumRows(hadamard(dY, cache.xhat)),
  dBias: sumRows(dY)
})

/** LayerNorm backward through the full Jacobian: dx_t = J_tᵀ · dy_t for every position. */
export const layerNormBackwardFull = (
  _site: LayerNormSite,
  dY: Mat,
  cache: LayerNormCache,
  weight: Float64Array
): LayerNormGrads => {
  const { rows: T, cols: d } = dY
  const dX = zeros(T, d)
  for (let t = 0; t < T; t++) {
    const jac = layerNormJacobian(cache, weight, t)
    const dy = row(dY, t)
    for (let j = 0; j < d; j++) {
      let s = 0
      for (let i = 0; i < d; i++) s += jac.data[i * d + j] * dy[i]
      dX.data[t * d + j] = s
    }
  }
  return { dX, ...layerNormParamGrads(dY, cache) }
}

/**
 * LayerNorm backward, compact form: with g = dy ⊙ γ,
 *   dx = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / σ,
 * the Jacobian-vector product written out without building the d×d matrix.
 */
export const layerNormBackwardCompact = (
  _site: LayerNormSite,
  dY: Mat,
  cache: LayerNormCache,
  weight: Float64Array
): LayerNormGrads => {
  const { rows: T, cols: d } = dY
  const dX = zeros(T, d)
  for (let t = 0; t < T; t++) {
    const dy = row(dY, t)
    const xh = row(cache.xhat, t)
    let meanG = 0
    let meanGX = 0
    for (let i = 0; i < d; i++) {
      meanG += (dy[i] * weight[i]) / d
      meanGX += (dy[i] * weight[i] * xh[i]) / d
    }
    for (let i = 0; i < d; i++) dX.data[t * d + i] = (dy[i] * weight[i] - meanG - xh[i] * meanGX) / cache.std[t]
  }
  return { dX, ...layerNormParamGrads(dY, cache) }
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI)

/** GELU′(x) for either variant. */
export const geluDerivative = (variant: GeluVariant) =>
  variant === "tanh"
    ? (x: number): number => {
        // g = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³)
        const th = Math.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_COEFF * x * x * x))
        return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_COEFF * x * x)
      }
    : // g = x·Φ(x) ⇒ g′ = Φ(x) + x·φ(x)
      (x: number): number => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI)

export const geluBackward = (variant: GeluVariant, dPost: Mat, pre: Mat): Mat => {
  const dg = geluDerivative(variant)
  return map(dPost, (g, i) => g * dg(pre.data[i]))
}

/** The softmax Jacobian of one row a: ∂a_i/∂s_j = a_i(δ_ij − a_j), i.e. diag(a) − a·aᵀ. */
export const softmaxJacobian = (a: Float64Array): Mat => {
  const n = a.length
  const jac = zeros(n, n)
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) jac.data[i * n + j] = a[i] * ((i === j ? 1 : 0) - a[j])
  return jac
}

/** ds = Jᵀ·da = a ⊙ (da − a·da) per row; masked entries have a = 0, so their gradient is 0. */
export const softmaxBackward = (dPattern: Mat, pattern: Mat): Mat => {
  const out = zeros(pattern.rows, pattern.cols)
  for (let i = 0; i < pattern.rows; i++) {
    const a = row(pattern, i)
    const da = row(dPattern, i)
    let dot = 0
    for (let j = 0; j < a.length; j++) dot += a[j] * da[j]
    for (let j = 0; j < a.length; j++) out.data[i * pattern.cols + j] = a[j] * (da[j] - dot)
  }
  return out
}

export const defaultRules: BackwardRules = {
  linear: linearBackward,
  unembed: unembedBackward,
  layerNorm: layerNormBackwardCompact,
  gelu: geluBackward,
  softmax: softmaxBackward
}

// ---- the pass --------------------------------------------------------------------------

export interface HeadGrads {
  readonly dZ: Mat // [T, d_head]
  readonly dPattern: Mat // [T, T]
  readonly dV: Mat // [T, d_head]
  readonly dScores: Mat // [T, T] through the softmax
  readonly dRaw: Mat // [T, T] dScores / √d_head
  readonly dQ: Mat // [T, d_head]
  readonly dK: Mat // [T, d_head]
}

export interface BlockGrads {
  readonly dResidPost: Mat // [T, d] arrives from above
  readonly dMlpOut: Mat // = dResidPost (the residual copies the gradient)
  readonly dMlpPost: Mat // [T, d_ff]
  readonly dMlpPre: Mat // [T, d_ff]
  readonly dLn2Out: Mat // [T, d]
  readonly dLn2In: Mat // [T, d]
  readonly dResidMid: Mat // dResidPost + dLn2In
  readonly dAttnOut: Mat // = dResidMid
  readonly dZcat: Mat // [T, d]
  readonly heads: ReadonlyArray<HeadGrads>
  readonly dQkv: Mat // [T, 3d]
  readonly dLn1Out: Mat // [T, d]
  readonly dLn1In: Mat // [T, d]
  readonly dResidPre: Mat // dResidMid + dLn1In
}

export interface BackwardResult {
  readonly dLogits: Mat // [T, V] (p − onehot) / T
  readonly dLnFinalOut: Mat // [T, d]
  readonly dLnFinalIn: Mat // [T, d]
  /** in block order (blocks[0] is the first block), though computed last to first */
  readonly blocks: ReadonlyArray<BlockGrads>
  /** dL/d(token embedding + position embedding) = dResidPre of the first block */
  readonly dEmbed: Mat // [T, d]
  /** dL/dθ under the parameters' GPT-2 names and shapes */
  readonly grads: Params
}

/** dL/dlogits for the mean cross-entropy: (softmax(logits) − onehot(target)) / T. */
export const lossBackward = (f: ForwardCache): Mat => {
  const { rows: T, cols: V } = f.probs
  return map(f.probs, (p, i) => (p - (f.targets[Math.floor(i / V)] === i % V ? 1 : 0)) / T)
}

const addInto = (target: Float64Array, source: ArrayLike<number>): void => {
  for (let i = 0; i < source.length; i++) target[i] += source[i]
}

export const backward = (
  c: TinyConfig,
  p: Params,
  f: ForwardCache,
  overrides: Partial<BackwardRules> = {}
): BackwardResult => {
  const rules: BackwardRules = { ...defaultRules, ...overrides }
  const grads = zerosLike(p)
  const T = f.inputs.length
  const d = c.dModel
  const dh = dHead(c)

  const dLogits = lossBackward(f)
  const unembed = rules.unembed(dLogits, f.lnFinal.y, asMat(unembedding(c, p)))
  addInto(grads[c.tied ? "wte.weight" : "lm_head.weight"].data, unembed.dU.data)
  const dLnFinalOut = unembed.dX
  const lnf = rules.layerNorm("ln_f", dLnFinalOut, f.lnFinal, p["ln_f.weight"].data)
  grads["ln_f.weight"].data.set(lnf.dWeight)
  grads["ln_f.bias"].data.set(lnf.dBias)

  const blockGrads: BlockGrads[] = []
  let dResid = lnf.dX
  for (let l = c.layers - 1; l >= 0; l--) {
    const b = f.blocks[l]
    const w = (name: string) => p[`h.${l}.${name}`]
    const g = (name: string) => grads[`h.${l}.${name}`].data
    const dResidPost = dResid

    // residual: resid_post = resid_mid + mlp_out, so both receive the same gradient
    const dMlpOut = dResidPost
    const proj = rules.linear("mlp.c_proj", dMlpOut, b.mlpPost, asMat(w("mlp.c_proj.weight")))
    g("mlp.c_proj.weight").set(proj.dW.data)
    g("mlp.c_proj.bias").set(proj.db)
    const dMlpPre = rules.gelu(c.gelu, proj.dX, b.mlpPre)
    const fc = rules.linear("mlp.c_fc", dMlpPre, b.ln2.y, asMat(w("mlp.c_fc.weight")))
    g("mlp.c_fc.weight").set(fc.dW.data)
    g("mlp.c_fc.bias").set(fc.db)
    const ln2 = rules.layerNorm("ln_2", fc.dX, b.ln2, w("ln_2.weight").data)
    g("ln_2.weight").set(ln2.dWeight)
    g("ln_2.bias").set(ln2.dBias)
    const dResidMid = add(dResidPost, ln2.dX)

    // residual: resid_mid = resid_pre + attn_out
    const dAttnOut = dResidMid
    const o = rules.linear("attn.c_proj", dAttnOut, b.zcat, asMat(w("attn.c_proj.weight")))
    g("attn.c_proj.weight").set(o.dW.data)
    g("attn.c_proj.bias").set(o.db)
    const heads: HeadGrads[] = b.heads.map((hd, h) => {
      const dZ = mat(T, dh)
      for (let t = 0; t < T; t++) for (let i = 0; i < dh; i++) dZ.data[t * dh + i] = o.dX.data[t * d + h * dh + i]
      const dPattern = matmulNT(dZ, hd.v) // z = A·V ⇒ dA = dZ·Vᵀ
      const dV = matmulTN(hd.pattern, dZ) //          dV = Aᵀ·dZ
      const dScores = rules.softmax(dPattern, hd.pattern)
      const dRaw = scale(dScores, 1 / Math.sqrt(dh))
      const dQ = matmul(dRaw, hd.k) // raw = Q·Kᵀ ⇒ dQ = dRaw·K
      const dK = matmulTN(dRaw, hd.q) //              dK = dRawᵀ·Q
      return { dZ, dPattern, dV, dScores, dRaw, dQ, dK }
    })
    const dQkv = concatCols([...heads.map((x) => x.dQ), ...heads.map((x) => x.dK), ...heads.map((x) => x.dV)])
    const qkv = rules.linear("attn.c_attn", dQkv, b.ln1.y, asMat(w("attn.c_attn.weight")))
    g("attn.c_attn.weight").set(qkv.dW.data)
    g("attn.c_attn.bias").set(qkv.db)
    const ln1 = rules.layerNorm("ln_1", qkv.dX, b.ln1, w("ln_1.weight").data)
    g("ln_1.weight").set(ln1.dWeight)
    g("ln_1.bias").set(ln1.dBias)
    const dResidPre = add(dResidMid, ln1.dX)

    blockGrads.unshift({
      dResidPost,
      dMlpOut,
      dMlpPost: proj.dX,
      dMlpPre,
      dLn2Out: fc.dX,
      dLn2In: ln2.dX,
      dResidMid,
      dAttnOut,
      dZcat: o.dX,
      heads,
      dQkv,
      dLn1Out: qkv.dX,
      dLn1In: ln1.dX,
      dResidPre
    })
    dResid = dResidPre
  }

  // resid_pre = wte[id_t] + wpe[t]: row t of the gradient goes to position t and is added to
  // the row of its token id (a token that occurs twice collects both rows)
  const dEmbed = dResid
  const dWte = grads["wte.weight"].data
  const dWpe = grads["wpe.weight"].data
  for (let t = 0; t < T; t++) {
    const r = row(dEmbed, t)
    addInto(dWte.subarray(f.inputs[t] * d, (f.inputs[t] + 1) * d), r)
    addInto(dWpe.subarray(t * d, (t + 1) * d), r)
  }
  return { dLogits, dLnFinalOut, dLnFinalIn: lnf.dX, blocks: blockGrads, dEmbed, grads }
}
