// Every kernel of the native backend against the plain cpu backend on the same random inputs:
// products with every transpose, batch broadcast, odd sizes, one row and zero-size edges;
// elementwise ops with each broadcast pattern; reductions, transposes, softmax; and the fused
// operations (LayerNorm, GELU, softmax, softmax + cross-entropy, AdamW) with their gradients.
// Relative error is measured as max|a − b| / max(1, max|b|).
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { fusedOps } from "../../src/backend/fused.ts"
import { pooledArrayBytes } from "../../src/backend/native.ts"
import { Rng } from "../../src/rng/rng.ts"
import { useBackend } from "../helpers.ts"
import { nativeTestsRun } from "./native-setup.ts"

const onBoth = async <T>(f: () => T): Promise<{ cpu: T; native: T }> => {
  await tf.setBackend("cpu")
  const cpu = f()
  await tf.setBackend("native")
  const native = f()
  return { cpu, native }
}

const rand = (n: number, seed: number) => Rng.seeded(seed).normalArray(n, 1)
const tensor = (shape: number[], seed: number) => tf.tensor(rand(shape.reduce((a, b) => a * b, 1), seed), shape)

const relError = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length)
  let diff = 0
  let scale = 1
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]))
    scale = Math.max(scale, Math.abs(b[i]))
  }
  return diff / scale
}

const values = (t: tf.Tensor) => {
  const v = Array.from(t.dataSync())
  t.dispose()
  return { shape: t.shape, v }
}

