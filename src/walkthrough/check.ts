// The gradient checker: every analytic gradient against central finite differences of the
// float64 loss. Central differences err by O(h²); one Richardson step,
//   D(h) = (L(θ+h) − L(θ−h)) / 2h,   D* = (4·D(h/2) − D(h)) / 3,
// cancels that term and leaves O(h⁴), so agreement to ~1e-7 relative is a real test of the
// formulas rather than of the step size.
import { lossOf } from "./forward.ts"
import type { Params, TinyConfig } from "./model.ts"

export interface CheckOptions {
  /** finite-difference step (the Richardson pair uses h and h/2) */
  readonly h: number
  /**
   * an entry passes when |analytic − numeric| ≤ rtol·max(|analytic|, |numeric|) + atol, and a
   * tensor when all its entries pass and ‖analytic − numeric‖ ≤ rtol·max(‖analytic‖, ‖numeric‖)
   */
  readonly rtol: number
  readonly atol: number
  /** check only these parameters (default: all) */
  readonly only?: ReadonlyArray<string>
}

// The loss is evaluated to a few units in the last place (~1e-15 for a loss near 2); the
// Richardson combination divides that by about h/1.5, so with h = 1e-4 differences below ~2e-11
// are rounding noise, whatever the true gradient. Hence the absolute floor, and a tensor must
// also agree as a whole: ‖a − n‖ ≤ rtol·max(‖a‖, ‖n‖).
export const defaultCheckOptions: CheckOptions = { h: 1e-4, rtol: 1e-7, atol: 5e-11 }

export interface TensorCheck {
  readonly name: string
  readonly entries: number
  readonly failures: number
  /** max over entries of |a − n| / max(|a|, |n|), over entries where that max exceeds atol/rtol */
  readonly maxRelError: number
  readonly maxAbsError: number
  /** ‖a − n‖ / max(‖a‖, ‖n‖) over the whole tensor */
  readonly normRelError: number
  /** the worst entry by the pass criterion */
  readonly worst: { readonly index: number; readonly analytic: number; readonly numeric: number }
  readonly ok: boolean
}

export interface GradCheckReport {
  readonly options: CheckOptions
  readonly tensors: ReadonlyArray<TensorCheck>
  readonly ok: boolean
  readonly maxRelError: number
  readonly entries: number
}

/** dL/dθ_i by Richardson-extrapolated central differences (θ is restored afterwards). */
export const numericGradientEntry = (
  loss: () => number,
  data: Float64Array,
  i: number,
  h: number
): number => {
  const x0 = data[i]
  const central = (step: number): number => {
    data[i] = x0 + step
    const plus = loss()
    data[i] = x0 - step
    const minus = loss()
    data[i] = x0
    return (plus - minus) / (2 * step)
  }
  const coarse = central(h)
  const fine = central(h / 2)
  return (4 * fine - coarse) / 3
}

export const numericGradients = (
  c: TinyConfig,
  params: Params,
  inputs: ReadonlyArray<number>,
  targets: ReadonlyArray<number>,
  h = defaultCheckOptions.h,
  only?: ReadonlyArray<string>
): Params => {
  const loss = () => lossOf(c, params, inputs, targets)
  const out: Params = {}
  for (const name of only ?? Object.keys(params)) {
    const t = params[name]
    const g = new Float64Array(t.data.length)
    for (let i = 0; i < g.length; i++) g[i] = numericGradientEntry(loss, t.data, i, h)
    out[name] = { shape: [...t.shape], data: g }
  }
  return out
}

export const compareGradients = (
  analytic: Params,
  numeric: Params,
  o: CheckOptions = defaultCheckOptions
): GradCheckReport => {
  const tensors = Object.keys(numeric).map((name): TensorCheck => {
    const a = analytic[name].data
    const n = numeric[name].data
    let failures = 0
    let maxRelError = 0
    let maxAbsError = 0
    let diff2 = 0
    let a2 = 0
    let n2 = 0
    let worst = { index: 0, analytic: a[0], numeric: n[0] }
    let worstExcess = -Infinity
    for (let i = 0; i < a.length; i++) {
      const err = Math.abs(a[i] - n[i])
      const size = Math.max(Math.abs(a[i]), Math.abs(n[i]))
      const allowed = o.rtol * size + o.atol
      if (!(err <= allowed)) failures++
      if (size > o.atol / o.rtol) maxRelError = Math.max(maxRelError, err / size)
      maxAbsError = Math.max(maxAbsError, err)
      if (err / allowed > worstExcess) {
        worstExcess = err / allowed
        worst = { index: i, analytic: a[i], numeric: n[i] }
      }
      diff2 += err * err
      a2 += a[i] * a[i]
      n2 += n[i] * n[i]
    }
    const denom = Math.sqrt(Math.max(a2, n2))
    const normRelError = denom === 0 ? 0 : Math.sqrt(diff2) / denom
    return {
      name,
      entries: a.length,
      failures,
      maxRelError,
      maxAbsError,
      normRelError,
      worst,
      ok: failures === 0 && normRelError <= o.rtol
    }
  })
  return {
    options: o,
    tensors,
    ok: tensors.every((t) => t.ok),
    maxRelError: Math.max(0, ...tensors.map((t) => t.maxRelError)),
    entries: tensors.reduce((s, t) => s + t.entries, 0)
  }
}

/** Finite differences for every parameter (or `only`), compared with `grads`. */
export const checkGradients = (
  c: TinyConfig,
  params: Params,
  inputs: ReadonlyArray<number>,
  targets: ReadonlyArray<number>,
  grads: Params,
  options: Partial<CheckOptions> = {}
): GradCheckReport => {
  const o = { ...defaultCheckOptions, ...options }
  return compareGradients(grads, numericGradients(c, params, inputs, targets, o.h, o.only), o)
}
