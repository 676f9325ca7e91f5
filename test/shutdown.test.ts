/**
 * Shutdown: kill() stops dependents before their inputs, aborts starts in
 * flight at once, never waits on retiring (uninstalled) workers to kill
 * anything else, and wait() settles only when every worker has stopped and
 * no timer is left, with the fake clock and with the real one; an engine is
 * also an async disposable that does all this.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BounceError,
  createWorker,
  Engine,
  EngineStoppedError,
  ShutdownTimeoutError,
  valueWorker,
  type Clock,
  type Manifold,
  type StartContext,
  type Worker,
} from "../src/index.js";
import { expectCleanStop, failOnUnhandledRejections, iso, makeEngine, settle, TestWorker, track } from "./fixtures.js";

failOnUnhandledRejections();

// ---------------------------------------------------------------- local helpers

/** A TestWorker that logs every kill() call and its stop; with `auto` it stops by itself a microtask after its first kill. */
class LoggedWorker extends TestWorker {
  #stopped = false;

  constructor(
    label: string,
    readonly log: string[],
    readonly auto = false,
  ) {
    super(label, { stopOnKill: false });
  }

  override kill(): void {
    const first = !this.killed;
    this.log.push(`kill:${this.label}`);
    super.kill();
    if (this.auto && first) queueMicrotask(() => this.stop());
  }

  /** Stops cleanly (once), logging it. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.log.push(`stop:${this.label}`);
    this.complete();
  }
}

/** Installs-ready manifolds whose workers are LoggedWorkers kept in `workers` by name. */
class Fleet {
  readonly log: string[] = [];
  readonly workers = new Map<string, LoggedWorker>();
  readonly starts: string[] = [];

  constructor(readonly auto = false) {}

  manifold(name: string, inputs: string[]): Manifold {
    return {
      inputs,
      start: () => {
        this.starts.push(name);
        const worker = new LoggedWorker(name, this.log, this.auto);
        this.workers.set(name, worker);
        return worker;
      },
    };
  }

  worker(name: string): LoggedWorker {
    const worker = this.workers.get(name);
    if (worker === undefined) throw new Error(`no worker for ${name}`);
    return worker;
  }

