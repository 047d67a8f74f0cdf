// Token files for other training engines: how our tokenised corpus reaches llm.c and nanoGPT.
//
//   llm.c   <name>_val_000000.bin, <name>_train_000001.bin, …: a header of 256 little-endian
//           int32 ([0] 20240520 magic, [1] 1 version, [2] number of tokens, the rest 0), then
//           the tokens as little-endian uint16. train_gpt2.cu reads them by glob (-i / -j).
//   nanoGPT train.bin and val.bin: the uint16 tokens and nothing else (np.memmap(..., uint16)).
//
// Both store ids as uint16, so a vocabulary of 65,536 or more cannot be written (gpt2's 50,257
// fits; cl100k_base's 100,277 does not). A shard being written lives under a hidden name
// (.<file>.partial) and is appended to in flushed steps; only when complete is its header
// filled in, the file flushed and renamed to its final name. So a final name never holds a
// truncated shard, and an interrupted export can cut the partial file back to its last
// recorded length and go on (src/data/export.ts keeps that record).
import { Data, Effect, Either } from "effect"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { ReadFailed, readFileBytes, sha256File, syncDirectory, WriteFailed } from "./atomic.ts"

export const LLMC_TOKENS_MAGIC = 20240520
export const LLMC_TOKENS_VERSION = 1
export const TOKEN_SHARD_HEADER_BYTES = 256 * 4
/** uint16 ids: the largest vocabulary these files can hold. */
export const MAX_SHARD_VOCAB = 65_536

export type TokenShardFormat = "llmc" | "nanogpt"
export type ShardSplit = "train" | "val"

/** llm.c's naming: one running index over the val shards first, then the train shards. */
export const llmcShardName = (name: string, split: ShardSplit, index: number): string =>
  `${name}_${split}_${String(index).padStart(6, "0")}.bin`

/** The hidden name a shard is written under until it is complete. */
export const partialNameOf = (file: string): string => `.${file}.partial`

export class TokenShardError extends Data.TaggedError("TokenShardError")<{ readonly source: string; readonly reason: string }> {
  override get message() {
    return `${this.source}: ${this.reason}`
  }
}

/** The 1024-byte llm.c token-shard header for `tokens` tokens. */
export const encodeTokenShardHeader = (tokens: number): Uint8Array => {
  const out = new Uint8Array(TOKEN_SHARD_HEADER_BYTES)
  const view = new DataView(out.buffer)
  view.setInt32(0, LLMC_TOKENS_MAGIC, true)
  view.setInt32(4, LLMC_TOKENS_VERSION, true)
  view.setInt32(8, tokens, true)
  return out
}

/** The token count an llm.c shard's header states, after checking magic and version. */
export const parseTokenShardHeader = (bytes: Uint8Array, source: string): Either.Either<{ tokens: number }, TokenShardError> => {
  const fail = (reason: string) => Either.left(new TokenShardError({ source, reason }))
  if (bytes.length < TOKEN_SHARD_HEADER_BYTES) return fail(`${bytes.length} bytes, shorter than the ${TOKEN_SHARD_HEADER_BYTES}-byte llm.c shard header`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const magic = view.getInt32(0, true)
  if (magic !== LLMC_TOKENS_MAGIC) return fail(`magic number is ${magic}, an llm.c token shard starts with ${LLMC_TOKENS_MAGIC}`)
  const version = view.getInt32(4, true)
  if (version !== LLMC_TOKENS_VERSION) return fail(`version ${version}, expected ${LLMC_TOKENS_VERSION}`)
  const tokens = view.getInt32(8, true)
  if (tokens < 0) return fail(`token count ${tokens} is negative`)
  return Either.right({ tokens })
}

/** The tokens of a finished shard file (llm.c: header checked against the length; nanoGPT: all of it). */
export const readTokenShard = (path: string, format: TokenShardFormat): Effect.Effect<Uint16Array, ReadFailed | TokenShardError> =>
  Effect.flatMap(readFileBytes(path), (bytes) => {
    const offset = format === "llmc" ? TOKEN_SHARD_HEADER_BYTES : 0
    if (format === "llmc") {
      const header = parseTokenShardHeader(bytes, path)
      if (Either.isLeft(header)) return Effect.fail(header.left)
      const expected = offset + 2 * header.right.tokens
      if (bytes.length !== expected) {
        return Effect.fail(new TokenShardError({ source: path, reason: `header states ${header.right.tokens} tokens (${expected} bytes) but the file has ${bytes.length} bytes` }))
      }
    } else if (bytes.length % 2 !== 0) {
      return Effect.fail(new TokenShardError({ source: path, reason: `${bytes.length} bytes is not a whole number of uint16 tokens` }))
    }
    const tokens = new Uint16Array((bytes.length - offset) / 2)
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset, bytes.length - offset)
    for (let i = 0; i < tokens.length; i++) tokens[i] = view.getUint16(2 * i, true)
    return Effect.succeed(tokens)
  })

