// Why this file exists: tokenising is the slowest step between a parquet row group and a
// packed batch (about 10 MB of text per second per thread for BPE), so it runs on worker
// threads. Each worker loads the very same TypeScript tokenizer the main thread uses, through
// tsx's loader, so special-token text, long-document chunking and every other encoding rule
// are identical by construction, not by a copy that could drift.
//
// Protocol:
//   parent -> worker  { id, texts: string[] }
//   worker -> parent  { id, ok: true, tokens: Int32Array, lengths: Uint32Array }
//                     (each document's ids followed by end-of-text, laid end to end; lengths include the end-of-text)
//                   | { id, ok: false, error: string }
// The encoding is named in workerData: { tokenizer: "gpt2" | "cl100k_base" | "o200k_base" | "bytes" }.
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { parentPort, workerData } from "node:worker_threads"

// The compiled tokenizer when this worker runs from .build/ (scripts/build.mjs), else the
// TypeScript source through tsx. The listener is attached before the tokenizer has loaded;
// early requests wait for it.
const compiled = new URL("../tokenizer/tokenizer.js", import.meta.url)
const tokenizerModule = existsSync(fileURLToPath(compiled))
  ? import(compiled.href)
  : import("tsx/esm/api").then(({ register }) => {
      register()
      return import("../tokenizer/tokenizer.ts")
    })
const encodingReady = tokenizerModule.then((m) => m.makeEncoding(workerData.tokenizer))

const encodeAll = (encoding, texts) => {
  const parts = new Array(texts.length)
  let total = 0
  for (let i = 0; i < texts.length; i++) {
    parts[i] = encoding.encode(texts[i])
    total += parts[i].length + 1
  }
  const tokens = new Int32Array(total)
  const lengths = new Uint32Array(texts.length)
  let at = 0
  for (let i = 0; i < parts.length; i++) {
    tokens.set(parts[i], at)
    at += parts[i].length
    tokens[at++] = encoding.eot
    lengths[i] = parts[i].length + 1
  }
  return { tokens, lengths }
}

parentPort.on("message", ({ id, texts }) => {
  encodingReady.then(
    (encoding) => {
      const { tokens, lengths } = encodeAll(encoding, texts)
      parentPort.postMessage({ id, ok: true, tokens, lengths }, [tokens.buffer, lengths.buffer])
    }
  ).catch((error) => parentPort.postMessage({ id, ok: false, error: String(error?.message ?? error) }))
})
