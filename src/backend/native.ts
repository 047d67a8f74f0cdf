// The `native` tfjs backend: tensors in ordinary typed arrays (no wasm heap, so the model is
// limited by RAM rather than 4 GB) and the heavy kernels in C (src/backend/native/): matrix
// products on OpenBLAS, and one threaded pass each for the elementwise ops, reductions and
// transposes a transformer step is made of. It extends the plain cpu backend, so every kernel
// not replaced here still works, just slowly; `bench/train.ts --backend native` and a
// `tf.profile` of a step show which ones matter.
//
// Kernels read and write tensors' storage in place: a tensor's values are the Float32Array the
// cpu backend keeps for it, and an output is a new array handed to the backend without a copy.
import * as tf from "@tensorflow/tfjs"
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu"
import { registerFusedOps, type FusedOps } from "./fused.ts"
import { segmentSumInto } from "./segment-sum.ts"
import type { NativeAddon } from "./native-addon.ts"

export const NATIVE_BACKEND = "native"

type TensorInfo = tf.TensorInfo
type Attrs = Record<string, unknown>
type KernelArgs = { inputs: Record<string, TensorInfo>; backend: NativeBackend; attrs?: Attrs }
type Kernel = (args: KernelArgs) => TensorInfo | TensorInfo[]

interface CpuData {
  values?: unknown
  dtype: tf.DataType
  refCount: number
}

// ---------------------------------------------------------------------------------------------
// Recycled output arrays. A training step allocates the same large arrays every step; left to the
// garbage collector, each is zero-filled on allocation and counts as "external memory" that
// makes V8 run a full mark-compact every few hundred MB (about ten per config-B step). Arrays a
// kernel allocated are returned to a pool when their tensor is disposed and handed out again,
// unless they escaped: read out by dataSync()/data() (the caller may keep the array), given to a
// cpu kernel that may return a view of it, or shared by a second tensor.
const POOL_BYTES = Number(process.env.GLASSBOX_POOL_MB ?? 1024) * 2 ** 20
const poolable = new WeakSet<Float32Array>()
const pool = new Map<number, Float32Array[]>()
let pooledBytes = 0

/**
 * A float32 array for a kernel that writes every element: recycled when one of this length is
 * free, otherwise taken without zero-filling. Small ones stay ordinary.
 */
export const uninit = (n: number): Float32Array => {
  if (n < 1024) return new Float32Array(n)
  const free = pool.get(n)?.pop()
  if (free !== undefined) {
    pooledBytes -= free.byteLength
    poolable.add(free)
    return free
  }
  const bytes = Buffer.allocUnsafeSlow(n * 4)
  const array = new Float32Array(bytes.buffer, bytes.byteOffset, n)
  poolable.add(array)
  return array
}

/** The array may be kept by someone else from now on: never recycle it. */
export const escape = (values: unknown): void => {
  if (values instanceof Float32Array) poolable.delete(values)
}

const recycle = (values: unknown): void => {
  if (!(values instanceof Float32Array) || !poolable.has(values) || pooledBytes + values.byteLength > POOL_BYTES) return
  poolable.delete(values)
  const list = pool.get(values.length)
  if (list === undefined) pool.set(values.length, [values])
  else list.push(values)
  pooledBytes += values.byteLength
}

/** Bytes held for reuse (for tests and benches). */
export const pooledArrayBytes = () => pooledBytes

/** The cpu backend under its own name, with typed-array access for the kernels. */
export class NativeBackend extends MathBackendCPU {
  /** The float32 storage of a tensor (converted once if a kernel left another array type). */
  f32(t: TensorInfo): Float32Array {
    const d = this.data.get(t.dataId) as CpuData
    if (d.values instanceof Float32Array) return d.values
    const converted = Float32Array.from(d.values as ArrayLike<number>)
    d.values = converted
    return converted
  }

  i32(t: TensorInfo): Int32Array {
    const d = this.data.get(t.dataId) as CpuData
    if (d.values instanceof Int32Array) return d.values
    return Int32Array.from(d.values as ArrayLike<number>)
  }

  /** A new float32 tensor over `values` (no copy). */
  out(shape: number[], values: Float32Array): TensorInfo {
    return this.makeTensorInfo(shape, "float32", values)
  }

  refs(t: { dataId: object }): number {
    return (this.data.get(t.dataId) as CpuData).refCount
  }

