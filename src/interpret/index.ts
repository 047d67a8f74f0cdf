// Why this file exists: one import for the interpretability instruments (hooks, logit lens,
// attention analysis, induction heads, activation patching), their reports and the Probes service.
export * from "./attention.ts"
export * from "./cli.ts"
export * from "./colors.ts"
export * from "./errors.ts"
export * from "./hooks.ts"
export * from "./induction.ts"
export * from "./logit-lens.ts"
export * from "./patching.ts"
export * from "./probes.ts"
export * from "./render-html.ts"
export * from "./render-terminal.ts"
export type { HookFn } from "../model/hooks.ts"
