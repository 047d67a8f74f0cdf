// Durable file writes and checksums for checkpoints.
//
// A training run can be killed at any instant (SIGINT, OOM, power loss). A checkpoint that is
// half-written under its final name is worse than none: resume would trust it. So every file is
// written under a temporary name in the same directory (rename is only atomic within one file
// system), flushed to the disk, then renamed over the target, and the directory entry itself is
// flushed so the rename survives a crash. Readers see the old file or the new one, never a mix.
import { Data, Effect } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { createReadStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"

export class WriteFailed extends Data.TaggedError("WriteFailed")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `Could not write ${this.path}: ${this.reason} (check that the directory exists, is writable and has free space)`
  }
}

export class ReadFailed extends Data.TaggedError("ReadFailed")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `Could not read ${this.path}: ${this.reason} (check that the file exists and is readable)`
  }
}

// Node's errors carry a code (ENOENT, ENOSPC, ...) that is the useful part for a person.
const describe = (step: string, cause: unknown): string => {
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code
    return code !== undefined && !cause.message.startsWith(code)
      ? `${step}: ${code}: ${cause.message}`
      : `${step}: ${cause.message}`
  }
  return `${step}: ${String(cause)}`
}

const attempt = <A>(path: string, step: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (cause) => new WriteFailed({ path, reason: describe(step, cause) }) })

/**
 * Flush a directory's entries (new names, renames) to the disk. Needed after a rename for the
 * rename itself to be durable. Windows cannot open a directory, and some file systems refuse to
 * sync one; there the rename is as durable as the platform allows, so those refusals are ignored.
 */
export const syncDirectory = (dir: string): Effect.Effect<void, WriteFailed> =>
  attempt(dir, "sync directory", async () => {
    let handle: fs.FileHandle
    try {
      handle = await fs.open(dir, "r")
    } catch (cause) {
      if (isUnsupported(cause)) return
      throw cause
    }
    try {
      await handle.sync()
    } catch (cause) {
      if (!isUnsupported(cause)) throw cause
    } finally {
      await handle.close()
    }
  })

const isUnsupported = (cause: unknown) => {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code
  return code === "EISDIR" || code === "EPERM" || code === "EINVAL" || code === "ENOTSUP"
}

/** The temporary name a write goes through; hidden, and unique per process and call. */
export const temporaryPathFor = (path: string): string =>
  nodePath.join(
    nodePath.dirname(path),
    `.${nodePath.basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`
  )

/**
 * Replace `path` with `contents` so that a crash at any point leaves either the previous file
 * or the complete new one. On failure (or interruption) the temporary file is removed.
 */
export const writeFileAtomic = (
  path: string,
  contents: Uint8Array | string
): Effect.Effect<void, WriteFailed> => {
  const bytes = typeof contents === "string" ? new TextEncoder().encode(contents) : contents
  const temp = temporaryPathFor(path)
  const writeTemp = Effect.acquireUseRelease(
    // "wx": fail rather than follow a stale file or symlink someone left under this name.
    attempt(path, "create temporary file", () => fs.open(temp, "wx")),
    (handle) =>
      Effect.zipRight(
        attempt(path, "write temporary file", () => handle.writeFile(bytes)),
        attempt(path, "flush temporary file", () => handle.sync())
      ),
    (handle) => Effect.promise(() => handle.close().catch(() => undefined))
  )
  return writeTemp.pipe(
    Effect.zipRight(attempt(path, "rename temporary file over target", () => fs.rename(temp, path))),
    Effect.onError(() => Effect.promise(() => fs.rm(temp, { force: true }).catch(() => undefined))),
    Effect.zipRight(syncDirectory(nodePath.dirname(path)))
  )
}

/** Hex SHA-256 of a byte string; checkpoints record one per file in state.json. */
export const sha256Bytes = (bytes: Uint8Array | string): string =>
  createHash("sha256").update(bytes).digest("hex")

/** Hex SHA-256 of a file, streamed so a multi-gigabyte checkpoint never sits in memory twice. */
export const sha256File = (path: string): Effect.Effect<string, ReadFailed> =>
  Effect.async<string, ReadFailed>((resume) => {
    const hash = createHash("sha256")
    const stream = createReadStream(path)
    stream.on("data", (chunk) => hash.update(chunk))
    stream.on("error", (cause) => resume(Effect.fail(new ReadFailed({ path, reason: describe("read", cause) }))))
    stream.on("end", () => resume(Effect.succeed(hash.digest("hex"))))
    return Effect.sync(() => stream.destroy())
  })

/** Read a whole file; the one read path for checkpoint files, so its failures look alike. */
export const readFileBytes = (path: string): Effect.Effect<Uint8Array, ReadFailed> =>
  Effect.tryPromise({
    try: () => fs.readFile(path),
    catch: (cause) => new ReadFailed({ path, reason: describe("read", cause) })
  })
