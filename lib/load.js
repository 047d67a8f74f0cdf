// Loads one of glassbox's entry modules the way bin/glassbox.js runs the command: the compiled
// JavaScript in .build/ when that build is newer than every source file (plain Node, fast start),
// otherwise the TypeScript sources through tsx, so an edited checkout never serves stale code.
import { existsSync, readdirSync, statSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const stamp = join(root, ".build", ".stamp")

const newestSource = (dir) => {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs)
  }
  return newest
}

/** Whether .build/ was made after the last change to any source file. */
export const buildIsFresh = () => {
  if (!existsSync(stamp)) return false
  const built = statSync(stamp).mtimeMs
  return ["src", "pipelines"].every((dir) => newestSource(join(root, dir)) <= built)
}

const fresh = () => process.env.GLASSBOX_FROM_SOURCE !== "1" && buildIsFresh()

let registered = false

/** `entry` without extension, relative to the package root, e.g. "src/index". */
export const load = async (entry) => {
  if (fresh()) return import(pathToFileURL(join(root, ".build", `${entry}.js`)).href)
  if (!registered) {
    const { register } = await import("tsx/esm/api")
    register()
    registered = true
  }
  return import(pathToFileURL(join(root, `${entry}.ts`)).href)
}
