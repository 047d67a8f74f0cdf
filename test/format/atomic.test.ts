// Checkpoints are trusted on resume, so the write path is tested where it can go wrong: it must
// leave exactly the target behind on success, and nothing of itself behind on failure.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import { sha256Bytes, sha256File, syncDirectory, writeFileAtomic } from "../../src/format/atomic.ts"

const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(nodePath.join(os.tmpdir(), "glassbox-atomic-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)
const list = (dir: string) => Effect.promise(() => fs.readdir(dir))

describe("writeFileAtomic", () => {
  it.scoped("writes, then replaces, leaving only the target in the directory", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = nodePath.join(dir, "state.json")
      yield* writeFileAtomic(path, new Uint8Array([1, 2, 3]))
      expect(Array.from(yield* Effect.promise(() => fs.readFile(path)))).toEqual([1, 2, 3])
      yield* writeFileAtomic(path, `{"step":2}`)
      expect(yield* Effect.promise(() => fs.readFile(path, "utf8"))).toBe(`{"step":2}`)
      expect(yield* list(dir)).toEqual(["state.json"])
    }))

  it.scoped("into a directory that does not exist: a tagged error naming the path and the cause", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = nodePath.join(dir, "missing", "model.safetensors")
      const error = yield* Effect.flip(writeFileAtomic(path, new Uint8Array(8)))
      expect(error._tag).toBe("WriteFailed")
      expect(error.path).toBe(path)
      expect(error.reason).toMatch(/^create temporary file: ENOENT/)
      expect(error.message).toMatch(new RegExp(`^Could not write ${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `))
      expect(yield* list(dir)).toEqual([])
    }))

  it.scoped("a failure after the temporary file exists removes it and keeps what was there", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      // The target is a non-empty directory, so the final rename fails after the temporary
      // file has been written and flushed: the crash point a cleanup must handle.
      const target = nodePath.join(dir, "latest")
      yield* Effect.promise(() => fs.mkdir(target))
      yield* Effect.promise(() => fs.writeFile(nodePath.join(target, "keep"), "old"))
      const error = yield* Effect.flip(writeFileAtomic(target, "new"))
      expect(error._tag).toBe("WriteFailed")
      expect(error.reason).toMatch(/^rename temporary file over target: E(ISDIR|NOTEMPTY|EXIST)/)
      expect(yield* list(dir)).toEqual(["latest"])
      expect(yield* Effect.promise(() => fs.readFile(nodePath.join(target, "keep"), "utf8"))).toBe("old")
    }))

  it.scoped("syncDirectory flushes an existing directory and reports a missing one", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* syncDirectory(dir)
      const error = yield* Effect.flip(syncDirectory(nodePath.join(dir, "gone")))
      expect(error.reason).toMatch(/ENOENT/)
    }))
})

describe("sha256", () => {
  // FIPS 180-2 test vector: SHA-256("abc").
  const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

  it.scoped("of bytes and of the same bytes in a file agree with the published vector", () =>
    Effect.gen(function* () {
      expect(sha256Bytes("abc")).toBe(abc)
      expect(sha256Bytes(new TextEncoder().encode("abc"))).toBe(abc)
      const dir = yield* tempDir
      const path = nodePath.join(dir, "abc.bin")
      yield* writeFileAtomic(path, "abc")
      expect(yield* sha256File(path)).toBe(abc)
      // Larger than one stream chunk (64 KiB), so the streamed hash spans several updates.
      const big = new Uint8Array(300_000).map((_, i) => (i * 31) & 0xff)
      yield* writeFileAtomic(path, big)
      expect(yield* sha256File(path)).toBe(sha256Bytes(big))
    }))

  it.effect("of a missing file is a ReadFailed naming it", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(sha256File("/nonexistent/glassbox/file"))
      expect(error._tag).toBe("ReadFailed")
      expect(error.message).toContain("/nonexistent/glassbox/file")
      expect(error.reason).toContain("ENOENT")
    }))
})
