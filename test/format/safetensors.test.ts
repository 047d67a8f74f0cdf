// The safetensors codec is where weights cross between this program and every other framework,
// so it is checked byte for byte against the specification, against files laid out the way
// Python's writer lays them out, and against every kind of damage a reader must refuse.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import {
  decodeSafetensors,
  encodeSafetensors,
  expectTensors,
  halfToFloat,
  type NamedTensor,
  parseSafetensors,
  readSafetensorsFile,
  SafetensorsError,
  writeSafetensorsFile
} from "../../src/format/safetensors.ts"

const f32 = (shape: number[], values: number[]): NamedTensor => ({
  dtype: "F32",
  shape,
  data: Float32Array.from(values)
})

/** Deterministic pseudo-random floats (an LCG), so a failing round trip is reproducible. */
const randomTensor = (shape: number[], seed: number): NamedTensor => {
  const count = shape.reduce((a, b) => a * b, 1)
  const data = new Float32Array(count)
  let state = seed >>> 0
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    data[i] = (state / 2 ** 32 - 0.5) * 10 ** ((state % 7) - 3)
  }
  return { dtype: "F32", shape, data }
}

/** A file assembled from its parts exactly as the spec describes, padding the header with spaces. */
const assemble = (header: string, data: Uint8Array | number[], declaredLength?: bigint): Uint8Array => {
  let json = header
  while ((8 + new TextEncoder().encode(json).length) % 8 !== 0) json += " "
  const headerBytes = new TextEncoder().encode(json)
  const out = new Uint8Array(8 + headerBytes.length + data.length)
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(headerBytes.length), true)
  out.set(headerBytes, 8)
  out.set(data, 8 + headerBytes.length)
  return out
}

const le = {
  f32: (...xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer),
  f64: (...xs: number[]) => new Uint8Array(Float64Array.from(xs).buffer),
  u16: (...xs: number[]) => new Uint8Array(Uint16Array.from(xs).buffer),
  i64: (...xs: bigint[]) => new Uint8Array(BigInt64Array.from(xs).buffer)
}
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** Decode expecting failure; returns the error so the test can read its facts. */
const refusal = (bytes: Uint8Array, source = "bad.safetensors") =>
  Effect.flip(decodeSafetensors(bytes, source))

describe("encodeSafetensors", () => {
  it("writes a tiny file byte for byte as the specification lays it out", () => {
    const bytes = encodeSafetensors({ b: f32([2], [1, -2]), a: f32([], [0.5]) }, { format: "pt" })
    // Sorted by name: "a" takes data bytes 0..4, "b" 4..12. The JSON is 138 bytes, padded with
    // six spaces to 144 so the data starts at byte 152, a multiple of 8.
    const json =
      `{"__metadata__":{"format":"pt"},` +
      `"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},` +
      `"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`
    expect(json.length).toBe(138)
    const expected = [
      144, 0, 0, 0, 0, 0, 0, 0, // u64 little-endian header length
      ...Array.from(json, (c) => c.charCodeAt(0)),
      ...Array(6).fill(0x20),
      0x00, 0x00, 0x00, 0x3f, // 0.5  = 0x3F000000
      0x00, 0x00, 0x80, 0x3f, // 1.0  = 0x3F800000
      0x00, 0x00, 0x00, 0xc0 //  -2.0 = 0xC0000000
    ]
    expect(Array.from(bytes)).toEqual(expected)
  })

  it("lays tensors out in name order even when names look like integers", () => {
    // A JS object would list the key "10" before "2" and both before "a"; the file must not.
    const bytes = encodeSafetensors({ a: f32([1], [3]), "10": f32([1], [2]), "2": f32([1], [1]) })
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true))
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))
    expect(header.indexOf(`"10"`)).toBeLessThan(header.indexOf(`"2"`))
    expect(header.indexOf(`"2"`)).toBeLessThan(header.indexOf(`"a"`))
    expect(header).toContain(`"10":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`)
    expect(header).toContain(`"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}`)
    expect(headerLength % 8).toBe(0)
  })

  it("refuses data whose length does not match its shape, naming the tensor", () => {
    expect(() => encodeSafetensors({ w: f32([2, 3], [1, 2, 3]) })).toThrow(
      /tensor "w": shape \[2,3\] needs 6 values but data holds 3/
    )
    expect(() => encodeSafetensors({ __metadata__: f32([1], [1]) })).toThrow(/reserved/)
  })
})

