// The few WebGPU and tfjs-backend-webgpu shapes this folder touches, written out by hand.
// The `webgpu` package's own types pull in @webgpu/types (a second copy, which clashes with the
// one tfjs-backend-webgpu sees), and `webgpu` is an optional dependency that may be absent, so
// the project type-checks against these instead and imports both packages dynamically.

/** WebGPU's numeric flags (fixed by the specification). */
export const BufferUsage = { MAP_READ: 0x0001, COPY_DST: 0x0008, STORAGE: 0x0080 } as const
export const MapMode = { READ: 0x0001 } as const

export interface GpuAdapterInfo {
  readonly vendor: string
  readonly architecture: string
  readonly device: string
  readonly description: string
  readonly isFallbackAdapter?: boolean
}

export interface GpuLimits {
  readonly maxStorageBufferBindingSize: number
  readonly maxBufferSize: number
  readonly maxComputeWorkgroupStorageSize: number
  readonly maxComputeWorkgroupsPerDimension: number
  readonly maxComputeWorkgroupSizeX: number
  readonly maxComputeInvocationsPerWorkgroup: number
  readonly maxStorageBuffersPerShaderStage: number
}

export interface GpuBuffer {
  readonly size: number
  readonly usage: number
  readonly mapState: "unmapped" | "pending" | "mapped"
  mapAsync(mode: number): Promise<void>
  getMappedRange(): ArrayBuffer
  unmap(): void
  destroy(): void
}

export interface GpuError {
  readonly message: string
}

export interface GpuDevice {
  readonly limits: GpuLimits
  readonly lost: Promise<{ readonly reason: string; readonly message: string }>
  addEventListener(type: "uncapturederror", listener: (event: { readonly error: GpuError }) => void): void
  createBuffer(descriptor: { size: number; usage: number }): GpuBuffer
  destroy(): void
}

export interface GpuAdapter {
  readonly info: GpuAdapterInfo
  readonly limits: GpuLimits
  readonly features: ReadonlySet<string>
  requestDevice(descriptor?: { requiredFeatures?: string[]; requiredLimits?: Record<string, number> }): Promise<GpuDevice>
}

export interface Gpu {
  requestAdapter(options?: { powerPreference?: "high-performance" | "low-power"; forceFallbackAdapter?: boolean }): Promise<GpuAdapter | null>
}

/** The `webgpu` npm package: Dawn's dawn.node. */
export interface WebGpuPackage {
  create(options: string[]): Gpu
  /** GPUBufferUsage, GPUMapMode, GPUBuffer, ... which a browser would provide as globals. */
  readonly globals: Record<string, unknown>
}

/** One tensor's record in tfjs-backend-webgpu's tensorMap. */
export interface TfWebGpuTensorData {
  readonly dtype: string
  readonly shape: number[]
  values: unknown
  resource: unknown
}

/** The parts of tfjs-backend-webgpu's WebGPUBackend (4.22) that src/backend/webgpu-fixes.ts uses. */
export interface TfWebGpuBackend {
  readonly device: GpuDevice
  commandEncoder: { copyBufferToBuffer(src: GpuBuffer, srcOffset: number, dst: GpuBuffer, dstOffset: number, size: number): void } | null
  readonly bufferManager: {
    acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): GpuBuffer
    releaseBuffer(buffer: GpuBuffer, reuse?: boolean): void
  }
  readonly tensorMap: { has(dataId: object): boolean; get(dataId: object): TfWebGpuTensorData | undefined }
  ensureCommandEncoderReady(): void
  endComputePassEncoder(): void
  submitQueue(): void
  convertAndCacheOnCPU(dataId: object, values: unknown): unknown
  disposeData(dataId: object, force?: boolean): boolean
  read(dataId: object): Promise<unknown>
  readSync(dataId: object): unknown
}

/** The `@tensorflow/tfjs-backend-webgpu` module. */
export interface TfWebGpuPackage {
  readonly WebGPUBackend: new (device: GpuDevice, adapterInfo?: GpuAdapterInfo) => TfWebGpuBackend
}
