/**
 * The testing kit (manifold-engine/testing), tested by using it: TestClock on
 * its own, then driving real engines with waitForState, waitFor and
 * waitForIdle, including every way they give up instead of hanging.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  BounceError,
  createWorker,
  Engine,
  manifold,
  MissingError,
  resource,
  valueWorker,
  type Worker,
} from "../src/index.js";
import { settle, TestClock, waitFor, waitForIdle, waitForState, type TestTimer } from "../src/testing.js";
import { failOnUnhandledRejections } from "./fixtures.js";

failOnUnhandledRejections();

const T0 = Date.UTC(2026, 0, 1);

describe("TestClock", () => {
  it("starts at 2026-01-01 UTC by default, or at the time given, and refuses a bad start", () => {
    expect(new TestClock().now()).toBe(T0);
    expect(new TestClock(5).now()).toBe(5);
    expect(() => new TestClock(Number.NaN)).toThrow(/new TestClock\(start\): start must be a finite number/);
  });

  it("holds timers until time reaches them, and lists them earliest first with their delays", () => {
    const clock = new TestClock(0);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push("b"), 20);
    clock.setTimeout(() => fired.push("a"), 10);
    clock.setTimeout(() => fired.push("c"), 20);
    expect(clock.pending.map((t: TestTimer) => [t.due, t.delay])).toEqual([
      [10, 10],
      [20, 20],
      [20, 20],
    ]);
    expect(clock.delays).toEqual([20, 10, 20]);
    expect(fired).toEqual([]);
  });

  it("advance fires what falls due, in due order (set order for equal times), moving time to each", async () => {
    const clock = new TestClock(0);
    const fired: [string, number][] = [];
    clock.setTimeout(() => fired.push(["b", clock.now()]), 20);
    clock.setTimeout(() => fired.push(["a", clock.now()]), 10);
    clock.setTimeout(() => fired.push(["c", clock.now()]), 20);
    clock.setTimeout(() => fired.push(["late", clock.now()]), 31);
    await clock.advance(30);
    expect(fired).toEqual([
      ["a", 10],
      ["b", 20],
      ["c", 20],
    ]);
    expect(clock.now()).toBe(30);
    expect(clock.pending.map((t) => t.due)).toEqual([31]);
  });

  it("advance also fires timers set by the timers it fires, and lets promises settle between them", async () => {
    const clock = new TestClock(0);
    const log: string[] = [];
    clock.setTimeout(() => {
      log.push(`first@${clock.now()}`);
      void Promise.resolve().then(() => {
        log.push("first's promise");
        clock.setTimeout(() => log.push(`second@${clock.now()}`), 5);
      });
    }, 10);
    clock.setTimeout(() => log.push(`third@${clock.now()}`), 15);
    await clock.advance(100);
    // Both are due at 15: the one set first (third, at 0) fires first.
    expect(log).toEqual(["first@10", "first's promise", "third@15", "second@15"]);
  });

  it("clearTimeout drops a timer; unknown and fired handles are ignored", async () => {
    const clock = new TestClock(0);
    const fired: number[] = [];
    const a = clock.setTimeout(() => fired.push(1), 10);
    clock.setTimeout(() => fired.push(2), 10);
    clock.clearTimeout(a);
    clock.clearTimeout(999);
    clock.clearTimeout("nonsense");
    await clock.advance(10);
    clock.clearTimeout(a);
    expect(fired).toEqual([2]);
    expect(clock.pending).toEqual([]);
  });

  it("treats a negative or non-finite delay as 0, as the global timers do, recording it as given", async () => {
    const clock = new TestClock(0);
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(1), -5);
    clock.setTimeout(() => fired.push(2), Number.NaN);
    expect(clock.pending.map((t) => t.due)).toEqual([0, 0]);
    expect(clock.delays).toEqual([-5, Number.NaN]);
    await clock.advance(0);
    expect(fired).toEqual([1, 2]);
  });

  it("fireNext moves time to the earliest timer, fires it and returns its delay; with none it rejects", async () => {
    const clock = new TestClock(100);
    clock.setTimeout(() => undefined, 250);
    clock.setTimeout(() => undefined, 50);
    await expect(clock.fireNext()).resolves.toBe(50);
    expect(clock.now()).toBe(150);
    await expect(clock.fireNext()).resolves.toBe(250);
    expect(clock.now()).toBe(350);
    await expect(clock.fireNext()).rejects.toThrow(/no timer is pending/);
  });

  it("runAll fires everything, new timers included, and returns the count", async () => {
    const clock = new TestClock(0);
    let chain = 0;
    const next = (): void => {
      if (++chain < 5) clock.setTimeout(next, 100);
    };
    clock.setTimeout(next, 100);
    clock.setTimeout(() => undefined, 1000);
    await expect(clock.runAll()).resolves.toBe(6);
    expect(clock.now()).toBe(1000);
    expect(clock.pending).toEqual([]);
  });

  it("runAll gives up on a timer that re-arms itself forever, saying so", async () => {
    const clock = new TestClock(0);
    const again = (): void => {
      clock.setTimeout(again, 10);
    };
    clock.setTimeout(again, 10);
    await expect(clock.runAll({ limit: 50 })).rejects.toThrow(/1 timer\(s\) still pending after firing 50: something sets a new timer each time/);
    expect(clock.now()).toBe(500);
  });

  it("refuses a bad advance or limit", async () => {
    const clock = new TestClock(0);
    await expect(clock.advance(-1)).rejects.toThrow(TypeError);
    await expect(clock.advance(Number.POSITIVE_INFINITY)).rejects.toThrow(/advance\(ms\): ms must be a finite number >= 0/);
    await expect(clock.runAll({ limit: Number.NaN })).rejects.toThrow(/limit must be a number >= 0/);
  });

  it("runs overlapping advance calls one after the other, so time never goes backwards", async () => {
    const clock = new TestClock(0);
    const seen: number[] = [];
    for (const due of [5, 15, 25]) clock.setTimeout(() => seen.push(clock.now()), due);
    const first = clock.advance(20);
    const second = clock.advance(10); // queued: runs from 20 to 30
    await Promise.all([first, second]);
    expect(seen).toEqual([5, 15, 25]);
    expect(clock.now()).toBe(30);
  });

  it("rethrows a timer callback's error from advance, and keeps working after it", async () => {
    const clock = new TestClock(0);
    clock.setTimeout(() => {
      throw new Error("boom");
    }, 1);
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(clock.now()), 2);
    await expect(clock.advance(5)).rejects.toThrow("boom");
    await clock.advance(5);
    expect(fired).toEqual([2]);
  });
});

describe("settle", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("lets chains of promise callbacks run", async () => {
    let depth = 0;
    const deeper = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        depth++;
      }
    };
    void deeper(5);
    await settle();
    expect(depth).toBe(5);
  });

  it("still works under vitest's fake timers (it took the real setImmediate when loaded)", async () => {
    vi.useFakeTimers();
    let done = false;
    void Promise.resolve().then(() => {
      done = true;
    });
    await settle();
    expect(done).toBe(true);
  });
});

/** A worker that fails with `error` as soon as it starts. */
function failingWorker(error: Error): Worker {
  return createWorker(() => {
    throw error;
  });
}