describe.runIf(nativeTestsRun)("native backend kernels", () => {
  beforeAll(async () => {
    await useBackend("cpu")
    await useBackend("native")
  })

  const matmulCases: Array<[string, number[], number[], boolean, boolean]> = [
    ["plain 2-D", [7, 5], [5, 3], false, false],
    ["A transposed", [5, 7], [5, 3], true, false],
    ["B transposed", [7, 5], [3, 5], false, true],
    ["both transposed", [5, 7], [3, 5], true, true],
    ["one row", [1, 33], [33, 17], false, false],
    ["one row, B transposed (decoding's head)", [1, 33], [17, 33], false, true],
    ["one row, A transposed", [33, 1], [33, 17], true, false],
    ["one row, large enough to thread", [1, 300], [300, 20000], false, false],
    ["batched", [4, 6, 9], [4, 9, 2], false, false],
    ["batched, both transposed", [4, 9, 6], [4, 2, 9], true, true],
    ["weight broadcast over the batch", [3, 5, 8], [8, 11], false, false],
    ["weight broadcast, B transposed", [3, 5, 8], [11, 8], false, true],
    ["lhs broadcast", [5, 8], [3, 8, 4], false, false],
    ["4-D attention-like", [2, 3, 10, 4], [2, 3, 10, 4], false, true],
    ["large enough to thread", [130, 257], [257, 129], false, false],
    ["zero rows", [0, 4], [4, 3], false, false],
    ["zero inner dimension", [3, 0], [0, 2], false, false]
  ]
  for (const [name, sa, sb, ta, tb] of matmulCases) {
    it(`matMul: ${name}`, async () => {
      const { cpu, native } = await onBoth(() => values(tf.tidy(() => tf.matMul(tensor(sa, 1), tensor(sb, 2), ta, tb))))
      expect(native.shape).toEqual(cpu.shape)
      expect(relError(native.v, cpu.v)).toBeLessThan(1e-5)
    })
  }

  // Shapes drawn at random: every combination of transposes, a batch on one side, both or neither.
  const shapeRng = Rng.seeded(77, "shapes")
  const draw = (max: number) => 1 + Math.floor(shapeRng.uniform() * max)
  for (let i = 0; i < 24; i++) {
    const [M, K, N] = [draw(70), draw(70), draw(70)]
    const batch = draw(4)
    const ta = shapeRng.uniform() < 0.5
    const tb = shapeRng.uniform() < 0.5
    const side = Math.floor(shapeRng.uniform() * 3) // 0: both batched, 1: only A, 2: only B
    const sa = [...(side !== 2 ? [batch] : []), ...(ta ? [K, M] : [M, K])]
    const sb = [...(side !== 1 ? [batch] : []), ...(tb ? [N, K] : [K, N])]
    it(`matMul, random shapes #${i + 1}: [${sa}]${ta ? "ᵀ" : ""} · [${sb}]${tb ? "ᵀ" : ""}`, async () => {
      const { cpu, native } = await onBoth(() => values(tf.tidy(() => tf.matMul(tensor(sa, 100 + i), tensor(sb, 200 + i), ta, tb))))
      expect(native.shape).toEqual(cpu.shape)
      expect(relError(native.v, cpu.v)).toBeLessThan(1e-5)
    })
  }

  for (const activation of ["linear", "relu", "elu", "sigmoid", "leakyrelu"] as const) {
    it(`fused matMul with bias and ${activation}`, async () => {
      const { cpu, native } = await onBoth(() =>
        values(tf.tidy(() => tf.fused.matMul({ a: tensor([9, 13], 70), b: tensor([11, 13], 71), transposeB: true, bias: tensor([11], 72), activation, leakyreluAlpha: 0.1 })))
      )
      expect(native.shape).toEqual(cpu.shape)
      expect(relError(native.v, cpu.v)).toBeLessThan(1e-5)
    })
  }

  it("matMul refuses mismatched inner dimensions", async () => {
    await tf.setBackend("native")
    expect(() => tf.matMul(tf.zeros([2, 3]), tf.zeros([4, 2]))).toThrow(/inner/)
  })

  const binaryCases: Array<[string, number[], number[]]> = [
    ["same shape", [3, 4, 5], [3, 4, 5]],
    ["bias over rows", [6, 7], [7]],
    ["column over rows", [6, 7], [6, 1]],
    ["scalar", [5, 3], []],
    ["scalar on the left", [], [5, 3]],
    ["mask [1,1,T,T] over [B,H,T,T]", [2, 3, 4, 4], [1, 1, 4, 4]],
    ["middle broadcast", [2, 1, 5], [2, 3, 5]],
    ["large", [300, 129], [129]],
    ["empty", [0, 3], [3]]
  ]
  for (const op of ["add", "sub", "mul", "div", "squaredDifference"] as const) {
    for (const [name, sa, sb] of binaryCases) {
      it(`${op}: ${name}`, async () => {
        const { cpu, native } = await onBoth(() =>
          values(tf.tidy(() => tf[op](tensor(sa, 3), op === "div" ? tf.add(tf.abs(tensor(sb, 4)), 0.5) : tensor(sb, 4))))
        )
        expect(native.shape).toEqual(cpu.shape)
        expect(relError(native.v, cpu.v)).toBeLessThan(1e-6)
      })
    }
  }

  it("binary ops on int32 keep their dtype and values", async () => {
    const { cpu, native } = await onBoth(() => values(tf.tidy(() => tf.add(tf.tensor1d([1, 2, 3], "int32"), tf.scalar(4, "int32")))))
    expect(native.v).toEqual(cpu.v)
  })

  for (const op of ["exp", "tanh", "neg", "sqrt", "rsqrt", "square", "log", "reciprocal"] as const) {
    it(`unary ${op}`, async () => {
      const { cpu, native } = await onBoth(() =>
        values(tf.tidy(() => tf[op](["sqrt", "rsqrt", "log", "reciprocal"].includes(op) ? tf.add(tf.abs(tensor([41, 3], 5)), 0.1) : tensor([41, 3], 5))))
      )
      expect(relError(native.v, cpu.v)).toBeLessThan(1e-6)
    })
  }

  const reduceCases: Array<[string, number[], number | number[], boolean]> = [
    ["last axis", [4, 5, 6], -1, false],
    ["last axis, keepDims", [4, 5, 6], -1, true],
    ["leading rows (a bias gradient)", [37, 9], 0, false],
    ["two leading axes", [3, 4, 70], [0, 1], false],
    ["middle axis", [3, 4, 5], 1, true],
    ["everything", [3, 4, 5], [0, 1, 2], false],
    ["non-contiguous axes (cpu path)", [3, 4, 5], [0, 2], false]
  ]
  for (const [name, shape, axis, keep] of reduceCases) {
    it(`sum and max: ${name}`, async () => {
      const { cpu, native } = await onBoth(() => [values(tf.tidy(() => tf.sum(tensor(shape, 6), axis, keep))), values(tf.tidy(() => tf.max(tensor(shape, 6), axis, keep)))])
      for (let i = 0; i < 2; i++) {
        expect(native[i].shape).toEqual(cpu[i].shape)
        expect(relError(native[i].v, cpu[i].v)).toBeLessThan(1e-5)
      }
    })
  }

  it("sum over an empty axis is zero", async () => {
    const { cpu, native } = await onBoth(() => values(tf.tidy(() => tf.sum(tf.zeros([3, 0]), 1))))
    expect(native).toEqual(cpu)
  })

  for (const perm of [[1, 0], [0, 2, 1, 3], [2, 0, 1], [3, 2, 1, 0], [0, 1, 3, 2]]) {
    it(`transpose ${perm}`, async () => {
      const shape = [2, 3, 4, 5].slice(0, perm.length)
      const { cpu, native } = await onBoth(() => values(tf.tidy(() => tf.transpose(tensor(shape, 7), perm))))
      expect(native).toEqual(cpu)
    })
  }

  it("softmax over the last axis, masked rows included", async () => {
    const { cpu, native } = await onBoth(() =>
      values(tf.tidy(() => tf.softmax(tf.add(tensor([2, 3, 5, 5], 8), tf.linalg.bandPart(tf.fill([5, 5], -1e9), 0, -1).sub(tf.linalg.bandPart(tf.fill([5, 5], -1e9), 0, 0))))))
    )
    expect(relError(native.v, cpu.v)).toBeLessThan(1e-6)
  })
})

