// The forward pass and its inputs: tokenizer, seeded init, numeric building blocks against known
// values, invariants of each stage, and the export names and layouts the tfjs comparison relies on.
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { forward, gelu, layerNorm, softmaxRows } from "../../src/walkthrough/forward.ts"
import { erf, mat, row } from "../../src/walkthrough/math.ts"
import { initParams, paramShapes, tinyConfig } from "../../src/walkthrough/model.ts"
import { tokenize } from "../../src/walkthrough/vocab.ts"
import { toModelConfig, walkthrough } from "../../src/walkthrough/walkthrough.ts"
import { run } from "./helpers.ts"

describe("tokens", () => {
  it("the default text: <BOS> I love transformers <EOS>", () => {
    const t = Either.getOrThrow(tokenize("I love transformers"))
    expect(t.vocab).toEqual(["<BOS>", "<EOS>", "I", "love", "transformers"])
    expect(t.tokens).toEqual([0, 2, 3, 4, 1])
    expect(t.inputs).toEqual([0, 2, 3, 4])
    expect(t.targets).toEqual([2, 3, 4, 1])
  })

  it("words in order of first appearance, repeats share an id", () => {
    const t = Either.getOrThrow(tokenize("  the cat saw   the dog "))
    expect(t.vocab).toEqual(["<BOS>", "<EOS>", "the", "cat", "saw", "dog"])
    expect(t.tokens).toEqual([0, 2, 3, 4, 2, 5, 1])
  })

  it("empty and over-long text are one-line tagged errors", () => {
    for (const [text, pattern] of [
      ["   ", /text: is empty/],
      [Array.from({ length: 17 }, (_, i) => `w${i}`).join(" "), /text: has 17 words; give at most 16/]
    ] as const) {
      const r = walkthrough({ text })
      expect(Either.isLeft(r)).toBe(true)
      if (Either.isLeft(r)) {
        expect(r.left._tag).toBe("WalkthroughInputError")
        expect(r.left.message).toMatch(pattern)
        expect(r.left.message).not.toContain("\n")
      }
    }
    expect(Either.isRight(walkthrough({ text: Array.from({ length: 16 }, (_, i) => `w${i}`).join(" "), verify: false }))).toBe(true)
  })

  it("bad options are one-line tagged errors naming the field", () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ lr: 0 }, /walkthrough lr: .*positive/],
      [{ beta2: 1 }, /walkthrough beta2:/],
      [{ gelu: "relu" }, /walkthrough gelu:/],
      [{ context: 2 }, /walkthrough context: is 2 but the text needs 4 positions/],
      [{ colour: true }, /walkthrough colour: is unexpected/]
    ]
    for (const [options, pattern] of cases) {
      const r = walkthrough(options as never)
      expect(Either.isLeft(r) && r.left.message).toMatch(pattern)
    }
  })
})

describe("seeded initialisation", () => {
  const c = tinyConfig(5, 4)
  it("is deterministic, per tensor, and no two matrices start equal", () => {
    const a = initParams(c, 1337)
    const b = initParams(c, 1337)
    expect(a).toEqual(b)
    const other = initParams(c, 1338)
    expect(other["wte.weight"].data).not.toEqual(a["wte.weight"].data)
    const firsts = Object.values(a).filter((t) => t.shape.length === 2).map((t) => t.data[0])
    expect(new Set(firsts).size).toBe(firsts.length)
    // a tensor's stream depends only on (seed, name): more rows of wpe leave the first rows alone
    const longer = initParams(tinyConfig(5, 9), 1337)
    expect(longer["wpe.weight"].data.subarray(0, 4 * 16)).toEqual(a["wpe.weight"].data)
    expect(longer["h.0.mlp.c_fc.weight"].data).toEqual(a["h.0.mlp.c_fc.weight"].data)
  })

  it("scales: weights ~0.02, c_proj ~0.02/√2, gpt2 scheme has zero biases and unit LayerNorm", () => {
    const big = tinyConfig(50, 64, { dModel: 64, dFF: 256, heads: 4 })
    const p = initParams(big, 5)
    const std = (xs: Float64Array) => Math.sqrt(xs.reduce((s, x) => s + x * x, 0) / xs.length)
    expect(std(p["h.0.mlp.c_fc.weight"].data)).toBeCloseTo(0.02, 3)
    expect(std(p["h.0.mlp.c_proj.weight"].data)).toBeCloseTo(0.02 / Math.SQRT2, 3)
    const g = initParams(c, 5, "gpt2")
    expect(Array.from(g["h.0.ln_1.weight"].data)).toEqual(new Array(16).fill(1))
    expect(Array.from(g["h.0.attn.c_attn.bias"].data)).toEqual(new Array(48).fill(0))
    const n = initParams(c, 5, "nonzero")
    expect(n["h.0.attn.c_attn.bias"].data.every((x) => x !== 0)).toBe(true)
    expect(n["ln_f.weight"].data.every((x) => x !== 1 && Math.abs(x - 1) < 0.5)).toBe(true)
  })
})

