// The progress display: one line rewritten in place on a terminal, plain lines (about fifty per
// run, plus the first and the last) when output goes to a file or a pipe.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { formatDuration, makeProgress, progressLine } from "../../src/train/progress.ts"
import type { StepResult } from "../../src/train/trainer.ts"

const result = (step: number): StepResult => ({ step, loss: 3.14159, gradNorm: 1, lr: 3e-4, tokens: 512, ms: 100, tokensPerSecond: 5120, skipped: false })

const fakeStream = (isTTY: boolean) => {
  const chunks: string[] = []
  return { stream: { isTTY, write: (s: string) => chunks.push(s) > 0 } as unknown as NodeJS.WriteStream, chunks }
}

describe("progress", () => {
  it("formats step/total, loss, tokens/s, lr and ETA", () => {
    expect(progressLine(result(50), 200, 10, 0)).toBe("step  50/200 | loss 3.1416 | 5,120 tok/s | lr 3.00e-4 | ETA 30s")
    expect(formatDuration(3725)).toBe("1h 02m")
    expect(formatDuration(75)).toBe("1m 15s")
  })

  it.effect("degrades to plain lines when output is not a terminal", () =>
    Effect.gen(function* () {
      const { stream, chunks } = fakeStream(false)
      const p = makeProgress(1000, 0, stream)
      for (let s = 1; s <= 1000; s++) yield* p.step(result(s))
      yield* p.done
      expect(chunks.every((c) => c.endsWith("\n") && !c.includes("\r"))).toBe(true)
      expect(chunks.length).toBe(51)
      expect(chunks[0]).toContain("step    1/1000")
      expect(chunks[chunks.length - 1]).toContain("step 1000/1000")
    })
  )

  it.effect("rewrites one line on a terminal, and notes go on lines of their own", () =>
    Effect.gen(function* () {
      const { stream, chunks } = fakeStream(true)
      const p = makeProgress(10, 0, stream)
      yield* p.step(result(1))
      yield* p.step(result(2))
      yield* p.note("step 2: held-out loss 3.0")
      yield* p.step(result(3))
      yield* p.done
      expect(chunks[0].startsWith("\r\x1b[2K")).toBe(true)
      expect(chunks[1].startsWith("\r\x1b[2K")).toBe(true)
      expect(chunks.slice(2, 4)).toEqual(["\n", "step 2: held-out loss 3.0\n"])
      expect(chunks[chunks.length - 1]).toBe("\n")
    })
  )
})
