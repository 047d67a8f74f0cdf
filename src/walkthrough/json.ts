// The walkthrough as JSON for other tools: options, config, tokens, every parameter, gradient,
// hook value and AdamW quantity under its name, and every stage's values. Numbers are written at
// full float64 precision (JavaScript's shortest round-trip form); the causal mask's −∞ is written
// as null, since JSON has no infinities.
import type { Params } from "./model.ts"
import type { Tensor } from "./math.ts"
import { type WalkthroughResult, toModelConfig } from "./walkthrough.ts"

export const JSON_FORMAT_VERSION = 1

const numbers = (data: ArrayLike<number>): Array<number | null> =>
  Array.from(data, (x) => (Number.isFinite(x) ? x : null))

const tensors = (ts: Record<string, Tensor> | Params) =>
  Object.fromEntries(Object.entries(ts).map(([name, t]) => [name, { shape: [...t.shape], data: numbers(t.data) }]))

/** A plain JSON-ready object (what `toJson` serialises). */
export const toJsonValue = (r: WalkthroughResult) => ({
  format: "glassbox-walkthrough",
  version: JSON_FORMAT_VERSION,
  options: r.options,
  config: r.config,
  model_config: toModelConfig(r.config),
  text: r.tokens.text,
  vocab: r.tokens.vocab,
  tokens: r.tokens.tokens,
  inputs: r.tokens.inputs,
  targets: r.tokens.targets,
  loss: r.loss,
  loss_after: r.lossAfter,
  losses: numbers(r.forward.losses),
  losses_after: numbers(r.after.losses),
  params: tensors(r.params),
  hooks: tensors(r.hooks),
  grads: tensors(r.grads),
  adamw: {
    step: r.adamw.step,
    bias_correction1: r.adamw.biasCorrection1,
    bias_correction2: r.adamw.biasCorrection2,
    weight_decay: r.adamw.decay,
    m: tensors(r.adamw.m),
    v: tensors(r.adamw.v),
    m_hat: tensors(r.adamw.mHat),
    v_hat: tensors(r.adamw.vHat),
    delta: tensors(r.adamw.delta),
    params: tensors(r.adamw.params)
  },
  check: r.check ?? null,
  stages: r.stages.map((s) => ({
    ...s,
    values: s.values.map((v) => ({ ...v, shape: [...v.shape], data: numbers(v.data) }))
  }))
})

export const toJson = (r: WalkthroughResult, indent?: number): string => JSON.stringify(toJsonValue(r), null, indent)
