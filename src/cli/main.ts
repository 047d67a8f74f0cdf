// The `glassbox` command. One runtime, created here; each subcommand is a thin wrapper that
// loads a config or a checkpoint and runs a pipeline or a service.
import { Args, Command, Options } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Chunk, Effect, Layer, Option, Stream } from "effect"
import { TensorBackendLive } from "../backend/backend.ts"
import { resolveWeightsPath } from "../checkpoint/checkpointer.ts"
import { BackendSetting } from "../config/schema.ts"
import { generateTokens } from "../generate/generator.ts"
import { presetNames, presets, type SamplingOptions } from "../generate/sampling.ts"
import { loadWeights } from "../model/weights.ts"
import { makeEncoding, tokenizerNames, type TokenizerName } from "../tokenizer/tokenizer.ts"
import { toExitCode } from "./errors.ts"
import { compareCommand, evalCommand, plotCommand, resumeCommand, runCommand, trainCommand } from "./train-commands.ts"
import { walkthroughCommand } from "./walkthrough-command.ts"

const backendOption = Options.choice("backend", BackendSetting.literals).pipe(Options.withDefault("auto" as const), Options.withDescription("tensor backend"))

const generate = Command.make(
  "generate",
  {
    checkpoint: Args.text({ name: "checkpoint" }).pipe(Args.withDescription("a run directory, a checkpoint directory or a .safetensors file")),
    prompt: Options.text("prompt").pipe(Options.withDefault(""), Options.withDescription("text to continue (empty: start from end-of-text)")),
    preset: Options.choice("preset", presetNames).pipe(Options.withDefault("balanced" as const)),
    temperature: Options.float("temperature").pipe(Options.optional),
    topK: Options.integer("top-k").pipe(Options.optional),
    topP: Options.float("top-p").pipe(Options.optional),
    maxNewTokens: Options.integer("max-new-tokens").pipe(Options.withDefault(100)),
    seed: Options.integer("seed").pipe(Options.withDefault(0)),
    tokenizer: Options.choice("tokenizer", tokenizerNames).pipe(Options.optional, Options.withDescription("override the tokenizer recorded in the weights")),
    backend: backendOption
  },
  (o) =>
    Effect.gen(function* () {
      const weights = yield* resolveWeightsPath(o.checkpoint)
      const { model, tokenizer } = yield* loadWeights(weights)
      const encoding = makeEncoding(Option.getOrElse(o.tokenizer, () => (tokenizer ?? "gpt2") as TokenizerName))
      const base = presets[o.preset]
      const sampling: SamplingOptions = {
        ...base,
        temperature: Option.getOrElse(o.temperature, () => base.temperature),
        topK: Option.getOrElse(o.topK, () => base.topK),
        topP: Option.getOrElse(o.topP, () => base.topP)
      }
      const prompt = o.prompt === "" ? [encoding.eot] : encoding.encode(o.prompt)
      process.stdout.write(o.prompt)
      const started = performance.now()
      const ids: number[] = []
      yield* generateTokens(model, prompt, { maxNewTokens: o.maxNewTokens, sampling, seed: o.seed, stopToken: encoding.eot }).pipe(
        Stream.tap((id) =>
          Effect.sync(() => {
            // Print the text as it grows, so multi-byte characters split across tokens come out whole.
            const before = encoding.decode(ids)
            ids.push(id)
            const after = encoding.decode(ids)
            if (!after.endsWith("\uFFFD")) process.stdout.write(after.slice(before.replace(/\uFFFD+$/, "").length))
          })
        ),
        Stream.runDrain
      )
      const seconds = (performance.now() - started) / 1000
      process.stdout.write(`\n\n[${ids.length} tokens in ${seconds.toFixed(2)}s, ${(ids.length / seconds).toFixed(1)} tokens/s]\n`)
      model.dispose()
    }).pipe(Effect.provide(TensorBackendLive(o.backend)))
).pipe(Command.withDescription('Continue a prompt. Example: glassbox generate runs/tiny --prompt "The whale" --preset precise'))

const glassbox = Command.make("glassbox").pipe(
  Command.withDescription("A GPT you can train, run and take apart."),
  Command.withSubcommands([runCommand, trainCommand, resumeCommand, evalCommand, compareCommand, plotCommand, generate, walkthroughCommand])
)

const cli = Command.run(glassbox, { name: "glassbox", version: "0.1.0" })

const exitCode = await Effect.runPromise(toExitCode(cli(process.argv).pipe(Effect.provide(NodeContext.layer))))
process.exit(exitCode)
