// `glassbox` with no arguments in a terminal: an interactive menu. Pick an action, then a config,
// a model (a run found under runs/, GPT-2 small by name, or any model reference typed in: a
// checkpoint, a .safetensors file, a Hugging Face directory, hf:<owner>/<name>), a preset; each
// choice becomes an ordinary command line, run
// by the same CLI, so the menu can do nothing the commands cannot. Esc goes back one prompt (at an
// action's first prompt, back to the menu; Esc or Ctrl-C at the menu leaves); a failing action
// prints its one-line error and returns to the menu.
import { Prompt } from "@effect/cli"
import { NodeFileSystem, NodePath, NodeTerminal } from "@effect/platform-node"
import { Terminal } from "@effect/platform/Terminal"
import { Effect, Either, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { presetNames } from "../generate/sampling.ts"
import { parseReference, shortModelNames } from "../model/reference.ts"
import { tokenizerNames } from "../tokenizer/tokenizer.ts"
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

type Action = "train" | "resume" | "generate" | "chat" | "interpret" | "walkthrough" | "evaluate" | "compare" | "plot" | "data" | "config" | "quit"

const actions: Array<{ title: string; value: Action; description: string }> = [
  { title: "Train a model", value: "train", description: "run a config from config/ (continue its run, or start fresh)" },
  { title: "Generate text", value: "generate", description: "continue a prompt with a trained or pretrained model (gpt2, …)" },
  { title: "Chat", value: "chat", description: "talk to a trained or pretrained model" },
  { title: "Open a model up", value: "interpret", description: "logit lens, attention heads, induction heads, activation patching" },
  { title: "Walk through one step by hand", value: "walkthrough", description: "every number of one training step of a tiny 16-wide GPT (no model to pick: see Open a model up for real ones)" },
  { title: "Resume a run", value: "resume", description: "continue a run from its newest checkpoint, for more steps" },
  { title: "Evaluate a model", value: "evaluate", description: "held-out loss of a run's newest checkpoint, or of any model on the shipped corpus" },
  { title: "Compare checkpoints", value: "compare", description: "every checkpoint of a run, best first" },
  { title: "Plot a run", value: "plot", description: "loss and learning-rate curves as HTML" },
  { title: "Data", value: "data", description: "known datasets; tokenise the shipped corpus into the cache" },
  { title: "Configs", value: "config", description: "show a config resolved; write the JSON Schema for editors" },
  { title: "Quit", value: "quit", description: "" }
]

/** Answers gathered prompt by prompt; each action turns them into a command line. */
type Answers = Readonly<Record<string, string>>

/** One prompt of an action; `when` skips it (forwards and backwards) for answers it does not apply to. */
interface Step {
  readonly when?: (a: Answers) => boolean
  readonly ask: (a: Answers) => Effect.Effect<Answers, unknown, Prompt.Prompt.Environment>
}

/**
 * Asks the steps in order. Esc goes back one prompt (Esc at the first one gives None: back to
 * the menu), so a wrong choice costs one key, not the whole action.
 */
export const runSteps = (steps: ReadonlyArray<Step>, initial: Answers = {}) =>
  Effect.gen(function* () {
    const states: Answers[] = [initial]
    const asked: number[] = []
    let i = 0
    while (i < steps.length) {
      const current = states[states.length - 1]
      const step = steps[i]
      if (step.when !== undefined && !step.when(current)) {
        i++
        continue
      }
      const answer = yield* Effect.either(step.ask(current))
      if (answer._tag === "Left") {
        const previous = asked.pop()
        if (previous === undefined) return Option.none<Answers>()
        states.pop()
        i = previous
        continue
      }
      asked.push(i)
      states.push(answer.right)
      i++
    }
    return Option.some(states[states.length - 1])
  })

const set = (key: string) => (value: string) => (a: Answers): Answers => ({ ...a, [key]: value })
const select = (key: string, message: string, choices: (a: Answers) => Array<{ title: string; value: string; description?: string }>): Step => ({
  ask: (a) => Prompt.run(Prompt.select({ message, choices: choices(a) })).pipe(Effect.map((v) => set(key)(v)(a)))
})
const text = (key: string, message: string, validate?: (s: string) => string | undefined): Step => ({
  ask: (a) =>
    Prompt.run(
      Prompt.text({ message, validate: (s) => (validate === undefined || validate(s) === undefined ? Effect.succeed(s) : Effect.fail(validate(s) as string)) })
    ).pipe(Effect.map((v) => set(key)(v)(a)))
})
const nonEmpty = (s: string) => (s.trim() === "" ? "some text, please" : undefined)
const stepsOrEmpty = (s: string) => (s === "" || /^[1-9]\d*$/.test(s) ? undefined : "a positive whole number, or empty")

/** A run to open: one found under runs/, or a path typed in; with none found, say how to get one. */
const pickRun: ReadonlyArray<Step> = [
  {
    when: () => findRuns().length > 0,
    ...select("run", "Which model?", () => [
      ...findRuns().map((r) => ({ title: r, value: r })),
      { title: "another path…", value: "", description: "a run or checkpoint directory, or a .safetensors file" }
    ])
  },
  {
    when: (a) => !a.run,
    ask: (a) =>
      text(
        "run",
        findRuns().length === 0
          ? "No runs found under runs/: train one first (Train a model, in this menu), or give the path of a run, checkpoint or .safetensors file:"
          : "Path to a run, checkpoint or .safetensors file:",
        (s) => (s.trim() === "" ? "a path, please (Esc goes back)" : fs.existsSync(s) ? undefined : `${s} does not exist`)
      ).ask(a)
  }
]

/**
 * Why `text` is not a model reference the commands will open, or undefined when it is one: a
 * path must exist; hf:<owner>/<name>[@revision] and the short names (gpt2, …) are looked up on
 * the Hub by the command itself (downloaded once, then cached).
 */
export const modelReferenceProblem = (text: string, exists: (p: string) => boolean = fs.existsSync): string | undefined => {
  const s = text.trim()
  if (s === "") return "a model, please (Esc goes back)"
  const reference = parseReference(s, exists)
  if (Either.isLeft(reference)) return reference.left.message
  if (reference.right._tag === "Hub") return undefined
  return exists(s) ? undefined : `${s} does not exist (nor is it hf:<owner>/<name> or one of ${Object.keys(shortModelNames).join(", ")})`
}

/**
 * A model to open, for the commands that take any model reference (generate, chat, interpret,
 * eval): a run found under runs/, GPT-2 small by name, or a reference typed in.
 */
const pickModel: ReadonlyArray<Step> = [
  {
    ask: (a) =>
      select("run", findRuns().length === 0 ? "No runs found under runs/: train one first (Train a model, in this menu), or open another model:" : "Which model?", () => [
        ...findRuns().map((r) => ({ title: r, value: r })),
        { title: "gpt2", value: "gpt2", description: "GPT-2 small from the Hugging Face Hub (downloaded once, then used from the cache)" },
        { title: "another model…", value: "", description: "a run or checkpoint directory, a .safetensors file, a Hugging Face directory, hf:<owner>/<name>, or gpt2-medium, distilgpt2, …" }
      ]).ask(a)
  },
  {
    when: (a) => !a.run,
    ...text("run", "Model (a run, checkpoint, .safetensors file, Hugging Face directory, hf:<owner>/<name>, or a short name such as gpt2-medium):", (s) => modelReferenceProblem(s))
  }
]

const pickPreset = select("preset", "Sampling preset?", () => presetNames.map((p) => ({ title: p, value: p })))

/** run.dir of a config file (its default when the file does not say). */
const runDirOf = (file: string): string => {
  try {
    return (JSON.parse(fs.readFileSync(file, "utf8")) as { run?: { dir?: string } }).run?.dir ?? "runs/default"
  } catch {
    return "runs/default"
  }
}
const hasRun = (dir: string) => fs.existsSync(path.join(dir, "checkpoints")) && fs.readdirSync(path.join(dir, "checkpoints")).length > 0

/** Each action: its prompts, and the command line its answers make. */
const flows: Record<Exclude<Action, "quit">, { steps: ReadonlyArray<Step>; command: (a: Answers) => string[] }> = {
  train: {
    steps: [
      select("config", "Which config?", () => findConfigs().map((c) => ({ title: c.file, value: c.file, description: c.pipeline }))),
      {
        when: (a) => findConfigs().find((c) => c.file === a.config)?.pipeline === "pretrain",
        ...text("steps", "Steps (empty: the config's own):", stepsOrEmpty)
      },
      {
        when: (a) => findConfigs().find((c) => c.file === a.config)?.pipeline === "pretrain" && hasRun(runDirOf(a.config)),
        ...select("fresh", "That config's run directory already holds a run:", (a) => [
          { title: `continue ${runDirOf(a.config)}`, value: "", description: "train on from its newest checkpoint" },
          { title: "start a fresh run", value: "yes", description: `the old run is moved aside to ${runDirOf(a.config)}.previous` }
        ])
      }
    ],
    command: (a) => ["run", a.config, ...(a.steps ? ["--set", `train.steps=${a.steps}`] : []), ...(a.fresh === "yes" ? ["--fresh"] : [])]
  },
  resume: {
    steps: [...pickRun, text("steps", "Train up to step (empty: the run's own train.steps):", stepsOrEmpty)],
    command: (a) => ["resume", a.run, ...(a.steps ? ["--set", `train.steps=${a.steps}`] : [])]
  },
  generate: {
    steps: [...pickModel, pickPreset, text("prompt", "Prompt:")],
    command: (a) => ["generate", a.run, "--preset", a.preset, "--prompt", a.prompt]
  },
  chat: {
    steps: [...pickModel, pickPreset],
    command: (a) => ["chat", a.run, "--preset", a.preset]
  },
  interpret: {
    steps: [
      ...pickModel,
      select("probe", "Which probe?", () => [
        { title: "logit lens", value: "logit-lens", description: "what each layer would predict" },
        { title: "attention heads", value: "attention", description: "score and label every head" },
        { title: "induction heads", value: "induction", description: "random tokens repeated twice" },
        { title: "activation patching", value: "patch", description: "which activations carry the answer from a clean prompt to a corrupted one" }
      ]),
      { when: (a) => a.probe === "logit-lens" || a.probe === "attention", ...text("text", "Text to analyse:", nonEmpty) },
      { when: (a) => a.probe === "patch", ...text("clean", "Clean prompt:", nonEmpty) },
      { when: (a) => a.probe === "patch", ...text("corrupted", "Corrupted prompt (as many tokens):", nonEmpty) },
      { when: (a) => a.probe === "patch", ...text("answer", "The clean prompt's answer (one token):", (s) => (s === "" ? "one token, please" : undefined)) },
      { when: (a) => a.probe === "patch", ...text("wrong", "The corrupted prompt's answer (one token):", (s) => (s === "" ? "one token, please" : undefined)) }
    ],
    command: (a) =>
      a.probe === "induction"
        ? ["interpret", "induction", a.run, "--batch", "4"]
        : a.probe === "patch"
          ? ["interpret", "patch", a.run, "--clean", a.clean, "--corrupted", a.corrupted, "--answer", a.answer, "--wrong", a.wrong]
          : ["interpret", a.probe, a.run, "--text", a.text]
  },
  walkthrough: {
    steps: [select("stage", "Which stage?", () => [{ title: "all of them", value: "" }, ...STAGE_NAMES.map((s) => ({ title: s, value: s }))])],
    command: (a) => ["walkthrough", ...(a.stage === "" ? [] : ["--stage", a.stage])]
  },
  evaluate: { steps: pickModel, command: (a) => ["eval", a.run] },
  compare: { steps: pickRun, command: (a) => ["compare", a.run] },
  plot: { steps: pickRun, command: (a) => ["plot", a.run] },
  data: {
    steps: [
      select("task", "Which data task?", () => [
        { title: "list known datasets", value: "list" },
        { title: "tokenise the shipped corpus into the token cache", value: "prepare" }
      ]),
      { when: (a) => a.task === "prepare", ...select("tokenizer", "Tokenizer?", () => tokenizerNames.map((t) => ({ title: t, value: t }))) }
    ],
    command: (a) => (a.task === "list" ? ["data", "list"] : ["data", "prepare", "shipped", "--tokenizer", a.tokenizer])
  },
  config: {
    steps: [
      select("task", "Which config task?", () => [
        { title: "show a config resolved (defaults filled in)", value: "show" },
        { title: "write the JSON Schema for editors (config/glassbox.schema.json)", value: "schema" }
      ]),
      { when: (a) => a.task === "show", ...select("config", "Which config?", () => findConfigs().map((c) => ({ title: c.file, value: c.file, description: c.pipeline }))) }
    ],
    command: (a) => (a.task === "show" ? ["config", "show", a.config] : ["config", "schema", "--out", "config/glassbox.schema.json"])
  }
}

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
      const flow = flows[choice]
      const answers = yield* runSteps(flow.steps)
      if (answers._tag === "None") {
        process.stdout.write("\n(cancelled)\n")
        continue
      }
      const args = { value: flow.command(answers.value) }
      process.stdout.write(`$ glassbox ${args.value.map((a) => (/^[\w./=:-]+$/.test(a) ? a : JSON.stringify(a))).join(" ")}\n`)
      yield* runCommand(args.value).pipe(
        Effect.catchAllCause((cause) => Effect.sync(() => process.stdout.write(`glassbox: ${describeFailure(cause._tag === "Fail" ? cause.error : cause)}\n`)))
      )
    }
  })
