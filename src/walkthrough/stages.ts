// The walkthrough as a document: one stage per step of the computation, in order, each with
// a short explanation, its formulas (TeX for the HTML page, Unicode text for the terminal),
// and the numbers themselves. Renderers read only these stages.
import type { AdamWOptions, AdamWResult } from "./adamw.ts"
import {
  type BackwardResult,
  layerNormBackwardCompact,
  layerNormBackwardFull,
  layerNormJacobian,
  geluDerivative,
  softmaxJacobian
} from "./backward.ts"
import type { GradCheckReport } from "./check.ts"
import type { ForwardCache, LayerNormCache } from "./forward.ts"
import { type Mat, map, maxAbs, maxAbsDiff, row } from "./math.ts"
import { type Params, type TinyConfig, countParams, dHead, LN_EPS, WEIGHT_STD, NONZERO_BIAS_STD, NONZERO_LN_BIAS_STD, NONZERO_LN_WEIGHT_STD } from "./model.ts"
import type { Tokenized } from "./vocab.ts"

export type Phase = "setup" | "forward" | "backward" | "update" | "verify"

export interface Formula {
  /** TeX, rendered by KaTeX in the HTML document */
  readonly tex: string
  /** the same in Unicode text, for the terminal */
  readonly text: string
}

export interface StageValue {
  readonly label: string
  /** the symbol in TeX, shown next to the label in the HTML document */
  readonly tex?: string
  /** the shape as displayed: [n] or [rows, cols] */
  readonly shape: ReadonlyArray<number>
  readonly data: ArrayLike<number>
  readonly rowLabels?: ReadonlyArray<string>
  readonly colLabels?: ReadonlyArray<string>
  /** the parameter, gradient or hook name this value is exported under */
  readonly key?: string
}

export interface Fact {
  readonly label: string
  readonly value: string
}

export interface Table {
  readonly columns: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
}

export interface Stage {
  readonly name: string
  readonly phase: Phase
  readonly title: string
  readonly prose: string
  readonly formulas: ReadonlyArray<Formula>
  readonly facts: ReadonlyArray<Fact>
  readonly values: ReadonlyArray<StageValue>
  readonly table?: Table
  /** false when something this stage demonstrates did not hold (e.g. a failed gradient check) */
  readonly ok?: boolean
}

/** Every stage name, in the order of the computation (what `--stage` accepts). */
export const STAGE_NAMES = [
  "tokens",
  "init",
  "embed",
  "ln1",
  "qkv",
  "scores",
  "pattern",
  "weighted-values",
  "attn-out",
  "ln2",
  "mlp",
  "mlp-out",
  "ln-final",
  "logits",
  "loss",
  "grad-logits",
  "grad-unembed",
  "grad-ln-final",
  "grad-mlp-out",
  "grad-gelu",
  "grad-mlp-in",
  "grad-ln2",
  "grad-attn-out",
  "grad-weighted-values",
  "grad-softmax",
  "grad-scores",
  "grad-qkv",
  "grad-ln1",
  "grad-embed",
  "adamw",
  "second-forward",
  "verify"
] as const
export type StageName = (typeof STAGE_NAMES)[number]

export interface StageInputs {
  readonly options: {
    readonly text: string
    readonly seed: number
    readonly init: string
    readonly adamw: AdamWOptions
  }
  readonly config: TinyConfig
  readonly tokens: Tokenized
  readonly params: Params
  readonly forward: ForwardCache
  readonly backward: BackwardResult
  readonly adamw: AdamWResult
  readonly after: ForwardCache
  readonly check: GradCheckReport | undefined
}

const fmt = (x: number, digits = 6): string => (Number.isFinite(x) ? Number(x.toPrecision(digits)).toString() : String(x))
const f = (tex: string, text: string): Formula => ({ tex, text })

