// `glassbox generate` (continue a prompt, printing text as it is produced) and `glassbox chat`
// (a REPL over the same generator: history, /preset, /set, /help, /quit; Ctrl-C stops the answer
// being written without leaving). Sampling flags override the chosen preset field by field.
// Generated text goes to stdout and nothing else does: statistics and notes go to stderr, so
// `glassbox generate … > out.txt` holds only the text, and `--json` gives scripts one object.
import { Args, Command, Options } from "@effect/cli"
import { Data, Effect, Option, Stream } from "effect"
import * as fs from "node:fs"
import * as readline from "node:readline"
import { TensorBackend, TensorBackendLive } from "../backend/backend.ts"
import { BackendSetting } from "../config/schema.ts"
import { generateTokens } from "../generate/generator.ts"
import { presetNames, presets, presetTable, validateSampling, type PresetName, type SamplingOptions } from "../generate/sampling.ts"
import { streamText } from "../generate/text.ts"
import type { GPT } from "../model/gpt.ts"
import { openModel } from "../model/reference.ts"
import { tokenizerNames, type Encoding, type TokenizerName } from "../tokenizer/tokenizer.ts"

/** A prompt file that cannot be read. */
export class PromptFileUnreadable extends Data.TaggedError("PromptFileUnreadable")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `--prompt-file ${this.path}: ${this.reason}`
  }
}

/** A flag value outside what the command accepts (beyond what its type says). */
export class InvalidFlag extends Data.TaggedError("InvalidFlag")<{ readonly flag: string; readonly value: string; readonly expected: string }> {
  override get message() {
    return `${this.flag} ${this.value} is invalid: expected ${this.expected}`
  }
}

const checkpointArg = Args.text({ name: "checkpoint" }).pipe(Args.withDescription("a run directory (its newest good checkpoint), a checkpoint directory, a .safetensors file, a Hugging Face-style directory (config.json + model.safetensors), hf:<owner>/<name>[@revision], or gpt2, gpt2-medium, distilgpt2"))
const samplingOptions = {
  preset: Options.choice("preset", presetNames).pipe(Options.withDefault("balanced" as const), Options.withDescription(`sampling preset; the flags below override its fields:\n${presetTable()}`)),
  temperature: Options.float("temperature").pipe(Options.optional, Options.withDescription("divide the logits by this before sampling; higher is more random (default: the preset's)")),
  topK: Options.integer("top-k").pipe(Options.optional, Options.withDescription("sample only among the k most likely tokens (default: the preset's)")),
  topP: Options.float("top-p").pipe(Options.optional, Options.withDescription("sample only among the most likely tokens whose probabilities add up to p, 0 < p ≤ 1 (default: the preset's)")),
  minP: Options.float("min-p").pipe(Options.optional, Options.withDescription("drop tokens less likely than min-p × the top token's probability (default: the preset's)")),
  repetitionPenalty: Options.float("repetition-penalty").pipe(Options.optional, Options.withDescription("> 1 makes tokens already in the text less likely (default: the preset's)")),
  maxNewTokens: Options.integer("max-new-tokens").pipe(Options.withDefault(100), Options.withDescription("stop after this many new tokens")),
  seed: Options.integer("seed").pipe(Options.withDefault(0), Options.withDescription("random seed; the same seed and settings give the same text")),
  tokenizer: Options.choice("tokenizer", tokenizerNames).pipe(Options.optional, Options.withDescription("the model's tokenizer, for weights that do not record it (must agree when they do)")),
  heads: Options.integer("heads").pipe(Options.optional, Options.withDescription("attention heads, for weights with neither glassbox metadata nor a config.json")),
  backend: Options.choice("backend", BackendSetting.literals).pipe(Options.withDefault("auto" as const), Options.withDescription("tensor backend (GLASSBOX_BACKEND overrides auto)"))
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

/** Sampling settings under the names the command line uses (`top-k`, not `topK`). */
export const samplingSettings = (s: SamplingOptions) => ({
  greedy: s.greedy,
  temperature: s.temperature,
  "top-k": s.topK ?? null,
  "top-p": s.topP ?? null,
  "min-p": s.minP ?? null,
  "repetition-penalty": s.repetitionPenalty ?? null
})

const loadModel = (checkpoint: string, tokenizer: Option.Option<TokenizerName>, heads: Option.Option<number>) =>
  Effect.gen(function* () {
    const backend = yield* TensorBackend
    const { model, encoding } = yield* openModel(checkpoint, { tokenizer: Option.getOrUndefined(tokenizer), heads: Option.getOrUndefined(heads) })
    return { model, backend: backend.description, encoding }
  })

const write = (s: string) => Effect.sync(() => process.stdout.write(s))
const note = (s: string) => Effect.sync(() => process.stderr.write(s))

/**
 * A note written between streamed words, never inside one: when stdout and stderr share a
 * terminal, a note that arrives mid-word waits for the next whitespace in the text.
 */
export const wordBoundaryNotes = (emitText: (s: string) => void, emitNote: (s: string) => void) => {
  let pending: string[] = []
  let lastChar = " "
  return {
    note: (m: string) => {
      if (/\s/.test(lastChar)) emitNote(m)
      else pending.push(m)
    },
    text: (delta: string) => {
      if (delta === "") return
      const space = pending.length === 0 ? -1 : delta.search(/\s/)
      if (space < 0) emitText(delta)
      else {
        emitText(delta.slice(0, space))
        for (const m of pending) emitNote(m)
        pending = []
        emitText(delta.slice(space))
      }
      lastChar = delta[delta.length - 1]
    },
    flush: () => {
      for (const m of pending) emitNote(m)
      pending = []
    }
  }
}

interface Answer {
  readonly count: number
  readonly seconds: number
  readonly text: string
}

/** Streams one continuation through `emit` (stdout unless told otherwise); returns the token count and seconds. */
const answer = (
  model: GPT,
  encoding: Encoding,
  promptIds: number[],
  sampling: SamplingOptions,
  o: { maxNewTokens: number; seed: number; stop: readonly string[]; emit?: (s: string) => void },
  aborted: () => boolean = () => false
) =>
  Effect.gen(function* () {
    const started = performance.now()
    let count = 0
    const emit = o.emit ?? ((s: string) => process.stdout.write(s))
    const out = wordBoundaryNotes(emit, (m) => process.stderr.write(`\n[${m}]\n`))
    const tokens = generateTokens(model, promptIds, {
      maxNewTokens: o.maxNewTokens,
      sampling,
      seed: o.seed,
      stopToken: encoding.eot,
      onNotice: out.note
    }).pipe(
      Stream.takeWhile(() => !aborted()),
      Stream.tap(() => Effect.sync(() => count++)),
      // Let the event loop run between tokens, so Ctrl-C can land mid-answer.
      Stream.tap(() => Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve))))
    )
    let text = ""
    yield* streamText(encoding, tokens, { stop: o.stop }).pipe(
      Stream.runForEach((delta) =>
        Effect.sync(() => {
          out.text(delta)
          text += delta
        })
      )
    )
    out.flush()
    return { count, seconds: (performance.now() - started) / 1000, text } satisfies Answer
  })

