import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // examples/*.test.ts show users how to test their manifolds with the
    // testing kit; running them here keeps the examples honest.
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    // Property tests run thousands of engine lifetimes; give them room on 2 cores.
    testTimeout: 120_000,
    // An unhandled rejection anywhere fails the run: the engine promises none.
    dangerouslyIgnoreUnhandledErrors: false,
  },
});
