// The menu takes a model reference wherever it asks for a model (generate, chat, the probes,
// eval): a run found under runs/, GPT-2 small by name, or one typed in (a checkpoint, a
// .safetensors file, a Hugging Face-style directory, hf:<owner>/<name>, a short name). A typed
// path that does not exist is refused at the prompt, naming what would have been accepted; a
// Hub reference is accepted as typed and left to the command (which downloads it once). Driven
// through a real pseudo-terminal like test/cli/menu.test.ts, in a scratch directory without runs.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { modelReferenceProblem } from "../../src/cli/menu.ts"
import { writeHfDirectory } from "../../src/model/hf-export.ts"
import { tinyConfig, tinyModel, useBackend } from "../helpers.ts"
import { KEYS, menuSession } from "./pty-session.ts"

// Offline: nothing here may reach for the Hub.
const session = (cwd: string) => menuSession(cwd, { COLUMNS: "200", HF_HUB_OFFLINE: "1", GLASSBOX_CACHE: path.join(cwd, "cache") })

describe("menu: model references", () => {
  it("accepts existing paths, hf: and the short names; refuses a path that does not exist, saying what would do", () => {
    const exists = (p: string) => p === "runs/tiny" || p === "gpt2"
    expect(modelReferenceProblem("runs/tiny", exists)).toBeUndefined()
    expect(modelReferenceProblem("gpt2-medium", exists)).toBeUndefined()
    expect(modelReferenceProblem("distilgpt2", exists)).toBeUndefined()
    expect(modelReferenceProblem("hf:openai-community/gpt2@main", exists)).toBeUndefined()
    // A directory called gpt2 is yours, and exists: accepted as a path.
    expect(modelReferenceProblem("gpt2", exists)).toBeUndefined()
    expect(modelReferenceProblem("runs/nope", exists)).toBe("runs/nope does not exist (nor is it hf:<owner>/<name> or one of gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2)")
    expect(modelReferenceProblem("hf:a/b@", exists)).toContain('model reference "hf:a/b@": expected hf:<owner>/<name>')
    expect(modelReferenceProblem("  ", exists)).toBe("a model, please (Esc goes back)")
  })

  it("generates from a typed Hugging Face-style directory, offers gpt2 by name, takes hf: as typed", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-menu-refs-"))
    await useBackend("wasm")
    const model = tinyModel(tinyConfig({ vocabSize: 257, context: 16, dModel: 16, heads: 2, dFF: 32 }))
    await Effect.runPromise(writeHfDirectory(model, "bytes", path.join(dir, "hf-model"), "tiny"))
    model.dispose()
    const s = session(dir)
    const act = async (keys: string[], then: string) => {
      await s.press(...keys)
      await s.waitFor(then)
    }
    const MENU = "What would you like to do?"
    await s.waitFor(MENU)
    // Generate: no runs, but gpt2 and "another model…" are offered.
    await act([KEYS.down, KEYS.enter], "No runs found under runs/: train one first")
    await s.waitFor("gpt2")
    await s.waitFor("another model…")
    // A path that does not exist is refused at the prompt; the one typed next is taken.
    await act([KEYS.down, KEYS.enter], "Model (a run, checkpoint, .safetensors file, Hugging Face directory")
    await s.type("nope")
    await act([KEYS.enter], "nope does not exist (nor is it hf:<owner>/<name> or one of gpt2")
    await s.press(KEYS.backspace, KEYS.backspace, KEYS.backspace, KEYS.backspace)
    await s.type("hf-model")
    await act([KEYS.enter], "Sampling preset?")
    await act([KEYS.enter], "Prompt:")
    await s.type("ab")
    await act([KEYS.enter], "$ glassbox generate hf-model --preset greedy --prompt ab")
    await s.waitFor("tokens/s on wasm")
    await s.waitFor(MENU)
    // Chat offers gpt2 by name: picking it goes on to the preset (Esc twice: back to the menu, nothing fetched).
    await act([KEYS.down, KEYS.down, KEYS.enter], "No runs found under runs/")
    await act([KEYS.enter], "Sampling preset?")
    await act([KEYS.esc], "No runs found under runs/")
    await act([KEYS.esc], "(cancelled)")
    await s.waitFor(MENU)
    // The probes take hf: as typed (the command would download it; Esc goes back before it runs).
    await act([KEYS.down, KEYS.down, KEYS.down, KEYS.enter], "No runs found under runs/")
    await act([KEYS.down, KEYS.enter], "Model (a run")
    await s.type("hf:openai-community/gpt2")
    await act([KEYS.enter], "Which probe?")
    await act([KEYS.esc], "Model (a run")
    await act([KEYS.esc], "No runs found under runs/")
    await act([KEYS.esc], "(cancelled)")
    await s.waitFor(MENU)
    await s.press(KEYS.ctrlC)
    expect(await s.exited).toBe(0)
    expect(s.text()).not.toMatch(/\n\s+at .*\(/)
    expect(fs.existsSync(path.join(dir, "cache", "models"))).toBe(false)
    fs.rmSync(dir, { recursive: true, force: true })
  }, 300_000)
})
