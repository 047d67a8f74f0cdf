// Why this file exists: the ways a probe can be asked something it cannot answer (prompts of
// different lengths, a layer the model does not have, an answer that is two tokens). Each error
// carries the facts and says in one line what to change, so the CLI never shows a stack trace.
import { Data } from "effect"

/** Activation patching swaps activations position by position, so both prompts must align. */
export class PromptLengthMismatch extends Data.TaggedError("PromptLengthMismatch")<{
  readonly clean: number
  readonly corrupted: number
}> {
  override get message() {
    return `the clean prompt is ${this.clean} tokens but the corrupted prompt is ${this.corrupted} tokens; ` +
      `activation patching needs prompts of the same token length (reword one so they align)`
  }
}

/** Anything else about a probe's input: empty or too-long prompts, ids outside the vocabulary, a bad layer or head. */
export class ProbeInputError extends Data.TaggedError("ProbeInputError")<{
  readonly reason: string
}> {
  override get message() {
    return this.reason
  }
}

/** An answer for the logit-difference metric must be exactly one token. */
export class AnswerNotOneToken extends Data.TaggedError("AnswerNotOneToken")<{
  readonly which: string
  readonly text: string
  readonly tokens: ReadonlyArray<number>
}> {
  override get message() {
    return `the ${this.which} answer ${JSON.stringify(this.text)} is ${this.tokens.length} tokens [${this.tokens.join(", ")}]; ` +
      `give text that is exactly one token (often with a leading space, e.g. " Paris")`
  }
}

/** Normalising by (clean − corrupted) needs the two baselines to differ. */
export class DegenerateBaseline extends Data.TaggedError("DegenerateBaseline")<{
  readonly clean: number
  readonly corrupted: number
  /** σ of the clean run's logits, the scale the gap was judged against. */
  readonly logitScale?: number
}> {
  override get message() {
    const scale = this.logitScale === undefined ? "" : ` against a logit scale of ${this.logitScale.toFixed(3)}`
    return `the clean and corrupted runs give the same logit difference (${this.clean.toFixed(4)} vs ${this.corrupted.toFixed(4)}${scale}), ` +
      `so the normalised patching metric is undefined; choose prompts or answers the model tells apart`
  }
}

export class ReportWriteFailed extends Data.TaggedError("ReportWriteFailed")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `could not write the report ${this.path}: ${this.reason}`
  }
}