// ---------------------------------------------------------------------------------------------
// Writing

/** A shard under its hidden partial name, open for appending. */
export interface PartialShard {
  readonly file: string
  /** Tokens in the file so far (flushed or not). */
  readonly tokens: () => number
  /** Bytes in the file so far, header included. */
  readonly bytes: () => number
  readonly append: (tokens: Uint16Array) => Effect.Effect<void, WriteFailed>
  /** Everything appended is on the disk: the length may now be recorded for a resume. */
  readonly flush: Effect.Effect<void, WriteFailed>
  /** Fill in the header, flush and close; the file is still under its partial name. Returns its sha256. */
  readonly finish: Effect.Effect<{ sha256: string; bytes: number; tokens: number }, WriteFailed>
  readonly close: Effect.Effect<void>
}

const attempt = <A>(path: string, step: string, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => new WriteFailed({ path, reason: `${step}: ${cause instanceof Error ? cause.message : String(cause)}` })
  })

/**
 * Open `dir/.<file>.partial` for appending. Without `resumeBytes` it starts empty (with a
 * placeholder header for llm.c); with it, the file is cut back to that recorded length, dropping
 * anything written after the last record.
 */
export const openPartialShard = (
  dir: string,
  file: string,
  format: TokenShardFormat,
  resumeBytes?: number
): Effect.Effect<PartialShard, WriteFailed> =>
  Effect.gen(function* () {
    const path = nodePath.join(dir, partialNameOf(file))
    const headerBytes = format === "llmc" ? TOKEN_SHARD_HEADER_BYTES : 0
    const handle = yield* attempt(path, "open", async () => {
      if (resumeBytes === undefined) {
        const h = await fs.open(path, "w")
        if (headerBytes > 0) await h.write(encodeTokenShardHeader(0), 0, headerBytes, 0)
        return h
      }
      const h = await fs.open(path, "r+")
      const size = (await h.stat()).size
      if (size < resumeBytes) {
        await h.close()
        throw new Error(`partial shard has ${size} bytes, fewer than the ${resumeBytes} recorded; delete the export directory and start again`)
      }
      await h.truncate(resumeBytes)
      return h
    })
    let bytes = resumeBytes ?? headerBytes
    let closed = false
    const close = Effect.promise(async () => {
      if (!closed) {
        closed = true
        await handle.close().catch(() => undefined)
      }
    })
    return {
      file,
      tokens: () => (bytes - headerBytes) / 2,
      bytes: () => bytes,
      append: (tokens) =>
        attempt(path, "write", async () => {
          const out = new Uint8Array(tokens.length * 2)
          const view = new DataView(out.buffer)
          for (let i = 0; i < tokens.length; i++) view.setUint16(2 * i, tokens[i], true)
          await handle.write(out, 0, out.length, bytes)
          bytes += out.length
        }),
      flush: attempt(path, "flush", () => handle.sync()),
      finish: Effect.gen(function* () {
        const tokens = (bytes - headerBytes) / 2
        if (headerBytes > 0) yield* attempt(path, "write header", () => handle.write(encodeTokenShardHeader(tokens), 0, headerBytes, 0))
        yield* attempt(path, "flush", () => handle.sync())
        yield* close
        const sha256 = yield* sha256File(path).pipe(Effect.mapError((e) => new WriteFailed({ path: e.path, reason: e.reason })))
        return { sha256, bytes, tokens }
      }),
      close
    }
  })

/** Rename a finished partial shard to its final name, durably. */
export const publishShard = (dir: string, file: string): Effect.Effect<void, WriteFailed> =>
  attempt(nodePath.join(dir, file), "rename into place", () => fs.rename(nodePath.join(dir, partialNameOf(file)), nodePath.join(dir, file))).pipe(
    Effect.zipRight(syncDirectory(dir))
  )
