// A small headless-Chromium driver for report tests: it speaks the DevTools protocol over
// --remote-debugging-pipe (file descriptors 3 and 4, NUL-separated JSON), so it needs neither a
// WebSocket client nor an npm browser package. It opens one page, waits for load and fonts,
// evaluates an expression, and collects console messages, exceptions, log errors and every
// network request the page made.
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Readable, Writable } from "node:stream"

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"

export interface PageReport {
  /** console.* calls of type error or assert, and uncaught exceptions */
  readonly errors: ReadonlyArray<string>
  /** every console message and log entry, for diagnostics */
  readonly messages: ReadonlyArray<string>
  /** URLs the page requested (the document itself included) */
  readonly requests: ReadonlyArray<string>
  /** the value of the evaluated expression (JSON-serialisable) */
  readonly value: unknown
}

interface Pending {
  readonly resolve: (result: unknown) => void
  readonly reject: (error: Error) => void
}

/**
 * Loads `url` in headless Chromium, waits for the load event and `document.fonts.ready`,
 * then evaluates `expression` (which may return a promise). Screenshot optional (PNG path).
 */
export const inspectPage = async (
  url: string,
  expression: string,
  options: { readonly screenshot?: string; readonly timeoutMs?: number; /** Window width × height in CSS pixels (default 1200 × 2000). */ readonly window?: readonly [number, number] } = {}
): Promise<PageReport> => {
  const profile = mkdtempSync(join(tmpdir(), "glassbox-chromium-"))
  const child = spawn(
    CHROMIUM,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-extensions",
      `--window-size=${(options.window ?? [1200, 2000]).join(",")}`,
      `--user-data-dir=${profile}`,
      "--remote-debugging-pipe",
      "about:blank"
    ],
    { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] }
  )
  const toBrowser = child.stdio[3] as Writable
  const fromBrowser = child.stdio[4] as Readable
  let stderr = ""
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()))

  let nextId = 1
  const pending = new Map<number, Pending>()
  const listeners: Array<(method: string, params: any, sessionId?: string) => void> = []
  let buffer = ""
  fromBrowser.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("utf8")
    let end: number
    while ((end = buffer.indexOf("\0")) >= 0) {
      const message = JSON.parse(buffer.slice(0, end))
      buffer = buffer.slice(end + 1)
      if (message.id !== undefined) {
        const p = pending.get(message.id)
        pending.delete(message.id)
        if (message.error) p?.reject(new Error(`${message.error.message} (${message.error.code})`))
        else p?.resolve(message.result)
      } else for (const l of listeners) l(message.method, message.params, message.sessionId)
    }
  })
  const send = (method: string, params: object = {}, sessionId?: string): Promise<any> =>
    new Promise((resolve, reject) => {
      const id = nextId++
      pending.set(id, { resolve, reject })
      toBrowser.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + "\0")
    })
  const exited = new Promise<never>((_, reject) =>
    child.on("exit", (code) => reject(new Error(`chromium exited (${code}) before the check finished:\n${stderr.slice(-2000)}`)))
  )
  const timeout = new Promise<never>((_, reject) => {
    const t = setTimeout(() => reject(new Error(`chromium check timed out:\n${stderr.slice(-2000)}`)), options.timeoutMs ?? 60_000)
    t.unref()
  })

  const errors: string[] = []
  const messages: string[] = []
  const requests: string[] = []
  const run = async (): Promise<PageReport> => {
    const { targetId } = await send("Target.createTarget", { url: "about:blank" })
    const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true })
    let loaded: () => void = () => {}
    const loadFired = new Promise<void>((resolve) => (loaded = resolve))
    listeners.push((method, params, sid) => {
      if (sid !== sessionId) return
      if (method === "Page.loadEventFired") loaded()
      if (method === "Runtime.consoleAPICalled") {
        const text = `console.${params.type}: ${params.args.map((a: any) => a.value ?? a.description ?? "").join(" ")}`
        messages.push(text)
        if (params.type === "error" || params.type === "assert") errors.push(text)
      }
      if (method === "Runtime.exceptionThrown") errors.push(`uncaught: ${params.exceptionDetails.exception?.description ?? params.exceptionDetails.text}`)
      if (method === "Log.entryAdded") {
        const text = `log.${params.entry.level}: ${params.entry.text} ${params.entry.url ?? ""}`
        messages.push(text)
        if (params.entry.level === "error") errors.push(text)
      }
      if (method === "Network.requestWillBeSent") requests.push(params.request.url)
    })
    await Promise.all(["Page.enable", "Runtime.enable", "Log.enable", "Network.enable"].map((m) => send(m, {}, sessionId)))
    // Headless windows have a minimum width (500 px); emulating the viewport goes below it.
    if (options.window !== undefined) {
      await send("Emulation.setDeviceMetricsOverride", { width: options.window[0], height: options.window[1], deviceScaleFactor: 1, mobile: false }, sessionId)
    }
    await send("Page.navigate", { url }, sessionId)
    await loadFired
    const evaluated = await send(
      "Runtime.evaluate",
      { expression: `document.fonts.ready.then(() => (${expression}))`, awaitPromise: true, returnByValue: true },
      sessionId
    )
    if (evaluated.exceptionDetails) throw new Error(`evaluation failed: ${JSON.stringify(evaluated.exceptionDetails)}`)
    if (options.screenshot !== undefined) {
      const shot = await send("Page.captureScreenshot", { format: "png" }, sessionId)
      writeFileSync(options.screenshot, Buffer.from(shot.data, "base64"))
    }
    await send("Browser.close").catch(() => undefined)
    return { errors, messages, requests, value: evaluated.result.value }
  }
  try {
    return await Promise.race([run(), exited, timeout])
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()))
      const grace = setTimeout(() => child.kill("SIGKILL"), 5_000)
      await gone
      clearTimeout(grace)
    }
    rmSync(profile, { recursive: true, force: true, maxRetries: 3 })
  }
}
