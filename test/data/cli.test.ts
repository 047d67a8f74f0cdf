// Why this file exists: the `glassbox data` programs are what a person runs before training
// on FineWeb, so they are run here end to end against a Hub server on 127.0.0.1: list shows
// shards and what is cached (also offline), download fetches the chosen shards with a
// progress display that prints plain lines in a log, prepare fills the token cache once.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { PassThrough } from "node:stream"
import { dataDatasets, dataDownload, dataList, dataPrepare } from "../../src/data/cli.ts"
import { shippedCorpusPath } from "../../src/data/document-source.ts"
import { formatBytes, formatSeconds, makeProgressBar, progressText } from "../../src/data/progress.ts"
import { tempDir } from "./fixtures.ts"
import { hubServer } from "./hub-server.ts"

/** A stream that remembers what was written; `tty` makes it claim to be a terminal. */
const capture = (tty = false) => {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean; text: () => string }
  const chunks: string[] = []
  stream.on("data", (c) => chunks.push(String(c)))
  stream.isTTY = tty
  stream.text = () => chunks.join("")
  return stream
}

const CORPUS = readFileSync(shippedCorpusPath)
const REPO = "HuggingFaceFW/fineweb"
const filesOf = (n: number) =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`sample/10BT/${String(i).padStart(3, "0")}_00000.parquet`, i === 0 ? CORPUS : CORPUS.subarray(0, 1000 + i)]))

describe("progress display", () => {
  it("formats bytes, rates and ETA", () => {
    expect(formatBytes(17)).toBe("17 B")
    expect(formatBytes(2_150_000_000)).toBe("2.15 GB")
    expect(formatBytes(512_000)).toBe("512 KB")
    expect(formatSeconds(75)).toBe("1m 15s")
    expect(formatSeconds(7300)).toBe("2h 01m")
    const line = progressText({ label: "download a", done: 500e6, total: 2e9, elapsedSeconds: 10, unit: "bytes" }, 10)
    expect(line).toBe("download a [==>       ]  25% 500 MB/2.00 GB | 50.0 MB/s | ETA 30s")
    expect(progressText({ label: "x", done: 3, total: 3, elapsedSeconds: 1, unit: "count", noun: "row groups" }, 4)).toContain("[====] 100%")
    expect(progressText({ label: "x", done: 10, total: undefined, elapsedSeconds: 2, unit: "bytes" })).toBe("x 10 B | 5 B/s")
  })

  it("redraws one line on a terminal and prints a line per tenth in a log", () => {
    let t = 0
    const log = capture(false)
    const bar = makeProgressBar({ label: "get", total: 1000, unit: "bytes", out: log, now: () => t })
    for (let done = 0; done <= 1000; done += 10) {
      t += 50
      bar.update(done)
    }
    bar.finish()
    const lines = log.text().split("\n").filter((l) => l !== "")
    expect(lines.length).toBe(12) // 0%, each tenth, and the final line
    expect(log.text()).not.toContain("\r")
    expect(lines[lines.length - 1]).toContain("100%")

    const term = capture(true)
    const live = makeProgressBar({ label: "get", total: 1000, unit: "bytes", out: term, now: () => t })
    for (let done = 0; done <= 1000; done += 10) {
      t += 50
      live.update(done)
    }
    live.finish()
    expect(term.text().split("\r\x1b[2K").length).toBeGreaterThan(40)
    expect(term.text().endsWith("\n")).toBe(true)
    expect(term.text().split("\n").length).toBe(2)
  })
})

