/**
 * Testing your manifolds with the testing kit: a TestClock instead of real
 * time, and helpers that wait for a state by settling promises and firing
 * the clock's timers. No sleeps: the test takes milliseconds and runs the same
 * way every time.
 *
 *   npx vitest run examples/testing.test.ts
 *
 * In your project, import from "manifold-engine" and "manifold-engine/testing".
 */
import { describe, expect, it } from "vitest";
import { createWorker, Engine, manifold, resource, valueWorker, type Worker } from "../src/index.js";
import { TestClock, waitFor, waitForIdle, waitForState } from "../src/testing.js";

// --- The code under test: an API connection that can fail to dial, and an
// uploader that uses it.

interface Api {
  upload(item: string): void;
}

const api = resource<Api>("api");

/** Dials with `dial`; a failed dial is retried by the engine after errorDelay (with backoff). */
function apiManifold(dial: () => Promise<Api>) {
  return manifold({
    inputs: [],
    start: async () => valueWorker(await dial()),
    output: (worker) => worker.value,
  });
}

/** Uploads each item of `queue` through the api it was started with, then waits until killed. */
function uploaderManifold(queue: string[]) {
  return manifold({
    inputs: [api],
    start: (context): Worker => {
      const connection = context.getResource(api); // an Api: checked at compile time
      return createWorker(async (signal) => {
        for (const item of queue.splice(0)) connection.upload(item);
        await new Promise((resolve) => signal.addEventListener("abort", resolve));
      });
    },
  });
}

// --- The tests.

describe("the uploader", () => {
  it("uploads once the api connection comes up, after two failed dials", async () => {
    const clock = new TestClock();
    // jitter 0: the delays are exact, so the test can check them.
    const engine = new Engine({ clock, errorDelay: 1000, backoffFactor: 2, jitter: 0 });
    let dials = 0;
    const uploaded: string[] = [];
    engine.install(
      api,
      apiManifold(async () => {
        if (++dials <= 2) throw new Error(`dial ${dials} refused`);
        return { upload: (item) => uploaded.push(item) };
      }),
    );
    engine.install("uploader", uploaderManifold(["a.log", "b.log"]));

    // The clock moves only as far as needed: 1000 ms, then 2000 ms of backoff.
    await waitForState(engine, "api", "started", { clock });
    expect(dials).toBe(3);
    expect(clock.now() - Date.UTC(2026, 0, 1)).toBe(3000);

    // Without the api, the uploader's start failed (getResource threw MissingError);
    // the api coming up restarts it after bounceDelay (10 ms by default).
    const uploader = await waitForState(engine, "uploader", "started", { clock });
    expect(uploaded).toEqual(["a.log", "b.log"]);
    expect(uploader.startCount).toBe(1);
    expect(clock.delays).toEqual([1000, 2000, 10]);

    engine.kill();
    await engine.wait();
  });

  it("reports the dial error while it waits out the delay", async () => {
    const clock = new TestClock();
    const engine = new Engine({ clock, errorDelay: 5000, backoffFactor: 0, jitter: 0 });
    engine.install(
      api,
      apiManifold(() => Promise.reject(new Error("connection refused"))),
    );
    engine.install("uploader", uploaderManifold([]));

    // Idle: everything that can happen without time passing has happened.
    const report = await waitForIdle(engine, { clock });
    expect(report.manifolds.api).toMatchObject({ state: "starting", error: "connection refused" });
    expect(clock.pending.map((timer) => timer.delay)).toEqual([5000]);

    // No backoff: a dial every 5 s. Moving the clock by 10 s makes two more.
    await clock.advance(10_000);
    expect(clock.delays).toEqual([5000, 5000, 5000]);

    // Or let the kit move the clock, as far as it takes: until five dials have failed.
    await waitFor(engine, () => clock.delays.length === 5, { clock, description: "the fifth failed dial" });
    expect(clock.now() - Date.UTC(2026, 0, 1)).toBe(20_000);

    engine.kill();
    await engine.wait();
  });
});
