// llm.c model files are how a run moves to many GPUs and back, and a wrong transpose or a tensor
// out of order would still load there, silently training a different network. So the writer is
// checked against a reader written here from llm.c's documented layout (not the module's own
// section table), against a file made by an independent numpy script (test/fixtures/llmc/
// make_fixture.py) whose logits it states, and by round trips that must give identical logits.
import * as tf from "@tensorflow/tfjs"
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import {
  bf16ToFloat,
  encodeLlmcModel,
  floatToBf16,
  LlmcUnsupported,
  parseLlmcModel,
  readLlmcModelFile,
  writeLlmcModelFile,
  type PlainTensor
} from "../../src/format/llmc.ts"
import type { ModelConfig } from "../../src/model/config.ts"
import { gptFromValues, type GPT } from "../../src/model/gpt.ts"
import { maxAbsDiff, randomValues, tinyConfig, useBackend } from "../helpers.ts"

const FIXTURES = path.join(import.meta.dirname, "..", "fixtures", "llmc")
const fixture = JSON.parse(fs.readFileSync(path.join(FIXTURES, "tiny.json"), "utf8")) as {
  header: Record<string, number>
  ids: number[]
  logits_v3: number[][]
  logits_v5: number[][]
}

const gptConfig = (overrides: Partial<ModelConfig> = {}) => tinyConfig({ vocabSize: 11, dModel: 8, dFF: 32, context: 8, ...overrides })

const logitsOf = (model: GPT, ids: number[]): Float32Array =>
  tf.tidy(() => model.forward(tf.tensor2d([ids], [1, ids.length], "int32")).dataSync() as Float32Array)

const unwrap = <A, E>(e: Either.Either<A, E>): A => {
  if (Either.isLeft(e)) throw new Error(String((e.left as { message?: string }).message ?? e.left))
  return e.right
}

/**
 * llm.c's layout read without the module: the header's eight ints, then the sixteen tensors in
 * train_gpt2.c's order with the sizes it computes (fill_in_parameter_sizes), each as a flat
 * Float32Array. Any disagreement in order, size or padding with the exporter shows up here.
 */
const independentRead = (bytes: Uint8Array) => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const header = Array.from({ length: 256 }, (_, i) => view.getInt32(4 * i, true))
  const [magic, version, maxT, V, L, NH, C, Vp] = header
  const sizes: Array<[string, number]> = [
    ["wte", Vp * C], ["wpe", maxT * C], ["ln1w", L * C], ["ln1b", L * C], ["qkvw", L * 3 * C * C], ["qkvb", L * 3 * C],
    ["attprojw", L * C * C], ["attprojb", L * C], ["ln2w", L * C], ["ln2b", L * C], ["fcw", L * 4 * C * C], ["fcb", L * 4 * C],
    ["fcprojw", L * C * 4 * C], ["fcprojb", L * C], ["lnfw", C], ["lnfb", C]
  ]
  const width = version === 3 ? 4 : 2
  const tensors = new Map<string, Float32Array>()
  let offset = 1024
  for (const [name, n] of sizes) {
    const out = new Float32Array(n)
    for (let i = 0; i < n; i++) {
      out[i] = width === 4 ? view.getFloat32(offset + 4 * i, true) : new Float32Array(new Uint32Array([view.getUint16(offset + 2 * i, true) << 16]).buffer)[0]
    }
    tensors.set(name, out)
    offset += n * width
  }
  return { header, magic, version, maxT, V, L, NH, C, Vp, tensors, endOffset: offset }
}

const asMap = (values: Map<string, { shape: number[]; data: Float32Array }>) => values as ReadonlyMap<string, PlainTensor>

