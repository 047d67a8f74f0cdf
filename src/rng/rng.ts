// A small seeded random number generator whose whole state is four integers, so a checkpoint
// can store it and a resumed run continues the exact same stream. sfc32 passes PractRand and
// is fast in JavaScript; splitmix32 turns a seed and a name into independent streams, so each
// parameter tensor draws from its own part of the randomness whatever order it is created in.

export type RngState = readonly [number, number, number, number]

/** splitmix32: a well-mixed 32-bit hash step, used to expand seeds. */
const splitmix32 = (x: number): number => {
  x = (x + 0x9e3779b9) | 0
  let z = x
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}

/** FNV-1a over the UTF-16 code units of a string: a stable 32-bit name hash. */
export const hashString = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number

  private constructor(state: RngState) {
    ;[this.a, this.b, this.c, this.d] = state
  }

  /** A generator for (seed, stream name): the same pair always gives the same numbers. */
  static seeded(seed: number, stream = ""): Rng {
    let s = splitmix32((seed >>> 0) ^ hashString(stream))
    const words: number[] = []
    for (let i = 0; i < 4; i++) {
      s = splitmix32(s + i)
      words.push(s)
    }
    const rng = new Rng(words as unknown as RngState)
    for (let i = 0; i < 12; i++) rng.nextUint32() // discard the warm-up outputs
    return rng
  }

  static fromState(state: RngState): Rng {
    return new Rng(state)
  }

  state(): RngState {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0]
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  uniform(): number {
    return this.nextUint32() / 4294967296
  }

  /** Standard normal by Box-Muller (u1 kept away from 0 so the log stays finite). */
  normal(): number {
    const u1 = (this.nextUint32() + 1) / 4294967297
    const u2 = this.uniform()
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)
  }

  /** n draws from N(0, std²) as float32. */
  normalArray(n: number, std: number): Float32Array {
    const out = new Float32Array(n)
    for (let i = 0; i < n; i++) out[i] = this.normal() * std
    return out
  }

  /** A 31-bit integer seed for a tfjs op that takes one (dropout). */
  nextSeed(): number {
    return this.nextUint32() >>> 1
  }
}
