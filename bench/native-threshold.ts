// Where a matrix product starts to pay for a second thread on this machine: each product timed on
// one OpenBLAS thread and on all of them, printed as JSON lines, then the smallest size (in
// FLOPs, 2·M·N·K) from which every larger one is faster threaded. The native backend's default
// (gemm_thread_flops in src/backend/native/glassbox_native.c) comes from this measurement.
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
addon.configure(threads, defaults.gemmThreadFlops, defaults.parallelElements)
const sorted = [...rows].sort((a, b) => a.flops - b.flops)
const from = sorted.findIndex((_, i) => sorted.slice(i).every((r) => r.threaded_faster))
process.stdout.write(
  JSON.stringify({ bench: "native-threshold", threads, crossover_flops: from < 0 ? null : sorted[from].flops, configured_flops: defaults.gemmThreadFlops }) + "\n"
)