describe("llm.c model files", () => {
  beforeAll(() => useBackend("cpu"))

  it("the numpy fixture imports and gives the logits its script states (float32, version 3)", () => {
    const decoded = unwrap(parseLlmcModel(fs.readFileSync(path.join(FIXTURES, "tiny_v3.bin")), "tiny_v3.bin"))
    const { magic, ...fields } = fixture.header
    expect(magic).toBe(20240326)
    expect(decoded.header).toEqual({ version: 3, ...fields })
    expect(fields).toEqual({ maxT: 16, vocab: 257, layers: 2, heads: 2, channels: 16, paddedVocab: 384 })
    const model = gptFromValues(decoded.config, decoded.tensors)
    const logits = logitsOf(model, fixture.ids)
    model.dispose()
    expect(logits.length).toBe(fixture.ids.length * 257)
    expect(maxAbsDiff(logits, fixture.logits_v3.flat())).toBeLessThan(2e-4)
    // Not vacuous: the logits vary by several units across the vocabulary.
    expect(Math.max(...fixture.logits_v3[0]) - Math.min(...fixture.logits_v3[0])).toBeGreaterThan(2)
  })

  it("the numpy fixture in bfloat16 (version 5) gives the logits of its rounded weights", () => {
    const decoded = unwrap(parseLlmcModel(fs.readFileSync(path.join(FIXTURES, "tiny_v5.bin")), "tiny_v5.bin"))
    expect(decoded.header.version).toBe(5)
    const model = gptFromValues(decoded.config, decoded.tensors)
    const logits = logitsOf(model, fixture.ids)
    model.dispose()
    expect(maxAbsDiff(logits, fixture.logits_v5.flat())).toBeLessThan(2e-4)
    // The two files really differ by bf16 rounding, and the test can tell them apart.
    expect(maxAbsDiff(fixture.logits_v3.flat(), fixture.logits_v5.flat())).toBeGreaterThan(1e-3)
  })

  it("every header field and every tensor, in llm.c's order and layout, checked by an independent reader", () => {
    const config = gptConfig({ context: 6, layers: 2, heads: 2 })
    const values = randomValues(config, 5)
    const bytes = encodeLlmcModel(config, asMap(values), "float32")
    const r = independentRead(bytes)
    expect(r.header.slice(0, 8)).toEqual([20240326, 3, 6, 11, 2, 2, 8, 128])
    expect(r.header.slice(8).every((v) => v === 0)).toBe(true)
    expect(r.endOffset).toBe(bytes.length)
    const { L, C, V, Vp } = r
    const g = (name: string) => values.get(name)!.data
    // wte: the real rows, then zero padding up to Vp.
    const wte = r.tensors.get("wte")!
    expect(Array.from(wte.subarray(0, V * C))).toEqual(Array.from(g("wte.weight")))
    expect(wte.subarray(V * C).every((v) => v === 0)).toBe(true)
    expect(wte.length).toBe(Vp * C)
    expect(Array.from(r.tensors.get("wpe")!)).toEqual(Array.from(g("wpe.weight")))
    // Conv1D [in,out] element (i, o) must sit at llm.c's [out,in] position (o, i).
    const checkLinear = (section: string, gpt2: string, inDim: number, outDim: number) => {
      const flat = r.tensors.get(section)!
      for (let l = 0; l < L; l++) {
        const w = g(`h.${l}.${gpt2}`)
        for (let i = 0; i < inDim; i++) {
          for (let o = 0; o < outDim; o++) expect(flat[l * outDim * inDim + o * inDim + i]).toBe(w[i * outDim + o])
        }
      }
    }
    checkLinear("qkvw", "attn.c_attn.weight", C, 3 * C)
    checkLinear("attprojw", "attn.c_proj.weight", C, C)
    checkLinear("fcw", "mlp.c_fc.weight", C, 4 * C)
    checkLinear("fcprojw", "mlp.c_proj.weight", 4 * C, C)
    const stacked = (section: string, gpt2: string) =>
      expect(Array.from(r.tensors.get(section)!)).toEqual(Array.from({ length: L }, (_, l) => Array.from(g(`h.${l}.${gpt2}`))).flat())
    stacked("ln1w", "ln_1.weight")
    stacked("ln1b", "ln_1.bias")
    stacked("qkvb", "attn.c_attn.bias")
    stacked("attprojb", "attn.c_proj.bias")
    stacked("ln2w", "ln_2.weight")
    stacked("ln2b", "ln_2.bias")
    stacked("fcb", "mlp.c_fc.bias")
    stacked("fcprojb", "mlp.c_proj.bias")
    expect(Array.from(r.tensors.get("lnfw")!)).toEqual(Array.from(g("ln_f.weight")))
    expect(Array.from(r.tensors.get("lnfb")!)).toEqual(Array.from(g("ln_f.bias")))
  })

  it("export then import gives identical tensors and identical logits (float32)", () => {
    const config = gptConfig()
    const values = randomValues(config, 9)
    const back = unwrap(parseLlmcModel(encodeLlmcModel(config, asMap(values), "float32"), "mem"))
    expect(back.config).toEqual(config)
    for (const [name, v] of values) {
      expect(back.tensors.get(name)!.shape).toEqual(v.shape)
      expect(Array.from(back.tensors.get(name)!.data), name).toEqual(Array.from(v.data))
    }
    const ids = [1, 4, 2, 9, 0, 3, 10, 7]
    const a = gptFromValues(config, values)
    const b = gptFromValues(back.config, back.tensors)
    expect(Array.from(logitsOf(b, ids))).toEqual(Array.from(logitsOf(a, ids)))
    a.dispose()
    b.dispose()
  })

  it("bfloat16 (version 5): every weight within bf16 rounding, logits close", () => {
    const config = gptConfig()
    const values = randomValues(config, 11)
    const bytes = encodeLlmcModel(config, asMap(values), "bfloat16")
    expect(bytes.length).toBe(1024 + (independentRead(encodeLlmcModel(config, asMap(values), "float32")).endOffset - 1024) / 2)
    const back = unwrap(parseLlmcModel(bytes, "mem"))
    expect(back.header.version).toBe(5)
    let changed = 0
    for (const [name, v] of values) {
      const got = back.tensors.get(name)!.data
      for (let i = 0; i < v.data.length; i++) {
        // 8 significant bits: the spacing in [2^e, 2^(e+1)) is 2^(e-7), rounding moves at most half of it.
        expect(Math.abs(got[i] - v.data[i])).toBeLessThanOrEqual(Math.abs(v.data[i]) * 2 ** -8)
        if (got[i] !== v.data[i]) changed++
      }
    }
    expect(changed).toBeGreaterThan(0)
    const ids = [3, 1, 4, 1, 5, 9, 2, 6]
    const a = gptFromValues(config, values)
    const b = gptFromValues(back.config, back.tensors)
    const diff = maxAbsDiff(logitsOf(a, ids), logitsOf(b, ids))
    expect(diff).toBeGreaterThan(0)
    expect(diff).toBeLessThan(0.05)
    a.dispose()
    b.dispose()
  })

  it("bfloat16 rounding is to nearest with ties to even", () => {
    expect(floatToBf16(1)).toBe(0x3f80)
    expect(bf16ToFloat(0x3f80)).toBe(1)
    expect(floatToBf16(1 + 2 ** -8)).toBe(0x3f80) // halfway, ties to the even 1.0
    expect(floatToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82) // halfway, ties to the even mantissa 2
    expect(floatToBf16(1 + 2 ** -8 + 2 ** -12)).toBe(0x3f81) // just above halfway
    expect(floatToBf16(-2.5)).toBe(0xc020)
    expect(Number.isNaN(bf16ToFloat(floatToBf16(NaN)))).toBe(true)
    expect(bf16ToFloat(floatToBf16(Infinity))).toBe(Infinity)
  })

  it("refuses, in one line naming the reason, each model llm.c cannot represent", () => {
    const cases: Array<[Partial<ModelConfig>, string]> = [
      [{ dFF: 24 }, "d_ff is 24, llm.c fixes it at 4·d_model = 32"],
      [{ tied: false }, "the LM head is untied"],
      [{ position: "rope" }, `positions are "rope"`],
      [{ position: "alibi" }, `positions are "alibi"`],
      [{ gelu: "erf" }, `GELU is "erf"`],
      [{ lnEps: 1e-6 }, "LayerNorm eps is 0.000001"]
    ]
    for (const [overrides, phrase] of cases) {
      const config = gptConfig(overrides)
      let error: unknown
      try {
        encodeLlmcModel(config, asMap(randomValues(config)), "float32", "runs/x")
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(LlmcUnsupported)
      const message = (error as LlmcUnsupported).message
      expect(message).toContain(phrase)
      expect(message).toContain("runs/x: llm.c cannot represent this model")
      expect(message.split("\n")).toHaveLength(1)
    }
  })

  it.effect("damaged or foreign files are refused with what is wrong", () =>
    Effect.gen(function* () {
      const config = gptConfig()
      const good = encodeLlmcModel(config, asMap(randomValues(config)), "float32")
      const reason = (bytes: Uint8Array) => {
        const r = parseLlmcModel(bytes, "f.bin")
        return Either.isLeft(r) ? r.left.message : "accepted"
      }
      expect(reason(good.subarray(0, good.length - 4))).toMatch(/^f\.bin: file is \d+ bytes, .* needs \d+ \(truncated\)$/)
      expect(reason(new Uint8Array([...good, 0, 0]))).toContain("(trailing bytes)")
      expect(reason(good.subarray(0, 100))).toContain("shorter than llm.c's 1024-byte header")
      const patched = (index: number, value: number) => {
        const copy = good.slice()
        new DataView(copy.buffer).setInt32(4 * index, value, true)
        return copy
      }
      expect(reason(patched(0, 20240520))).toContain("llm.c token shard")
      expect(reason(patched(0, 12345))).toContain("magic number is 12345")
      expect(reason(patched(1, 4))).toContain("version 4 is not supported (3 = float32, 5 = bfloat16)")
      expect(reason(patched(5, 3))).toContain("channels 8 are not divisible by heads 3")
      expect(reason(patched(7, 8))).toContain("padded vocabulary 8 is smaller than the vocabulary 11")
      const missing = yield* Effect.flip(readLlmcModelFile(path.join(os.tmpdir(), "no-such-llmc.bin")))
      expect(missing._tag).toBe("ReadFailed")
    }))

  it.effect("files are written atomically and read back", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-llmc-"))
      const file = path.join(dir, "model.bin")
      const config = gptConfig()
      const values = randomValues(config, 3)
      yield* writeLlmcModelFile(file, config, asMap(values), "float32")
      expect(fs.readdirSync(dir)).toEqual(["model.bin"])
      const back = yield* readLlmcModelFile(file)
      expect(Array.from(back.tensors.get("h.1.mlp.c_proj.weight")!.data)).toEqual(Array.from(values.get("h.1.mlp.c_proj.weight")!.data))
      const refused = yield* Effect.flip(writeLlmcModelFile(path.join(dir, "untied.bin"), { ...config, tied: false }, asMap(values), "float32"))
      expect(refused._tag).toBe("LlmcUnsupported")
      expect(fs.readdirSync(dir)).toEqual(["model.bin"])
      fs.rmSync(dir, { recursive: true, force: true })
    }))
})
