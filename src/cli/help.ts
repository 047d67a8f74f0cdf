// Why this file exists: @effect/cli's own help lines descriptions up with the longest usage line
// (hundreds of columns), prints colour into pipes, and its value errors do not say which flag
// was wrong. Here the command tree the CLI is built from is read once into a plain outline
// (commands, arguments, flags with their meaning and default), and from that outline come help
// that fits 100 columns, "did you mean" for misspelt commands and flags, and one-line errors
// that name the flag whose value is wrong. The outline is read from the same @effect/cli
// descriptors that parse the command line, so help can never drift from what is accepted.
import * as fs from "node:fs"

export const helpWidth = 100

/** One flag as help shows it. */
export interface FlagInfo {
  readonly name: string // "--top-k"
  readonly aliases: ReadonlyArray<string>
  /** The kind of value taken; "flag" for a switch. */
  readonly kind: "flag" | "text" | "integer" | "number" | "choice" | "file" | "directory" | "path"
  readonly choices: ReadonlyArray<string>
  readonly description: string
  /** Shown as "(default …)"; undefined when there is none. */
  readonly defaultValue: string | undefined
  readonly required: boolean
  readonly repeatable: boolean
}

/** One positional argument. */
export interface ArgInfo {
  readonly name: string // "checkpoint"
  readonly description: string
  readonly optional: boolean
  readonly repeatable: boolean
  readonly mustExist: "file" | "directory" | "path" | undefined
}

/** A command, its arguments and flags, or its subcommands. */
export interface CommandInfo {
  readonly path: ReadonlyArray<string> // ["interpret", "induction"]
  readonly summary: string
  readonly details: string
  readonly examples: ReadonlyArray<string>
  readonly args: ReadonlyArray<ArgInfo>
  readonly flags: ReadonlyArray<FlagInfo>
  readonly subcommands: ReadonlyArray<CommandInfo>
}

// ---- reading @effect/cli's descriptors (plain data with a _tag on every node) -----------------

type Node = { readonly _tag: string; readonly [key: string]: unknown }
const node = (x: unknown): Node => x as Node

/** HelpDoc / Span → plain text, paragraphs separated by newlines. */
const docText = (doc: unknown): string => {
  const d = node(doc)
  switch (d._tag) {
    case "Empty":
      return ""
    case "Text":
    case "URI":
      return String(d.value)
    case "Header":
    case "Paragraph":
    case "Highlight":
    case "Strong":
    case "Weak":
      return docText(d.value)
    case "Sequence": {
      const left = docText(d.left)
      const right = docText(d.right)
      return left === "" ? right : right === "" ? left : `${left}\n${right}`
    }
    case "Enumeration":
      return (d.elements as unknown[]).map(docText).join("\n")
    case "DescriptionList":
      return (d.definitions as Array<[unknown, unknown]>).map(([k, v]) => `${docText(k)}: ${docText(v)}`).join("\n")
    default:
      return ""
  }
}

const isOption = (x: unknown): x is { _tag: "None" | "Some"; value?: unknown } =>
  x !== null && typeof x === "object" && "_tag" in x && ((x as Node)._tag === "None" || (x as Node)._tag === "Some")

const shownDefault = (fallback: unknown): string | undefined => {
  if (isOption(fallback)) return fallback._tag === "Some" ? shownDefault(fallback.value) : undefined
  if (fallback === false || fallback === undefined || fallback === null) return undefined
  if (Array.isArray(fallback)) return fallback.length === 0 ? undefined : fallback.join(", ")
  if (fallback === "") return '""'
  return String(fallback)
}

const kindOf = (primitive: Node): { kind: FlagInfo["kind"]; choices: string[] } => {
  switch (primitive._tag) {
    case "Bool":
      return { kind: "flag", choices: [] }
    case "Choice":
      return { kind: "choice", choices: (primitive.alternatives as Array<[string, unknown]>).map(([name]) => name) }
    case "Integer":
      return { kind: "integer", choices: [] }
    case "Float":
      return { kind: "number", choices: [] }
    case "Path":
      return { kind: primitive.pathType === "file" ? "file" : primitive.pathType === "directory" ? "directory" : "path", choices: [] }
    default:
      return { kind: "text", choices: [] }
  }
}

