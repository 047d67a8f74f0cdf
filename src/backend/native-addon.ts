// Loading the native kernel pack (src/backend/native/glassbox_native.c, built by
// scripts/build-native.mjs). The addon is optional: without a C compiler or OpenBLAS's headers
// it is not built, and the `native` backend reports why, naming the one command that builds it.
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { availableParallelism } from "node:os"
import * as nodePath from "node:path"
import { fileURLToPath } from "node:url"

/** The addon's functions; sizes are element counts, arrays are used in place. */
export interface NativeAddon {
  sgemm(
    transA: number, transB: number, M: number, N: number, K: number,
    A: Float32Array, B: Float32Array, C: Float32Array,
    batch: number, strideA: number, strideB: number, strideC: number, beta: number
  ): void
  xent_forward(z: Float32Array, targets: Int32Array, n: number, V: number): number
  xent_backward(p: Float32Array, targets: Int32Array, n: number, V: number, scale: number): void
  layernorm_forward(x: Float32Array, gamma: Float32Array, beta: Float32Array, y: Float32Array, mean: Float32Array, rstd: Float32Array, rows: number, d: number, eps: number): void
  layernorm_backward(dy: Float32Array, x: Float32Array, gamma: Float32Array, mean: Float32Array, rstd: Float32Array, dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, rows: number, d: number): void
  gelu_forward(x: Float32Array, y: Float32Array, n: number): void
  gelu_backward(x: Float32Array, dy: Float32Array, dx: Float32Array, n: number): void
  softmax_forward(x: Float32Array, y: Float32Array, rows: number, cols: number): void
  softmax_backward(y: Float32Array, dy: Float32Array, dx: Float32Array, rows: number, cols: number): void
  /** Absent from addons built before it existed (then attention runs unfused). */
  attention_forward?(
    q: Float32Array, k: Float32Array, v: Float32Array, bias: Float32Array, z: Float32Array, p: Float32Array,
    B: number, H: number, T: number, Tk: number, dh: number, biasB: number, biasH: number, scale: number
  ): void
  attention_backward?(
    q: Float32Array, k: Float32Array, v: Float32Array, p: Float32Array, dz: Float32Array,
    dq: Float32Array, dk: Float32Array, dv: Float32Array, pairs: number, T: number, Tk: number, dh: number, scale: number
  ): void
  adamw(
    params: Float32Array[], grads: Float32Array[], m: Float32Array[], v: Float32Array[], decay: boolean[],
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, c1: number, c2: number, gradScale: number
  ): void
  sum_squares(arrays: Float32Array[]): number
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, outer: number, mid: number, inner: number, aStrides: Int32Array, bStrides: Int32Array): void
  unary(op: number, x: Float32Array, y: Float32Array, n: number): void
  sum_mid(x: Float32Array, out: Float32Array, outer: number, mid: number, inner: number): void
  max_mid(x: Float32Array, out: Float32Array, outer: number, mid: number, inner: number): void
  transpose(x: Float32Array, out: Float32Array, shape: Int32Array, perm: Int32Array): void
  configure(threads: number, gemmThreadFlops: number, parallelElements: number): void
  describe(): { threads: number; gemmThreadFlops: number; parallelElements: number; blas: string; ompMaxThreads: number }
}

/** What to run to build the addon, for the one-line notice when it is missing. */
export const NATIVE_BUILD_HINT =
  process.platform === "darwin"
    ? "xcode-select --install && npm rebuild"
    : "apt-get install libopenblas-dev build-essential && npm rebuild"

const packageRoot = (): string => {
  let dir = nodePath.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    if (existsSync(nodePath.join(dir, "package.json"))) return dir
    dir = nodePath.dirname(dir)
  }
  return process.cwd()
}

/** Where the build puts the addon; GLASSBOX_NATIVE_ADDON overrides (tests point it at nothing). */
export const nativeAddonPath = (): string =>
  process.env.GLASSBOX_NATIVE_ADDON ?? nodePath.join(packageRoot(), "src", "backend", "native", "build", "Release", "glassbox_native.node")

/**
 * Threads for the native kernels: GLASSBOX_THREADS, else every core. Pinned once per process so
 * a resumed run sums in the same order as the run it continues.
 */
export const nativeThreads = (): number => {
  const fromEnv = Number(process.env.GLASSBOX_THREADS)
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : availableParallelism()
}

let loaded: { addon: NativeAddon } | { error: string } | undefined

/** The addon, or why it cannot be had. Loaded once. */
export const loadNativeAddon = (): { addon: NativeAddon } | { error: string } => {
  if (loaded !== undefined) return loaded
  const path = nativeAddonPath()
  if (!existsSync(path)) {
    loaded = { error: `the native kernels are not built (no ${nodePath.relative(process.cwd(), path) || path})` }
    return loaded
  }
  // OpenMP threads that spin after a parallel loop would steal the cores OpenBLAS's threads
  // need next; passive waiting costs a few microseconds per wake-up instead. Read by libgomp when
  // the addon loads, so it is set before, and only where the user has not chosen.
  process.env.OMP_WAIT_POLICY ??= "PASSIVE"
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon
    addon.configure(nativeThreads(), 0, 0)
    loaded = { addon }
  } catch (e) {
    loaded = { error: `the native kernels could not be loaded (${String(e instanceof Error ? e.message : e).split("\n")[0]})` }
  }
  return loaded
}
