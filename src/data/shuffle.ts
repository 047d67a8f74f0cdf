// Why this file exists: each epoch visits the row groups in a different order, and that
// order must be a pure function of (seed, epoch) so a resumed run can recompute it from the
// cursor alone. Row groups are the unit because they are the unit of reading: shuffling
// inside one would mean decoding it whole just to pick rows.

/** A 32-bit integer hash (the finaliser of MurmurHash3): nearby inputs give unrelated outputs. */
const mix32 = (x: number): number => {
  let h = x >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/** Mulberry32: a small, fast generator of uniform numbers in [0, 1), fully determined by its seed. */
export const mulberry32 = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000
  }
}

/** The order in which epoch `epoch` visits `count` units: a Fisher–Yates shuffle seeded by (seed, epoch). */
export const epochOrder = (count: number, seed: number, epoch: number): number[] => {
  const order = Array.from({ length: count }, (_, i) => i)
  const random = mulberry32(mix32(mix32(seed) ^ mix32(epoch + 0x9e3779b9)))
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const swap = order[i]
    order[i] = order[j]
    order[j] = swap
  }
  return order
}