describe.runIf(nativeTestsRun)("native fused operations against the plain formulas", () => {
  beforeAll(async () => {
    await useBackend("cpu")
    await useBackend("native")
  })

  /** Value and gradient (for a random upstream gradient) of f on native fused vs plain cpu. */
  const compareWithGrad = async (shapes: number[][], fused: (xs: tf.Tensor[]) => tf.Tensor, plain: (xs: tf.Tensor[]) => tf.Tensor) => {
    const run = (f: (xs: tf.Tensor[]) => tf.Tensor) =>
      tf.tidy(() => {
        const xs = shapes.map((s, i) => tensor(s, 10 + i))
        const y = f(xs)
        const dy = tensor(y.shape, 99)
        const grads = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(f(args), dy)))(xs)
        return [Array.from(y.dataSync()), ...grads.map((g) => Array.from(g.dataSync()))]
      })
    await tf.setBackend("cpu")
    const cpu = run(plain)
    await tf.setBackend("native")
    expect(fusedOps()).toBeDefined()
    const native = run(fused)
    for (let i = 0; i < cpu.length; i++) expect(relError(native[i], cpu[i])).toBeLessThan(2e-5)
  }

  const plainLayerNorm = ([x, g, b]: tf.Tensor[]) => {
    const { mean, variance } = tf.moments(x, -1, true)
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b)
  }
  it("LayerNorm and its gradients for x, γ and β", () =>
    compareWithGrad([[3, 5, 16], [16], [16]], ([x, g, b]) => fusedOps()!.layerNorm(x, g, b, 1e-5), plainLayerNorm))
  it("LayerNorm with rows enough to thread", () =>
    compareWithGrad([[600, 64], [64], [64]], ([x, g, b]) => fusedOps()!.layerNorm(x, g, b, 1e-5), plainLayerNorm))

  const plainGelu = ([x]: tf.Tensor[]) =>
    tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI))), 1))
  it("tanh GELU and its gradient", () => compareWithGrad([[7, 33]], ([x]) => fusedOps()!.geluTanh(x), plainGelu))

  it("softmax and its gradient", () => compareWithGrad([[2, 3, 9]], ([x]) => fusedOps()!.softmax(x), ([x]) => tf.softmax(x)))

  // Attention's core: the fused pass against scale·q·kᵀ + bias → softmax → ·v, gradients for q, k, v.
  // The bias is a constant: causal −1e9 above the diagonal (shifted for keys from a cache), plus a
  // per-head slope where it has a head axis (ALiBi's shape).
  const causalBias = (bB: number, bH: number, T: number, Tk: number) => {
    const values: number[] = []
    for (let b = 0; b < bB; b++)
      for (let h = 0; h < bH; h++)
        for (let i = 0; i < T; i++) for (let j = 0; j < Tk; j++) values.push(j > i + Tk - T ? -1e9 : bH > 1 ? -(h + 1) * 0.1 * (i + Tk - T - j) : 0)
    return values
  }
  const attentionCase = (B: number, H: number, T: number, Tk: number, dh: number, bB: number, bH: number) => {
    const bias = causalBias(bB, bH, T, Tk)
    const scale = 1 / Math.sqrt(dh)
    return compareWithGrad(
      [[B, H, T, dh], [B, H, Tk, dh], [B, H, Tk, dh]],
      ([q, k, v]) => fusedOps()!.attention!(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, tf.tensor(bias, [bB, bH, T, Tk]), scale),
      ([q, k, v]) => tf.matMul(tf.softmax(tf.add(tf.matMul(tf.mul(q, scale), k, false, true), tf.tensor(bias, [bB, bH, T, Tk]))), v)
    )
  }
  it("attention core: causal mask broadcast over batch and heads", () => attentionCase(2, 3, 5, 5, 4, 1, 1))
  it("attention core: keys from a cache (Tk > T), a per-batch, per-head bias", () => attentionCase(2, 3, 3, 7, 8, 2, 3))
  it("attention core: one pair large enough to thread its products and rows", () => attentionCase(1, 1, 256, 256, 64, 1, 1))
  it("attention core: many small pairs spread over the threads", () => attentionCase(8, 4, 32, 32, 16, 1, 1))

  it("softmax + cross-entropy: loss sum and (p − onehot)·scale", async () => {
    const n = 6
    const V = 37
    const targets = [0, 5, 36, 7, 7, 20]
    const logits = rand(n * V, 21).map((x) => x * 3)
    // Reference in float64: loss_r = log Σ_j exp(z_rj) − z_r[t_r]; grad = (softmax − onehot)·¼.
    const expected = { loss: 0, grad: [] as number[] }
    for (let r = 0; r < n; r++) {
      const row = logits.slice(r * V, (r + 1) * V)
      const max = Math.max(...row)
      const sum = row.reduce((s, z) => s + Math.exp(z - max), 0)
      expected.loss += Math.log(sum) + max - row[targets[r]]
      row.forEach((z, j) => expected.grad.push((Math.exp(z - max) / sum - (j === targets[r] ? 1 : 0)) * 0.25))
    }
    await tf.setBackend("native")
    const ops = fusedOps()!
    const z = tf.tensor2d(logits, [n, V])
    const t = tf.tensor1d(targets, "int32")
    const { lossSum, probs } = ops.crossEntropy(z, t)
    expect(Math.abs(lossSum - expected.loss) / expected.loss).toBeLessThan(1e-6)
    const g = ops.crossEntropyGrad(probs, t, 0.25)
    expect(relError(g.dataSync(), expected.grad)).toBeLessThan(1e-6)
    tf.dispose([z, t])
    const bad = tf.tensor2d(logits, [n, V])
    const badTargets = tf.tensor1d([0, 1, 2, 3, 4, V], "int32")
    expect(() => ops.crossEntropy(bad, badTargets)).toThrow(/outside the vocabulary/)
    tf.dispose([bad, badTargets])
  })

  it("AdamW in place equals the plain update, and re-issues each weight's data id", async () => {
    const { adamwUpdate, initAdamW } = await import("../../src/train/adamw.ts")
    const shapes: Record<string, number[]> = { "h.0.mlp.c_fc.weight": [9, 70], "h.0.mlp.c_fc.bias": [70], "wte.weight": [13, 9] }
    const run = (backend: string) =>
      tf.tidy(() => {
        const params = new Map(Object.entries(shapes).map(([n, s], i) => [n, tf.variable(tensor(s, 30 + i))] as const))
        const state = initAdamW(params)
        const ids: object[] = []
        for (let step = 0; step < 3; step++) {
          const grads = new Map(Object.entries(shapes).map(([n, s], i) => [n, tensor(s, 40 + 10 * step + i)] as const))
          ids.push(params.get("wte.weight")!.dataId)
          adamwUpdate(params, grads, state, 1e-2, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, decayEmbeddings: true })
        }
        ids.push(params.get("wte.weight")!.dataId)
        const out = [...params.values(), ...state.m.values(), ...state.v.values()].map((p) => Array.from(p.dataSync()))
        for (const p of [...params.values(), ...state.m.values(), ...state.v.values()]) p.dispose()
        expect(new Set(ids).size).toBe(ids.length)
        return { backend, out }
      })
    await tf.setBackend("cpu")
    const cpu = run("cpu")
    await tf.setBackend("native")
    const before = tf.memory().numTensors
    const native = run("native")
    expect(tf.memory().numTensors).toBe(before)
    for (let i = 0; i < cpu.out.length; i++) expect(relError(native.out[i], cpu.out[i])).toBeLessThan(1e-6)
  })

  it("sum of squares over many tensors", async () => {
    await tf.setBackend("native")
    const ts = [tensor([100, 100], 50), tensor([3], 51), tensor([0], 52)]
    const expected = ts.reduce((s, t) => s + Array.from(t.dataSync()).reduce((a, x) => a + x * x, 0), 0)
    expect(Math.abs(fusedOps()!.sumOfSquares(ts) - expected) / expected).toBeLessThan(1e-9)
    tf.dispose(ts)
  })

  it("recycles a disposed tensor's array, but never one that was read out or could be viewed", async () => {
    await tf.setBackend("native")
    const x = tensor([64, 64], 60)
    const first = tf.exp(x)
    const kept = first.dataSync() // escapes: the caller may keep this array
    const copy = Array.from(kept)
    first.dispose()
    const second = tf.exp(tf.neg(x))
    expect(Array.from(kept)).toEqual(copy)
    const before = pooledArrayBytes()
    const third = tf.tanh(x)
    third.dispose() // never read: its array goes back to the pool …
    expect(pooledArrayBytes()).toBe(before + 64 * 64 * 4)
    const fourth = tf.tanh(tf.add(x, 1)) // … and the next array of that length comes from it
    expect(pooledArrayBytes()).toBeLessThanOrEqual(before + 64 * 64 * 4)
    // A cpu kernel that may return a view of its input: the input escapes.
    const base = tf.exp(x)
    const view = tf.unstack(base)[3]
    const viewCopy = Array.from(view.dataSync())
    base.dispose()
    tf.dispose(tf.sigmoid(tf.exp(tf.exp(x))))
    expect(Array.from(view.dataSync())).toEqual(viewCopy)
    tf.dispose([x, second, fourth, view])
  })
})
