// A note that arrives while generated text is streaming (the context filled) is written at the
// next whitespace, never inside a word, when text and notes share a terminal.
import { describe, expect, it } from "@effect/vitest"
import { wordBoundaryNotes } from "../../src/cli/generate-commands.ts"

const screen = () => {
  let shown = ""
  const out = wordBoundaryNotes((s) => (shown += s), (m) => (shown += `[${m}]`))
  return { out, shown: () => shown }
}

describe("notes between streamed words", () => {
  it("a note arriving mid-word waits for the next whitespace", () => {
    const s = screen()
    s.out.text("The wh")
    s.out.note("context full")
    s.out.text("ale")
    s.out.text("s swim")
    expect(s.shown()).toBe("The whales[context full] swim")
  })

  it("a note at a word boundary is written at once; one still pending at the end is flushed", () => {
    const s = screen()
    s.out.text("The ")
    s.out.note("first")
    s.out.text("whale")
    s.out.note("second")
    s.out.text("")
    s.out.flush()
    expect(s.shown()).toBe("The [first]whale[second]")
  })
})
