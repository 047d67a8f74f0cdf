// The interactive menu, driven through a real pseudo-terminal (util-linux `script`): "train one
// first" before any run exists; training (continued and fresh), generation, the probes (patching
// too), the walkthrough, resume with a typed run path, data and configs; Esc goes back one prompt
// and, at an action's first prompt, to the menu; leave with Ctrl-C. Runs in a scratch directory with its own config/ and runs/.
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { KEYS, menuSession } from "./pty-session.ts"

const session = (cwd: string) => menuSession(cwd)

describe("interactive menu", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-menu-"))
  fs.mkdirSync(path.join(dir, "config"))
  fs.writeFileSync(
    path.join(dir, "config", "quick.json"),
    JSON.stringify({
      run: { dir: "runs/quick" },
      backend: "wasm",
      tokenizer: "bytes",
      model: { layers: 1, heads: 2, d_model: 16, d_ff: 32, context: 16 },
      data: { val_fraction: 0.05 },
      train: { steps: 50, batch: 2, warmup_steps: 1 },
      eval: { every: 0, tokens: 256 },
      checkpoint: { every: 0 },
      generate: { max_new_tokens: 5 }
    })
  )

  it("trains, generates, probes, walks through, resumes, shows data and configs; Esc goes back one level; Ctrl-C leaves", async () => {
    const s = session(dir)
    /** Presses keys, then waits for the screen to show `then`. */
    const act = async (keys: string[], then: string) => {
      await s.press(...keys)
      await s.waitFor(then)
    }
    const MENU = "What would you like to do?"
    const cancelled = async () => {
      await act([KEYS.esc], "(cancelled)")
      await s.waitFor(MENU)
    }
    await s.waitFor(MENU)
    // No runs yet: a model-taking action says to train one first; Esc goes back to the menu.
    await act([KEYS.down, KEYS.enter], "No runs found under runs/: train one first")
    await cancelled()
    // Train: Esc at the steps prompt goes back one level, to the config list; Esc there, to the menu.
    await act([KEYS.enter], "Which config?")
    await act([KEYS.enter], "Steps")
    await act([KEYS.esc], "Which config?")
    await cancelled()
    await act([KEYS.enter], "Which config?")
    await act([KEYS.enter], "Steps")
    await s.type("2")
    await act([KEYS.enter], "$ glassbox run config/quick.json --set train.steps=2")
    await s.waitFor("saved runs/quick/checkpoints/step-00000002")
    await s.waitFor(MENU)
    // Generate: Esc walks back prompt by prompt, then out; then generate for real.
    await act([KEYS.down, KEYS.enter], "Which model?")
    await act([KEYS.enter], "Sampling preset?")
    await act([KEYS.enter], "Prompt:")
    await act([KEYS.esc], "Sampling preset?")
    await act([KEYS.esc], "Which model?")
    await cancelled()
    await act([KEYS.down, KEYS.enter], "Which model?")
    await act([KEYS.enter], "Sampling preset?")
    await act([KEYS.enter], "Prompt:")
    await s.type("ab")
    await act([KEYS.enter], "tokens/s on wasm")
    await s.waitFor(MENU)
    // A probe: Esc at the probe list goes back to the model list; then the logit lens on a text.
    const toProbes = [KEYS.down, KEYS.down, KEYS.down, KEYS.enter]
    await act(toProbes, "Which model?")
    await act([KEYS.enter], "Which probe?")
    await act([KEYS.esc], "Which model?")
    await cancelled()
    await act(toProbes, "Which model?")
    await act([KEYS.enter], "Which probe?")
    await act([KEYS.enter], "Text to analyse:")
    await s.type("abcab")
    await act([KEYS.enter], "$ glassbox interpret logit-lens runs/quick --text abcab")
    await s.waitFor(MENU)
    // Activation patching, with its four prompts.
    await act(toProbes, "Which model?")
    await act([KEYS.enter], "Which probe?")
    await act([KEYS.down, KEYS.down, KEYS.down, KEYS.enter], "Clean prompt:")
    await s.type("abcab")
    await act([KEYS.enter], "Corrupted prompt")
    await s.type("abdab")
    await act([KEYS.enter], "The clean prompt's answer")
    await s.type("c")
    await act([KEYS.enter], "The corrupted prompt's answer")
    await s.type("d")
    await act([KEYS.enter], '$ glassbox interpret patch runs/quick --clean abcab --corrupted abdab --answer c --wrong d')
    await s.waitFor(MENU)
    // The walkthrough, one stage.
    const toWalkthrough = [KEYS.down, KEYS.down, KEYS.down, KEYS.down, KEYS.enter]
    await act(toWalkthrough, "Which stage?")
    await cancelled()
    await act(toWalkthrough, "Which stage?")
    await act([KEYS.down, KEYS.down, KEYS.enter], "$ glassbox walkthrough --stage init")
    await s.waitFor(MENU)
    // Resume, picking the run directory by path.
    const down = (n: number) => Array.from({ length: n }, () => KEYS.down)
    await act([...down(5), KEYS.enter], "Which model?")
    await act([KEYS.down, KEYS.enter], "Path to a run")
    await s.type("runs/quick")
    await act([KEYS.enter], "Train up to step")
    await s.type("3")
    await act([KEYS.enter], "$ glassbox resume runs/quick --set train.steps=3")
    await s.waitFor("resuming runs/quick at step 2")
    await s.waitFor(MENU)
    // Train the same config again: its run exists, so continue it or start fresh (Esc goes back to Steps).
    await act([KEYS.enter], "Which config?")
    await act([KEYS.enter], "Steps")
    await s.type("2")
    await act([KEYS.enter], "already holds a run")
    await act([KEYS.esc], "Steps")
    await s.type("2")
    await act([KEYS.enter], "already holds a run")
    await act([KEYS.down, KEYS.enter], "$ glassbox run config/quick.json --set train.steps=2 --fresh")
    await s.waitFor("moved the previous run in runs/quick to runs/quick.previous")
    await s.waitFor("saved runs/quick/checkpoints/step-00000002")
    await s.waitFor(MENU)
    // Data and configs.
    await act([...down(9), KEYS.enter], "Which data task?")
    await act([KEYS.enter], "$ glassbox data list")
    await s.waitFor(MENU)
    await act([...down(10), KEYS.enter], "Which config task?")
    await act([KEYS.enter], "Which config?")
    await act([KEYS.esc], "Which config task?")
    await act([KEYS.enter], "Which config?")
    await act([KEYS.enter], "$ glassbox config show config/quick.json")
    await s.waitFor('"steps": 50')
    await s.waitFor(MENU)
    // Leave.
    await s.press(KEYS.ctrlC)
    expect(await s.exited).toBe(0)
    expect(s.text()).not.toMatch(/\n\s+at .*\(/) // never a stack trace
  }, 480_000)
})
