// Which config keys may change when a run is resumed. A resumed run must continue the same
// experiment: the model, data, tokenizer and optimiser are fixed by the checkpoint; only how
// long to run, how often to measure and save, and how to sample may be changed.
import type { PipelineConfig } from "./schema.ts"

/** Leaf paths (or whole sections, ending in ".") that may differ from the checkpoint's config. */
export const changeableOnResume = [
  "train.steps",
  // The learning rate and clipping may be lowered to recover from a diverged run.
  "train.lr",
  "train.min_lr",
  "train.clip",
  "train.skip_outlier_z",
  "eval.every",
  "eval.tokens",
  "checkpoint.",
  "generate.",
  "backend",
  "run.dir",
  // How data is fetched and prepared, not which tokens arrive in which order.
  "data.workers",
  "data.prefetch",
  "data.cache_dir",
  "data.cache_max_gb",
  "data.endpoint",
  "data.mode",
  "data.token_cache"
] as const

const leaves = (value: unknown, prefix = ""): Map<string, string> => {
  const out = new Map<string, string>()
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) for (const [p, x] of leaves(v, prefix === "" ? k : `${prefix}.${k}`)) out.set(p, x)
  } else out.set(prefix, JSON.stringify(value))
  return out
}

/** Every leaf whose value differs, with both values. */
export const configDifferences = (before: unknown, after: unknown): Array<{ key: string; before: string; after: string }> => {
  const a = leaves(before)
  const b = leaves(after)
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort()
  return keys.filter((k) => a.get(k) !== b.get(k)).map((key) => ({ key, before: a.get(key) ?? "unset", after: b.get(key) ?? "unset" }))
}

const changeable = (key: string) => changeableOnResume.some((allowed) => (allowed.endsWith(".") ? key.startsWith(allowed) : key === allowed))

/** The differences that a resume must refuse, each "key: before → after". */
export const forbiddenChanges = (checkpointConfig: PipelineConfig, requested: PipelineConfig): string[] =>
  configDifferences(checkpointConfig, requested)
    .filter((d) => !changeable(d.key))
    .map((d) => `${d.key}: ${d.before} → ${d.after}`)
