// Exit codes: 0 on success; 1 for a known failure (a tagged error), printed as one line; 2 for
// anything unexpected, printed as one line that points at a log holding the full detail.
import { describe, expect, it } from "@effect/vitest"
import { Data, Effect } from "effect"
import * as fs from "node:fs"
import { toExitCode } from "../../src/cli/errors.ts"

class Known extends Data.TaggedError("Known")<{ readonly file: string }> {
  override get message() {
    return `${this.file}: something the user can fix`
  }
}

const captureStderr = async (run: () => Promise<number>) => {
  const chunks: string[] = []
  const original = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((s: string) => chunks.push(String(s)) > 0) as typeof process.stderr.write
  try {
    const code = await run()
    return { code, stderr: chunks.join("") }
  } finally {
    process.stderr.write = original
  }
}

describe("exit codes", () => {
  it("0 on success", async () => {
    expect((await captureStderr(() => Effect.runPromise(toExitCode(Effect.void)))).code).toBe(0)
  })

  it("1 and one line for a known failure", async () => {
    const r = await captureStderr(() => Effect.runPromise(toExitCode(Effect.fail(new Known({ file: "x.json" })))))
    expect(r.code).toBe(1)
    expect(r.stderr).toBe("glassbox: x.json: something the user can fix\n")
  })

  it("2 and a pointer to the log for an internal error, with the detail in the log", async () => {
    const r = await captureStderr(() => Effect.runPromise(toExitCode(Effect.die(new Error("invariant broken\n    at somewhere")))))
    expect(r.code).toBe(2)
    const m = /^glassbox: internal error: invariant broken \(details in (.+)\)\n$/.exec(r.stderr)
    expect(m, r.stderr).not.toBeNull()
    expect(fs.readFileSync(m![1], "utf8")).toContain("invariant broken")
  })
})
