// `glassbox config show <config>`: the resolved config (defaults filled in, overrides applied),
// so a user sees exactly what a run will use. `glassbox config schema`: a JSON Schema of the
// config format for editors (validation and completion in config/*.json).
import { Args, Command, Options } from "@effect/cli"
import { Effect, JSONSchema, Option } from "effect"
import { writeFileAtomic } from "../format/atomic.ts"
import { loadConfig } from "../config/load.ts"
import { PipelineConfig } from "../config/schema.ts"

const show = Command.make(
  "show",
  {
    config: Args.file({ name: "config", exists: "yes" }).pipe(Args.withDescription("a pipeline config, e.g. config/tiny.json")),
    set: Options.text("set").pipe(Options.repeated, Options.withDescription("override any leaf, e.g. --set train.lr=1e-3"))
  },
  ({ config, set }) => loadConfig(config, set).pipe(Effect.flatMap((c) => Effect.sync(() => process.stdout.write(JSON.stringify(c, null, 2) + "\n"))))
).pipe(Command.withDescription("Print the resolved config: defaults filled in, overrides applied. Example: glassbox config show config/tiny.json --set train.steps=10"))

export const configJsonSchema = () => JSON.stringify(JSONSchema.make(PipelineConfig), null, 2) + "\n"

const schema = Command.make("schema", { out: Options.file("out").pipe(Options.optional, Options.withDescription("write to this file instead of stdout")) }, ({ out }) =>
  Option.match(out, {
    onNone: () => Effect.sync(() => process.stdout.write(configJsonSchema())),
    onSome: (file) => writeFileAtomic(file, configJsonSchema()).pipe(Effect.zipRight(Effect.sync(() => process.stdout.write(`wrote ${file}\n`))))
  })
).pipe(Command.withDescription(`A JSON Schema of the config format, for editors.
Add "$schema": "./glassbox.schema.json" to a config for validation and completion.
Example: glassbox config schema --out config/glassbox.schema.json`))

export const configCommand = Command.make("config").pipe(
  Command.withDescription("Inspect configs: show (resolved), schema (JSON Schema for editors)."),
  Command.withSubcommands([show, schema])
)
