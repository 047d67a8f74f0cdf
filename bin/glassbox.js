#!/usr/bin/env node
// Entry point for the `glassbox` command. It runs the compiled JavaScript in .build/ when that
// build is newer than every source file (made by `npm ci` through scripts/build.mjs), because
// plain Node starts several times faster; otherwise it runs the TypeScript sources through tsx,
// so an edited checkout never runs stale code.
import { existsSync, readdirSync, statSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

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

const fresh = () => {
  if (process.env.GLASSBOX_FROM_SOURCE === "1" || !existsSync(stamp)) return false
  const built = statSync(stamp).mtimeMs
  return ["src", "pipelines"].every((dir) => newestSource(join(root, dir)) <= built)
}

if (fresh()) {
  await (await import("../.build/src/cli/main.js")).runMain()
} else {
  const { register } = await import("tsx/esm/api")
  register()
  await (await import("../src/cli/main.ts")).runMain()
}
