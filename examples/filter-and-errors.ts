/**
 * Errors the engine understands, and filters that produce them.
 *
 * - BounceError:    restart after bounceDelay (short), no backoff.
 * - MissingError:   do not restart until an input changes.
 * - UninstallError: remove the manifold for good.
 * - anything else:  restart after errorDelay, with backoff.
 *
 * A manifold's `filter` sees every error from its start function and worker
 * first, so domain errors can be mapped onto these (or onto `undefined`, a
 * clean completion). The engine looks along `cause` chains (`errorIs`), so
 * wrapping an error with context never changes how it is treated.
 *
 *   npx tsx examples/filter-and-errors.ts
 */
import { setTimeout as sleep } from "node:timers/promises";
import { BounceError, createWorker, Engine, errorIs, manifold, MissingError, UninstallError, valueWorker } from "../src/index.js";

/** A domain error: someone else took our lease. */
class LeaseLostError extends Error {
  override name = "LeaseLostError";
}

const engine = new Engine({ errorDelay: 5000, bounceDelay: 20 });
const state = (name: string): string => {
  const entry = engine.report().manifolds[name];
  return entry === undefined ? "(not installed)" : `${entry.state}, starts=${entry.startCount}${entry.error === undefined ? "" : `, error: ${entry.error}`}`;
};

// 1. A filter turns a domain error into BounceError. Without the filter, a lost
//    lease would be an unknown error and wait errorDelay (5 s) before a retry.
let claims = 0;
engine.install(
  "lease",
  manifold({
    inputs: [],
    start: () =>
      createWorker(async (signal) => {
        claims++;
        await sleep(50, undefined, { signal });
        if (claims < 3) throw new LeaseLostError(`lease claim ${claims} lost to another agent`);
        await sleep(60_000, undefined, { signal });
      }),
    filter: (error) => (errorIs(error, LeaseLostError) ? new BounceError("lease lost; claiming it again", { cause: error }) : error),
  }),
);

// 2. MissingError: getResource throws it when an input is not running; the
//    manifold then waits, without retries, until an input changes.
engine.install(
  "reporter",
  manifold({
    inputs: ["api"],
    start: (context) => {
      const send = context.getResource("api") as (line: string) => void; // a string name gives `unknown`
      return createWorker(() => send("reporter: status sent"));
    },
  }),
);

// 3. UninstallError: a one-shot job that removes itself once done.
engine.install(
  "migrate-v2",
  manifold({
    inputs: [],
    start: () =>
      createWorker(async () => {
        await sleep(30);
        console.log("migrate-v2: schema migrated");
        throw new UninstallError("migration complete; not needed any more");
      }),
  }),
);

await sleep(300);
console.log(`lease:      ${state("lease")}  (3 claims within 300 ms despite errorDelay 5 s)`);
console.log(`reporter:   ${state("reporter")}`);
console.log(`migrate-v2: ${state("migrate-v2")}`);

// Installing the missing input restarts the waiting dependent.
engine.install("api", manifold({ inputs: [], start: () => valueWorker((line: string) => console.log(line)), output: (worker) => worker.value }));
await sleep(100);
console.log(`reporter:   ${state("reporter")}  (ran and completed: not restarted)`);

// errorIs looks along cause chains, as the engine does.
const wrapped = new Error("while renewing", { cause: new BounceError() });
console.log(`errorIs(wrapped, BounceError) = ${errorIs(wrapped, BounceError)}, errorIs(wrapped, MissingError) = ${errorIs(wrapped, MissingError)}`);

engine.kill();
await engine.wait();