describe("glassbox data", () => {
  it.scopedLive("list prints the known datasets, then a dataset's shards, sizes and what is cached (also offline)", () =>
    Effect.gen(function* () {
      const known = capture()
      yield* dataDatasets({ out: known })
      expect(known.text()).toContain("fineweb-10BT")
      expect(known.text()).toContain("fineweb-edu-10BT")

      const server = yield* hubServer({ repos: { [REPO]: filesOf(3) } })
      const cacheDir = yield* tempDir
      const common = { endpoint: server.endpoint, cacheDir, env: {} }
      yield* dataDownload("fineweb-10BT", { ...common, shards: "1", out: capture(), err: capture() })
      const out = capture()
      yield* dataList("fineweb-10BT", { ...common, out })
      const lines = out.text().trim().split("\n")
      expect(lines[0]).toMatch(/^HuggingFaceFW\/fineweb:sample\/10BT at main \(0123456789ab\): 3 shards, 4\.\d+ MB$/)
      expect(lines.slice(1).map((l) => l.endsWith("cached"))).toEqual([false, true, false])

      const json = capture()
      yield* dataList("fineweb-10BT", { ...common, out: json, json: true })
      const rows = json.text().trim().split("\n").map((l) => JSON.parse(l))
      expect(rows.map((r) => [r.index, r.size, r.cached])).toEqual([[0, CORPUS.length, false], [1, 1001, true], [2, 1002, false]])

      yield* Effect.promise(() => server.close())
      const offline = capture()
      yield* dataList("fineweb-10BT", { ...common, out: offline })
      expect(offline.text()).toContain("offline: saved listing")
    }))

  it.scopedLive("download fetches the chosen shards once, with progress lines in a log", () =>
    Effect.gen(function* () {
      const server = yield* hubServer({ repos: { [REPO]: filesOf(4) }, faults: { "sample/10BT/000_00000.parquet": { dropAfter: [1_000_000] } } })
      const cacheDir = yield* tempDir
      const out = capture()
      const err = capture()
      const paths = yield* dataDownload("fineweb-10BT", { endpoint: server.endpoint, cacheDir, env: {}, shards: "0,2-3", out, err })
      expect(paths.map((p) => p.slice(-17))).toEqual(["000_00000.parquet", "002_00000.parquet", "003_00000.parquet"])
      expect(readFileSync(paths[0]).equals(CORPUS)).toBe(true)
      expect(out.text()).toContain("3 shard(s)")
      expect(err.text()).toContain("download sample/10BT/000_00000.parquet [")
      expect(err.text()).toMatch(/100% 4\.\d+ MB\/4\.\d+ MB \| .*\/s \| ETA/)
      expect(err.text()).not.toContain("\r")
      const requests = server.log.length
      yield* dataDownload("fineweb-10BT", { endpoint: server.endpoint, cacheDir, env: {}, shards: "0", out: capture(), err: capture() })
      expect(server.log.length).toBe(requests + 2) // the listing (revision + tree), no file
      const bad = yield* Effect.flip(dataDownload("fineweb-10BT", { endpoint: server.endpoint, cacheDir, env: {}, shards: "7" }))
      expect(bad).toMatchObject({ _tag: "InvalidDataOption", option: "data.shards" })
      expect(bad.message).toContain("0-3")
    }))

  it.scopedLive("prepare builds token caches once, from local files or by streaming Hub shards", () =>
    Effect.gen(function* () {
      const cacheDir = yield* tempDir
      const out = capture()
      const err = capture()
      yield* dataPrepare("shipped", { cacheDir, env: {}, tokenizer: "bytes", workers: 0, out, err })
      expect(out.text()).toMatch(/1 token cache\(s\), [\d,]+ bytes tokens in 372 documents/)
      expect(err.text()).toContain("building")
      expect(readdirSync(join(cacheDir, "tokens")).filter((n) => n.endsWith(".tokens")).length).toBe(1)
      const again = capture()
      yield* dataPrepare("shipped", { cacheDir, env: {}, tokenizer: "bytes", workers: 0, out: capture(), err: again })
      expect(again.text()).not.toContain("building")

      const server = yield* hubServer({ repos: { [REPO]: filesOf(1) } })
      const streamed = capture()
      yield* dataPrepare("fineweb-10BT", {
        endpoint: server.endpoint, cacheDir, env: {}, tokenizer: "bytes", workers: 1, stream: true,
        filters: ["token_count >= 2000"], out: streamed, err: capture()
      })
      expect(streamed.text()).toMatch(/1 token cache\(s\), [\d,]+ bytes tokens in \d+ documents/)
      expect(Number(/in (\d+) documents/.exec(streamed.text())?.[1])).toBeLessThan(372)
      // Streamed: the shard itself was never stored.
      expect(existsSync(join(cacheDir, "shards", REPO, "sample", "10BT", "000_00000.parquet"))).toBe(false)
      const error = yield* Effect.flip(dataPrepare("shipped", { cacheDir, env: {}, filters: ["score >> 1"] }))
      expect(error).toMatchObject({ _tag: "InvalidDataOption", option: "--filter[0]" })
    }))
})