  /** Marks a tensor's array as possibly shared, so it is never recycled. */
  escapeData(dataId: object): void {
    escape((this.data.get(dataId) as CpuData | undefined)?.values)
  }

  override readSync(dataId: object): tf.backend_util.BackendValues {
    this.escapeData(dataId)
    return super.readSync(dataId)
  }

  override read(dataId: object): Promise<tf.backend_util.BackendValues> {
    this.escapeData(dataId)
    return super.read(dataId)
  }

  override disposeData(dataId: object, force?: boolean): boolean {
    const values = (this.data.get(dataId) as CpuData | undefined)?.values
    const freed = super.disposeData(dataId, force)
    if (freed && !this.data.has(dataId)) recycle(values)
    return freed
  }
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1)

// ---------------------------------------------------------------------------------------------
// Matrix products. C = op(A)·op(B) per batch member; batch dims broadcast when one side has one
// member (a shared weight), otherwise they must match (anything else goes to the cpu kernel).
const batchMatMul = (addon: NativeAddon, fallback: Kernel): Kernel => (args) => {
  const { inputs, backend: b, attrs } = args
  const { a, b: bm } = inputs as { a: TensorInfo; b: TensorInfo }
  if (a.dtype !== "float32" || bm.dtype !== "float32") return fallback(args)
  const transposeA = Boolean(attrs?.transposeA)
  const transposeB = Boolean(attrs?.transposeB)
  const ra = a.shape.length
  const rb = bm.shape.length
  const [aRows, aCols] = [a.shape[ra - 2], a.shape[ra - 1]]
  const [bRows, bCols] = [bm.shape[rb - 2], bm.shape[rb - 1]]
  const M = transposeA ? aCols : aRows
  const K = transposeA ? aRows : aCols
  const N = transposeB ? bRows : bCols
  const kB = transposeB ? bCols : bRows
  if (K !== kB) throw new Error(`matMul: inner dimensions ${K} and ${kB} of shapes [${a.shape}] and [${bm.shape}] differ`)
  const batchDimsA = a.shape.slice(0, -2)
  const batchDimsB = bm.shape.slice(0, -2)
  const outBatch = tf.backend_util.assertAndGetBroadcastShape(batchDimsA, batchDimsB)
  const batchA = sizeOf(batchDimsA)
  const batchB = sizeOf(batchDimsB)
  const batch = sizeOf(outBatch)
  if (!((batchA === batch || batchA === 1) && (batchB === batch || batchB === 1))) return fallback(args)
  const out = uninit(batch * M * N)
  // x[B,T,K]·W[K,N]: rows of every batch member are contiguous, so one product covers them all.
  if (batchB === 1 && batch > 1 && !transposeA) {
    addon.sgemm(0, transposeB ? 1 : 0, batch * M, N, K, b.f32(a), b.f32(bm), out, 1, 0, 0, 0, 0)
  } else {
    addon.sgemm(
      transposeA ? 1 : 0, transposeB ? 1 : 0, M, N, K, b.f32(a), b.f32(bm), out,
      batch, batchA === 1 ? 0 : M * K, batchB === 1 ? 0 : K * N, M * N, 0
    )
  }
  return b.out([...outBatch, M, N], out)
}

// tf.fused.matMul: the product, then the bias, then the activation, each a native kernel.
const ACTIVATIONS: Record<string, string> = { relu: "Relu", relu6: "Relu6", elu: "Elu", sigmoid: "Sigmoid", leakyrelu: "LeakyRelu", prelu: "Prelu" }

const fusedMatMul = (product: Kernel, add: Kernel, fallback: Kernel): Kernel => (args) => {
  const { inputs, backend: b, attrs } = args
  const { a, b: bm, bias, preluActivationWeights } = inputs as Record<string, TensorInfo | undefined>
  const activation = attrs?.activation as string | undefined
  if (a!.dtype !== "float32" || (activation !== undefined && activation !== "linear" && ACTIVATIONS[activation] === undefined)) return fallback(args)
  let current = product({ inputs: { a: a!, b: bm! }, backend: b, attrs: { transposeA: attrs?.transposeA, transposeB: attrs?.transposeB } }) as TensorInfo
  if (bias !== undefined) {
    const biased = add({ inputs: { a: current, b: bias }, backend: b }) as TensorInfo
    b.disposeIntermediateTensorInfo(current)
    current = biased
  }
  if (activation !== undefined && activation !== "linear") {
    const name = ACTIVATIONS[activation]
    const kernel = tf.getKernel(name, NATIVE_BACKEND)!.kernelFunc as unknown as Kernel
    const activated = kernel({
      inputs: name === "Prelu" ? { x: current, alpha: preluActivationWeights! } : { x: current },
      backend: b,
      attrs: name === "LeakyRelu" ? { alpha: attrs?.leakyreluAlpha } : {}
    }) as TensorInfo
    b.disposeIntermediateTensorInfo(current)
    current = activated
  }
  return current
}

