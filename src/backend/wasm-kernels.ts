// Kernel fixes for tfjs-backend-wasm 4.22, kept in one place so the model never checks which
// backend it runs on. Each fix answers a measured defect of the stock wasm backend:
//  - UnsortedSegmentSum is not registered, so the gradient of `gather` (every embedding) throws.
//  - OneHot with dtype float32 returns int32 bit patterns: build int32, then cast.
//  - BatchMatMul only reaches XNNPACK's fast GEMM for plain, non-transposed, unbatched inputs;
//    transposed (every matmul gradient) or batched inputs fall onto a scalar loop 10-80x slower.
//    We transpose explicitly (choosing the cheaper of two algebraically equal plans) and split
//    batches into zero-copy 2-D views of the wasm heap.
import * as tf from "@tensorflow/tfjs"
import { segmentSumInto } from "./segment-sum.ts"

type TensorInfo = tf.TensorInfo
type KernelFunc = (args: { inputs: Record<string, TensorInfo>; backend: unknown; attrs?: Record<string, unknown> }) => TensorInfo

// The parts of tfjs-backend-wasm's BackendWasm this file uses (its class is not exported as a type).
interface WasmBackend {
  wasm: { HEAPU8: Uint8Array; tfjs: { disposeData(id: number): void } }
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } | undefined; delete(dataId: object): void }
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): TensorInfo
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array
  disposeData(dataId: object, force?: boolean): boolean
}

const BACKEND = "wasm"
const installed = new Set<string>()

const kernel = (name: string): KernelFunc => tf.getKernel(name, BACKEND).kernelFunc as unknown as KernelFunc

const replaceKernel = (name: string, kernelFunc: KernelFunc) => {
  if (tf.getKernel(name, BACKEND) !== undefined) tf.unregisterKernel(name, BACKEND)
  tf.registerKernel({ kernelName: name, backendName: BACKEND, kernelFunc: kernelFunc as unknown as tf.KernelFunc })
}

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1)

// ---------------------------------------------------------------------------------------------
// UnsortedSegmentSum: the gradient of gather (src/backend/segment-sum.ts).
const unsortedSegmentSum: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as WasmBackend
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo }
  const numSegments = attrs!.numSegments as number
  const outer = sizeOf(segmentIds.shape)
  const innerShape = x.shape.slice(segmentIds.shape.length)
  const inner = sizeOf(innerShape)
  const out = b.makeOutput([numSegments, ...innerShape], x.dtype)
  // Views are taken after the allocation above: growing the heap detaches earlier views.
  const xs = b.typedArrayFromHeap(x)
  const ids = b.typedArrayFromHeap(segmentIds)
  const o = b.typedArrayFromHeap(out)
  o.fill(0)
  segmentSumInto(xs as Float32Array, ids as Int32Array, o as Float32Array, outer, inner, numSegments)
  return out
}

// ---------------------------------------------------------------------------------------------
const oneHot = (original: KernelFunc): KernelFunc => (args) => {
  const dtype = (args.attrs?.dtype ?? "int32") as tf.DataType
  if (dtype === "int32") return original(args)
  const asInt = original({ ...args, attrs: { ...args.attrs, dtype: "int32" } })
  const cast = kernel("Cast")({ inputs: { x: asInt }, backend: args.backend, attrs: { dtype } })
  ;(args.backend as WasmBackend).disposeData(asInt.dataId)
  return cast
}

// ---------------------------------------------------------------------------------------------
// Matmul. C[M,N] = op(A)[M,K] · op(B)[K,N] can be computed two ways:
//   P1: materialise op(A) and op(B) (copies only where an operand is transposed), one GEMM.
//   P2: C = (op(B)ᵀ · op(A)ᵀ)ᵀ: here a transposed operand is free and a plain one is copied,
//       plus one copy of the [N,M] result. The tied LM head's weight gradient (dlogitsᵀ · x)
//       costs N·V copies under P1 and only N·d + V·d under P2.
const transpose2d = (b: WasmBackend, t: TensorInfo): TensorInfo =>
  kernel("Transpose")({ inputs: { x: t }, backend: b, attrs: { perm: [1, 0] } })

// XNNPACK's GEMM slows to half speed when the shared dimension K is very long compared with the
// output (the LM head's input gradient: [N, V]·[V, d] with V = 50257). Splitting K into blocks
// and summing the partial products restores full speed: C = Σ_b A[:, K_b]·B[K_b, :].
const K_BLOCK = 4096
const splitsK = (M: number, K: number, N: number) => K >= 4 * K_BLOCK && K > 16 * Math.max(M, N)

const gemm = (plain: KernelFunc, b: WasmBackend, a: TensorInfo, bt: TensorInfo): TensorInfo => {
  const [M, K] = a.shape
  const N = bt.shape[1]
  const plainAttrs = { transposeA: false, transposeB: false }
  if (!splitsK(M, K, N)) return plain({ inputs: { a, b: bt }, backend: b, attrs: plainAttrs })
  const out = b.makeOutput([M, N], "float32")
  b.typedArrayFromHeap(out).fill(0)
  for (let k0 = 0; k0 < K; k0 += K_BLOCK) {
    const width = Math.min(K_BLOCK, K - k0)
    const aBlock = b.makeOutput([M, width], "float32")
    const src = b.typedArrayFromHeap(a)
    const dst = b.typedArrayFromHeap(aBlock)
    for (let i = 0; i < M; i++) dst.set(src.subarray(i * K + k0, i * K + k0 + width), i * width)
    const bBlock = heapView(b, bt, k0 * N, [width, N]) // rows of B are contiguous: no copy
    const partial = plain({ inputs: { a: aBlock, b: bBlock }, backend: b, attrs: plainAttrs })
    const p = b.typedArrayFromHeap(partial)
    const o = b.typedArrayFromHeap(out)
    for (let i = 0; i < o.length; i++) o[i] += p[i]
    b.disposeData(partial.dataId)
    b.disposeData(aBlock.dataId)
    releaseView(b, bBlock)
  }
  return out
}

