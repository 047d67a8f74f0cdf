// `glassbox walkthrough`: one training step of a tiny GPT, every number by hand, printed in the
// terminal, or written as a self-contained HTML document or as JSON for other tools.
//
// It takes no model reference, by design: the point is that every number can be checked by hand,
// which holds for a 16-wide model (a few thousand numbers) and not for a real one (GPT-2 small's
// one step is hundreds of millions of multiply-adds; its backward pass and AdamW update touch
// 124M weights). `walkthrough <ref>` or `--model <ref>` is refused in one line that points to the
// probes, which do open real models.
import { Args, Command, Options } from "@effect/cli"
import { Data, Effect, Option } from "effect"
import { writeFileAtomic } from "../format/atomic.ts"
import { colorFor } from "./stdio.ts"
import { renderHtml, renderTerminal, STAGE_NAMES, toJson, walkthrough, type WalkthroughOptions } from "../walkthrough/index.ts"

export class WalkthroughTakesNoModel extends Data.TaggedError("WalkthroughTakesNoModel")<{ readonly reference: string }> {
  override get message() {
    return (
      `walkthrough takes no model (${this.reference}): it works one training step of its own tiny GPT (d_model 16, 2 heads, 1 layer) by hand, ` +
      `every number printed, which a real model's millions of weights do not allow; to look inside ${this.reference} use glassbox interpret logit-lens|attention|induction|patch ${this.reference}`
    )
  }
}

export const walkthroughCommand = Command.make(
  "walkthrough",
  {
    reference: Args.text({ name: "model" }).pipe(Args.optional, Args.withDescription("refused in one line: the walkthrough is of its own tiny model (glassbox interpret opens real ones)")),
    model: Options.text("model").pipe(Options.optional, Options.withDescription("refused in one line: the walkthrough is of its own tiny model (glassbox interpret opens real ones)")),
    text: Options.text("text").pipe(Options.optional, Options.withDescription('a short sentence (default "I love transformers")')),
    stage: Options.choice("stage", STAGE_NAMES).pipe(Options.optional, Options.withDescription("print one stage only")),
    html: Options.file("html").pipe(Options.optional, Options.withDescription("write the whole step as a self-contained HTML document")),
    json: Options.text("json").pipe(Options.optional, Options.withDescription("write every value as JSON to this file (- for stdout)")),
    untied: Options.boolean("untied").pipe(Options.withDescription("a separate LM head instead of the tied embedding")),
    gelu: Options.choice("gelu", ["tanh", "erf"] as const).pipe(Options.withDefault("tanh" as const), Options.withDescription("GELU form: the tanh approximation (GPT-2) or the exact erf one")),
    seed: Options.integer("seed").pipe(Options.optional, Options.withDescription("seed of the initial weights (default 1337)")),
    full: Options.boolean("full").pipe(Options.withDescription("print every row and column of every matrix")),
    noColor: Options.boolean("no-color").pipe(Options.withDescription("no ANSI colours (also when NO_COLOR is set or stdout is not a terminal)"))
  },
  (o) =>
    Effect.gen(function* () {
      const reference = Option.orElse(o.reference, () => o.model)
      if (Option.isSome(reference)) return yield* new WalkthroughTakesNoModel({ reference: reference.value })
      const options: WalkthroughOptions = {
        ...Option.match(o.text, { onNone: () => ({}), onSome: (text) => ({ text }) }),
        ...Option.match(o.seed, { onNone: () => ({}), onSome: (seed) => ({ seed }) }),
        tied: !o.untied,
        gelu: o.gelu
      }
      const result = yield* walkthrough(options)
      if (Option.isSome(o.html)) {
        yield* writeFileAtomic(o.html.value, renderHtml(result))
        process.stdout.write(`wrote ${o.html.value}\n`)
      }
      if (Option.isSome(o.json)) {
        if (o.json.value === "-") process.stdout.write(toJson(result) + "\n")
        else {
          yield* writeFileAtomic(o.json.value, toJson(result))
          process.stdout.write(`wrote ${o.json.value}\n`)
        }
      }
      if (Option.isNone(o.html) && Option.isNone(o.json)) {
        const text = yield* renderTerminal(result, {
          stage: Option.getOrUndefined(o.stage),
          color: !o.noColor && colorFor(process.stdout),
          full: o.full
        })
        process.stdout.write(text + "\n")
      }
    })
).pipe(
  Command.withDescription(
    'Every number of one training step of a tiny GPT (d_model 16, 2 heads, 1 layer). Examples: glassbox walkthrough --stage scores; glassbox walkthrough --text "the cat sat" --html step.html'
  )
)
