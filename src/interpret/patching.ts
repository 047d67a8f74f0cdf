// Why this file exists: activation patching is the causal test of "where does the model keep the
// answer?". Run a clean prompt ("The Eiffel Tower is in" → " Paris") and a corrupted one that
// differs in one detail ("The Colosseum is in" → " Rome"). Then run the corrupted prompt again,
// but overwrite a single activation (one site) with its value from the clean run. If the answer
// flips back, that site carries the information that distinguishes the prompts.
//
// The metric is the logit difference at the last position, m = logit[answer] − logit[wrong],
// normalised so the corrupted run scores 0 and the clean run 1:
//     score(site) = (m_patched − m_corrupted) / (m_clean − m_corrupted)
// Sites swept: the residual stream entering each block at each position (blocks.L.hook_resid_pre),
// the attention output and the MLP output of each block at each position, and each head's output
// at all positions. A head's output is its slice of z [B, T, H, d_head] (the weighted values
// before c_proj), since c_proj is linear: attn_out = Σ_h z_h · W_O[h] + b, so replacing z_h
// replaces exactly head h's contribution.
//
// The normalisation divides by m_clean − m_corrupted, so when that gap is tiny the scores are noise
// amplified: a gap of 0.016 turns a 0.02 wobble into a score above 1. "Tiny" is relative to how
// spread out the logits are: σ, the standard deviation of the clean run's logits over the
// vocabulary at the last position (the size of a typical logit difference between two tokens).
// A gap below WEAK_BASELINE_RATIO·σ earns a warning carried in the result; one below
// MIN_BASELINE_RATIO·σ (or MIN_BASELINE_GAP) is refused.
//
// Real patching, batched: the corrupted prompt is repeated along the batch axis and row r's hook
// overwrites row r's site only, via a 0/1 mask: x' = x·(1 − M) + x_clean·M (exact: no rounding
// where M is 0 or 1). A full sweep costs ⌈sites / batch⌉ forward passes, not one per site.
import * as tf from "@tensorflow/tfjs"
import { Either } from "effect"
import type { GPT } from "../model/gpt.ts"
import { blockHookNames, type HookFn } from "../model/hooks.ts"
import { DegenerateBaseline } from "./errors.ts"
import { ActivationCache, cacheActivations, idsTensor } from "./hooks.ts"

export const siteKinds = ["resid_pre", "attn_out", "mlp_out", "head"] as const
export type SiteKind = (typeof siteKinds)[number]

export type PatchSite =
  | { readonly kind: "resid_pre" | "attn_out" | "mlp_out"; readonly layer: number; readonly position: number }
  | { readonly kind: "head"; readonly layer: number; readonly head: number }

/** The hook a site lives at. */
export const siteHook = (site: PatchSite): string => {
  const names = blockHookNames(site.layer)
  switch (site.kind) {
    case "resid_pre":
      return names.residPre
    case "attn_out":
      return names.attnOut
    case "mlp_out":
      return names.mlpOut
    case "head":
      return names.z
  }
}

/** Every site of the given kinds, layer-major, for a prompt of T tokens. */
export const sweepSites = (layers: number, heads: number, T: number, kinds: ReadonlyArray<SiteKind>): PatchSite[] => {
  const sites: PatchSite[] = []
  for (const kind of kinds) {
    for (let layer = 0; layer < layers; layer++) {
      if (kind === "head") for (let head = 0; head < heads; head++) sites.push({ kind, layer, head })
      else for (let position = 0; position < T; position++) sites.push({ kind, layer, position })
    }
  }
  return sites
}

/** The last position's final-normalised hidden state [n, d] of an [n, T, d] hidden tensor. */
const lastRow = (hidden: tf.Tensor3D): tf.Tensor2D => {
  const [n, T, d] = hidden.shape
  return tf.reshape(tf.slice(hidden, [0, T - 1, 0], [n, 1, d]), [n, d]) as tf.Tensor2D
}

/**
 * logit[answer] − logit[wrong] for each row of final-normalised hidden states at the last position.
 * The unembedding is linear with no bias (logits = h · W_Uᵀ, W_U = wte or lm_head), so the
 * difference is one dot product with the "logit difference direction" W_U[answer] − W_U[wrong]:
 * [n, d] · [d] instead of the [n, V] logits.
 */
const logitDiffs = (model: GPT, hidden: tf.Tensor3D, answer: number, wrong: number): tf.Tensor1D =>
  tf.tidy(() => {
    const [n, , d] = hidden.shape
    const last = lastRow(hidden)
    const unembedding = model.params.get(model.config.tied ? "wte.weight" : "lm_head.weight")!
    const rows = tf.gather(unembedding, tf.tensor1d([answer, wrong], "int32")) // [2, d]
    const direction = tf.reshape(tf.sub(tf.slice(rows, [0, 0], [1, d]), tf.slice(rows, [1, 0], [1, d])), [d, 1])
    return tf.reshape(tf.matMul(last, direction as tf.Tensor2D), [n]) as tf.Tensor1D
  })