const matmul2d = (
  plain: KernelFunc,
  b: WasmBackend,
  a: TensorInfo,
  bt: TensorInfo,
  transposeA: boolean,
  transposeB: boolean
): TensorInfo => {
  if (!transposeA && !transposeB) return gemm(plain, b, a, bt)
  const [ar, ac] = a.shape
  const [br, bc] = bt.shape
  const M = transposeA ? ac : ar
  const K = transposeA ? ar : ac
  const N = transposeB ? br : bc
  const costP1 = (transposeA ? M * K : 0) + (transposeB ? K * N : 0)
  const costP2 = (transposeA ? 0 : M * K) + (transposeB ? 0 : K * N) + M * N
  const temps: TensorInfo[] = []
  const materialise = (t: TensorInfo, flip: boolean) => {
    if (!flip) return t
    const r = transpose2d(b, t)
    temps.push(r)
    return r
  }
  let result: TensorInfo
  if (costP1 <= costP2) {
    result = gemm(plain, b, materialise(a, transposeA), materialise(bt, transposeB))
  } else {
    const ct = gemm(plain, b, materialise(bt, !transposeB), materialise(a, !transposeA))
    temps.push(ct)
    result = transpose2d(b, { ...ct, shape: [N, M] })
  }
  for (const t of temps) b.disposeData(t.dataId)
  return { ...result, shape: [M, N] }
}

// A TensorInfo aliasing part of an existing tensor's heap memory; released without freeing it.
const heapView = (b: WasmBackend, of: TensorInfo, elementOffset: number, shape: number[]): TensorInfo => {
  const base = b.dataIdMap.get(of.dataId)!.memoryOffset
  return b.makeOutput(shape, of.dtype, base + elementOffset * 4)
}
const releaseView = (b: WasmBackend, view: TensorInfo) => {
  const data = b.dataIdMap.get(view.dataId)
  if (data === undefined) return
  b.wasm.tfjs.disposeData(data.id)
  b.dataIdMap.delete(view.dataId)
}

const batchMatMul = (plain: KernelFunc): KernelFunc => ({ inputs, backend, attrs }) => {
  const b = backend as WasmBackend
  const { a, b: bt } = inputs as { a: TensorInfo; b: TensorInfo }
  const transposeA = Boolean(attrs?.transposeA)
  const transposeB = Boolean(attrs?.transposeB)
  if (a.dtype !== "float32" || bt.dtype !== "float32") return plain({ inputs, backend, attrs })
  const ra = a.shape.length
  const rb = bt.shape.length
  const aRows = a.shape[ra - 2]
  const aCols = a.shape[ra - 1]
  const bRows = bt.shape[rb - 2]
  const bCols = bt.shape[rb - 1]
  const batchDimsA = a.shape.slice(0, -2)
  const batchDimsB = bt.shape.slice(0, -2)
  const batchA = sizeOf(batchDimsA)
  const batchB = sizeOf(batchDimsB)
  const outBatchDims = tf.backend_util.assertAndGetBroadcastShape(batchDimsA, batchDimsB)
  const M = transposeA ? aCols : aRows
  const N = transposeB ? bRows : bCols
  // Fall back to the stock kernel for broadcasts it handles that we do not split (e.g. [2,1] x [1,3]).
  if ((batchA !== 1 && batchB !== 1 && batchA !== batchB) || sizeOf(outBatchDims) !== Math.max(batchA, batchB)) {
    return plain({ inputs, backend, attrs })
  }
  const a2 = { ...a, shape: [aRows, aCols] }
  const b2 = { ...bt, shape: [bRows, bCols] }
  if (batchA === 1 && batchB === 1) {
    const r = matmul2d(plain, b, a2, b2, transposeA, transposeB)
    return { ...r, shape: [...outBatchDims, M, N] }
  }
  // x[B,T,K] · W[K,N]: rows of every batch element are contiguous, so fold the batch into M.
  if (batchB === 1 && !transposeA) {
    const r = matmul2d(plain, b, { ...a, shape: [batchA * aRows, aCols] }, b2, false, transposeB)
    return { ...r, shape: [...outBatchDims, M, N] }
  }
  const batch = Math.max(batchA, batchB)
  const out = b.makeOutput([...outBatchDims, M, N], "float32")
  for (let i = 0; i < batch; i++) {
    const av = heapView(b, a, batchA === 1 ? 0 : i * aRows * aCols, [aRows, aCols])
    const bv = heapView(b, bt, batchB === 1 ? 0 : i * bRows * bCols, [bRows, bCols])
    const r = matmul2d(plain, b, av, bv, transposeA, transposeB)
    const src = b.typedArrayFromHeap(r)
    b.typedArrayFromHeap(out).set(src, i * M * N)
    b.disposeData(r.dataId)
    releaseView(b, av)
    releaseView(b, bv)
  }
  return out
}

/**
 * Installs every wasm fix once per process. Must run after the wasm backend is initialised
 * (its own setup functions bind the native entry points the wrappers call).
 */
export const installWasmKernelFixes = (): void => {
  if (installed.has(BACKEND)) return
  if (tf.getKernel("UnsortedSegmentSum", BACKEND) === undefined) {
    tf.registerKernel({ kernelName: "UnsortedSegmentSum", backendName: BACKEND, kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc })
  }
  replaceKernel("OneHot", oneHot(kernel("OneHot")))
  replaceKernel("BatchMatMul", batchMatMul(kernel("BatchMatMul")))
  installed.add(BACKEND)
}
