/**
 * The basics: a manifold says what it uses (`inputs`) and how to start its
 * worker (`start`); the engine keeps that worker running, restarts it when it
 * fails, and stops everything on `kill()`.
 *
 *   npx tsx examples/manifold.ts
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createWorker, Engine, manifold } from "../src/index.js";

const engine = new Engine({ errorDelay: 200 }); // restart failed workers after 200 ms (default 3 s)

// A worker is anything with kill() and wait(). createWorker(run) makes one from
// an async function: kill() aborts `signal`; wait() settles when run settles.
// An AbortError thrown because of kill() counts as a clean stop.
let ticks = 0;
engine.install(
  "heartbeat",
  manifold({
    inputs: [],
    start: () =>
      createWorker(async (signal) => {
        for (;;) {
          await sleep(100, undefined, { signal });
          ticks++;
        }
      }),
  }),
);

// A worker that fails: the engine restarts it after errorDelay (with backoff
// if it keeps failing soon after starting).
let attempts = 0;
engine.install(
  "flaky",
  manifold({
    inputs: [],
    start: ({ name }) => {
      attempts++;
      console.log(`start ${name}: attempt ${attempts}`);
      return createWorker(async (signal) => {
        await sleep(50, undefined, { signal });
        if (attempts < 3) throw new Error(`attempt ${attempts} failed`);
        await sleep(60_000, undefined, { signal }); // the third attempt runs until killed
      });
    },
  }),
);

// A worker that completes (run returns): it is not restarted until one of its
// inputs changes. Its input need not be installed first, or at all.
engine.install(
  "one-shot",
  manifold({
    inputs: ["heartbeat"],
    start: () =>
      createWorker(() => {
        console.log("one-shot: did its job and returned");
      }),
  }),
);

await sleep(900);
for (const [name, entry] of Object.entries(engine.report().manifolds)) {
  console.log(`${name.padEnd(10)} ${entry.state.padEnd(8)} starts=${entry.startCount}`);
}
console.log(`heartbeat ticked ${ticks} times`);

engine.kill(); // stops dependents before their inputs
await engine.wait(); // resolves: no fatal error
console.log(`engine ${engine.report().state}`);