  /** Names whose current worker has been killed, sorted. */
  killed(): string[] {
    return [...this.workers.values()]
      .filter((worker) => worker.killed)
      .map((worker) => worker.label)
      .sort();
  }
}


// ---------------------------------------------------------------- shutdown order

describe("shutdown order: dependents stop before their inputs are killed", () => {
  it("stops a chain from the last dependent to the first input, each kill waiting for the dependent's worker to stop", async () => {
    const { clock, engine } = makeEngine();
    const fleet = new Fleet();
    engine.installAll({ a: fleet.manifold("a", []), b: fleet.manifold("b", ["a"]), c: fleet.manifold("c", ["b"]) });
    await settle();
    expect(fleet.starts).toEqual(["a", "b", "c"]);

    engine.kill();
    await settle();
    expect(fleet.killed()).toEqual(["c"]);
    // However long c takes, b is not killed while c's worker runs.
    await clock.advance(10_000);
    expect(fleet.killed()).toEqual(["c"]);

    fleet.worker("c").stop();
    await settle();
    expect(fleet.killed()).toEqual(["b", "c"]);

    fleet.worker("b").stop();
    await settle();
    expect(fleet.killed()).toEqual(["a", "b", "c"]);
    const outcome = track(engine.wait());
    await settle();
    expect(outcome.settled).toBe(false);

    fleet.worker("a").stop();
    await expectCleanStop(engine, clock);
    expect(fleet.log).toEqual(["kill:c", "stop:c", "kill:b", "stop:b", "kill:a", "stop:a"]);
  });

  it("stops a diamond's top first, its two middles together, and its bottom only after both middles stopped", async () => {
    const { clock, engine } = makeEngine();
    const fleet = new Fleet();
    engine.installAll({
      d: fleet.manifold("d", ["b", "c"]),
      b: fleet.manifold("b", ["a"]),
      c: fleet.manifold("c", ["a"]),
      a: fleet.manifold("a", []),
    });
    await settle();
    engine.kill();
    await settle();
    expect(fleet.killed()).toEqual(["d"]);

    fleet.worker("d").stop();
    await settle();
    expect(fleet.killed()).toEqual(["b", "c", "d"]);

    fleet.worker("b").stop();
    await settle();
    expect(fleet.killed()).toEqual(["b", "c", "d"]); // c still runs, so a is not killed

    fleet.worker("c").stop();
    await settle();
    expect(fleet.killed()).toEqual(["a", "b", "c", "d"]);

    fleet.worker("a").stop();
    await expectCleanStop(engine, clock);
  });

  it("kills every dependent of a fan-out at once and their common input only after the last of them stopped", async () => {
    const { clock, engine } = makeEngine();
    const fleet = new Fleet();
    const leaves = ["l1", "l2", "l3", "l4", "l5"];
    engine.install("hub", fleet.manifold("hub", []));
    for (const leaf of leaves) engine.install(leaf, fleet.manifold(leaf, ["hub"]));
    await settle();
    engine.kill();
    await settle();
    expect(fleet.killed()).toEqual(leaves);

    for (const leaf of leaves.slice(0, 4)) fleet.worker(leaf).stop();
    await settle();
    expect(fleet.worker("hub").killed).toBe(false);

    fleet.worker("l5").stop();
    await settle();
    expect(fleet.worker("hub").killed).toBe(true);
    fleet.worker("hub").stop();
    await expectCleanStop(engine, clock);
  });

  it("kills unrelated manifolds together without waiting for each other", async () => {
    const { clock, engine } = makeEngine();
    const fleet = new Fleet();
    engine.installAll({ x: fleet.manifold("x", []), y: fleet.manifold("y", []), z: fleet.manifold("z", ["missing"]) });
    await settle();
    engine.kill();
    await settle();
    // z's input is not installed: it holds nobody back and is held back by nobody.
    expect(fleet.killed()).toEqual(["x", "y", "z"]);
    for (const name of ["x", "y", "z"]) fleet.worker(name).stop();
    await expectCleanStop(engine, clock);
  });

  it("in any dependency graph, no input is killed before all its dependents have stopped, and each worker is killed once", async () => {
    // A random DAG: node i may use any node j < i.
    const dag = fc.integer({ min: 1, max: 9 }).chain((n) =>
      fc.tuple(
        fc.constant(n),
        fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: 20 }),
        fc.array(fc.nat(n - 1), { maxLength: n }), // installed in this (shuffled-ish) order first
      ),
    );
    await fc.assert(
      fc.asyncProperty(dag, async ([n, pairs, firsts]) => {
        const inputs = Array.from({ length: n }, () => new Set<string>());
        for (const [x, y] of pairs) {
          if (x === y) continue;
          const [dependent, input] = x > y ? [x, y] : [y, x];
          inputs[dependent]?.add(`m${input}`);
        }
        const { clock, engine } = makeEngine();
        const fleet = new Fleet(true);
        const order = [...new Set([...firsts, ...Array.from({ length: n }, (_, i) => i)])];
        const manifolds: Record<string, Manifold> = {};
        for (const i of order) manifolds[`m${i}`] = fleet.manifold(`m${i}`, [...(inputs[i] ?? [])]);
        engine.installAll(manifolds);
        await settle();
        expect(fleet.starts).toHaveLength(n);

        engine.kill();
        await engine.wait();
        expect(clock.pending).toEqual([]);

        const at = (event: string): number => fleet.log.indexOf(event);
        for (let i = 0; i < n; i++) {
          expect(fleet.log.filter((event) => event === `kill:m${i}`)).toHaveLength(1);
          expect(at(`stop:m${i}`)).toBeGreaterThan(at(`kill:m${i}`));
          for (const input of inputs[i] ?? []) {
            expect(at(`stop:m${i}`)).toBeLessThan(at(`kill:${input}`));
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it("a fatal error stops the remaining workers dependents-first as well", async () => {
    const { clock, engine } = makeEngine({ isFatal: (error) => error instanceof Error && error.message === "fatal" });
    const fleet = new Fleet();
    engine.installAll({
      a: fleet.manifold("a", []),
      b: fleet.manifold("b", ["a"]),
      c: fleet.manifold("c", ["b"]),
      other: fleet.manifold("other", ["a"]),
    });
    await settle();
    fleet.worker("other").fail(new Error("fatal"));
    await settle();
    expect(engine.report().state).toBe("stopping");
    expect(fleet.killed()).toEqual(["c"]);
    fleet.worker("c").stop();
    await settle();
    expect(fleet.killed()).toEqual(["b", "c"]);
    fleet.worker("b").stop();
    await settle();
    expect(fleet.killed()).toEqual(["a", "b", "c"]);
    fleet.worker("a").stop();
    await expect(engine.wait()).rejects.toThrow("fatal");
    expect(clock.pending).toEqual([]);
  });
});

describe("shutdown with dependents that do not stop", () => {
  it("kills an input once its dependent is stuck past stopTimeout, and wait() names the stuck dependent", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 1000 });
    const fleet = new Fleet();
    engine.installAll({ a: fleet.manifold("a", []), b: fleet.manifold("b", ["a"]) });
    await settle();
    engine.kill();
    await settle();
    expect(fleet.killed()).toEqual(["b"]);

    await clock.advance(999);
    expect(fleet.killed()).toEqual(["b"]);
    expect(engine.report().manifolds.b?.stuck).toBeUndefined();

    await clock.advance(1);
    expect(engine.report().manifolds.b).toMatchObject({ state: "stopping", stuck: true });
    expect(fleet.killed()).toEqual(["a", "b"]);
    const outcome = track(engine.wait());
    await settle();
    expect(outcome.settled).toBe(false); // a has not stopped yet

    fleet.worker("a").stop();
    await settle();
    expect(outcome.error).toBeInstanceOf(ShutdownTimeoutError);
    expect((outcome.error as ShutdownTimeoutError).manifolds).toEqual(["b"]);
    expect(engine.report().manifolds.a?.state).toBe("stopped");
    expect(clock.pending).toEqual([]);
  });
});

describe("shutdown with starts in flight", () => {
  /** A manifold whose start returns a promise the test settles; it records the signal. */
  function pendingStart(inputs: string[]): {
    manifold: Manifold;
    calls: StartContext[];
    resolve: (worker: Worker) => void;
    reject: (error: unknown) => void;
  } {
    const calls: StartContext[] = [];
    let resolve!: (worker: Worker) => void;
    let reject!: (error: unknown) => void;
    const manifold: Manifold = {
      inputs,
      start: (context) => {
        calls.push(context);
        return new Promise<Worker>((res, rej) => {
          resolve = res;
          reject = rej;
        });
      },
    };
    return {
      manifold,
      calls,
      resolve: (worker) => resolve(worker),
      reject: (error) => reject(error),
    };
  }

  it("aborts a dependent's start at once and kills its input only after that start has settled", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 0 });
    const fleet = new Fleet();
    const dependent = pendingStart(["a"]);
    engine.install("a", fleet.manifold("a", []));
    engine.install("b", dependent.manifold);
    await settle();
    expect(dependent.calls).toHaveLength(1);
    const signal = dependent.calls[0]?.signal;
    expect(signal?.aborted).toBe(false);

    engine.kill();
    expect(signal?.aborted).toBe(true);
    await settle();
    await clock.advance(60_000);
    expect(fleet.worker("a").killed).toBe(false);
    expect(engine.report().manifolds.b?.state).toBe("starting");

    dependent.reject(signal?.reason);
    await settle();
    expect(fleet.worker("a").killed).toBe(true);
    fleet.worker("a").stop();
    await expectCleanStop(engine, clock);
    expect(dependent.calls).toHaveLength(1);
  });

  it("kills a worker that an aborted start returns anyway, and its input only after that worker has stopped", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 0 });
    const fleet = new Fleet();
    const dependent = pendingStart(["a"]);
    engine.install("a", fleet.manifold("a", []));
    engine.install("b", dependent.manifold);
    await settle();
    engine.kill();
    await settle();