const rate = (r: { count: number; seconds: number }, backend: string) => `[${r.count} tokens in ${r.seconds.toFixed(2)}s, ${(r.count / r.seconds).toFixed(1)} tokens/s on ${backend}]`

/** All of stdin as text (a pipe or a file redirected in). */
const readStdin = Effect.promise(
  () =>
    new Promise<string>((resolve) => {
      const chunks: Buffer[] = []
      process.stdin.on("data", (c: Buffer) => chunks.push(c))
      process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
      process.stdin.on("error", () => resolve(Buffer.concat(chunks).toString("utf8")))
    })
)

/** A prompt read from a file or a pipe loses one final newline (the one `echo` adds). */
const withoutFinalNewline = (s: string) => s.replace(/\r?\n$/, "")

/**
 * Where the prompt comes from: --prompt, else --prompt-file (- for stdin), else stdin when it is
 * a pipe or a file, else none (start from end-of-text).
 */
const promptSource = (o: { prompt: Option.Option<string>; promptFile: Option.Option<string> }) =>
  Option.isSome(o.prompt)
    ? Effect.succeed(Option.some(o.prompt.value))
    : Option.isSome(o.promptFile)
      ? o.promptFile.value === "-"
        ? Effect.map(readStdin, (s) => Option.some(withoutFinalNewline(s)))
        : Effect.try({
            try: () => Option.some(withoutFinalNewline(fs.readFileSync(o.promptFile.pipe(Option.getOrThrow), "utf8"))),
            catch: (e) => new PromptFileUnreadable({ path: Option.getOrThrow(o.promptFile), reason: (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String((e as Error).message ?? e) })
          })
      : process.stdin.isTTY === true
        ? Effect.succeed(Option.none<string>())
        : Effect.map(readStdin, (s) => (s === "" ? Option.none<string>() : Option.some(withoutFinalNewline(s))))

export const generateCommand = Command.make(
  "generate",
  {
    checkpoint: checkpointArg,
    prompt: Options.text("prompt").pipe(Options.optional, Options.withDescription('text to continue; "" starts from end-of-text (default: stdin when it is a pipe or a file, else "")')),
    promptFile: Options.text("prompt-file").pipe(Options.optional, Options.withDescription("read the prompt from this file (- for stdin); one final newline is dropped")),
    numSamples: Options.integer("num-samples").pipe(Options.withDefault(1), Options.withDescription("how many continuations; sample i uses seed + i")),
    stop: Options.text("stop").pipe(Options.repeated, Options.withDescription("stop when this text appears (not printed)")),
    json: Options.boolean("json").pipe(Options.withDescription("print one JSON object (prompt, settings, samples with text, token count and seconds) instead of text")),
    ...samplingOptions
  },
  (o) =>
    Effect.gen(function* () {
      const sampling = samplingFrom(o)
      const invalid = validateSampling(sampling)
      if (invalid) return yield* new InvalidFlag({ flag: `--${invalid.field.replace(/_/g, "-")}`, value: String(invalid.value), expected: invalid.expected })
      if (o.numSamples < 1) return yield* new InvalidFlag({ flag: "--num-samples", value: String(o.numSamples), expected: "an integer ≥ 1" })
      if (o.maxNewTokens < 1) return yield* new InvalidFlag({ flag: "--max-new-tokens", value: String(o.maxNewTokens), expected: "an integer ≥ 1" })
      if (o.seed < 0) return yield* new InvalidFlag({ flag: "--seed", value: String(o.seed), expected: "an integer ≥ 0" })
      const fromFile = Option.isSome(o.promptFile) && o.promptFile.value !== "-" ? yield* promptSource(o) : undefined
      const { model, encoding, backend } = yield* loadModel(o.checkpoint, o.tokenizer, o.heads)
      const promptText = Option.getOrElse(fromFile ?? (yield* promptSource(o)), () => "")
      const prompt = promptText === "" ? [encoding.eot] : encoding.encode(promptText)
      const samples: Array<Answer & { seed: number }> = []
      yield* Effect.gen(function* () {
        for (let i = 0; i < o.numSamples; i++) {
          const seed = o.seed + i
          if (!o.json) {
            if (o.numSamples > 1) yield* write(`${i === 0 ? "" : "\n"}--- sample ${i + 1} of ${o.numSamples} (seed ${seed}) ---\n`)
            yield* write(promptText)
          }
          const r = yield* answer(model, encoding, prompt, sampling, { maxNewTokens: o.maxNewTokens, seed, stop: o.stop, ...(o.json ? { emit: () => {} } : {}) })
          samples.push({ ...r, seed })
          if (!o.json) {
            yield* write("\n")
            yield* note(`${rate(r, backend)}\n`)
          }
        }
      }).pipe(Effect.ensuring(Effect.sync(() => model.dispose())))
      if (o.json) {
        const result = {
          checkpoint: o.checkpoint,
          backend,
          tokenizer: encoding.name,
          prompt: promptText,
          prompt_tokens: prompt.length,
          preset: o.preset,
          sampling: samplingSettings(sampling),
          "max-new-tokens": o.maxNewTokens,
          samples: samples.map((s) => ({ seed: s.seed, text: s.text, tokens: s.count, seconds: Number(s.seconds.toFixed(3)) }))
        }
        yield* write(JSON.stringify(result, null, 2) + "\n")
      }
    }).pipe(Effect.provide(TensorBackendLive(o.backend)))
).pipe(
  Command.withDescription(`Continue a prompt, printing text as it is produced.
The prompt comes from --prompt, --prompt-file, or stdin. Only the text goes to stdout; the speed line and notes go to stderr.
Examples:
glassbox generate runs/tiny --prompt "The whale" --preset precise --max-new-tokens 60
echo "The whale" | glassbox generate runs/tiny --num-samples 3 --max-new-tokens 20
glassbox generate runs/tiny --prompt "Call me" --json --max-new-tokens 20`)
)

/** Chat's /set fields, spelled as the command-line flags (an underscore or a leading -- is accepted too). */
const chatFields = ["temperature", "top-k", "top-p", "min-p", "repetition-penalty", "max-new-tokens", "seed"] as const
const chatFieldName = (raw: string) => raw.replace(/^--/, "").replace(/_/g, "-")

const chatHelp = `commands:
  /preset <name>        switch sampling preset (${presetNames.join(", ")})
  /set <field> <value>  ${chatFields.join(", ")} (as the flags are spelled)
  /show                 the current settings
  /reset                forget the conversation
  /help                 this text
  /quit                 leave (Ctrl-D too); Ctrl-C stops an answer being written`

export const chatCommand = Command.make("chat", { checkpoint: checkpointArg, ...samplingOptions }, (o) =>
  Effect.gen(function* () {
    const invalid = validateSampling(samplingFrom(o))
    if (invalid) return yield* new InvalidFlag({ flag: `--${invalid.field.replace(/_/g, "-")}`, value: String(invalid.value), expected: invalid.expected })
    if (o.maxNewTokens < 1) return yield* new InvalidFlag({ flag: "--max-new-tokens", value: String(o.maxNewTokens), expected: "an integer ≥ 1" })
    if (o.seed < 0) return yield* new InvalidFlag({ flag: "--seed", value: String(o.seed), expected: "an integer ≥ 0" })
    const { model, encoding, backend } = yield* loadModel(o.checkpoint, o.tokenizer, o.heads)
    let sampling = samplingFrom(o)
    let preset: string = o.preset
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
    yield* write(
      `chatting with ${o.checkpoint} (${model.config.layers} layers, context ${model.config.context}, ${backend}); /help for commands\n` +
        `(a base model continues text rather than answering: your line and "Model:" are its prompt, and it writes what it finds likely next)\n> `
    )
    const settings = () =>
      `settings: preset ${preset}, ${Object.entries({ ...samplingSettings(sampling), "max-new-tokens": maxNewTokens, seed })
        .filter(([, v]) => v !== null)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}\n`
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
            preset = name
            yield* write(`preset ${name}\n`)
          } else yield* write(`unknown preset "${rest[0] ?? ""}"; one of ${presetNames.join(", ")}\n`)
        } else if (command === "set") {
          const [rawField, raw] = rest
          const field = rawField === undefined ? undefined : chatFieldName(rawField)
          const value = Number(raw)
          const setters: Record<(typeof chatFields)[number], (v: number) => void> = {
            temperature: (v) => (sampling = { ...sampling, greedy: false, temperature: v }),
            "top-k": (v) => (sampling = { ...sampling, topK: v }),
            "top-p": (v) => (sampling = { ...sampling, topP: v }),
            "min-p": (v) => (sampling = { ...sampling, minP: v }),
            "repetition-penalty": (v) => (sampling = { ...sampling, repetitionPenalty: v }),
            "max-new-tokens": (v) => (maxNewTokens = v),
            seed: (v) => (seed = v)
          }
          const setter = field !== undefined && (chatFields as readonly string[]).includes(field) ? setters[field as (typeof chatFields)[number]] : undefined
          if (setter === undefined || raw === undefined || raw.trim() === "" || !Number.isFinite(value)) yield* write(`usage: /set <${chatFields.join("|")}> <number>\n`)
          else {
            const before = { sampling, maxNewTokens, seed }
            setter(value)
            const invalid =
              validateSampling(sampling) ??
              (Number.isInteger(maxNewTokens) && maxNewTokens >= 1 ? undefined : { field: "max-new-tokens", value: maxNewTokens, expected: "an integer ≥ 1" }) ??
              (Number.isInteger(seed) && seed >= 0 ? undefined : { field: "seed", value: seed, expected: "an integer ≥ 0" })
            if (invalid) {
              ;({ sampling, maxNewTokens, seed } = before)
              yield* write(`${invalid.field.replace(/_/g, "-")} = ${invalid.value} is invalid: expected ${invalid.expected}\n`)
            } else {
              if (field !== "max-new-tokens" && field !== "seed") preset = `${preset.replace(/ \(modified\)$/, "")} (modified)`
              yield* write(`${field} = ${value}\n`)
            }
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
      yield* write(`${aborted ? "\n[stopped]" : ""}\n`)
      yield* note(`${rate(r, backend)}\n`)
      yield* write("> ")
      seed++
    }
    rl.close()
    process.off("SIGINT", onSigint)
    model.dispose()
    yield* write("\n")
  }).pipe(Effect.provide(TensorBackendLive(o.backend)))
).pipe(
  Command.withDescription(`Talk to a model: a REPL with history; Ctrl-C stops the current answer.
Commands inside: /preset <name>, /set <field> <value> (fields spelled as the flags: /set top-k 40), /show, /reset, /help, /quit.
Example: glassbox chat runs/tiny --preset precise`)
)
