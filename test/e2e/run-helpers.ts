// Helpers for end-to-end tests that drive real `glassbox` processes: write a small training
// config, start the CLI, watch a run directory, and read back what the run left on disk. The
// training itself always runs in a child process, so the test worker's event loop stays free
// (vitest's worker RPC times out when a test blocks it for a minute).
import { expect } from "@effect/vitest"
import { spawn, type ChildProcess } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

export interface SmallRun {
  readonly steps: number
  readonly backend?: string
  readonly heads?: number
  readonly batch?: number
  readonly evalEvery?: number
  readonly dModel?: number
  readonly layers?: number
  readonly context?: number
  readonly every?: number
  readonly keep?: number
}

/** A bytes-tokenizer config in `dir`, training into `dir/run`; returns the config file. */
export const writeRunConfig = (dir: string, o: SmallRun): string => {
  const file = path.join(dir, "config.json")
  fs.writeFileSync(
    file,
    JSON.stringify({
      run: { dir: path.join(dir, "run"), seed: 11 },
      backend: o.backend ?? "wasm",
      tokenizer: "bytes",
      model: { layers: o.layers ?? 2, heads: o.heads ?? 2, d_model: o.dModel ?? 64, d_ff: 4 * (o.dModel ?? 64), context: o.context ?? 32, dropout: 0.1 },
      data: { val_fraction: 0.05 },
      train: { steps: o.steps, batch: o.batch ?? 4, warmup_steps: 2, lr: 3e-3, min_lr: 3e-4 },
      eval: { every: o.evalEvery ?? 0, tokens: 512 },
      checkpoint: { every: o.every ?? 0, keep: o.keep ?? 2 },
      generate: { max_new_tokens: 4 }
    })
  )
  return file
}

export interface Finished {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** A running process with its output collected; `env` adds to the environment, an undefined value removes a variable. */
export const startProcess = (command: string, args: readonly string[], input?: string, env: Record<string, string | undefined> = {}, cwd?: string) => {
  const merged: Record<string, string | undefined> = { ...process.env, ...env }
  for (const k of Object.keys(merged)) if (merged[k] === undefined) delete merged[k]
  const child: ChildProcess = spawn(command, args, {
    stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    env: merged as NodeJS.ProcessEnv,
    cwd
  })
  if (input !== undefined) child.stdin!.end(input)
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (d) => (stdout += d))
  child.stderr!.on("data", (d) => (stderr += d))
  const finished = new Promise<Finished>((resolve, reject) => {
    // "close", not "exit": the output pipes may still hold data when the process has exited.
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
    child.on("error", reject)
  })
  return { child, finished, output: () => ({ stdout, stderr }) }
}

/** A running Node process (`nodeArgs` after `node`), as startProcess. */
export const startNode = (nodeArgs: readonly string[], input?: string, env: Record<string, string | undefined> = {}, cwd?: string) =>
  startProcess(process.execPath, nodeArgs, input, env, cwd)

/** A running CLI process with its output collected; `env` adds to the environment. */
export const startCli = (args: readonly string[], input?: string, env: Record<string, string | undefined> = {}) =>
  startNode(["bin/glassbox.js", ...args], input, env)

/** Runs the CLI to completion. */
export const runCli = (args: readonly string[], input?: string, env: Record<string, string | undefined> = {}) => startCli(args, input, env).finished

/** Runs any program to completion without blocking this worker. */
export const runProcess = (command: string, args: readonly string[], env: Record<string, string | undefined> = {}, cwd?: string) =>
  startProcess(command, args, undefined, env, cwd).finished

/** A refusal as the CLI must give it: exit 1, one line on stderr matching `expected`, no stack trace. */
export const expectOneLineError = (r: { code: number | null; stderr: string }, expected: string | RegExp) => {
  expect(r.code, r.stderr).toBe(1)
  const lines = r.stderr.trim().split("\n")
  expect(lines, r.stderr).toHaveLength(1)
  if (typeof expected === "string") expect(lines[0]).toContain(expected)
  else expect(lines[0]).toMatch(expected)
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /)
}

/** Runs a Node script to completion without blocking this worker (spawnSync would starve vitest's RPC). */
export const runNode = (nodeArgs: readonly string[], env: Record<string, string | undefined> = {}, cwd?: string) => startNode(nodeArgs, undefined, env, cwd).finished

/** Resolves once `ready()` holds, checking every `everyMs`; rejects if the process ends first. */
export const waitFor = (ready: () => boolean, ended: Promise<unknown>, everyMs = 2) =>
  new Promise<void>((resolve, reject) => {
    let over = false
    void ended.then(() => {
      over = true
      clearInterval(timer)
      reject(new Error("the process ended before the awaited moment"))
    })
    const timer = setInterval(() => {
      if (over) return
      if (ready()) {
        clearInterval(timer)
        resolve()
      }
    }, everyMs)
  })

/** Step events in metrics.jsonl (0 when the file does not exist yet). */
export const stepsLogged = (runDir: string): number => {
  try {
    return fs.readFileSync(path.join(runDir, "metrics.jsonl"), "utf8").split("\n").filter((l) => l.includes('"event":"step"')).length
  } catch {
    return 0
  }
}

/** Loss per step; a step logged twice fails the test that reads it. */
export const stepLosses = (runDir: string): Map<number, number> => {
  const losses = new Map<number, number>()
  for (const line of fs.readFileSync(path.join(runDir, "metrics.jsonl"), "utf8").split("\n")) {
    if (line.trim() === "") continue
    const e = JSON.parse(line) as { event: string; step: number; loss: number }
    if (e.event !== "step") continue
    if (losses.has(e.step)) throw new Error(`step ${e.step} logged twice in ${runDir}/metrics.jsonl`)
    losses.set(e.step, e.loss)
  }
  return losses
}

const sha = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex")

/** The checkpoint `latest` points at, with the hashes of its weights and moments and its step. */
export const latestCheckpoint = (runDir: string) => {
  const dir = path.join(runDir, fs.readFileSync(path.join(runDir, "latest"), "utf8").trim())
  const state = JSON.parse(fs.readFileSync(path.join(dir, "state.json"), "utf8")) as { step: number; sha256: Record<string, string> }
  return { dir, step: state.step, model: sha(path.join(dir, "model.safetensors")), optimizer: sha(path.join(dir, "optimizer.safetensors")), recorded: state.sha256 }
}

/** Names anywhere under `runDir` that a finished save or download must not leave behind. */
export const leftovers = (runDir: string): string[] => {
  const found: string[] = []
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (/\.tmp$|\.tmp-\d+|\.deleting$/.test(entry.name)) found.push(path.relative(runDir, full))
      if (entry.isDirectory()) walk(full)
    }
  }
  if (fs.existsSync(runDir)) walk(runDir)
  return found
}

/** True while a save is under way: its hidden temporary directory exists. */
export const saveInProgress = (runDir: string): boolean => {
  try {
    return fs.readdirSync(path.join(runDir, "checkpoints")).some((n) => n.startsWith(".step-") && n.endsWith(".tmp"))
  } catch {
    return false
  }
}
