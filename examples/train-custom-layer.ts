// Train a few steps with a custom layer: a Trainer layer of our own that decorates the AdamW one
// with a log of every step it takes (any layer can wrap another this way), over a fresh model.
//   npx tsx examples/train-custom-layer.ts
import { Effect, Layer } from "effect"
import { Model, TensorBackendLive, Trainer, type StepResult, type TrainerLayer } from "glassbox"

/** AdamW, plus a log of every step it takes. */
const loggedTrainer = (log: StepResult[]): TrainerLayer => (config, seed, restored) =>
  Layer.effect(
    Trainer,
    Effect.map(Trainer, (inner) => ({ ...inner, step: (windows) => Effect.tap(inner.step(windows), (r) => Effect.sync(() => log.push(r))) }))
  ).pipe(Layer.provide(Trainer.live(config, seed, restored)))

export const trainFewSteps = (steps: number) =>
  Effect.gen(function* () {
    const log: StepResult[] = []
    const model = Model.init({ vocabSize: 257, context: 16, dModel: 32, layers: 1, heads: 2, dFF: 64, dropout: 0, position: "learned", tied: true, gelu: "tanh", lnEps: 1e-5 }, 1, "bytes")
    const trainer = loggedTrainer(log)({ schedule: { lr: 1e-2, minLr: 1e-3, warmupSteps: 1, totalSteps: steps }, adamw: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, decayEmbeddings: false }, clip: 1 }, 1)
    yield* Effect.gen(function* () {
      const { encoding } = yield* Model
      const t = yield* Trainer
      // One window of 16 tokens (+1 for the last target), the same text every step.
      const ids = Int32Array.from(encoding.encode("Call me Ishmael. Some years ago").slice(0, 17))
      for (let i = 0; i < steps; i++) yield* t.step([{ ids, batch: 1, context: 16 }])
    }).pipe(Effect.provide(trainer.pipe(Layer.provideMerge(model))))
    return log.map((r) => ({ step: r.step, loss: r.loss }))
  }).pipe(Effect.provide(TensorBackendLive("auto")))

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const { step, loss } of await Effect.runPromise(trainFewSteps(10))) console.log(`step ${step}: loss ${loss.toFixed(4)}`)
}
