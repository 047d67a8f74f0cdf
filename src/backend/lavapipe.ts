// Points this process's Vulkan loader at Mesa's lavapipe, a Vulkan driver that runs on the CPU,
// so the WebGPU backend can be tested on machines without a GPU. .ci/lavapipe.sh unpacks it into
// a project folder (default .lavapipe/) without installing anything system-wide; this file makes
// the running process use that folder. Set GLASSBOX_LAVAPIPE to the folder to opt in.
//
// Two things must happen before Dawn creates its Vulkan instance:
//  1. VK_DRIVER_FILES names the driver manifest. The Vulkan loader reads it with getenv when the
//     instance is created, so setting process.env now is early enough.
//  2. The driver needs a newer libdrm than the system's, and the machine may have no Vulkan loader
//     (libvulkan.so.1) at all. LD_LIBRARY_PATH would fix both, but the dynamic linker reads it
//     only when a process starts. Instead we load those libraries now, by absolute path: once a
//     library is in the process, the linker satisfies any later request for the same soname
//     ("libdrm.so.2", "libvulkan.so.1") with it, so Dawn and the driver pick up our copies.
//     Node's process.dlopen is the only way to load a library from JavaScript; it rejects
//     anything that is not a Node addon and unloads it again, unless RTLD_NODELETE keeps it.
import { existsSync, readdirSync, readFileSync, realpathSync } from "node:fs"
import { constants } from "node:os"
import { join, resolve } from "node:path"

/** glibc's RTLD_NODELETE (not exported in os.constants.dlopen): dlclose leaves the library loaded. */
const RTLD_NODELETE = 0x1000

export interface LavapipeSetup {
  readonly folder: string
  /** The driver manifest handed to the Vulkan loader. */
  readonly manifest: string
  /** Libraries loaded ahead of the driver. */
  readonly preloaded: readonly string[]
}

/** The folder from GLASSBOX_LAVAPIPE, or undefined when unset. */
export const lavapipeFolderFromEnv = (): string | undefined => {
  const v = process.env.GLASSBOX_LAVAPIPE
  return v === undefined || v === "" ? undefined : resolve(v)
}

/** Whether `folder` holds what .ci/lavapipe.sh produces. */
export const lavapipeReady = (folder: string): boolean => existsSync(join(folder, "ready")) && existsSync(join(folder, "lvp_icd.json"))

const loadedLibraries = () =>
  new Set(
    readFileSync("/proc/self/maps", "utf8")
      .split("\n")
      .map((line) => line.slice(line.indexOf("/")))
      .filter((path) => path.startsWith("/"))
  )

/**
 * Makes this process's Vulkan loader see lavapipe from `folder` (and only it: a GPU's driver is
 * hidden while VK_DRIVER_FILES is set). Returns what was set up; throws with the command to run
 * when the folder is not ready. Idempotent.
 */
export const useLavapipe = (folder: string): LavapipeSetup => {
  if (process.platform !== "linux") throw new Error(`lavapipe from ${folder} is only set up on Linux`)
  if (!lavapipeReady(folder)) throw new Error(`${folder} holds no lavapipe driver: run bash .ci/lavapipe.sh (needs apt's Debian archive)`)
  const manifest = join(folder, "lvp_icd.json")
  process.env.VK_DRIVER_FILES = manifest
  process.env.VK_ICD_FILENAMES = manifest // the name older Vulkan loaders read

  // Sonames only (libdrm.so.2, not libdrm.so.2.123.0): each real file once.
  const libDir = join(folder, "lib")
  const wanted = readdirSync(libDir)
    .filter((name) => /\.so\.\d+$/.test(name))
    .map((name) => realpathSync(join(libDir, name)))
  // A library whose own dependency is not loaded yet fails; retry until no progress is made.
  // (libdrm_amdgpu.so.1 needs libdrm.so.2: loaded first, ours is then the one it binds to.)
  const flags = constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL | RTLD_NODELETE
  let pending = wanted.filter((path) => !loadedLibraries().has(path))
  for (let pass = 0; pending.length > 0 && pass < wanted.length; pass++) {
    for (const path of pending) {
      try {
        process.dlopen({ exports: {} }, path, flags)
      } catch {
        // Expected: "Module did not self-register" (loaded, but not an addon). Checked below.
      }
    }
    const loaded = loadedLibraries()
    pending = pending.filter((path) => !loaded.has(path))
  }
  if (pending.length > 0) throw new Error(`could not load ${pending.join(", ")} from ${folder}: rerun bash .ci/lavapipe.sh`)
  return { folder, manifest, preloaded: wanted }
}
