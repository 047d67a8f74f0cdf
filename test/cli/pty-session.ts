// The interactive menu driven through a real pseudo-terminal (util-linux `script`), shared by the
// menu tests: keys are pressed one by one with a pause, and the screen (ANSI codes stripped) is
// awaited text by text, each wait starting after the last text found.
import { spawn } from "node:child_process"
import * as path from "node:path"

const ROOT = process.cwd()
export const KEYS = { down: "\x1b[B", enter: "\r", esc: "\x1b", ctrlC: "\x03", backspace: "\x7f" }
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "")

/** `glassbox` with no arguments (the menu) in `cwd`, on wasm, 40 lines tall; `env` adds to the environment. */
export const menuSession = (cwd: string, env: Record<string, string> = {}) => {
  const child = spawn("script", ["-qfec", `${process.execPath} ${path.join(ROOT, "bin/glassbox.js")}`, "/dev/null"], {
    cwd,
    env: { ...process.env, TERM: "xterm", GLASSBOX_BACKEND: "wasm", COLUMNS: "120", LINES: "40", ...env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  let raw = ""
  child.stdout.on("data", (d) => (raw += d))
  child.stderr.on("data", (d) => (raw += d))
  const text = () => stripAnsi(raw)
  let mark = 0
  /** Waits until `needle` appears after the last waited-for text. */
  const waitFor = (needle: string, timeoutMs = 90_000) =>
    new Promise<void>((resolve, reject) => {
      const started = Date.now()
      const timer = setInterval(() => {
        const at = text().indexOf(needle, mark)
        if (at >= 0) {
          mark = at + needle.length
          clearInterval(timer)
          resolve()
        } else if (Date.now() - started > timeoutMs) {
          clearInterval(timer)
          reject(new Error(`timed out waiting for "${needle}"; screen so far:\n${text().slice(-2000)}`))
        }
      }, 25)
    })
  const press = async (...keys: string[]) => {
    for (const k of keys) {
      child.stdin.write(k)
      await new Promise((r) => setTimeout(r, 150))
    }
  }
  const type = (s: string) => press(...s.split(""))
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve))
  return { waitFor, press, type, exited, text }
}
