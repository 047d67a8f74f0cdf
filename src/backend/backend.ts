// The TensorBackend service: which tfjs backend runs, chosen once from config or
// GLASSBOX_BACKEND. Native TensorFlow (tfjs-node-gpu, tfjs-node) is preferred when installed;
// it is an optional dependency whose install needs a download. WebGPU (Dawn, prebuilt in the
// `webgpu` package) reaches a GPU without any download; `auto` takes it only for a discrete GPU.
// `native` (src/backend/native.ts: typed arrays + C kernels on OpenBLAS, built by `npm ci` where a
// compiler and OpenBLAS's headers exist) is the fast CPU path; wasm is the portable fallback and
// the plain cpu backend is the slow numeric reference.
// Kernel fixes live in this folder.
import * as tf from "@tensorflow/tfjs"
import { Context, Effect, Layer } from "effect"
import { BackendUnavailable, firstLine } from "./errors.ts"
import { installWasmKernelFixes } from "./wasm-kernels.ts"
import { loadNativeAddon, NATIVE_BUILD_HINT } from "./native-addon.ts"
import { NATIVE_BACKEND, registerNativeBackend } from "./native.ts"
import { describeAdapter, prepareWebGpu, type WebGpuAdapterReport } from "./webgpu.ts"

export { BackendUnavailable } from "./errors.ts"
export { maxBindingBytes } from "./limits.ts"

export const backendChoices = ["auto", "tensorflow-gpu", "tensorflow", "webgpu", "native", "wasm", "cpu"] as const
export type BackendChoice = (typeof backendChoices)[number]
/** The tfjs registry names: "tensorflow" serves both tfjs-node and tfjs-node-gpu. */
export type BackendName = "tensorflow" | "webgpu" | "native" | "wasm" | "cpu"

export interface TensorBackendInfo {
  readonly tf: typeof tf
  /** What was asked for and what runs, e.g. "wasm (simd, 1 thread)". */
  readonly name: BackendName
  readonly description: string
  readonly memory: () => tf.MemoryInfo
  /** On webgpu: the adapter it runs on and its limits. */
  readonly adapter?: WebGpuAdapterReport
  /** Said once, first, when `auto` passed over a faster backend that one command would enable. */
  readonly notice?: string
}

export class TensorBackend extends Context.Tag("glassbox/TensorBackend")<TensorBackend, TensorBackendInfo>() {}

const info = (name: BackendName, description: string, adapter?: WebGpuAdapterReport): TensorBackendInfo => ({
  tf,
  name,
  description,
  memory: () => tf.memory(),
  ...(adapter ? { adapter } : {})
})

const tryImport = (specifier: string) =>
  Effect.tryPromise({
    try: () => import(/* @vite-ignore */ specifier) as Promise<unknown>,
    catch: (e) => new BackendUnavailable({ backend: specifier, reason: firstLine(e) })
  })

const activate = (name: BackendName) =>
  Effect.tryPromise({
    try: async () => {
      // Production mode: no debug checks and no "install tfjs-node" banner from the cpu backend.
      tf.enableProdMode()
      const ok = await tf.setBackend(name)
      if (!ok) throw new Error("initialisation failed")
      await tf.ready()
    },
    catch: (e) => new BackendUnavailable({ backend: name, reason: firstLine(e) })
  })

const useTensorflow = (pkg: "@tensorflow/tfjs-node-gpu" | "@tensorflow/tfjs-node", label: string) =>
  tryImport(pkg).pipe(
    Effect.zipRight(activate("tensorflow")),
    Effect.as(info("tensorflow", label)),
    Effect.mapError((e) => new BackendUnavailable({ backend: label, reason: `${pkg} could not be loaded (${e.reason})` }))
  )

const useWasm = Effect.gen(function* () {
  yield* tryImport("@tensorflow/tfjs-backend-wasm")
  yield* activate("wasm")
  installWasmKernelFixes()
  const simd = tf.env().getBool("WASM_HAS_SIMD_SUPPORT")
  const threads = tf.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT")
  return info("wasm", `wasm (${simd ? "simd" : "no simd"}, ${threads ? "threads" : "1 thread"})`)
})

