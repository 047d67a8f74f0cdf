// The library entry points: package.json `exports` maps "glassbox" and "glassbox/interpret" to
// files that exist, their runtime shims (lib/*.js) export exactly what the typed sources export,
// and plain Node resolves `import("glassbox")` by the package's own name and gets the services.
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { runNode } from "../e2e/run-helpers.ts"

const root = path.resolve(import.meta.dirname, "../..")
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"))

/** Names a shim destructures from the loaded module. */
const shimNames = (file: string) => {
  const body = /export const \{([\s\S]*?)\} = m/.exec(fs.readFileSync(path.join(root, file), "utf8"))![1]
  return body.split(",").map((n) => n.trim()).filter((n) => n !== "").sort()
}

describe("package exports", () => {
  it("every entry point has types and a runtime file that exist", () => {
    expect(Object.keys(pkg.exports).sort()).toEqual([".", "./interpret", "./package.json"])
    for (const key of [".", "./interpret"]) {
      const entry = pkg.exports[key]
      expect(Object.keys(entry)[0]).toBe("types") // TypeScript reads the first matching condition
      for (const file of [entry.types, entry.default]) expect(fs.existsSync(path.join(root, file))).toBe(true)
    }
  })

  for (const [shim, source] of [["lib/index.js", "../../src/index.ts"], ["lib/interpret.js", "../../src/interpret/index.ts"]] as const) {
    it(`${shim} exports exactly the runtime names of ${source.replace("../../", "")}`, async () => {
      const module = await import(source)
      expect(shimNames(shim)).toEqual(Object.keys(module).sort())
    })
  }

  it("plain Node resolves glassbox and glassbox/interpret by the package name", async () => {
    const script = `const g = await import("glassbox"); const i = await import("glassbox/interpret");
      console.log(JSON.stringify({ model: typeof g.Model.init, trainer: typeof g.Trainer.live, cache: typeof i.runWithCache }))`
    const r = await runNode(["--input-type=module", "-e", script], { GLASSBOX_FROM_SOURCE: "1" }, root)
    expect(r.code, r.stderr).toBe(0)
    const out = r.stdout
    expect(JSON.parse(out.trim().split("\n").pop()!)).toEqual({ model: "function", trainer: "function", cache: "function" })
  })
})
