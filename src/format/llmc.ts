// llm.c's model file: how a glassbox model moves to llm.c (train_gpt2.c / train_gpt2.cu, which
// train GPT-2 on many GPUs with MPI + NCCL) and how llm.c's weights come back.
//
// Layout (every integer and float little-endian):
//
//   header: 256 × int32   [0] 20240326 (magic)   [1] version: 3 = float32, 5 = bfloat16
//                         [2] maxT  [3] V  [4] L  [5] NH  [6] C  [7] Vp (V rounded up to 128)
//   then, back to back, in this order and nothing else:
//     wte [Vp,C]  wpe [maxT,C]  ln1w [L,C]  ln1b [L,C]  qkvw [L,3C,C]  qkvb [L,3C]
//     attprojw [L,C,C]  attprojb [L,C]  ln2w [L,C]  ln2b [L,C]  fcw [L,4C,C]  fcb [L,4C]
//     fcprojw [L,C,4C]  fcprojb [L,C]  lnfw [C]  lnfb [C]
//
// The linear weights are PyTorch's nn.Linear [out, in]; GPT-2's checkpoints (and ours) keep
// OpenAI's Conv1D [in, out], so every matrix is transposed on the way out and back. wte has
// Vp - V extra rows, zero, because llm.c pads the vocabulary to a multiple of 128 for its
// kernels; the head is always tied to wte. llm.c's model is exactly GPT-2: learned positions,
// tanh GELU, d_ff = 4·C, LayerNorm ε = 1e-5, tied head. A model that differs cannot be written
// (llmcProblems names why), rather than written wrong.
//
// bfloat16 is the top half of a float32 (same 8-bit exponent, 7 mantissa bits): converting
// rounds to nearest, ties to even, as PyTorch's `.to(torch.bfloat16)` does, so each weight moves
// by at most half the spacing of 8 significant bits: a relative error of at most 2⁻⁸.
import { Data, Effect, Either } from "effect"
import { ReadFailed, readFileBytes, WriteFailed, writeFileAtomic } from "./atomic.ts"

export const LLMC_MODEL_MAGIC = 20240326
/** The magic of llm.c's token shards; named here so a model reader can say what it was given. */
export const LLMC_TOKENS_MAGIC = 20240520
export const LLMC_HEADER_INTS = 256
const HEADER_BYTES = LLMC_HEADER_INTS * 4

export type LlmcDtype = "float32" | "bfloat16"
export const llmcVersionOf = (dtype: LlmcDtype): 3 | 5 => (dtype === "float32" ? 3 : 5)

export interface LlmcHeader {
  readonly version: 3 | 5
  readonly maxT: number
  readonly vocab: number
  readonly layers: number
  readonly heads: number
  readonly channels: number
  readonly paddedVocab: number
}

/**
 * What a GPT's shape must say for llm.c: the fields of our ModelConfig that the file records or
 * fixes, declared here so this room stays below model/ (a ModelConfig is one of these).
 */
export interface GptShape {
  readonly vocabSize: number
  readonly context: number
  readonly dModel: number
  readonly layers: number
  readonly heads: number
  readonly dFF: number
  readonly position: string
  readonly tied: boolean
  readonly gelu: string
  readonly lnEps: number
}

/** A tensor as our weights hold it: GPT-2 name, row-major float32. */
export type PlainTensor = { readonly shape: ReadonlyArray<number>; readonly data: Float32Array }

/** The model cannot be expressed in llm.c's file; `reason` says which property. */
export class LlmcUnsupported extends Data.TaggedError("LlmcUnsupported")<{ readonly source: string; readonly reasons: ReadonlyArray<string> }> {
  override get message() {
    return `${this.source}: llm.c cannot represent this model: ${this.reasons.join("; ")}`
  }
}

/** The bytes are not an llm.c model file we can read (wrong magic, version, sizes, length). */
export class LlmcFormatError extends Data.TaggedError("LlmcFormatError")<{ readonly source: string; readonly reason: string }> {
  override get message() {
    return `${this.source}: ${this.reason}`
  }
}

/** llm.c pads the vocabulary to a multiple of 128 so its matmul kernels see aligned rows. */
export const paddedVocabSize = (vocab: number): number => Math.ceil(vocab / 128) * 128