    const late = new LoggedWorker("b-late", fleet.log);
    dependent.resolve(late);
    await settle();
    expect(late.killed).toBe(true);
    expect(engine.report().manifolds.b).toMatchObject({ state: "stopping", startCount: 0 });
    expect(fleet.worker("a").killed).toBe(false);

    late.stop();
    await settle();
    expect(fleet.worker("a").killed).toBe(true);
    fleet.worker("a").stop();
    await expectCleanStop(engine, clock);
    expect(fleet.log).toEqual(["kill:b-late", "stop:b-late", "kill:a", "stop:a"]);
  });
});

describe("shutdown with retiring (uninstalled) manifolds", () => {
  it("does not let an uninstalled worker that is still stopping hold back its former input, but waits for it", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 0 });
    const fleet = new Fleet();
    engine.installAll({ a: fleet.manifold("a", []), b: fleet.manifold("b", ["a"]) });
    await settle();
    const uninstalled = track(engine.uninstall("b"));
    await settle();
    expect(fleet.worker("b").killed).toBe(true);
    expect(uninstalled.settled).toBe(false);

    engine.kill();
    await settle();
    expect(fleet.worker("a").killed).toBe(true); // killed at once: b is no longer its dependent
    fleet.worker("a").stop();
    const outcome = track(engine.wait());
    await settle();
    expect(outcome.settled).toBe(false); // b's worker has still not stopped

    fleet.worker("b").stop();
    await settle();
    expect(uninstalled).toMatchObject({ settled: true, ok: true });
    await expectCleanStop(engine, clock);
  });

  it("kills at once the worker of a manifold uninstalled during its start when that start settles after kill()", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 0 });
    let resolve!: (worker: Worker) => void;
    let signal: AbortSignal | undefined;
    engine.install("slow", {
      inputs: [],
      start: (context) => {
        signal = context.signal;
        return new Promise<Worker>((res) => (resolve = res));
      },
    });
    await settle();
    const uninstalled = track(engine.uninstall("slow"));
    await settle();
    expect(signal?.aborted).toBe(true);
    engine.kill();
    await settle();

    const log: string[] = [];
    const late = new LoggedWorker("late", log);
    resolve(late);
    await settle();
    expect(log).toEqual(["kill:late"]);
    const outcome = track(engine.wait());
    await settle();
    expect(outcome.settled).toBe(false);
    late.stop();
    await settle();
    expect(uninstalled.ok).toBe(true);
    await expectCleanStop(engine, clock);
  });
});

