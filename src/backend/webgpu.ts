// The WebGPU backend: tfjs-backend-webgpu on Dawn, Google's WebGPU implementation, which the
// `webgpu` npm package ships prebuilt for Linux, macOS and Windows (nothing downloads at install,
// unlike tfjs-node-gpu's libtensorflow). Dawn drives the GPU through Vulkan, Metal or D3D12; on a
// machine without a GPU it can use Mesa's lavapipe, a Vulkan driver on the CPU (see lavapipe.ts),
// which is slow but exact enough to test against the cpu backend.
//
// Order matters when loading: tfjs-backend-webgpu looks for `navigator.gpu` and the GPU* globals
// (GPUBufferUsage, GPUBuffer, ...) while it is evaluated and when it runs, so we create them from
// `webgpu` first and import tfjs-backend-webgpu afterwards. It then registers its own factory,
// which would ask for "some" adapter; we replace it with one that uses the adapter we inspected
// and reported, and that installs webgpu-fixes.ts on the backend before any kernel runs.
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { BackendUnavailable, firstLine } from "./errors.ts"
import { lavapipeFolderFromEnv, useLavapipe } from "./lavapipe.ts"
import { registerBindingLimit } from "./limits.ts"
import { installEventPump, installWebGpuFixes, installWebGpuKernelFixes } from "./webgpu-fixes.ts"
import type { Gpu, GpuAdapter, GpuAdapterInfo, GpuDevice, TfWebGpuBackend, TfWebGpuPackage, WebGpuPackage } from "./webgpu-types.ts"

/** What we learned about the adapter, printed when the backend starts. */
export interface WebGpuAdapterReport {
  readonly vendor: string
  readonly architecture: string
  readonly description: string
  /** A CPU implementation (lavapipe, SwiftShader), not a GPU. */
  readonly fallback: boolean
  /** Our judgement that this is a discrete GPU (see isDiscrete). */
  readonly discrete: boolean
  readonly maxStorageBufferBindingSize: number
  readonly maxBufferSize: number
}

const NO_ADAPTER_HINT =
  "Dawn found no WebGPU adapter: install the GPU's Vulkan driver (NVIDIA: the driver's Vulkan ICD, nvidia_icd.json; VK_DRIVER_FILES may point at it), " +
  "or for a slow CPU stand-in run bash .ci/lavapipe.sh and set GLASSBOX_LAVAPIPE=.lavapipe"

