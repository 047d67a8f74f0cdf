// The composed-experiment tests train many tiny runs: one byte-level 1-layer model, a few steps,
// no evaluation or checkpoints, all in `dir`. Each test adds its own overrides after these (later
// `--set`s win).
export const tinyRunOverrides = (dir: string, extra: readonly string[] = []): string[] => [
  `run.dir=${dir}`,
  "backend=wasm",
  "tokenizer=bytes",
  "model.layers=1",
  "model.heads=2",
  "model.d_model=16",
  "model.d_ff=32",
  "model.context=32",
  "train.steps=6",
  "train.warmup_steps=1",
  "train.batch=2",
  "eval.every=0",
  "eval.tokens=256",
  "checkpoint.every=0",
  "generate.max_new_tokens=2",
  ...extra
]