// ---------------------------------------------------------------- kill(), wait() and the engine's state

describe("kill() and wait()", () => {
  it("an engine with no manifolds: wait() resolves right after kill(), without any time passing", async () => {
    const { clock, engine } = makeEngine();
    const outcome = track(engine.wait());
    await settle();
    expect(outcome.settled).toBe(false);
    engine.kill();
    await settle();
    expect(outcome).toMatchObject({ settled: true, ok: true });
    expect(clock.delays).toEqual([]);
    expect(engine.report()).toMatchObject({ state: "stopped", manifolds: {}, counts: { starting: 0, started: 0, stopping: 0, stopped: 0 } });
  });

  it("kill() is idempotent: a second kill() while stopping, or one after stopping, kills nothing twice", async () => {
    const { clock, engine } = makeEngine();
    const fleet = new Fleet();
    engine.installAll({ a: fleet.manifold("a", []), b: fleet.manifold("b", ["a"]) });
    await settle();
    const first = engine.wait();
    engine.kill();
    engine.kill();
    await settle();
    engine.kill();
    await settle();
    expect(fleet.log).toEqual(["kill:b"]);
    fleet.worker("b").stop();
    await settle();
    engine.kill();
    await settle();
    fleet.worker("a").stop();
    await expectCleanStop(engine, clock);
    engine.kill();
    await settle();
    expect(fleet.log).toEqual(["kill:b", "stop:b", "kill:a", "stop:a"]);
    expect(engine.wait()).toBe(first);
    await expect(engine.wait()).resolves.toBeUndefined();
  });

  it("[Symbol.asyncDispose] kills the engine and waits for it", async () => {
    const { clock, engine } = makeEngine();
    const fleet = new Fleet(true);
    engine.installAll({ a: fleet.manifold("a", []), b: fleet.manifold("b", ["a"]) });
    await settle();
    await engine[Symbol.asyncDispose]();
    expect(fleet.log).toEqual(["kill:b", "stop:b", "kill:a", "stop:a"]);
    expect(clock.pending).toEqual([]);
  });

  it("clears restart timers (error and bounce delays) at kill(), not only once the last worker has stopped", async () => {
    const { clock, engine } = makeEngine({ bounceDelay: 500, errorDelay: 5000, stopTimeout: 0 });
    const fleet = new Fleet();
    engine.install("slow", fleet.manifold("slow", []));
    engine.install("failing", {
      inputs: [],
      start: () => {
        throw new Error("no");
      },
    });
    engine.install("bouncing", {
      inputs: [],
      start: () =>
        createWorker(() => {
          throw new BounceError();
        }),
    });
    await settle();
    expect(clock.pending.map((timer) => timer.delay).sort((x, y) => x - y)).toEqual([500, 5000]);
    engine.kill();
    await settle();
    expect(engine.report().state).toBe("stopping"); // slow has not stopped yet
    expect(clock.pending).toEqual([]);
    await clock.advance(10_000);
    expect(fleet.starts).toEqual(["slow"]);
    fleet.worker("slow").stop();
    await expectCleanStop(engine, clock);
    expect(engine.report().manifolds.failing?.state).toBe("stopped");
    expect(engine.report().manifolds.bouncing?.state).toBe("stopped");
  });
});