describe("building blocks", () => {
  it("erf to within two ulp", () => {
    const known: Array<[number, number]> = [
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
      [-1.5, -0.9661051464753108]
    ]
    for (const [x, y] of known) expect(Math.abs(erf(x) - y)).toBeLessThanOrEqual(4.5e-16 * Math.abs(y)) // within two units in the last place
  })

  it("GELU: erf form exact, tanh form GPT-2's approximation", () => {
    expect(gelu("erf")(1)).toBeCloseTo(0.8413447460685429, 15)
    expect(gelu("tanh")(1)).toBeCloseTo(0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * 1.044715)), 15)
    expect(Math.abs(gelu("tanh")(1) - gelu("erf")(1))).toBeLessThan(2e-4)
    expect(gelu("erf")(-10)).toBeCloseTo(0, 15)
  })

  it("LayerNorm: biased variance, ε inside the root", () => {
    const x = mat(1, 4, Float64Array.from([1, 2, 3, 4]))
    const ln = layerNorm(x, Float64Array.from([1, 1, 1, 1]), Float64Array.from([0, 0, 0, 0]))
    expect(ln.mean[0]).toBe(2.5)
    expect(ln.variance[0]).toBe(1.25) // (2.25 + 0.25 + 0.25 + 2.25) / 4
    expect(ln.std[0]).toBe(Math.sqrt(1.25 + 1e-5))
    expect(ln.xhat.data[0]).toBe(-1.5 / Math.sqrt(1.25 + 1e-5))
  })

  it("softmax with the causal mask: masked entries exactly 0, rows sum to 1", () => {
    const s = mat(2, 2, Float64Array.from([0.3, -Infinity, 1, 2]))
    const a = softmaxRows(s)
    expect(Array.from(a.data.subarray(0, 2))).toEqual([1, 0])
    expect(a.data[3]).toBeCloseTo(Math.exp(2) / (Math.exp(1) + Math.exp(2)), 15)
  })
})

describe("the forward pass", () => {
  const r = run()
  const f = r.forward
  const T = r.tokens.inputs.length

  it("embeddings are rows of wte and wpe", () => {
    const id = r.tokens.inputs[2]
    expect(row(f.tokEmbed, 2)).toEqual(r.params["wte.weight"].data.subarray(id * 16, id * 16 + 16))
    expect(row(f.posEmbed, 2)).toEqual(r.params["wpe.weight"].data.subarray(2 * 16, 3 * 16))
  })

  it("attention is causal and each pattern row is a distribution", () => {
    for (const h of f.blocks[0].heads) {
      for (let i = 0; i < T; i++) {
        const a = row(h.pattern, i)
        expect(a.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 14)
        for (let j = i + 1; j < T; j++) {
          expect(a[j]).toBe(0)
          expect(h.scores.data[i * T + j]).toBe(-Infinity)
        }
      }
      expect(h.pattern.data[0]).toBe(1) // the first position can only see itself
    }
  })

  it("the loss is the mean of −log p(target) and starts near ln V", () => {
    const manual = r.tokens.targets.reduce((s, y, t) => s - Math.log(f.probs.data[t * r.config.vocab + y]), 0) / T
    expect(f.loss).toBeCloseTo(manual, 13)
    expect(Math.abs(f.loss - Math.log(r.config.vocab))).toBeLessThan(0.2)
  })

  it("tied and untied differ only in where the logits come from", () => {
    const untied = run({ tied: false })
    expect(untied.params["lm_head.weight"].shape).toEqual([5, 16])
    expect(r.params["lm_head.weight"]).toBeUndefined()
    expect(untied.params["wte.weight"]).toEqual(r.params["wte.weight"])
    expect(untied.hooks["blocks.0.hook_resid_post"]).toEqual(r.hooks["blocks.0.hook_resid_post"])
    expect(untied.loss).not.toBe(r.loss)
  })
})

