// Seeded random numbers for the walkthrough's initialisation. Each named tensor draws from its
// own stream, derived by hashing (seed, name): adding, removing or reshaping one tensor never
// shifts the values of another, and no two matrices start equal.

/** cyrb128: four 32-bit words from a string, a well-mixed seed for sfc32. */
const hash128 = (text: string): [number, number, number, number] => {
  let h1 = 1779033703
  let h2 = 3144134277
  let h3 = 1013904242
  let h4 = 2773480762
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i)
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067)
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233)
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213)
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179)
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067)
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233)
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213)
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179)
  h1 ^= h2 ^ h3 ^ h4
  h2 ^= h1
  h3 ^= h1
  h4 ^= h1
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0]
}

/** A stream of uniforms in [0, 1) with 32 bits each (sfc32). */
const sfc32 = (seed: [number, number, number, number]): (() => number) => {
  let [a, b, c, d] = seed
  const next = (): number => {
    a >>>= 0
    b >>>= 0
    c >>>= 0
    d >>>= 0
    let t = (a + b) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    d = (d + 1) | 0
    t = (t + d) | 0
    c = (c + t) | 0
    return (t >>> 0) / 4294967296
  }
  for (let i = 0; i < 15; i++) next() // let the state mix before the first draw
  return next
}

/** Standard normal draws (Box–Muller) from the stream named by (seed, name). */
export const normalStream = (seed: number, name: string): (() => number) => {
  const uniform = sfc32(hash128(`glassbox-walkthrough:${seed}:${name}`))
  let spare: number | undefined
  return () => {
    if (spare !== undefined) {
      const z = spare
      spare = undefined
      return z
    }
    const u1 = 1 - uniform() // (0, 1]: keeps log finite
    const u2 = uniform()
    const r = Math.sqrt(-2 * Math.log(u1))
    spare = r * Math.sin(2 * Math.PI * u2)
    return r * Math.cos(2 * Math.PI * u2)
  }
}