/** Why a model cannot go to llm.c, each one short phrase; empty when it can. */
export const llmcProblems = (c: GptShape): string[] => {
  const problems: string[] = []
  if (c.position !== "learned") problems.push(`positions are "${c.position}", llm.c has learned positions only`)
  if (!c.tied) problems.push(`the LM head is untied (lm_head.weight), llm.c ties it to wte`)
  if (c.gelu !== "tanh") problems.push(`GELU is "${c.gelu}", llm.c uses the tanh approximation`)
  if (c.dFF !== 4 * c.dModel) problems.push(`d_ff is ${c.dFF}, llm.c fixes it at 4·d_model = ${4 * c.dModel}`)
  if (c.lnEps !== 1e-5) problems.push(`LayerNorm eps is ${c.lnEps}, llm.c fixes it at 1e-5`)
  return problems
}

/** The llm.c model a header describes, as our config (GPT-2 in every respect llm.c fixes). */
export const configOfLlmcHeader = (h: LlmcHeader) => ({
  vocabSize: h.vocab,
  context: h.maxT,
  dModel: h.channels,
  layers: h.layers,
  heads: h.heads,
  dFF: 4 * h.channels,
  dropout: 0,
  position: "learned" as const,
  tied: true,
  gelu: "tanh" as const,
  lnEps: 1e-5
})

// ---------------------------------------------------------------------------------------------
// The tensor order, once, for writing and reading

/**
 * One llm.c tensor: its name, its shape, and where its values come from in GPT-2 names. A
 * per-layer section stacks `perLayer(i)` for i = 0..L-1; `transpose` marks Conv1D [in,out]
 * matrices that llm.c stores as [out,in].
 */
interface Section {
  readonly name: string
  readonly shape: ReadonlyArray<number>
  readonly source: { readonly single: string } | { readonly perLayer: (layer: number) => string }
  readonly transpose: boolean
}

export const llmcSections = (h: Omit<LlmcHeader, "version">): ReadonlyArray<Section> => {
  const { maxT, layers: L, channels: C, paddedVocab: Vp } = h
  const layer = (name: string, shape: number[], gpt2: (i: number) => string, transpose = false): Section =>
    ({ name, shape: [L, ...shape], source: { perLayer: gpt2 }, transpose })
  return [
    { name: "wte", shape: [Vp, C], source: { single: "wte.weight" }, transpose: false },
    { name: "wpe", shape: [maxT, C], source: { single: "wpe.weight" }, transpose: false },
    layer("ln1w", [C], (i) => `h.${i}.ln_1.weight`),
    layer("ln1b", [C], (i) => `h.${i}.ln_1.bias`),
    layer("qkvw", [3 * C, C], (i) => `h.${i}.attn.c_attn.weight`, true),
    layer("qkvb", [3 * C], (i) => `h.${i}.attn.c_attn.bias`),
    layer("attprojw", [C, C], (i) => `h.${i}.attn.c_proj.weight`, true),
    layer("attprojb", [C], (i) => `h.${i}.attn.c_proj.bias`),
    layer("ln2w", [C], (i) => `h.${i}.ln_2.weight`),
    layer("ln2b", [C], (i) => `h.${i}.ln_2.bias`),
    layer("fcw", [4 * C, C], (i) => `h.${i}.mlp.c_fc.weight`, true),
    layer("fcb", [4 * C], (i) => `h.${i}.mlp.c_fc.bias`),
    layer("fcprojw", [C, 4 * C], (i) => `h.${i}.mlp.c_proj.weight`, true),
    layer("fcprojb", [C], (i) => `h.${i}.mlp.c_proj.bias`),
    { name: "lnfw", shape: [C], source: { single: "ln_f.weight" }, transpose: false },
    { name: "lnfb", shape: [C], source: { single: "ln_f.bias" }, transpose: false }
  ]
}

const product = (shape: ReadonlyArray<number>) => shape.reduce((a, b) => a * b, 1)

/** Number of values after the header: what the file's length must account for. */
export const llmcParameterCount = (h: Omit<LlmcHeader, "version">): number =>
  llmcSections(h).reduce((n, s) => n + product(s.shape), 0)

/** [rows, cols] → [cols, rows], copying into `out` at `at`. */
const transposeInto = (src: Float32Array, rows: number, cols: number, out: Float32Array, at: number) => {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[at + c * rows + r] = src[r * cols + c]
}

