// The walkthrough takes no model reference, by design: it is one training step of its own tiny
// GPT (d_model 16) worked by hand, every number printed, which a real model's millions of weights
// do not allow. `walkthrough <ref>` and `walkthrough --model <ref>` (a short name, a path, hf:)
// are refused in one line that says why and names the probes that do open real models, exit 1,
// before anything is computed or downloaded; without a reference it runs as before.
import { describe, expect, it } from "@effect/vitest"
import { runCli } from "../e2e/run-helpers.ts"

describe("walkthrough and model references", () => {
  for (const args of [["gpt2"], ["--model", "hf:openai-community/gpt2"], ["runs/tiny", "--stage", "init"], ["--model", "model.safetensors", "--html", "step.html"]]) {
    it(`walkthrough ${args.join(" ")}: one line, exit 1, the reason and where to go instead`, async () => {
      // HF_HUB_OFFLINE: were the reference ever opened, it would fail differently, not download.
      const r = await runCli(["walkthrough", ...args], undefined, { HF_HUB_OFFLINE: "1", NO_COLOR: "1" })
      expect(r.code, r.stderr).toBe(1)
      const reference = args[0] === "--model" ? args[1] : args[0]
      const lines = r.stderr.trim().split("\n")
      expect(lines, r.stderr).toHaveLength(1)
      expect(lines[0]).toContain(`walkthrough takes no model (${reference})`)
      expect(lines[0]).toContain("d_model 16")
      expect(lines[0]).toContain(`glassbox interpret logit-lens|attention|induction|patch ${reference}`)
      expect(r.stdout).toBe("")
    }, 60_000)
  }

  it("without a reference it still walks its own tiny model", async () => {
    const r = await runCli(["walkthrough", "--stage", "init", "--no-color"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("d_model 16, 2 heads of 8")
  }, 60_000)
})
