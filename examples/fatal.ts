/**
 * Fatal errors: `isFatal` picks the errors that stop the whole engine,
 * `worstError` ranks them when several arrive, and `wait()` rejects with the
 * worst one, after the config `filter`, which may also turn it into a clean
 * stop.
 *
 *   npx tsx examples/fatal.ts
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createWorker, Engine, errorIs, manifold } from "../src/index.js";

/** Errors that mean "this agent cannot go on", ranked by severity. */
class FatalAgentError extends Error {
  override name = "FatalAgentError";
  constructor(
    message: string,
    readonly severity: number,
  ) {
    super(message);
  }
}

/** Not a failure: the agent must stop so that a new version can take over. */
class UpgradeRequested extends Error {
  override name = "UpgradeRequested";
}

const severity = (error: unknown): number => (error instanceof FatalAgentError ? error.severity : 0);

/** A manifold whose worker fails with `error` after `ms`. */
const failsAfter = (ms: number, error: Error) =>
  manifold({
    inputs: [],
    start: () =>
      createWorker(async (signal) => {
        await sleep(ms, undefined, { signal });
        throw error;
      }),
  });

/** A manifold whose worker runs until killed. */
const idle = manifold({
  inputs: [],
  start: () => createWorker((signal) => sleep(60_000, undefined, { signal })),
});

/** A worker that flushes its state when killed, and finds the state file corrupt. */
const stateStore = manifold({
  inputs: [],
  start: () =>
    createWorker(async (signal) => {
      await sleep(60_000, undefined, { signal }).catch(() => undefined);
      throw new FatalAgentError("state file corrupt (found while flushing on stop)", 3);
    }),
});

// ---- 1. Two fatal errors: the worse one wins, wait() rejects with it.
{
  const engine = new Engine({
    isFatal: (error) => errorIs(error, FatalAgentError) || errorIs(error, UpgradeRequested),
    worstError: (a, b) => (severity(a) >= severity(b) ? a : b),
  });
  engine.installAll({
    "disk-watcher": failsAfter(50, new FatalAgentError("disk full", 1)), // the first fatal error: the engine stops
    "state-store": stateStore, // killed by the shutdown, it fails worse
    "not-fatal": failsAfter(20, new Error("a hiccup (not fatal: restarted after errorDelay)")),
    uploader: idle,
  });
  try {
    await engine.wait();
  } catch (error) {
    console.log(`1. wait() rejected: ${String(error)}`);
  }
  const report = engine.report();
  console.log(`   report: state=${report.state}, error=${report.error}`);
  for (const [name, entry] of Object.entries(report.manifolds)) {
    console.log(`   ${name.padEnd(12)} ${entry.state}  ${entry.error ?? ""}`);
  }
}

// ---- 2. The config filter: a requested upgrade stops the engine, but wait() resolves.
{
  const engine = new Engine({
    isFatal: (error) => errorIs(error, UpgradeRequested),
    filter: (error) => (errorIs(error, UpgradeRequested) ? undefined : error),
  });
  engine.installAll({
    upgrader: failsAfter(30, new UpgradeRequested("upgrade to 2.1.0 requested")),
    uploader: idle,
  });
  await engine.wait(); // resolves: the filter said this is a clean stop
  console.log(`2. wait() resolved; report error (before the filter): ${engine.report().error}`);
}
