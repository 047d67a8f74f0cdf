// Why this file exists: the `Probes` service (DESIGN.md §3) is the one door to the instruments.
// Its live layer wraps a loaded model; each operation checks its input (prompt lengths, layer and
// head numbers, vocabulary) and fails with a tagged error, then runs the pure probe. Probes only
// read activations or patch them inside a forward pass; they never change a weight.
import { Context, Effect, Either, Layer } from "effect"
import type { GPT } from "../model/gpt.ts"
import { attentionPatterns, defaultThresholds, type AttentionAnalysis, type LabelThresholds } from "./attention.ts"
import { DegenerateBaseline, PromptLengthMismatch, ProbeInputError } from "./errors.ts"
import { promptProblem } from "./hooks.ts"
import { defaultRepeatLength, inductionDefaults, inductionScores, type InductionOptions, type InductionResult } from "./induction.ts"
import { logitLens, type LogitLensResult } from "./logit-lens.ts"
import { patchingSweep, siteKinds, type PatchRequest, type PatchingResult } from "./patching.ts"

export interface ProbesShape {
  readonly model: GPT
  readonly logitLens: (ids: ReadonlyArray<number>, options?: { readonly topK?: number }) => Effect.Effect<LogitLensResult, ProbeInputError>
  readonly attentionPatterns: (ids: ReadonlyArray<number>, thresholds?: Partial<LabelThresholds>) => Effect.Effect<AttentionAnalysis, ProbeInputError>
  readonly inductionScores: (options?: InductionOptions) => Effect.Effect<InductionResult, ProbeInputError>
  readonly patch: (request: PatchRequest) => Effect.Effect<PatchingResult, PromptLengthMismatch | ProbeInputError | DegenerateBaseline>
}

const check = (problem: ProbeInputError | undefined) => (problem === undefined ? Effect.void : Effect.fail(problem))
const invalid = (reason: string) => Effect.fail(new ProbeInputError({ reason }))

export const validateInduction = (model: GPT, options: InductionOptions): Effect.Effect<void, ProbeInputError> => {
  const { context, vocabSize, position } = model.config
  const R = options.repeatLength ?? defaultRepeatLength(model.config).repeatLength
  const B = options.batch ?? inductionDefaults.batch
  const bos = options.bos ?? vocabSize - 1
  if (options.repeatLength === undefined && R < 2) {
    return invalid(`the induction test needs at least 5 positions (BOS + 2 random tokens, twice) but the model's context is ${context}`)
  }
  if (!Number.isInteger(R) || R < 2) return invalid(`the repeat length must be an integer of at least 2, got ${R}`)
  if (position === "learned" && 2 * R + 1 > context) {
    return invalid(`the induction test needs 2·R + 1 = ${2 * R + 1} positions but the model's context is ${context}; use a repeat length of at most ${Math.floor((context - 1) / 2)}`)
  }
  if (!Number.isInteger(B) || B < 1) return invalid(`the batch must be a positive integer, got ${B}`)
  if (!Number.isInteger(bos) || bos < 0 || bos >= vocabSize) return invalid(`the BOS token ${bos} is outside the vocabulary [0, ${vocabSize})`)
  return Effect.void
}

export const validatePatch = (model: GPT, request: PatchRequest): Effect.Effect<void, PromptLengthMismatch | ProbeInputError> =>
  Effect.gen(function* () {
    yield* check(promptProblem(model.config, request.clean, "clean prompt"))
    yield* check(promptProblem(model.config, request.corrupted, "corrupted prompt"))
    if (request.clean.length !== request.corrupted.length) {
      return yield* new PromptLengthMismatch({ clean: request.clean.length, corrupted: request.corrupted.length })
    }
    const V = model.config.vocabSize
    for (const [which, id] of [["answer", request.answer], ["wrong", request.wrong]] as const) {
      if (!Number.isInteger(id) || id < 0 || id >= V) return yield* invalid(`the ${which} token ${id} is outside the vocabulary [0, ${V})`)
    }
    if (request.answer === request.wrong) return yield* invalid(`the answer and the wrong answer are the same token (${request.answer}); the logit difference would be 0`)
    const unknown = (request.kinds ?? []).filter((k) => !(siteKinds as readonly string[]).includes(k))
    if (unknown.length > 0) return yield* invalid(`unknown patching site ${unknown.join(", ")}; choose from ${siteKinds.join(", ")}`)
    if (request.batchRows !== undefined && !(Number.isInteger(request.batchRows) && request.batchRows >= 1)) {
      return yield* invalid(`the patching batch must be a positive integer, got ${request.batchRows}`)
    }
  })

/** The probes over one model. */
export const makeProbes = (model: GPT): ProbesShape => ({
  model,
  logitLens: (ids, options = {}) =>
    check(promptProblem(model.config, ids, "prompt")).pipe(
      Effect.zipRight(
        options.topK !== undefined && !(Number.isInteger(options.topK) && options.topK >= 1) ? invalid(`top-k must be a positive integer, got ${options.topK}`) : Effect.void
      ),
      Effect.zipRight(Effect.sync(() => logitLens(model, ids, options.topK)))
    ),
  attentionPatterns: (ids, thresholds = {}) =>
    check(promptProblem(model.config, ids, "prompt")).pipe(
      Effect.zipRight(Effect.sync(() => attentionPatterns(model, ids, { ...defaultThresholds, ...thresholds })))
    ),
  inductionScores: (options = {}) => validateInduction(model, options).pipe(Effect.zipRight(Effect.sync(() => inductionScores(model, options)))),
  patch: (request) =>
    validatePatch(model, request).pipe(
      Effect.zipRight(Effect.suspend(() => Either.match(patchingSweep(model, request), { onLeft: Effect.fail, onRight: Effect.succeed })))
    )
})

export class Probes extends Context.Tag("glassbox/Probes")<Probes, ProbesShape>() {
  /** Probes over an already-loaded model (the caller owns and disposes it). */
  static readonly fromModel = (model: GPT): Layer.Layer<Probes> => Layer.succeed(Probes, makeProbes(model))
}

/** Checks a layer (and optionally a head) number against the model. */
export const validateHead = (model: GPT, layer: number | undefined, head: number | undefined): Effect.Effect<void, ProbeInputError> => {
  const { layers, heads } = model.config
  if (layer !== undefined && !(Number.isInteger(layer) && layer >= 0 && layer < layers)) return invalid(`layer ${layer} does not exist; the model has layers 0..${layers - 1}`)
  if (head !== undefined && !(Number.isInteger(head) && head >= 0 && head < heads)) return invalid(`head ${head} does not exist; each layer has heads 0..${heads - 1}`)
  if (head !== undefined && layer === undefined) return invalid("a head needs a layer too (--layer L --head H)")
  return Effect.void
}
