/**
 * Review of issue 16 (the allocation diet of the engine core, 7defe69..HEAD):
 * each test here showed a behaviour the diet had changed against the
 * contract: each failed on the code as first reviewed, passed before the
 * diet, and passes again since the fix (a `timerPending` bit; the snapshot
 * freezes from the start attempt's creation, observers included).
 */
import { describe, expect, it } from "vitest";
import { Engine, valueWorker, type Clock } from "../src/index.js";
import { failOnUnhandledRejections, makeEngine, settle, stop, TestClock, valueManifold } from "./fixtures.js";

failOnUnhandledRejections();

describe("restart timers (loop.ts #clearTimer, node.ts timerGeneration)", () => {
  it("a superseded restart timer stays stale with a clock whose setTimeout returns no handle", async () => {
    // SPEC §4: `Clock.setTimeout(fn, ms): unknown` and `clearTimeout(handle: unknown)`: a clock
    // may return any handle, undefined included (a scheduler that returns nothing, and so cannot
    // cancel). Before the diet #clearTimer moved timerGeneration on every call, so a timer it
    // superseded was ignored when it fired. Now the generation moves only when `node.timer !==
    // undefined`: with an undefined handle it never moves, the superseded error-delay timer's
    // `due` is accepted, and the manifold restarts before its backed-off errorDelay (rule 5).
    const inner = new TestClock(0);
    const handleless: Clock = {
      now: () => inner.now(),
      setTimeout: (fn, ms) => {
        inner.setTimeout(fn, ms); // no handle returned
        return undefined;
      },
      clearTimeout: () => undefined, // nothing to cancel without a handle
    };
    const engine = new Engine({ clock: handleless, jitter: 0, bounceDelay: 0, errorDelay: 1000, backoffFactor: 2, stopTimeout: 0 });
    const starts: number[] = [];
    engine.install("b", {
      inputs: ["a"],
      start: () => {
        starts.push(inner.now());
        throw new Error("b cannot start yet");
      },
    });
    await settle();
    // t=0: b failed once; its restart timer T1 is due at t=1000.
    expect(starts).toEqual([0]);
    // a starts: b (waiting out its error delay) is bounced at once (rule 3, an input change cuts
    // an error delay short) and fails again: recentErrors 2, so its next start is due at t=2000.
    engine.install("a", valueManifold("A"));
    await settle();
    expect(starts).toEqual([0, 0]);
    // T1, superseded by the bounce, fires at t=1000: it must not start b.
    await inner.advance(1000);
    expect(starts, "b restarted by a superseded timer, before its backed-off delay").toEqual([0, 0]);
    await inner.advance(1000);
    expect(starts).toEqual([0, 0, 2000]);
    engine.kill();
    await engine.wait();
  });
});

describe("start contexts read live (start-context.ts, loop.ts #calling)", () => {
  it("an events subscriber that uninstalls an input on `starting` does not hide that input's running worker", async () => {
    // SPEC rule 2: getResource sees the workers running when the start function is called.
    // An `engine.events` subscriber runs synchronously inside the loop's `starting` transition,
    // after the attempt is made and before the start function is called. Uninstalling `a`
    // there only queues its stop: a's worker is still running when b's start is called (and
    // an uninstall made inside the start function itself still shows `a` running, since
    // #removeNode freezes the snapshot first). Before the diet the snapshot was taken before
    // `starting` was announced, so b saw "A". Now the start reads the slot live, after the
    // subscriber emptied it, and getResource throws MissingError "not installed".
    const { engine } = makeEngine();
    engine.install("a", valueManifold("A"));
    await settle();
    const subscription = engine.events.subscribe((event) => {
      if (event.type === "starting" && event.name === "b") void engine.uninstall("a");
    });
    const seen: unknown[] = [];
    engine.install("b", {
      inputs: ["a"],
      start: (context) => {
        if (seen.length > 0) return valueWorker(0); // the first start is the one in question
        seen.push(context.hasResource("a"));
        try {
          seen.push(context.getResource("a"));
        } catch (error) {
          seen.push((error as Error).message);
        }
        return valueWorker(0);
      },
    });
    await settle();
    subscription.unsubscribe();
    expect(seen).toEqual([true, "A"]);
    await stop(engine);
  });
});

describe("a start function's result that breaks Promise.resolve (rule 10)", () => {
  it("counts as a failed start, not an internal error of the engine", async () => {
    // Found in the same review, older than the diet: Promise.resolve reads a native promise's
    // `constructor`; a getter that throws there made #requestStart throw, which killed the engine
    // as an internal error and left the node "starting" for ever.
    const { engine } = makeEngine({ errorDelay: 1000 });
    engine.install("odd", {
      inputs: [],
      start: () => {
        const promise = Promise.resolve(valueWorker(0));
        Object.defineProperty(promise, "constructor", {
          get() {
            throw new Error("no constructor for you");
          },
        });
        return promise;
      },
    });
    await settle();
    const report = engine.report();
    expect(report.state).toBe("started");
    expect(report.manifolds.odd?.state).toBe("starting"); // waiting out its error delay
    expect(report.manifolds.odd?.error).toMatch(/no constructor for you/);
    await stop(engine);
  });
});
