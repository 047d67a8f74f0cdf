// Hugging Face's config.json: decoded by Schema with each missing or wrong field named in the
// file's own keys; the GELU flavour and MLP width follow transformers' meaning of each field.
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { decodeHfConfig } from "../../src/format/hf-config.ts"
import { hfConfigOf, hfIncompatibility, modelConfigFromHf } from "../../src/model/hf.ts"
import { gpt2SmallConfig } from "../../src/model/config.ts"

const gpt2 = { architectures: ["GPT2LMHeadModel"], model_type: "gpt2", vocab_size: 50257, n_positions: 1024, n_ctx: 1024, n_embd: 768, n_layer: 12, n_head: 12, n_inner: null, activation_function: "gelu_new", layer_norm_epsilon: 1e-5 }

const problems = (json: unknown) => {
  const r = decodeHfConfig(typeof json === "string" ? json : JSON.stringify(json), "m/config.json")
  return Either.isLeft(r) ? r.left.message : "decoded"
}

describe("config.json", () => {
  it("GPT-2 small's config.json is GPT-2 small", () => {
    const r = decodeHfConfig(JSON.stringify(gpt2), "config.json")
    expect(Either.isRight(r) && modelConfigFromHf(r.right)).toEqual(gpt2SmallConfig)
  })

  it("names every missing or wrong field with its own key, in one line", () => {
    const message = problems({ model_type: "gpt2", n_embd: 128, n_head: "4", n_layer: -1, vocab_size: 1.5, activation_function: "relu" })
    expect(message).toBe(
      'm/config.json: n_head is "4", expected number; n_layer is -1, expected a positive number; n_positions is missing; ' +
        'vocab_size is 1.5, expected an integer; activation_function is "relu", expected "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" or "gelu"'
    )
  })

  it("refuses what is not JSON, not an object, or not GPT-2", () => {
    expect(problems("{ n_embd: ")).toMatch(/^m\/config.json: not valid JSON/)
    expect(problems([1])).toBe("m/config.json: expected a JSON object")
    expect(problems({ ...gpt2, model_type: "llama" })).toBe('m/config.json: model_type is "llama"; only GPT-2-layout models ("gpt2") load here')
  })

  it("n_inner, tie_word_embeddings and the activation map to our fields", () => {
    const r = decodeHfConfig(JSON.stringify({ ...gpt2, n_inner: 100, tie_word_embeddings: false, activation_function: "gelu", layer_norm_epsilon: 1e-6 }), "c")
    expect(Either.isRight(r) && modelConfigFromHf(r.right)).toMatchObject({ dFF: 100, tied: false, gelu: "erf", lnEps: 1e-6 })
  })

  it("what an export writes decodes back to the same model", () => {
    const config = { ...gpt2SmallConfig, dFF: 1000, tied: false, lnEps: 1e-6 }
    const written = hfConfigOf(config, "gpt2")
    expect(written).toMatchObject({ architectures: ["GPT2LMHeadModel"], n_inner: 1000, bos_token_id: 50256, eos_token_id: 50256 })
    const r = decodeHfConfig(JSON.stringify(written), "c")
    expect(Either.isRight(r) && modelConfigFromHf(r.right)).toEqual(config)
    expect(hfIncompatibility(config)).toBeUndefined()
    expect(hfIncompatibility({ ...config, position: "rope" })).toContain("RoPE")
    expect(hfIncompatibility({ ...config, position: "alibi" })).toContain("ALiBi")
    expect(hfIncompatibility({ ...config, gelu: "erf" })).toBeUndefined() // transformers' GPT-2 runs "gelu" as x·Φ(x)
    expect(hfConfigOf({ ...config, gelu: "erf" }, "gpt2").activation_function).toBe("gelu")
  })
})
