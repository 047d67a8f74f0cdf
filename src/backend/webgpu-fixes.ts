// Fixes for tfjs-backend-webgpu 4.22 running in Node on Dawn (the `webgpu` package), kept in one
// place so the model never checks which backend it runs on. Each answers a measured defect:
//  - A tensor larger than the device's maxStorageBufferBindingSize cannot be bound to a shader.
//    WebGPU reports that as a validation error on the device, tfjs never looks, and the kernel's
//    output is left as zeros or stale memory: silently wrong numbers. We refuse such a buffer
//    where tfjs allocates it, so the op that would be wrong throws GpuBindingLimitExceeded.
//  - Any other validation error is reported the same silent way (an `uncapturederror` event).
//    We record it, and from then on every read from the GPU throws GpuValidationError instead
//    of returning numbers. Every value that leaves the GPU passes through a read.
//  - AddN binds all its inputs at once, and a shader may bind only maxStorageBuffersPerShaderStage
//    buffers (WebGPU's default 8; lavapipe allows 16): tf.addN over more tensors (the global
//    gradient norm sums one per parameter) is rejected, and would be silently wrong without the
//    check above. We sum in groups that fit.
//  - dataSync() on webgpu draws through an OffscreenCanvas, which Node does not have, so every
//    synchronous read throws. We read synchronously the way the asynchronous path does (copy to
//    a staging buffer, map it), and wait for the map by driving Dawn's event processing
//    ourselves (see "Synchronous reads" below).
import * as tf from "@tensorflow/tfjs"
import { Data } from "effect"
import { BufferUsage, MapMode, type GpuBuffer, type TfWebGpuBackend } from "./webgpu-types.ts"

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

export class GpuBindingLimitExceeded extends Data.TaggedError("GpuBindingLimitExceeded")<{
  readonly bytes: number
  readonly limitBytes: number
  readonly adapter: string
}> {
  override get message() {
    return `a ${mib(this.bytes)} tensor exceeds the storage-binding limit of ${mib(this.limitBytes)} (maxStorageBufferBindingSize) on ${this.adapter}, past which WebGPU computes wrong numbers: lower train.batch or model.context, or choose another backend`
  }
}

export class GpuValidationError extends Data.TaggedError("GpuValidationError")<{
  readonly count: number
  readonly first: string
}> {
  override get message() {
    return `the GPU rejected ${this.count} command(s), so results computed since then may be wrong: ${this.first}; rerun with --backend wasm to continue, and report this line`
  }
}

export class GpuSyncReadFailed extends Data.TaggedError("GpuSyncReadFailed")<{ readonly reason: string }> {
  override get message() {
    return `a synchronous read from the GPU failed (${this.reason}); use await tensor.data(), or choose another backend`
  }
}

// ---------------------------------------------------------------------------------------------
// Synchronous reads. A WebGPU buffer is read by mapping it, and mapAsync completes only when
// Dawn processes its events. dawn.node asks for that processing by handing a native function to
// the global setImmediate whenever a request is outstanding; the function processes events and,
// if requests remain, schedules itself again. We interpose on setImmediate before Dawn starts,
// note each such function, and during a synchronous read call it directly, in a loop, until the
// map completes. The same function is also scheduled normally, and runs there only if we did
// not already run it, so the asynchronous path is unchanged.

const pendingDawnWork = new Set<() => void>()
let interposed = false

/** Dawn's scheduling callbacks are native functions; ours and everyone else's are JavaScript. */
const isNative = (f: unknown) => typeof f === "function" && /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(f))

/** Must run before the first call into dawn.node. */
export const installEventPump = (): void => {
  if (interposed) return
  interposed = true
  const original = globalThis.setImmediate
  const interposer = function (callback: (...args: unknown[]) => void, ...args: unknown[]) {
    if (!isNative(callback)) return original(callback, ...args)
    const run = () => callback(...args)
    pendingDawnWork.add(run)
    return original(() => {
      if (pendingDawnWork.delete(run)) run()
    })
  }
  // Keep util.promisify(setImmediate) and similar working: copy the symbol-keyed properties.
  for (const key of Object.getOwnPropertySymbols(original)) (interposer as unknown as Record<symbol, unknown>)[key] = (original as unknown as Record<symbol, unknown>)[key]
  globalThis.setImmediate = interposer as unknown as typeof setImmediate
}

/** Runs Dawn's pending event processing now. False when none was pending. */
const pumpDawnEvents = (): boolean => {
  if (pendingDawnWork.size === 0) return false
  const batch = [...pendingDawnWork]
  pendingDawnWork.clear()
  for (const run of batch) run()
  return true
}

const sleeper = new Int32Array(new SharedArrayBuffer(4))

/** Blocks until `buffer` is mapped, driving Dawn meanwhile. */
const waitForMap = (buffer: GpuBuffer): void => {
  let waitMs = 0
  while (buffer.mapState === "pending") {
    if (!pumpDawnEvents()) throw new GpuSyncReadFailed({ reason: "Dawn scheduled no event processing; the webgpu package may have changed how it does" })
    if (buffer.mapState !== "pending") break
    // The GPU (or lavapipe's threads) is still working: sleep a little, longer each time.
    if (waitMs > 0) Atomics.wait(sleeper, 0, 0, waitMs)
    waitMs = waitMs === 0 ? 0.02 : Math.min(1, waitMs * 2)
  }
  if (buffer.mapState !== "mapped") throw new GpuSyncReadFailed({ reason: `the staging buffer is ${buffer.mapState}, not mapped (device lost?)` })
}

