// The `glassbox` command. One runtime, created here; each subcommand is a thin wrapper that
// loads a config or a checkpoint and runs a pipeline or a service.
import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { toExitCode } from "./errors.ts"
import { chatCommand, generateCommand } from "./generate-commands.ts"
import { compareCommand, evalCommand, plotCommand, resumeCommand, runCommand, trainCommand } from "./train-commands.ts"
import { walkthroughCommand } from "./walkthrough-command.ts"

const glassbox = Command.make("glassbox").pipe(
  Command.withDescription("A GPT you can train, run and take apart."),
  Command.withSubcommands([runCommand, trainCommand, resumeCommand, evalCommand, compareCommand, plotCommand, generateCommand, chatCommand, walkthroughCommand])
)

const cli = Command.run(glassbox, { name: "glassbox", version: "0.1.0" })

const exitCode = await Effect.runPromise(toExitCode(cli(process.argv).pipe(Effect.provide(NodeContext.layer))))
process.exit(exitCode)