describe("exports for the tfjs comparison", () => {
  const r = run()
  it("parameters carry GPT-2 names and layouts", () => {
    expect(Object.fromEntries(Object.entries(r.params).map(([k, t]) => [k, t.shape]))).toEqual({
      "wte.weight": [5, 16],
      "wpe.weight": [4, 16],
      "h.0.ln_1.weight": [16],
      "h.0.ln_1.bias": [16],
      "h.0.attn.c_attn.weight": [16, 48],
      "h.0.attn.c_attn.bias": [48],
      "h.0.attn.c_proj.weight": [16, 16],
      "h.0.attn.c_proj.bias": [16],
      "h.0.ln_2.weight": [16],
      "h.0.ln_2.bias": [16],
      "h.0.mlp.c_fc.weight": [16, 64],
      "h.0.mlp.c_fc.bias": [64],
      "h.0.mlp.c_proj.weight": [64, 16],
      "h.0.mlp.c_proj.bias": [16],
      "ln_f.weight": [16],
      "ln_f.bias": [16]
    })
    expect(Object.keys(r.grads)).toEqual(Object.keys(r.params))
    expect(paramShapes(r.config).map(([n]) => n)).toEqual(Object.keys(r.params))
    for (const t of Object.values(r.params)) expect(t.data).toBeInstanceOf(Float64Array)
    expect(toModelConfig(r.config)).toMatchObject({ layers: 1, heads: 2, d_model: 16, d_ff: 64, context: 4, tied: true, gelu: "tanh", vocab_size: 5 })
  })

  it("hook values by TransformerLens name and shape", () => {
    const shapes = Object.fromEntries(Object.entries(r.hooks).map(([k, t]) => [k, t.shape]))
    expect(shapes).toMatchObject({
      hook_embed: [4, 16],
      hook_pos_embed: [4, 16],
      "blocks.0.hook_resid_pre": [4, 16],
      "blocks.0.ln1.hook_normalized": [4, 16],
      "blocks.0.attn.hook_q": [4, 2, 8],
      "blocks.0.attn.hook_k": [4, 2, 8],
      "blocks.0.attn.hook_v": [4, 2, 8],
      "blocks.0.attn.hook_attn_scores": [2, 4, 4],
      "blocks.0.attn.hook_pattern": [2, 4, 4],
      "blocks.0.attn.hook_z": [4, 2, 8],
      "blocks.0.hook_attn_out": [4, 16],
      "blocks.0.hook_resid_mid": [4, 16],
      "blocks.0.mlp.hook_pre": [4, 64],
      "blocks.0.mlp.hook_post": [4, 64],
      "blocks.0.hook_mlp_out": [4, 16],
      "blocks.0.hook_resid_post": [4, 16],
      "ln_final.hook_normalized": [4, 16],
      logits: [4, 5]
    })
  })

  it("head h of hook_q is columns h·8..(h+1)·8 of y·W_attn + b (x @ W layout)", () => {
    const y = r.hooks["blocks.0.ln1.hook_normalized"].data
    const w = r.params["h.0.attn.c_attn.weight"].data
    const b = r.params["h.0.attn.c_attn.bias"].data
    const q = r.hooks["blocks.0.attn.hook_q"].data
    const k = r.hooks["blocks.0.attn.hook_k"].data
    const pos = 3
    const head = 1
    for (let i = 0; i < 8; i++) {
      const col = (offset: number) => {
        let s = b[offset + head * 8 + i]
        for (let j = 0; j < 16; j++) s += y[pos * 16 + j] * w[j * 48 + offset + head * 8 + i]
        return s
      }
      expect(q[(pos * 2 + head) * 8 + i]).toBeCloseTo(col(0), 15)
      expect(k[(pos * 2 + head) * 8 + i]).toBeCloseTo(col(16), 15)
    }
    // scores [head, dest, src] = q·k / √8, −∞ above the diagonal
    const scores = r.hooks["blocks.0.attn.hook_attn_scores"].data
    let dot = 0
    for (let i = 0; i < 8; i++) dot += q[(3 * 2 + 1) * 8 + i] * k[(1 * 2 + 1) * 8 + i]
    expect(scores[1 * 16 + 3 * 4 + 1]).toBeCloseTo(dot / Math.sqrt(8), 15)
    expect(scores[1 * 16 + 1 * 4 + 3]).toBe(-Infinity)
  })

  it("forward() on the hooks' own inputs reproduces them (pure, deterministic)", () => {
    const again = forward(r.config, r.params, r.tokens.inputs, r.tokens.targets)
    expect(again.loss).toBe(r.loss)
  })
})

describe("golden numbers (docs/walkthrough.md quotes them; the tfjs comparison relies on them)", () => {
  it("the default step: loss 1.648338 → 1.495462; untied 1.635437 → 1.461447", () => {
    const r = run()
    expect([r.loss.toFixed(6), r.lossAfter.toFixed(6)]).toEqual(["1.648338", "1.495462"])
    const u = run({ tied: false })
    expect([u.loss.toFixed(6), u.lossAfter.toFixed(6)]).toEqual(["1.635437", "1.461447"])
    expect(r.params["wte.weight"].data[0].toFixed(10)).toBe("0.0066618715")
  })
})
