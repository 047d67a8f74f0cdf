// Number formatting shared by the renderers: one scale per matrix (a common "× 1e-4" factor,
// as in a textbook table) so columns line up and the digits that differ are the ones shown.
import { maxAbs } from "./math.ts"

export interface NumberScale {
  /** values are printed divided by 10^exponent */
  readonly exponent: number
  readonly decimals: number
  readonly integers: boolean
  /** largest finite |value|, the colour scale's 100 % */
  readonly max: number
}

export const numberScale = (data: ArrayLike<number>): NumberScale => {
  const max = maxAbs(data)
  let integers = true
  for (let i = 0; i < data.length && integers; i++) if (Number.isFinite(data[i]) && !Number.isInteger(data[i])) integers = false
  if (integers) return { exponent: 0, decimals: 0, integers, max }
  if (max === 0 || (max >= 0.1 && max < 100)) return { exponent: 0, decimals: max >= 10 ? 2 : 4, integers, max }
  return { exponent: Math.floor(Math.log10(max)), decimals: 3, integers, max }
}

export const formatScaled = (x: number, s: NumberScale): string => {
  if (x === -Infinity) return "-∞"
  if (x === Infinity) return "∞"
  if (Number.isNaN(x)) return "NaN"
  if (x === 0) return "0"
  const v = x / 10 ** s.exponent
  const text = v.toFixed(s.decimals)
  // "−0.0000" reads as a sign where there is none
  return /^-0\.?0*$/.test(text) ? text.slice(1) : text
}

export const scaleLabel = (s: NumberScale): string => (s.exponent === 0 ? "" : `× 1e${s.exponent}`)

export const shapeLabel = (shape: ReadonlyArray<number>): string => `[${shape.join(", ")}]`
