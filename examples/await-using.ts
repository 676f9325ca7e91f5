/**
 * `await using`: an Engine is an async disposable. Declared with `await using`,
 * it is stopped (kill(), then wait()) when the block that holds it ends, however
 * it ends: normally, by `return`, or by an exception. Nothing is swallowed: if
 * the engine stopped with a fatal error, leaving the block throws it.
 *
 * The library itself does not use `await using` (it supports Node 20, whose
 * JavaScript does not have the syntax); your code can, if it is compiled:
 * tsx, esbuild and TypeScript 5.2+ (lib "esnext.disposable", a target below
 * esnext) turn it into plain JavaScript, and Node 20 has `Symbol.asyncDispose`.
 *
 *   npx tsx examples/await-using.ts
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createWorker, Engine, errorIs, manifold } from "../src/index.js";

class DiskFull extends Error {
  override name = "DiskFull";
}

/** A worker that counts until it is killed, and logs when it stops. */
function counter(name: string): ReturnType<typeof createWorker> {
  return createWorker(async (signal) => {
    let ticks = 0;
    try {
      for (;;) {
        await sleep(20, undefined, { signal });
        ticks++;
      }
    } finally {
      console.log(`  ${name} stopped after ${ticks} ticks`);
    }
  });
}

// 1. A block that ends normally: the engine is stopped at the closing brace.
async function runForAWhile(): Promise<void> {
  await using engine = new Engine();
  engine.install("ticker", manifold({ inputs: [], start: () => counter("ticker") }));
  engine.install("reporter", manifold({ inputs: ["ticker"], start: () => counter("reporter") }));
  await sleep(100);
  console.log(`  leaving the block; state: ${engine.report().state}`);
} // <- engine[Symbol.asyncDispose](): kill(), then wait() for every worker

console.log("1. the block ends normally:");
await runForAWhile();

// 2. A block left by an exception: the engine still stops first, then the error propagates.
let outside: Engine | undefined;
console.log("2. the block throws:");
try {
  await using engine = new Engine();
  outside = engine;
  engine.install("ticker", manifold({ inputs: [], start: () => counter("ticker") }));
  await sleep(50);
  throw new Error("something went wrong in the block");
} catch (error) {
  console.log(`  caught "${(error as Error).message}"; the engine was already ${outside?.report().state}`);
}

// 3. The engine stops with a fatal error: leaving the block rethrows it (nothing is swallowed).
console.log("3. a fatal error inside the engine:");
try {
  await using engine = new Engine({ isFatal: (error) => errorIs(error, DiskFull) });
  engine.install(
    "writer",
    manifold({
      inputs: [],
      start: () =>
        createWorker(async (signal) => {
          await sleep(30, undefined, { signal });
          throw new DiskFull("disk full");
        }),
    }),
  );
  await sleep(100);
  console.log(`  leaving the block; state: ${engine.report().state}`);
} catch (error) {
  console.log(`  leaving the block threw ${(error as Error).name}: ${(error as Error).message}`);
}
