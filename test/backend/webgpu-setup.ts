// Starting the webgpu backend for tests. On a machine without a GPU the tests run on Mesa's
// lavapipe from .lavapipe/ (made by .ci/lavapipe.sh), unless GLASSBOX_LAVAPIPE says otherwise
// (set it empty to test on the machine's real GPU). Under CI the backend must start: a missing
// driver is a failure there, never a silent skip. Elsewhere the tests skip and say why.
import { Effect, Exit } from "effect"
import { resolve } from "node:path"
import { selectBackend, type TensorBackendInfo } from "../../src/backend/backend.ts"
import { lavapipeReady } from "../../src/backend/lavapipe.ts"

export const lavapipeFolder = resolve(".lavapipe")

/** CI sets CI (GitHub, GitLab and .ci/run alike); "false" or empty means a local run. */
export const underCI = (): boolean => {
  const v = process.env.CI
  return v !== undefined && v !== "" && v !== "false" && v !== "0"
}

export type WebGpuStart = { readonly ok: true; readonly backend: TensorBackendInfo } | { readonly ok: false; readonly reason: string }

export const startWebGpu = async (): Promise<WebGpuStart> => {
  if (process.env.GLASSBOX_LAVAPIPE === undefined && lavapipeReady(lavapipeFolder)) process.env.GLASSBOX_LAVAPIPE = lavapipeFolder
  const exit = await Effect.runPromiseExit(selectBackend("webgpu"))
  if (Exit.isSuccess(exit)) return { ok: true, backend: exit.value }
  const reason = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.message : String(exit.cause)
  return { ok: false, reason: lavapipeReady(lavapipeFolder) ? reason : `${reason} (no .lavapipe/ here: run bash .ci/lavapipe.sh)` }
}

/** Whether a test file should run its webgpu tests; says why not when it skips. */
export const webgpuTestsRun = (start: WebGpuStart, file: string): boolean => {
  if (start.ok) return true
  if (underCI()) return true // each test then fails with the reason
  console.log(`${file}: webgpu tests skipped: ${start.reason}`)
  return false
}

/** Throws the start failure (under CI the tests run anyway and must fail with it). */
export const requireStarted = (start: WebGpuStart): TensorBackendInfo => {
  if (!start.ok) throw new Error(`webgpu backend unavailable${underCI() ? " under CI, where it is required" : ""}: ${start.reason}`)
  return start.backend
}