/** What tfjs's getBufferData does, with the wait made synchronous. */
const readBufferSync = (backend: TfWebGpuBackend, buffer: GpuBuffer): ArrayBuffer => {
  const size = buffer.size
  const staging = backend.bufferManager.acquireBuffer(size, BufferUsage.COPY_DST | BufferUsage.MAP_READ)
  backend.ensureCommandEncoderReady()
  backend.endComputePassEncoder()
  backend.commandEncoder!.copyBufferToBuffer(buffer, 0, staging, 0, size)
  backend.submitQueue()
  // The promise settles after we are done; its outcome is read from mapState instead.
  staging.mapAsync(MapMode.READ).catch(() => undefined)
  waitForMap(staging)
  const bytes = staging.getMappedRange().slice(0)
  staging.unmap()
  backend.bufferManager.releaseBuffer(staging)
  return bytes
}

// ---------------------------------------------------------------------------------------------
// AddN in groups. tfjs's Concat already splits its inputs this way; AddN does not.

type TensorInfo = tf.TensorInfo
type KernelFunc = (args: { inputs: TensorInfo[]; backend: unknown; attrs?: Record<string, unknown> }) => TensorInfo

let kernelsInstalled = false

/** Replaces webgpu kernels (registered once per process, after tfjs-backend-webgpu is loaded). */
export const installWebGpuKernelFixes = (): void => {
  if (kernelsInstalled) return
  kernelsInstalled = true
  const addN = tf.getKernel("AddN", "webgpu").kernelFunc as unknown as KernelFunc
  const groupedAddN: KernelFunc = (args) => {
    const backend = args.backend as TfWebGpuBackend
    const perShader = backend.device.limits.maxStorageBuffersPerShaderStage - 1 // one binding is the output
    let level = [...args.inputs]
    const partials: TensorInfo[] = []
    while (level.length > perShader) {
      const next: TensorInfo[] = []
      for (let i = 0; i < level.length; i += perShader) next.push(addN({ ...args, inputs: level.slice(i, i + perShader) }))
      partials.push(...next)
      level = next
    }
    const sum = addN({ ...args, inputs: level })
    for (const t of partials) backend.disposeData(t.dataId)
    return sum
  }
  tf.unregisterKernel("AddN", "webgpu")
  tf.registerKernel({ kernelName: "AddN", backendName: "webgpu", kernelFunc: groupedAddN as unknown as tf.KernelFunc })
}

const isGpuBuffer = (r: unknown): r is GpuBuffer => typeof r === "object" && r !== null && typeof (r as GpuBuffer).mapAsync === "function"

// ---------------------------------------------------------------------------------------------

/**
 * Validation errors the device has reported. Sticky: once the GPU has rejected a command, every
 * later result may depend on what it failed to compute, so every read fails from then on.
 */
const errorLog = { count: 0, first: undefined as string | undefined }

const throwIfRejected = () => {
  if (errorLog.count > 0) throw new GpuValidationError({ count: errorLog.count, first: errorLog.first ?? "" })
}

/** Forgets reported errors: for tests and tools that provoke one on purpose, then carry on. */
export const clearGpuErrors = (): void => {
  errorLog.count = 0
  errorLog.first = undefined
}

/** Installs every fix on one WebGPUBackend instance, before it runs any kernel. */
export const installWebGpuFixes = (backend: TfWebGpuBackend, adapter: string): void => {
  const device = backend.device
  const limit = device.limits.maxStorageBufferBindingSize

  // 1. Refuse storage buffers past the binding limit where they are allocated, inside the op.
  const manager = backend.bufferManager
  const acquire = manager.acquireBuffer.bind(manager)
  manager.acquireBuffer = (size, usage, mappedAtCreation, reuse) => {
    if ((usage & BufferUsage.STORAGE) !== 0 && size > limit) throw new GpuBindingLimitExceeded({ bytes: size, limitBytes: limit, adapter })
    return acquire(size, usage, mappedAtCreation, reuse)
  }

  // 2. Turn the device's silent error reports into a failure at the next read.
  device.addEventListener("uncapturederror", (event) => {
    errorLog.count++
    errorLog.first ??= event.error.message.split("\n")[0]
  })
  device.lost.then((info) => {
    if (info.reason === "destroyed") return
    errorLog.count++
    errorLog.first ??= `device lost: ${info.message}`
  })
  // tfjs caches what it read on the CPU; a rejected read must not leave numbers there either.
  const forget = (dataId: object) => {
    const data = backend.tensorMap.get(dataId)
    if (data !== undefined && isGpuBuffer(data.resource)) data.values = null
  }
  const read = backend.read.bind(backend)
  backend.read = async (dataId) => {
    if (backend.tensorMap.get(dataId)?.values != null) return read(dataId) // already on the CPU
    throwIfRejected()
    const values = await read(dataId)
    if (errorLog.count > 0) {
      forget(dataId)
      throwIfRejected()
    }
    return values
  }

  // 3. Synchronous reads without an OffscreenCanvas.
  const readSync = backend.readSync.bind(backend)
  backend.readSync = (dataId) => {
    const data = backend.tensorMap.get(dataId)
    if (data === undefined || data.values != null || data.dtype === "complex64" || !isGpuBuffer(data.resource)) return readSync(dataId)
    throwIfRejected()
    const bytes = readBufferSync(backend, data.resource)
    throwIfRejected()
    return backend.convertAndCacheOnCPU(dataId, tf.util.convertBackendValuesAndArrayBuffer(bytes, data.dtype as tf.DataType))
  }
}
