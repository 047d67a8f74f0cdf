// `glassbox export <model> --format hf <dir>`: a directory that transformers'
// `GPT2LMHeadModel.from_pretrained(dir)` loads (config.json, generation_config.json,
// model.safetensors in save_pretrained's names, and GPT-2's tokenizer files for the gpt2
// vocabulary), and that glassbox reloads through config.json like any Hugging Face model.
import { Data, Effect } from "effect"
import * as fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as path from "node:path"
import { WriteFailed, writeFileAtomic } from "../format/atomic.ts"
import { gpt2TokenizerFiles, type RankTable } from "../format/hf-tokenizer.ts"
import { writeSafetensorsFile, type NamedTensor, type SafetensorsError } from "../format/safetensors.ts"
import type { TokenizerName } from "../tokenizer/tokenizer.ts"
import type { ModelConfig } from "./config.ts"
import type { GPT } from "./gpt.ts"
import { hfConfigOf, hfGenerationConfigOf, hfIncompatibility } from "./hf.ts"
import { openModel } from "./reference.ts"
import { modelTensors, TOKENIZER_KEY } from "./weights.ts"


export class HfExportRefused extends Data.TaggedError("HfExportRefused")<{ readonly model: string; readonly reason: string }> {
  override get message() {
    return `${this.model} cannot be exported for Hugging Face: ${this.reason}`
  }
}

/** The names GPT2LMHeadModel.save_pretrained writes: the body under "transformer.", the untied head beside it. */
export const hfTensorName = (name: string) => (name === "lm_head.weight" ? name : `transformer.${name}`)

export interface HfExportResult {
  readonly dir: string
  readonly files: ReadonlyArray<string>
  readonly config: ModelConfig
  readonly tokenizer: string
}

const requireHere = createRequire(import.meta.url)

/** GPT-2's tokenizer files take seconds to rebuild (50,000 merges), so once per process and length. */
const gpt2FilesBuilt = new Map<number, ReturnType<typeof gpt2TokenizerFiles>>()
const gpt2Files = (modelMaxLength: number) => {
  let files = gpt2FilesBuilt.get(modelMaxLength)
  if (files === undefined) {
    const ranks = (requireHere("gpt-tokenizer/cjs/bpeRanks/r50k_base") as { default: RankTable }).default
    files = gpt2TokenizerFiles(ranks, 50256, modelMaxLength)
    gpt2FilesBuilt.set(modelMaxLength, files)
  }
  return files
}

/**
 * Writes `model` as a Hugging Face GPT-2 directory: config.json (GPT2LMHeadModel),
 * generation_config.json, model.safetensors (float32, save_pretrained's names) and, for the gpt2
 * vocabulary, vocab.json + merges.txt, tokenizer.json (the fast tokenizer) and the tokenizer
 * configs. Each file is written atomically.
 */
export const writeHfDirectory = (
  model: GPT,
  tokenizer: TokenizerName,
  dir: string,
  label: string
): Effect.Effect<HfExportResult, HfExportRefused | WriteFailed | SafetensorsError> =>
  Effect.gen(function* () {
    const config = model.config
    const why = hfIncompatibility(config)
    if (why !== undefined) return yield* new HfExportRefused({ model: label, reason: why })
    const tensors: Record<string, NamedTensor> = {}
    for (const [name, t] of Object.entries(modelTensors(model))) tensors[hfTensorName(name)] = t
    const json = (value: unknown) => JSON.stringify(value, null, 2) + "\n"
    const files: Array<[string, string | Uint8Array]> = [
      ["config.json", json(hfConfigOf(config, tokenizer))],
      ["generation_config.json", json(hfGenerationConfigOf(tokenizer))]
    ]
    if (tokenizer === "gpt2") for (const [name, text] of Object.entries(gpt2Files(config.context))) files.push([name, text])
    yield* Effect.tryPromise({ try: () => fs.mkdir(dir, { recursive: true }), catch: (e) => new WriteFailed({ path: dir, reason: String(e) }) })
    // The tokenizer name rides along for glassbox; the shape is config.json's, as for any HF model.
    yield* writeSafetensorsFile(path.join(dir, "model.safetensors"), tensors, { format: "pt", [TOKENIZER_KEY]: tokenizer })
    for (const [name, content] of files) yield* writeFileAtomic(path.join(dir, name), content)
    return { dir, files: ["model.safetensors", ...files.map(([name]) => name)], config, tokenizer }
  })

/** `glassbox export <model> --format hf <dir>`: any model reference, written for transformers. */
export const exportHf = (reference: string, dir: string) =>
  Effect.gen(function* () {
    const { model, encoding, files } = yield* openModel(reference)
    return yield* writeHfDirectory(model, encoding.name, dir, files.label).pipe(Effect.ensuring(Effect.sync(() => model.dispose())))
  })
