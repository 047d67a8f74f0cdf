// Test runner settings: the suite must finish in minutes on two cores, so tests run in
// forked processes (tfjs backends hold global state) with generous per-test timeouts.
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
})