/** σ of each row's logits over the vocabulary, for final-normalised last-position hidden states [n, d]. */
const logitSpread = (model: GPT, last: tf.Tensor2D): tf.Tensor1D =>
  tf.tidy(() => {
    const logits = model.unembed(last) // [n, V]
    const { variance } = tf.moments(logits, -1)
    return tf.sqrt(variance) as tf.Tensor1D
  })

/** The unpatched logit difference of one prompt. */
export const logitDiff = (model: GPT, ids: ReadonlyArray<number>, answer: number, wrong: number): number => {
  const input = idsTensor([ids])
  const hidden = model.hidden(input)
  const diff = logitDiffs(model, hidden, answer, wrong)
  const value = diff.dataSync()[0]
  tf.dispose([input, hidden, diff])
  return value
}

/**
 * Rows per forward pass. A patched forward keeps every layer's activations until its logits are
 * read, and they grow as tokens × width (the residual stream is d_model wide, the MLP 4·d_model),
 * so the budget is in token-widths: about 4,096 tokens at width 256 (1,365 at GPT-2 small's 768,
 * whose 256-row batches of 11 tokens exhausted the WebAssembly heap), at most 256 rows, at any T.
 */
export const defaultBatchRows = (T: number, dModel = 256) => Math.max(1, Math.min(256, Math.floor((4096 * 256) / (Math.max(dModel, 256) * T))))

/**
 * Logit differences of the corrupted prompt with each site overwritten by its value in `source`
 * (a batch-1 cache holding every site's hook). Returns raw differences, one per site, and how
 * many forward passes it took.
 */
export const patchedLogitDiffs = (
  model: GPT,
  corrupted: ReadonlyArray<number>,
  source: ActivationCache,
  sites: ReadonlyArray<PatchSite>,
  answer: number,
  wrong: number,
  batchRows = defaultBatchRows(corrupted.length, model.config.dModel)
): { diffs: Float64Array; forwards: number } => {
  const T = corrupted.length
  const H = model.config.heads
  const diffs = new Float64Array(sites.length)
  let forwards = 0
  for (let start = 0; start < sites.length; start += batchRows) {
    const chunk = sites.slice(start, start + batchRows)
    const n = chunk.length
    // Which rows patch which hook.
    const byHook = new Map<string, Array<{ row: number; site: PatchSite }>>()
    chunk.forEach((site, row) => {
      const name = siteHook(site)
      const group = byHook.get(name) ?? []
      group.push({ row, site })
      byHook.set(name, group)
    })
    const hooks: HookFn = (name, activation) => {
      const group = byHook.get(name)
      if (group === undefined) return
      const clean = source.get(name) // [1, T, d] or, for z, [1, T, H, d_head]
      // M has a 1 where a row's site is: [n, T, 1] at (row, position), or [n, 1, H, 1] at (row, head).
      const isHead = name.endsWith("hook_z")
      const maskShape = isHead ? [n, 1, H, 1] : [n, T, 1]
      const mask = new Float32Array(n * (isHead ? H : T))
      for (const { row, site } of group) mask[row * (isHead ? H : T) + (site.kind === "head" ? site.head : site.position)] = 1
      const keepMask = mask.map((m) => 1 - m)
      return tf.add(tf.mul(activation, tf.tensor(keepMask, maskShape)), tf.mul(clean, tf.tensor(mask, maskShape)))
    }
    const input = idsTensor(Array.from({ length: n }, () => corrupted))
    const values = tf.tidy(() => logitDiffs(model, model.hidden(input, { hooks }), answer, wrong))
    diffs.set(values.dataSync(), start)
    tf.dispose([input, values])
    forwards++
  }
  return { diffs, forwards }
}

export interface PatchRequest {
  readonly clean: ReadonlyArray<number>
  readonly corrupted: ReadonlyArray<number>
  /** The clean prompt's answer token and the corrupted prompt's (the metric's two logits). */
  readonly answer: number
  readonly wrong: number
  readonly kinds?: ReadonlyArray<SiteKind>
  readonly batchRows?: number
}

