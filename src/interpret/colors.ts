// Why this file exists: the terminal and the HTML reports must colour the same number the same
// way, so a heatmap read in one matches the other. Two scales: sequential (0 → 1, for attention
// weights, probabilities, scores) and diverging (−1 → 0 → 1, for patching, where a negative
// score means the patch pushed further towards the wrong answer). Plus the few text helpers both
// renderers need to show tokens, which are often whitespace or control characters.

export type Rgb = readonly [number, number, number]
export type ScaleKind = "sequential" | "diverging"

/** A grid of values to colour: what the terminal and the HTML heatmaps share. */
export interface GridSpec {
  readonly rowLabels: ReadonlyArray<string>
  readonly colLabels: ReadonlyArray<string>
  /** values[row][col] */
  readonly values: ReadonlyArray<ReadonlyArray<number>>
  readonly scale: ScaleKind
  readonly min: number
  readonly max: number
}

const lerp = (a: Rgb, b: Rgb, t: number): Rgb => [
  Math.round(a[0] + (b[0] - a[0]) * t),
  Math.round(a[1] + (b[1] - a[1]) * t),
  Math.round(a[2] + (b[2] - a[2]) * t)
]

const ramp = (stops: ReadonlyArray<Rgb>, t: number): Rgb => {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1)
  const i = Math.min(stops.length - 2, Math.floor(x))
  return lerp(stops[i], stops[i + 1], x - i)
}

/** A light-to-dark blue ramp: 0 is near white, 1 is deep blue. */
const SEQUENTIAL: ReadonlyArray<Rgb> = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]]
/** Blue (−1), white (0), red (+1). */
const DIVERGING: ReadonlyArray<Rgb> = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]]

/** The colour of `value` on a scale spanning [min, max] (diverging scales centre on the midpoint). */
export const colorFor = (kind: ScaleKind, value: number, min: number, max: number): Rgb => {
  if (!Number.isFinite(value)) return [200, 200, 200]
  const t = max === min ? 0 : (value - min) / (max - min)
  return ramp(kind === "sequential" ? SEQUENTIAL : DIVERGING, t)
}

/** Black or white, whichever reads better on `bg` (relative luminance). */
export const textColorOn = (bg: Rgb): Rgb => (0.2126 * bg[0] + 0.7152 * bg[1] + 0.0722 * bg[2] > 140 ? [0, 0, 0] : [255, 255, 255])

export const hex = (c: Rgb) => `#${c.map((x) => x.toString(16).padStart(2, "0")).join("")}`

/**
 * A token's text made visible: spaces as ␣, newlines and tabs escaped, other control characters
 * (C0, DEL and the C1 range U+0080–U+009F, which fonts draw as □) as \xNN, and invisible
 * format characters (zero-width spaces, BOM, line separators) as \u{NNNN}.
 */
export const showToken = (text: string): string =>
  text
    .replace(/ /g, "␣")
    .replace(/\n/g, "\\n")
    .replace(/\t/g, "\\t")
    .replace(/\r/g, "\\r")
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)
    .replace(/[\u00ad\u200b-\u200f\u2028\u2029\u2060\ufeff]/g, (c) => `\\u{${c.charCodeAt(0).toString(16).padStart(4, "0")}}`)

/** The length of the valid UTF-8 sequence starting at `i`, or 0 when the byte there starts none. */
const utf8SequenceLength = (bytes: Uint8Array, i: number): number => {
  const lead = bytes[i]
  const length = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0
  if (length === 0 || i + length > bytes.length) return 0
  for (let k = 1; k < length; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return 0
  // Overlong or out-of-range forms the decoder would reject.
  if (lead === 0xe0 && bytes[i + 1] < 0xa0) return 0
  if (lead === 0xed && bytes[i + 1] > 0x9f) return 0
  if (lead === 0xf0 && bytes[i + 1] < 0x90) return 0
  if (lead === 0xf4 && bytes[i + 1] > 0x8f) return 0
  return length
}

/**
 * A token's bytes as text: complete UTF-8 characters as themselves, every byte of a cut
 * character as \xNN (a BPE token often holds half of "é" or a third of "世"), so no token shows
 * as U+FFFD. Control characters are escaped later by `showToken`.
 */
export const readableBytes = (bytes: Uint8Array): string => {
  const decoder = new TextDecoder("utf-8")
  let out = ""
  for (let i = 0; i < bytes.length; ) {
    const n = utf8SequenceLength(bytes, i)
    if (n === 0) {
      out += `\\x${bytes[i].toString(16).padStart(2, "0")}`
      i++
    } else {
      out += decoder.decode(bytes.subarray(i, i + n))
      i += n
    }
  }
  return out
}

/** Truncates or pads to exactly `width` characters (code points), marking a cut with …. */
export const fit = (s: string, width: number, align: "left" | "right" = "left"): string => {
  const chars = [...s]
  if (chars.length > width) return width <= 1 ? chars.slice(0, width).join("") : chars.slice(0, width - 1).join("") + "…"
  const pad = " ".repeat(width - chars.length)
  return align === "left" ? s + pad : pad + s
}

/** A compact number for a narrow cell: 0.934 → ".93", 1 → "1.0", −0.5 → "-.50". */
export const compact = (v: number): string => {
  if (!Number.isFinite(v)) return "·"
  if (Math.abs(v) >= 9.995) return v.toFixed(0)
  if (Math.abs(v) >= 0.995) return v.toFixed(1)
  return v.toFixed(2).replace(/^(-?)0\./, "$1.")
}
