// The runtime side of `import … from "glassbox"` (package.json `exports`); types come from src/index.ts.
// Node cannot re-export a module chosen at run time with `export *`, so the names are listed;
// test/library/exports.test.ts fails when this list and src/index.ts disagree.
import { load } from "./load.js"

const m = await load("src/index")

export const {
  Checkpointer,
  ConfigError,
  DocumentSource,
  Evaluator,
  GPT,
  Generator,
  Model,
  NonFiniteLoss,
  Packer,
  TensorBackend,
  TensorBackendLive,
  Tokenizer,
  Trainer,
  TrainerChoice,
  dataLayer,
  decodeConfig,
  gpt2SmallConfig,
  initGPT,
  learningRate,
  loadConfig,
  makeEncoding,
  modelConfigOf,
  openModel,
  parameterCount,
  presets,
  saveWeights,
  selectBackend,
  trainerConfigOf,
} = m
