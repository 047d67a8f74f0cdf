// `glassbox` with no arguments in a terminal: an interactive menu. Pick an action, then a config,
// a checkpoint from the runs found, a preset; each choice becomes an ordinary command line, run
// by the same CLI, so the menu can do nothing the commands cannot. Esc at any prompt returns to
// the menu (Esc or Ctrl-C there leaves); a failing action prints its one-line error and returns.
import { Prompt } from "@effect/cli"
import { NodeFileSystem, NodePath, NodeTerminal } from "@effect/platform-node"
import { Terminal } from "@effect/platform/Terminal"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { presetNames } from "../generate/sampling.ts"
import { STAGE_NAMES } from "../walkthrough/index.ts"
import { describeFailure } from "./errors.ts"

/** What the prompts need: a terminal on which Esc cancels a prompt as Ctrl-C and Ctrl-D do. */
export const menuLayer = Layer.mergeAll(
  NodeFileSystem.layer,
  NodePath.layer,
  Layer.scoped(Terminal, NodeTerminal.make((input) => (input.key.ctrl && (input.key.name === "c" || input.key.name === "d")) || input.key.name === "escape"))
)

/** Run directories with a checkpoint, newest first. */
export const findRuns = (root = "runs"): string[] => {
  if (!fs.existsSync(root)) return []
  return fs
    .readdirSync(root)
    .map((name) => path.join(root, name))
    .filter((dir) => fs.existsSync(path.join(dir, "latest")))
    .sort((a, b) => fs.statSync(path.join(b, "latest")).mtimeMs - fs.statSync(path.join(a, "latest")).mtimeMs)
}

/** Configs in config/, with their pipeline. */
export const findConfigs = (root = "config"): Array<{ file: string; pipeline: string }> => {
  if (!fs.existsSync(root)) return []
  return fs
    .readdirSync(root)
    .filter((f) => f.endsWith(".json") && !f.endsWith(".schema.json"))
    .sort()
    .map((f) => {
      const file = path.join(root, f)
      let pipeline = "pretrain"
      try {
        pipeline = (JSON.parse(fs.readFileSync(file, "utf8")) as { pipeline?: string }).pipeline ?? "pretrain"
      } catch {
        pipeline = "invalid JSON"
      }
      return { file, pipeline }
    })
}

type Action = "train" | "generate" | "chat" | "interpret" | "walkthrough" | "evaluate" | "compare" | "plot" | "quit"

const actions: Array<{ title: string; value: Action; description: string }> = [
  { title: "Train a model", value: "train", description: "run a config from config/" },
  { title: "Generate text", value: "generate", description: "continue a prompt with a trained model" },
  { title: "Chat", value: "chat", description: "talk to a trained model" },
  { title: "Open a model up", value: "interpret", description: "logit lens, attention heads, induction heads" },
  { title: "Walk through one step by hand", value: "walkthrough", description: "every number of one training step" },
  { title: "Evaluate a run", value: "evaluate", description: "held-out loss of its newest checkpoint" },
  { title: "Compare checkpoints", value: "compare", description: "every checkpoint of a run, best first" },
  { title: "Plot a run", value: "plot", description: "loss and learning-rate curves as HTML" },
  { title: "Quit", value: "quit", description: "" }
]

const pickRun = Effect.suspend(() => {
  const runs = findRuns()
  return runs.length === 0
    ? Prompt.run(Prompt.text({ message: "No runs found under runs/. Path to a run, checkpoint or .safetensors file:" }))
    : Prompt.run(Prompt.select({ message: "Which model?", choices: runs.map((r) => ({ title: r, value: r })) }))
})

const pickPreset = Prompt.run(
  Prompt.select({ message: "Sampling preset?", choices: presetNames.map((p) => ({ title: p, value: p, selected: p === "balanced" })) })
)

/** The command line for an action, asked for prompt by prompt (fails with QuitException on Esc). */
const commandFor = (action: Exclude<Action, "quit">) =>
  Effect.gen(function* () {
    switch (action) {
      case "train": {
        const configs = findConfigs().filter((c) => c.pipeline === "pretrain")
        const file = yield* Prompt.run(Prompt.select({ message: "Which config?", choices: configs.map((c) => ({ title: c.file, value: c.file })) }))
        const steps = yield* Prompt.run(
          Prompt.text({
            message: "Steps (empty: the config's own):",
            validate: (s) => (s === "" || /^[1-9]\d*$/.test(s) ? Effect.succeed(s) : Effect.fail("a positive whole number, or empty"))
          })
        )
        return ["run", file, ...(steps === "" ? [] : ["--set", `train.steps=${steps}`])]
      }
      case "generate": {
        const run = yield* pickRun
        const preset = yield* pickPreset
        const prompt = yield* Prompt.run(Prompt.text({ message: "Prompt:" }))
        return ["generate", run, "--preset", preset, "--prompt", prompt]
      }
      case "chat": {
        const run = yield* pickRun
        const preset = yield* pickPreset
        return ["chat", run, "--preset", preset]
      }
      case "interpret": {
        const run = yield* pickRun
        const probe = yield* Prompt.run(
          Prompt.select({
            message: "Which probe?",
            choices: [
              { title: "logit lens", value: "logit-lens", description: "what each layer would predict" },
              { title: "attention heads", value: "attention", description: "score and label every head" },
              { title: "induction heads", value: "induction", description: "random tokens repeated twice" }
            ]
          })
        )
        if (probe === "induction") return ["interpret", "induction", run, "--repeat", "20", "--batch", "4"]
        const text = yield* Prompt.run(Prompt.text({ message: "Text to analyse:", validate: (s) => (s.trim() === "" ? Effect.fail("some text, please") : Effect.succeed(s)) }))
        return ["interpret", probe, run, "--text", text]
      }
      case "walkthrough": {
        const stage = yield* Prompt.run(
          Prompt.select({ message: "Which stage?", choices: [{ title: "all of them", value: "" }, ...STAGE_NAMES.map((s) => ({ title: s, value: s }))] })
        )
        return ["walkthrough", ...(stage === "" ? [] : ["--stage", stage])]
      }
      case "evaluate":
        return ["eval", yield* pickRun]
      case "compare":
        return ["compare", yield* pickRun]
      case "plot":
        return ["plot", yield* pickRun]
    }
  })

/**
 * The menu loop. `runCommand` runs one command line (the CLI itself); its failures are printed
 * as one line and the menu continues.
 */
export const menu = <E, R>(runCommand: (args: string[]) => Effect.Effect<void, E, R>): Effect.Effect<void, never, R | Prompt.Prompt.Environment> =>
  Effect.gen(function* () {
    process.stdout.write("glassbox — a GPT you can train, run and take apart. Esc goes back, Ctrl-C leaves.\n")
    for (;;) {
      const choice = yield* Prompt.run(Prompt.select({ message: "What would you like to do?", choices: actions })).pipe(Effect.orElseSucceed(() => "quit" as const))
      if (choice === "quit") return
      const args = yield* commandFor(choice).pipe(Effect.option)
      if (args._tag === "None") {
        process.stdout.write("\n(cancelled)\n")
        continue
      }
      process.stdout.write(`$ glassbox ${args.value.map((a) => (/^[\w./=:-]+$/.test(a) ? a : JSON.stringify(a))).join(" ")}\n`)
      yield* runCommand(args.value).pipe(
        Effect.catchAllCause((cause) => Effect.sync(() => process.stdout.write(`glassbox: ${describeFailure(cause._tag === "Fail" ? cause.error : cause)}\n`)))
      )
    }
  })
