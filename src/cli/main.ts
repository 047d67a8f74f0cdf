// The `glassbox` command. One runtime, created here; each subcommand is a thin wrapper that
// loads a config or a checkpoint and runs a pipeline or a service. With no arguments in a
// terminal it opens the interactive menu instead.
import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { configCommand } from "./config-commands.ts"
import { dataCommand } from "./data-commands.ts"
import { exportCommand, importCommand } from "./export-commands.ts"
import { toExitCode } from "./errors.ts"
import { interpretCommand } from "./interpret-commands.ts"
import { chatCommand, generateCommand } from "./generate-commands.ts"
import { menu, menuLayer } from "./menu.ts"
import { compareCommand, evalCommand, plotCommand, resumeCommand, runCommand, trainCommand } from "./train-commands.ts"
import { walkthroughCommand } from "./walkthrough-command.ts"

const glassbox = Command.make("glassbox").pipe(
  Command.withDescription("A GPT you can train, run and take apart. Run it with no arguments in a terminal for an interactive menu."),
  Command.withSubcommands([runCommand, trainCommand, resumeCommand, evalCommand, compareCommand, plotCommand, generateCommand, chatCommand, interpretCommand, walkthroughCommand, dataCommand, exportCommand, importCommand, configCommand])
)

const cli = Command.run(glassbox, { name: "glassbox", version: "0.1.0" })
const runArgs = (args: readonly string[]) => cli([process.argv[0], process.argv[1], ...args]).pipe(Effect.provide(NodeContext.layer))

const interactive = process.argv.length <= 2 && process.stdin.isTTY === true && process.stdout.isTTY === true
const program = interactive ? menu(runArgs).pipe(Effect.provide(menuLayer)) : cli(process.argv).pipe(Effect.provide(NodeContext.layer))
const exitCode = await Effect.runPromise(toExitCode(program))
process.exit(exitCode)
