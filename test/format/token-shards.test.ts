// Token files are what llm.c and nanoGPT train on, and what their held-out loss is measured on,
// so every byte is checked here: the llm.c header read field by field by this file (not the
// module's parser), token counts against the manifest, ids in uint16 range, the validation side
// made of exactly the documents training holds out (compared with the packer's own held-out and
// training windows), sha256 of every file, and an export stopped at many points and resumed,
// which must give the same bytes as one that never stopped and never a short file under a final
// name.
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Stream } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { makeDocumentSource, memoryStore, type DocumentSourceShape, type SourceDocument } from "../../src/data/document-source.ts"
import { exportTokenShards, type ExportManifest, type TokenExportOptions } from "../../src/data/export.ts"
import { Packer } from "../../src/data/packer.ts"
import { splitOf } from "../../src/data/split.ts"
import { inlineTokenizer } from "../../src/data/tokenize-pool.ts"
import { readTokenShard } from "../../src/format/token-shards.ts"
import { makeEncoding } from "../../src/tokenizer/tokenizer.ts"

const VAL_FRACTION = 0.2
const SEED = 7
const words = ["whale", "ship", "sea", "Ahab", "harpoon", "mast", "café", "naïve", "—", "deck"]

/** 80 documents of 0 to ~60 words (one empty), in two parquet-like shards of 4-row row groups. */
const corpus: SourceDocument[][] = [0, 1].map((s) =>
  Array.from({ length: 40 }, (_, i) => {
    const n = (i * 37 + s * 11) % 61
    return { id: `<urn:doc:${s}-${i}>`, text: Array.from({ length: n }, (_, k) => words[(i + k * 3) % words.length]).join(" ") }
  })
)
const encoding = makeEncoding("bytes")
const tokenizer = inlineTokenizer(encoding)
const sourceFor = (): DocumentSourceShape => makeDocumentSource(memoryStore(corpus, 4), { split: "train", valFraction: VAL_FRACTION })
const docTokens = (text: string) => [...new TextEncoder().encode(text), encoding.eot]

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-shards-"))
const options = (dir: string, overrides: Partial<TokenExportOptions> = {}): TokenExportOptions => ({
  format: "llmc",
  dir,
  name: "tiny",
  shardTokens: 600,
  flushTokens: 50,
  seed: SEED,
  source: { source: "memory", filters: [] },
  note: () => undefined,
  ...overrides
})
const run = (dir: string, overrides: Partial<TokenExportOptions> = {}) => exportTokenShards(sourceFor(), tokenizer, options(dir, overrides))

/** An llm.c shard read by hand: 256 little-endian int32, then uint16 tokens. */
const readLlmcByHand = (file: string) => {
  const bytes = fs.readFileSync(file)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const header = Array.from({ length: 256 }, (_, i) => view.getInt32(4 * i, true))
  const tokens = Array.from({ length: (bytes.length - 1024) / 2 }, (_, i) => view.getUint16(1024 + 2 * i, true))
  return { header, tokens, length: bytes.length }
}
const sha256 = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex")
const listing = (dir: string) => fs.readdirSync(dir).sort()
/** Every file's name and sha256 (the manifest's text included), so a difference shows as a name. */
const contents = (dir: string) => Object.fromEntries(listing(dir).map((f) => [f, sha256(path.join(dir, f))]))