describe("round trip", () => {
  it.effect("returns every tensor, shape and value, and the metadata", () =>
    Effect.gen(function* () {
      const tensors: Record<string, NamedTensor> = {
        "wte.weight": randomTensor([11, 8], 1),
        "h.0.attn.c_attn.weight": randomTensor([8, 24], 2),
        "h.10.ln_1.bias": randomTensor([8], 3),
        "h.2.ln_1.bias": randomTensor([8], 4),
        scalar: f32([], [Math.PI]),
        empty: f32([0], []),
        "empty.3d": f32([2, 0, 3], []),
        "0": randomTensor([3, 1, 2], 5),
        "π.unicode": randomTensor([2], 6),
        special: f32([4], [Infinity, -Infinity, -0, 1.4e-45])
      }
      const metadata = { config: JSON.stringify({ layers: 4, d_model: 256 }), format: "pt" }
      const decoded = yield* decodeSafetensors(encodeSafetensors(tensors, metadata), "memory")
      expect(decoded.metadata).toEqual(metadata)
      expect(Object.keys(decoded.tensors).sort()).toEqual(Object.keys(tensors).sort())
      for (const [name, tensor] of Object.entries(tensors)) {
        expect(decoded.tensors[name].shape, name).toEqual(tensor.shape)
        expect(decoded.tensors[name].dtype).toBe("F32")
        expect(Array.from(decoded.tensors[name].data), name).toEqual(Array.from(tensor.data))
      }
      expect(Object.is(decoded.tensors.special.data[2], -0)).toBe(true)
    }))

  it.effect("gives an empty metadata record when the file has none, and reads unaligned buffers", () =>
    Effect.gen(function* () {
      const bytes = encodeSafetensors({ x: randomTensor([5], 9) })
      // Node hands out Buffers at arbitrary offsets into shared memory; the reader must copy
      // rather than view, since a Float32Array cannot start at an odd byte.
      const shifted = new Uint8Array(bytes.length + 3)
      shifted.set(bytes, 3)
      const decoded = yield* decodeSafetensors(shifted.subarray(3), "memory")
      expect(decoded.metadata).toEqual({})
      expect(Array.from(decoded.tensors.x.data)).toEqual(Array.from(randomTensor([5], 9).data))
      // The result owns its memory: scribbling on the file buffer changes nothing.
      shifted.fill(0)
      expect(Array.from(decoded.tensors.x.data)).toEqual(Array.from(randomTensor([5], 9).data))
      // readFile hands back a Buffer, whose slice() is a view into a shared pool, not a copy.
      const pooled = Buffer.from(bytes)
      const fromBuffer = yield* decodeSafetensors(pooled, "buffer")
      expect(Array.from(fromBuffer.tensors.x.data)).toEqual(Array.from(randomTensor([5], 9).data))
    }))
})

