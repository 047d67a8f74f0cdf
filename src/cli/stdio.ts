// Why this file exists: a command's output must survive any pipe. Node writes to a pipe
// asynchronously once the pipe's 64 KiB buffer is full, so exiting right after a large write
// loses the rest (`glassbox walkthrough | wc -c`); and a reader that stops early (`| head`)
// makes the next write fail with EPIPE, which must end the command quietly, not with a trace.

let quietExitInstalled = false

/** A reader that closed the pipe has all it wanted: exit 0 without a word. */
export const exitQuietlyOnClosedPipe = (): void => {
  if (quietExitInstalled) return
  quietExitInstalled = true
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EPIPE" || error.code === "ERR_STREAM_DESTROYED") process.exit(0)
      throw error
    })
  }
}

/** Resolves once everything written so far to `stream` has been handed to the OS. */
const drained = (stream: NodeJS.WriteStream): Promise<void> =>
  new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve()
    // The callback of an empty write runs after every earlier chunk has been flushed.
    stream.write("", () => resolve())
  })

/** Waits until stdout and stderr are flushed, then exits with `code`. */
export const exitAfterFlush = async (code: number): Promise<never> => {
  await Promise.all([drained(process.stdout), drained(process.stderr)])
  process.exit(code)
}

/** Whether to colour output written to `stream`: a terminal, and NO_COLOR unset or empty. */
export const colorFor = (stream: NodeJS.WriteStream): boolean => stream.isTTY === true && (process.env.NO_COLOR ?? "") === ""
