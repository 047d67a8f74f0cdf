// The interpretability recipe as a pipeline: open a trained model and run every probe the config's
// `probes` section switches on (logit lens and attention analysis on a text, the induction-head
// test, activation patching on a clean/corrupted prompt pair), printing each and writing an HTML
// report per analysis when `probes.html_dir` is set.
//   glassbox run config/interpret.json            (after `npm start` has trained runs/tiny)
// `interpretPlan` turns the config into the options each command gets (pure, so a test can check
// which threshold goes where); `interpret` runs the plan.
import { Console, Effect } from "effect"
import * as path from "node:path"
import type { PipelineConfig } from "../src/config/schema.ts"
import {
  attentionCommand,
  inductionCommand,
  logitLensCommand,
  patchCommand,
  type AttentionCommandOptions,
  type InductionCommandOptions,
  type LogitLensCommandOptions,
  type PatchCommandOptions
} from "../src/interpret/cli.ts"
import type { TokenizerName } from "../src/tokenizer/tokenizer.ts"

export interface InterpretPlan {
  readonly logitLens?: LogitLensCommandOptions
  readonly attention?: AttentionCommandOptions
  readonly induction?: InductionCommandOptions
  readonly patching?: PatchCommandOptions
}

export const interpretPlan = (config: PipelineConfig): InterpretPlan => {
  const p = config.probes
  const checkpoint = p.checkpoint ?? config.run.dir
  const report = (name: string) => (p.html_dir === undefined ? {} : { html: path.join(p.html_dir, `${name}.html`) })
  const common = { checkpoint, backend: config.backend, tokenizer: config.tokenizer as TokenizerName }
  return {
    ...(p.logit_lens ? { logitLens: { ...common, text: p.text, topK: p.top_k, ...report("logit-lens") } } : {}),
    ...(p.attention ? { attention: { ...common, text: p.text, threshold: p.attention_threshold, ...report("attention") } } : {}),
    ...(p.induction
      ? {
          induction: {
            ...common,
            ...(p.induction_length === undefined ? {} : { repeatLength: p.induction_length }),
            batch: p.induction_batch,
            threshold: p.induction_threshold,
            seed: config.run.seed,
            ...report("induction")
          }
        }
      : {}),
    ...(p.patching
      ? {
          patching: {
            ...common,
            clean: p.patch_clean,
            corrupted: p.patch_corrupted,
            answer: p.patch_answer,
            wrong: p.patch_wrong,
            ...(p.patch_sites === undefined ? {} : { sites: p.patch_sites }),
            ...report("patching")
          }
        }
      : {})
  }
}

export const interpret = (config: PipelineConfig) =>
  Effect.gen(function* () {
    const plan = interpretPlan(config)
    if (plan.logitLens) yield* logitLensCommand(plan.logitLens)
    if (plan.attention) yield* attentionCommand(plan.attention)
    if (plan.induction) yield* inductionCommand(plan.induction)
    if (plan.patching) {
      // Prompts the model cannot tell apart are a finding about the model, not a broken run:
      // say so and keep the reports already written.
      yield* patchCommand(plan.patching).pipe(
        Effect.catchTag("DegenerateBaseline", (e) => Console.error(`patching skipped: ${e.message}`))
      )
    }
  })