const readFlags = (options: unknown, context: { defaultValue: string | undefined; optional: boolean; repeatable: boolean }): FlagInfo[] => {
  const o = node(options)
  switch (o._tag) {
    case "Empty":
      return []
    case "Single": {
      const { kind, choices } = kindOf(node(o.primitiveType))
      return [
        {
          name: String(o.fullName),
          aliases: (o.aliases as string[]).map((a) => (a.length === 1 ? `-${a}` : `--${a}`)),
          kind,
          choices,
          description: docText(o.description),
          defaultValue: context.defaultValue,
          required: !context.optional && kind !== "flag",
          repeatable: context.repeatable
        }
      ]
    }
    case "Map":
    case "WithFallback":
      return readFlags(o.options, context)
    case "WithDefault":
      return readFlags(o.options, { ...context, optional: true, defaultValue: shownDefault(o.fallback) })
    case "Variadic":
    case "KeyValueMap":
      return readFlags(o.argumentOption, { ...context, optional: true, repeatable: true })
    case "Both":
      return [...readFlags(o.left, context), ...readFlags(o.right, context)]
    case "OrElse":
      return [...readFlags(o.left, { ...context, optional: true }), ...readFlags(o.right, { ...context, optional: true })]
    default:
      return []
  }
}

const readArgs = (args: unknown, context: { optional: boolean; repeatable: boolean }): ArgInfo[] => {
  const a = node(args)
  switch (a._tag) {
    case "Empty":
      return []
    case "Single": {
      const primitive = node(a.primitiveType)
      const pseudo = a.pseudoName as { _tag: string; value?: string }
      const name = pseudo._tag === "Some" && pseudo.value !== undefined ? pseudo.value : String(a.name).replace(/^<|>$/g, "")
      const mustExist = primitive._tag === "Path" && primitive.pathExists === "yes" ? (kindOf(primitive).kind as ArgInfo["mustExist"]) : undefined
      return [{ name, description: docText(a.description), optional: context.optional, repeatable: context.repeatable, mustExist }]
    }
    case "Map":
    case "WithFallbackConfig":
      return readArgs(a.args, context)
    case "WithDefault":
      return readArgs(a.args, { ...context, optional: true })
    case "Variadic":
      return readArgs(a.args, { ...context, repeatable: true, optional: context.optional || (a.min as { _tag: string; value?: number })._tag === "None" || (a.min as { value?: number }).value === 0 })
    case "Both":
      return [...readArgs(a.left, context), ...readArgs(a.right, context)]
    default:
      return []
  }
}

/**
 * A description is "Summary.\nMore detail…\nExamples:\n  glassbox …" (an inline "Example: …" at
 * the end works too, several separated by "; ").
 */
export const splitDescription = (text: string): { summary: string; details: string; examples: string[] } => {
  const m = /(?:^|\s)Examples?:\s*/.exec(text)
  const body = (m === null ? text : text.slice(0, m.index)).trim()
  const exampleText = m === null ? "" : text.slice(m.index + m[0].length)
  const exampleLines = exampleText
    .split(/\n|;\s+(?=glassbox\b)/)
    .map((e) => e.trim())
    .filter((e) => e !== "")
  // Examples are command lines (that run glassbox); anything after them is more description.
  const firstOther = exampleLines.findIndex((e) => !/\bglassbox\b/.test(e))
  const examples = firstOther < 0 ? exampleLines : exampleLines.slice(0, firstOther)
  const after = firstOther < 0 ? "" : exampleText.slice(exampleText.indexOf(exampleLines[firstOther])).trimEnd()
  const all = after === "" ? body : `${body}\n${after}`
  const newline = all.indexOf("\n")
  return newline < 0 ? { summary: all, details: "", examples } : { summary: all.slice(0, newline).trim(), details: all.slice(newline + 1).trimEnd(), examples }
}

const readCommand = (descriptor: unknown, parentPath: ReadonlyArray<string>): CommandInfo => {
  const d = node(descriptor)
  switch (d._tag) {
    case "Map":
      return readCommand(d.command, parentPath)
    case "Subcommands": {
      const parent = readCommand(d.parent, parentPath)
      return { ...parent, subcommands: (d.children as unknown[]).map((child) => readCommand(child, parent.path)) }
    }
    default: {
      const name = String(d.name)
      const path = parentPath.length === 0 && name === "glassbox" ? [] : [...parentPath, name]
      const { summary, details, examples } = splitDescription(docText(d.description))
      return {
        path,
        summary,
        details,
        examples,
        args: d._tag === "Standard" ? readArgs(d.args, { optional: false, repeatable: false }) : [],
        flags: d._tag === "Standard" ? readFlags(d.options, { defaultValue: undefined, optional: false, repeatable: false }) : [],
        subcommands: []
      }
    }
  }
}