export interface PatchingResult {
  readonly clean: ReadonlyArray<number>
  readonly corrupted: ReadonlyArray<number>
  readonly answer: number
  readonly wrong: number
  /** Logit differences of the unpatched runs. */
  readonly cleanDiff: number
  readonly corruptedDiff: number
  /** σ of the clean run's last-position logits over the vocabulary: the scale the gap is judged on. */
  readonly logitScale: number
  /** Present when |cleanDiff − corruptedDiff| < WEAK_BASELINE_RATIO · logitScale: the scores amplify noise. */
  readonly warning?: string
  /**
   * Normalised scores: resid_pre / attn_out / mlp_out as [layer][position], head as [layer][head].
   * Only the kinds asked for are present.
   */
  readonly grids: Partial<Record<SiteKind, ReadonlyArray<ReadonlyArray<number>>>>
  /** Forward passes the whole sweep took (clean + corrupted + patched batches). */
  readonly forwards: number
  readonly sites: number
}

/** (m − m_corrupted) / (m_clean − m_corrupted) */
export const normalise = (m: number, clean: number, corrupted: number) => (m - corrupted) / (clean - corrupted)

/** Baselines closer than this (absolute) are treated as equal (normalising would divide by ~0). */
export const MIN_BASELINE_GAP = 1e-6
/** Baselines closer than this fraction of the logit scale σ are refused. */
export const MIN_BASELINE_RATIO = 1e-4
/** Baselines closer than this fraction of σ earn a warning: every score is noise scaled by σ / gap. */
export const WEAK_BASELINE_RATIO = 0.1

/** Whether a baseline gap is usable: "refuse", "warn" (with the sentence to show) or "ok". */
export const judgeBaseline = (cleanDiff: number, corruptedDiff: number, logitScale: number): { verdict: "refuse" | "warn" | "ok"; warning?: string } => {
  const gap = Math.abs(cleanDiff - corruptedDiff)
  if (!(gap > MIN_BASELINE_GAP) || !(gap > MIN_BASELINE_RATIO * logitScale)) return { verdict: "refuse" }
  if (gap >= WEAK_BASELINE_RATIO * logitScale) return { verdict: "ok" }
  const ratio = gap / logitScale
  return {
    verdict: "warn",
    warning:
      `the clean and corrupted logit differences are only ${gap.toPrecision(2)} apart, ${ratio < 0.001 ? ratio.toExponential(1) : ratio.toFixed(3)} of the logit scale ` +
      `(σ of the logits = ${logitScale.toFixed(3)}; below ${WEAK_BASELINE_RATIO} counts as weak), so the normalised scores amplify noise about ${Math.round(1 / ratio)}×; ` +
      "choose prompts whose answers the model tells apart more clearly"
  }
}

/** The full sweep (prompts already validated: same length, in the vocabulary, within the context). */
export const patchingSweep = (model: GPT, request: PatchRequest): Either.Either<PatchingResult, DegenerateBaseline> => {
  const { clean, corrupted, answer, wrong } = request
  const kinds = request.kinds ?? siteKinds
  const { layers, heads } = model.config
  const T = clean.length
  const sites = sweepSites(layers, heads, T, kinds)
  const needed = new Set(sites.map(siteHook))
  const finalHook = "ln_final.hook_normalized"
  const input = idsTensor([clean])
  const source = cacheActivations(model, input, (name) => needed.has(name) || name === finalHook)
  input.dispose()
  try {
    const cleanHidden = source.get(finalHook) as tf.Tensor3D
    const cleanDiffT = logitDiffs(model, cleanHidden, answer, wrong)
    const cleanDiff = cleanDiffT.dataSync()[0]
    const spread = tf.tidy(() => logitSpread(model, lastRow(cleanHidden)))
    const logitScale = spread.dataSync()[0]
    tf.dispose([cleanDiffT, spread])
    const corruptedDiff = logitDiff(model, corrupted, answer, wrong)
    const baseline = judgeBaseline(cleanDiff, corruptedDiff, logitScale)
    if (baseline.verdict === "refuse") return Either.left(new DegenerateBaseline({ clean: cleanDiff, corrupted: corruptedDiff, logitScale }))
    const { diffs, forwards } = patchedLogitDiffs(model, corrupted, source, sites, answer, wrong, request.batchRows)
    const grids: Partial<Record<SiteKind, number[][]>> = {}
    sites.forEach((site, i) => {
      const grid = (grids[site.kind] ??= Array.from({ length: layers }, () => new Array<number>(site.kind === "head" ? heads : T).fill(NaN)))
      grid[site.layer][site.kind === "head" ? site.head : site.position] = normalise(diffs[i], cleanDiff, corruptedDiff)
    })
    return Either.right({
      clean: [...clean],
      corrupted: [...corrupted],
      answer,
      wrong,
      cleanDiff,
      corruptedDiff,
      logitScale,
      ...(baseline.warning === undefined ? {} : { warning: baseline.warning }),
      grids,
      forwards: forwards + 2,
      sites: sites.length
    })
  } finally {
    source.dispose()
  }
}
