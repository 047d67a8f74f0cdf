// Next-token cross-entropy, fused with its gradient. For logits z [N, V] and targets t:
//   loss = mean_n ( logsumexp(z_n) − z_n[t_n] )
//   ∂loss/∂z_n = (softmax(z_n) − onehot(t_n)) / N
// Writing the gradient by hand avoids autodiff's chain through log-softmax, which would keep
// several [N, V] intermediates alive; with a 50k vocabulary those dominate memory.
import * as tf from "@tensorflow/tfjs"

const fused = tf.customGrad(((logits: tf.Tensor2D, targets: tf.Tensor1D, save: tf.GradSaveFunc) => {
  const [N, V] = logits.shape
  // One pass of exp serves both the loss and, kept for backward, the softmax.
  const max = tf.max(logits, 1, true) // [N, 1], subtracted for stability
  const e = tf.exp(tf.sub(logits, max))
  const sum = tf.sum(e, 1, true)
  const lse = tf.add(tf.log(sum), max) // [N, 1] = logsumexp(z_n)
  const probs = tf.div(e, sum)
  const flatIndex = tf.add(tf.mul(tf.range(0, N, 1, "int32"), tf.scalar(V, "int32")), targets)
  const picked = tf.gather(tf.reshape(logits, [-1]), flatIndex) // z_n[t_n]
  const value = tf.mean(tf.sub(tf.reshape(lse, [-1]), picked))
  save([probs, targets])
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [p, t] = saved as [tf.Tensor2D, tf.Tensor1D]
      const grad = tf.mul(tf.sub(p, tf.oneHot(t, V, 1, 0, "float32")), tf.div(dy, N))
      return [grad, tf.zerosLike(t)]
    }
  }
}) as unknown as Parameters<typeof tf.customGrad>[0])

/** Mean cross-entropy of logits [N, V] against int32 targets [N]. */
export const crossEntropy = (logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar => fused(logits, targets) as unknown as tf.Scalar