/** The outline of a command tree built with @effect/cli. */
export const outline = (command: { readonly descriptor: unknown }): CommandInfo => readCommand(command.descriptor, [])

/** Flags every command accepts, handled by @effect/cli itself or by main.ts. */
export const builtInFlags: ReadonlyArray<FlagInfo> = [
  { name: "--help", aliases: ["-h"], kind: "flag", choices: [], description: "show this help", defaultValue: undefined, required: false, repeatable: false },
  { name: "--version", aliases: [], kind: "flag", choices: [], description: "print the version", defaultValue: undefined, required: false, repeatable: false },
  {
    name: "--completions",
    aliases: [],
    kind: "choice",
    choices: ["bash", "zsh", "fish", "sh"],
    description: "print a shell completion script, e.g. glassbox --completions bash > ~/.local/share/bash-completion/completions/glassbox",
    defaultValue: undefined,
    required: false,
    repeatable: false
  },
  {
    name: "--log-level",
    aliases: [],
    kind: "choice",
    choices: ["all", "trace", "debug", "info", "warning", "error", "fatal", "none"],
    description: "minimum level of Effect log messages",
    defaultValue: undefined,
    required: false,
    repeatable: false
  }
]

// ---- rendering ------------------------------------------------------------------------------

/** Greedy word wrap of one paragraph to `width` columns, every line prefixed by `indent`. */
export const wrap = (text: string, width: number, indent = "", firstIndent = indent): string[] => {
  const out: string[] = []
  for (const paragraph of text.split("\n")) {
    // Lines that start with spaces or hold aligned columns (tables, examples) keep their layout.
    if (/^\s|\S {2,}\S/.test(paragraph)) {
      out.push((out.length === 0 ? firstIndent : indent) + paragraph)
      continue
    }
    let line = ""
    for (const word of paragraph.split(/\s+/).filter((w) => w !== "")) {
      const prefix = out.length === 0 ? firstIndent : indent
      if (line !== "" && prefix.length + line.length + 1 + word.length > width) {
        out.push(prefix + line)
        line = word
      } else line = line === "" ? word : `${line} ${word}`
    }
    out.push((out.length === 0 ? firstIndent : indent) + line)
  }
  return out
}

const valueHint = (f: FlagInfo): string => {
  switch (f.kind) {
    case "flag":
      return ""
    case "choice": {
      const list = f.choices.join("|")
      return list.length <= 40 ? ` ${list}` : " <name>"
    }
    case "integer":
      return " <n>"
    case "number":
      return " <x>"
    case "file":
      return " <file>"
    case "directory":
      return " <dir>"
    default: {
      const name = f.name.replace(/^--/, "")
      return name === "set" ? " <key=value>" : /file$|^out$/.test(name) ? " <file>" : /dir$/.test(name) ? " <dir>" : " <text>"
    }
  }
}

const flagLabel = (f: FlagInfo) => [...f.aliases, f.name].join(", ") + valueHint(f)

const flagText = (f: FlagInfo): string => {
  const parts = [f.description === "" ? "(no description)" : f.description]
  if (f.kind === "choice" && valueHint(f) === " <name>") parts.push(`(one of ${f.choices.join(", ")})`)
  const notes: string[] = []
  if (f.required) notes.push("required")
  if (f.repeatable) notes.push("repeatable")
  if (f.defaultValue !== undefined) notes.push(`default ${f.defaultValue}`)
  if (notes.length > 0) parts.push(`(${notes.join("; ")})`)
  // After a multi-line description (a table), the notes go on a line of their own.
  return parts[0].includes("\n") ? `${parts[0]}\n${parts.slice(1).join(" ")}` : parts.join(" ")
}

/** Two columns, the second wrapped; a long label puts its text on the next line. */
const table = (rows: ReadonlyArray<[string, string]>, width: number): string[] => {
  const labelWidth = Math.min(28, Math.max(...rows.map(([label]) => label.length)))
  const indent = " ".repeat(2 + labelWidth + 2)
  const out: string[] = []
  for (const [label, text] of rows) {
    if (label.length > labelWidth) {
      out.push(`  ${label}`)
      out.push(...wrap(text, width, indent))
    } else out.push(...wrap(text, width, indent, `  ${label.padEnd(labelWidth)}  `))
  }
  return out
}

export interface HelpStyle {
  readonly color: boolean
}

const heading = (text: string, style: HelpStyle) => (style.color ? `\x1b[1m${text}\x1b[0m` : text)

