// Test runner configuration: one suite for the whole workspace (see test/README.md for categories).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.{ts,tsx}", "test/**/*.test.{ts,tsx}"],
    // A checkout uid 65534 cannot reach (a clone under /root) gets its C programs staged for it.
    globalSetup: ["test/setup/stage-for-nobody.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Sandboxes and builds use both cores; running many test files at once only adds noise.
    maxWorkers: 2,
  },
});
