// Why this file exists: `glassbox interpret logit-lens|attention|induction|patch <checkpoint>` as
// Effect programs taking plain option objects, so src/cli/ wires them with @effect/cli and tests
// run them directly. Each opens the model (any model reference: run or checkpoint directory,
// .safetensors file, Hugging Face directory, hf:<repo> or gpt2), turns text into tokens with the
// model's tokenizer, asks the `Probes`
// service, prints the terminal view and, with `html`, writes the self-contained report.
import { Console, Effect } from "effect"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { TensorBackend, TensorBackendLive, type BackendChoice } from "../backend/backend.ts"
import { openModel } from "../model/reference.ts"
import type { Encoding, TokenizerName } from "../tokenizer/tokenizer.ts"
import { readableBytes } from "./colors.ts"
import { AnswerNotOneToken, ReportWriteFailed } from "./errors.ts"
import { inductionDefaults } from "./induction.ts"
import { siteKinds, type SiteKind } from "./patching.ts"
import { Probes, validateHead, type ProbesShape } from "./probes.ts"
import { attentionHtml, inductionHtml, lensHtml, patchingHtml } from "./render-html.ts"
import { renderAttention, renderInduction, renderLens, renderPatching, type TokenText } from "./render-terminal.ts"

export interface InterpretOptions {
  /** A model reference: run or checkpoint directory, .safetensors file, Hugging Face directory, hf:<repo>, gpt2. */
  readonly checkpoint: string
  /** Also write a self-contained HTML report here. */
  readonly html?: string
  /** The model's tokenizer when its files do not say; refused when it disagrees with them. */
  readonly tokenizer?: TokenizerName
  /** Attention heads, for weights with neither glassbox metadata nor a config.json. */
  readonly heads?: number
  /** Tensor backend (default "auto"; GLASSBOX_BACKEND overrides). */
  readonly backend?: BackendChoice
  /** ANSI colours (default: when stdout is a terminal and NO_COLOR is unset). */
  readonly color?: boolean
}

export interface TextOptions {
  readonly text: string
  /** Put end-of-text before the text, as at a document start in training (default true). */
  readonly bos?: boolean
}

export interface LogitLensCommandOptions extends InterpretOptions, TextOptions {
  /** How many top tokens per cell (default 5). */
  readonly topK?: number
  /** Position whose top-k is listed stage by stage (default: the last). */
  readonly position?: number
}

export interface AttentionCommandOptions extends InterpretOptions, TextOptions {
  /** Show this layer's heads (with `head`: one head's pattern). */
  readonly layer?: number
  readonly head?: number
  /** A shape score at least this names a head (default 0.4). */
  readonly threshold?: number
}

export interface InductionCommandOptions extends InterpretOptions {
  /** Random segment length R (default 50, or the most the model's context allows). */
  readonly repeatLength?: number
  /** Sequences in the batch (default 10). */
  readonly batch?: number
  readonly seed?: number
  /** Report heads with an induction score at least this (default 0.4). */
  readonly threshold?: number
}

export interface PatchCommandOptions extends InterpretOptions {
  readonly clean: string
  readonly corrupted: string
  /** The clean prompt's answer and the corrupted prompt's answer; each must be one token. */
  readonly answer: string
  readonly wrong: string
  /** Which sites to sweep (default all: resid_pre, attn_out, mlp_out, head). */
  readonly sites?: ReadonlyArray<SiteKind>
  /** Put end-of-text before both prompts (default true). */
  readonly bos?: boolean
  /** Rows per batched forward pass (default: about 4,096 tokens per batch at width 256, fewer when wider). */
  readonly batchRows?: number
}

export const interpretSiteKinds = siteKinds

const useColor = (o: InterpretOptions) => o.color ?? (process.stdout.isTTY === true && (process.env.NO_COLOR ?? "") === "")

/** Each id's text; a token holding part of a multi-byte character shows its bytes as \xNN, not U+FFFD. */
export const tokenText = (encoding: Encoding): TokenText => {
  const memo = new Map<number, string>()
  return (id) => {
    let s = memo.get(id)
    if (s === undefined) {
      if (!(Number.isInteger(id) && id >= 0 && id < encoding.vocabSize)) s = `<${id}>`
      else {
        s = encoding.decode([id])
        if (s.includes("\uFFFD") && encoding.tokenBytes !== undefined) s = readableBytes(encoding.tokenBytes(id))
      }
      memo.set(id, s)
    }
    return s
  }
}

const writeReport = (path: string, html: string) =>
  Effect.tryPromise({
    try: async () => {
      await fs.mkdir(nodePath.dirname(nodePath.resolve(path)), { recursive: true })
      await fs.writeFile(path, html)
    },
    catch: (e) => new ReportWriteFailed({ path, reason: (e as NodeJS.ErrnoException).code ?? String(e) })
  }).pipe(Effect.zipRight(Console.log(`\nHTML report written to ${path}`)))

