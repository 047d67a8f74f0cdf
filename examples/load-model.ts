// Load a model by reference and continue a prompt. Any model reference works: a run directory,
// a checkpoint directory, a .safetensors file, a Hugging Face directory, or hf:<repo>.
//   npx tsx examples/load-model.ts runs/tiny "The whale"
import { Effect, Layer, Stream } from "effect"
import { Generator, Model, presets, TensorBackendLive } from "glassbox"

export const continuePrompt = (reference: string, prompt: string) =>
  Effect.gen(function* () {
    const model = yield* Model
    const generator = yield* Generator
    const ids = model.encoding.encode(prompt)
    const tokens = yield* generator
      .generate(ids, { maxNewTokens: 20, sampling: presets.balanced, seed: 1, stopToken: model.encoding.eot })
      .pipe(Stream.runCollect)
    return prompt + model.encoding.decode([...tokens])
  }).pipe(
    Effect.provide(Generator.live.pipe(Layer.provideMerge(Model.fromReference(reference)))),
    Effect.provide(TensorBackendLive("auto"))
  )

if (import.meta.url === `file://${process.argv[1]}`) {
  const [reference = "runs/tiny", prompt = "The"] = process.argv.slice(2)
  console.log(await Effect.runPromise(continuePrompt(reference, prompt)))
}
