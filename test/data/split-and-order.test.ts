// Why this file exists: the split hash and the epoch shuffle are pure functions that every
// run and every resume relies on. Their values are pinned here against published test
// vectors and an independent BigInt computation, and their statistics checked.
import { describe, expect, it } from "@effect/vitest"
import { epochOrder, mulberry32 } from "../../src/data/shuffle.ts"
import { fnv1a64, idFraction, splitOf } from "../../src/data/split.ts"

/** FNV-1a 64 the slow, obvious way, to check the two-halves arithmetic. */
const fnvReference = (text: string): bigint => {
  let h = 0xcbf29ce484222325n
  for (const byte of new TextEncoder().encode(text)) {
    h ^= BigInt(byte)
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn
  }
  return h
}
const asBigInt = ([hi, lo]: readonly [number, number]) => (BigInt(hi) << 32n) | BigInt(lo)

describe("split", () => {
  it("FNV-1a 64 matches the published vectors and a BigInt reference", () => {
    expect(asBigInt(fnv1a64(""))).toBe(0xcbf29ce484222325n)
    expect(asBigInt(fnv1a64("a"))).toBe(0xaf63dc4c8601ec8cn)
    expect(asBigInt(fnv1a64("foobar"))).toBe(0x85944171f73967e8n)
    const random = mulberry32(5)
    for (let i = 0; i < 300; i++) {
      const id = `<urn:uuid:${Math.floor(random() * 1e12).toString(16)}-é😀-${i}>`
      expect(asBigInt(fnv1a64(id))).toBe(fnvReference(id))
    }
  })

  it("puts about val_fraction of documents on the validation side, always the same ones", () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `<urn:uuid:doc-${i}>`)
    for (const fraction of [0.01, 0.1, 0.5]) {
      const val = ids.filter((id) => splitOf(id, fraction) === "val").length / ids.length
      expect(Math.abs(val - fraction)).toBeLessThan(0.01)
      // Ids that differ only in their last characters, in small runs, spread evenly too.
      for (let run = 0; run < 20; run++) {
        const block = ids.slice(run * 100, run * 100 + 100)
        const share = block.filter((id) => splitOf(id, fraction) === "val").length / 100
        expect(Math.abs(share - fraction)).toBeLessThan(Math.max(0.06, 4 * Math.sqrt(fraction * (1 - fraction) / 100)))
      }
    }
    const first = ids.map((id) => splitOf(id, 0.1))
    expect(ids.map((id) => splitOf(id, 0.1))).toEqual(first)
    // Growing the fraction only moves documents from train to val, never back.
    for (const id of ids.slice(0, 2000)) {
      if (splitOf(id, 0.1) === "val") expect(splitOf(id, 0.2)).toBe("val")
    }
    expect(ids.every((id) => splitOf(id, 0) === "train" && splitOf(id, 1) === "val")).toBe(true)
    expect(ids.every((id) => idFraction(id) >= 0 && idFraction(id) < 1)).toBe(true)
  })
})

describe("epoch order", () => {
  it("is a permutation fixed by (seed, epoch)", () => {
    const order = epochOrder(50, 1337, 0)
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i))
    expect(epochOrder(50, 1337, 0)).toEqual(order)
    expect(epochOrder(50, 1337, 1)).not.toEqual(order)
    expect(epochOrder(50, 1338, 0)).not.toEqual(order)
    expect(epochOrder(0, 1, 0)).toEqual([])
    expect(epochOrder(1, 1, 0)).toEqual([0])
  })

  it("puts every unit first about equally often", () => {
    const firsts = [0, 0, 0, 0]
    for (let seed = 0; seed < 4000; seed++) firsts[epochOrder(4, seed, seed % 3)[0]]++
    for (const count of firsts) expect(Math.abs(count - 1000)).toBeLessThan(120)
  })
})
