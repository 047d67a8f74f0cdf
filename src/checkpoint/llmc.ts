// Moving a model between a glassbox run and llm.c. Out: any model we can load (a run, a
// checkpoint, a .safetensors file) becomes llm.c's model file, which train_gpt2.cu can start
// from (-e file.bin) on many GPUs. Back: llm.c's file (version 3 or 5) becomes a checkpoint in a
// new run directory, with a full config, zeroed AdamW moments and a data cursor at the start, so
// every command that takes a run accepts it: generate, chat, eval, interpret, and `glassbox
// resume <run> --set train.steps=N` to fine-tune it further here. The byte layout lives in
// src/format/llmc.ts; this file only connects it to runs.
import { Data, Effect, Either, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { decodeConfig, type ConfigError } from "../config/load.ts"
import { PipelineConfig, tokenizerVocabSizes } from "../config/schema.ts"
import { type ReadFailed, WriteFailed } from "../format/atomic.ts"
import {
  llmcParameterCount,
  llmcProblems,
  LlmcUnsupported,
  readLlmcModelFile,
  writeLlmcModelFile,
  type LlmcDtype,
  type LlmcFormatError,
  type LlmcHeader
} from "../format/llmc.ts"
import type { SafetensorsError, TensorsMismatch } from "../format/safetensors.ts"
import { gptFromValues } from "../model/gpt.ts"
import { loadWeights, type WeightsIncompatible } from "../model/weights.ts"
import { Rng } from "../rng/rng.ts"
import type { TokenizerName } from "../tokenizer/tokenizer.ts"
import { initAdamW } from "../train/adamw.ts"
import { listCheckpoints, resolveWeightsPath } from "../format/checkpoint-dir.ts"
import { saveCheckpoint } from "./checkpointer.ts"

export interface LlmcExportResult {
  readonly file: string
  readonly header: LlmcHeader
  readonly parameters: number
  readonly bytes: number
}

/** `glassbox export <model> --format llmc <file.bin>`: the model's weights as llm.c's file. */
export const exportLlmcModel = (
  model: string,
  file: string,
  dtype: LlmcDtype = "float32"
): Effect.Effect<LlmcExportResult, ReadFailed | WriteFailed | SafetensorsError | TensorsMismatch | WeightsIncompatible | LlmcUnsupported | LlmcFormatError> =>
  Effect.gen(function* () {
    const weights = yield* resolveWeightsPath(model)
    const loaded = yield* loadWeights(weights)
    const values = loaded.model.snapshot()
    const config = loaded.model.config
    loaded.model.dispose()
    // Refused in the model's name (the file it came from), before anything is written.
    const problems = llmcProblems(config)
    if (problems.length > 0) return yield* new LlmcUnsupported({ source: model, reasons: problems })
    yield* writeLlmcModelFile(file, config, values, dtype)
    // Read back what was written: the header is what llm.c will see.
    const written = yield* readLlmcModelFile(file)
    const bytes = llmcParameterCount(written.header) * (written.header.version === 3 ? 4 : 2) + 1024
    return { file, header: written.header, parameters: llmcParameterCount(written.header), bytes }
  })

export class ImportRefused extends Data.TaggedError("ImportRefused")<{ readonly source: string; readonly reason: string }> {
  override get message() {
    return `${this.source}: ${this.reason}`
  }
}

export interface LlmcImportOptions {
  /** The tokenizer the model's ids mean; by default the one whose vocabulary has exactly V rows. */
  readonly tokenizer?: TokenizerName
  /**
   * The rest of the run's config (data, train, eval, ...), for fine-tuning it here; the model
   * section, tokenizer and run.dir are set from the file. Default: every section's defaults.
   */
  readonly config?: PipelineConfig
}

export interface LlmcImportResult {
  readonly checkpoint: string
  readonly header: LlmcHeader
  readonly tokenizer: TokenizerName
  readonly config: PipelineConfig
}

const tokenizerForVocab = (vocab: number): TokenizerName | undefined =>
  (Object.entries(tokenizerVocabSizes) as Array<[TokenizerName, number]>).find(([, size]) => size === vocab)?.[0]

const vocabList = () => Object.entries(tokenizerVocabSizes).map(([name, size]) => `${name} ${size}`).join(", ")

/** `glassbox import llmc <file.bin> <run-dir>`: llm.c's weights as the first checkpoint of a new run. */
export const importLlmcModel = (
  file: string,
  runDir: string,
  options: LlmcImportOptions = {}
): Effect.Effect<LlmcImportResult, ReadFailed | LlmcFormatError | ImportRefused | ConfigError | WriteFailed> =>
  Effect.gen(function* () {
    const decoded = yield* readLlmcModelFile(file)
    const { header } = decoded
    const tokenizer = options.tokenizer ?? tokenizerForVocab(header.vocab)
    if (tokenizer === undefined) {
      return yield* new ImportRefused({ source: file, reason: `vocabulary of ${header.vocab} matches no tokenizer (${vocabList()}); pass --tokenizer` })
    }
    if (tokenizerVocabSizes[tokenizer] !== header.vocab) {
      return yield* new ImportRefused({ source: file, reason: `vocabulary of ${header.vocab} does not fit the ${tokenizer} tokenizer, which has ${tokenizerVocabSizes[tokenizer]}` })
    }
    if ((yield* listCheckpoints(runDir)).length > 0) {
      return yield* new ImportRefused({ source: runDir, reason: "already holds checkpoints; import into a new run directory" })
    }

    const base = options.config ?? Schema.decodeSync(PipelineConfig)({})
    const model = {
      ...base.model,
      layers: header.layers,
      heads: header.heads,
      d_model: header.channels,
      d_ff: 4 * header.channels,
      // The training window stays the config's when it fits; the position table is llm.c's.
      context: Math.min(base.model.context, header.maxT),
      positions: header.maxT,
      dropout: 0,
      position: "learned" as const,
      tied: true,
      gelu: "tanh" as const,
      ln_eps: 1e-5,
      vocab_size: header.vocab
    }
    const config = yield* Either.match(
      decodeConfig(Schema.encodeSync(PipelineConfig)({ ...base, pipeline: "pretrain", tokenizer, run: { ...base.run, dir: runDir }, model }), `${file} (imported config)`),
      { onLeft: (e) => Effect.fail(e), onRight: (c) => Effect.succeed(c) }
    )

    yield* Effect.tryPromise({
      try: () => fs.mkdir(runDir, { recursive: true }),
      catch: (e) => new WriteFailed({ path: runDir, reason: `create directory: ${(e as Error).message}` })
    })
    const gpt = gptFromValues(decoded.config, decoded.tensors)
    const optimizer = initAdamW(gpt.params)
    const saved = yield* saveCheckpoint(
      runDir,
      gpt,
      optimizer,
      tokenizer,
      {
        step: 0,
        tokensSeen: 0,
        // Fine-tuning here starts at the first row group of the config's data; llm.c's own
        // position in its shards has no meaning for this corpus.
        cursor: { shard: 0, rowGroup: 0, row: 0, tokenOffset: 0, epoch: 0, seed: config.run.seed },
        rng: [...Rng.seeded(config.run.seed, "dropout").state()],
        config: Schema.encodeSync(PipelineConfig)(config),
        metrics: {},
        extra: { imported_from: { format: "llm.c", file: path.resolve(file), version: header.version } }
      },
      config.checkpoint.keep
    ).pipe(
      Effect.ensuring(Effect.sync(() => {
        gpt.dispose()
        for (const v of [...optimizer.m.values(), ...optimizer.v.values()]) v.dispose()
      }))
    )
    return { checkpoint: saved, header, tokenizer, config }
  })
