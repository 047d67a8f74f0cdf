// `glassbox generate` (continue a prompt, printing text as it is produced) and `glassbox chat`
// (a REPL over the same generator: history, /preset, /set, /help, /quit; Ctrl-C stops the answer
// being written without leaving). Sampling flags override the chosen preset field by field.
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option, Stream } from "effect"
import * as readline from "node:readline"
import { TensorBackend, TensorBackendLive } from "../backend/backend.ts"
import { resolveWeightsPath } from "../checkpoint/checkpointer.ts"
import { BackendSetting } from "../config/schema.ts"
import { generateTokens } from "../generate/generator.ts"
import { presetNames, presets, presetTable, validateSampling, type PresetName, type SamplingOptions } from "../generate/sampling.ts"
import { streamText } from "../generate/text.ts"
import type { GPT } from "../model/gpt.ts"
import { loadWeights } from "../model/weights.ts"
import { makeEncoding, tokenizerNames, type Encoding, type TokenizerName } from "../tokenizer/tokenizer.ts"

const checkpointArg = Args.text({ name: "checkpoint" }).pipe(Args.withDescription("a run directory, a checkpoint directory or a .safetensors file"))
const samplingOptions = {
  preset: Options.choice("preset", presetNames).pipe(Options.withDefault("balanced" as const), Options.withDescription(`sampling preset:\n${presetTable()}`)),
  temperature: Options.float("temperature").pipe(Options.optional),
  topK: Options.integer("top-k").pipe(Options.optional),
  topP: Options.float("top-p").pipe(Options.optional),
  minP: Options.float("min-p").pipe(Options.optional),
  repetitionPenalty: Options.float("repetition-penalty").pipe(Options.optional),
  maxNewTokens: Options.integer("max-new-tokens").pipe(Options.withDefault(100)),
  seed: Options.integer("seed").pipe(Options.withDefault(0)),
  tokenizer: Options.choice("tokenizer", tokenizerNames).pipe(Options.optional, Options.withDescription("override the tokenizer recorded in the weights")),
  backend: Options.choice("backend", BackendSetting.literals).pipe(Options.withDefault("auto" as const))
}

type SamplingFlags = {
  readonly preset: PresetName
  readonly temperature: Option.Option<number>
  readonly topK: Option.Option<number>
  readonly topP: Option.Option<number>
  readonly minP: Option.Option<number>
  readonly repetitionPenalty: Option.Option<number>
}

/** The preset with any flags given on the command line laid over it (a given temperature means sampling). */
const samplingFrom = (o: SamplingFlags): SamplingOptions => {
  const base = presets[o.preset]
  return {
    greedy: base.greedy && Option.isNone(o.temperature),
    temperature: Option.getOrElse(o.temperature, () => base.temperature),
    topK: Option.getOrElse(o.topK, () => base.topK),
    topP: Option.getOrElse(o.topP, () => base.topP),
    minP: Option.getOrElse(o.minP, () => base.minP),
    repetitionPenalty: Option.getOrElse(o.repetitionPenalty, () => base.repetitionPenalty)
  }
}

const loadModel = (checkpoint: string, tokenizer: Option.Option<TokenizerName>) =>
  Effect.gen(function* () {
    const backend = yield* TensorBackend
    const { model, tokenizer: recorded } = yield* loadWeights(yield* resolveWeightsPath(checkpoint))
    return { model, backend: backend.description, encoding: makeEncoding(Option.getOrElse(tokenizer, () => (recorded ?? "gpt2") as TokenizerName)) }
  })

const write = (s: string) => Effect.sync(() => process.stdout.write(s))

/** Streams one continuation to stdout; returns the token count and seconds. */
const answer = (model: GPT, encoding: Encoding, promptIds: number[], sampling: SamplingOptions, o: { maxNewTokens: number; seed: number; stop: readonly string[] }, aborted: () => boolean = () => false) =>
  Effect.gen(function* () {
    const started = performance.now()
    let count = 0
    const tokens = generateTokens(model, promptIds, {
      maxNewTokens: o.maxNewTokens,
      sampling,
      seed: o.seed,
      stopToken: encoding.eot,
      onNotice: (m) => process.stderr.write(`\n[${m}]\n`)
    }).pipe(
      Stream.takeWhile(() => !aborted()),
      Stream.tap(() => Effect.sync(() => count++)),
      // Let the event loop run between tokens, so Ctrl-C can land mid-answer.
      Stream.tap(() => Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve))))
    )
    let text = ""
    yield* streamText(encoding, tokens, { stop: o.stop }).pipe(Stream.runForEach((delta) => Effect.zipRight(write(delta), Effect.sync(() => (text += delta)))))
    return { count, seconds: (performance.now() - started) / 1000, text }
  })

const rate = (r: { count: number; seconds: number }, backend: string) => `[${r.count} tokens in ${r.seconds.toFixed(2)}s, ${(r.count / r.seconds).toFixed(1)} tokens/s on ${backend}]`

