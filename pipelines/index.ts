// What `glassbox run <config>` executes: the pipeline named by the config's `pipeline` field.
import { Effect } from "effect"
import { planRun } from "../src/checkpoint/resume.ts"
import type { PipelineConfig } from "../src/config/schema.ts"
import { interpret } from "./interpret.ts"
import { runPretrain } from "./pretrain.ts"
import { walkthrough } from "./walkthrough.ts"

/** Runs the pipeline a config names; failures are the pipelines' own tagged errors. */
export const runPipeline = (config: PipelineConfig): Effect.Effect<void, unknown> => {
  switch (config.pipeline) {
    case "pretrain":
      return planRun(config).pipe(Effect.flatMap(({ config, resumeFrom }) => runPretrain(config, resumeFrom)), Effect.asVoid)
    case "walkthrough":
      return walkthrough(config).pipe(Effect.asVoid)
    case "interpret":
      return interpret(config).pipe(Effect.asVoid)
  }
}
