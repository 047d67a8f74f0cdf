// The safetensors file format: how our weights leave this program and how GPT-2's enter it.
//
// Chosen over pickles and ad-hoc binaries because it is trivial to parse safely and every
// framework reads it, so a model trained here loads in PyTorch and a Hugging Face GPT-2 loads
// here. Layout (all integers little-endian):
//
//   [ N: u64 ][ N bytes of JSON header, space-padded ][ data bytes ................ ]
//   header = { "__metadata__"?: { string: string },
//              "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ... }
//
// Offsets count from the start of the data region; tensors tile it exactly, with no gaps or
// overlaps, which is what lets a reader check a file's integrity from the header alone.
// Encoding and decoding are pure; only readSafetensorsFile / writeSafetensorsFile touch disk.
import { Data, Effect, Either } from "effect"
import { ReadFailed, readFileBytes, WriteFailed, writeFileAtomic } from "./atomic.ts"

/** A tensor as stored: row-major float32 values. Foreign dtypes are converted on read. */
export type NamedTensor = { dtype: "F32"; shape: number[]; data: Float32Array }

export type DecodedSafetensors = {
  tensors: Record<string, NamedTensor>
  metadata: Record<string, string>
}

/** The file (or buffer) is not a valid safetensors file, or holds something we cannot convert. */
export class SafetensorsError extends Data.TaggedError("SafetensorsError")<{
  readonly source: string
  /** The tensor the problem is in, when it is in one. */
  readonly tensor?: string
  readonly reason: string
}> {
  override get message() {
    const where = this.tensor === undefined ? this.source : `${this.source}: tensor "${this.tensor}"`
    return `${where}: ${this.reason}`
  }
}

export type ShapeMismatch = { name: string; actual: number[]; expected: number[] }

/** A well-formed file whose tensors do not fit the model that wants to load them. */
export class TensorsMismatch extends Data.TaggedError("TensorsMismatch")<{
  readonly source: string
  readonly missing: ReadonlyArray<string>
  readonly unexpected: ReadonlyArray<string>
  readonly wrongShape: ReadonlyArray<ShapeMismatch>
}> {
  override get message() {
    const problems = [
      ...this.wrongShape.map(
        (m) => `${m.name} has shape ${showShape(m.actual)}, expected ${showShape(m.expected)}`
      ),
      ...(this.missing.length > 0 ? [`missing ${this.missing.join(", ")}`] : []),
      ...(this.unexpected.length > 0 ? [`unexpected ${this.unexpected.join(", ")}`] : [])
    ]
    return `${this.source}: ${problems.join("; ")}`
  }
}

const showShape = (shape: ReadonlyArray<number>) => `[${shape.join(",")}]`

// Python's reference implementation refuses headers over 100 MB; a larger length prefix means
// the file is not safetensors (or its first bytes are damaged), not that the header is huge.
const MAX_HEADER_BYTES = 100_000_000
const METADATA_KEY = "__metadata__"

// Every dtype of the specification, with its element size, so a file's byte ranges can be
// checked even for a dtype we then refuse to convert.
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8
}

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

// ---------------------------------------------------------------------------------------------
// Encoding

/**
 * Serialise tensors (sorted by name, contiguous) with optional string metadata.
 * Throws SafetensorsError when a tensor's data length does not match its shape: that is a bug in
 * the caller, not a property of any file. writeSafetensorsFile turns it into a typed failure.
 */
