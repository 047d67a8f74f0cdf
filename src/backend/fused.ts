// Fused operations a backend may provide: whole formulas (LayerNorm, GELU, softmax +
// cross-entropy, the AdamW update) computed in one pass with their gradients written by hand,
// where the stock path runs a chain of small tfjs ops, each a full pass over memory. The model
// asks `fusedOps()` and uses its plain tfjs formula when the active backend has none, so the plain
// path stays the reference every fused one is tested against (test/backend/native.test.ts).
import * as tf from "@tensorflow/tfjs"

export interface FusedOps {
  /** LayerNorm over the last axis, with its gradient for x, γ and β. */
  layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor
  /** GPT-2's tanh GELU, with its gradient. */
  geluTanh(x: tf.Tensor): tf.Tensor
  /** Softmax over the last axis, with its gradient. */
  softmax(x: tf.Tensor): tf.Tensor
  /**
   * Attention's core, softmax(scale·q·kᵀ + bias)·v for q [B, H, T, dh], k and v [B, H, Tk, dh] and
   * a constant bias [B|1, H|1, T, Tk], with gradients for q, k and v. Optional: where absent, or
   * where a hook needs the scores and pattern, the model runs the ops one by one.
   */
  attention?(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor, scale: number): tf.Tensor4D
  /**
   * For logits z [n, V] (a fresh tensor the caller gives up) and targets [n]: Σ_r (logsumexp(z_r) −
   * z_r[t_r]) and softmax(z), computed in z's own memory.
   */
  crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): { lossSum: number; probs: tf.Tensor2D }
  /** (probs − onehot(targets))·scale, computed in the memory of `probs`, which is returned. */
  crossEntropyGrad(probs: tf.Tensor2D, targets: tf.Tensor1D, scale: number): tf.Tensor2D
  /** Σ‖g‖² over all tensors, in a fixed order. */
  sumOfSquares(tensors: readonly tf.Tensor[]): number
  /**
   * One AdamW update of every parameter in place (see src/train/adamw.ts for the formula); each
   * gradient is multiplied by `gradScale` first.
   */
  adamw(
    items: ReadonlyArray<{ param: tf.Variable; grad: tf.Tensor; m: tf.Variable; v: tf.Variable; decay: boolean }>,
    hyper: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; c1: number; c2: number; gradScale: number }
  ): void
}

const byBackend = new Map<string, FusedOps>()

/** Called by a backend that provides fused operations, once at registration. */
export const registerFusedOps = (backendName: string, ops: FusedOps): void => {
  byBackend.set(backendName, ops)
}

/** The active backend's fused operations, or undefined: then use the plain tfjs formula. */
export const fusedOps = (): FusedOps | undefined => byBackend.get(tf.getBackend())
