// The design (/work/shared/DESIGN.md §2) promises that data flows one way: each room of src/
// builds only on the rooms below it, so a newcomer can read the code bottom-up and a lower room
// can be reused (or tested) without dragging in the ones above. This test reads every import in
// src/ and pipelines/ and fails naming the file and the import that reaches upward.
import { describe, expect, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"

const root = resolve(import.meta.dirname, "../..")

/**
 * Rooms from the bottom up. A file may import from its own level or any level below it;
 * rooms on one level may import each other (e.g. eval measures with the trainer's loss).
 */
export const levels: ReadonlyArray<ReadonlyArray<string>> = [
  ["format", "rng", "tokenizer", "report"], // file formats, seeded randomness, encodings, HTML shell
  ["backend"], // which tfjs runs, every kernel
  ["config", "data"], // the config schema (which embeds the data section) and the data pipeline
  ["model"], // parameters, forward pass, hooks, weights, model references
  ["train", "eval", "checkpoint", "generate", "interpret", "walkthrough"], // what uses a model
  ["services"], // Model, Trainer, Evaluator, Generator as Effect services, and the library index
  ["pipelines"], // compositions of services that `glassbox run` executes
  ["cli"] // the command line
]

const levelOf = new Map(levels.flatMap((rooms, level) => rooms.map((room) => [room, level] as const)))

/** "src/model/gpt.ts" → "model"; "pipelines/pretrain.ts" → "pipelines"; src/index.ts → "services". */
export const roomOf = (file: string): string | undefined => {
  const parts = file.split("/")
  if (parts[0] === "pipelines") return "pipelines"
  if (parts[0] !== "src") return undefined
  if (parts.length === 2) return "services"
  return parts[1]
}

const sourceFiles = (dir: string): string[] =>
  readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === "node_modules" || entry.name === "native" ? [] : sourceFiles(path)
    return /\.(ts|mts|mjs)$/.test(entry.name) ? [path] : []
  })

/** Relative specifiers of static imports, re-exports, `import type` and dynamic `import()`. */
export const importsOf = (source: string): string[] =>
  [...source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^"'`;]*?\bfrom\s*["'](\.[^"']+)["']|\bimport\s*\(\s*["'](\.[^"']+)["']\s*\)|(?:^|\n)\s*import\s*["'](\.[^"']+)["']/g)]
    .map((m) => m[1] ?? m[2] ?? m[3]!)

export const upwardImports = (files: ReadonlyArray<string>, read: (file: string) => string) =>
  files.flatMap((file) => {
    const room = roomOf(file)
    const level = room === undefined ? undefined : levelOf.get(room)
    if (level === undefined) return []
    return importsOf(read(file)).flatMap((specifier) => {
      const target = relative(root, resolve(root, dirname(file), specifier))
      const targetRoom = roomOf(target)
      const targetLevel = targetRoom === undefined ? undefined : levelOf.get(targetRoom)
      if (targetLevel === undefined || targetLevel <= level) return []
      return [{ file, target, room: room!, targetRoom: targetRoom! }]
    })
  })

describe("rooms", () => {
  const files = [...sourceFiles("src"), ...sourceFiles("pipelines")]
  const read = (file: string) => readFileSync(join(root, file), "utf8")

  it("every room of src/ is placed on a level", () => {
    const rooms = new Set(files.map(roomOf).filter((room) => room !== undefined))
    expect([...rooms].filter((room) => !levelOf.has(room)).sort()).toEqual([])
  })

  it("no file imports a room above its own", () => {
    const violations = upwardImports(files, read).map((f) => `${f.file} (${f.room}) imports ${f.target} (${f.targetRoom}, a higher room)`)
    expect(violations).toEqual([])
  })

  it("catches an upward import (the check itself works)", () => {
    const fake: Record<string, string> = {
      "src/format/bad.ts": `import { GPT } from "../model/gpt.ts"\nimport type { X } from "../train/trainer.ts"`,
      "src/model/ok.ts": `import { x } from "../format/safetensors.ts"\nconst m = await import("../cli/main.ts")`,
      "pipelines/fine.ts": `export { y } from "../src/model/gpt.ts"`
    }
    const found = upwardImports(Object.keys(fake), (f) => fake[f]!)
    expect(found.map((f) => `${f.file}→${f.target}`)).toEqual([
      "src/format/bad.ts→src/model/gpt.ts",
      "src/format/bad.ts→src/train/trainer.ts",
      "src/model/ok.ts→src/cli/main.ts"
    ])
  })
})