interface Session {
  readonly probes: ProbesShape
  readonly encoding: Encoding
  readonly text: TokenText
  readonly color: boolean
  /** A line naming the checkpoint and tokenizer, for report subtitles. */
  readonly source: string
}

/** Loads the model behind the Probes service for the duration of `use`, then frees it. */
const withProbes = <A, E>(o: InterpretOptions, use: (s: Session) => Effect.Effect<A, E, Probes>) =>
  Effect.gen(function* () {
    const backend = yield* TensorBackend
    const { model, encoding, files } = yield* Effect.acquireRelease(
      openModel(o.checkpoint, { ...(o.tokenizer === undefined ? {} : { tokenizer: o.tokenizer }), ...(o.heads === undefined ? {} : { heads: o.heads }) }),
      ({ model }) => Effect.sync(() => model.dispose())
    )
    const c = model.config
    const source = `${files.label} · ${c.layers} layers × ${c.heads} heads, d ${c.dModel}, vocab ${c.vocabSize} · tokenizer ${encoding.name} · ${backend.description}`
    return yield* Effect.flatMap(Probes, (probes) => use({ probes, encoding, text: tokenText(encoding), color: useColor(o), source })).pipe(
      Effect.provide(Probes.fromModel(model))
    )
  }).pipe(Effect.scoped, Effect.provide(TensorBackendLive(o.backend ?? "auto")))

const encodePrompt = (encoding: Encoding, text: string, bos: boolean | undefined) => [...(bos ?? true ? [encoding.eot] : []), ...encoding.encode(text)]

const oneToken = (encoding: Encoding, which: string, text: string) => {
  const ids = encoding.encode(text)
  return ids.length === 1 ? Effect.succeed(ids[0]) : Effect.fail(new AnswerNotOneToken({ which, text, tokens: ids }))
}

/** `glassbox interpret logit-lens <checkpoint> --text … [--top-k 5] [--position p] [--html out.html]` */
export const logitLensCommand = (o: LogitLensCommandOptions) =>
  withProbes(o, (s) =>
    Effect.gen(function* () {
      const ids = encodePrompt(s.encoding, o.text, o.bos)
      const result = yield* s.probes.logitLens(ids, { topK: o.topK ?? 5 })
      yield* Console.log(renderLens(result, s.text, { color: s.color, detail: o.position ?? ids.length - 1 }))
      if (o.html !== undefined) yield* writeReport(o.html, lensHtml(result, s.text, s.source))
      return result
    })
  )

/** `glassbox interpret attention <checkpoint> --text … [--layer L [--head H]] [--threshold 0.4] [--html out.html]` */
export const attentionCommand = (o: AttentionCommandOptions) =>
  withProbes(o, (s) =>
    Effect.gen(function* () {
      yield* validateHead(s.probes.model, o.layer, o.head)
      const ids = encodePrompt(s.encoding, o.text, o.bos)
      const analysis = yield* s.probes.attentionPatterns(ids, o.threshold === undefined ? {} : { shape: o.threshold })
      yield* Console.log(renderAttention(analysis, s.text, { color: s.color, layer: o.layer, head: o.head }))
      if (o.html !== undefined) yield* writeReport(o.html, attentionHtml(analysis, s.text, { layer: o.layer, head: o.head, source: s.source }))
      return analysis
    })
  )

/** `glassbox interpret induction <checkpoint> [--repeat R (default: 50 or what the context allows)] [--batch 10] [--seed 0] [--threshold 0.4] [--html out.html]` */
export const inductionCommand = (o: InductionCommandOptions) =>
  withProbes(o, (s) =>
    Effect.gen(function* () {
      const result = yield* s.probes.inductionScores({
        repeatLength: o.repeatLength,
        batch: o.batch ?? inductionDefaults.batch,
        seed: o.seed ?? inductionDefaults.seed,
        threshold: o.threshold ?? inductionDefaults.threshold,
        bos: s.encoding.eot < s.probes.model.config.vocabSize ? s.encoding.eot : undefined
      })
      yield* Console.log(renderInduction(result, { color: s.color }))
      if (o.html !== undefined) yield* writeReport(o.html, inductionHtml(result, s.text, s.source))
      return result
    })
  )

/** `glassbox interpret patch <checkpoint> --clean … --corrupted … --answer " Paris" --wrong " Rome" [--site resid_pre --site head] [--html out.html]` */
export const patchCommand = (o: PatchCommandOptions) =>
  withProbes(o, (s) =>
    Effect.gen(function* () {
      const clean = encodePrompt(s.encoding, o.clean, o.bos)
      const corrupted = encodePrompt(s.encoding, o.corrupted, o.bos)
      const answer = yield* oneToken(s.encoding, "correct", o.answer)
      const wrong = yield* oneToken(s.encoding, "wrong", o.wrong)
      const result = yield* s.probes.patch({ clean, corrupted, answer, wrong, kinds: o.sites, batchRows: o.batchRows })
      yield* Console.log(renderPatching(result, s.text, { color: s.color }))
      if (o.html !== undefined) yield* writeReport(o.html, patchingHtml(result, s.text, s.source))
      return result
    })
  )