describe("files in Python's conventions", () => {
  it.effect("reads mixed dtypes, header keys in any order, data not in name order", () =>
    Effect.gen(function* () {
      // Python's writer orders data by dtype alignment (largest first) then name, and serde
      // writes the header keys in its own order; neither need match name order.
      const header = JSON.stringify({
        "z.f32": { dtype: "F32", shape: [2], data_offsets: [16, 24] },
        "a.f16": { dtype: "F16", shape: [2, 2], data_offsets: [24, 32] },
        __metadata__: { format: "pt" },
        "m.f64": { dtype: "F64", shape: [2], data_offsets: [0, 16] },
        "b.bf16": { dtype: "BF16", shape: [1], data_offsets: [32, 34] }
      })
      const data = concat(
        le.f64(0.1, -1e300),
        le.f32(1.5, -7),
        le.u16(0x3c00, 0xc000, 0x3555, 0x7bff),
        le.u16(0x4049)
      )
      const decoded = yield* decodeSafetensors(assemble(header, data), "python.safetensors")
      expect(decoded.metadata).toEqual({ format: "pt" })
      expect(Array.from(decoded.tensors["z.f32"].data)).toEqual([1.5, -7])
      // F64 narrows to the nearest float32; -1e300 is beyond float32's range, so -Infinity.
      expect(Array.from(decoded.tensors["m.f64"].data)).toEqual([0.10000000149011612, -Infinity])
      expect(decoded.tensors["a.f16"].shape).toEqual([2, 2])
      expect(Array.from(decoded.tensors["a.f16"].data)).toEqual([1, -2, 0.333251953125, 65504])
      expect(Array.from(decoded.tensors["b.bf16"].data)).toEqual([3.140625])
    }))

  it("converts float16 by hand-checked values: normals, subnormals, zeros, infinities, NaN", () => {
    // value = (-1)^s × (1 + m/1024) × 2^(e-15); for e = 0, (-1)^s × m × 2^-24.
    expect(halfToFloat(0x3c00)).toBe(1) //               e=15, m=0
    expect(halfToFloat(0xc000)).toBe(-2) //              s=1, e=16
    expect(halfToFloat(0x3555)).toBe(1365 / 4096) //     e=13, m=341: (1+341/1024)/4
    expect(halfToFloat(0x7bff)).toBe(65504) //           largest finite: (2-2^-10)·2^15
    expect(halfToFloat(0x0400)).toBe(2 ** -14) //        smallest normal
    expect(halfToFloat(0x0001)).toBe(2 ** -24) //        smallest subnormal
    expect(halfToFloat(0x03ff)).toBe(1023 * 2 ** -24) // largest subnormal
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true)
    expect(halfToFloat(0x7c00)).toBe(Infinity)
    expect(halfToFloat(0xfc00)).toBe(-Infinity)
    expect(halfToFloat(0x7e00)).toBeNaN()
  })

  it.effect("converts bfloat16 as the top half of a float32", () =>
    Effect.gen(function* () {
      const header = JSON.stringify({ b: { dtype: "BF16", shape: [6], data_offsets: [0, 12] } })
      const data = le.u16(0x3f80, 0xc0a0, 0x4049, 0x7f80, 0x0001, 0x8000)
      const decoded = yield* decodeSafetensors(assemble(header, data), "bf16.safetensors")
      const values = Array.from(decoded.tensors.b.data)
      // 0x3F80_0000 = 1; 0xC0A0_0000 = -5; 0x4049_0000 = (1 + 73/128)·2 = 3.140625;
      // 0x7F80_0000 = +inf; 0x0001_0000 = 2^16 × 2^-149 (a float32 subnormal); 0x8000_0000 = -0.
      expect(values.slice(0, 5)).toEqual([1, -5, 3.140625, Infinity, 2 ** -133])
      expect(Object.is(values[5], -0)).toBe(true)
    }))

  it.effect("accepts integers that float32 holds exactly and refuses one it would round", () =>
    Effect.gen(function* () {
      const exact = JSON.stringify({ ids: { dtype: "I64", shape: [3], data_offsets: [0, 24] } })
      const ok = yield* decodeSafetensors(assemble(exact, le.i64(-3n, 2n ** 24n, 2n ** 53n)), "ids.safetensors")
      expect(Array.from(ok.tensors.ids.data)).toEqual([-3, 2 ** 24, 2 ** 53])
      const error = yield* refusal(assemble(exact, le.i64(0n, 2n ** 24n + 1n, 0n)), "ids.safetensors")
      expect(error.tensor).toBe("ids")
      expect(error.message).toBe(
        `ids.safetensors: tensor "ids": I64 value 16777217 at index 1 cannot be represented exactly as float32`
      )
    }))
})