// ---------------------------------------------------------------------------------------------
// Elementwise binary ops. Broadcasting is folded into at most three dimensions [outer, mid,
// inner], each operand reading with its own strides (0 along a broadcast dimension).
const BINARY = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, SquaredDifference: 4 } as const

interface Folded {
  readonly dims: [number, number, number]
  readonly aStrides: Int32Array
  readonly bStrides: Int32Array
}

export const foldBroadcast = (out: readonly number[], aShape: readonly number[], bShape: readonly number[]): Folded | undefined => {
  const r = out.length
  const pad = (s: readonly number[]) => [...Array<number>(r - s.length).fill(1), ...s]
  const pa = pad(aShape)
  const pb = pad(bShape)
  const groups: Array<{ size: number; a: boolean; b: boolean }> = []
  for (let i = 0; i < r; i++) {
    if (out[i] === 1) continue
    const a = pa[i] !== 1
    const b = pb[i] !== 1
    const last = groups[groups.length - 1]
    if (last !== undefined && last.a === a && last.b === b) last.size *= out[i]
    else groups.push({ size: out[i], a, b })
  }
  if (groups.length > 3) return undefined
  while (groups.length < 3) groups.unshift({ size: 1, a: false, b: false })
  const strides = (has: (g: { a: boolean; b: boolean }) => boolean) => {
    const s = new Int32Array(3)
    let run = 1
    for (let i = 2; i >= 0; i--) {
      s[i] = has(groups[i]) ? run : 0
      if (has(groups[i])) run *= groups[i].size
    }
    return s
  }
  return { dims: [groups[0].size, groups[1].size, groups[2].size], aStrides: strides((g) => g.a), bStrides: strides((g) => g.b) }
}

const binary = (addon: NativeAddon, op: number, fallback: Kernel): Kernel => (args) => {
  const { inputs, backend: b } = args
  const { a, b: bt } = inputs as { a: TensorInfo; b: TensorInfo }
  if (a.dtype !== "float32" || bt.dtype !== "float32") return fallback(args)
  const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, bt.shape)
  const folded = foldBroadcast(shape, a.shape, bt.shape)
  if (folded === undefined) return fallback(args)
  const out = uninit(sizeOf(shape))
  if (out.length > 0) addon.binary(op, b.f32(a), b.f32(bt), out, ...folded.dims, folded.aStrides, folded.bStrides)
  return b.out(shape, out)
}

const UNARY = { Exp: 0, Tanh: 1, Neg: 2, Sqrt: 3, Rsqrt: 4, Square: 5, Log: 6, Reciprocal: 7 } as const

const unary = (addon: NativeAddon, op: number, fallback: Kernel): Kernel => (args) => {
  const { inputs, backend: b } = args
  const x = inputs.x
  if (x.dtype !== "float32") return fallback(args)
  const out = uninit(sizeOf(x.shape))
  addon.unary(op, b.f32(x), out, out.length)
  return b.out(x.shape.slice(), out)
}

// ---------------------------------------------------------------------------------------------
// Reductions over a contiguous run of axes [first..last]: x viewed as [outer, mid, inner].
const reduction = (reduce: (x: Float32Array, out: Float32Array, o: number, m: number, i: number) => void, fallback: Kernel, emptyOk: boolean): Kernel => (args) => {
  const { inputs, backend: b, attrs } = args
  const x = inputs.x
  if (x.dtype !== "float32") return fallback(args)
  // Sum names its axes `axis`, Max `reductionIndices`.
  const axes = tf.util.parseAxisParam((attrs?.axis ?? attrs?.reductionIndices) as number | number[], x.shape).sort((p, q) => p - q)
  if (axes.length === 0 || axes.some((ax, i) => i > 0 && ax !== axes[i - 1] + 1)) return fallback(args)
  const first = axes[0]
  const last = axes[axes.length - 1]
  const outer = sizeOf(x.shape.slice(0, first))
  const mid = sizeOf(x.shape.slice(first, last + 1))
  const inner = sizeOf(x.shape.slice(last + 1))
  if (mid === 0 && !emptyOk) return fallback(args)
  const keep = Boolean(attrs?.keepDims)
  const shape = keep ? x.shape.map((s, i) => (i >= first && i <= last ? 1 : s)) : x.shape.filter((_, i) => i < first || i > last)
  const out = new Float32Array(outer * inner)
  if (out.length > 0 && mid > 0) reduce(b.f32(x), out, outer, mid, inner)
  return b.out(shape, out)
}

