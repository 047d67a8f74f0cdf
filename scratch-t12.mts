import { Effect, Stream, Chunk } from "effect"
import { openParquetSource, shippedCorpusPath } from "./src/data/document-source.ts"
import { batches } from "./src/data/packer.ts"
import { makeEncoding } from "./src/tokenizer/tokenizer.ts"
const enc = makeEncoding("gpt2"); enc.encode("warm")
let calls = 0
const counting = { ...enc, encode: (t: string) => { calls++; return enc.encode(t) } }
await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const train = yield* openParquetSource({ paths: [shippedCorpusPath], split: "train", valFraction: 0.01 })
  const t0 = performance.now()
  const first = yield* Stream.runCollect(batches(counting, train, { batch: 1, context: 64, cursor: train.start(1) }).pipe(Stream.take(1)))
  console.log("first batch ms", (performance.now() - t0).toFixed(0), "encode calls", calls)
})))