describe("refusing damaged files", () => {
  const good = () => encodeSafetensors({ a: f32([2], [1, 2]), b: f32([3], [3, 4, 5]) })

  it.effect("a file shorter than the length prefix", () =>
    Effect.gen(function* () {
      const error = yield* refusal(new Uint8Array(5))
      expect(error).toBeInstanceOf(SafetensorsError)
      expect(error.message).toMatch(/^bad\.safetensors: file is 5 bytes, too short/)
    }))

  it.effect("a header length beyond the file, or absurdly large", () =>
    Effect.gen(function* () {
      const bytes = good()
      new DataView(bytes.buffer).setBigUint64(0, BigInt(bytes.length), true)
      const beyond = yield* refusal(bytes)
      expect(beyond.message).toBe(
        `bad.safetensors: header length ${bytes.length} exceeds the ${bytes.length - 8} bytes after the length prefix (truncated, or not a safetensors file)`
      )
      new DataView(bytes.buffer).setBigUint64(0, 2n ** 63n, true)
      expect((yield* refusal(bytes)).message).toContain(`header length ${2n ** 63n} exceeds`)
      // A text file: its first eight bytes read as a length of about 7e18.
      const text = new TextEncoder().encode("hello, this is not safetensors")
      expect((yield* refusal(text, "notes.txt")).message).toMatch(/^notes\.txt: header length \d+ exceeds/)
    }))

  it.effect("a header length that is too short cuts the JSON", () =>
    Effect.gen(function* () {
      const bytes = good()
      const view = new DataView(bytes.buffer)
      view.setBigUint64(0, view.getBigUint64(0, true) - 16n, true)
      expect((yield* refusal(bytes)).message).toMatch(/^bad\.safetensors: header is not valid UTF-8 JSON/)
    }))

  it.effect("a header that is not JSON, or not an object of entries", () =>
    Effect.gen(function* () {
      const broken = yield* refusal(assemble(`{"a": {"dtype": "F32", "shape": [1]`, le.f32(1)))
      expect(broken.message).toMatch(/^bad\.safetensors: header is not valid UTF-8 JSON \(.+\)$/)
      expect((yield* refusal(assemble(`[1, 2]`, []))).message).toMatch(/does not start with "\{"/)
      expect((yield* refusal(assemble(`{"a": 3}`, []))).message).toBe(`bad.safetensors: tensor "a": entry is not an object`)
    }))

  it.effect("an entry missing a field", () =>
    Effect.gen(function* () {
      const noDtype = yield* refusal(assemble(JSON.stringify({ w: { shape: [1], data_offsets: [0, 4] } }), le.f32(1)))
      expect(noDtype.message).toBe(`bad.safetensors: tensor "w": missing or non-string "dtype"`)
      const noShape = yield* refusal(assemble(JSON.stringify({ w: { dtype: "F32", data_offsets: [0, 4] } }), le.f32(1)))
      expect(noShape.tensor).toBe("w")
      expect(noShape.message).toContain(`missing "shape"`)
      const negative = yield* refusal(
        assemble(JSON.stringify({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }), le.f32(1))
      )
      expect(negative.message).toContain(`not a list of non-negative integers`)
      const noOffsets = yield* refusal(assemble(JSON.stringify({ w: { dtype: "F32", shape: [1] } }), le.f32(1)))
      expect(noOffsets.message).toContain(`missing "data_offsets"`)
    }))

  it.effect("an unknown dtype, and a known one we cannot convert", () =>
    Effect.gen(function* () {
      const unknown = yield* refusal(
        assemble(JSON.stringify({ w: { dtype: "F17", shape: [1], data_offsets: [0, 4] } }), le.f32(1))
      )
      expect(unknown.tensor).toBe("w")
      expect(unknown.message).toMatch(/^bad\.safetensors: tensor "w": unknown dtype "F17" \(known: BOOL, .*F32.*\)$/)
      // A prototype property is not a dtype.
      const sneaky = yield* refusal(
        assemble(JSON.stringify({ w: { dtype: "constructor", shape: [1], data_offsets: [0, 4] } }), le.f32(1))
      )
      expect(sneaky.message).toContain(`unknown dtype "constructor"`)
      const fp8 = yield* refusal(
        assemble(JSON.stringify({ w: { dtype: "F8_E4M3", shape: [4], data_offsets: [0, 4] } }), le.f32(1))
      )
      expect(fp8.message).toBe(
        `bad.safetensors: tensor "w": dtype F8_E4M3 is not supported; convert the tensor to F32, F16, BF16 or F64 first`
      )
    }))

  it.effect("a shape whose size disagrees with its byte range", () =>
    Effect.gen(function* () {
      const header = JSON.stringify({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } })
      const error = yield* refusal(assemble(header, le.f32(1, 2)))
      expect(error.message).toBe(
        `bad.safetensors: tensor "w": shape [3] of F32 needs 12 bytes but data_offsets [0, 8] span 8`
      )
    }))

  it.effect("overlapping ranges, gaps, and ranges out of bounds", () =>
    Effect.gen(function* () {
      const overlap = yield* refusal(
        assemble(
          JSON.stringify({
            a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
            b: { dtype: "F32", shape: [2], data_offsets: [4, 12] }
          }),
          le.f32(1, 2, 3)
        )
      )
      expect(overlap.message).toBe(
        `bad.safetensors: tensor "b": data_offsets [4, 12] overlap tensor "a" (which ends at 8)`
      )
      const gap = yield* refusal(
        assemble(JSON.stringify({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }), le.f32(1, 2))
      )
      expect(gap.message).toContain(`leave bytes 0..4 unused`)
      const outside = yield* refusal(
        assemble(JSON.stringify({ a: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }), le.f32(1, 2))
      )
      expect(outside.message).toBe(
        `bad.safetensors: tensor "a": data_offsets [8, 12] run past the 8-byte data region (file truncated?)`
      )
    }))

  it.effect("truncated data", () =>
    Effect.gen(function* () {
      const bytes = good()
      const error = yield* refusal(bytes.subarray(0, bytes.length - 4))
      expect(error.tensor).toBe("b")
      expect(error.message).toBe(
        `bad.safetensors: tensor "b": data_offsets [8, 20] run past the 16-byte data region (file truncated?)`
      )
    }))

  it.effect("trailing garbage after the last tensor", () =>
    Effect.gen(function* () {
      const error = yield* refusal(concat(good(), new Uint8Array(5)))
      expect(error.tensor).toBeUndefined()
      expect(error.message).toBe(
        `bad.safetensors: 5 bytes after the last tensor (data region is 25 bytes, tensors cover 20): trailing garbage or a wrong header length`
      )
    }))

  it.effect("metadata that is not strings", () =>
    Effect.gen(function* () {
      const error = yield* refusal(assemble(JSON.stringify({ __metadata__: { layers: 4 } }), []))
      expect(error.message).toBe(`bad.safetensors: metadata "layers" is 4, but metadata values must be strings`)
    }))

  it("parseSafetensors is the same check without Effect", () => {
    expect(Either.isRight(parseSafetensors(good(), "ok"))).toBe(true)
    const result = parseSafetensors(new Uint8Array(3), "x")
    expect(Either.isLeft(result) && result.left.source).toBe("x")
  })
})