const usageLine = (c: CommandInfo): string => {
  const name = ["glassbox", ...c.path].join(" ")
  if (c.subcommands.length > 0) return `${name} <command> [options]`
  const args = c.args.map((a) => {
    const n = `<${a.name}>${a.repeatable ? "..." : ""}`
    return a.optional ? `[${n}]` : n
  })
  return [name, ...args, ...(c.flags.length > 0 ? ["[options]"] : [])].join(" ")
}

/** Help for one command: usage, description, arguments, options or subcommands, examples. */
export const renderHelp = (c: CommandInfo, style: HelpStyle, extra: { version?: string; note?: string } = {}): string => {
  const width = helpWidth
  const lines: string[] = []
  const title = ["glassbox", ...c.path].join(" ") + (c.path.length === 0 && extra.version ? ` ${extra.version}` : "")
  lines.push(...wrap(`${title}: ${c.summary}`, width, "  ", ""))
  lines.push("", heading("Usage:", style), `  ${usageLine(c)}`)
  if (extra.note) lines.push(...wrap(extra.note, width, "  "))
  if (c.details !== "") lines.push("", ...wrap(c.details, width))
  if (c.subcommands.length > 0) {
    lines.push("", heading("Commands:", style))
    const rows: Array<[string, string]> = []
    for (const s of c.subcommands) {
      rows.push([s.path[s.path.length - 1], s.summary])
      if (c.path.length === 0) for (const g of s.subcommands) rows.push([`  ${g.path[g.path.length - 1]}`, g.summary])
    }
    lines.push(...table(rows, width))
    const more = `Run "glassbox ${[...c.path, "<command>"].join(" ")} --help" for a command's options.`
    lines.push("", ...wrap(more, width))
  }
  if (c.args.length > 0) {
    lines.push("", heading("Arguments:", style))
    lines.push(...table(c.args.map((a) => [`<${a.name}>`, a.description === "" ? "(no description)" : a.description + (a.optional ? " (optional)" : "")]), width))
  }
  const flags = c.path.length === 0 ? builtInFlags : [...c.flags, builtInFlags[0]]
  lines.push("", heading("Options:", style))
  lines.push(...table(flags.map((f) => [flagLabel(f), flagText(f)]), width))
  if (c.examples.length > 0) {
    lines.push("", heading(c.examples.length === 1 ? "Example:" : "Examples:", style))
    for (const e of c.examples) lines.push(...wrap(e, width, "      ", "  $ "))
  }
  return lines.join("\n") + "\n"
}

// ---- checking a command line before @effect/cli sees it -------------------------------------

