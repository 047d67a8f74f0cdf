// `hf:<repo>` model references against a loopback Hub (test/data/hub-server.ts) serving a small
// GPT-2-layout model with its config.json: the download goes through the data path's client
// (resumable, size- and sha256-checked), lands in the cache, and is reused offline; a dropped
// connection resumes with a Range request; damaged bytes, a missing repository and a refused
// token each end in one line naming the model.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as tf from "@tensorflow/tfjs"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PassThrough } from "node:stream"
import { hubOptions } from "../../src/data/hub.ts"
import { hubModelOptions, openModel, parseReference, type HubModelOptions } from "../../src/model/reference.ts"
import { DEFAULT_COMMIT, startHubServer, type FileFaults, type HubServer } from "../data/hub-server.ts"
import { maxAbsDiff, useBackend } from "../helpers.ts"

const fixture = path.join(import.meta.dirname, "fixtures", "foreign", "w32-f16-buffers")
const files = {
  "config.json": new Uint8Array(fs.readFileSync(path.join(fixture, "config.json"))),
  "model.safetensors": new Uint8Array(fs.readFileSync(path.join(fixture, "model.safetensors"))),
  "README.md": new TextEncoder().encode("# tiny gpt2\n")
}
const expected = JSON.parse(fs.readFileSync(path.join(fixture, "expected.json"), "utf8")) as { tokens: number[]; logits: number[] }
const REPO = "glassbox-test/tiny-gpt2"

const logitsOf = (model: { forward: (ids: tf.Tensor2D) => tf.Tensor }) =>
  tf.tidy(() => Array.from(model.forward(tf.tensor2d([expected.tokens], [1, expected.tokens.length], "int32")).dataSync()))

const servers: HubServer[] = []
const serve = async (faults: Record<string, FileFaults> = {}, extra: { listingStatuses?: number[] } = {}) => {
  const server = await startHubServer({ repos: { [REPO]: files }, faults, ...extra })
  servers.push(server)
  return server
}

/** Hub options for a test: quick retries, a fresh cache (or the given one), output captured. */
const optionsFor = (endpoint: string, cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-hub-model-")), token?: string) => {
  const out = new PassThrough()
  let text = ""
  out.on("data", (d) => (text += d))
  const options: HubModelOptions = {
    hub: hubOptions({ endpoint, retries: 2, backoffMs: 1, maxBackoffMs: 5, connectTimeoutMs: 2000, idleTimeoutMs: 2000, token }, {}),
    cacheDir,
    offline: false,
    out
  }
  return { options, cacheDir, output: () => text }
}

const open = (reference: string, hub: HubModelOptions) => openModel(reference, { hub })