describe("after kill(): no more changes", () => {
  it("install and installAll throw EngineStoppedError and uninstall rejects with it, while stopping and once stopped", async () => {
    const { clock, engine } = makeEngine();
    const fleet = new Fleet();
    engine.install("a", fleet.manifold("a", []));
    await settle();
    engine.kill();
    await settle();
    expect(engine.report().state).toBe("stopping");

    const check = async (): Promise<void> => {
      expect(() => engine.install("new", fleet.manifold("new", []))).toThrow(EngineStoppedError);
      expect(() => engine.installAll({ n1: fleet.manifold("n1", []), n2: fleet.manifold("n2", []) })).toThrow(EngineStoppedError);
      await expect(engine.uninstall("a")).rejects.toBeInstanceOf(EngineStoppedError);
      await expect(engine.uninstall("never-installed")).rejects.toBeInstanceOf(EngineStoppedError);
    };
    await check();

    fleet.worker("a").stop();
    await expectCleanStop(engine, clock);
    await check();
    await settle();
    expect(fleet.starts).toEqual(["a"]);
    expect(Object.keys(engine.report().manifolds)).toEqual(["a"]);
  });

  it("installAll throws EngineStoppedError after kill() even for an empty set", async () => {
    const { engine } = makeEngine();
    engine.kill();
    await engine.wait();
    expect(() => engine.installAll({})).toThrow(EngineStoppedError);
  });
});

describe("the report during shutdown", () => {
  it("goes started -> stopping -> stopped, for the engine and each manifold, with since following each change", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 0 });
    const fleet = new Fleet();
    engine.installAll({ a: fleet.manifold("a", []), b: fleet.manifold("b", ["a"]) });
    await settle();
    const t0 = iso(clock.now());
    expect(engine.report().state).toBe("started");
    expect(engine.report().manifolds.a).toMatchObject({ state: "started", since: t0, startCount: 1, lastStart: t0 });

    await clock.advance(1000);
    const t1 = iso(clock.now());
    engine.kill();
    await settle();
    let report = engine.report();
    expect(report.state).toBe("stopping");
    expect(report.manifolds.b).toMatchObject({ state: "stopping", since: t1 });
    expect(report.manifolds.a).toMatchObject({ state: "started", since: t0 }); // not killed yet

    await clock.advance(1000);
    const t2 = iso(clock.now());
    fleet.worker("b").stop();
    await settle();
    report = engine.report();
    expect(report.state).toBe("stopping");
    expect(report.manifolds.b).toMatchObject({ state: "stopped", since: t2, lastStart: t0 });
    expect(report.manifolds.a).toMatchObject({ state: "stopping", since: t2 });

    await clock.advance(1000);
    const t3 = iso(clock.now());
    fleet.worker("a").stop();
    await expectCleanStop(engine, clock);
    report = engine.report();
    expect(report.manifolds.a).toMatchObject({ state: "stopped", since: t3, startCount: 1, lastStart: t0 });
    expect(report.manifolds.a?.stuck).toBeUndefined();
    expect(report.error).toBeUndefined();
  });
});

