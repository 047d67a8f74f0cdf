// Next-token cross-entropy fused with the vocabulary projection and with its own gradient.
// For hidden states h [N, d], the head W [V, d] (the tied embedding or lm_head) and targets t:
//   z = h·Wᵀ                                   logits [N, V]
//   loss = mean_n ( logsumexp(z_n) − z_n[t_n] )
//   g = ∂loss/∂z = (softmax(z) − onehot(t)) / N
//   ∂loss/∂h = g·W        ∂loss/∂W = gᵀ·h
// Writing the gradient by hand avoids autodiff's chain through log-softmax, which keeps several
// [N, V] intermediates alive; with a 50k vocabulary those dominate memory. And the rows are
// processed in chunks small enough that no [rows, V] tensor exceeds a size limit: WebGPU gives
// silently wrong numbers past its storage-binding limit, and the wasm heap stops near 4 GB. With
// one chunk the softmax is kept for backward; with several, each chunk's logits are recomputed
// in backward (one extra head matmul) so only one chunk's [rows, V] tensors exist at a time.
import * as tf from "@tensorflow/tfjs"
import { fusedOps } from "../backend/fused.ts"

/** Rows per chunk so that one [rows, V] float32 tensor stays within `maxBytes`. */
export const chunkRows = (rows: number, vocab: number, maxBytes: number): number =>
  Math.max(1, Math.min(rows, Math.floor(maxBytes / (4 * vocab))))

/**
 * Chunk c's logits z_c = h_c·Wᵀ, their softmax, and Σ_n (logsumexp − z[t]). A backend with a fused
 * softmax + cross-entropy turns the logits into probabilities in place in one pass.
 */
const chunkForward = (h: tf.Tensor2D, W: tf.Tensor2D, targets: tf.Tensor1D) =>
  tf.tidy(() => {
    const fused = fusedOps()
    if (fused !== undefined) {
      const { lossSum, probs } = fused.crossEntropy(tf.matMul(h, W, false, true), targets)
      return { lossSum: tf.scalar(lossSum), probs }
    }
    const [n] = h.shape
    const V = W.shape[0]
    const logits = tf.matMul(h, W, false, true) // [n, V]
    const max = tf.max(logits, 1, true) // subtracted for stability
    const e = tf.exp(tf.sub(logits, max)) // one pass of exp serves the loss and the softmax
    const sum = tf.sum(e, 1, true)
    const lse = tf.reshape(tf.add(tf.log(sum), max), [-1]) // logsumexp(z_n)
    const flatIndex = tf.add(tf.mul(tf.range(0, n, 1, "int32"), tf.scalar(V, "int32")), targets)
    const picked = tf.gather(tf.reshape(logits, [-1]), flatIndex) // z_n[t_n]
    return { lossSum: tf.sum(tf.sub(lse, picked)), probs: tf.div(e, sum) as tf.Tensor2D }
  })

const slices = (N: number, rows: number) => Array.from({ length: Math.ceil(N / rows) }, (_, i) => [i * rows, Math.min(rows, N - i * rows)] as const)

/**
 * Mean cross-entropy of the next-token predictions h·Wᵀ against int32 `targets` [N], never
 * holding a [rows, V] tensor larger than `maxChunkBytes`.
 */
export const headCrossEntropy = (h: tf.Tensor2D, W: tf.Tensor2D, targets: tf.Tensor1D, maxChunkBytes: number): tf.Scalar => {
  const [N, d] = h.shape
  const V = W.shape[0]
  const rows = chunkRows(N, V, maxChunkBytes)
  const parts = slices(N, rows)
  const fused = tf.customGrad(((hIn: tf.Tensor2D, wIn: tf.Tensor2D, tIn: tf.Tensor1D, save: tf.GradSaveFunc) => {
    let total = tf.scalar(0)
    let keptProbs: tf.Tensor2D | undefined
    for (const [start, n] of parts) {
      const hc = parts.length === 1 ? hIn : tf.slice(hIn, [start, 0], [n, d])
      const tc = parts.length === 1 ? tIn : tf.slice(tIn, [start], [n])
      const { lossSum, probs } = chunkForward(hc, wIn, tc)
      if (parts.length > 1) tf.dispose([hc, tc])
      const next = tf.add(total, lossSum) as tf.Scalar
      tf.dispose([total, lossSum])
      total = next
      if (parts.length === 1) keptProbs = probs
      else probs.dispose()
    }
    save(keptProbs ? [hIn, wIn, tIn, keptProbs] : [hIn, wIn, tIn])
    const value = tf.div(total, N)
    total.dispose()
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [hs, ws, ts, probs] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor2D | undefined]
        const scale = tf.div(dy, N)
        const dh: tf.Tensor[] = []
        let dW: tf.Tensor | undefined // Σ over chunks of gᵀ·h, started by the first chunk's product
        for (const [start, n] of parts) {
          const hc = parts.length === 1 ? hs : tf.slice(hs, [start, 0], [n, d])
          const tc = parts.length === 1 ? ts : tf.slice(ts, [start], [n])
          const fused = fusedOps()
          const g = tf.tidy(() => {
            // The kept probabilities are used once, so the fused gradient may overwrite them.
            const p = probs ?? chunkForward(hc, ws, tc).probs
            if (fused !== undefined) return fused.crossEntropyGrad(p, tc, scale.dataSync()[0])
            return tf.mul(tf.sub(p, tf.oneHot(tc, V, 1, 0, "float32")), scale) // [n, V]
          })
          dh.push(tf.matMul(g, ws)) // [n, d]
          const product = tf.matMul(g, hc, true, false) // [V, d]
          const nextDW = dW === undefined ? product : tf.add(dW, product)
          if (dW !== undefined) tf.dispose([dW, product])
          g.dispose()
          if (parts.length > 1) tf.dispose([hc, tc])
          dW = nextDW
        }
        return [dh.length === 1 ? dh[0] : tf.concat(dh, 0), dW ?? tf.zerosLike(ws), tf.zerosLike(ts)]
      }
    }
  }) as unknown as Parameters<typeof tf.customGrad>[0])
  return fused(h, W, targets) as unknown as tf.Scalar
}