describe("hf: model references", () => {
  beforeAll(() => useBackend("cpu"))
  afterAll(() => Promise.all(servers.map((s) => s.close())))

  it("short names and hf: parse to repositories; an existing path stays a path", () => {
    expect(Either.getOrThrow(parseReference("gpt2", () => false))).toEqual({ _tag: "Hub", repo: "openai-community/gpt2", revision: "main" })
    expect(Either.getOrThrow(parseReference("distilgpt2", () => false))).toEqual({ _tag: "Hub", repo: "distilbert/distilgpt2", revision: "main" })
    expect(Either.getOrThrow(parseReference("hf:openai-community/gpt2@607a30d", () => false))).toEqual({ _tag: "Hub", repo: "openai-community/gpt2", revision: "607a30d" })
    expect(Either.getOrThrow(parseReference("gpt2", () => true))).toEqual({ _tag: "Local", path: "gpt2" })
    expect(Either.getOrThrow(parseReference("runs/tiny", () => false))).toEqual({ _tag: "Local", path: "runs/tiny" })
    const bad = parseReference("hf:a/b/c@x@y", () => false)
    expect(Either.isLeft(bad) && bad.left.message).toBe('model reference "hf:a/b/c@x@y": expected hf:<owner>/<name> or hf:<owner>/<name>@<revision>')
  })

  it("HF_ENDPOINT and HF_TOKEN are honoured", () => {
    const o = hubModelOptions({ HF_ENDPOINT: "http://127.0.0.1:9/", HF_TOKEN: "hf_secret", GLASSBOX_CACHE: "/tmp/c" })
    expect(o.hub.endpoint).toBe("http://127.0.0.1:9")
    expect(o.hub.token).toBe("hf_secret")
    expect(o.cacheDir).toBe("/tmp/c")
    expect(hubModelOptions({ HF_HUB_OFFLINE: "1" }).offline).toBe(true)
  })

  it.live("downloads config.json and model.safetensors, with the token, and gives the source model's logits", () =>
    Effect.gen(function* () {
      const server = yield* Effect.promise(() => serve())
      const { options, cacheDir, output } = optionsFor(server.endpoint, undefined, "hf_token_123")
      const { model, files: local, origin } = yield* open(`hf:${REPO}`, options)
      expect(origin).toBe("config.json")
      expect(model.config.heads).toBe(4)
      expect(maxAbsDiff(logitsOf(model), expected.logits)).toBeLessThan(2e-4)
      model.dispose()
      expect(local.label).toBe(`hf:${REPO}@${DEFAULT_COMMIT.slice(0, 12)}`)
      expect(local.weights).toBe(path.join(cacheDir, "models", "glassbox-test", "tiny-gpt2", "snapshots", DEFAULT_COMMIT, "model.safetensors"))
      const fetched = server.log.map((r) => r.url)
      expect(fetched).toContain(`/api/models/${REPO}/revision/main`)
      expect(fetched).toContain(`/${REPO}/resolve/${DEFAULT_COMMIT}/model.safetensors`)
      expect(fetched).toContain(`/${REPO}/resolve/${DEFAULT_COMMIT}/config.json`)
      expect(fetched.some((u) => u.includes("README.md"))).toBe(false)
      expect(server.log.every((r) => r.authorization === "Bearer hf_token_123")).toBe(true)
      expect(output()).toContain(`hf:${REPO} model.safetensors`)
    })
  )

  it.live("a dropped connection resumes with a Range request; a run that gave up resumes in the next run", () =>
    Effect.gen(function* () {
      const size = files["model.safetensors"].length
      // First run: every attempt dies after 100 KB, more often than the retries allow.
      const server = yield* Effect.promise(() => serve({ "model.safetensors": { dropAfter: [100_000, 0, 0, 0] } }))
      const { options, cacheDir } = optionsFor(server.endpoint)
      const first = yield* Effect.flip(open(`hf:${REPO}`, options))
      expect(first._tag).toBe("ModelUnavailable")
      expect(first.message.split("\n")).toHaveLength(1)
      const part = path.join(cacheDir, "models", "glassbox-test", "tiny-gpt2", "snapshots", DEFAULT_COMMIT, "model.safetensors.part")
      expect(fs.statSync(part).size).toBe(100_000)
      // Second run, same cache: continues from byte 100,000 and drops once more on the way.
      server.options.faults!["model.safetensors"] = { dropAfter: [200_000] }
      server.log.length = 0
      const { model } = yield* open(`hf:${REPO}`, options)
      expect(maxAbsDiff(logitsOf(model), expected.logits)).toBeLessThan(2e-4)
      model.dispose()
      const ranges = server.log.filter((r) => r.url.endsWith("model.safetensors")).map((r) => r.range)
      expect(ranges).toEqual(["bytes=100000-", "bytes=300000-"])
      expect(server.bytesSent).toBeLessThan(size + 10_000) // nothing downloaded twice
      expect(fs.existsSync(part)).toBe(false)
    })
  )

  it.live("bytes that fail the sha256 are refused and not kept", () =>
    Effect.gen(function* () {
      const server = yield* Effect.promise(() => serve({ "model.safetensors": { corruptTimes: 2 } }))
      const { options, cacheDir } = optionsFor(server.endpoint)
      const error = yield* Effect.flip(open(`hf:${REPO}`, options))
      expect(error.message).toMatch(/^hf:glassbox-test\/tiny-gpt2: .*model\.safetensors arrived damaged 2 times/)
      expect(error.message.split("\n")).toHaveLength(1)
      const snapshot = path.join(cacheDir, "models", "glassbox-test", "tiny-gpt2", "snapshots", DEFAULT_COMMIT)
      expect(fs.existsSync(path.join(snapshot, "model.safetensors"))).toBe(false)
      expect(fs.existsSync(path.join(snapshot, ".complete"))).toBe(false)
      // One damaged copy is fetched again and then accepted.
      server.options.faults!["model.safetensors"] = { corruptTimes: 1 }
      const { model } = yield* open(`hf:${REPO}`, options)
      expect(maxAbsDiff(logitsOf(model), expected.logits)).toBeLessThan(2e-4)
      model.dispose()
    })
  )

  it.live("once cached, the model opens with the Hub gone, and with HF_HUB_OFFLINE without asking it", () =>
    Effect.gen(function* () {
      const server = yield* Effect.promise(() => serve())
      const { options, output } = optionsFor(server.endpoint)
      ;(yield* open(`hf:${REPO}`, options)).model.dispose()
      yield* Effect.promise(() => server.close())
      const { model } = yield* open(`hf:${REPO}`, options)
      expect(maxAbsDiff(logitsOf(model), expected.logits)).toBeLessThan(2e-4)
      model.dispose()
      expect(output()).toContain(`using the cached commit ${DEFAULT_COMMIT.slice(0, 12)}`)
      const offline = yield* open(`hf:${REPO}`, { ...options, offline: true })
      offline.model.dispose()
      const elsewhere = yield* Effect.flip(open(`hf:${REPO}@other-branch`, { ...options, offline: true }))
      expect(elsewhere.message).toContain("offline (HF_HUB_OFFLINE) and not in the cache")
    })
  )

  it.live("a missing repository is a 404 message; a refused token is a 403 message naming HF_TOKEN", () =>
    Effect.gen(function* () {
      const server = yield* Effect.promise(() => serve({}, { listingStatuses: [403] }))
      const { options } = optionsFor(server.endpoint)
      const forbidden = yield* Effect.flip(open(`hf:${REPO}`, options))
      expect(forbidden.message).toMatch(/^hf:glassbox-test\/tiny-gpt2: glassbox-test\/tiny-gpt2 at revision main refused access \(HTTP 403 from .*\); set HF_TOKEN to a token that can read this model/)
      const missing = yield* Effect.flip(open("hf:nobody/nothing@v1", options))
      expect(missing.message).toMatch(/^hf:nobody\/nothing@v1: nobody\/nothing at revision v1 does not exist \(HTTP 404 from .*\); check the repository name and revision$/)
      server.options.faults!["model.safetensors"] = { statuses: [403] }
      const fileForbidden = yield* Effect.flip(open(`hf:${REPO}`, options))
      expect(fileForbidden.message).toContain("model.safetensors at 0123456789ab")
      expect(fileForbidden.message).toContain("refused access (HTTP 403")
    })
  )
})
