/**
 * The report: `engine.report()` is a JSON-serialisable snapshot of the engine
 * and every manifold: state and since when, inputs, last error, start count,
 * last start, the worker's own report (if it is a Reporter), the resources its
 * last start asked for, and `stuck` for workers that ignore kill().
 *
 *   npx tsx examples/report.ts
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createWorker, Engine, manifold, resource, ShutdownTimeoutError, valueWorker, type Worker } from "../src/index.js";

interface Settings {
  readonly pollMs: number;
}
const settings = resource<Settings>("settings");

const engine = new Engine({ errorDelay: 60_000 });

engine.installAll({
  settings: manifold({ inputs: [], start: () => valueWorker<Settings>({ pollMs: 20 }), output: (worker) => worker.value }),

  // A Reporter worker: its report() appears under "report".
  poller: manifold({
    inputs: [settings, "cache"],
    start: (context) => {
      const { pollMs } = context.getResource(settings);
      const hasCache = context.hasResource("cache"); // hasResource is not logged in resourceLog
      let polls = 0;
      const worker = createWorker(async (signal) => {
        for (;;) {
          await sleep(pollMs, undefined, { signal });
          polls++;
        }
      });
      return Object.assign(worker, { report: () => ({ polls, pollMs, hasCache }) });
    },
  }),

  // A start that fails: "starting" (waiting out errorDelay), with the error.
  "metrics-push": manifold({
    inputs: [settings],
    start: (context) => {
      context.getResource(settings);
      throw new Error("connect ECONNREFUSED 127.0.0.1:9091");
    },
  }),

  // A worker that ignores kill() for 300 ms; its stopTimeout is 100 ms.
  "slow-stopper": manifold({
    inputs: [],
    stopTimeout: 100,
    start: (): Worker => {
      let stop!: () => void;
      const done = new Promise<void>((resolve) => (stop = resolve));
      return { kill: () => void setTimeout(stop, 300), wait: () => done };
    },
  }),
});

await sleep(120);
console.log("--- engine.report() while running:");
console.log(JSON.stringify(engine.report(), null, 2));

engine.kill();
await sleep(150);
console.log("--- during shutdown, slow-stopper has outlived its stopTimeout:");
const stopping = engine.report();
console.log(JSON.stringify({ state: stopping.state, "slow-stopper": stopping.manifolds["slow-stopper"] }, null, 2));

try {
  await engine.wait();
} catch (error) {
  if (!(error instanceof ShutdownTimeoutError)) throw error;
  console.log(`--- wait() rejected with ShutdownTimeoutError: ${error.message} (manifolds: ${error.manifolds.join(", ")})`);
}
