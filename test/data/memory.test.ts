// Why this file exists: "memory stays flat however large the file is" is the reason the
// reader works row group by row group. Here a 32 MB parquet file (16 row groups of 2 MB of
// text) is read three times over, from disk and by range requests from a server on 127.0.0.1,
// while the process's resident memory is sampled: after a short warm-up (allocators and the
// decoder thread's heap settling) it stops growing, far below what holding the text would take.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { type DocumentSourceShape, openParquetSource } from "../../src/data/document-source.ts"
import { hubOptions, readRange } from "../../src/data/hub.ts"
import { hubServer } from "./hub-server.ts"
import { runNode } from "../e2e/run-helpers.ts"

const ROW_GROUPS = 16
const ROWS = 100
const CHARS = 20_000
const MB = 1024 * 1024

// A full garbage collection before each sample, so the numbers measure what is still
// referenced rather than what V8 has not yet bothered to free.
setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

let dir = ""
let path = ""
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "glassbox-large-"))
  path = join(dir, "large.parquet")
  const script = fileURLToPath(new URL("./large-parquet.mjs", import.meta.url))
  const r = await runNode([script, path, String(ROW_GROUPS), String(ROWS), String(CHARS)])
  if (r.code !== 0) throw new Error(`large-parquet.mjs failed: ${r.stderr}`)
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const EPOCHS = 3

/**
 * Read three epochs (96 MB of text), sampling resident memory after a full collection at
 * every row group. Returns how many MB the peak grew after the first four row groups, and
 * how many the last epoch added to the peak of the one before.
 */
const growthAfterWarmUp = (source: DocumentSourceShape) =>
  Effect.gen(function* () {
    const samples: number[] = []
    let chars = 0
    yield* source.documents(source.start(1)).pipe(
      Stream.take(EPOCHS * ROW_GROUPS),
      Stream.runForEach((batch) =>
        Effect.sync(() => {
          chars += batch.texts.reduce((n, t) => n + t.length, 0)
          gc()
          samples.push(process.memoryUsage().rss)
        }))
    )
    expect(chars).toBe(EPOCHS * ROW_GROUPS * ROWS * CHARS)
    const warm = Math.max(...samples.slice(0, 4))
    const peaks = Array.from({ length: EPOCHS }, (_, e) => Math.max(...samples.slice(e * ROW_GROUPS, (e + 1) * ROW_GROUPS)))
    console.log(`resident memory: ${(warm / MB).toFixed(0)} MB after 4 row groups; peak per epoch ${peaks.map((p) => (p / MB).toFixed(0)).join(", ")} MB`)
    return { afterWarmUp: (Math.max(...peaks) - warm) / MB, lastEpoch: (peaks[EPOCHS - 1] - peaks[EPOCHS - 2]) / MB }
  })

describe("memory over a file many times larger than a row group", () => {
  it.scoped("stays flat reading a 32 MB file from disk", () =>
    Effect.gen(function* () {
      expect(statSync(path).size).toBeGreaterThan(30 * MB)
      const source = yield* openParquetSource({ paths: [path], split: "train", valFraction: 0 })
      // Holding what was read after the warm-up would take 88 MB (one-byte strings), and each
      // epoch 30 MB more. A bounded reader levels off instead, once the allocators and the
      // decoder thread's heap have found their size (within about one epoch; measured here:
      // +30 MB, then +0-3 MB in the last epoch).
      const growth = yield* growthAfterWarmUp(source)
      expect(growth.afterWarmUp).toBeLessThan(48)
      expect(growth.lastEpoch).toBeLessThan(10)
    }))

  it.scopedLive("stays flat reading it by range requests from a server", () =>
    Effect.gen(function* () {
      const bytes = readFileSync(path)
      const server = yield* hubServer({ repos: { "big/data": { "large.parquet": bytes } } })
      const url = `${server.endpoint}/datasets/big/data/resolve/main/large.parquet`
      const hub = hubOptions({ endpoint: server.endpoint }, {})
      const source = yield* openParquetSource({
        paths: [{ key: url, name: url, size: bytes.length, read: (start, end) => readRange(url, start, end, hub) }],
        split: "train",
        valFraction: 0
      })
      const growth = yield* growthAfterWarmUp(source)
      expect(growth.afterWarmUp).toBeLessThan(48)
      expect(growth.lastEpoch).toBeLessThan(10)
      // Each byte of the file crossed the wire about once per epoch: nothing read twice.
      expect(server.bytesSent).toBeLessThan(EPOCHS * bytes.length * 1.05)
    }))
})