/** `requireDiscrete`: the `auto` choice, which passes over CPU adapters and integrated GPUs. */
const useWebGpu = (requireDiscrete: boolean) =>
  Effect.gen(function* () {
    const adapter = yield* prepareWebGpu({ requireDiscrete })
    yield* activate("webgpu")
    return info("webgpu", `webgpu on ${describeAdapter(adapter)}`, adapter)
  })

/** The native kernels (src/backend/native.ts), when the addon is built and loads. */
const useNativeKernels = Effect.gen(function* () {
  const loaded = loadNativeAddon()
  if ("error" in loaded) return yield* Effect.fail(new BackendUnavailable({ backend: NATIVE_BACKEND, reason: loaded.error }))
  registerNativeBackend(loaded.addon)
  yield* activate(NATIVE_BACKEND)
  const d = loaded.addon.describe()
  const blas = d.blas.split(" ").slice(0, 2).join(" ")
  return info(NATIVE_BACKEND, `native (${blas}, ${d.threads} thread${d.threads === 1 ? "" : "s"})`)
})

const useCpu = activate("cpu").pipe(Effect.as(info("cpu", "cpu (plain JavaScript reference)")))

/** Parses a user-supplied backend name (config or environment). */
export const parseBackendChoice = (value: string, where: string) =>
  (backendChoices as readonly string[]).includes(value)
    ? Effect.succeed(value as BackendChoice)
    : Effect.fail(new BackendUnavailable({ backend: value, reason: `unknown backend in ${where}; expected one of ${backendChoices.join(", ")}` }))

/**
 * Selects and initialises a backend. `auto` tries tensorflow-gpu, webgpu on a discrete GPU,
 * tensorflow, native, wasm, then cpu: the first that loads wins. Passing over native (not built)
 * leaves a notice naming the command that builds it.
 */
export const selectBackend = (choice: BackendChoice): Effect.Effect<TensorBackendInfo, BackendUnavailable> => {
  switch (choice) {
    case "tensorflow-gpu":
      return useTensorflow("@tensorflow/tfjs-node-gpu", "tensorflow-gpu")
    case "tensorflow":
      return useTensorflow("@tensorflow/tfjs-node", "tensorflow")
    case "native":
      return useNativeKernels.pipe(
        Effect.mapError((e) => new BackendUnavailable({ backend: e.backend, reason: `${e.reason}; build them with: ${NATIVE_BUILD_HINT}` }))
      )
    case "webgpu":
      return useWebGpu(false)
    case "wasm":
      return useWasm
    case "cpu":
      return useCpu
    case "auto":
      return useTensorflow("@tensorflow/tfjs-node-gpu", "tensorflow-gpu").pipe(
        Effect.orElse(() => useWebGpu(true)),
        Effect.orElse(() => useTensorflow("@tensorflow/tfjs-node", "tensorflow")),
        Effect.orElse(() =>
          useNativeKernels.pipe(
            Effect.catchAll((skipped) =>
              useWasm.pipe(
                Effect.orElse(() => useCpu),
                Effect.map((b) => ({ ...b, notice: `note: ${skipped.reason}; running on ${b.description}, several times slower. For the fast CPU path run: ${NATIVE_BUILD_HINT}` }))
              )
            )
          )
        )
      )
  }
}

/** The configured choice, overridden by GLASSBOX_BACKEND when that is set. */
export const resolveBackendChoice = (configured: BackendChoice) => {
  const fromEnv = process.env.GLASSBOX_BACKEND
  return fromEnv !== undefined && fromEnv !== "" ? parseBackendChoice(fromEnv, "GLASSBOX_BACKEND") : Effect.succeed(configured)
}

export const TensorBackendLive = (configured: BackendChoice): Layer.Layer<TensorBackend, BackendUnavailable> =>
  Layer.effect(
    TensorBackend,
    resolveBackendChoice(configured).pipe(
      Effect.flatMap(selectBackend),
      Effect.tap((b) => (b.notice === undefined ? Effect.void : Effect.sync(() => process.stderr.write(`${b.notice}\n`)))),
      Effect.tap((b) => Effect.logDebug(`backend: ${b.description}`))
    )
  )
