// The TensorBackend service: which tfjs backend runs, chosen once from config or
// GLASSBOX_BACKEND. Native TensorFlow (tfjs-node-gpu, tfjs-node) is preferred when installed;
// it is an optional dependency whose install needs a download. WebGPU (Dawn, prebuilt in the
// `webgpu` package) reaches a GPU without any download; `auto` takes it only for a discrete GPU.
// wasm is the portable default and the plain cpu backend is the slow numeric reference.
// Kernel fixes live in this folder.
import * as tf from "@tensorflow/tfjs"
import { Context, Effect, Layer } from "effect"
import { BackendUnavailable, firstLine } from "./errors.ts"
import { installWasmKernelFixes } from "./wasm-kernels.ts"
import { describeAdapter, prepareWebGpu, type WebGpuAdapterReport } from "./webgpu.ts"

export { BackendUnavailable } from "./errors.ts"
export { maxBindingBytes } from "./limits.ts"

export const backendChoices = ["auto", "tensorflow-gpu", "tensorflow", "webgpu", "wasm", "cpu"] as const
export type BackendChoice = (typeof backendChoices)[number]
/** The tfjs registry names: "tensorflow" serves both tfjs-node and tfjs-node-gpu. */
export type BackendName = "tensorflow" | "webgpu" | "wasm" | "cpu"

export interface TensorBackendInfo {
  readonly tf: typeof tf
  /** What was asked for and what runs, e.g. "wasm (simd, 1 thread)". */
  readonly name: BackendName
  readonly description: string
  readonly memory: () => tf.MemoryInfo
  /** On webgpu: the adapter it runs on and its limits. */
  readonly adapter?: WebGpuAdapterReport
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

const useNative = (pkg: "@tensorflow/tfjs-node-gpu" | "@tensorflow/tfjs-node", label: string) =>
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

const useCpu = activate("cpu").pipe(Effect.as(info("cpu", "cpu (plain JavaScript reference)")))

/** Parses a user-supplied backend name (config or environment). */
export const parseBackendChoice = (value: string, where: string) =>
  (backendChoices as readonly string[]).includes(value)
    ? Effect.succeed(value as BackendChoice)
    : Effect.fail(new BackendUnavailable({ backend: value, reason: `unknown backend in ${where}; expected one of ${backendChoices.join(", ")}` }))

/**
 * Selects and initialises a backend. `auto` tries tensorflow-gpu, webgpu on a discrete GPU,
 * tensorflow, wasm, then cpu: the first that loads wins.
 */
export const selectBackend = (choice: BackendChoice): Effect.Effect<TensorBackendInfo, BackendUnavailable> => {
  switch (choice) {
    case "tensorflow-gpu":
      return useNative("@tensorflow/tfjs-node-gpu", "tensorflow-gpu")
    case "tensorflow":
      return useNative("@tensorflow/tfjs-node", "tensorflow")
    case "webgpu":
      return useWebGpu(false)
    case "wasm":
      return useWasm
    case "cpu":
      return useCpu
    case "auto":
      return useNative("@tensorflow/tfjs-node-gpu", "tensorflow-gpu").pipe(
        Effect.orElse(() => useWebGpu(true)),
        Effect.orElse(() => useNative("@tensorflow/tfjs-node", "tensorflow")),
        Effect.orElse(() => useWasm),
        Effect.orElse(() => useCpu)
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
      Effect.tap((b) => Effect.logDebug(`backend: ${b.description}`))
    )
  )