// ---------------------------------------------------------------- the real clock

describe("timers with the real clock", () => {
  /**
   * Real Node timers, attributed to the engine: counting the process's active
   * Timeouts would also count the test runner's own (they come and go under
   * load), so the clock records each Timeout the engine creates and the test
   * asks Node whether it is still pending.
   */
  function recordingSystemClock(): Clock & { live(): number } {
    const handles = new Set<ReturnType<typeof setTimeout>>();
    return {
      now: () => Date.now(),
      setTimeout: (fn, ms) => {
        const handle = setTimeout(() => {
          handles.delete(handle);
          fn();
        }, ms);
        handles.add(handle);
        return handle;
      },
      clearTimeout: (handle) => {
        clearTimeout(handle as ReturnType<typeof setTimeout>);
        handles.delete(handle as ReturnType<typeof setTimeout>);
      },
      live: () => handles.size,
    };
  }

  it("leaves no Timeout of its own behind once wait() has settled, so the process could exit", async () => {
    const clock = recordingSystemClock();
    // Long delays: none of these timers can fire during the test, so the only
    // way they disappear is the engine clearing them.
    const engine = new Engine({ clock, errorDelay: 600_000, bounceDelay: 600_000, stopTimeout: 600_000, jitter: 0 });
    engine.install("failing", {
      inputs: [],
      start: () => {
        throw new Error("no");
      },
    });
    engine.install("bouncing", {
      inputs: [],
      start: () =>
        createWorker(() => {
          throw new BounceError();
        }),
    });
    // Stops only a few turns after kill(): the engine arms its stopTimeout timer meanwhile.
    engine.install("slow", {
      inputs: [],
      start: () => {
        let stop!: () => void;
        const done = new Promise<void>((resolve) => (stop = resolve));
        return { kill: () => setImmediate(stop), wait: () => done };
      },
    });
    engine.install("value", { inputs: ["slow"], start: () => valueWorker(1) });
    await settle();
    // The error delay and the bounce delay are pending as real timers.
    expect(clock.live()).toBe(2);

    engine.kill();
    await engine.wait();
    expect(clock.live()).toBe(0);
    expect(engine.report().state).toBe("stopped");
  });
});

describe("Symbol.asyncDispose", () => {
  it("kills the engine and waits for every worker", async () => {
    const worker = new TestWorker("a");
    let engineRef: Engine | undefined;
    {
      await using engine = makeEngine().engine;
      engineRef = engine;
      engine.install("a", { inputs: [], start: () => worker });
      await settle();
      expect(worker.killed).toBe(false);
    }
    expect(worker.killed).toBe(true);
    expect(engineRef.report().state).toBe("stopped");
  });

  it("swallows nothing: the fatal error surfaces from the using block", async () => {
    const fatal = new Error("fatal");
    const run = async (): Promise<void> => {
      await using engine = makeEngine({ isFatal: () => true }).engine;
      engine.install("a", {
        inputs: [],
        start: () => {
          throw fatal;
        },
      });
      await settle();
    };
    await expect(run()).rejects.toBe(fatal);
  });

  it("returns the same settlement as wait()", async () => {
    const { engine } = makeEngine();
    await expect(engine[Symbol.asyncDispose]()).resolves.toBeUndefined();
    await expect(engine.wait()).resolves.toBeUndefined();
  });
});
