// Compiles src/ and pipelines/ to plain JavaScript in .build/ so the `glassbox` command starts
// without a TypeScript loader (tsx's module hooks make importing Effect ~3x slower). Runs on
// `npm ci` (the prepare script) and never fails the install: without a fresh build the command
// simply runs the TypeScript sources through tsx. The stamp is written only after a clean build.
// `--if-stale` (npm test) does nothing when the build is newer than every source: the suite starts
// hundreds of glassbox processes, each ~2 s slower through tsx than from .build/.
import { spawnSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
if (process.argv.includes("--if-stale") && (await import("../lib/load.js")).buildIsFresh()) process.exit(0)
const out = join(root, ".build")
rmSync(out, { recursive: true, force: true })
const tsc = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" })
if (tsc.status !== 0) {
  process.stderr.write("glassbox build: TypeScript did not compile cleanly; the command will run the sources through tsx\n")
  process.exit(0)
}
// Worker scripts are plain JavaScript already: copy them beside the compiled modules that load them.
const copyMjs = (dir) => {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = join(dir, entry.name)
    if (entry.isDirectory()) copyMjs(rel)
    else if (entry.name.endsWith(".mjs")) {
      mkdirSync(dirname(join(out, rel)), { recursive: true })
      cpSync(join(root, rel), join(out, rel))
    }
  }
}
copyMjs("src")
// Paths resolved relative to a module (the shipped corpus) must find the repository's data/.
if (!existsSync(join(out, "data"))) symlinkSync(join("..", "data"), join(out, "data"))
writeFileSync(join(out, ".stamp"), new Date().toISOString() + "\n")
