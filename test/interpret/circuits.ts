// Hand-built transformers whose every head has a known job, so the probes can be checked against
// answers known in advance. The residual stream is laid out in labelled blocks of one-hot codes:
//     TOK  [0, V)          the current token              (written by wte)
//     POS  [V, V+C)        the position                   (written by wpe)
//     PREV [V+C, 2V+C)     the previous token             (written by L0H0)
//     OUT  [2V+C, 3V+C)    the predicted next token       (written by L1H0, read by lm_head)
// Layer 0: H0 previous-token, H1 first-token (attention sink), H2 all zero (uniform, "broad").
// Layer 1: H0 induction (query: my token; key: your previous token; value: your token → OUT),
//          H1 self, H2 duplicate-token (same token, not myself). MLPs are zero.
// A matching query/key pair scores q·k/√d_head = 30, so every pattern is one-hot to within e⁻³⁰.
// LayerNorm is made the identity on these inputs: a residual with n ones in d dimensions has mean
// m = n/d and variance v = n/d − m², so γ = √(v + ε), β = m undo the normalisation exactly.
import type { ModelConfig } from "../../src/model/config.ts"
import { gptFromValues, type GPT } from "../../src/model/gpt.ts"
import { parameterShapes } from "../../src/model/config.ts"

export const V = 12
export const C = 24
export const D = 120
export const H = 3
export const DH = D / H
export const BOS = V - 1
const TOK = 0
const POS = V
const PREV = V + C
const OUT = 2 * V + C
/** Gain on each query and key coordinate: g²/√d_head = 30. */
const G = Math.sqrt(30 * Math.sqrt(DH))
/** lm_head gain: OUT = e_t gives token t a logit ≈ 22 above the rest after ln_f. */
const OUT_GAIN = 4

export const circuitConfig: ModelConfig = {
  vocabSize: V,
  context: C,
  dModel: D,
  layers: 2,
  heads: H,
  dFF: 4,
  dropout: 0,
  position: "learned",
  tied: false,
  gelu: "tanh",
  lnEps: 1e-5
}

/** The logit gap a one-hot OUT block buys, for loss expectations. */
export const outLogitGap = OUT_GAIN / Math.sqrt(4 / D - (4 / D) ** 2 + 1e-5)

export const circuitModel = (): GPT => {
  const values = new Map<string, { shape: number[]; data: Float32Array }>()
  for (const [name, shape] of parameterShapes(circuitConfig)) {
    values.set(name, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) })
  }
  const set = (name: string, row: number, col: number, value: number) => {
    const v = values.get(name)!
    v.data[row * v.shape[1] + col] = value
  }
  const fill = (name: string, value: (i: number) => number) => {
    const v = values.get(name)!
    for (let i = 0; i < v.data.length; i++) v.data[i] = value(i)
  }
  for (let t = 0; t < V; t++) set("wte.weight", t, TOK + t, 1)
  for (let p = 0; p < C; p++) set("wpe.weight", p, POS + p, 1)
  for (let t = 0; t < V; t++) set("lm_head.weight", t, OUT + t, OUT_GAIN)
  fill("ln_f.weight", () => 1)

  // LayerNorm as identity for residuals holding n ones.
  const identityNorm = (prefix: string, n: number) => {
    const m = n / D
    const s = Math.sqrt(n / D - m * m + circuitConfig.lnEps)
    fill(`${prefix}.weight`, () => s)
    fill(`${prefix}.bias`, () => m)
  }
  identityNorm("h.0.ln_1", 2) // TOK + POS
  identityNorm("h.1.ln_1", 3) // TOK + POS + PREV
  fill("h.0.ln_2.weight", () => 1)
  fill("h.1.ln_2.weight", () => 1)

  // c_attn columns: q in [0, D), k in [D, 2D), v in [2D, 3D); head h owns [h·DH, (h+1)·DH) of each.
  const q = (layer: number, row: number, head: number, j: number, value: number) => set(`h.${layer}.attn.c_attn.weight`, row, head * DH + j, value)
  const k = (layer: number, row: number, head: number, j: number, value: number) => set(`h.${layer}.attn.c_attn.weight`, row, D + head * DH + j, value)
  const v = (layer: number, row: number, head: number, j: number, value: number) => set(`h.${layer}.attn.c_attn.weight`, row, 2 * D + head * DH + j, value)
  const o = (layer: number, head: number, j: number, col: number, value: number) => set(`h.${layer}.attn.c_proj.weight`, head * DH + j, col, value)

  // L0H0 previous-token: query "I am at p", key "I am at p'+1"; value: my token → PREV.
  for (let p = 0; p < C; p++) {
    q(0, POS + p, 0, p, G)
    k(0, POS + p, 0, p + 1, G)
  }
  for (let t = 0; t < V; t++) {
    v(0, TOK + t, 0, t, 1)
    o(0, 0, t, PREV + t, 1)
  }
  // L0H1 first-token: a constant query (the bias) meets a key only position 0 has.
  values.get("h.0.attn.c_attn.bias")!.data[1 * DH + 0] = G
  k(0, POS + 0, 1, 0, G)

  // L1H0 induction: query my token, key your previous token; value your token → OUT.
  for (let t = 0; t < V; t++) {
    q(1, TOK + t, 0, t, G)
    k(1, PREV + t, 0, t, G)
    v(1, TOK + t, 0, t, 1)
    o(1, 0, t, OUT + t, 1)
  }
  // L1H1 self: query and key both "I am at p".
  for (let p = 0; p < C; p++) {
    q(1, POS + p, 1, p, G)
    k(1, POS + p, 1, p, G)
  }
  // L1H2 duplicate-token: q·k = g²([same token] − [same position]): an earlier copy wins, itself scores 0.
  for (let t = 0; t < V; t++) {
    q(1, TOK + t, 2, t, G)
    k(1, TOK + t, 2, t, G)
  }
  for (let p = 0; p < C; p++) {
    q(1, POS + p, 2, V + p, G)
    k(1, POS + p, 2, V + p, -G)
  }
  return gptFromValues(circuitConfig, values)
}

/** BOS, then 1…R, then 1…R again. */
export const repeatedText = (R: number): number[] => {
  const segment = Array.from({ length: R }, (_, i) => i + 1)
  return [BOS, ...segment, ...segment]
}