export const encodeSafetensors = (
  tensors: Record<string, NamedTensor>,
  metadata?: Record<string, string>
): Uint8Array => {
  const names = Object.keys(tensors).sort()
  const entries: Array<string> = []
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    entries.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`)
  }
  let offset = 0
  for (const name of names) {
    const { dtype, shape, data } = tensors[name]
    const fail = (reason: string) => new SafetensorsError({ source: "encodeSafetensors", tensor: name, reason })
    if (name === METADATA_KEY) throw fail(`"${METADATA_KEY}" is reserved for the header's metadata`)
    if (dtype !== "F32") throw fail(`dtype ${String(dtype)} cannot be written; only F32 is supported`)
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw fail(`shape ${showShape(shape)} must hold non-negative integers`)
    }
    const count = shape.reduce((a, b) => a * b, 1)
    if (count !== data.length) {
      throw fail(`shape ${showShape(shape)} needs ${count} values but data holds ${data.length}`)
    }
    const end = offset + data.byteLength
    entries.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape, data_offsets: [offset, end] })}`)
    offset = end
  }
  // Built by hand rather than JSON.stringify(object): JS objects list integer-like keys ("0")
  // first, which would break the sorted layout.
  const json = new TextEncoder().encode(`{${entries.join(",")}}`)
  // Pad with spaces so the data region starts 8-byte aligned; readers can then view it in place.
  const headerLength = Math.ceil(json.length / 8) * 8
  const out = new Uint8Array(8 + headerLength + offset)
  const view = new DataView(out.buffer)
  view.setBigUint64(0, BigInt(headerLength), true)
  out.set(json, 8)
  out.fill(0x20, 8 + json.length, 8 + headerLength)
  let cursor = 8 + headerLength
  for (const name of names) {
    const data = tensors[name].data
    if (hostIsLittleEndian) {
      out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), cursor)
    } else {
      for (let i = 0; i < data.length; i++) view.setFloat32(cursor + 4 * i, data[i], true)
    }
    cursor += data.byteLength
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Decoding

type Entry = { name: string; dtype: string; shape: number[]; begin: number; end: number }

/**
 * Parse and validate a safetensors buffer. Pure: returns the tensors (copied out of `bytes`, so
 * the buffer can be dropped) or the first problem found. `source` names the file in errors.
 */
export const parseSafetensors = (
  bytes: Uint8Array,
  source: string
): Either.Either<DecodedSafetensors, SafetensorsError> =>
  Either.gen(function* () {
    const fail = (reason: string, tensor?: string) =>
      Either.left(new SafetensorsError({ source, reason, ...(tensor === undefined ? {} : { tensor }) }))

    if (bytes.length < 8) {
      return yield* fail(`file is ${bytes.length} bytes, too short for the 8-byte header length (truncated or empty?)`)
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const declared = view.getBigUint64(0, true)
    if (declared > BigInt(bytes.length - 8)) {
      return yield* fail(
        `header length ${declared} exceeds the ${bytes.length - 8} bytes after the length prefix (truncated, or not a safetensors file)`
      )
    }
    const headerLength = Number(declared)
    if (headerLength > MAX_HEADER_BYTES) {
      return yield* fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`)
    }
    if (headerLength < 2 || bytes[8] !== 0x7b) {
      return yield* fail(`header does not start with "{" (wrong header length, or not a safetensors file)`)
    }

    let header: unknown
    try {
      header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)))
    } catch (cause) {
      return yield* fail(`header is not valid UTF-8 JSON (${cause instanceof Error ? cause.message : String(cause)})`)
    }
    if (!isPlainObject(header)) return yield* fail(`header is not a JSON object`)

    const metadata: Array<[string, string]> = []
    const entries: Array<Entry> = []
    for (const [name, value] of Object.entries(header)) {
      if (name === METADATA_KEY) {
        if (!isPlainObject(value)) return yield* fail(`"${METADATA_KEY}" must be an object of strings`)
        for (const [key, text] of Object.entries(value)) {
          if (typeof text !== "string") {
            return yield* fail(`metadata "${key}" is ${JSON.stringify(text)}, but metadata values must be strings`)
          }
          metadata.push([key, text])
        }
        continue
      }
      if (!isPlainObject(value)) return yield* fail(`entry is not an object`, name)
      const { dtype, shape, data_offsets } = value
      if (typeof dtype !== "string") return yield* fail(`missing or non-string "dtype"`, name)
      if (!Array.isArray(shape) || !shape.every(isCount)) {
        return yield* fail(`missing "shape" or it is not a list of non-negative integers`, name)
      }
      if (!Array.isArray(data_offsets) || data_offsets.length !== 2 || !data_offsets.every(isCount)) {
        return yield* fail(`missing "data_offsets" or it is not [begin, end] as non-negative integers`, name)
      }
      const [begin, end] = data_offsets as [number, number]
      if (end < begin) return yield* fail(`data_offsets [${begin}, ${end}] end before they begin`, name)
      entries.push({ name, dtype, shape: shape as number[], begin, end })
    }

    // Sizes before ranges: a dtype or shape error explains a bad range better than the range does.
    const dataStart = 8 + headerLength
    const dataLength = bytes.length - dataStart
    for (const entry of entries) {
      const size = Object.hasOwn(DTYPE_BYTES, entry.dtype) ? DTYPE_BYTES[entry.dtype] : undefined
      if (size === undefined) {
        return yield* fail(`unknown dtype "${entry.dtype}" (known: ${Object.keys(DTYPE_BYTES).join(", ")})`, entry.name)
      }
      const count = entry.shape.reduce((a, b) => a * b, 1)
      if (!Number.isSafeInteger(count * size) || count * size !== entry.end - entry.begin) {
        return yield* fail(
          `shape ${showShape(entry.shape)} of ${entry.dtype} needs ${count * size} bytes but data_offsets [${entry.begin}, ${entry.end}] span ${entry.end - entry.begin}`,
          entry.name
        )
      }
      if (entry.end > dataLength) {
        return yield* fail(
          `data_offsets [${entry.begin}, ${entry.end}] run past the ${dataLength}-byte data region (file truncated?)`,
          entry.name
        )
      }
    }

    // The ranges must tile the data region: sorted by start, each begins where the last ended.
    const ordered = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end)
    let covered = 0
    let previous: Entry | undefined
    for (const entry of ordered) {
      if (entry.begin < covered) {
        return yield* fail(
          `data_offsets [${entry.begin}, ${entry.end}] overlap tensor "${previous?.name}" (which ends at ${covered})`,
          entry.name
        )
      }
      if (entry.begin > covered) {
        return yield* fail(`data_offsets [${entry.begin}, ${entry.end}] leave bytes ${covered}..${entry.begin} unused (gap in the data region)`, entry.name)
      }
      covered = entry.end
      previous = entry
    }
    if (covered !== dataLength) {
      return yield* fail(
        `${dataLength - covered} bytes after the last tensor (data region is ${dataLength} bytes, tensors cover ${covered}): trailing garbage or a wrong header length`
      )
    }

    const tensors: Array<[string, NamedTensor]> = []
    for (const entry of entries) {
      const raw = bytes.subarray(dataStart + entry.begin, dataStart + entry.end)
      const converted = toFloat32(entry.dtype, raw)
      if (typeof converted === "string") return yield* fail(converted, entry.name)
      tensors.push([entry.name, { dtype: "F32", shape: entry.shape, data: converted }])
    }
    // fromEntries defines own properties, so even a tensor named "__proto__" stays a tensor.
    return { tensors: Object.fromEntries(tensors), metadata: Object.fromEntries(metadata) }
  })