const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`

/**
 * WebGPU does not say whether an adapter is discrete, so we judge from what it does say: never a
 * fallback (CPU) adapter; an NVIDIA adapter; or, when the high-performance and low-power requests
 * return different adapters (a laptop with two GPUs), the high-performance one; or a name from a
 * discrete product line. An integrated GPU alone is not chosen by `auto` (wasm on the CPU is
 * often as fast for our sizes); `backend: "webgpu"` uses it anyway.
 */
export const isDiscrete = (high: GpuAdapterInfo, low: GpuAdapterInfo | undefined): boolean => {
  if (high.isFallbackAdapter === true) return false
  if (/nvidia/i.test(high.vendor)) return true
  if (low !== undefined && low.description !== high.description) return true
  return /radeon (rx|pro)|instinct|firepro|arc\(tm\) a\d|arc a\d/i.test(high.description)
}

export const describeAdapter = (r: WebGpuAdapterReport): string =>
  `${r.description || "unnamed adapter"} (vendor ${r.vendor || "?"}${r.architecture ? `, ${r.architecture}` : ""}; ` +
  `${r.fallback ? "CPU fallback adapter" : r.discrete ? "discrete GPU" : "GPU, not judged discrete"}; ` +
  `binding limit ${mib(r.maxStorageBufferBindingSize)}, buffer limit ${mib(r.maxBufferSize)})`

/** Dawn options from GLASSBOX_DAWN_OPTIONS, ";"-separated, e.g. "backend=vulkan;adapter=NVIDIA H200". */
const dawnOptions = () => (process.env.GLASSBOX_DAWN_OPTIONS ?? "").split(";").filter((o) => o !== "")

/** Provides what a browser would: the GPU* globals and navigator.gpu, without replacing any. */
const installBrowserGlobals = (pkg: WebGpuPackage, gpu: Gpu) => {
  const g = globalThis as Record<string, unknown>
  for (const [name, value] of Object.entries(pkg.globals)) if (!(name in g)) g[name] = value
  // Node 21+ has a navigator object of its own; Node 20 has none.
  if (g.navigator === undefined) Object.defineProperty(globalThis, "navigator", { value: {}, configurable: true, writable: true })
  Object.defineProperty(g.navigator, "gpu", { value: gpu, configurable: true, writable: true })
}

/**
 * On Linux, whether Dawn could find a Vulkan loader (libvulkan.so.1) at all: beside dawn.node
 * (where Dawn looks first), on LD_LIBRARY_PATH, or in the linker's cache. `auto` checks this
 * first, so a machine without Vulkan neither loads Dawn's 20 MB library nor sees its warning.
 */
const vulkanLoaderFindable = (): boolean => {
  if (process.platform !== "linux" || lavapipeFolderFromEnv() !== undefined) return true
  const dirs = (process.env.LD_LIBRARY_PATH ?? "").split(":").filter((d) => d !== "")
  try {
    dirs.push(join(dirname(createRequire(import.meta.url).resolve("webgpu")), "dist", `linux-${process.arch}`))
  } catch {
    // webgpu is not installed: loading it will say so.
  }
  if (dirs.some((d) => existsSync(join(d, "libvulkan.so.1")))) return true
  try {
    return readFileSync("/etc/ld.so.cache").includes("libvulkan.so.1")
  } catch {
    return false
  }
}

const load = <T>(specifier: string, hint: string) =>
  Effect.tryPromise({
    try: () => import(/* @vite-ignore */ specifier) as Promise<T>,
    catch: (e) => new BackendUnavailable({ backend: "webgpu", reason: `${hint} (${firstLine(e)})` })
  })

/** The device the webgpu backend runs on, once started. One per process. */
let started: { report: WebGpuAdapterReport; device: () => GpuDevice | undefined } | undefined

/**
 * Loads Dawn, picks the high-performance adapter and registers tfjs's "webgpu" backend on it.
 * With `requireDiscrete` (the `auto` choice) anything but a discrete GPU is refused, before
 * tfjs-backend-webgpu is loaded. The caller activates the backend (tf.setBackend).
 */
export const prepareWebGpu = (options: { readonly requireDiscrete: boolean }): Effect.Effect<WebGpuAdapterReport, BackendUnavailable> =>
  Effect.gen(function* () {
    if (started !== undefined) {
      if (options.requireDiscrete && !started.report.discrete) return yield* notDiscrete(started.report)
      return started.report
    }
    const lavapipe = lavapipeFolderFromEnv()
    if (lavapipe !== undefined) {
      yield* Effect.try({
        try: () => useLavapipe(lavapipe),
        catch: (e) => new BackendUnavailable({ backend: "webgpu", reason: `GLASSBOX_LAVAPIPE: ${firstLine(e)}` })
      })
    }
    if (options.requireDiscrete && !vulkanLoaderFindable()) {
      return yield* Effect.fail(new BackendUnavailable({ backend: "webgpu", reason: "no Vulkan loader (libvulkan.so.1) on this machine, so no GPU for Dawn: install libvulkan1 and the GPU's driver" }))
    }
    const pkg = yield* load<WebGpuPackage>("webgpu", "the optional package webgpu did not load: run npm install webgpu@0.6.2")
    installEventPump()
    const gpu = pkg.create(dawnOptions())
    const high = yield* Effect.promise(() => gpu.requestAdapter({ powerPreference: "high-performance" }))
    if (high === null) return yield* Effect.fail(new BackendUnavailable({ backend: "webgpu", reason: NO_ADAPTER_HINT }))
    const low = yield* Effect.promise(() => gpu.requestAdapter({ powerPreference: "low-power" }))
    const report: WebGpuAdapterReport = {
      vendor: high.info.vendor,
      architecture: high.info.architecture,
      description: high.info.description,
      fallback: high.info.isFallbackAdapter === true,
      discrete: isDiscrete(high.info, low?.info),
      maxStorageBufferBindingSize: high.limits.maxStorageBufferBindingSize,
      maxBufferSize: high.limits.maxBufferSize
    }
    if (options.requireDiscrete && !report.discrete) return yield* notDiscrete(report)

    installBrowserGlobals(pkg, gpu)
    const tfWebGpu = yield* load<TfWebGpuPackage>("@tensorflow/tfjs-backend-webgpu", "@tensorflow/tfjs-backend-webgpu did not load: run npm ci")
    installWebGpuKernelFixes()
    let device: GpuDevice | undefined
    if (tf.findBackendFactory("webgpu") != null) tf.removeBackend("webgpu") // its own factory, registered on import
    tf.registerBackend(
      "webgpu",
      async () => {
        device = await requestDevice(high)
        const backend = new tfWebGpu.WebGPUBackend(device, high.info)
        installWebGpuFixes(backend, report.description || "this GPU")
        return backend as unknown as tf.KernelBackend
      },
      0 // never tfjs's default pick: we always choose a backend explicitly
    )
    registerBindingLimit("webgpu", () => device?.limits.maxStorageBufferBindingSize)
    started = { report, device: () => device }
    return report
  })

const notDiscrete = (r: WebGpuAdapterReport) =>
  Effect.fail(
    new BackendUnavailable({
      backend: "webgpu",
      reason: `${describeAdapter(r)} is not a discrete GPU, so auto passes it over; choose backend "webgpu" to use it anyway`
    })
  )

/**
 * The limits tfjs-backend-webgpu asks for, the adapter's own maxima rather than WebGPU's low
 * defaults; plus storage buffers per shader, so fewer AddN and Concat calls need splitting.
 */
const requestDevice = (adapter: GpuAdapter) => {
  const l = adapter.limits
  return adapter.requestDevice({
    requiredFeatures: adapter.features.has("timestamp-query") ? ["timestamp-query"] : [],
    requiredLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage
    }
  })
}

/** The running webgpu backend's tfjs object, when webgpu is active. */
export const activeWebGpuBackend = (): TfWebGpuBackend | undefined =>
  tf.getBackend() === "webgpu" ? (tf.engine().findBackend("webgpu") as unknown as TfWebGpuBackend) : undefined

/** The adapter report once prepareWebGpu has succeeded in this process. */
export const webGpuReport = (): WebGpuAdapterReport | undefined => started?.report
