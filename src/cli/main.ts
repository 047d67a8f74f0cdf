// The `glassbox` command. One runtime, created here; each subcommand is a thin wrapper that
// loads a config or a checkpoint and runs a pipeline or a service. With no arguments in a
// terminal it opens the interactive menu instead. The command line is checked against the
// command tree first (help.ts): help, "did you mean" and flag-naming errors come from there;
// then @effect/cli parses and runs it. Importing this file runs nothing (bin/glassbox.js calls
// runMain()), so tests can read the command tree. Output is flushed before the process exits, so nothing
// is lost in a pipe, and a reader that closes the pipe early ends the command quietly.
import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { configCommand } from "./config-commands.ts"
import { dataCommand } from "./data-commands.ts"
import { exportCommand, importCommand } from "./export-commands.ts"
import { toExitCode } from "./errors.ts"
import { outline, planCommandLine, renderHelp } from "./help.ts"
import { interpretCommand } from "./interpret-commands.ts"
import { chatCommand, generateCommand } from "./generate-commands.ts"
import { menu, menuLayer } from "./menu.ts"
import { colorFor, exitAfterFlush, exitQuietlyOnClosedPipe } from "./stdio.ts"
import { compareCommand, evalCommand, plotCommand, resumeCommand, runCommand, trainCommand } from "./train-commands.ts"
import { walkthroughCommand } from "./walkthrough-command.ts"

export const version = "0.1.0"
export const glassbox = Command.make("glassbox").pipe(
  Command.withDescription("A GPT you can train, run and take apart."),
  Command.withSubcommands([runCommand, trainCommand, resumeCommand, evalCommand, compareCommand, plotCommand, generateCommand, chatCommand, interpretCommand, walkthroughCommand, dataCommand, exportCommand, importCommand, configCommand])
)

const cli = Command.run(glassbox, { name: "glassbox", version })
const runArgs = (args: readonly string[]) => cli([process.argv[0], process.argv[1], ...args]).pipe(Effect.provide(NodeContext.layer))

/**
 * @effect/cli's completion scripts offer its generic `--wizard`, which glassbox refuses (the menu
 * is the interactive mode): the script is filtered as it is written, for bash, zsh, fish and sh.
 */
const withoutWizard = <A, E, R>(run: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const write = process.stdout.write.bind(process.stdout)
      process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8")
        const kept = text
          .split("\n")
          .filter((line) => !/-l wizard\b|'--wizard\[/.test(line))
          .map((line) => line.replace(/ --wizard\b/g, ""))
          .join("\n")
        return (write as (c: string, ...r: unknown[]) => boolean)(kept, ...rest)
      }) as typeof process.stdout.write
      return write
    }),
    () => run,
    (write) => Effect.sync(() => void (process.stdout.write = write))
  )

const main = (): Effect.Effect<number> => {
  const args = process.argv.slice(2)
  if (args.length === 0 && process.stdin.isTTY === true && process.stdout.isTTY === true) return toExitCode(menu(runArgs).pipe(Effect.provide(menuLayer)))
  const plan = planCommandLine(outline(glassbox), args)
  switch (plan._tag) {
    case "Help": {
      const note = plan.command.path.length === 0 ? "With no arguments in a terminal, glassbox opens an interactive menu." : undefined
      return Effect.sync(() => process.stdout.write(renderHelp(plan.command, { color: colorFor(process.stdout) }, { version, note }))).pipe(Effect.as(0))
    }
    case "Error":
      return Effect.sync(() => process.stderr.write(`${plan.message}\n`)).pipe(Effect.as(1))
    case "Run":
      return args.some((a) => a === "--completions" || a.startsWith("--completions=")) ? withoutWizard(toExitCode(runArgs(args))) : toExitCode(runArgs(args))
  }
}

/** Runs the command line of this process to its exit (bin/glassbox.js calls this; tests import the tree above). */
export const runMain = async (): Promise<never> => {
  exitQuietlyOnClosedPipe()
  return exitAfterFlush(await Effect.runPromise(main()))
}
