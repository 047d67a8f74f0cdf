// Permission problems as a user meets them: a run directory the user may not write, a parent in
// which it may not be created, and a checkpoints/ it may not read. Root reads and writes anything
// only through its capabilities (CAP_DAC_OVERRIDE), so when the suite runs as root (CI
// containers do) the CLI runs as root with every capability dropped by setpriv: it still owns
// the project's files, and the file modes apply to it, so the EACCES is real, not simulated.
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { expectOneLineError, runProcess, writeRunConfig } from "../e2e/run-helpers.ts"

const asRoot = process.getuid?.() === 0

/** Node with `nodeArgs` as an unprivileged process (itself when not root, else root without capabilities), without blocking this worker. */
const unprivileged = (nodeArgs: readonly string[]) => {
  let command = process.execPath
  let args = [...nodeArgs]
  if (asRoot) {
    const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => fs.existsSync(p))
    if (setpriv === undefined) throw new Error("running as root without setpriv (util-linux): cannot stage a real EACCES")
    command = setpriv
    args = ["--bounding-set=-all", "--inh-caps=-all", process.execPath, ...nodeArgs]
  }
  return runProcess(command, args)
}
const glassboxUnprivileged = (args: readonly string[]) => unprivileged(["bin/glassbox.js", ...args])

// A scratch folder every user can enter and read (mkdtemp makes it private to its owner).
const root = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-perm-"))
fs.chmodSync(root, 0o755)
afterAll(() => {
  for (const d of fs.readdirSync(root)) fs.chmodSync(path.join(root, d), 0o755)
  fs.rmSync(root, { recursive: true, force: true })
})


describe("permissions (a real EACCES)", () => {
  it("the process really is unprivileged", async () => {
    const r = await glassboxUnprivileged(["--version"])
    expect(r.code, r.stderr).toBe(0)
    // Probe: the unprivileged process cannot create a file in a folder that is only readable.
    const probe = path.join(root, "probe")
    fs.mkdirSync(probe, { mode: 0o555 })
    fs.chmodSync(probe, 0o555)
    const write = await unprivileged(["-e", `require("node:fs").writeFileSync(${JSON.stringify(path.join(probe, "x"))}, "")`])
    expect(write.stderr).toContain("EACCES")
    expect(write.code).not.toBe(0)
  }, 120_000)

  it("run.dir under a folder the user may not write, and run.dir itself unwritable: one line naming the permission, exit 1", async () => {
    const dir = path.join(root, "cfg")
    fs.mkdirSync(dir, { mode: 0o755 })
    const config = writeRunConfig(dir, { steps: 4 })
    fs.chmodSync(config, 0o644)
    const locked = path.join(root, "locked")
    fs.mkdirSync(locked, { mode: 0o555 })
    fs.chmodSync(locked, 0o555)
    const under = await glassboxUnprivileged(["run", config, "--set", `run.dir=${path.join(locked, "run")}`])
    expectOneLineError(under, new RegExp(`^glassbox: run\\.dir .*: permission denied at ${path.join(locked, "run")} \\(EACCES\\)`))
    const itself = await glassboxUnprivileged(["run", config, "--set", `run.dir=${locked}`])
    expectOneLineError(itself, /^glassbox: run\.dir .*: is not writable \(EACCES\)/)
  }, 180_000)

  it("a checkpoints/ the user may not read: resume names the permission problem, not 'no checkpoints'", async () => {
    const run = path.join(root, "run")
    fs.mkdirSync(path.join(run, "checkpoints"), { recursive: true })
    fs.chmodSync(run, 0o777)
    fs.chmodSync(path.join(run, "checkpoints"), 0o000)
    const r = await glassboxUnprivileged(["resume", run])
    expectOneLineError(r, /cannot read .*checkpoints: permission denied \(EACCES\)/)
    expect(r.stderr).not.toContain("no checkpoints")
    fs.chmodSync(path.join(run, "checkpoints"), 0o755)
  }, 120_000)
})