export const buildStages = (s: StageInputs): Stage[] => {
  const { config: c, tokens, params: p, forward: fw, backward: bw } = s
  const T = tokens.inputs.length
  const d = c.dModel
  const dh = dHead(c)
  const V = c.vocab
  const vocab = tokens.vocab
  const pos = tokens.inputs.map((id, t) => `${t} ${vocab[id]}`)
  const posOnly = tokens.inputs.map((_, t) => `${t}`)
  const vocabLabels = vocab.map((w, i) => `${i} ${w}`)
  const b = fw.blocks[0]
  const g = bw.blocks[0]
  const U = c.tied ? "wte.weight" : "lm_head.weight"
  const Utex = c.tied ? "W_E" : "W_U"

  const m = (label: string, tex: string | undefined, x: Mat, extra: Partial<StageValue> = {}): StageValue => ({
    label,
    ...(tex === undefined ? {} : { tex }),
    shape: [x.rows, x.cols],
    data: x.data,
    ...extra
  })
  /** [T, *] activations: rows labelled by position and token */
  const act = (label: string, tex: string, x: Mat, key?: string): StageValue =>
    m(label, tex, x, { rowLabels: pos, ...(key === undefined ? {} : { key }) })
  const perPos = (label: string, tex: string, v: ArrayLike<number>): StageValue => ({
    label,
    tex,
    shape: [v.length],
    data: v,
    colLabels: pos
  })
  const param = (name: string, label = name): StageValue => {
    const t = p[name]
    return {
      label,
      shape: t.shape,
      data: t.data,
      key: name,
      ...(name === "wte.weight" || name === "lm_head.weight" ? { rowLabels: vocabLabels } : {}),
      ...(name === "wpe.weight" ? { rowLabels: Array.from({ length: c.context }, (_, i) => `pos ${i}`) } : {})
    }
  }
  const grad = (name: string, tex: string): StageValue => ({ ...param(name, `dL/d ${name}`), data: bw.grads[name].data, tex, key: `grad:${name}` })
  const perHead = (label: string, tex: (h: number) => string, pick: (h: number) => Mat, extra: Partial<StageValue> = {}): StageValue[] =>
    Array.from({ length: c.heads }, (_, h) => m(`head ${h}: ${label}`, tex(h), pick(h), { rowLabels: pos, ...extra }))
  const square = { rowLabels: pos, colLabels: posOnly }

  const lnForward = (name: string, ln: LayerNormCache, prefix: string, hook: string): Stage => ({
    name,
    phase: "forward",
    title: `LayerNorm ${prefix}`,
    prose:
      "Each position's vector is normalised on its own: subtract its mean, divide by its standard deviation " +
      "(the biased variance, divided by d, plus ε = 1e-5 inside the root), then scale by γ and shift by β, both learned per feature.",
    formulas: [
      f(String.raw`\mu_t = \frac{1}{d}\sum_{i=1}^{d} x_{t,i}`, "μ_t = (1/d) Σ_i x_t,i"),
      f(String.raw`\sigma_t^2 = \frac{1}{d}\sum_{i=1}^{d} (x_{t,i}-\mu_t)^2, \qquad s_t = \sqrt{\sigma_t^2 + \varepsilon}`, "σ²_t = (1/d) Σ_i (x_t,i − μ_t)²,   s_t = √(σ²_t + ε)"),
      f(String.raw`\hat{x}_{t,i} = \frac{x_{t,i}-\mu_t}{s_t}, \qquad y_{t,i} = \gamma_i\,\hat{x}_{t,i} + \beta_i`, "x̂_t,i = (x_t,i − μ_t) / s_t,   y_t,i = γ_i · x̂_t,i + β_i")
    ],
    facts: [{ label: "ε", value: String(LN_EPS) }],
    values: [
      act("input x", "x", ln.x),
      perPos("mean μ", String.raw`\mu`, ln.mean),
      perPos("variance σ²", String.raw`\sigma^2`, ln.variance),
      perPos("s = √(σ² + ε)", "s", ln.std),
      act("normalised x̂", String.raw`\hat{x}`, ln.xhat),
      { ...param(`${prefix}.weight`, `γ (${prefix}.weight)`), tex: String.raw`\gamma` },
      { ...param(`${prefix}.bias`, `β (${prefix}.bias)`), tex: String.raw`\beta` },
      act("output y", "y", ln.y, hook)
    ]
  })

  const lnBackward = (name: string, site: string, dY: Mat, dX: Mat, residual: { label: string; tex: string; from: Mat; sum: Mat; key: string }): Stage => ({
    name,
    phase: "backward",
    title: `Backward through LayerNorm ${site}, and the residual split`,
    prose:
      `The gradient reaches ${site}'s output; its parameters get dγ = Σ_t dy ⊙ x̂ and dβ = Σ_t dy. ` +
      "The input gradient uses the compact form of the LayerNorm Jacobian (see grad-ln-final for the full matrix). " +
      "The residual connection copied x into two paths, so its gradient is the sum of the two.",
    formulas: [
      f(String.raw`\frac{\partial L}{\partial \gamma} = \sum_t \frac{\partial L}{\partial y_t}\odot\hat{x}_t, \qquad \frac{\partial L}{\partial \beta} = \sum_t \frac{\partial L}{\partial y_t}`, "dγ = Σ_t dy_t ⊙ x̂_t,   dβ = Σ_t dy_t"),
      f(String.raw`g = \frac{\partial L}{\partial y}\odot\gamma, \qquad \frac{\partial L}{\partial x} = \frac{1}{s}\Big(g - \overline{g} - \hat{x}\,\overline{g\odot\hat{x}}\Big)`, "g = dy ⊙ γ,   dx = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / s"),
      f(residual.tex, residual.label)
    ],
    facts: [],
    values: [
      act("dL/dy (LayerNorm output)", String.raw`\partial L/\partial y`, dY),
      { ...grad(`${site}.weight`, String.raw`\partial L/\partial\gamma`) },
      { ...grad(`${site}.bias`, String.raw`\partial L/\partial\beta`) },
      act("dL/dx through LayerNorm", String.raw`\partial L/\partial x`, dX),
      act("gradient arriving along the residual", String.raw`\partial L/\partial x_{\text{skip}}`, residual.from),
      act("sum: dL/d(residual stream)", String.raw`\partial L/\partial x`, residual.sum, residual.key)
    ]
  })

  // ---------------------------------------------------------------- setup
  const stages: Stage[] = []
  stages.push({
    name: "tokens",
    phase: "setup",
    title: "Text to token ids",
    prose:
      "A word-level vocabulary: <BOS>, <EOS>, then each word in order of first appearance. The sequence is wrapped in " +
      "<BOS> … <EOS>; the model reads every token but the last and, at each position, must predict the next one.",
    formulas: [f(String.raw`\text{inputs} = (t_0,\dots,t_{n-2}), \qquad \text{targets} = (t_1,\dots,t_{n-1})`, "inputs = tokens[0..n−2],   targets = tokens[1..n−1]")],
    facts: [
      { label: "text", value: s.options.text },
      { label: "vocabulary", value: vocab.map((w, i) => `${i}=${w}`).join("  ") },
      { label: "tokens", value: tokens.tokens.map((id) => `${vocab[id]}(${id})`).join(" ") },
      { label: "inputs", value: tokens.inputs.join(" ") },
      { label: "targets", value: tokens.targets.join(" ") },
      { label: "positions T", value: String(T) }
    ],
    values: [
      { label: "input ids", shape: [T], data: tokens.inputs, colLabels: posOnly },
      { label: "target ids", shape: [T], data: tokens.targets, colLabels: tokens.targets.map((id, t) => `${t}→${vocab[id]}`) }
    ]
  })
  const cprojStd = WEIGHT_STD / Math.sqrt(2 * c.layers)
  stages.push({
    name: "init",
    phase: "setup",
    title: "The model and its initial parameters",
    prose:
      `One pre-LN transformer block, the same as src/model/: d_model ${d}, ${c.heads} heads of ${dh}, d_ff ${c.dFF}, ` +
      `${c.layers} layer, vocabulary ${V}, context ${c.context}, ${c.tied ? "unembedding tied to wte" : "separate lm_head"}, GELU ${c.gelu}. ` +
      "Each tensor draws from its own seeded stream (seed, name), so no two matrices start equal. " +
      (s.options.init === "nonzero"
        ? "Biases and LayerNorm parameters start small and random (init \"nonzero\") rather than 0 and 1, so that no gradient formula is checked against a trivial value."
        : "Biases start at 0 and LayerNorm at γ = 1, β = 0 (init \"gpt2\")."),
    formulas: [
      f(String.raw`W \sim \mathcal{N}(0,\,${WEIGHT_STD}^2), \qquad W_{\text{c\_proj}} \sim \mathcal{N}\big(0,\,(${WEIGHT_STD}/\sqrt{2L})^2\big)`, `W ~ N(0, ${WEIGHT_STD}²),   W_c_proj ~ N(0, (${WEIGHT_STD}/√(2L))²) = N(0, ${fmt(cprojStd, 4)}²)`),
      s.options.init === "nonzero"
        ? f(String.raw`b \sim \mathcal{N}(0,\,${NONZERO_BIAS_STD}^2), \quad \gamma \sim 1 + \mathcal{N}(0,\,${NONZERO_LN_WEIGHT_STD}^2), \quad \beta \sim \mathcal{N}(0,\,${NONZERO_LN_BIAS_STD}^2)`, `b ~ N(0, ${NONZERO_BIAS_STD}²),   γ ~ 1 + N(0, ${NONZERO_LN_WEIGHT_STD}²),   β ~ N(0, ${NONZERO_LN_BIAS_STD}²)`)
        : f(String.raw`b = 0, \quad \gamma = 1, \quad \beta = 0`, "b = 0,   γ = 1,   β = 0")
    ],
    facts: [
      { label: "seed", value: String(s.options.seed) },
      { label: "init", value: s.options.init },
      { label: "parameters", value: String(countParams(p)) }
    ],
    values: Object.keys(p).map((name) => param(name))
  })

  // ---------------------------------------------------------------- forward
  stages.push({
    name: "embed",
    phase: "forward",
    title: "Token and position embeddings",
    prose: "Row t of the residual stream starts as the embedding of token t plus the embedding of position t.",
    formulas: [f(String.raw`x^{(0)}_t = W_E[\text{id}_t] + W_P[t]`, "x⁰_t = W_E[id_t] + W_P[t]")],
    facts: [],
    values: [
      act("token embeddings W_E[id_t]", String.raw`W_E[\text{id}]`, fw.tokEmbed, "hook_embed"),
      act("position embeddings W_P[t]", String.raw`W_P[t]`, fw.posEmbed, "hook_pos_embed"),
      act("residual stream x⁰", String.raw`x^{(0)}`, b.residPre, "blocks.0.hook_resid_pre")
    ]
  })
  stages.push(lnForward("ln1", b.ln1, "h.0.ln_1", "blocks.0.ln1.hook_normalized"))
  stages.push({
    name: "qkv",
    phase: "forward",
    title: "Queries, keys and values",
    prose:
      `One matrix W_attn [${d}, ${3 * d}] makes all three at once; its columns are [q | k | v], and within each, head h owns columns h·${dh} … (h+1)·${dh}−1.`,
    formulas: [
      f(String.raw`[\,Q \mid K \mid V\,] = y\,W_{\text{attn}} + b_{\text{attn}}`, "[Q | K | V] = y · W_attn + b_attn"),
      f(String.raw`Q_h = Q_{[:,\; h d_h : (h+1) d_h]}`, "Q_h = Q[:, h·d_head : (h+1)·d_head], and likewise K_h, V_h")
    ],
    facts: [],
    values: [
      act("[Q | K | V]", String.raw`[Q|K|V]`, b.qkv),
      ...b.heads.flatMap((hd, h) => [
        act(`head ${h}: Q`, `Q_${h}`, hd.q),
        act(`head ${h}: K`, `K_${h}`, hd.k),
        act(`head ${h}: V`, `V_${h}`, hd.v)
      ])
    ]
  })
  stages.push({
    name: "scores",
    phase: "forward",
    title: "Attention scores, scaling and the causal mask",
    prose:
      `Each position (dest, row) scores every position (src, column) by a dot product of query and key, divided by √d_head = √${dh} ` +
      "to keep the scores' variance near 1. A position may not look ahead, so scores above the diagonal become −∞.",
    formulas: [f(String.raw`S_h = \frac{Q_h K_h^\top}{\sqrt{d_h}}, \qquad S_h[i,j] = -\infty \ \text{ for } j > i`, `S_h = Q_h K_hᵀ / √${dh},   S_h[i, j] = −∞ for j > i`)],
    facts: [],
    values: [
      ...perHead("Q·Kᵀ", (h) => String.raw`Q_${h}K_${h}^\top`, (h) => b.heads[h].raw, { colLabels: posOnly }),
      ...perHead("scaled and masked S", (h) => `S_${h}`, (h) => b.heads[h].scores, { colLabels: posOnly, key: "blocks.0.attn.hook_attn_scores" })
    ]
  })
  stages.push({
    name: "pattern",
    phase: "forward",
    title: "Softmax: the attention pattern",
    prose: "Each row becomes a probability distribution over the positions it may see; masked entries get exactly 0.",
    formulas: [f(String.raw`A_h[i,j] = \frac{e^{S_h[i,j]}}{\sum_{k \le i} e^{S_h[i,k]}}`, "A_h[i, j] = exp(S_h[i, j]) / Σ_{k ≤ i} exp(S_h[i, k])")],
    facts: [],
    values: perHead("pattern A", (h) => `A_${h}`, (h) => b.heads[h].pattern, { ...square, key: "blocks.0.attn.hook_pattern" })
  })
  stages.push({
    name: "weighted-values",
    phase: "forward",
    title: "Weighted values and head concatenation",
    prose: "Each head mixes the value vectors of the positions it attends to; the heads' outputs are laid side by side.",
    formulas: [f(String.raw`z_h = A_h V_h, \qquad z = [\,z_0 \mid z_1\,]`, "z_h = A_h · V_h,   z = [z_0 | z_1]")],
    facts: [],
    values: [...perHead("z", (h) => `z_${h}`, (h) => b.heads[h].z), act("concatenated z", "z", b.zcat)]
  })
  stages.push({
    name: "attn-out",
    phase: "forward",
    title: "Output projection and the first residual",
    prose: "W_O mixes the heads back into the residual stream, which adds the result to what it already carried.",
    formulas: [
      f(String.raw`a = z\,W_O + b_O`, "a = z · W_O + b_O"),
      f(String.raw`x^{(1)} = x^{(0)} + a`, "x¹ = x⁰ + a")
    ],
    facts: [],
    values: [
      param("h.0.attn.c_proj.weight", "W_O (h.0.attn.c_proj.weight)"),
      act("attention output a", "a", b.attnOut, "blocks.0.hook_attn_out"),
      act("residual x¹", String.raw`x^{(1)}`, b.residMid, "blocks.0.hook_resid_mid")
    ]
  })
  stages.push(lnForward("ln2", b.ln2, "h.0.ln_2", "blocks.0.ln2.hook_normalized"))
  const geluFormula =
    c.gelu === "tanh"
      ? f(String.raw`\text{GELU}(u) = \tfrac{1}{2}u\Big(1 + \tanh\big(\sqrt{2/\pi}\,(u + 0.044715\,u^3)\big)\Big)`, "GELU(u) = ½u(1 + tanh(√(2/π)(u + 0.044715u³)))")
      : f(String.raw`\text{GELU}(u) = u\,\Phi(u) = \tfrac{1}{2}u\big(1 + \operatorname{erf}(u/\sqrt{2})\big)`, "GELU(u) = u·Φ(u) = ½u(1 + erf(u/√2))")
  stages.push({
    name: "mlp",
    phase: "forward",
    title: "MLP: expand and GELU",
    prose: `Each position alone goes through a ${d} → ${c.dFF} linear map and the GELU non-linearity (${c.gelu === "tanh" ? "GPT-2's tanh approximation" : "the exact erf form"}).`,
    formulas: [f(String.raw`u = y\,W_{\text{fc}} + b_{\text{fc}}`, "u = y · W_fc + b_fc"), geluFormula],
    facts: [],
    values: [act("pre-activation u", "u", b.mlpPre, "blocks.0.mlp.hook_pre"), act("GELU(u)", String.raw`\text{GELU}(u)`, b.mlpPost, "blocks.0.mlp.hook_post")]
  })
  stages.push({
    name: "mlp-out",
    phase: "forward",
    title: "MLP projection and the second residual",
    prose: `The ${c.dFF} features are projected back to ${d} and added to the residual stream.`,
    formulas: [f(String.raw`m = \text{GELU}(u)\,W_{\text{proj}} + b_{\text{proj}}, \qquad x^{(2)} = x^{(1)} + m`, "m = GELU(u) · W_proj + b_proj,   x² = x¹ + m")],
    facts: [],
    values: [act("MLP output m", "m", b.mlpOut, "blocks.0.hook_mlp_out"), act("residual x²", String.raw`x^{(2)}`, b.residPost, "blocks.0.hook_resid_post")]
  })
  stages.push(lnForward("ln-final", fw.lnFinal, "ln_f", "ln_final.hook_normalized"))
  stages.push({
    name: "logits",
    phase: "forward",
    title: "Logits",
    prose: c.tied
      ? "The head is tied: the same matrix W_E that embedded tokens now scores every vocabulary word against each position's final vector."
      : "An untied head: its own matrix W_U (lm_head.weight) scores every vocabulary word against each position's final vector.",
    formulas: [f(String.raw`\ell = x_f\,${Utex}^\top`, `logits = x_f · ${c.tied ? "W_E" : "W_U"}ᵀ`)],
    facts: [],
    values: [param(U, `${Utex} (${U})`), m("logits", String.raw`\ell`, fw.logits, { rowLabels: pos, colLabels: vocab, key: "logits" })]
  })
  const targetProb = fw.targets.map((y, t) => fw.probs.data[t * V + y])
  stages.push({
    name: "loss",
    phase: "forward",
    title: "Softmax and cross-entropy",
    prose: `At each position the softmax of the logits is the model's guess at the next token; the loss is the mean over the ${T} positions of −log of the probability it gave the right one. A model that knows nothing scores ln ${V} = ${fmt(Math.log(V))}.`,
    formulas: [
      f(String.raw`p_t = \operatorname{softmax}(\ell_t), \qquad L = -\frac{1}{T}\sum_{t=0}^{T-1} \log p_t[\text{target}_t]`, "p_t = softmax(logits_t),   L = −(1/T) Σ_t log p_t[target_t]")
    ],
    facts: [
      { label: "loss L", value: fmt(fw.loss, 10) },
      { label: `ln V (uniform guess)`, value: fmt(Math.log(V), 10) }
    ],
    values: [
      m("probabilities p", "p", fw.probs, { rowLabels: pos, colLabels: vocab }),
      perPos("p[target]", String.raw`p_t[\text{target}_t]`, targetProb),
      perPos("−log p[target]", String.raw`-\log p_t[\text{target}_t]`, fw.losses)
    ]
  })

  // ---------------------------------------------------------------- backward
  stages.push({
    name: "grad-logits",
    phase: "backward",
    title: "Loss → logits",
    prose: "The gradient of softmax followed by cross-entropy is the famous shortcut: predicted probabilities minus the one-hot target, divided by T because the loss is a mean.",
    formulas: [f(String.raw`\frac{\partial L}{\partial \ell_t} = \frac{p_t - \text{onehot}(\text{target}_t)}{T}`, "dL/dlogits_t = (p_t − onehot(target_t)) / T")],
    facts: [{ label: "T", value: String(T) }],
    values: [m("dL/dlogits", String.raw`\partial L/\partial \ell`, bw.dLogits, { rowLabels: pos, colLabels: vocab })]
  })
  stages.push({
    name: "grad-unembed",
    phase: "backward",
    title: "Logits → unembedding and final vectors",
    prose: c.tied
      ? "logits = x_f · W_Eᵀ. W_E gets its first share of gradient here; more arrives at the embedding stage."
      : "logits = x_f · W_Uᵀ gives the gradient of lm_head.weight and of the final vectors.",
    formulas: [
      f(String.raw`\frac{\partial L}{\partial ${Utex}} = \Big(\frac{\partial L}{\partial \ell}\Big)^{\!\top} x_f, \qquad \frac{\partial L}{\partial x_f} = \frac{\partial L}{\partial \ell}\,${Utex}`, `dL/d${c.tied ? "W_E" : "W_U"} = (dL/dlogits)ᵀ · x_f,   dL/dx_f = dL/dlogits · ${c.tied ? "W_E" : "W_U"}`)
    ],
    facts: [],
    values: [
      m(`dL/d${Utex} from the logits`, String.raw`\partial L/\partial ${Utex}`, unembedShare(bw.dLogits, fw.lnFinal.y), { rowLabels: vocabLabels }),
      act("dL/dx_f", String.raw`\partial L/\partial x_f`, bw.dLnFinalOut)
    ]
  })
  const lastT = T - 1
  const jac = layerNormJacobian(fw.lnFinal, p["ln_f.weight"].data, lastT)
  const lnfFull = layerNormBackwardFull("ln_f", bw.dLnFinalOut, fw.lnFinal, p["ln_f.weight"].data)
  const lnfCompact = layerNormBackwardCompact("ln_f", bw.dLnFinalOut, fw.lnFinal, p["ln_f.weight"].data)
  const lnAgree = maxAbsDiff(lnfFull.dX.data, lnfCompact.dX.data)
  stages.push({
    name: "grad-ln-final",
    phase: "backward",
    title: "Backward through the final LayerNorm: full Jacobian and compact form",
    prose:
      "Every output of a LayerNorm row depends on every input of that row, through the mean and the standard deviation, so its Jacobian is a full " +
      `${d}×${d} matrix per position. Multiplying by it (shown for position ${lastT}) gives the same input gradient as the compact formula, which never builds the matrix.`,
    formulas: [
      f(String.raw`J_{ij} = \frac{\partial y_i}{\partial x_j} = \frac{\gamma_i}{s}\Big(\delta_{ij} - \frac{1}{d} - \frac{\hat{x}_i\hat{x}_j}{d}\Big), \qquad \frac{\partial L}{\partial x} = J^\top \frac{\partial L}{\partial y}`, "J_ij = ∂y_i/∂x_j = (γ_i / s)(δ_ij − 1/d − x̂_i x̂_j / d),   dx = Jᵀ · dy"),
      f(String.raw`g = \frac{\partial L}{\partial y}\odot\gamma, \qquad \frac{\partial L}{\partial x} = \frac{1}{s}\Big(g - \overline{g} - \hat{x}\,\overline{g\odot\hat{x}}\Big)`, "compact: g = dy ⊙ γ,   dx = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / s"),
      f(String.raw`\frac{\partial L}{\partial \gamma} = \sum_t \frac{\partial L}{\partial y_t}\odot\hat{x}_t, \qquad \frac{\partial L}{\partial \beta} = \sum_t \frac{\partial L}{\partial y_t}`, "dγ = Σ_t dy_t ⊙ x̂_t,   dβ = Σ_t dy_t")
    ],
    facts: [{ label: "max |full − compact| over all positions", value: lnAgree.toExponential(2) }],
    ok: lnAgree <= 1e-12 * maxAbs(lnfCompact.dX.data),
    values: [
      m(`Jacobian J at position ${lastT}`, "J", jac),
      act("dx by the full Jacobian", String.raw`J^\top\,\partial L/\partial y`, lnfFull.dX),
      act("dx by the compact form", String.raw`\partial L/\partial x`, lnfCompact.dX),
      grad("ln_f.weight", String.raw`\partial L/\partial\gamma`),
      grad("ln_f.bias", String.raw`\partial L/\partial\beta`)
    ]
  })
  stages.push({
    name: "grad-mlp-out",
    phase: "backward",
    title: "Residual split and the MLP projection (transpose)",
    prose:
      "x² = x¹ + m, so the gradient of x² flows unchanged into both x¹ and the MLP output m. Through m = h·W_proj + b: the weight's gradient pairs inputs with output gradients, and the input's gradient goes back through W_projᵀ.",
    formulas: [
      f(String.raw`\frac{\partial L}{\partial m} = \frac{\partial L}{\partial x^{(2)}}`, "dL/dm = dL/dx²  (and dL/dx¹ receives the same, plus what comes back through the MLP)"),
      f(String.raw`\frac{\partial L}{\partial W_{\text{proj}}} = h^\top \frac{\partial L}{\partial m}, \quad \frac{\partial L}{\partial b_{\text{proj}}} = \sum_t \frac{\partial L}{\partial m_t}, \quad \frac{\partial L}{\partial h} = \frac{\partial L}{\partial m} W_{\text{proj}}^\top`, "dW_proj = hᵀ · dm,   db_proj = Σ_t dm_t,   dh = dm · W_projᵀ   (h = GELU(u))")
    ],
    facts: [],
    values: [
      act("dL/dx² = dL/dm", String.raw`\partial L/\partial m`, g.dMlpOut),
      grad("h.0.mlp.c_proj.weight", String.raw`\partial L/\partial W_{\text{proj}}`),
      grad("h.0.mlp.c_proj.bias", String.raw`\partial L/\partial b_{\text{proj}}`),
      act("dL/dh (h = GELU(u))", String.raw`\partial L/\partial h`, g.dMlpPost)
    ]
  })
  const geluPrime = map(b.mlpPre, geluDerivative(c.gelu))
  stages.push({
    name: "grad-gelu",
    phase: "backward",
    title: "GELU derivative",
    prose: "GELU acts on each number alone, so its Jacobian is diagonal: multiply entry by entry by GELU′(u).",
    formulas: [
      c.gelu === "tanh"
        ? f(String.raw`\text{GELU}'(u) = \tfrac{1}{2}(1+\tanh w) + \tfrac{1}{2}u\,(1-\tanh^2 w)\sqrt{2/\pi}\,(1 + 3\cdot0.044715\,u^2), \quad w = \sqrt{2/\pi}\,(u + 0.044715\,u^3)`, "GELU′(u) = ½(1 + tanh w) + ½u(1 − tanh² w)·√(2/π)(1 + 3·0.044715u²),   w = √(2/π)(u + 0.044715u³)")
        : f(String.raw`\text{GELU}'(u) = \Phi(u) + u\,\varphi(u) = \tfrac{1}{2}\big(1+\operatorname{erf}(u/\sqrt2)\big) + \frac{u\,e^{-u^2/2}}{\sqrt{2\pi}}`, "GELU′(u) = Φ(u) + u·φ(u) = ½(1 + erf(u/√2)) + u·exp(−u²/2)/√(2π)"),
      f(String.raw`\frac{\partial L}{\partial u} = \frac{\partial L}{\partial h}\odot\text{GELU}'(u)`, "dL/du = dL/dh ⊙ GELU′(u)")
    ],
    facts: [],
    values: [act("GELU′(u)", String.raw`\text{GELU}'(u)`, geluPrime), act("dL/du", String.raw`\partial L/\partial u`, g.dMlpPre)]
  })
  stages.push({
    name: "grad-mlp-in",
    phase: "backward",
    title: "MLP expansion (transpose)",
    prose: "The same linear-layer rule for u = y·W_fc + b_fc.",
    formulas: [f(String.raw`\frac{\partial L}{\partial W_{\text{fc}}} = y^\top\frac{\partial L}{\partial u}, \quad \frac{\partial L}{\partial b_{\text{fc}}} = \sum_t \frac{\partial L}{\partial u_t}, \quad \frac{\partial L}{\partial y} = \frac{\partial L}{\partial u}\,W_{\text{fc}}^\top`, "dW_fc = yᵀ · du,   db_fc = Σ_t du_t,   dy = du · W_fcᵀ")],
    facts: [],
    values: [
      grad("h.0.mlp.c_fc.weight", String.raw`\partial L/\partial W_{\text{fc}}`),
      grad("h.0.mlp.c_fc.bias", String.raw`\partial L/\partial b_{\text{fc}}`),
      act("dL/dy (ln_2 output)", String.raw`\partial L/\partial y`, g.dLn2Out)
    ]
  })
  stages.push(
    lnBackward("grad-ln2", "h.0.ln_2", g.dLn2Out, g.dLn2In, {
      label: "dL/dx¹ = dL/dx² + (LayerNorm path)",
      tex: String.raw`\frac{\partial L}{\partial x^{(1)}} = \frac{\partial L}{\partial x^{(2)}} + \frac{\partial L}{\partial x}\Big|_{\text{ln\_2}}`,
      from: g.dResidPost,
      sum: g.dResidMid,
      key: "grad:blocks.0.hook_resid_mid"
    })
  )
  stages.push({
    name: "grad-attn-out",
    phase: "backward",
    title: "Attention output projection (transpose!) and the split into heads",
    prose:
      "x¹ = x⁰ + a, so dL/da = dL/dx¹. Through a = z·W_O + b_O the gradient of z goes back through W_Oᵀ — W_O is square, so forgetting the transpose gives no shape error, only wrong numbers (the test suite plants exactly this mistake and shows the checker catches it). Then dz is cut into the heads' columns.",
    formulas: [
      f(String.raw`\frac{\partial L}{\partial W_O} = z^\top\frac{\partial L}{\partial a}, \quad \frac{\partial L}{\partial b_O} = \sum_t\frac{\partial L}{\partial a_t}, \quad \frac{\partial L}{\partial z} = \frac{\partial L}{\partial a}\,W_O^\top`, "dW_O = zᵀ · da,   db_O = Σ_t da_t,   dz = da · W_Oᵀ"),
      f(String.raw`\frac{\partial L}{\partial z_h} = \Big(\frac{\partial L}{\partial z}\Big)_{[:,\; h d_h : (h+1) d_h]}`, "dz_h = dz[:, h·d_head : (h+1)·d_head]")
    ],
    facts: [],
    values: [
      act("dL/da = dL/dx¹", String.raw`\partial L/\partial a`, g.dAttnOut),
      grad("h.0.attn.c_proj.weight", String.raw`\partial L/\partial W_O`),
      grad("h.0.attn.c_proj.bias", String.raw`\partial L/\partial b_O`),
      act("dL/dz", String.raw`\partial L/\partial z`, g.dZcat),
      ...perHead("dL/dz_h", (h) => String.raw`\partial L/\partial z_${h}`, (h) => g.heads[h].dZ)
    ]
  })
  stages.push({
    name: "grad-weighted-values",
    phase: "backward",
    title: "Per-head values and the pattern",
    prose: "z_h = A_h·V_h is a matrix product, so the same two rules give the gradient of the pattern and of the values.",
    formulas: [f(String.raw`\frac{\partial L}{\partial A_h} = \frac{\partial L}{\partial z_h}\,V_h^\top, \qquad \frac{\partial L}{\partial V_h} = A_h^\top\,\frac{\partial L}{\partial z_h}`, "dA_h = dz_h · V_hᵀ,   dV_h = A_hᵀ · dz_h")],
    facts: [],
    values: [
      ...perHead("dL/dA", (h) => String.raw`\partial L/\partial A_${h}`, (h) => g.heads[h].dPattern, { colLabels: posOnly }),
      ...perHead("dL/dV", (h) => String.raw`\partial L/\partial V_${h}`, (h) => g.heads[h].dV)
    ]
  })
  const a0 = row(b.heads[0].pattern, lastT)
  const da0 = row(g.heads[0].dPattern, lastT)
  const sj = softmaxJacobian(a0)
  const viaJac = new Float64Array(T)
  for (let j = 0; j < T; j++) for (let i = 0; i < T; i++) viaJac[j] += sj.data[i * T + j] * da0[i]
  const smAgree = maxAbsDiff(viaJac, row(g.heads[0].dScores, lastT))
  stages.push({
    name: "grad-softmax",
    phase: "backward",
    title: "The softmax Jacobian",
    prose:
      `Each row of a pattern is a softmax of its row of scores, with Jacobian diag(a) − a·aᵀ (shown for head 0, row ${lastT}, the one that sees every position). ` +
      "Multiplying by it gives the compact row formula. Masked entries have a = 0, so no gradient reaches them.",
    formulas: [
      f(String.raw`\frac{\partial a_i}{\partial s_j} = a_i(\delta_{ij} - a_j), \qquad J = \operatorname{diag}(a) - a a^\top`, "∂a_i/∂s_j = a_i(δ_ij − a_j),   J = diag(a) − a·aᵀ"),
      f(String.raw`\frac{\partial L}{\partial s} = J^\top\frac{\partial L}{\partial a} = a \odot \Big(\frac{\partial L}{\partial a} - a^\top\frac{\partial L}{\partial a}\Big)`, "ds = Jᵀ · da = a ⊙ (da − a·da)")
    ],
    facts: [{ label: `max |Jᵀ·da − compact| (head 0, row ${lastT})`, value: smAgree.toExponential(2) }],
    ok: smAgree <= 1e-12 * maxAbs(viaJac),
    values: [
      m(`Jacobian J (head 0, row ${lastT})`, "J", sj, { rowLabels: posOnly, colLabels: posOnly }),
      { label: `Jᵀ·da (head 0, row ${lastT})`, tex: String.raw`J^\top\,\partial L/\partial a`, shape: [T], data: viaJac, colLabels: posOnly },
      ...perHead("dL/dS", (h) => String.raw`\partial L/\partial S_${h}`, (h) => g.heads[h].dScores, { colLabels: posOnly })
    ]
  })
  stages.push({
    name: "grad-scores",
    phase: "backward",
    title: "Scores → queries and keys",
    prose: `Undo the scaling by √${dh}, then the product Q·Kᵀ: each query gets the keys it scored, each key the queries that scored it.`,
    formulas: [f(String.raw`\frac{\partial L}{\partial (Q_hK_h^\top)} = \frac{1}{\sqrt{d_h}}\frac{\partial L}{\partial S_h}, \qquad \frac{\partial L}{\partial Q_h} = \frac{\partial L}{\partial (Q_hK_h^\top)}K_h, \qquad \frac{\partial L}{\partial K_h} = \Big(\frac{\partial L}{\partial (Q_hK_h^\top)}\Big)^{\!\top} Q_h`, `dR_h = dS_h / √${dh},   dQ_h = dR_h · K_h,   dK_h = dR_hᵀ · Q_h`)],
    facts: [],
    values: Array.from({ length: c.heads }, (_, h) => [
      m(`head ${h}: dL/d(QKᵀ)`, String.raw`\partial L/\partial (Q_${h}K_${h}^\top)`, g.heads[h].dRaw, square),
      act(`head ${h}: dL/dQ`, String.raw`\partial L/\partial Q_${h}`, g.heads[h].dQ),
      act(`head ${h}: dL/dK`, String.raw`\partial L/\partial K_${h}`, g.heads[h].dK)
    ]).flat()
  })
  stages.push({
    name: "grad-qkv",
    phase: "backward",
    title: "The QKV projection",
    prose: "Put the heads' dQ, dK, dV back in the columns they came from, then the linear-layer rule once more.",
    formulas: [
      f(String.raw`\frac{\partial L}{\partial [Q|K|V]} = \big[\,\partial Q_0\ \partial Q_1 \mid \partial K_0\ \partial K_1 \mid \partial V_0\ \partial V_1\,\big]`, "d[Q|K|V] = [dQ_0 dQ_1 | dK_0 dK_1 | dV_0 dV_1]"),
      f(String.raw`\frac{\partial L}{\partial W_{\text{attn}}} = y^\top \frac{\partial L}{\partial [Q|K|V]}, \quad \frac{\partial L}{\partial b_{\text{attn}}} = \sum_t \frac{\partial L}{\partial [Q|K|V]_t}, \quad \frac{\partial L}{\partial y} = \frac{\partial L}{\partial [Q|K|V]} W_{\text{attn}}^\top`, "dW_attn = yᵀ · d[Q|K|V],   db_attn = Σ_t d[Q|K|V]_t,   dy = d[Q|K|V] · W_attnᵀ")
    ],
    facts: [],
    values: [
      act("dL/d[Q|K|V]", String.raw`\partial L/\partial[Q|K|V]`, g.dQkv),
      grad("h.0.attn.c_attn.weight", String.raw`\partial L/\partial W_{\text{attn}}`),
      grad("h.0.attn.c_attn.bias", String.raw`\partial L/\partial b_{\text{attn}}`),
      act("dL/dy (ln_1 output)", String.raw`\partial L/\partial y`, g.dLn1Out)
    ]
  })
  stages.push(
    lnBackward("grad-ln1", "h.0.ln_1", g.dLn1Out, g.dLn1In, {
      label: "dL/dx⁰ = dL/dx¹ + (LayerNorm path)",
      tex: String.raw`\frac{\partial L}{\partial x^{(0)}} = \frac{\partial L}{\partial x^{(1)}} + \frac{\partial L}{\partial x}\Big|_{\text{ln\_1}}`,
      from: g.dResidMid,
      sum: g.dResidPre,
      key: "grad:blocks.0.hook_resid_pre"
    })
  )
  const embedPart = embeddingShare(tokens.inputs, bw.dEmbed, V)
  const repeated = vocab
    .map((w, id) => ({ w, at: tokens.inputs.flatMap((x, t) => (x === id ? [t] : [])) }))
    .filter((x) => x.at.length > 1)
  stages.push({
    name: "grad-embed",
    phase: "backward",
    title: "Embeddings, accumulated per token id",
    prose:
      "x⁰_t = W_E[id_t] + W_P[t]: row t of dL/dx⁰ is the gradient of position t's embedding, and it is added to the row of W_E for the token at t. " +
      "A token that occurs twice collects both rows; a token never read gets nothing here" +
      (c.tied ? ". With a tied head, W_E's total gradient also includes the share from the logits." : "."),
    formulas: [
      f(String.raw`\frac{\partial L}{\partial W_P[t]} = \frac{\partial L}{\partial x^{(0)}_t}, \qquad \frac{\partial L}{\partial W_E[v]} = \sum_{t\,:\,\text{id}_t = v} \frac{\partial L}{\partial x^{(0)}_t}${c.tied ? String.raw` + \Big(\frac{\partial L}{\partial \ell}\Big)^{\!\top}_{v} x_f` : ""}`, `dW_P[t] = dx⁰_t,   dW_E[v] = Σ_{t: id_t = v} dx⁰_t${c.tied ? " + (dlogitsᵀ · x_f)[v]" : ""}`)
    ],
    facts: repeated.length > 0 ? repeated.map((r) => ({ label: `"${r.w}" occurs at`, value: `positions ${r.at.join(", ")}: their rows are summed` })) : [{ label: "repeated tokens", value: "none" }],
    values: [
      act("dL/dx⁰", String.raw`\partial L/\partial x^{(0)}`, bw.dEmbed),
      grad("wpe.weight", String.raw`\partial L/\partial W_P`),
      m("dL/dW_E from the inputs", String.raw`\partial L/\partial W_E\big|_{\text{embed}}`, embedPart, { rowLabels: vocabLabels }),
      grad("wte.weight", String.raw`\partial L/\partial W_E`)
    ]
  })

  // ---------------------------------------------------------------- update
  const o = s.options.adamw
  const aw = s.adamw
  const example = (name: string, i: number): Fact => {
    const th = p[name].data[i]
    const gr = bw.grads[name].data[i]
    const lam = aw.decay[name]
    return {
      label: `${name}[${i}]`,
      value:
        `θ = ${fmt(th, 8)}, g = ${fmt(gr, 8)}, m = (1−β₁)g = ${fmt(aw.m[name].data[i], 8)}, v = (1−β₂)g² = ${fmt(aw.v[name].data[i], 8)}, ` +
        `m̂ = ${fmt(aw.mHat[name].data[i], 8)}, v̂ = ${fmt(aw.vHat[name].data[i], 8)}, ` +
        `θ′ = θ(1 − ${o.lr}·${lam}) − ${o.lr}·m̂/(√v̂ + ${o.eps}) = ${fmt(aw.params[name].data[i], 10)}`
    }
  }
  stages.push({
    name: "adamw",
    phase: "update",
    title: "One AdamW step",
    prose:
      "Adam keeps running averages of the gradient (m) and of its square (v), both starting at zero, so at step 1 they are corrected by dividing by 1 − βᵗ. " +
      "At t = 1 that makes m̂ = g and v̂ = g², so every parameter whose gradient is much larger than ε moves by almost exactly lr against the sign of its gradient. " +
      `Weight decay is decoupled: θ shrinks by the factor (1 − lr·λ), applied to matrices only${o.decayEmbeddings ? " (embeddings included)" : " (embeddings excluded)"}.`,
    formulas: [
      f(String.raw`m_t = \beta_1 m_{t-1} + (1-\beta_1)\,g, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\,g^2`, "m = β₁m + (1 − β₁)g,   v = β₂v + (1 − β₂)g²"),
      f(String.raw`\hat{m} = \frac{m_t}{1-\beta_1^t}, \qquad \hat{v} = \frac{v_t}{1-\beta_2^t}`, "m̂ = m / (1 − β₁ᵗ),   v̂ = v / (1 − β₂ᵗ)"),
      f(String.raw`\theta \leftarrow \theta\,(1 - \eta\lambda) - \eta\,\frac{\hat{m}}{\sqrt{\hat{v}} + \epsilon}`, "θ ← θ(1 − lr·λ) − lr · m̂ / (√v̂ + ε)")
    ],
    facts: [
      { label: "lr η", value: String(o.lr) },
      { label: "β₁", value: String(o.beta1) },
      { label: "β₂", value: String(o.beta2) },
      { label: "ε", value: String(o.eps) },
      { label: "weight decay λ", value: `${o.weightDecay} on matrices${o.decayEmbeddings ? " (wte, wpe included)" : " except wte, wpe"}; 0 on biases and LayerNorm` },
      { label: "step t", value: String(aw.step) },
      { label: "1 − β₁ᵗ", value: fmt(aw.biasCorrection1, 12) },
      { label: "1 − β₂ᵗ", value: fmt(aw.biasCorrection2, 12) },
      example("h.0.attn.c_attn.weight", 0),
      example("h.0.mlp.c_fc.bias", 0)
    ],
    values: Object.keys(p).flatMap((name) => {
      const base = param(name)
      return [
        { ...base, label: `${name}: g`, tex: "g", data: bw.grads[name].data, key: `grad:${name}` },
        { ...base, label: `${name}: m`, tex: "m", data: aw.m[name].data, key: `adamw.m:${name}` },
        { ...base, label: `${name}: v`, tex: "v", data: aw.v[name].data, key: `adamw.v:${name}` },
        { ...base, label: `${name}: Δθ`, tex: String.raw`\Delta\theta`, data: aw.delta[name].data, key: `adamw.delta:${name}` },
        { ...base, label: `${name}: θ′`, tex: String.raw`\theta'`, data: aw.params[name].data, key: `adamw.params:${name}` }
      ]
    })
  })
  const after = s.after
  const targetProbAfter = after.targets.map((y, t) => after.probs.data[t * V + y])
  stages.push({
    name: "second-forward",
    phase: "update",
    title: "Forward again: the loss went down",
    prose: "The same forward pass with the updated parameters.",
    formulas: [f(String.raw`L(\theta') < L(\theta)`, "L(θ′) < L(θ)")],
    facts: [
      { label: "loss before", value: fmt(fw.loss, 10) },
      { label: "loss after", value: fmt(after.loss, 10) },
      { label: "change", value: fmt(after.loss - fw.loss, 6) }
    ],
    ok: after.loss < fw.loss,
    values: [
      perPos("p[target] before", String.raw`p_t[\text{target}_t]`, targetProb),
      perPos("p[target] after", String.raw`p'_t[\text{target}_t]`, targetProbAfter),
      perPos("−log p[target] before", String.raw`-\log p_t`, fw.losses),
      perPos("−log p[target] after", String.raw`-\log p'_t`, after.losses),
      m("logits after", String.raw`\ell'`, after.logits, { rowLabels: pos, colLabels: vocab })
    ]
  })

  // ---------------------------------------------------------------- verify
  const ck = s.check
  stages.push({
    name: "verify",
    phase: "verify",
    title: "Every gradient checked by finite differences",
    prose:
      ck === undefined
        ? "The finite-difference check was not run (verify: false)."
        : "Each of the parameters is nudged up and down and the float64 loss recomputed; the slope (central differences with one Richardson step, error O(h⁴)) is compared with the backward pass. " +
          `An entry passes when |analytic − numeric| ≤ ${ck.options.rtol}·max(|analytic|, |numeric|) + ${ck.options.atol}.`,
    formulas: [f(String.raw`D(h) = \frac{L(\theta + h) - L(\theta - h)}{2h}, \qquad \frac{\partial L}{\partial \theta} \approx \frac{4\,D(h/2) - D(h)}{3}`, "D(h) = (L(θ + h) − L(θ − h)) / 2h,   dL/dθ ≈ (4·D(h/2) − D(h)) / 3")],
    facts:
      ck === undefined
        ? []
        : [
            { label: "h", value: String(ck.options.h) },
            { label: "entries checked", value: String(ck.entries) },
            { label: "max relative error", value: ck.maxRelError.toExponential(2) },
            { label: "result", value: ck.ok ? "all gradients agree" : `FAILED in ${ck.tensors.filter((t) => !t.ok).map((t) => t.name).join(", ")}` }
          ],
    ...(ck === undefined ? {} : { ok: ck.ok }),
    values: [],
    ...(ck === undefined
      ? {}
      : {
          table: {
            columns: ["parameter", "entries", "failures", "max rel. error", "max abs. error", "‖a − n‖/‖a‖"],
            rows: ck.tensors.map((t) => [
              t.name,
              String(t.entries),
              String(t.failures),
              t.maxRelError.toExponential(2),
              t.maxAbsError.toExponential(2),
              t.normRelError.toExponential(2)
            ])
          }
        })
  })
  return stages
}

/** dlogitsᵀ · x_f: the unembedding's gradient, [V, d] */
const unembedShare = (dLogits: Mat, xf: Mat): Mat => {
  const V = dLogits.cols
  const d = xf.cols
  const out = { rows: V, cols: d, data: new Float64Array(V * d) }
  for (let t = 0; t < dLogits.rows; t++)
    for (let v = 0; v < V; v++) for (let i = 0; i < d; i++) out.data[v * d + i] += dLogits.data[t * V + v] * xf.data[t * d + i]
  return out
}

/** Σ over positions of dL/dx⁰_t into the row of its token id, [V, d] */
const embeddingShare = (inputs: ReadonlyArray<number>, dEmbed: Mat, V: number): Mat => {
  const d = dEmbed.cols
  const out = { rows: V, cols: d, data: new Float64Array(V * d) }
  inputs.forEach((id, t) => {
    for (let i = 0; i < d; i++) out.data[id * d + i] += dEmbed.data[t * d + i]
  })
  return out
}

export const stageByName = (stages: ReadonlyArray<Stage>, name: string): Stage | undefined => stages.find((st) => st.name === name)