const transposeKernel = (addon: NativeAddon, fallback: Kernel): Kernel => (args) => {
  const { inputs, backend: b, attrs } = args
  const x = inputs.x
  const perm = attrs?.perm as number[]
  if (x.dtype !== "float32" || x.shape.length > 6 || x.shape.length === 0) return fallback(args)
  // The identity permutation (gather's gradient asks for one) shares the storage, like reshape.
  if (perm.every((p, i) => p === i)) {
    b.incRef(x.dataId)
    return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype }
  }
  const shape = perm.map((p) => x.shape[p])
  const out = uninit(sizeOf(x.shape))
  if (out.length > 0) addon.transpose(b.f32(x), out, Int32Array.from(x.shape), Int32Array.from(perm))
  return b.out(shape, out)
}

const softmaxKernel = (addon: NativeAddon, fallback: Kernel): Kernel => (args) => {
  const { inputs, backend: b, attrs } = args
  const x = inputs.logits
  const dim = attrs?.dim as number
  if (x.dtype !== "float32" || (dim !== -1 && dim !== x.shape.length - 1)) return fallback(args)
  const cols = x.shape[x.shape.length - 1]
  const out = uninit(sizeOf(x.shape))
  if (out.length > 0) addon.softmax_forward(b.f32(x), out, out.length / cols, cols)
  return b.out(x.shape.slice(), out)
}

// ---------------------------------------------------------------------------------------------
// Moving memory: slices, splits, concatenation, the gradient of gather. Each copies contiguous
// runs with TypedArray.set (a memcpy) where the cpu backend reads one element at a time.

/** x viewed as [outer, axisLength · inner]: the contiguous run each outer index owns. */
const runs = (shape: readonly number[], axis: number) => ({ outer: sizeOf(shape.slice(0, axis)), inner: sizeOf(shape.slice(axis + 1)) })

const splitV: (fallback: Kernel) => Kernel = (fallback) => (args) => {
  const { inputs, backend: b, attrs } = args
  const x = inputs.x
  if (x.dtype !== "float32") return fallback(args)
  const axis = tf.util.parseAxisParam(attrs?.axis as number, x.shape)[0]
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, attrs?.numOrSizeSplits as number | number[], axis)
  const { outer, inner } = runs(x.shape, axis)
  const src = b.f32(x)
  const rowLength = x.shape[axis] * inner
  let start = 0
  return sizes.map((size) => {
    const width = size * inner
    const out = uninit(outer * width)
    for (let o = 0; o < outer; o++) out.set(src.subarray(o * rowLength + start, o * rowLength + start + width), o * width)
    start += width
    const shape = x.shape.slice()
    shape[axis] = size
    return b.out(shape, out)
  })
}

const concat: (fallback: Kernel) => Kernel = (fallback) => (args) => {
  const { inputs, backend: b, attrs } = args
  const xs = Object.keys(inputs).map((k) => inputs[k])
  if (xs.length === 0 || xs.some((t) => t.dtype !== "float32")) return fallback(args)
  const axis = tf.util.parseAxisParam(attrs?.axis as number, xs[0].shape)[0]
  const shape = tf.backend_util.computeOutShape(xs.map((t) => t.shape), axis)
  const { outer, inner } = runs(shape, axis)
  const rowLength = shape[axis] * inner
  const out = uninit(sizeOf(shape))
  let start = 0
  for (const t of xs) {
    const width = t.shape[axis] * inner
    const src = b.f32(t)
    for (let o = 0; o < outer; o++) out.set(src.subarray(o * width, (o + 1) * width), o * rowLength + start)
    start += width
  }
  return b.out(shape, out)
}

