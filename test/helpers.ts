/**
 * Moved: the suite's helpers live in ./fixtures.ts. This file only re-exports,
 * under their old names, the helpers it used to define, for the test files
 * that still import them from here; import from "./fixtures.js" in new tests,
 * and delete this file once nothing imports it.
 */
export {
  deferred,
  expectStillWorking,
  failOnUnhandledRejections,
  FakeClock,
  idleWorker,
  settle,
  TestWorker,
  track,
  type TestTimer as FakeTimer,
  type Tracked as Outcome,
} from "./fixtures.js";