export const generateCommand = Command.make(
  "generate",
  {
    checkpoint: checkpointArg,
    prompt: Options.text("prompt").pipe(Options.withDefault(""), Options.withDescription("text to continue (empty: start from end-of-text)")),
    stop: Options.text("stop").pipe(Options.repeated, Options.withDescription("stop when this text appears (repeatable)")),
    ...samplingOptions
  },
  (o) =>
    Effect.gen(function* () {
      const sampling = samplingFrom(o)
      const invalid = validateSampling(sampling)
      if (invalid) return yield* invalid
      const { model, encoding, backend } = yield* loadModel(o.checkpoint, o.tokenizer)
      const prompt = o.prompt === "" ? [encoding.eot] : encoding.encode(o.prompt)
      yield* write(o.prompt)
      const r = yield* answer(model, encoding, prompt, sampling, { maxNewTokens: o.maxNewTokens, seed: o.seed, stop: o.stop }).pipe(Effect.ensuring(Effect.sync(() => model.dispose())))
      yield* write(`\n\n${rate(r, backend)}\n`)
    }).pipe(Effect.provide(TensorBackendLive(o.backend)))
).pipe(Command.withDescription(`Continue a prompt, printing text as it is produced. Example: glassbox generate runs/tiny --prompt "The whale" --preset precise --max-new-tokens 60\nPresets:\n${presetTable()}`))

const chatHelp = `commands:
  /preset <name>        switch sampling preset (${presetNames.join(", ")})
  /set <field> <value>  temperature, top_k, top_p, min_p, repetition_penalty, max_new_tokens, seed
  /show                 the current settings
  /reset                forget the conversation
  /help                 this text
  /quit                 leave (Ctrl-D too); Ctrl-C stops an answer being written`

export const chatCommand = Command.make("chat", { checkpoint: checkpointArg, ...samplingOptions }, (o) =>
  Effect.gen(function* () {
    const { model, encoding, backend } = yield* loadModel(o.checkpoint, o.tokenizer)
    let sampling = samplingFrom(o)
    let maxNewTokens = o.maxNewTokens
    let seed = o.seed
    let transcript = ""
    let generating = false
    let aborted = false
    const onSigint = () => {
      if (generating) aborted = true
      else process.stdout.write("\n(type /quit to leave)\n> ")
    }
    process.on("SIGINT", onSigint)
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true, historySize: 200 })
    rl.on("SIGINT", onSigint)
    const lines = rl[Symbol.asyncIterator]()
    yield* write(`chatting with ${o.checkpoint} (${model.config.layers} layers, context ${model.config.context}, ${backend}); /help for commands\n> `)
    const settings = () => `settings: ${JSON.stringify({ ...sampling, max_new_tokens: maxNewTokens, seed })}\n`
    for (;;) {
      const next = yield* Effect.promise(() => lines.next())
      if (next.done) break
      const line = next.value.trim()
      if (line === "") {
        yield* write("> ")
        continue
      }
      if (line.startsWith("/")) {
        const [command, ...rest] = line.slice(1).split(/\s+/)
        if (command === "quit" || command === "exit") break
        else if (command === "help") yield* write(chatHelp + "\n")
        else if (command === "show") yield* write(settings())
        else if (command === "reset") {
          transcript = ""
          yield* write("conversation cleared\n")
        } else if (command === "preset") {
          const name = rest[0] as PresetName
          if (presetNames.includes(name)) {
            sampling = presets[name]
            yield* write(`preset ${name}\n`)
          } else yield* write(`unknown preset "${rest[0] ?? ""}"; one of ${presetNames.join(", ")}\n`)
        } else if (command === "set") {
          const [field, raw] = rest
          const value = Number(raw)
          const fields: Record<string, (v: number) => void> = {
            temperature: (v) => (sampling = { ...sampling, greedy: false, temperature: v }),
            top_k: (v) => (sampling = { ...sampling, topK: v }),
            top_p: (v) => (sampling = { ...sampling, topP: v }),
            min_p: (v) => (sampling = { ...sampling, minP: v }),
            repetition_penalty: (v) => (sampling = { ...sampling, repetitionPenalty: v }),
            max_new_tokens: (v) => (maxNewTokens = v),
            seed: (v) => (seed = v)
          }
          const setter = field === undefined ? undefined : fields[field]
          if (setter === undefined || raw === undefined || !Number.isFinite(value)) yield* write(`usage: /set <${Object.keys(fields).join("|")}> <number>\n`)
          else {
            const before = { sampling, maxNewTokens, seed }
            setter(value)
            const invalid = validateSampling(sampling) ?? (Number.isInteger(maxNewTokens) && maxNewTokens >= 1 ? undefined : { message: `max_new_tokens = ${maxNewTokens} is invalid: expected an integer ≥ 1` })
            if (invalid) {
              ;({ sampling, maxNewTokens, seed } = before)
              yield* write(`${invalid.message}\n`)
            } else yield* write(`${field} = ${value}\n`)
          }
        } else yield* write(`unknown command /${command}; /help lists them\n`)
        yield* write("> ")
        continue
      }
      // A base model continues text: the transcript is the prompt, the reply stops at a blank line.
      transcript += `${transcript === "" ? "" : "\n\n"}User: ${line}\nModel:`
      generating = true
      aborted = false
      // The transcript outgrows the context: keep its most recent part.
      const recent = encoding.encode(transcript).slice(-Math.max(1, model.config.context - 16))
      const r = yield* answer(model, encoding, recent, sampling, { maxNewTokens, seed, stop: ["\n\nUser:", "\nUser:"] }, () => aborted)
      generating = false
      transcript += r.text
      yield* write(`${aborted ? "\n[stopped]" : ""}\n${rate(r, backend)}\n> `)
      seed++
    }
    rl.close()
    process.off("SIGINT", onSigint)
    model.dispose()
    yield* write("\n")
  }).pipe(Effect.provide(TensorBackendLive(o.backend)))
).pipe(Command.withDescription("Talk to a model: a REPL with history, /preset, /set temperature 0.8, /help, /quit; Ctrl-C stops the current answer. Example: glassbox chat runs/tiny"))