const slice: (fallback: Kernel) => Kernel = (fallback) => (args) => {
  const { inputs, backend: b, attrs } = args
  const x = inputs.x
  if (x.dtype !== "float32" && x.dtype !== "int32") return fallback(args)
  const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, attrs?.begin as number[], attrs?.size as number[])
  const rank = x.shape.length
  // Copy runs over the innermost dimensions that are taken whole (plus the first partial one).
  let last = rank - 1
  while (last > 0 && begin[last] === 0 && size[last] === x.shape[last]) last--
  const run = sizeOf(size.slice(last))
  const src = (x.dtype === "float32" ? b.f32(x) : b.i32(x)) as Float32Array | Int32Array
  const out = x.dtype === "float32" ? uninit(sizeOf(size)) : new Int32Array(sizeOf(size))
  const strides = tf.util.computeStrides(x.shape)
  const count = sizeOf(size.slice(0, last))
  const index = new Array<number>(last).fill(0)
  for (let r = 0; r < count; r++) {
    let offset = begin[last] * (strides[last] ?? 1)
    for (let i = 0; i < last; i++) offset += (begin[i] + index[i]) * strides[i]
    out.set(src.subarray(offset, offset + run), r * run)
    for (let i = last - 1; i >= 0; i--) {
      if (++index[i] < size[i]) break
      index[i] = 0
    }
  }
  return b.makeTensorInfo(size, x.dtype, out)
}

// Row lookup along axis 0 (the embeddings): out[i] = x[ids[i]], one contiguous row per index.
const gather: (fallback: Kernel) => Kernel = (fallback) => (args) => {
  const { inputs, backend: b, attrs } = args
  const { x, indices } = inputs as { x: TensorInfo; indices: TensorInfo }
  const axis = tf.util.parseAxisParam(attrs?.axis as number, x.shape)[0]
  if (x.dtype !== "float32" || axis !== 0 || ((attrs?.batchDims as number | undefined) ?? 0) !== 0 || indices.dtype !== "int32") return fallback(args)
  const ids = b.i32(indices)
  const rows = x.shape[0]
  const inner = sizeOf(x.shape.slice(1))
  const src = b.f32(x)
  const out = uninit(ids.length * inner)
  for (let i = 0; i < ids.length; i++) {
    const r = ids[i]
    if (r < 0 || r >= rows) throw new Error(`GatherV2: the index value ${r} is not in [0, ${rows - 1}]`)
    out.set(src.subarray(r * inner, (r + 1) * inner), i * inner)
  }
  return b.out([...indices.shape, ...x.shape.slice(1)], out)
}

// The gradient of gather (every embedding lookup): src/backend/segment-sum.ts.
const unsortedSegmentSum: (fallback: Kernel) => Kernel = (fallback) => (args) => {
  const { inputs, backend: b, attrs } = args
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo }
  if (x.dtype !== "float32") return fallback(args)
  const numSegments = attrs?.numSegments as number
  const outer = sizeOf(segmentIds.shape)
  const innerShape = x.shape.slice(segmentIds.shape.length)
  const inner = sizeOf(innerShape)
  const out = new Float32Array(numSegments * inner)
  segmentSumInto(b.f32(x), b.i32(segmentIds), out, outer, inner, numSegments)
  return b.out([numSegments, ...innerShape], out)
}

// ---------------------------------------------------------------------------------------------
// Fused operations (src/backend/fused.ts) as custom gradients over the addon's passes.
const backendOf = () => tf.backend() as NativeBackend
const valuesOf = (t: tf.Tensor) => backendOf().f32(t)
const tensorOver = (values: Float32Array, shape: readonly number[]) => tf.tensor(values, shape.slice(), "float32")

const customGrad = <T extends tf.Tensor[]>(f: (...args: [...T, tf.GradSaveFunc]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] }) =>
  tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...args: T) => tf.Tensor

