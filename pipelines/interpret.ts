// The interpretability recipe as a pipeline: open a trained model and run the probes the config's
// `probes` section asks for (logit lens and attention analysis on a text, the induction-head
// test), printing each and writing an HTML report per analysis when `probes.html_dir` is set.
//   glassbox run config/interpret.json            (after `npm start` has trained runs/tiny)
import { Effect } from "effect"
import * as path from "node:path"
import type { PipelineConfig } from "../src/config/schema.ts"
import { attentionCommand, inductionCommand, logitLensCommand } from "../src/interpret/cli.ts"
import type { TokenizerName } from "../src/tokenizer/tokenizer.ts"

export const interpret = (config: PipelineConfig) =>
  Effect.gen(function* () {
    const p = config.probes
    const checkpoint = p.checkpoint ?? config.run.dir
    const report = (name: string) => (p.html_dir === undefined ? undefined : path.join(p.html_dir, `${name}.html`))
    const common = { checkpoint, backend: config.backend, tokenizer: config.tokenizer as TokenizerName }
    if (p.logit_lens) yield* logitLensCommand({ ...common, text: p.text, topK: p.top_k, html: report("logit-lens") })
    if (p.attention) yield* attentionCommand({ ...common, text: p.text, threshold: p.induction_threshold, html: report("attention") })
    if (p.induction) {
      yield* inductionCommand({ ...common, repeatLength: p.induction_length, batch: p.induction_batch, threshold: p.induction_threshold, seed: config.run.seed, html: report("induction") })
    }
  })