/** Edit distance (insertions, deletions, substitutions, adjacent swaps), for "did you mean". */
export const editDistance = (a: string, b: string): number => {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

/** The closest candidate when it is plausibly a typo (or a prefix of exactly one candidate). */
export const closest = (word: string, candidates: ReadonlyArray<string>): string | undefined => {
  const prefixed = candidates.filter((c) => word.length >= 2 && c.startsWith(word))
  if (prefixed.length === 1) return prefixed[0]
  const containing = candidates.filter((c) => word.length >= 3 && c.includes(word))
  if (containing.length === 1) return containing[0]
  let best: string | undefined
  let bestDistance = Infinity
  for (const c of candidates) {
    const distance = editDistance(word.toLowerCase(), c.toLowerCase())
    if (distance < bestDistance) [best, bestDistance] = [c, distance]
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined
}

const didYouMean = (word: string, candidates: ReadonlyArray<string>) => {
  const guess = closest(word, candidates)
  return guess === undefined ? "" : `; did you mean ${guess}?`
}

/** What main.ts should do with a command line. */
export type Plan =
  | { readonly _tag: "Help"; readonly command: CommandInfo }
  | { readonly _tag: "Error"; readonly message: string }
  | { readonly _tag: "Run" }

const valueProblem = (f: FlagInfo, value: string): string | undefined => {
  switch (f.kind) {
    case "choice":
      return f.choices.includes(value) ? undefined : `${f.name}: "${value}" is not one of ${f.choices.join(", ")}${didYouMean(value, f.choices)}`
    case "integer":
      return /^[+-]?\d+$/.test(value) ? undefined : `${f.name}: "${value}" is not a whole number`
    case "number":
      return value.trim() !== "" && Number.isFinite(Number(value)) ? undefined : `${f.name}: "${value}" is not a number`
    default:
      return undefined
  }
}

/**
 * Reads a command line against the outline: which command, whether help was asked for, and the
 * first mistake a person would want named (unknown command or flag, a flag without its value, a
 * value of the wrong kind, a missing argument or a path that does not exist).
 */
export const planCommandLine = (root: CommandInfo, argv: ReadonlyArray<string>): Plan => {
  const dashDash = argv.indexOf("--")
  const flagsPart = dashDash < 0 ? argv : argv.slice(0, dashDash)
  const wantsHelp = flagsPart.includes("--help") || flagsPart.includes("-h")
  // Built-ins that @effect/cli handles on its own.
  if (!wantsHelp && (flagsPart.includes("--version") || flagsPart.some((a) => a === "--completions" || a.startsWith("--completions=")))) return { _tag: "Run" }

  if (flagsPart.includes("--wizard")) return { _tag: "Error", message: "glassbox: --wizard is not offered; run glassbox with no arguments in a terminal for the interactive menu" }
  let command = root
  let i = 0
  while (command.subcommands.length > 0) {
    const word = argv[i]
    if (word === undefined || word.startsWith("-")) {
      if (wantsHelp || word === undefined) return { _tag: "Help", command }
      const name = ["glassbox", ...command.path].join(" ")
      return { _tag: "Error", message: `${name}: unknown option ${word.split("=")[0]}; ${name} needs a command first (${name} --help lists them)` }
    }
    const next = command.subcommands.find((s) => s.path[s.path.length - 1] === word)
    if (next === undefined) {
      const names = command.subcommands.map((s) => s.path[s.path.length - 1])
      const where = ["glassbox", ...command.path].join(" ")
      return { _tag: "Error", message: `${where}: unknown command "${word}"${didYouMean(word, names)} (${where} --help lists the commands)` }
    }
    command = next
    i++
  }
  if (wantsHelp) return { _tag: "Help", command }

  const name = ["glassbox", ...command.path].join(" ")
  const seeHelp = `(${name} --help)`
  const known = [...command.flags, ...builtInFlags]
  const positionals: string[] = []
  const given = new Set<string>()
  for (; i < argv.length; i++) {
    const word = argv[i]
    if (word === "--") {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!word.startsWith("-") || word === "-" || /^-\d/.test(word)) {
      positionals.push(word)
      continue
    }
    const eq = word.indexOf("=")
    const flagName = eq < 0 ? word : word.slice(0, eq)
    const flag = known.find((f) => f.name === flagName || f.aliases.includes(flagName))
    if (flag === undefined) {
      const names = known.map((f) => f.name)
      return { _tag: "Error", message: `${name}: unknown option ${flagName}${didYouMean(flagName, names)} ${seeHelp}` }
    }
    given.add(flag.name)
    if (flag.kind === "flag") {
      if (eq >= 0 && !["true", "false"].includes(word.slice(eq + 1))) return { _tag: "Error", message: `${name}: ${flag.name} is a switch and takes no value ${seeHelp}` }
      continue
    }
    const value = eq >= 0 ? word.slice(eq + 1) : argv[i + 1]
    if (value === undefined) return { _tag: "Error", message: `${name}: ${flag.name} needs a value${flag.kind === "choice" ? ` (one of ${flag.choices.join(", ")})` : ""} ${seeHelp}` }
    if (eq < 0) i++
    const problem = valueProblem(flag, value)
    if (problem !== undefined) return { _tag: "Error", message: `${name}: ${problem}` }
  }
  for (const f of command.flags) if (f.required && !given.has(f.name)) return { _tag: "Error", message: `${name}: ${f.name} is required${f.description ? ` (${f.description})` : ""} ${seeHelp}` }
  const required = command.args.filter((a) => !a.optional)
  if (positionals.length < required.length) {
    const missing = required[positionals.length]
    return { _tag: "Error", message: `${name}: missing <${missing.name}>${missing.description ? `: ${missing.description}` : ""} ${seeHelp}` }
  }
  const takesMany = command.args.some((a) => a.repeatable)
  if (!takesMany && positionals.length > command.args.length) return { _tag: "Error", message: `${name}: unexpected argument "${positionals[command.args.length]}" ${seeHelp}` }
  for (const [k, a] of command.args.entries()) {
    const value = positionals[k]
    if (value === undefined || a.mustExist === undefined) continue
    if (!fs.existsSync(value)) return { _tag: "Error", message: `${name}: ${a.name} ${value} does not exist` }
    const isDir = fs.statSync(value).isDirectory()
    if (a.mustExist === "file" && isDir) return { _tag: "Error", message: `${name}: ${a.name} ${value} is a directory, expected a file` }
    if (a.mustExist === "directory" && !isDir) return { _tag: "Error", message: `${name}: ${a.name} ${value} is not a directory` }
  }
  return { _tag: "Run" }
}