const makeFusedOps = (addon: NativeAddon): FusedOps => {
  const layerNormWith = (eps: number) =>
    customGrad<[tf.Tensor, tf.Tensor, tf.Tensor]>((x, gamma, beta, save) => {
      const d = x.shape[x.shape.length - 1]
      const rows = x.size / d
      const y = uninit(x.size)
      const mean = new Float32Array(rows)
      const rstd = new Float32Array(rows)
      addon.layernorm_forward(valuesOf(x), valuesOf(gamma), valuesOf(beta), y, mean, rstd, rows, d, eps)
      save([x, gamma, tensorOver(mean, [rows]), tensorOver(rstd, [rows])])
      return {
        value: tensorOver(y, x.shape),
        gradFunc: (dy, saved) => {
          const [xs, g, m, r] = saved
          const dx = uninit(xs.size)
          const dg = new Float32Array(d)
          const db = new Float32Array(d)
          addon.layernorm_backward(valuesOf(dy), valuesOf(xs), valuesOf(g), valuesOf(m), valuesOf(r), dx, dg, db, rows, d)
          return [tensorOver(dx, xs.shape), tensorOver(dg, g.shape), tensorOver(db, g.shape)]
        }
      }
    })
  const layerNorms = new Map<number, (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor>()

  const geluTanh = customGrad<[tf.Tensor]>((x, save) => {
    const y = uninit(x.size)
    addon.gelu_forward(valuesOf(x), y, x.size)
    save([x])
    return {
      value: tensorOver(y, x.shape),
      gradFunc: (dy, [xs]) => {
        const dx = uninit(xs.size)
        addon.gelu_backward(valuesOf(xs), valuesOf(dy), dx, xs.size)
        return tensorOver(dx, xs.shape)
      }
    }
  })

  const softmax = customGrad<[tf.Tensor]>((x, save) => {
    const cols = x.shape[x.shape.length - 1]
    const y = uninit(x.size)
    if (x.size > 0) addon.softmax_forward(valuesOf(x), y, x.size / cols, cols)
    const value = tensorOver(y, x.shape)
    save([value])
    return {
      value,
      gradFunc: (dy, [ys]) => {
        const dx = uninit(ys.size)
        if (ys.size > 0) addon.softmax_backward(valuesOf(ys), valuesOf(dy), dx, ys.size / cols, cols)
        return tensorOver(dx, ys.shape)
      }
    }
  })

  const attentionForward = addon.attention_forward?.bind(addon)
  const attentionBackward = addon.attention_backward?.bind(addon)
  const attention =
    attentionForward === undefined || attentionBackward === undefined
      ? undefined
      : (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor, scale: number): tf.Tensor4D => {
          const [B, H, T, dh] = q.shape
          const Tk = k.shape[2]
          const [bB, bH] = bias.shape
          // The bias is a constant (mask, ALiBi): captured, not an input, so it gets no gradient.
          const biasValues = valuesOf(bias)
          const op = customGrad<[tf.Tensor, tf.Tensor, tf.Tensor]>((qi, ki, vi, save) => {
            const z = uninit(B * H * T * dh)
            const p = uninit(B * H * T * Tk)
            attentionForward(valuesOf(qi), valuesOf(ki), valuesOf(vi), biasValues, z, p, B, H, T, Tk, dh, bB, bH, scale)
            save([qi, ki, vi, tensorOver(p, [B, H, T, Tk])])
            return {
              value: tensorOver(z, [B, H, T, dh]),
              gradFunc: (dz, [qs, ks, vs, ps]) => {
                const dq = uninit(qs.size)
                const dk = uninit(ks.size)
                const dv = uninit(vs.size)
                attentionBackward(valuesOf(qs), valuesOf(ks), valuesOf(vs), valuesOf(ps), valuesOf(dz), dq, dk, dv, B * H, T, Tk, dh, scale)
                return [tensorOver(dq, qs.shape), tensorOver(dk, ks.shape), tensorOver(dv, vs.shape)]
              }
            }
          })
          return op(q, k, v) as tf.Tensor4D
        }

  return {
    ...(attention === undefined ? {} : { attention }),
    layerNorm: (x, gamma, beta, eps) => {
      let f = layerNorms.get(eps)
      if (f === undefined) layerNorms.set(eps, (f = layerNormWith(eps)))
      return f(x, gamma, beta)
    },
    geluTanh: (x) => geluTanh(x),
    softmax: (x) => softmax(x),
    crossEntropy: (logits, targets) => {
      const [n, V] = logits.shape
      const lossSum = addon.xent_forward(valuesOf(logits), backendOf().i32(targets), n, V)
      return { lossSum, probs: logits }
    },
    crossEntropyGrad: (probs, targets, scale) => {
      const [n, V] = probs.shape
      addon.xent_backward(valuesOf(probs), backendOf().i32(targets), n, V, scale)
      return probs
    },
    sumOfSquares: (tensors) => addon.sum_squares(tensors.map(valuesOf)),
    adamw: (items, h) => {
      const b = backendOf()
      // A parameter whose storage another tensor shares is first given storage of its own.
      for (const { param } of items) {
        if (b.refs(param) > 1) {
          const own = tensorOver(Float32Array.from(valuesOf(param)), param.shape)
          param.assign(own)
          own.dispose()
        }
      }
      addon.adamw(
        items.map((i) => valuesOf(i.param)), items.map((i) => valuesOf(i.grad)),
        items.map((i) => valuesOf(i.m)), items.map((i) => valuesOf(i.v)), items.map((i) => i.decay),
        h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, h.c1, h.c2, h.gradScale
      )
      // Re-issue each parameter under a new data id over the same (updated) memory: caches keyed
      // on a weight's identity (the transposed head used for decoding) see that it changed.
      for (const { param } of items) {
        escape(valuesOf(param)) // shared by the old and the new data id for a moment
        const same = tensorOver(valuesOf(param), param.shape)
        param.assign(same)
        same.dispose()
      }
    }
  }
}

/** cpu kernels that never return a view of an input's array under a new data id. */
const NON_ALIASING = new Set([
  "Reshape", "Identity", "Cast", "ZerosLike", "OnesLike", "Fill", "Floor", "Range", "Less", "Greater", "Equal", "LessEqual",
  "GreaterEqual", "NotEqual", "LogicalAnd", "LogicalOr", "Select", "Maximum", "Minimum", "Abs", "Pow", "Erf", "Sigmoid", "Relu",
  "Pad", "Tile", "OneHot", "Mean", "Prod", "Min", "ArgMax", "ArgMin", "Cumsum", "ExpandDims", "Squeeze", "Step", "Sign", "Round",
  "Ceil", "Log1p", "Expm1", "Sin", "Cos", "Atan2", "Mod", "FloorDiv", "AddN", "RandomUniform", "RandomNormal"
])

let registered = false

/** Registers the `native` backend, its kernels and fused operations (once per process). */
export const registerNativeBackend = (addon: NativeAddon): void => {
  if (registered) return
  registered = true
  tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend(), 0)
  const overrides = new Map<string, (fallback: Kernel) => Kernel>([
    ["BatchMatMul", (f) => batchMatMul(addon, f)],
    ["Softmax", (f) => softmaxKernel(addon, f)],
    ["Transpose", (f) => transposeKernel(addon, f)],
    ["Sum", (f) => reduction((x, o, p, m, i) => addon.sum_mid(x, o, p, m, i), f, true)],
    ["Max", (f) => reduction((x, o, p, m, i) => addon.max_mid(x, o, p, m, i), f, false)],
    ["SplitV", splitV],
    ["Concat", concat],
    ["Slice", slice],
    ["GatherV2", gather],
    ["UnsortedSegmentSum", unsortedSegmentSum]
  ])
  for (const [name, op] of Object.entries(BINARY)) overrides.set(name, (f) => binary(addon, op, f))
  overrides.set("_FusedMatMul", (f) =>
    fusedMatMul(batchMatMul(addon, tf.getKernel("BatchMatMul", "cpu")!.kernelFunc as unknown as Kernel), binary(addon, BINARY.Add, tf.getKernel("Add", "cpu")!.kernelFunc as unknown as Kernel), f)
  )
  for (const [name, op] of Object.entries(UNARY)) overrides.set(name, (f) => unary(addon, op, f))
  for (const config of tf.getKernelsForBackend("cpu")) {
    const plain = config.kernelFunc as unknown as Kernel
    // A cpu kernel may hand back a view of its input's array (Slice, StridedSlice, Unpack, …):
    // its inputs escape the pool, except for kernels known to make new arrays or share data ids.
    const cpuKernel: Kernel = NON_ALIASING.has(config.kernelName)
      ? plain
      : (args) => {
          for (const t of Object.values(args.inputs)) if (t !== undefined) args.backend.escapeData(t.dataId)
          return plain(args)
        }
    const replace = overrides.get(config.kernelName)
    tf.registerKernel({
      ...config,
      backendName: NATIVE_BACKEND,
      kernelFunc: (replace ? replace(cpuKernel) : cpuKernel) as unknown as tf.KernelFunc
    })
  }
  registerFusedOps(NATIVE_BACKEND, makeFusedOps(addon))
}
