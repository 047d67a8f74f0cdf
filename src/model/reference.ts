// Model references: everything a command accepts where it takes a model, turned into a loaded
// GPT with its tokenizer. A reference is
//   - a run directory (its latest checkpoint), a checkpoint directory, a .safetensors file,
//   - a Hugging Face-style directory (config.json + model.safetensors),
//   - `hf:<owner>/<name>[@revision]` on the Hub (or HF_ENDPOINT), or a short name
//     (gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2) for the usual repositories.
// Hub models are downloaded once, through the data path's resumable, checksummed client, into
// <cache>/models/<repo>/snapshots/<commit>/, and used from there offline afterwards.
//
// The shape is never guessed (src/model/weights.ts); the tokenizer comes from the model: its
// metadata, its tokenizer.json, or a vocabulary size only one tokenizer has. A --tokenizer
// that disagrees is refused, not obeyed: ids from another vocabulary are meaningless to it.
import { Data, Effect, Either, Schema } from "effect"
import { existsSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { resolveWeightsPath } from "../format/checkpoint-dir.ts"
import { verifyFiniteWeights, type WeightsNotFinite } from "./finite-weights.ts"
import { ReadFailed } from "../format/atomic.ts"
import { decodeHfConfig, type HfConfigInvalid } from "../format/hf-config.ts"
import type { SafetensorsError, TensorsMismatch } from "../format/safetensors.ts"
import { cacheRoot } from "../data/config.ts"
import type { HubError } from "../data/errors.ts"
import { DEFAULT_ENDPOINT, downloadFile, getJson, hubOptions, isCommit, type HubOptions } from "../data/hub.ts"
import { formatBytes, makeProgressBar } from "../data/progress.ts"
import { makeEncoding, tokenizerNames, type Encoding, type TokenizerName } from "../tokenizer/tokenizer.ts"
import { GPT } from "./gpt.ts"
import { loadWeights, type ShapeOrigin, type WeightsIncompatible } from "./weights.ts"

/** The Hub repositories behind the short names. */
export const shortModelNames: Record<string, string> = {
  gpt2: "openai-community/gpt2",
  "gpt2-medium": "openai-community/gpt2-medium",
  "gpt2-large": "openai-community/gpt2-large",
  "gpt2-xl": "openai-community/gpt2-xl",
  distilgpt2: "distilbert/distilgpt2"
}

export type ModelReference =
  | { readonly _tag: "Local"; readonly path: string }
  | { readonly _tag: "Hub"; readonly repo: string; readonly revision: string }

export class ModelReferenceInvalid extends Data.TaggedError("ModelReferenceInvalid")<{ readonly reference: string; readonly reason: string }> {
  override get message() {
    return `model reference "${this.reference}": ${this.reason}`
  }
}

/** The Hub said no, or could not be reached with nothing cached. */
export class ModelUnavailable extends Data.TaggedError("ModelUnavailable")<{ readonly reference: string; readonly reason: string }> {
  override get message() {
    return `${this.reference}: ${this.reason}`
  }
}

/** The tokenizer asked for is not the one the model was trained with, or none can be told. */
export class TokenizerMismatch extends Data.TaggedError("TokenizerMismatch")<{ readonly model: string; readonly reason: string }> {
  override get message() {
    return `${this.model}: ${this.reason}`
  }
}

const REPO = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/

/**
 * What `text` refers to. A path that exists is always local (so a directory called "gpt2" is
 * yours); otherwise `hf:` and the short names go to the Hub; anything else is a path.
 */
export const parseReference = (text: string, exists: (p: string) => boolean = existsSync): Either.Either<ModelReference, ModelReferenceInvalid> => {
  if (text.startsWith("hf:")) {
    const [repoPart, revision, ...extra] = text.slice(3).split("@")
    const repo = shortModelNames[repoPart] ?? repoPart
    if (extra.length > 0 || !REPO.test(repo) || revision === "") {
      return Either.left(new ModelReferenceInvalid({ reference: text, reason: "expected hf:<owner>/<name> or hf:<owner>/<name>@<revision>" }))
    }
    return Either.right({ _tag: "Hub", repo, revision: revision ?? "main" })
  }
  if (!exists(text) && Object.hasOwn(shortModelNames, text)) return Either.right({ _tag: "Hub", repo: shortModelNames[text], revision: "main" })
  return Either.right({ _tag: "Local", path: text })
}

/** The files behind a reference, on local disk. */
export interface ModelFiles {
  /** How to name the model to a person: the path, or hf:<repo>@<commit>. */
  readonly label: string
  readonly weights: string
  readonly hfConfig: string | undefined
  readonly tokenizerJson: string | undefined
}

const exists = (p: string) => fs.access(p).then(() => true, () => false)
const besides = async (weights: string, name: string) => {
  const candidate = path.join(path.dirname(weights), name)
  return (await exists(candidate)) ? candidate : undefined
}

/**
 * The files for a local reference: the weights as the checkpoint directory format resolves them
 * (src/format/checkpoint-dir.ts: a file as given; a checkpoint directory verified against its
 * state.json; a run directory's newest good checkpoint; a directory holding model.safetensors),
 * with a config.json and tokenizer.json beside them when present.
 */
export const localModelFiles = (target: string): Effect.Effect<ModelFiles, ReadFailed> =>
  Effect.gen(function* () {
    if (yield* Effect.promise(async () => !(await exists(path.join(target, "model.safetensors"))) && (await exists(path.join(target, "pytorch_model.bin"))))) {
      return yield* new ReadFailed({ path: target, reason: "holds pytorch_model.bin but no model.safetensors; only safetensors weights are read (save with transformers' save_pretrained(dir, safe_serialization=True))" })
    }
    const weights = yield* resolveWeightsPath(target)
    return {
      label: target,
      weights,
      hfConfig: yield* Effect.promise(() => besides(weights, "config.json")),
      tokenizerJson: yield* Effect.promise(() => besides(weights, "tokenizer.json"))
    }
  })

// ---------------------------------------------------------------------------------------------
// The Hub. Endpoints (relative to HF_ENDPOINT, default https://huggingface.co):
//   GET /api/models/{repo}/revision/{revision}  -> { sha }            (branch -> commit)
//   GET /api/models/{repo}/tree/{commit}        -> [{ type, path, size, lfs?: { oid, size } }]
//   GET /{repo}/resolve/{commit}/{path}         -> the bytes

export interface HubModelOptions {
  readonly hub: HubOptions
  /** Cache root; models go under <cacheDir>/models. */
  readonly cacheDir: string
  /** Never touch the network (HF_HUB_OFFLINE=1): use what is cached. */
  readonly offline: boolean
  /** Progress and notes go here (stderr by default). */
  readonly out?: NodeJS.WritableStream & { isTTY?: boolean }
}

/** Endpoint from HF_ENDPOINT, token from HF_TOKEN, cache from $GLASSBOX_CACHE (or ~/.cache/glassbox), offline from HF_HUB_OFFLINE. */
export const hubModelOptions = (env: NodeJS.ProcessEnv = process.env, overrides: Partial<HubOptions> = {}): HubModelOptions => ({
  hub: hubOptions({ endpoint: env.HF_ENDPOINT !== undefined && env.HF_ENDPOINT !== "" ? env.HF_ENDPOINT : DEFAULT_ENDPOINT, ...overrides }, env),
  cacheDir: cacheRoot("", env),
  offline: env.HF_HUB_OFFLINE === "1" || env.HF_HUB_OFFLINE === "true"
})

const RevisionInfo = Schema.Struct({ sha: Schema.String })
const TreeListing = Schema.Array(
  Schema.Struct({
    type: Schema.String,
    path: Schema.String,
    size: Schema.optional(Schema.Number),
    lfs: Schema.optional(Schema.Struct({ oid: Schema.String, size: Schema.optional(Schema.Number) }))
  })
)

/** The files a model needs (model.safetensors), and those used when present. */
const REQUIRED = ["model.safetensors"] as const
const OPTIONAL = ["config.json", "generation_config.json", "tokenizer.json"] as const

const encodePath = (p: string) => p.split("/").map(encodeURIComponent).join("/")
const slug = (s: string) => s.replace(/[^\w.-]/g, "_")

/** Which cached commit a branch pointed at when it was last resolved. */
const refFile = (root: string, revision: string) => path.join(root, "refs", slug(revision))

const hubReason = (e: HubError, what: string): string => {
  switch (e._tag) {
    case "ShardNotFound":
      return `${what} does not exist (HTTP 404 from ${e.url}); check the repository name and revision`
    case "ShardForbidden":
      return `${what} refused access (HTTP ${e.status} from ${e.url}); set HF_TOKEN to a token that can read this model (for a gated model, accept its terms on the Hub first)`
    default:
      return e.message
  }
}

/**
 * Makes a Hub model's files local: resolves the revision to a commit, lists the repository,
 * downloads model.safetensors (and config.json, generation_config.json, tokenizer.json when
 * present) with size and sha256 checks and resume, and records the snapshot as complete. A
 * complete snapshot is used without downloading; with the network down, the commit a branch
 * last resolved to is used.
 */
export const fetchHubModel = (
  ref: { readonly repo: string; readonly revision: string },
  options: HubModelOptions
): Effect.Effect<ModelFiles, ModelUnavailable> =>
  Effect.gen(function* () {
    const { hub } = options
    const out = options.out ?? process.stderr
    const reference = `hf:${ref.repo}${ref.revision === "main" ? "" : `@${ref.revision}`}`
    const unavailable = (reason: string) => new ModelUnavailable({ reference, reason })
    const root = path.join(options.cacheDir, "models", ...ref.repo.split("/"))
    const io = <A>(what: string, run: () => Promise<A>) =>
      Effect.tryPromise({ try: run, catch: (e) => unavailable(`model cache ${what}: ${(e as Error).message}; check free space and permissions of the cache ($GLASSBOX_CACHE)`) })
    const cachedCommit = yield* io("read", () => fs.readFile(refFile(root, ref.revision), "utf8").then((s) => s.trim(), () => undefined))
    const snapshotOf = (commit: string) => path.join(root, "snapshots", commit)
    const complete = (commit: string) => exists(path.join(snapshotOf(commit), ".complete"))

    const filesIn = (commit: string): Effect.Effect<ModelFiles, ModelUnavailable> =>
      io("read", async () => {
        const dir = snapshotOf(commit)
        const present = async (name: string) => ((await exists(path.join(dir, name))) ? path.join(dir, name) : undefined)
        return { label: `hf:${ref.repo}@${commit.slice(0, 12)}`, weights: path.join(dir, "model.safetensors"), hfConfig: await present("config.json"), tokenizerJson: await present("tokenizer.json") }
      })

    // Branch → commit: by the network when it answers, else by what the last run recorded.
    let commit: string
    if (isCommit(ref.revision)) commit = ref.revision.toLowerCase()
    else if (options.offline) {
      if (cachedCommit === undefined) return yield* unavailable(`offline (HF_HUB_OFFLINE) and not in the cache ${root}; run once with the network to download it`)
      commit = cachedCommit
    } else {
      // With a cached copy, one quick try: a dead network should not hold up a model that is already here.
      const quick = cachedCommit !== undefined && (yield* Effect.promise(() => complete(cachedCommit)))
      const url = `${hub.endpoint}/api/models/${ref.repo}/revision/${encodeURIComponent(ref.revision)}`
      const resolved = yield* getJson(url, quick ? { ...hub, retries: 1, backoffMs: Math.min(hub.backoffMs, 200) } : hub).pipe(
        Effect.flatMap(({ json }) => Schema.decodeUnknown(RevisionInfo)(json).pipe(Effect.mapError(() => unavailable(`${url} gave no commit id`)))),
        Effect.map((info) => info.sha),
        Effect.either
      )
      if (Either.isRight(resolved)) commit = resolved.right
      else if (quick && resolved.left._tag === "ShardUnavailable") {
        out.write(`${reference}: the Hub is unreachable (${resolved.left.reason}); using the cached commit ${cachedCommit.slice(0, 12)}\n`)
        commit = cachedCommit
      } else {
        const e = resolved.left
        return yield* unavailable(e._tag === "ModelUnavailable" ? e.reason : hubReason(e, `${ref.repo} at revision ${ref.revision}`))
      }
    }
    if (yield* Effect.promise(() => complete(commit))) {
      if (!isCommit(ref.revision)) yield* io("write", () => writeRef(root, ref.revision, commit))
      return yield* filesIn(commit)
    }
    if (options.offline) return yield* unavailable(`offline (HF_HUB_OFFLINE) and commit ${commit} is not in the cache ${root}`)

    const treeUrl = `${hub.endpoint}/api/models/${ref.repo}/tree/${commit}`
    const listing = yield* getJson(treeUrl, hub).pipe(
      Effect.mapError((e) => unavailable(hubReason(e, `${ref.repo} at ${commit}`))),
      Effect.flatMap(({ json }) => Schema.decodeUnknown(TreeListing)(json).pipe(Effect.mapError(() => unavailable(`${treeUrl} is not a Hub file listing`))))
    )
    const byPath = new Map(listing.filter((e) => e.type === "file").map((e) => [e.path, e] as const))
    for (const name of REQUIRED) {
      if (!byPath.has(name)) {
        const other = ["pytorch_model.bin", "model.safetensors.index.json", "tf_model.h5"].filter((n) => byPath.has(n))
        return yield* unavailable(`the repository has no ${name}${other.length > 0 ? ` (it has ${other.join(", ")}; only a single model.safetensors is read)` : ""}`)
      }
    }
    const dir = snapshotOf(commit)
    yield* io("create", () => fs.mkdir(dir, { recursive: true }))
    for (const name of [...REQUIRED, ...OPTIONAL]) {
      const entry = byPath.get(name)
      if (entry === undefined) continue
      const final = path.join(dir, name)
      if (yield* Effect.promise(() => exists(final))) continue
      const size = entry.lfs?.size ?? entry.size
      const bar = name === "model.safetensors" ? makeProgressBar({ label: `${reference} ${name}`, total: size, unit: "bytes", out }) : undefined
      const url = `${hub.endpoint}/${ref.repo}/resolve/${commit}/${encodePath(name)}`
      yield* downloadFile({ url, partPath: `${final}.part`, size, sha256: entry.lfs?.oid }, hub, (p) => bar?.update(p.received)).pipe(
        Effect.mapError((e) => unavailable(hubReason(e, `${ref.repo}/${name} at ${commit}`)))
      )
      bar?.finish()
      yield* io("write", () => fs.rename(`${final}.part`, final))
    }
    yield* io("write", async () => {
      await fs.writeFile(path.join(dir, ".complete"), `${new Date().toISOString()}\n`)
      if (!isCommit(ref.revision)) await writeRef(root, ref.revision, commit)
    })
    const weightsSize = byPath.get("model.safetensors")?.lfs?.size ?? byPath.get("model.safetensors")?.size
    if (weightsSize !== undefined) out.write(`${reference}: ${formatBytes(weightsSize)} cached in ${dir}\n`)
    return yield* filesIn(commit)
  })

const writeRef = async (root: string, revision: string, commit: string) => {
  await fs.mkdir(path.join(root, "refs"), { recursive: true })
  await fs.writeFile(refFile(root, revision), `${commit}\n`)
}

/** The local files behind any reference. */
export const modelFiles = (
  reference: string,
  hub: HubModelOptions = hubModelOptions()
): Effect.Effect<ModelFiles, ModelReferenceInvalid | ReadFailed | ModelUnavailable> =>
  Effect.flatMap(parseReference(reference), (ref): Effect.Effect<ModelFiles, ReadFailed | ModelUnavailable> =>
    ref._tag === "Local" ? localModelFiles(ref.path) : fetchHubModel(ref, hub))

// ---------------------------------------------------------------------------------------------
// Tokenizer from the model.

/** Embedding rows each tokenizer needs (its ids, end-of-text included). */
const vocabSizes: Record<TokenizerName, number> = { gpt2: 50257, cl100k_base: 100277, o200k_base: 200019, bytes: 257 }

const tokenizerOfSize = (size: number): TokenizerName | undefined => tokenizerNames.find((name) => vocabSizes[name] === size)

/** A tokenizer.json's vocabulary size (BPE vocab plus added tokens), when it is a GPT-2-style BPE. */
const tokenizerJsonSize = (text: string): number | undefined => {
  try {
    const json = JSON.parse(text) as { model?: { type?: string; vocab?: Record<string, number> }; added_tokens?: Array<{ id: number }> }
    if (json.model?.vocab === undefined) return undefined
    const ids = new Set(Object.values(json.model.vocab))
    for (const t of json.added_tokens ?? []) ids.add(t.id)
    return ids.size
  } catch {
    return undefined
  }
}

/**
 * The tokenizer for a loaded model: the one its metadata records, else the one its
 * tokenizer.json or its vocabulary size identifies. `requested` (--tokenizer) must agree.
 */
export const chooseTokenizer = (
  label: string,
  known: { readonly recorded: string | undefined; readonly tokenizerJson: number | undefined; readonly vocabSize: number },
  requested: TokenizerName | undefined
): Either.Either<TokenizerName, TokenizerMismatch> => {
  const fail = (reason: string) => Either.left(new TokenizerMismatch({ model: label, reason }))
  const recorded = known.recorded !== undefined && (tokenizerNames as readonly string[]).includes(known.recorded) ? (known.recorded as TokenizerName) : undefined
  if (known.recorded !== undefined && recorded === undefined) {
    return fail(`metadata glassbox.tokenizer is "${known.recorded}", which is not one of ${tokenizerNames.join(", ")}`)
  }
  const fromJson = known.tokenizerJson === undefined ? undefined : tokenizerOfSize(known.tokenizerJson)
  const identified = recorded ?? fromJson ?? tokenizerOfSize(known.vocabSize)
  const why = recorded !== undefined ? "its metadata records" : fromJson !== undefined ? "its tokenizer.json is" : "its vocabulary size identifies"
  if (identified !== undefined && requested !== undefined && requested !== identified) {
    return fail(`--tokenizer ${requested} does not match the model: ${why} ${identified} (vocabulary ${vocabSizes[identified]}); drop --tokenizer`)
  }
  const chosen = requested ?? identified
  if (chosen === undefined) {
    return fail(`cannot tell which tokenizer the model uses (no glassbox metadata or tokenizer.json, vocabulary ${known.vocabSize}); pass --tokenizer`)
  }
  if (vocabSizes[chosen] > known.vocabSize) {
    return fail(`tokenizer ${chosen} has ${vocabSizes[chosen]} ids but the model's embedding has ${known.vocabSize} rows`)
  }
  return Either.right(chosen)
}

// ---------------------------------------------------------------------------------------------
// Everything together.

export interface OpenModelOptions {
  /** --heads, for a weights file that records no shape. */
  readonly heads?: number
  /** --tokenizer: must agree with the model's own. */
  readonly tokenizer?: TokenizerName
  readonly hub?: HubModelOptions
}

export interface OpenedModel {
  readonly model: GPT
  readonly encoding: Encoding
  readonly files: ModelFiles
  /** Where the shape came from. */
  readonly origin: ShapeOrigin
}

export type OpenModelError =
  | WeightsNotFinite
  | ModelReferenceInvalid
  | ReadFailed
  | ModelUnavailable
  | HfConfigInvalid
  | SafetensorsError
  | TensorsMismatch
  | WeightsIncompatible
  | TokenizerMismatch

/** Opens any model reference: files (downloading if needed), shape, weights, tokenizer. */
export const openModel = (reference: string, options: OpenModelOptions = {}): Effect.Effect<OpenedModel, OpenModelError> =>
  Effect.gen(function* () {
    const files = yield* modelFiles(reference, options.hub)
    const readText = (file: string) => Effect.tryPromise({ try: () => fs.readFile(file, "utf8"), catch: (e) => new ReadFailed({ path: file, reason: (e as Error).message }) })
    const hfConfig = files.hfConfig === undefined ? undefined : { file: files.hfConfig, config: yield* Either.match(decodeHfConfig(yield* readText(files.hfConfig), files.hfConfig), { onLeft: Effect.fail, onRight: Effect.succeed }) }
    const loaded = yield* loadWeights(files.weights, { ...(hfConfig === undefined ? {} : { hfConfig }), ...(options.heads === undefined ? {} : { heads: options.heads }) })
    yield* verifyFiniteWeights(loaded.model, files.weights).pipe(Effect.tapError(() => Effect.sync(() => loaded.model.dispose())))
    const tokenizerJson = files.tokenizerJson === undefined ? undefined : tokenizerJsonSize(yield* readText(files.tokenizerJson))
    const chosen = chooseTokenizer(files.label, { recorded: loaded.tokenizer, tokenizerJson, vocabSize: loaded.model.config.vocabSize }, options.tokenizer)
    if (Either.isLeft(chosen)) {
      loaded.model.dispose()
      return yield* chosen.left
    }
    return { model: loaded.model, encoding: makeEncoding(chosen.right), files, origin: loaded.origin }
  })

// ---------------------------------------------------------------------------------------------
// The starting point of fine-tuning.

/** `model.init` names a model that does not fit the rest of the config. */
export class InitModelMismatch extends Data.TaggedError("InitModelMismatch")<{ readonly init: string; readonly reason: string }> {
  override get message() {
    return `model.init ${this.init}: ${this.reason}`
  }
}

/**
 * The model a fine-tuning run starts from: the weights and shape of `init`, with the config's
 * dropout. Its tokenizer must be the config's, and the training window must fit its positions.
 */
export const openInitModel = (
  init: string,
  run: { readonly tokenizer: TokenizerName; readonly window: number; readonly dropout: number },
  options: OpenModelOptions = {}
): Effect.Effect<OpenedModel, OpenModelError | InitModelMismatch> =>
  Effect.gen(function* () {
    const opened = yield* openModel(init, options)
    const c = opened.model.config
    const refuse = (reason: string) => {
      opened.model.dispose()
      return Effect.fail(new InitModelMismatch({ init, reason }))
    }
    if (opened.encoding.name !== run.tokenizer) {
      return yield* refuse(`the model's tokenizer is ${opened.encoding.name} but the config says "tokenizer": "${run.tokenizer}"; set "tokenizer": "${opened.encoding.name}"`)
    }
    if (c.position === "learned" && run.window > c.context) {
      return yield* refuse(`model.context ${run.window} (the training window) exceeds the model's ${c.context} learned positions`)
    }
    // Same parameters, the config's dropout: a GPT's config is plain data, its weights are the variables.
    return { ...opened, model: new GPT({ ...c, dropout: run.dropout }, opened.model.params) }
  })
