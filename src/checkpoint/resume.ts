// Deciding how a run starts: fresh, or continuing a run directory that already has checkpoints.
// A resume rebuilds everything from the checkpoint's own config (never from defaults) and
// accepts only the changes listed in src/config/resume-policy.ts; a refusal names the keys.
import { Data, Effect, Either } from "effect"
import * as path from "node:path"
import { applyOverride, decodeConfig, type ConfigError } from "../config/load.ts"
import { forbiddenChanges } from "../config/resume-policy.ts"
import type { PipelineConfig } from "../config/schema.ts"
import { NoCheckpoint, readCheckpointList, readStateLoose } from "../format/checkpoint-dir.ts"
import { cleanLeftovers, ensureRunDirectory } from "./run-dir.ts"

export class ResumeRefused extends Data.TaggedError("ResumeRefused")<{ readonly runDir: string; readonly changes: readonly string[] }> {
  override get message() {
    return `${this.runDir} was trained with a different config; these keys may not change on resume: ${this.changes.join("; ")} (start a new run with another run.dir instead)`
  }
}

/** The config stored in a run's newest checkpoint that has a readable state.json. */
export const storedConfig = (runDir: string): Effect.Effect<unknown, NoCheckpoint> =>
  Effect.gen(function* () {
    const dirs = yield* readCheckpointList(runDir)
    for (const dir of dirs) {
      // A state.json that is unreadable or not JSON is skipped: resume falls back past it.
      const state = yield* Effect.promise(() => readStateLoose(dir))
      if (state?.config !== undefined) return state.config
    }
    return yield* new NoCheckpoint({ runDir, reason: dirs.length === 0 ? "no checkpoints to resume from" : "no checkpoint with a readable state.json" })
  })

export const hasCheckpoints = (runDir: string) => readCheckpointList(runDir).pipe(Effect.map((dirs) => dirs.length > 0))

const decodeStored = (stored: unknown, runDir: string): Effect.Effect<PipelineConfig, ConfigError> =>
  decodeConfig(stored, path.join(runDir, "checkpoints", "…", "state.json"))

/**
 * `glassbox run <config>`: a fresh run, or — when run.dir already has checkpoints — a resume,
 * provided the config differs from the stored one only where that is allowed.
 */
export const planRun = (config: PipelineConfig) =>
  Effect.gen(function* () {
    const runDir = config.run.dir
    yield* ensureRunDirectory(runDir)
    yield* cleanLeftovers(runDir)
    if (!(yield* hasCheckpoints(runDir))) return { config, resumeFrom: undefined as string | undefined }
    const previous = yield* decodeStored(yield* storedConfig(runDir), runDir)
    const changes = forbiddenChanges(previous, { ...config, run: { ...config.run, dir: previous.run.dir } })
    if (changes.length > 0) return yield* new ResumeRefused({ runDir, changes })
    return { config, resumeFrom: runDir as string | undefined }
  })

/** `glassbox resume <run> [--set k=v]`: the stored config plus allowed overrides. */
export const planResume = (runDir: string, overrides: readonly string[]) =>
  Effect.gen(function* () {
    yield* ensureRunDirectory(runDir)
    yield* cleanLeftovers(runDir)
    let json = (yield* storedConfig(runDir)) as Record<string, never>
    const previous = yield* decodeStored(json, runDir)
    for (const assignment of overrides) {
      const next = applyOverride(json, assignment)
      if (Either.isLeft(next)) return yield* new ResumeRefused({ runDir, changes: [next.left] })
      json = next.right as Record<string, never>
    }
    const requested = yield* decodeStored(json, runDir)
    const changes = forbiddenChanges(previous, requested)
    if (changes.length > 0) return yield* new ResumeRefused({ runDir, changes })
    // The directory may have been moved or named differently: it is where we found it.
    const config: PipelineConfig = { ...requested, run: { ...requested.run, dir: runDir } }
    return { config, resumeFrom: runDir }
  })