/** parseSafetensors as an Effect, for loaders written in Effect. */
export const decodeSafetensors = (
  bytes: Uint8Array,
  source: string
): Effect.Effect<DecodedSafetensors, SafetensorsError> => Effect.suspend(() => parseSafetensors(bytes, source))

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const isCount = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0

// ---------------------------------------------------------------------------------------------
// dtype conversion. Everything becomes float32; a conversion that would change a value is
// refused (integers beyond float32's exact range), except F64, whose rounding to the nearest
// float32 is the same rounding any framework applies when it casts weights down.

/** Returns the values as float32, or a reason the dtype cannot be converted. */
const toFloat32 = (dtype: string, raw: Uint8Array): Float32Array | string => {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
  const count = raw.byteLength / DTYPE_BYTES[dtype]
  const out = new Float32Array(count)
  switch (dtype) {
    case "F32":
      // Copy into a fresh, aligned buffer: the tensor's offset need not be 4-aligned. (Not
      // raw.slice(): on a Node Buffer that is a view, whose .buffer is the whole shared pool.)
      if (hostIsLittleEndian) return new Float32Array(new Uint8Array(raw).buffer)
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true)
      return out
    case "F64":
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true)
      return out
    case "F16":
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true))
      return out
    case "BF16": {
      // bfloat16 is the top half of a float32: same sign and 8-bit exponent, 7 mantissa bits.
      const bits = new Uint32Array(out.buffer)
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16
      return out
    }
    case "BOOL":
      for (let i = 0; i < count; i++) {
        const b = raw[i]
        if (b > 1) return `BOOL value ${b} at index ${i} is neither 0 nor 1`
        out[i] = b
      }
      return out
    case "U8": case "I8": case "U16": case "I16": case "U32": case "I32":
    case "U64": case "I64":
      return integersToFloat32(dtype, view, out)
    default:
      return `dtype ${dtype} is not supported; convert the tensor to F32, F16, BF16 or F64 first`
  }
}

