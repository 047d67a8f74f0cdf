// One training step of the tiny GPT, end to end: tokenize, initialise, forward, backward, AdamW,
// forward again, and (optionally) check every gradient by finite differences. Returns every
// value, grouped into the document's stages; the renderers only ever read this result.
import { Either, ParseResult, Schema } from "effect"
import { type AdamWOptions, type AdamWResult, adamwStep, defaultAdamW } from "./adamw.ts"
import { type BackwardResult, type BackwardRules, backward } from "./backward.ts"
import { type GradCheckReport, checkGradients } from "./check.ts"
import { type ForwardCache, forward, hooks } from "./forward.ts"
import type { Tensor } from "./math.ts"
import { type InitScheme, type Params, type TinyConfig, LN_EPS, initParams, tinyConfig } from "./model.ts"
import { type Stage, buildStages } from "./stages.ts"
import { DEFAULT_TEXT, type Tokenized, WalkthroughInputError, tokenize } from "./vocab.ts"

const Probability = Schema.Number.pipe(Schema.greaterThanOrEqualTo(0), Schema.lessThan(1))

/** The options a user can set (CLI flags or a config file), all optional. */
export const WalkthroughOptions = Schema.Struct({
  text: Schema.optional(Schema.String),
  seed: Schema.optional(Schema.Int),
  tied: Schema.optional(Schema.Boolean),
  gelu: Schema.optional(Schema.Literal("tanh", "erf")),
  init: Schema.optional(Schema.Literal("nonzero", "gpt2")),
  /** rows of wpe; default and minimum: the number of input positions */
  context: Schema.optional(Schema.Int.pipe(Schema.positive())),
  lr: Schema.optional(Schema.Number.pipe(Schema.positive())),
  beta1: Schema.optional(Probability),
  beta2: Schema.optional(Probability),
  eps: Schema.optional(Schema.Number.pipe(Schema.positive())),
  weightDecay: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
  decayEmbeddings: Schema.optional(Schema.Boolean),
  /** run the finite-difference check of every gradient (about a second) */
  verify: Schema.optional(Schema.Boolean)
})
export type WalkthroughOptions = Schema.Schema.Type<typeof WalkthroughOptions>

export interface ResolvedOptions {
  readonly text: string
  readonly seed: number
  readonly tied: boolean
  readonly gelu: "tanh" | "erf"
  readonly init: InitScheme
  readonly context: number
  readonly adamw: AdamWOptions
  readonly verify: boolean
}

export const DEFAULT_SEED = 1337

export interface WalkthroughResult {
  readonly options: ResolvedOptions
  readonly config: TinyConfig
  readonly tokens: Tokenized
  /** the initial parameters, GPT-2 names and layouts */
  readonly params: Params
  readonly forward: ForwardCache
  /** forward values by TransformerLens hook name, plus `logits` */
  readonly hooks: Record<string, Tensor>
  readonly backward: BackwardResult
  /** dL/dθ under the parameters' names */
  readonly grads: Params
  readonly adamw: AdamWResult
  /** the forward pass with the updated parameters */
  readonly after: ForwardCache
  readonly loss: number
  readonly lossAfter: number
  readonly check: GradCheckReport | undefined
  readonly stages: ReadonlyArray<Stage>
}

export interface WalkthroughHooks {
  /** Replace local backward rules (tests use this to plant a wrong gradient). */
  readonly rules?: Partial<BackwardRules>
}

const decodeOptions = (input: unknown): Either.Either<WalkthroughOptions, WalkthroughInputError> =>
  Schema.decodeUnknownEither(WalkthroughOptions, { onExcessProperty: "error" })(input).pipe(
    Either.mapLeft((error) => {
      const [first] = ParseResult.ArrayFormatter.formatErrorSync(error)
      return new WalkthroughInputError({
        field: first?.path.join(".") || "options",
        reason: (first?.message ?? String(error)).replace(/\s+/g, " ")
      })
    })
  )

/** Validates options and text; the Left is a one-line `WalkthroughInputError`. */
export const resolveOptions = (
  input: unknown = {}
): Either.Either<{ options: ResolvedOptions; tokens: Tokenized }, WalkthroughInputError> =>
  Either.gen(function* () {
    const o = yield* decodeOptions(input)
    const tokens = yield* tokenize(o.text ?? DEFAULT_TEXT)
    const T = tokens.inputs.length
    if (o.context !== undefined && o.context < T) {
      return yield* Either.left(
        new WalkthroughInputError({ field: "context", reason: `is ${o.context} but the text needs ${T} positions` })
      )
    }
    const options: ResolvedOptions = {
      text: tokens.text,
      seed: o.seed ?? DEFAULT_SEED,
      tied: o.tied ?? true,
      gelu: o.gelu ?? "tanh",
      init: o.init ?? "nonzero",
      context: o.context ?? T,
      adamw: {
        lr: o.lr ?? defaultAdamW.lr,
        beta1: o.beta1 ?? defaultAdamW.beta1,
        beta2: o.beta2 ?? defaultAdamW.beta2,
        eps: o.eps ?? defaultAdamW.eps,
        weightDecay: o.weightDecay ?? defaultAdamW.weightDecay,
        decayEmbeddings: o.decayEmbeddings ?? defaultAdamW.decayEmbeddings
      },
      verify: o.verify ?? true
    }
    return { options, tokens }
  })

/** The walkthrough's model config for resolved options (the tfjs comparison builds the same). */
export const configFor = (options: ResolvedOptions, tokens: Tokenized): TinyConfig =>
  tinyConfig(tokens.vocab.length, options.context, { tied: options.tied, gelu: options.gelu })

/** Runs the whole step. Pure and deterministic: the same options give the same digits. */
export const walkthrough = (
  input: WalkthroughOptions = {},
  extra: WalkthroughHooks = {}
): Either.Either<WalkthroughResult, WalkthroughInputError> =>
  Either.map(resolveOptions(input), ({ options, tokens }) => {
    const config = configFor(options, tokens)
    const params = initParams(config, options.seed, options.init)
    const f = forward(config, params, tokens.inputs, tokens.targets)
    const b = backward(config, params, f, extra.rules)
    const adamw = adamwStep(params, b.grads, options.adamw)
    const after = forward(config, adamw.params, tokens.inputs, tokens.targets)
    const check = options.verify
      ? checkGradients(config, params, tokens.inputs, tokens.targets, b.grads)
      : undefined
    const parts = { options, config, tokens, params, forward: f, backward: b, adamw, after, check }
    return {
      ...parts,
      hooks: hooks(f),
      grads: b.grads,
      loss: f.loss,
      lossAfter: after.loss,
      stages: buildStages(parts)
    }
  })

/**
 * The walkthrough's architecture in the pipeline config's `model` section names (plus the
 * vocabulary size), for building the same model in src/model/ and loading `result.params`.
 */
export const toModelConfig = (c: TinyConfig) => ({
  layers: c.layers,
  heads: c.heads,
  d_model: c.dModel,
  d_ff: c.dFF,
  context: c.context,
  dropout: 0,
  position: "learned" as const,
  tied: c.tied,
  gelu: c.gelu,
  vocab_size: c.vocab,
  ln_eps: LN_EPS
})
