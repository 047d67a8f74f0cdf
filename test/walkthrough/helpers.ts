// Shared fixtures for the walkthrough tests.
import { Either } from "effect"
import type { BackwardRules } from "../../src/walkthrough/backward.ts"
import { type WalkthroughOptions, type WalkthroughResult, walkthrough } from "../../src/walkthrough/walkthrough.ts"

export const run = (options: WalkthroughOptions = {}, rules?: Partial<BackwardRules>): WalkthroughResult =>
  Either.getOrThrow(walkthrough({ verify: false, ...options }, rules === undefined ? {} : { rules }))