const integersToFloat32 = (dtype: string, view: DataView, out: Float32Array): Float32Array | string => {
  const read: (i: number) => number | bigint =
    dtype === "U8" ? (i) => view.getUint8(i)
    : dtype === "I8" ? (i) => view.getInt8(i)
    : dtype === "U16" ? (i) => view.getUint16(2 * i, true)
    : dtype === "I16" ? (i) => view.getInt16(2 * i, true)
    : dtype === "U32" ? (i) => view.getUint32(4 * i, true)
    : dtype === "I32" ? (i) => view.getInt32(4 * i, true)
    : dtype === "U64" ? (i) => view.getBigUint64(8 * i, true)
    : (i) => view.getBigInt64(8 * i, true)
  for (let i = 0; i < out.length; i++) {
    const value = read(i)
    const asNumber = Number(value)
    // float32 holds every integer up to 2^24 exactly, and larger ones only if low bits are zero.
    if (Math.fround(asNumber) !== asNumber || (typeof value === "bigint" && BigInt(asNumber) !== value)) {
      return `${dtype} value ${value} at index ${i} cannot be represented exactly as float32`
    }
    out[i] = asNumber
  }
  return out
}

/**
 * IEEE 754 half precision: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
 * Exponent 0 means subnormal (no implicit leading 1), exponent 31 means infinity or NaN.
 */
export const halfToFloat = (half: number): number => {
  const sign = half & 0x8000 ? -1 : 1
  const exponent = (half >> 10) & 0x1f
  const mantissa = half & 0x3ff
  if (exponent === 0) return sign * mantissa * 2 ** -24
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15)
}

// ---------------------------------------------------------------------------------------------
// Fitting a file to a model

/**
 * Check that `decoded` holds exactly the expected tensor names and shapes, and report every
 * discrepancy in one error, so a wrong config is diagnosed in one run rather than one name at a
 * time. `ignore` names tensors that may be present without being expected (GPT-2's published
 * file carries `h.{i}.attn.bias` causal-mask buffers, which are not weights).
 */
export const expectTensors = (
  decoded: { tensors: Record<string, NamedTensor> },
  expected: Record<string, ReadonlyArray<number>>,
  source: string,
  options?: { ignore?: (name: string) => boolean }
): Effect.Effect<void, TensorsMismatch> =>
  Effect.suspend(() => {
    const missing: Array<string> = []
    const wrongShape: Array<ShapeMismatch> = []
    for (const name of Object.keys(expected).sort()) {
      const tensor = Object.hasOwn(decoded.tensors, name) ? decoded.tensors[name] : undefined
      if (tensor === undefined) missing.push(name)
      else if (!sameShape(tensor.shape, expected[name])) {
        wrongShape.push({ name, actual: tensor.shape, expected: [...expected[name]] })
      }
    }
    const ignore = options?.ignore ?? (() => false)
    const unexpected = Object.keys(decoded.tensors)
      .filter((name) => !Object.hasOwn(expected, name) && !ignore(name))
      .sort()
    return missing.length + wrongShape.length + unexpected.length === 0
      ? Effect.void
      : Effect.fail(new TensorsMismatch({ source, missing, unexpected, wrongShape }))
  })

const sameShape = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) =>
  a.length === b.length && a.every((d, i) => d === b[i])

// ---------------------------------------------------------------------------------------------
// Files

/** Read and validate a safetensors file. The whole file is read into memory (fine up to ~2 GB). */
export const readSafetensorsFile = (
  path: string
): Effect.Effect<DecodedSafetensors, ReadFailed | SafetensorsError> =>
  Effect.flatMap(readFileBytes(path), (bytes) => decodeSafetensors(bytes, path))

/** Write a safetensors file atomically: a crash leaves the old file or the whole new one. */
export const writeSafetensorsFile = (
  path: string,
  tensors: Record<string, NamedTensor>,
  metadata?: Record<string, string>
): Effect.Effect<void, WriteFailed | SafetensorsError> =>
  Effect.try({
    try: () => encodeSafetensors(tensors, metadata),
    catch: (error) =>
      error instanceof SafetensorsError
        ? new SafetensorsError({ source: path, reason: error.reason, ...(error.tensor === undefined ? {} : { tensor: error.tensor }) })
        : new SafetensorsError({ source: path, reason: `could not encode: ${String(error)}` })
  }).pipe(Effect.flatMap((bytes) => writeFileAtomic(path, bytes)))
