// Every command that loads a checkpoint verifies it the way resume does: a damaged newest
// checkpoint in a run directory is skipped with a warning naming the damaged file (the newest
// good one is used), and a damaged checkpoint named directly is refused with one line, exit 1.
// Exercised on real `glassbox` processes for generate, chat, eval and interpret.
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { runCli, writeRunConfig } from "../e2e/run-helpers.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "glassbox-damaged-"))
const pristine = path.join(root, "pristine", "run")

/** A copy of the trained run whose newest checkpoint (step 3) has one exponent byte flipped. */
const damagedRun = (name: string) => {
  const copy = path.join(root, name)
  fs.cpSync(pristine, copy, { recursive: true })
  const file = path.join(copy, "checkpoints", "step-00000003", "model.safetensors")
  const bytes = fs.readFileSync(file)
  // The last byte of a little-endian float32 holds its sign and the top exponent bits.
  bytes[bytes.length - 1] ^= 0x7f
  fs.writeFileSync(file, bytes)
  return { run: copy, damaged: path.join(copy, "checkpoints", "step-00000003"), file }
}

const commands: Record<string, { args: (target: string) => string[]; input?: string }> = {
  generate: { args: (t) => ["generate", t, "--prompt", "a", "--max-new-tokens", "2", "--backend", "wasm"] },
  chat: { args: (t) => ["chat", t, "--backend", "wasm"], input: "/quit\n" },
  eval: { args: (t) => ["eval", t, "--tokens", "64", "--backend", "wasm"] },
  interpret: { args: (t) => ["interpret", "logit-lens", t, "--text", "ab", "--backend", "wasm"] }
}

describe("commands that load a checkpoint verify it", () => {
  beforeAll(async () => {
    fs.mkdirSync(path.join(root, "pristine"))
    const config = writeRunConfig(path.join(root, "pristine"), { steps: 3, dModel: 16, context: 16, every: 1, keep: 3 })
    const r = await runCli(["run", config])
    if (r.code !== 0) throw new Error(`training the fixture run failed: ${r.stderr}`)
  }, 180_000)

  for (const [name, command] of Object.entries(commands)) {
    it(`${name}: a run directory whose newest checkpoint is damaged falls back with a warning naming the file`, async () => {
      const { run, file } = damagedRun(`${name}-fallback`)
      const r = await runCli(command.args(run), command.input)
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toContain(`warning: checkpoint ${file}: checksum mismatch`)
      expect(r.stderr).toContain("step-00000002")
      expect(r.stderr).not.toMatch(/internal error/)
    }, 120_000)

    it(`${name}: a damaged checkpoint directory named directly is refused with one line, exit 1`, async () => {
      const { damaged, file } = damagedRun(`${name}-direct`)
      const r = await runCli(command.args(damaged), command.input)
      expect(r.code, r.stderr).toBe(1)
      const lines = r.stderr.trim().split("\n")
      expect(lines, r.stderr).toHaveLength(1)
      expect(lines[0]).toContain(file)
      expect(lines[0]).toContain("checksum mismatch")
    }, 120_000)
  }

  it("a bare .safetensors file (no checksum to check) whose numbers were turned into NaN/Infinity is refused naming the tensor", async () => {
    const file = path.join(root, "bare.safetensors")
    const bytes = fs.readFileSync(path.join(pristine, "checkpoints", "step-00000003", "model.safetensors"))
    const headerLength = Number(bytes.readBigUInt64LE(0))
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, { data_offsets: [number, number] }>
    const [start] = header["h.0.attn.c_attn.weight"].data_offsets
    // Exponent bits all set: 0x7f800000 is +Infinity, 0x7fc00000 NaN.
    for (let i = 0; i < 8; i++) bytes.writeUInt32LE(i % 2 === 0 ? 0x7f800000 : 0x7fc00000, 8 + headerLength + start + 4 * i)
    fs.writeFileSync(file, bytes)
    for (const name of ["generate", "chat", "interpret"]) {
      const r = await runCli(commands[name].args(file), commands[name].input)
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr.trim().split("\n"), r.stderr).toEqual([`glassbox: ${file}: tensor h.0.attn.c_attn.weight holds 8 values that are not finite numbers (NaN or ±Infinity); the file is damaged`])
    }
  }, 180_000)

  it("a run whose every checkpoint is damaged is refused with one line naming them", async () => {
    const { run } = damagedRun("all-damaged")
    for (const step of ["step-00000001", "step-00000002"]) fs.writeFileSync(path.join(run, "checkpoints", step, "state.json"), "{ not json")
    const r = await runCli(commands.generate.args(run))
    expect(r.code, r.stderr).toBe(1)
    const lines = r.stderr.trim().split("\n")
    expect(lines, r.stderr).toHaveLength(1)
    expect(lines[0]).toContain("no usable checkpoint")
    expect(lines[0]).toContain("state.json: not valid JSON")
  }, 120_000)
})
