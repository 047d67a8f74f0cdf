// Hook points: every named activation passes through `hookPoint`, where an observer may read it
// (caching for probes) or return a replacement (ablation, patching). One mechanism serves all
// instruments, as in TransformerLens; without hooks it costs nothing.
import type * as tf from "@tensorflow/tfjs"

/** Called with each activation's TransformerLens name; return a tensor to replace it. */
export type HookFn = (name: string, activation: tf.Tensor) => tf.Tensor | void

export const hookPoint = (hooks: HookFn | undefined, name: string, x: tf.Tensor): tf.Tensor => {
  if (hooks === undefined) return x
  const replaced = hooks(name, x)
  if (replaced === undefined) return x
  if (replaced.shape.join(",") !== x.shape.join(",")) {
    throw new Error(`hook ${name} returned shape [${replaced.shape}] but the activation is [${x.shape}]`)
  }
  return replaced
}

/** The hook names of one block, as TransformerLens spells them. */
export const blockHookNames = (layer: number) => {
  const b = `blocks.${layer}`
  return {
    residPre: `${b}.hook_resid_pre`,
    ln1: `${b}.ln1.hook_normalized`,
    q: `${b}.attn.hook_q`,
    k: `${b}.attn.hook_k`,
    v: `${b}.attn.hook_v`,
    scores: `${b}.attn.hook_attn_scores`,
    pattern: `${b}.attn.hook_pattern`,
    z: `${b}.attn.hook_z`,
    attnOut: `${b}.hook_attn_out`,
    residMid: `${b}.hook_resid_mid`,
    ln2: `${b}.ln2.hook_normalized`,
    mlpPre: `${b}.mlp.hook_pre`,
    mlpPost: `${b}.mlp.hook_post`,
    mlpOut: `${b}.hook_mlp_out`,
    residPost: `${b}.hook_resid_post`
  }
}
