// How failures reach the user: a known failure (a tagged error from any service) prints one
// line naming what is wrong and where, and exits 1; anything unexpected is an internal error:
// one line, the full detail written to a log file, exit 2. Never a stack trace on the terminal.
import { Cause, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const firstLine = (s: string) => s.split("\n").find((l) => l.trim() !== "")?.trim() ?? s

/** A failure's one-line description. */
export const describeFailure = (error: unknown): string => {
  if (error !== null && typeof error === "object" && "message" in error && typeof error.message === "string" && error.message !== "") {
    return firstLine(error.message)
  }
  return firstLine(String(error))
}

const writeLog = (detail: string): string => {
  const file = path.join(os.tmpdir(), `glassbox-error-${process.pid}.log`)
  try {
    fs.writeFileSync(file, detail)
  } catch {
    return "(could not write the log)"
  }
  return file
}

/** Runs a program to its exit code, printing failures as one line on stderr. */
export const toExitCode = <A, E, R>(program: Effect.Effect<A, E, R>): Effect.Effect<number, never, R> =>
  program.pipe(
    Effect.as(0),
    Effect.catchAllCause((cause) =>
      Effect.sync(() => {
        if (Cause.isInterruptedOnly(cause)) return 130
        const failure = Cause.failureOption(cause)
        if (Option.isSome(failure)) {
          const e = failure.value as { _tag?: string }
          // @effect/cli has already printed its own usage errors.
          if (e?._tag !== "QuitException" && !isCliValidation(e)) process.stderr.write(`glassbox: ${describeFailure(e)}\n`)
          return 1
        }
        const defect = Cause.squash(cause)
        const log = writeLog(Cause.pretty(cause))
        process.stderr.write(`glassbox: internal error: ${describeFailure(defect)} (details in ${log})\n`)
        return 2
      })
    )
  )

const isCliValidation = (e: unknown) =>
  e !== null && typeof e === "object" && "_tag" in e && typeof e._tag === "string" &&
  ["CommandMismatch", "CorrectedFlag", "HelpRequested", "InvalidArgument", "InvalidValue", "MissingValue", "MissingFlag", "MultipleValuesDetected", "MissingSubcommand", "NoBuiltInMatch", "UnclusteredFlag"].includes(e._tag)
