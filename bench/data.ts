// Data-path throughput, printed as JSON lines (never asserted in tests): how fast documents
// flow parquet → Arrow → text, then text → tokens → packed batches with the tokenizer on the
// main thread (workers 0) and on 1..N worker threads, and how fast packed batches come out of
// the token cache. The corpus is the shipped one, read for several epochs (each epoch visits
// every row group in a new order). Compare tokens/s with bench/train.ts: the data path should
// feed at least ten times what the trainer consumes. `main_thread_busy` is the share of the
// time the main thread (where the trainer runs) spent on the data path: with workers, the
// tokenising moves off it.
//   npx tsx bench/data.ts [--epochs 3] [--tokenizer gpt2] [--workers 0,1,2] [--batch 8] [--context 1024]
import { Effect, Stream } from "effect"
import { mkdtemp, rm } from "node:fs/promises"
import { availableParallelism, tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { type DocumentSourceShape, makeDocumentSource, openParquetSource, shippedCorpusPath } from "../src/data/document-source.ts"
import { batches } from "../src/data/packer.ts"
import { openTokenCacheStore } from "../src/data/token-cache.ts"
import { type DocumentTokenizerShape, inlineTokenizer, makeTokenizerPool } from "../src/data/tokenize-pool.ts"
import { makeEncoding, type TokenizerName } from "../src/tokenizer/tokenizer.ts"

const { values } = parseArgs({
  options: {
    epochs: { type: "string", default: "3" },
    tokenizer: { type: "string", default: "gpt2" },
    workers: { type: "string", default: `0,1,${Math.max(2, availableParallelism())}` },
    batch: { type: "string", default: "8" },
    context: { type: "string", default: "1024" }
  }
})
const epochs = Number(values.epochs)
const tokenizerName = values.tokenizer as TokenizerName
const encoding = makeEncoding(tokenizerName)
const batch = Number(values.batch)
const context = Number(values.context)
const utf8 = new TextEncoder()

const emit = (o: Record<string, unknown>) =>
  Effect.sync(() => process.stdout.write(JSON.stringify({ bench: "data", corpus: "shipped", tokenizer: tokenizerName, cores: availableParallelism(), ...o }) + "\n"))
const round = (x: number, digits = 1) => Number(x.toFixed(digits))
const seconds = (since: number) => (performance.now() - since) / 1000

/** Text bytes (UTF-8) and documents of one epoch: the yardstick for MB/s. */
const measureEpoch = (source: DocumentSourceShape) =>
  source.documents(source.start(0), { singlePass: true }).pipe(
    Stream.runFold({ bytes: 0, docs: 0 }, (acc, b) => ({ bytes: acc.bytes + b.texts.reduce((n, t) => n + utf8.encode(t).length, 0), docs: acc.docs + b.texts.length }))
  )

/**
 * Packed batches over `epochs` epochs: tokens packed, seconds taken, and the share of that
 * time the main thread (the one the trainer would run on) was busy with the data path.
 */
const packEpochs = (source: DocumentSourceShape, tokenizer: DocumentTokenizerShape, prefetch: number) =>
  Effect.gen(function* () {
    const started = performance.now()
    const loop = performance.eventLoopUtilization()
    let count = 0
    yield* batches(encoding, source, { batch, context, cursor: source.start(1), tokenizer, prefetch }).pipe(
      Stream.takeWhile((b) => b.cursor.epoch < epochs),
      Stream.runForEach(() => Effect.sync(() => void count++))
    )
    return { tokens: count * batch * context, seconds: seconds(started), mainBusy: performance.eventLoopUtilization(loop).utilization }
  })

const program = Effect.scoped(Effect.gen(function* () {
  const source = yield* openParquetSource({ paths: [shippedCorpusPath], split: "train", valFraction: 0 })
  const epoch = yield* measureEpoch(source)
  const textMb = (epoch.bytes * epochs) / 1e6

  // parquet → Arrow → JavaScript strings, no tokenizing.
  const readStart = performance.now()
  yield* source.documents(source.start(1)).pipe(Stream.takeWhile((b) => b.epoch < epochs), Stream.runDrain)
  const readSeconds = seconds(readStart)
  yield* emit({ stage: "parquet->arrow->text", epochs, text_mb: round(textMb), documents: epoch.docs * epochs, mb_per_s: round(textMb / readSeconds), seconds: round(readSeconds, 2) })

  // … → tokens → packed [B, T+1] batches, with 0..N tokenizer threads.
  for (const workers of values.workers!.split(",").map(Number)) {
    const tokenizer = workers === 0
      ? inlineTokenizer(encoding)
      : yield* makeTokenizerPool({ tokenizer: tokenizerName, workers })
    // Warm-up: the workers load their tables (about a second) before the clock starts.
    yield* Effect.scoped(Stream.runDrain(Stream.take(batches(encoding, source, { batch: 1, context: 8, cursor: source.start(2), tokenizer }), 1)))
    const run = yield* packEpochs(source, tokenizer, workers === 0 ? 0 : 4 * workers)
    yield* emit({
      stage: "parquet->tokens->batches",
      workers,
      batch,
      context,
      epochs,
      tokens: run.tokens,
      tokens_per_s: Math.round(run.tokens / run.seconds),
      text_mb_per_s: round(textMb / run.seconds),
      main_thread_busy: round(run.mainBusy, 2),
      seconds: round(run.seconds, 2)
    })
  }

  // The token cache: built once (timed), then read for the same epochs.
  const dir = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "glassbox-bench-"))),
    (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
  )
  const buildStart = performance.now()
  const pool = yield* makeTokenizerPool({ tokenizer: tokenizerName, workers: Math.max(1, availableParallelism() - 1) })
  const store = yield* openTokenCacheStore({ paths: [shippedCorpusPath], filters: [], dir, tokenizer: pool })
  const buildSeconds = seconds(buildStart)
  const cached = makeDocumentSource(store, { split: "train", valFraction: 0 })
  const run = yield* packEpochs(cached, inlineTokenizer(encoding), 0)
  yield* emit({
    stage: "token-cache->batches",
    build_seconds: round(buildSeconds, 2),
    cache_mb: round(store.files[0].header.indexOffset / 1e6),
    dtype: store.files[0].header.dtype,
    batch,
    context,
    epochs,
    tokens: run.tokens,
    tokens_per_s: Math.round(run.tokens / run.seconds),
    seconds: round(run.seconds, 2)
  })
}))

await Effect.runPromise(program)