describe("expectTensors", () => {
  const decoded = {
    tensors: {
      "wte.weight": f32([2, 16], Array(32).fill(0)),
      "h.0.attn.c_attn.weight": f32([16, 48], Array(16 * 48).fill(0)),
      "h.0.attn.bias": f32([1], [0]),
      "lm_head.weight": f32([2, 16], Array(32).fill(0))
    }
  }
  const expected = {
    "wte.weight": [2, 16],
    "h.0.attn.c_attn.weight": [16, 96],
    "ln_f.bias": [16],
    "ln_f.weight": [16]
  }

  it.effect("reports every wrong shape, missing and unexpected name in one message", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(expectTensors(decoded, expected, "model.safetensors"))
      expect(error._tag).toBe("TensorsMismatch")
      expect(error.missing).toEqual(["ln_f.bias", "ln_f.weight"])
      expect(error.unexpected).toEqual(["h.0.attn.bias", "lm_head.weight"])
      expect(error.wrongShape).toEqual([{ name: "h.0.attn.c_attn.weight", actual: [16, 48], expected: [16, 96] }])
      expect(error.message).toBe(
        "model.safetensors: h.0.attn.c_attn.weight has shape [16,48], expected [16,96]; " +
          "missing ln_f.bias, ln_f.weight; unexpected h.0.attn.bias, lm_head.weight"
      )
    }))

  it.effect("passes an exact match, and tolerates names the caller chooses to ignore", () =>
    Effect.gen(function* () {
      yield* expectTensors(decoded, { "wte.weight": [2, 16], "h.0.attn.c_attn.weight": [16, 48], "lm_head.weight": [2, 16] }, "m", {
        ignore: (name) => name.endsWith(".attn.bias")
      })
      // Scalars are shape [], which is not the same as [1].
      const scalar = yield* Effect.flip(expectTensors({ tensors: { s: f32([], [1]) } }, { s: [1] }, "m"))
      expect(scalar.message).toBe("m: s has shape [], expected [1]")
      // A name that is a property of every object is still missing when absent.
      const proto = yield* Effect.flip(expectTensors({ tensors: {} }, { constructor: [1] }, "m"))
      expect(proto.missing).toEqual(["constructor"])
    }))
})