describe("waitForState", () => {
  it("resolves with the manifold's entry once it is started, the engine's clock driving the restarts", async () => {
    const clock = new TestClock();
    const engine = new Engine({ clock, errorDelay: 1000, jitter: 0, backoffFactor: 2 });
    let attempts = 0;
    engine.install(
      "flaky",
      manifold({
        inputs: [],
        start: () => {
          attempts++;
          if (attempts < 4) throw new Error(`attempt ${attempts} failed`);
          return valueWorker(attempts);
        },
      }),
    );
    const entry = await waitForState(engine, "flaky", "started", { clock });
    expect(entry).toMatchObject({ state: "started", startCount: 1 });
    expect(attempts).toBe(4);
    // 1000, 2000, 4000 ms of backoff: the waiting moved the clock exactly as far as needed.
    expect(clock.delays).toEqual([1000, 2000, 4000]);
    expect(clock.now()).toBe(T0 + 7000);
    engine.kill();
    await engine.wait();
  });

  it("waits for a dependent to be restarted after its input bounces", async () => {
    const clock = new TestClock();
    const engine = new Engine({ clock, bounceDelay: 10, jitter: 0 });
    const token = resource<number>("token");
    let generation = 0;
    let seen: number | undefined;
    engine.install(token, manifold({ inputs: [], start: () => valueWorker(++generation), output: (worker) => worker.value }));
    engine.install(
      "user",
      manifold({
        inputs: [token],
        start: (context) => {
          seen = context.getResource(token);
          return valueWorker(seen);
        },
      }),
    );
    await waitForState(engine, "user", "started", { clock });
    expect(seen).toBe(1);
    void engine.uninstall(token);
    engine.install(token, manifold({ inputs: [], start: () => valueWorker(++generation), output: (worker) => worker.value }));
    await waitFor(engine, (report) => report.manifolds.user?.startCount === 2, { clock, description: "user to start again" });
    expect(seen).toBe(2);
    engine.kill();
    await engine.wait();
  });

  it("waits for stopping and stopped too", async () => {
    const clock = new TestClock();
    const engine = new Engine({ clock });
    let finish!: () => void;
    engine.install(
      "slow",
      manifold({
        inputs: [],
        start: () => createWorker((signal) => new Promise<void>((resolve) => signal.addEventListener("abort", () => (finish = resolve)))),
      }),
    );
    await waitForState(engine, "slow", "started", { clock });
    engine.kill();
    await waitForState(engine, "slow", "stopping", { clock });
    finish();
    await expect(waitForState(engine, "slow", "stopped", { clock })).resolves.toMatchObject({ state: "stopped" });
    await engine.wait();
  });

  it("gives up, naming the manifold and its error, when nothing more can happen", async () => {
    const clock = new TestClock();
    const engine = new Engine({ clock });
    engine.install("needy", manifold({ inputs: [], start: () => Promise.reject(new MissingError("no database")) }));
    await expect(waitForState(engine, "needy", "started", { clock })).rejects.toThrow(
      'waitForState: waiting for manifold "needy" to be "started", but manifold "needy" is "stopped" (error: no database); ' +
        "nothing more will happen: promises have settled and no timer is pending",
    );
    engine.kill();
    await engine.wait();
  });

  it("gives up when the engine has stopped", async () => {
    const clock = new TestClock();
    const engine = new Engine({ clock, isFatal: () => true });
    engine.install("fatal", manifold({ inputs: [], start: () => failingWorker(new Error("disk on fire")) }));
    await expect(waitForState(engine, "fatal", "started", { clock })).rejects.toThrow(/"fatal" is "stopped" \(error: disk on fire\); nothing more will happen: the engine has stopped/);
    await expect(engine.wait()).rejects.toThrow("disk on fire");
  });

  it("gives up on a manifold that is not installed", async () => {
    const clock = new TestClock();
    const engine = new Engine({ clock });
    await expect(waitForState(engine, "ghost", "started", { clock })).rejects.toThrow(/but manifold "ghost" is not installed; nothing more will happen/);
    engine.kill();
    await engine.wait();
  });

  it("without the clock, does not move time and says to pass it", async () => {
    const clock = new TestClock();
    const engine = new Engine({ clock, errorDelay: 1000 });
    engine.install("flaky", manifold({ inputs: [], start: () => failingWorker(new BounceError("again")) }));
    await expect(waitForState(engine, "flaky", "started")).rejects.toThrow(/no clock was given to move time \(pass the engine's TestClock as options.clock\)/);
    expect(clock.now()).toBe(T0);
    expect(clock.pending).toHaveLength(1);
    engine.kill();
    await engine.wait();
  });

  it("stops at maxTime of clock time", async () => {
    const clock = new TestClock();
    const engine = new Engine({ clock, errorDelay: 60_000, jitter: 0, backoffFactor: 0 });
    engine.install("slow-retry", manifold({ inputs: [], start: () => failingWorker(new Error("down")) }));
    await expect(waitForState(engine, "slow-retry", "started", { clock, maxTime: 200_000 })).rejects.toThrow(
      /"slow-retry" is "starting" \(error: down\); nothing more will happen: the next timer is due after options.maxTime \(200000 ms\)/,
    );
    expect(clock.now()).toBe(T0 + 180_000);
    engine.kill();
    await engine.wait();
  });

  it("gives up after maxRounds when the report keeps changing", async () => {
    const clock = new TestClock();
    // A worker that asks for a restart as soon as it starts, with no delay: no timer, and a new start every round.
    const engine = new Engine({ clock, bounceDelay: 0 });
    engine.install("bouncy", manifold({ inputs: [], start: () => failingWorker(new BounceError("again")) }));
    await expect(waitFor(engine, () => false, { clock, maxRounds: 5, description: "nothing" })).rejects.toThrow(
      /^waitFor: waiting for nothing, but it does not hold, after 5 rounds of settling \(options.maxRounds\): the report kept changing$/,
    );
    expect(clock.pending).toEqual([]);
    engine.kill();
    await engine.wait();
  });

  it("does not count a worker's own report, or uptimes, as changes: they may change for ever", async () => {
    const engine = new Engine(); // the wall clock: uptimes grow between rounds
    let polls = 0;
    engine.install(
      "chatty",
      manifold({ inputs: [], start: () => Object.assign(valueWorker(0), { report: () => ({ polls: ++polls }) }) }),
    );
    const report = await waitForIdle(engine);
    expect(report.manifolds.chatty?.state).toBe("started");
    expect(polls).toBeGreaterThan(2);
    engine.kill();
    await engine.wait();
  });

  it("refuses bad arguments with a TypeError, as a rejection", async () => {
    const engine = new Engine({ clock: new TestClock() });
    await expect(waitForState(engine, "", "started")).rejects.toThrow(TypeError);
    await expect(waitForState(engine, "a", "running" as "started")).rejects.toThrow(/state must be "starting", "started", "stopping" or "stopped"/);
    await expect(waitForState(engine, "a", "started", { clock: Date as never })).rejects.toThrow(/options.clock must be the TestClock/);
    await expect(waitForState(engine, "a", "started", { maxTime: -1 })).rejects.toThrow(/options.maxTime/);
    await expect(waitForState({} as Engine, "a", "started")).rejects.toThrow(/engine must be an Engine/);
    await expect(waitFor(engine, "yes" as never)).rejects.toThrow(/predicate must be a function/);
    engine.kill();
    await engine.wait();
  });
});

describe("waitForIdle", () => {
  it("resolves once every start has run, without moving time", async () => {
    const clock = new TestClock();
    const engine = new Engine({ clock });
    const order: string[] = [];
    const step = (name: string) => async (): Promise<Worker> => {
      await Promise.resolve();
      order.push(name);
      return valueWorker(name);
    };
    engine.installAll({
      c: manifold({ inputs: ["b"], start: step("c") }),
      b: manifold({ inputs: ["a"], start: step("b") }),
      a: manifold({ inputs: [], start: step("a") }),
    });
    const report = await waitForIdle(engine, { clock });
    expect(order).toEqual(["a", "b", "c"]);
    expect(Object.values(report.manifolds).map((entry) => entry.state)).toEqual(["started", "started", "started"]);
    expect(clock.now()).toBe(T0);
    engine.kill();
    await engine.wait();
  });

  it("counts a manifold waiting out a restart delay on the clock as idle", async () => {
    const clock = new TestClock();
    const engine = new Engine({ clock, errorDelay: 5000, jitter: 0 });
    engine.install("broken", manifold({ inputs: [], start: () => failingWorker(new Error("no")) }));
    const report = await waitForIdle(engine, { clock });
    expect(report.manifolds.broken).toMatchObject({ state: "starting", error: "no" });
    expect(clock.pending.map((t) => t.delay)).toEqual([5000]);
    expect(clock.now()).toBe(T0);
    engine.kill();
    await engine.wait();
  });

  it("gives up, naming the manifold, when a start waits for something the clock does not drive", async () => {
    const clock = new TestClock();
    const engine = new Engine({ clock, stopTimeout: 1000 });
    engine.install("hung", manifold({ inputs: [], start: () => new Promise<Worker>(() => undefined) }));
    await expect(waitForIdle(engine, { clock })).rejects.toThrow(
      'waitForIdle: the engine is not idle: manifold "hung" is "starting"; nothing more will happen: promises have settled, ' +
        "and it is waiting for something the clock does not drive (a real timer, I/O, a promise nobody settles)",
    );
    expect(clock.now()).toBe(T0);
    engine.kill();
    await clock.advance(1000); // the start never settles: it is reported stuck, and wait() stops waiting for it
    await expect(engine.wait()).rejects.toThrow(/"hung" did not stop within stopTimeout/);
  });

  it("counts a stuck worker as idle: it will not move", async () => {
    const clock = new TestClock();
    const engine = new Engine({ clock, stopTimeout: 100, bounceDelay: 10 });
    engine.install("dep", manifold({ inputs: [], start: () => valueWorker(1) }));
    // Its worker ignores kill(): when dep changes, it is killed to restart, and never stops.
    engine.install("stubborn", manifold({ inputs: ["dep"], start: () => ({ kill: () => undefined, wait: () => new Promise<void>(() => undefined) }) }));
    await waitForState(engine, "stubborn", "started", { clock });
    await engine.uninstall("dep");
    await clock.advance(100);
    const report = await waitForIdle(engine, { clock });
    expect(report.manifolds.stubborn).toMatchObject({ state: "stopping", stuck: true });
    engine.kill();
    await expect(engine.wait()).rejects.toThrow(/"stubborn" did not stop within stopTimeout/);
  });

  it("resolves at once for an empty engine and for a stopped one", async () => {
    const engine = new Engine({ clock: new TestClock() });
    await expect(waitForIdle(engine)).resolves.toMatchObject({ state: "started", manifolds: {} });
    engine.kill();
    await engine.wait();
    await expect(waitForIdle(engine)).resolves.toMatchObject({ state: "stopped" });
  });
});
