// The Model service (DESIGN.md §3): a GPT with its config and tokenizer, behind one tag, so a
// pipeline or experiment asks for "the model" and the layer decides where it came from: fresh
// GPT-2 initialisation from a config, any model reference (run or checkpoint directory,
// .safetensors file, Hugging Face directory, hf:<repo>), or a GPT the caller already holds.
// Layers that create the GPT free its tensors when their scope closes; `Model.fromGPT` borrows.
// One conformance suite (test/model/service.test.ts) runs against every layer.
import type * as tf from "@tensorflow/tfjs"
import { Context, Effect, Layer } from "effect"
import { makeEncoding, type Encoding, type TokenizerName } from "../tokenizer/tokenizer.ts"
import type { PipelineConfig } from "../config/schema.ts"
import type { ModelConfig } from "./config.ts"
import { initGPT, type ForwardOptions, type GPT } from "./gpt.ts"
import { openInitModel, openModel, type InitModelMismatch, type OpenModelError, type OpenModelOptions } from "./reference.ts"

export interface ModelShape {
  /** The GPT itself: parameters (GPT-2 names), forward pass, hook points. */
  readonly gpt: GPT
  readonly config: ModelConfig
  readonly encoding: Encoding
  /** Logits [B, T, V] for ids [B, T]; `hooks` sees (and may replace) every named activation. */
  readonly forward: (ids: tf.Tensor2D, options?: ForwardOptions) => tf.Tensor3D
}

/** The model section of a pipeline config, for a tokenizer of `vocabSize` ids. */
export const modelConfigOf = (config: PipelineConfig, vocabSize: number): ModelConfig => ({
  vocabSize,
  // The learned position table may be longer than the windows trained on.
  context: config.model.positions ?? config.model.context,
  dModel: config.model.d_model,
  layers: config.model.layers,
  heads: config.model.heads,
  dFF: config.model.d_ff,
  dropout: config.model.dropout,
  position: config.model.position,
  tied: config.model.tied,
  gelu: config.model.gelu,
  lnEps: config.model.ln_eps
})

const shapeOf = (gpt: GPT, encoding: Encoding): ModelShape => ({
  gpt,
  config: gpt.config,
  encoding,
  forward: (ids, options) => gpt.forward(ids, options)
})

const owned = <E>(open: Effect.Effect<{ model: GPT; encoding: Encoding }, E>) =>
  Effect.acquireRelease(open, ({ model }) => Effect.sync(() => model.dispose())).pipe(Effect.map(({ model, encoding }) => shapeOf(model, encoding)))

export class Model extends Context.Tag("glassbox/Model")<Model, ModelShape>() {
  /** GPT-2 initialisation of `config` from `seed`; freed with the layer. */
  static readonly init = (config: ModelConfig, seed: number, tokenizer: TokenizerName): Layer.Layer<Model> =>
    Layer.scoped(Model, owned(Effect.sync(() => ({ model: initGPT(config, seed), encoding: makeEncoding(tokenizer) }))))

  /** Any model reference (see src/model/reference.ts); freed with the layer. */
  static readonly fromReference = (reference: string, options: OpenModelOptions = {}): Layer.Layer<Model, OpenModelError> =>
    Layer.scoped(Model, owned(openModel(reference, options)))

  /**
   * What a pipeline config describes: `model.init`'s weights and shape with the config's dropout
   * (fine-tuning), or fresh GPT-2 initialisation of the model section from `run.seed`.
   */
  static readonly fromConfig = (config: PipelineConfig): Layer.Layer<Model, OpenModelError | InitModelMismatch> => {
    const init = config.model.init
    if (init === undefined) {
      const encoding = makeEncoding(config.tokenizer)
      return Model.init(modelConfigOf(config, encoding.vocabSize), config.run.seed, config.tokenizer)
    }
    return Layer.scoped(Model, owned(openInitModel(init, { tokenizer: config.tokenizer, window: config.model.context, dropout: config.model.dropout })))
  }

  /** A GPT the caller owns (and frees). */
  static readonly fromGPT = (gpt: GPT, encoding: Encoding): Layer.Layer<Model> => Layer.succeed(Model, shapeOf(gpt, encoding))
}
