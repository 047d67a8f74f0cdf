// Patch an activation: run a corrupted prompt, but with the residual stream at one layer and one
// position taken from the clean prompt's run, and see how close the prediction at the end comes
// back to the clean one (0 = fully restored).
//   npx tsx examples/patch-activation.ts runs/tiny "The whale" "The whole" 0 6
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import { Model, TensorBackendLive } from "glassbox"
import { idsTensor, replaceHook, runWithCache } from "glassbox/interpret"

export const patchResidual = (reference: string, clean: string, corrupted: string, layer: number, position: number) =>
  Effect.gen(function* () {
    const model = yield* Model
    const site = `blocks.${layer}.hook_resid_post` // [1, T, d_model]
    const cleanIds = idsTensor([model.encoding.encode(clean)])
    const corruptedIds = idsTensor([model.encoding.encode(corrupted)])
    // The clean run's activation at `site`, kept in a cache.
    const { logits: cleanLogits, cache } = runWithCache(model.gpt, cleanIds, [site])
    const corruptedLogits = model.forward(corruptedIds)
    // The corrupted prompt again, with row `position` of `site` taken from the clean run.
    const patch = (activation: tf.Tensor) => {
      const T = activation.shape[1]!
      const parts = [tf.slice(activation, [0, 0, 0], [1, position, -1]), tf.slice(cache.get(site), [0, position, 0], [1, 1, -1]), tf.slice(activation, [0, position + 1, 0], [1, T - position - 1, -1])]
      return tf.concat(parts, 1)
    }
    const patchedLogits = model.forward(corruptedIds, { hooks: replaceHook(site, patch) })
    // Distance of each run's logits at the last position from the clean run's.
    const last = (t: tf.Tensor3D) => tf.slice(t, [0, t.shape[1] - 1, 0], [1, 1, -1])
    const distance = (a: tf.Tensor3D) => tf.tidy(() => tf.norm(tf.sub(last(a), last(cleanLogits))).dataSync()[0])
    const result = { corrupted: distance(corruptedLogits), patched: distance(patchedLogits) }
    tf.dispose([cleanIds, corruptedIds, cleanLogits, corruptedLogits, patchedLogits])
    cache.dispose()
    return result
  }).pipe(Effect.provide(Model.fromReference(reference)), Effect.provide(TensorBackendLive("auto")))

if (import.meta.url === `file://${process.argv[1]}`) {
  const [reference = "runs/tiny", clean = "The whale", corrupted = "The whole", layer = "0", position = "6"] = process.argv.slice(2)
  console.log(await Effect.runPromise(patchResidual(reference, clean, corrupted, Number(layer), Number(position))))
}