describe("llm.c token shards", () => {
  it.effect("headers, counts, uint16 range, sha256, and the split training uses", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const { manifest } = yield* run(dir)
      expect(manifest.complete).toBe(true)
      expect(manifest.position).toBeNull()
      const names = manifest.files.map((f) => f.file)
      // One running index, the validation shards first (llm.c's shard 0 is val).
      expect(names[0]).toBe("tiny_val_000000.bin")
      expect(names).toEqual(manifest.files.map((f, i) => `tiny_${f.split}_${String(i).padStart(6, "0")}.bin`))
      const splits = manifest.files.map((f) => f.split)
      expect(splits).toEqual([...splits].sort((a, b) => (a === b ? 0 : a === "val" ? -1 : 1)))
      expect(splits.filter((s) => s === "train").length).toBeGreaterThan(3)
      expect(listing(dir)).toEqual([...names, "export.json"].sort()) // no partial files left

      const bySplit = { train: [] as number[], val: [] as number[] }
      for (const f of manifest.files) {
        const r = readLlmcByHand(path.join(dir, f.file))
        expect(r.header[0]).toBe(20240520)
        expect(r.header[1]).toBe(1)
        expect(r.header[2]).toBe(f.tokens)
        expect(r.header.slice(3).every((v) => v === 0)).toBe(true)
        expect(r.length).toBe(1024 + 2 * f.tokens)
        expect(f.bytes).toBe(r.length)
        expect(f.sha256).toBe(sha256(path.join(dir, f.file)))
        expect(r.tokens.every((t) => t >= 0 && t < encoding.vocabSize)).toBe(true)
        bySplit[f.split].push(...r.tokens)
        // The module's reader agrees with the hand-written one.
        expect(Array.from(yield* readTokenShard(path.join(dir, f.file), "llmc"))).toEqual(r.tokens)
      }
      // Every train shard but the last is exactly the shard size; documents cross shard boundaries.
      const train = manifest.files.filter((f) => f.split === "train")
      expect(train.slice(0, -1).every((f) => f.tokens === 600)).toBe(true)
      expect(manifest.tokens).toEqual({ train: bySplit.train.length, val: bySplit.val.length })

      // The validation side is exactly the held-out documents, by the id rule training uses, each
      // followed by end-of-text; the training side is every other document, nothing lost.
      const all = corpus.flat()
      const held = all.filter((d) => splitOf(d.id, VAL_FRACTION) === "val")
      expect(held.length).toBeGreaterThan(5)
      expect(held.length).toBeLessThan(all.length / 2)
      const sortedDocs = (tokens: number[]) => {
        const docs: string[] = []
        let start = 0
        tokens.forEach((t, i) => {
          if (t === encoding.eot) {
            docs.push(tokens.slice(start, i).join(","))
            start = i + 1
          }
        })
        return docs.sort()
      }
      expect(sortedDocs(bySplit.val)).toEqual(held.map((d) => docTokens(d.text).slice(0, -1).join(",")).sort())
      expect(sortedDocs(bySplit.train)).toEqual(all.filter((d) => splitOf(d.id, VAL_FRACTION) === "train").map((d) => docTokens(d.text).slice(0, -1).join(",")).sort())
      expect(manifest.documents).toEqual({ val: held.length, train: all.length - held.length })

      // The packer's held-out windows (what `eval` measures) are this val stream, in this order.
      const B = 2
      const T = 16
      // The whole held-out set: every full batch of the val side.
      const heldOut = yield* Packer.validationBatches(encoding, sourceFor().withSplit("val"), { batch: B, context: T, maxTokens: 1_000_000 })
      expect(heldOut.length).toBe(Math.floor((bySplit.val.length - 1) / (B * T)))
      heldOut.forEach((batch, k) => {
        for (let b = 0; b < B; b++) {
          const start = (k * B + b) * T
          expect(Array.from(batch.ids.subarray(b * (T + 1), (b + 1) * (T + 1)))).toEqual(bySplit.val.slice(start, start + T + 1))
        }
      })
      // And training with the same seed reads the train shards' tokens in the same order.
      const source = sourceFor()
      const first = yield* Packer.batches(encoding, source, { batch: B, context: T, cursor: source.start(SEED) }).pipe(Stream.take(3), Stream.runCollect)
      Chunk.toReadonlyArray(first).forEach((batch, k) => {
        for (let b = 0; b < B; b++) {
          const start = (k * B + b) * T
          expect(Array.from(batch.ids.subarray(b * (T + 1), (b + 1) * (T + 1)))).toEqual(bySplit.train.slice(start, start + T + 1))
        }
      })
      const recorded = JSON.parse(fs.readFileSync(path.join(dir, "export.json"), "utf8")) as ExportManifest
      expect(recorded.settings.split_rule).toContain("val_fraction")
      expect(recorded.settings.val_fraction).toBe(VAL_FRACTION)
      expect(recorded.settings.tokenizer).toBe("bytes")
      fs.rmSync(dir, { recursive: true, force: true })
    }))

  it.effect("nanoGPT files hold the same tokens as the llm.c shards, with no header, and meta.json", () =>
    Effect.gen(function* () {
      const llmc = tempDir()
      const nano = tempDir()
      const a = yield* run(llmc)
      const b = yield* run(nano, { format: "nanogpt" })
      expect(listing(nano)).toEqual(["export.json", "meta.json", "train.bin", "val.bin"])
      for (const split of ["train", "val"] as const) {
        const fromShards = a.manifest.files.filter((f) => f.split === split).flatMap((f) => readLlmcByHand(path.join(llmc, f.file)).tokens)
        const raw = fs.readFileSync(path.join(nano, `${split}.bin`))
        expect(raw.length).toBe(2 * fromShards.length)
        expect(Array.from({ length: raw.length / 2 }, (_, i) => raw.readUInt16LE(2 * i))).toEqual(fromShards)
        expect(b.manifest.files.find((f) => f.file === `${split}.bin`)!.sha256).toBe(sha256(path.join(nano, `${split}.bin`)))
      }
      expect(JSON.parse(fs.readFileSync(path.join(nano, "meta.json"), "utf8"))).toEqual({ vocab_size: 257, tokenizer: "bytes", eot_token: 256, dtype: "uint16" })
      fs.rmSync(llmc, { recursive: true, force: true })
      fs.rmSync(nano, { recursive: true, force: true })
    }))

  it.effect("stopped at any record and resumed: byte-identical files, never a short file under a final name", () =>
    Effect.gen(function* () {
      for (const format of ["llmc", "nanogpt"] as const) {
        const reference = tempDir()
        yield* run(reference, { format })
        const expected = contents(reference)
        let records = 0
        const counting = tempDir()
        yield* run(counting, { format, onRecord: () => Effect.sync(() => void records++) })
        fs.rmSync(counting, { recursive: true, force: true })
        expect(records).toBeGreaterThan(10)
        for (const stopAt of [1, 2, 3, Math.floor(records / 2), records - 2]) {
          const dir = tempDir()
          let seen = 0
          const exit = yield* Effect.exit(run(dir, { format, onRecord: () => (++seen === stopAt ? Effect.interrupt : Effect.void) }))
          expect(Exit.isInterrupted(exit)).toBe(true)
          // Whatever is under a final name is complete and matches the manifest.
          const m = JSON.parse(fs.readFileSync(path.join(dir, "export.json"), "utf8")) as ExportManifest
          expect(m.complete).toBe(false)
          for (const f of listing(dir).filter((n) => n.endsWith(".bin") && !n.startsWith("."))) {
            const entry = m.files.find((e) => e.file === f)
            expect(entry, `${f} is under its final name but not recorded as finished`).toBeDefined()
            expect(sha256(path.join(dir, f))).toBe(entry!.sha256)
          }
          // Bytes written after the last record are cut away on resume.
          const partial = listing(dir).find((n) => n.endsWith(".partial"))
          if (partial !== undefined) fs.appendFileSync(path.join(dir, partial), Buffer.from([1, 2, 3, 4]))
          const resumed = yield* run(dir, { format })
          expect(resumed.resumed).toBe(true)
          expect(contents(dir), `${format}, stopped at record ${stopAt}`).toEqual(expected)
          fs.rmSync(dir, { recursive: true, force: true })
        }
        fs.rmSync(reference, { recursive: true, force: true })
      }
    }))

  it.effect("a finished export is not redone; other settings or a damaged file are refused", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const first = yield* run(dir)
      const again = yield* run(dir)
      expect(again.upToDate).toBe(true)
      const other = yield* Effect.flip(run(dir, { shardTokens: 700 }))
      expect(other._tag).toBe("ExportRefused")
      expect(other.message).toContain("other settings (shard_tokens)")
      const last = first.manifest.files[first.manifest.files.length - 1].file
      fs.appendFileSync(path.join(dir, last), Buffer.from([0]))
      const damaged = yield* Effect.either(run(dir))
      expect(damaged._tag).toBe("Left")
      if (damaged._tag === "Left") expect(damaged.left.message).toContain(`${last} does not match the manifest (checksum differs)`)
      fs.rmSync(dir, { recursive: true, force: true })
    }))

  it.effect("a train-token limit cuts the train side there", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const { manifest } = yield* run(dir, { maxTrainTokens: 1000 })
      expect(manifest.tokens.train).toBe(1000)
      expect(manifest.files.filter((f) => f.split === "train").map((f) => f.tokens)).toEqual([600, 400])
      fs.rmSync(dir, { recursive: true, force: true })
    }))

  it.effect("a vocabulary over 65,535 is refused in one line before anything is written", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const refused = yield* Effect.flip(exportTokenShards(sourceFor(), inlineTokenizer(makeEncoding("cl100k_base")), options(dir)))
      expect(refused._tag).toBe("ExportRefused")
      expect(refused.message).toBe(`${dir}: the cl100k_base tokenizer has 100,277 tokens, but llm.c and nanoGPT token files store uint16 ids (at most 65,536); export with --tokenizer gpt2`)
      expect(listing(dir)).toEqual([])
      fs.rmSync(dir, { recursive: true, force: true })
    }))

  it.effect("a shard whose header disagrees with its length is refused on read", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const { manifest } = yield* run(dir)
      const file = path.join(dir, manifest.files[1].file)
      fs.truncateSync(file, fs.statSync(file).size - 2)
      const error = yield* Effect.flip(readTokenShard(file, "llmc"))
      expect(error.message).toContain("header states 600 tokens (2224 bytes) but the file has 2222 bytes")
      fs.rmSync(dir, { recursive: true, force: true })
    }))
})
