// How the webgpu backend is chosen: the discrete-GPU judgement behind `auto`, `auto` passing over
// a CPU adapter (lavapipe) for the next backend, and the one-line errors that say what to install
// when there is no adapter or the lavapipe folder is missing. Selection runs in child processes:
// Dawn enumerates adapters once per process.
import { describe, expect, it } from "@effect/vitest"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { isDiscrete } from "../../src/backend/webgpu.ts"
import { lavapipeReady } from "../../src/backend/lavapipe.ts"
import { lavapipeFolder, underCI } from "./webgpu-setup.ts"
import { runNode } from "../e2e/run-helpers.ts"

interface Outcome {
  selected?: { name: string; description: string }
  error?: { tag: string; message: string }
  discreteRefusal?: { tag: string; message: string }
}

const select = async (choice: string, env: Record<string, string | undefined>): Promise<Outcome> => {
  const r = await runNode(["--import", "tsx", "test/backend/fixtures/select-webgpu.ts", choice], { GLASSBOX_BACKEND: undefined, ...env })
  const line = r.stdout.trim().split("\n").pop() ?? ""
  if (r.code !== 0 || !line.startsWith("{")) throw new Error(`selection child failed (status ${r.code}): ${r.stderr.slice(-2000)}`)
  return JSON.parse(line) as Outcome
}

describe("discrete GPU judgement", () => {
  const info = (vendor: string, description: string, isFallbackAdapter = false) => ({ vendor, architecture: "", device: "", description, isFallbackAdapter })
  it.each([
    ["lavapipe (a CPU fallback adapter)", info("mesa", "llvmpipe (LLVM 15.0.6, 256 bits)", true), undefined, false],
    ["an NVIDIA GPU", info("nvidia", "NVIDIA H200"), undefined, true],
    ["an integrated GPU alone", info("intel", "Intel(R) UHD Graphics 620"), info("intel", "Intel(R) UHD Graphics 620"), false],
    ["the high-performance one of two GPUs", info("amd", "AMD Radeon 780M"), info("intel", "Intel(R) Iris(R) Xe Graphics"), true],
    ["a discrete AMD product line", info("amd", "AMD Radeon RX 7900 XTX (RADV NAVI31)"), undefined, true],
    ["an AMD APU alone", info("amd", "AMD Radeon Graphics (RADV RENOIR)"), info("amd", "AMD Radeon Graphics (RADV RENOIR)"), false]
  ] as const)("%s", (_, high, low, expected) => {
    expect(isDiscrete(high, low)).toBe(expected)
  })
})

describe("webgpu selection errors", () => {
  it("no adapter: the error names the driver to install, VK_DRIVER_FILES and the lavapipe script", async () => {
    const out = await select("webgpu", { GLASSBOX_LAVAPIPE: undefined, VK_DRIVER_FILES: "/nonexistent/no_icd.json", VK_ICD_FILENAMES: "/nonexistent/no_icd.json" })
    expect(out.selected).toBeUndefined()
    expect(out.error?.tag).toBe("BackendUnavailable")
    expect(out.error?.message).toMatch(/no WebGPU adapter.*Vulkan driver.*VK_DRIVER_FILES.*bash \.ci\/lavapipe\.sh.*GLASSBOX_LAVAPIPE/)
    expect(out.error?.message.split("\n")).toHaveLength(1)
  })

  it("GLASSBOX_LAVAPIPE naming an empty folder: the error says which script makes it", async () => {
    const out = await select("webgpu", { GLASSBOX_LAVAPIPE: mkdtempSync(join(tmpdir(), "no-lavapipe-")) })
    expect(out.error?.message).toMatch(/GLASSBOX_LAVAPIPE: .* holds no lavapipe driver: run bash \.ci\/lavapipe\.sh/)
  })
})

const haveLavapipe = lavapipeReady(lavapipeFolder)
if (!haveLavapipe && !underCI()) console.log("webgpu-selection.test.ts: auto-with-lavapipe test skipped: no .lavapipe/ (run bash .ci/lavapipe.sh)")

describe.runIf(haveLavapipe || underCI())("auto with only a CPU adapter", () => {
  it("passes lavapipe over for the next backend, saying why; webgpu chosen by name still runs on it", async () => {
    if (!haveLavapipe) throw new Error("no .lavapipe/ under CI, where .ci/run must have made it (bash .ci/lavapipe.sh)")
    const auto = await select("auto", { GLASSBOX_LAVAPIPE: lavapipeFolder })
    expect(auto.selected?.name).not.toBe("webgpu")
    expect(auto.discreteRefusal?.message).toMatch(/CPU fallback adapter.*not a discrete GPU.*choose backend "webgpu"/)
    const named = await select("webgpu", { GLASSBOX_LAVAPIPE: lavapipeFolder })
    expect(named.selected?.name).toBe("webgpu")
    expect(named.selected?.description).toMatch(/llvmpipe.*CPU fallback adapter; binding limit 128 MiB/)
  })
})
