// Help a person can read: every command's help fits 100 columns, describes every option, ends
// with examples, and has no colour off a terminal; misspelt commands and flags get "did you
// mean", and a bad value names its flag. The outline is read from the real command tree.
import { describe, expect, it } from "@effect/vitest"
import { outline, planCommandLine, renderHelp, splitDescription, type CommandInfo } from "../../src/cli/help.ts"
import { glassbox } from "../../src/cli/main.ts"
import { runCli } from "../e2e/run-helpers.ts"

const root = outline(glassbox)
const all = (c: CommandInfo): CommandInfo[] => [c, ...c.subcommands.flatMap(all)]
const commands = all(root)
const leaves = commands.filter((c) => c.subcommands.length === 0)
const name = (c: CommandInfo) => ["glassbox", ...c.path].join(" ")

const run = (args: string[], env: Record<string, string> = {}) => runCli(args, undefined, env)

describe("help", () => {
  it("reads the whole command tree, groups included", () => {
    expect(root.subcommands.map((c) => c.path[0])).toEqual(expect.arrayContaining(["run", "train", "generate", "chat", "interpret", "walkthrough", "data", "config"]))
    const interpret = root.subcommands.find((c) => c.path[0] === "interpret")!
    expect(interpret.subcommands.map((c) => c.path[1])).toEqual(["logit-lens", "attention", "induction", "patch"])
    const generate = root.subcommands.find((c) => c.path[0] === "generate")!
    const preset = generate.flags.find((f) => f.name === "--preset")!
    expect(preset.kind).toBe("choice")
    expect(preset.defaultValue).toBe("balanced")
    expect(generate.flags.find((f) => f.name === "--stop")!.repeatable).toBe(true)
    expect(generate.flags.find((f) => f.name === "--stop")!.required).toBe(false)
  })

  it("every line of every command's help fits 100 columns, without colour", () => {
    for (const c of commands) {
      const text = renderHelp(c, { color: false })
      expect(text, name(c)).not.toMatch(/\x1b\[/)
      for (const line of text.split("\n")) expect(line.length, `${name(c)}: ${line}`).toBeLessThanOrEqual(100)
    }
  })

  it("every option and argument has a description; every command a summary and an example", () => {
    for (const c of commands) {
      expect(c.summary, name(c)).not.toBe("")
      for (const f of c.flags) expect(f.description, `${name(c)} ${f.name}`).not.toBe("")
      for (const a of c.args) expect(a.description, `${name(c)} <${a.name}>`).not.toBe("")
    }
    for (const c of leaves) expect(c.examples.length, name(c)).toBeGreaterThan(0)
  })

  it("lists a group's subcommands, and a flag's default and meaning", () => {
    const data = renderHelp(root.subcommands.find((c) => c.path[0] === "data")!, { color: false })
    for (const sub of ["list", "download", "prepare"]) expect(data).toMatch(new RegExp(`^  ${sub}\\s+\\S`, "m"))
    const generate = renderHelp(root.subcommands.find((c) => c.path[0] === "generate")!, { color: false })
    expect(generate).toMatch(/--max-new-tokens <n>\s+stop after this many new tokens \(default 100\)/)
    expect(generate).toMatch(/--top-k <n>\s+sample only among/)
    expect(generate).toContain("Examples:\n  $ glassbox generate runs/tiny")
    expect(generate).toContain("Usage:\n  glassbox generate <checkpoint> [options]")
    // A repeatable option is not shown as required.
    const run = renderHelp(root.subcommands.find((c) => c.path[0] === "run")!, { color: false })
    expect(run).toContain("glassbox run <config> [options]")
    expect(run).toMatch(/--set <key=value>[\s\S]*\(repeatable\)/)
  })

  it("splits a description into summary, details and examples", () => {
    expect(splitDescription("One line. Example: glassbox a; glassbox b")).toEqual({ summary: "One line.", details: "", examples: ["glassbox a", "glassbox b"] })
    expect(splitDescription("Summary.\nMore.\nExamples:\nglassbox x\necho 1 | glassbox y")).toEqual({ summary: "Summary.", details: "More.", examples: ["glassbox x", "echo 1 | glassbox y"] })
  })
})

describe("reading a command line", () => {
  const error = (...argv: string[]) => {
    const plan = planCommandLine(root, argv)
    expect(plan._tag, argv.join(" ")).toBe("Error")
    return (plan as { message: string }).message
  }

  it("did you mean, for commands and flags", () => {
    expect(error("genrate", "runs/tiny")).toContain("did you mean generate?")
    expect(error("interpret", "lens", "runs/tiny")).toContain("did you mean logit-lens?")
    expect(error("generate", "runs/tiny", "--tempreature", "1")).toContain("unknown option --tempreature; did you mean --temperature?")
  })

  it("a bad value names its flag", () => {
    expect(error("generate", "runs/tiny", "--preset", "wild")).toBe('glassbox generate: --preset: "wild" is not one of greedy, precise, balanced, creative, very-creative')
    expect(error("generate", "runs/tiny", "--temperature", "abc")).toBe('glassbox generate: --temperature: "abc" is not a number')
    expect(error("generate", "runs/tiny", "--max-new-tokens=1.5")).toBe('glassbox generate: --max-new-tokens: "1.5" is not a whole number')
    expect(error("generate", "runs/tiny", "--seed")).toContain("--seed needs a value")
    expect(error("interpret", "patch", "runs/tiny", "--clean", "a")).toContain("--corrupted is required")
    expect(error("run")).toContain("missing <config>")
    expect(error("run", "no/such/config.json")).toContain("config no/such/config.json does not exist")
  })

  it("help anywhere on the line, and the menu's rival --wizard refused", () => {
    const plan = planCommandLine(root, ["interpret", "induction", "runs/tiny", "--help"])
    expect(plan._tag).toBe("Help")
    expect((plan as { command: CommandInfo }).command.path).toEqual(["interpret", "induction"])
    expect(planCommandLine(root, ["interpret"])._tag).toBe("Help")
    expect(error("generate", "runs/tiny", "--wizard")).toContain("--wizard is not offered")
    expect(planCommandLine(root, ["generate", "runs/tiny", "--prompt", "-5", "--seed", "-1"])._tag).toBe("Run")
  })
})

describe("help as a process", () => {
  it("--help in a pipe: no colour, 100 columns, exit 0; NO_COLOR too", async () => {
    for (const env of [{}, { NO_COLOR: "1" }] as Array<Record<string, string>>) {
      const r = await run(["--help"], env)
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).not.toMatch(/\x1b\[/)
      expect(Math.max(...r.stdout.split("\n").map((l) => l.length))).toBeLessThanOrEqual(100)
      expect(r.stdout).toContain("--completions bash|zsh|fish|sh")
    }
  })

  it("completion scripts offer every command and flag but not the refused --wizard", async () => {
    for (const shell of ["bash", "zsh", "fish", "sh"]) {
      const r = await run(["--completions", shell])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout, shell).toContain("generate")
      expect(r.stdout, shell).toContain("fresh")
      expect(r.stdout, shell).not.toContain("wizard")
    }
  })

  it("a misspelt command: one line on stderr, exit 1", async () => {
    const r = await run(["genrate", "runs/tiny"])
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
    expect(r.stderr).toContain("did you mean generate?")
  })
})
