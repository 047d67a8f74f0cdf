// The gradient of a row lookup: out[s] = Σ_{i : ids[i] = s} x[i]. gather(params, ids) copies row
// ids[i] of params for each i, so each looked-up row sends its gradient back to the row it came
// from, summed when a token appears more than once. Shared by the wasm and native kernels.

/** Adds row i of `xs` ([count, inner]) into row ids[i] of `out` ([numSegments, inner], zeroed). */
export const segmentSumInto = (xs: Float32Array, ids: Int32Array, out: Float32Array, count: number, inner: number, numSegments: number): void => {
  for (let i = 0; i < count; i++) {
    const s = ids[i]
    if (s < 0 || s >= numSegments) continue
    const src = i * inner
    const dst = s * inner
    for (let j = 0; j < inner; j++) out[dst + j] += xs[src + j]
  }
}
