// Errors of backend selection, shared by every backend's loader (backend.ts, webgpu.ts), so a
// failed attempt under `auto` is one type that the next choice can catch.
import { Data } from "effect"

export class BackendUnavailable extends Data.TaggedError("BackendUnavailable")<{
  readonly backend: string
  readonly reason: string
}> {
  override get message() {
    return `backend "${this.backend}" is not available: ${this.reason}`
  }
}

/** The first line of whatever was thrown: native loaders put pages of detail below it. */
export const firstLine = (e: unknown) => String(e instanceof Error ? e.message : e).split("\n")[0]
