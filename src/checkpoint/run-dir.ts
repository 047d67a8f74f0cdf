// Making sure a run directory can hold a run before anything is trained: `run.dir` may name a
// file, sit under a file, be unwritable, or lie somewhere no directory can be made (under /proc,
// where Node's recursive mkdir spins forever). Each is one line naming the path and the problem,
// found before the first step instead of as an internal error at the first metrics line. Also
// clears what a killed save leaves behind: hidden temporary checkpoint directories and
// half-written `latest` files, and old checkpoints caught half-deleted by retention.
import { Data, Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"

export class RunDirUnusable extends Data.TaggedError("RunDirUnusable")<{ readonly runDir: string; readonly reason: string }> {
  override get message() {
    return `run.dir ${this.runDir}: ${this.reason} (choose another with --set run.dir=…)`
  }
}

const codeOf = (e: unknown) => (e as NodeJS.ErrnoException | undefined)?.code

const explain = (at: string, e: unknown): string => {
  const code = codeOf(e)
  switch (code) {
    case "EACCES":
    case "EPERM":
      return `permission denied at ${at} (${code})`
    case "EROFS":
      return `${at} is on a read-only file system (EROFS)`
    case "ENOTDIR":
      return `${at} is not a directory (ENOTDIR)`
    case "ENOSPC":
      return `no space left on the device holding ${at} (ENOSPC)`
    default:
      return `cannot create ${at} (${code ?? String(e)})`
  }
}

/**
 * Creates `runDir` (and its missing parents) and checks that it is a writable directory. Each
 * missing component is made with a plain mkdir, so a place where directories cannot be made
 * fails at once.
 */
export const ensureRunDirectory = (runDir: string): Effect.Effect<void, RunDirUnusable> =>
  Effect.tryPromise({
    try: async () => {
      const target = path.resolve(runDir)
      // Walk up to the nearest thing that exists.
      const missing: string[] = []
      let at = target
      for (;;) {
        // ENOTDIR: something above is a file; keep walking up to name it.
        const stat = await fs.stat(at).catch((e) => (codeOf(e) === "ENOENT" || codeOf(e) === "ENOTDIR" ? undefined : Promise.reject(Object.assign(new Error(explain(at, e)), { explained: true }))))
        if (stat !== undefined) {
          if (!stat.isDirectory()) throw Object.assign(new Error(at === target ? "is a file, not a directory" : `${at} is a file, not a directory`), { explained: true })
          break
        }
        missing.unshift(at)
        const parent = path.dirname(at)
        if (parent === at) break
        at = parent
      }
      for (const dir of missing) {
        await fs.mkdir(dir).catch((e) => (codeOf(e) === "EEXIST" ? undefined : Promise.reject(Object.assign(new Error(explain(dir, e)), { explained: true }))))
      }
      await fs.access(target, fs.constants.W_OK | fs.constants.X_OK).catch((e) => Promise.reject(Object.assign(new Error(`is not writable (${codeOf(e) ?? String(e)})`), { explained: true })))
    },
    catch: (e) => new RunDirUnusable({ runDir, reason: (e as { explained?: boolean }).explained === true ? (e as Error).message : explain(runDir, e) })
  })

/**
 * Names a killed save can leave: `.step-N.<pid>.tmp/` (a checkpoint being written),
 * `.latest.<pid>.<random>.tmp` (latest being replaced), `.step-N.<pid>.deleting/` (retention
 * or a rerun at work), `metrics.jsonl.<pid>.tmp` (the log being rewritten on resume).
 */
const isLeftover = (name: string) =>
  /^\.step-\d+\.\d+\.tmp$/.test(name) || /^\..+\.\d+\.[0-9a-f]+\.tmp$/.test(name) || /^\.step-\d+\.\d+\.deleting$/.test(name) || /^metrics\.jsonl\.\d+\.tmp$/.test(name)

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return codeOf(e) === "EPERM"
  }
}

/** The process id written into a temporary name, if any. */
const pidOf = (name: string): number | undefined => {
  const m = /^\.step-\d+\.(\d+)\.(?:tmp|deleting)$/.exec(name) ?? /^\..+\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name) ?? /^metrics\.jsonl\.(\d+)\.tmp$/.exec(name)
  return m === null ? undefined : Number(m[1])
}

/**
 * Removes what interrupted saves left in a run directory (in the run directory itself and in
 * checkpoints/): temporary checkpoint directories, temporary `latest` files, and checkpoints
 * renamed away for deletion. Names made by a process that is still alive (another save under
 * way) are left alone. Returns what was removed.
 */
export const cleanLeftovers = (runDir: string): Effect.Effect<string[]> =>
  Effect.promise(async () => {
    const removed: string[] = []
    for (const dir of [runDir, path.join(runDir, "checkpoints")]) {
      const names = await fs.readdir(dir).catch(() => [] as string[])
      for (const name of names) {
        if (!isLeftover(name)) continue
        const pid = pidOf(name)
        if (pid !== undefined && pid !== process.pid && isAlive(pid)) continue
        const full = path.join(dir, name)
        await fs.rm(full, { recursive: true, force: true }).then(() => removed.push(full), () => undefined)
      }
    }
    return removed
  })
