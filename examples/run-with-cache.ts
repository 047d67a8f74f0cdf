// Run a prompt with a cache of every hook activation (TransformerLens's run_with_cache): one
// forward pass, and afterwards every named activation is there to read.
//   npx tsx examples/run-with-cache.ts runs/tiny "The whale"
import { Effect } from "effect"
import { Model, TensorBackendLive } from "glassbox"
import { allHookNames, idsTensor, runWithCache } from "glassbox/interpret"

export const cacheEverything = (reference: string, prompt: string) =>
  Effect.gen(function* () {
    const model = yield* Model
    const ids = idsTensor([model.encoding.encode(prompt)])
    const { logits, cache } = runWithCache(model.gpt, ids, allHookNames(model.config))
    const shapes = Object.fromEntries(cache.names().map((name) => [name, cache.get(name).shape]))
    ids.dispose()
    logits.dispose()
    cache.dispose()
    return shapes
  }).pipe(Effect.provide(Model.fromReference(reference)), Effect.provide(TensorBackendLive("auto")))

if (import.meta.url === `file://${process.argv[1]}`) {
  const [reference = "runs/tiny", prompt = "The whale"] = process.argv.slice(2)
  for (const [name, shape] of Object.entries(await Effect.runPromise(cacheEverything(reference, prompt)))) console.log(name, shape)
}
