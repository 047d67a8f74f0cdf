// Test runner settings: the suite must finish in minutes on two cores, so tests run in
// forked processes (tfjs backends hold global state) with generous per-test timeouts: they
// guard against hangs, and a CI machine shared with other jobs may run several times slower.
// Long training runs must let the event loop turn (the pretrain loop yields after every step;
// end-to-end tests drive real child processes), or vitest's worker RPC times out under load.
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 300_000,
    hookTimeout: 300_000
  }
})
