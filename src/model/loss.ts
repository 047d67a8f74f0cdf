// Next-token cross-entropy, fused with its gradient. For logits z [N, V] and targets t:
//   loss = mean_n ( logsumexp(z_n) − z_n[t_n] )
//   ∂loss/∂z_n = (softmax(z_n) − onehot(t_n)) / N
// Writing the gradient by hand avoids autodiff's chain through log-softmax, which would keep
// several [N, V] intermediates alive; with a 50k vocabulary those dominate memory.
import * as tf from "@tensorflow/tfjs"

const fused = tf.customGrad(((logits: tf.Tensor2D, targets: tf.Tensor1D, save: tf.GradSaveFunc) => {
  const [N, V] = logits.shape
  const lse = tf.logSumExp(logits, 1) // [N]
  const flatIndex = tf.add(tf.mul(tf.range(0, N, 1, "int32"), tf.scalar(V, "int32")), targets)
  const picked = tf.gather(tf.reshape(logits, [-1]), flatIndex) // z_n[t_n]
  const value = tf.mean(tf.sub(lse, picked))
  save([logits, lse, targets])
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [z, logZ, t] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D]
      const probs = tf.exp(tf.sub(z, tf.expandDims(logZ, 1)))
      const grad = tf.mul(tf.sub(probs, tf.oneHot(t, V, 1, 0, "float32")), tf.div(dy, N))
      return [grad, tf.zerosLike(t)]
    }
  }
}) as unknown as Parameters<typeof tf.customGrad>[0])

/** Mean cross-entropy of logits [N, V] against int32 targets [N]. */
export const crossEntropy = (logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar => fused(logits, targets) as unknown as tf.Scalar