describe("files on disk", () => {
  it.scoped("writeSafetensorsFile then readSafetensorsFile round-trips and leaves one file", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => fs.mkdtemp(nodePath.join(os.tmpdir(), "glassbox-st-"))),
        (d) => Effect.promise(() => fs.rm(d, { recursive: true, force: true }))
      )
      const path = nodePath.join(dir, "model.safetensors")
      const tensors = { "wte.weight": randomTensor([7, 4], 3), "ln_f.bias": randomTensor([4], 4) }
      yield* writeSafetensorsFile(path, tensors, { step: "12" })
      expect(yield* Effect.promise(() => fs.readdir(dir))).toEqual(["model.safetensors"])
      const read = yield* readSafetensorsFile(path)
      expect(read.metadata).toEqual({ step: "12" })
      expect(Array.from(read.tensors["wte.weight"].data)).toEqual(Array.from(tensors["wte.weight"].data))

      // A tensor that cannot be encoded fails as a typed error naming the file; nothing is written.
      const other = nodePath.join(dir, "broken.safetensors")
      const error = yield* Effect.flip(writeSafetensorsFile(other, { w: f32([2], [1]) }))
      expect(error._tag).toBe("SafetensorsError")
      expect(error.message).toBe(`${other}: tensor "w": shape [2] needs 2 values but data holds 1`)
      expect(yield* Effect.promise(() => fs.readdir(dir))).toEqual(["model.safetensors"])

      // Damage on disk is reported with the file's path.
      yield* Effect.promise(() => fs.truncate(path, 100))
      const damaged = yield* Effect.flip(readSafetensorsFile(path))
      expect(damaged.message.startsWith(`${path}: `)).toBe(true)

      const missing = yield* Effect.flip(readSafetensorsFile(nodePath.join(dir, "nope.safetensors")))
      expect(missing._tag).toBe("ReadFailed")
      expect(missing.message).toContain("ENOENT")
    }))
})
