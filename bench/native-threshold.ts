// Where a second thread starts to pay on this machine: each matrix product timed on one OpenBLAS
// thread and on all of them, and an element-wise pass (a + b) on one OpenMP thread and on all,
// printed as JSON lines, then the smallest size from which every larger one is faster threaded.
// The native backend's defaults (gemm_thread_flops and parallel_elements in
// src/backend/native/glassbox_native.c) come from this measurement.
//   npx tsx bench/native-threshold.ts [--reps 20]
import { parseArgs } from "node:util"
import { loadNativeAddon, nativeThreads } from "../src/backend/native-addon.ts"

const { values } = parseArgs({ options: { reps: { type: "string", default: "20" } } })
const loaded = loadNativeAddon()
if ("error" in loaded) {
  process.stderr.write(`${loaded.error}\n`)
  process.exit(1)
}
const addon = loaded.addon
const threads = nativeThreads()
const reps = Number(values.reps)
const defaults = addon.describe()

// Shapes a GPT step multiplies: [rows, d]·[d, 3d], MLP, attention per head, the vocabulary head.
const shapes: Array<[number, number, number]> = [
  [8, 256, 768], [64, 128, 128], [64, 64, 32], [128, 128, 64], [256, 256, 256], [512, 128, 384],
  [512, 512, 128], [1024, 256, 768], [1024, 1024, 256], [1024, 256, 50257], [2048, 768, 3072]
]

const time = (M: number, N: number, K: number, multi: boolean) => {
  addon.configure(threads, multi ? 1 : Number.MAX_VALUE, 0)
  const A = new Float32Array(M * K).fill(0.5)
  const B = new Float32Array(K * N).fill(0.25)
  const C = new Float32Array(M * N)
  addon.sgemm(0, 0, M, N, K, A, B, C, 1, 0, 0, 0, 0)
  const n = Math.max(2, Math.min(reps, Math.ceil(2e10 / (2 * M * N * K))))
  const t0 = performance.now()
  for (let i = 0; i < n; i++) addon.sgemm(0, 0, M, N, K, A, B, C, 1, 0, 0, 0, 0)
  return ((performance.now() - t0) * 1000) / n
}

const rows = shapes.map(([M, K, N]) => {
  const single = time(M, N, K, false)
  const threaded = time(M, N, K, true)
  const flops = 2 * M * N * K
  const row = { bench: "native-threshold", shape: `${M}x${K}x${N}`, flops, single_us: Math.round(single), threaded_us: Math.round(threaded), threads, threaded_faster: threaded < single }
  process.stdout.write(JSON.stringify(row) + "\n")
  return row
})
const timeAdd = (n: number, multi: boolean) => {
  addon.configure(threads, defaults.gemmThreadFlops, multi ? 1 : Number.MAX_SAFE_INTEGER)
  const a = new Float32Array(n).fill(1)
  const b = new Float32Array(n).fill(2)
  const out = new Float32Array(n)
  const strides = Int32Array.from([0, 0, 1])
  const reps2 = Math.max(20, Math.min(2000, Math.ceil(2e8 / n)))
  addon.binary(0, a, b, out, 1, 1, n, strides, strides)
  const t0 = performance.now()
  for (let i = 0; i < reps2; i++) addon.binary(0, a, b, out, 1, 1, n, strides, strides)
  return ((performance.now() - t0) * 1000) / reps2
}
const adds = [4096, 16384, 32768, 65536, 131072, 262144, 1048576, 4194304].map((n) => {
  const single = timeAdd(n, false)
  const threaded = timeAdd(n, true)
  const row = { bench: "native-threshold", op: "add", elements: n, single_us: Number(single.toFixed(1)), threaded_us: Number(threaded.toFixed(1)), threads, threaded_faster: threaded < single }
  process.stdout.write(JSON.stringify(row) + "\n")
  return row
})
addon.configure(threads, defaults.gemmThreadFlops, defaults.parallelElements)
const crossover = <T extends { threaded_faster: boolean }>(list: T[], size: (r: T) => number) => {
  const sorted = [...list].sort((a, b) => size(a) - size(b))
  const from = sorted.findIndex((_, i) => sorted.slice(i).every((r) => r.threaded_faster))
  return from < 0 ? null : size(sorted[from])
}
process.stdout.write(
  JSON.stringify({
    bench: "native-threshold",
    threads,
    gemm_crossover_flops: crossover(rows, (r) => r.flops),
    configured_gemm_flops: defaults.gemmThreadFlops,
    elementwise_crossover: crossover(adds, (r) => r.elements),
    configured_elements: defaults.parallelElements
  }) + "\n"
)