// ---------------------------------------------------------------------------------------------
// bfloat16

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** float32 → bfloat16 bits, rounding to nearest with ties to even (NaN stays a quiet NaN). */
export const floatToBf16 = (x: number): number => {
  f32[0] = x
  const bits = u32[0]
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) return ((bits >>> 16) | 0x0040) & 0xffff
  // Adding 0x7fff plus the lowest kept bit rounds the dropped 16 bits half-to-even.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff
}

/** bfloat16 bits → the float32 they are the top half of (exact). */
export const bf16ToFloat = (half: number): number => {
  u32[0] = (half & 0xffff) << 16
  return f32[0]
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * The llm.c file for a model given as GPT-2-named tensors. Throws LlmcUnsupported when the
 * model is not GPT-2-shaped (see llmcProblems) or a tensor is missing or mis-shaped; the file
 * functions below turn that into a typed failure.
 */
export const encodeLlmcModel = (
  config: GptShape,
  tensors: ReadonlyMap<string, PlainTensor>,
  dtype: LlmcDtype,
  source = "model"
): Uint8Array => {
  const problems = llmcProblems(config)
  if (problems.length > 0) throw new LlmcUnsupported({ source, reasons: problems })
  const header: LlmcHeader = {
    version: llmcVersionOf(dtype),
    maxT: config.context,
    vocab: config.vocabSize,
    layers: config.layers,
    heads: config.heads,
    channels: config.dModel,
    paddedVocab: paddedVocabSize(config.vocabSize)
  }
  const values = new Float32Array(llmcParameterCount(header)) // zero-filled: wte's padding rows stay 0
  let at = 0
  for (const section of llmcSections(header)) {
    const names = "single" in section.source ? [section.source.single] : Array.from({ length: header.layers }, (_, i) => (section.source as { perLayer: (i: number) => string }).perLayer(i))
    // The shape one GPT-2 tensor must have: a layer's slice of the section, in Conv1D layout.
    const sliceShape = "single" in section.source ? section.shape.slice() : section.shape.slice(1)
    const expected = section.transpose ? [sliceShape[1], sliceShape[0]] : sliceShape
    for (const name of names) {
      const t = tensors.get(name)
      const isWte = section.name === "wte"
      const want = isWte ? [config.vocabSize, config.dModel] : expected
      if (t === undefined || t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
        throw new LlmcUnsupported({ source, reasons: [`tensor ${name} is ${t === undefined ? "missing" : `[${t.shape.join(",")}]`}, llm.c needs [${want.join(",")}]`] })
      }
      if (section.transpose) transposeInto(t.data, expected[0], expected[1], values, at)
      else values.set(t.data, at)
      at += product(sliceShape)
    }
    if (section.name === "wte") at = product(section.shape) // skip the zero padding rows
  }
  return encodeLlmcValues(header, values)
}

/** Header + values in the header's dtype. */
export const encodeLlmcValues = (header: LlmcHeader, values: Float32Array): Uint8Array => {
  const width = header.version === 3 ? 4 : 2
  const out = new Uint8Array(HEADER_BYTES + values.length * width)
  const view = new DataView(out.buffer)
  const fields = [LLMC_MODEL_MAGIC, header.version, header.maxT, header.vocab, header.layers, header.heads, header.channels, header.paddedVocab]
  fields.forEach((v, i) => view.setInt32(4 * i, v, true))
  let offset = HEADER_BYTES
  if (header.version === 3) for (let i = 0; i < values.length; i++, offset += 4) view.setFloat32(offset, values[i], true)
  else for (let i = 0; i < values.length; i++, offset += 2) view.setUint16(offset, floatToBf16(values[i]), true)
  return out
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface DecodedLlmcModel {
  readonly header: LlmcHeader
  readonly config: ReturnType<typeof configOfLlmcHeader>
  /** GPT-2 names and Conv1D layouts, wte without llm.c's padding rows. */
  readonly tensors: Map<string, PlainTensor>
}

/** Parse and check the header; pure. */
export const parseLlmcHeader = (bytes: Uint8Array, source: string): Either.Either<LlmcHeader, LlmcFormatError> => {
  const fail = (reason: string) => Either.left(new LlmcFormatError({ source, reason }))
  if (bytes.length < HEADER_BYTES) {
    return fail(`file is ${bytes.length} bytes, shorter than llm.c's ${HEADER_BYTES}-byte header (truncated, or not an llm.c model)`)
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const int = (i: number) => view.getInt32(4 * i, true)
  if (int(0) === LLMC_TOKENS_MAGIC) return fail(`this is an llm.c token shard (magic ${LLMC_TOKENS_MAGIC}), not a model file`)
  if (int(0) !== LLMC_MODEL_MAGIC) return fail(`magic number is ${int(0)}, an llm.c model file starts with ${LLMC_MODEL_MAGIC}`)
  const version = int(1)
  if (version !== 3 && version !== 5) return fail(`version ${version} is not supported (3 = float32, 5 = bfloat16)`)
  const [maxT, vocab, layers, heads, channels, paddedVocab] = [2, 3, 4, 5, 6, 7].map(int)
  const named = { maxT, vocab, layers, heads, channels, paddedVocab }
  for (const [key, value] of Object.entries(named)) if (!(value > 0)) return fail(`header field ${key} is ${value}, expected a positive integer`)
  if (channels % heads !== 0) return fail(`channels ${channels} are not divisible by heads ${heads}`)
  if (paddedVocab < vocab) return fail(`padded vocabulary ${paddedVocab} is smaller than the vocabulary ${vocab}`)
  return Either.right({ version, ...named })
}

/** Parse a whole model file into GPT-2-named tensors; pure. */
export const parseLlmcModel = (bytes: Uint8Array, source: string): Either.Either<DecodedLlmcModel, LlmcFormatError> =>
  Either.flatMap(parseLlmcHeader(bytes, source), (header) => {
    const width = header.version === 3 ? 4 : 2
    const count = llmcParameterCount(header)
    const expectedBytes = HEADER_BYTES + count * width
    if (bytes.length !== expectedBytes) {
      return Either.left(new LlmcFormatError({
        source,
        reason: `file is ${bytes.length} bytes, but its header (L ${header.layers}, C ${header.channels}, Vp ${header.paddedVocab}, maxT ${header.maxT}, ${header.version === 3 ? "float32" : "bfloat16"}) needs ${expectedBytes} (${bytes.length < expectedBytes ? "truncated" : "trailing bytes"})`
      }))
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const values = new Float32Array(count)
    if (header.version === 3) for (let i = 0; i < count; i++) values[i] = view.getFloat32(HEADER_BYTES + 4 * i, true)
    else for (let i = 0; i < count; i++) values[i] = bf16ToFloat(view.getUint16(HEADER_BYTES + 2 * i, true))

    const tensors = new Map<string, PlainTensor>()
    let at = 0
    for (const section of llmcSections(header)) {
      if (section.name === "wte") {
        // Only the real vocabulary: the padding rows are llm.c's, not the model's.
        const C = header.channels
        tensors.set("wte.weight", { shape: [header.vocab, C], data: values.slice(0, header.vocab * C) })
        at += product(section.shape)
        continue
      }
      const single = "single" in section.source
      const slice = single ? section.shape.slice() : section.shape.slice(1)
      const size = product(slice)
      for (let layer = 0; layer < (single ? 1 : header.layers); layer++) {
        const name = "single" in section.source ? section.source.single : section.source.perLayer(layer)
        const chunk = values.subarray(at, at + size)
        if (section.transpose) {
          // llm.c [out, in] back to Conv1D [in, out].
          const data = new Float32Array(size)
          transposeInto(chunk, slice[0], slice[1], data, 0)
          tensors.set(name, { shape: [slice[1], slice[0]], data })
        } else tensors.set(name, { shape: slice, data: chunk.slice() })
        at += size
      }
    }
    return Either.right({ header, config: configOfLlmcHeader(header), tensors })
  })

// ---------------------------------------------------------------------------------------------
// Files

export const readLlmcModelFile = (path: string): Effect.Effect<DecodedLlmcModel, ReadFailed | LlmcFormatError> =>
  Effect.flatMap(readFileBytes(path), (bytes) => parseLlmcModel(bytes, path))

/** Write atomically: a crash leaves the previous file or the complete new one. */
export const writeLlmcModelFile = (
  path: string,
  config: GptShape,
  tensors: ReadonlyMap<string, PlainTensor>,
  dtype: LlmcDtype
): Effect.Effect<void, WriteFailed | LlmcUnsupported> =>
  Effect.try({
    try: () => encodeLlmcModel(config, tensors, dtype, path),
    catch: (e) => (e instanceof LlmcUnsupported ? e : new LlmcUnsupported({ source: path, reasons: [String(e)] }))
  }).pipe(Effect.flatMap((bytes) => writeFileAtomic(path, bytes)))
