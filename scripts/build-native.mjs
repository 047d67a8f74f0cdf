// Builds the native kernel pack (src/backend/native/: C over OpenBLAS, via node-gyp) on `npm ci`
// and `npm rebuild` (the root package's `install` script: npm runs the project's own scripts
// even where dependencies' install scripts need approval). Never fails the install: without a C
// compiler or OpenBLAS's headers it says what is missing and `auto` uses wasm instead.
//   GLASSBOX_SKIP_NATIVE=1   skip the build (the wasm fallback is tested this way too)
import { spawnSync } from "node:child_process"
import { existsSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const addonDir = join(root, "src", "backend", "native")
const hint = process.platform === "darwin" ? "xcode-select --install && npm rebuild" : "apt-get install libopenblas-dev build-essential && npm rebuild"
const say = (line) => process.stdout.write(`glassbox native kernels: ${line}\n`)

if (process.env.GLASSBOX_SKIP_NATIVE === "1") {
  say("skipped (GLASSBOX_SKIP_NATIVE=1)")
  process.exit(0)
}

const has = (cmd, args = ["--version"]) => spawnSync(cmd, args, { stdio: "ignore" }).status === 0
const headerDirs = ["/usr/include", "/usr/include/x86_64-linux-gnu", "/usr/include/aarch64-linux-gnu", "/usr/include/openblas", "/usr/local/include", "/opt/homebrew/opt/openblas/include"]
const missing = []
if (!has("cc") && !has("gcc") && !has("clang")) missing.push("a C compiler")
if (!has("make", ["--version"])) missing.push("make")
if (process.platform !== "darwin" && !headerDirs.some((d) => existsSync(join(d, "cblas.h")))) missing.push("OpenBLAS headers (cblas.h)")
if (missing.length > 0) {
  say(`not built: ${missing.join(", ")} missing; training will use wasm. For the fast CPU path: ${hint}`)
  process.exit(0)
}

/** node-gyp: the one npm passes to scripts, else the one bundled with npm, else a local one. */
const findNodeGyp = () => {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js")
  ]
  try {
    candidates.push(createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js"))
  } catch {
    // not installed locally
  }
  return candidates.find((c) => c !== undefined && existsSync(c))
}

const nodeGyp = findNodeGyp()
if (nodeGyp === undefined) {
  say(`not built: node-gyp not found (it ships with npm); training will use wasm. Then: ${hint}`)
  process.exit(0)
}
const started = Date.now()
const result = spawnSync(process.execPath, [nodeGyp, "rebuild"], { cwd: addonDir, encoding: "utf8", env: process.env })
if (result.status !== 0) {
  rmSync(join(addonDir, "build"), { recursive: true, force: true })
  const firstError = `${result.stdout}\n${result.stderr}`.split("\n").find((l) => /error/i.test(l)) ?? "node-gyp failed"
  say(`not built (${firstError.trim().slice(0, 200)}); training will use wasm. For the fast CPU path: ${hint}`)
  process.exit(0)
}
say(`built in ${((Date.now() - started) / 1000).toFixed(1)} s (src/backend/native/build/Release/glassbox_native.node)`)
