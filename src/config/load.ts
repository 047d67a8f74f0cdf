// Reading a config: JSON file → `--set a.b=c` overrides → Schema decode → cross-field checks.
// Every problem is collected and reported together, each with its JSON path, the value found
// and what was expected, so a user fixes a file in one pass.
import { Data, Effect, Either, ParseResult, Schema } from "effect"
import * as fs from "node:fs"
import { crossFieldProblems, PipelineConfig } from "./schema.ts"

export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly source: string
  readonly problems: readonly string[]
}> {
  override get message() {
    return `${this.source}: ${this.problems.join("; ")}`
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** An override value: JSON when it parses (numbers, booleans, arrays), otherwise a string. */
const parseOverrideValue = (raw: string): Json => {
  try {
    return JSON.parse(raw) as Json
  } catch {
    return raw
  }
}

/** Applies `a.b=c` to a JSON object, creating sections as needed. */
export const applyOverride = (config: Record<string, Json>, assignment: string): Either.Either<Record<string, Json>, string> => {
  const eq = assignment.indexOf("=")
  if (eq <= 0) return Either.left(`--set ${assignment}: expected key.path=value`)
  const path = assignment.slice(0, eq).split(".")
  if (path.some((p) => p === "")) return Either.left(`--set ${assignment}: empty segment in key path`)
  const value = parseOverrideValue(assignment.slice(eq + 1))
  const root: Record<string, Json> = structuredClone(config)
  let node: Record<string, Json> = root
  for (const key of path.slice(0, -1)) {
    const next = node[key]
    if (next === undefined) node[key] = {}
    else if (typeof next !== "object" || next === null || Array.isArray(next)) {
      return Either.left(`--set ${assignment}: ${key} is not a section`)
    }
    node = node[key] as Record<string, Json>
  }
  node[path[path.length - 1]] = value
  return Either.right(root)
}

const describe = (value: unknown) => (value === undefined ? "nothing" : JSON.stringify(value))

const valueAt = (root: unknown, path: ReadonlyArray<PropertyKey>) =>
  path.reduce<unknown>((node, key) => (node !== null && typeof node === "object" ? (node as Record<PropertyKey, unknown>)[key] : undefined), root)

/** Decodes a JSON value into a PipelineConfig, listing every problem. */
export const decodeConfig = (raw: unknown, source: string): Either.Either<PipelineConfig, ConfigError> => {
  const decoded = Schema.decodeUnknownEither(PipelineConfig, { errors: "all", onExcessProperty: "error" })(raw)
  if (Either.isLeft(decoded)) {
    const issues = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)
    // A union (e.g. a literal list) fails once per member: merge those into one "expected a | b".
    const byPath = new Map<string, { path: ReadonlyArray<PropertyKey>; expected: string[]; unknownKey: boolean }>()
    for (const i of issues) {
      const key = i.path.map(String).join(".") || "(root)"
      const entry = byPath.get(key) ?? { path: i.path, expected: [], unknownKey: false }
      if (i._tag === "Unexpected") entry.unknownKey = true
      else entry.expected.push(i.message.replace(/^Expected /, "").replace(/, actual .*$/s, ""))
      byPath.set(key, entry)
    }
    const problems = [...byPath].map(([key, e]) =>
      e.unknownKey ? `${key}: unknown key` : `${key}: found ${describe(valueAt(raw, e.path))}, expected ${[...new Set(e.expected)].join(" | ")}`
    )
    return Either.left(new ConfigError({ source, problems }))
  }
  const problems = crossFieldProblems(decoded.right)
  return problems.length > 0 ? Either.left(new ConfigError({ source, problems })) : Either.right(decoded.right)
}

/** Loads a config file and applies overrides. */
export const loadConfig = (path: string, overrides: readonly string[] = []) =>
  Effect.gen(function* () {
    const text = yield* Effect.try({
      try: () => fs.readFileSync(path, "utf8"),
      catch: (e) => new ConfigError({ source: path, problems: [`cannot read file (${(e as NodeJS.ErrnoException).code ?? String(e)})`] })
    })
    let json = yield* Effect.try({
      try: () => JSON.parse(text) as Json,
      catch: (e) => new ConfigError({ source: path, problems: [`not valid JSON: ${(e as Error).message}`] })
    })
    if (json === null || typeof json !== "object" || Array.isArray(json)) {
      return yield* new ConfigError({ source: path, problems: ["expected a JSON object at the top level"] })
    }
    // An editor's "$schema" pointer (see `glassbox config schema`) is not part of the config.
    delete (json as Record<string, Json>)["$schema"]
    for (const assignment of overrides) {
      const next = applyOverride(json as Record<string, Json>, assignment)
      if (Either.isLeft(next)) return yield* new ConfigError({ source: path, problems: [next.left] })
      json = next.right
    }
    return yield* decodeConfig(json, path)
  })
