/**
 * No silent hangs: a worker (or an aborted start) that does not settle within
 * its stopTimeout after the engine stopped it is reported `stuck`, stops
 * holding anyone back, is not restarted while stuck, and turns a shutdown that
 * would hang forever into a ShutdownTimeoutError naming it. No timer survives
 * wait(), and a stuck worker that settles late changes nothing.
 */
import { describe, expect, it } from "vitest";
import {
  BounceError,
  Engine,
  ShutdownTimeoutError,
  type Manifold,
  type StartContext,
  type Worker,
} from "../src/index.js";
import {
  deferred,
  entry,
  failOnUnhandledRejections,
  iso,
  killAndSettle,
  makeEngine,
  settle,
  TestWorker,
  track,
  type TestClock,
  type Tracked,
} from "./fixtures.js";

failOnUnhandledRejections();

// ---------------------------------------------------------------- local helpers

/** A manifold whose every start makes a TestWorker (ignoring kill unless `stopOnKill`), kept in `workers`. */
function testWorkers(inputs: string[], options: { stopOnKill?: boolean } = {}, extra: Partial<Manifold> = {}): {
  manifold: Manifold;
  workers: TestWorker[];
  contexts: { has: Record<string, boolean> }[];
} {
  const workers: TestWorker[] = [];
  const contexts: { has: Record<string, boolean> }[] = [];
  const manifold: Manifold = {
    inputs,
    start: (context) => {
      const has: Record<string, boolean> = {};
      for (const input of inputs) has[input] = context.hasResource(input);
      contexts.push({ has });
      const worker = new TestWorker(`w${workers.length}`, options);
      workers.push(worker);
      return worker;
    },
    ...extra,
  };
  return { manifold, workers, contexts };
}

/** A manifold whose start never settles (and ignores its signal); it records each context. */
function hangingStart(inputs: string[], extra: Partial<Manifold> = {}): { manifold: Manifold; contexts: StartContext[] } {
  const contexts: StartContext[] = [];
  return {
    manifold: {
      inputs,
      start: (context) => {
        contexts.push(context);
        return new Promise<Worker>(() => undefined);
      },
      ...extra,
    },
    contexts,
  };
}

/** The newest of `items` (a manifold's workers or start contexts, oldest first); throws when there is none yet. */
function newest<T>(items: readonly T[]): T {
  const item = items[items.length - 1];
  if (item === undefined) throw new Error("newest([]): nothing has been started yet");
  return item;
}

/** Expects wait() to have rejected with a ShutdownTimeoutError for exactly `names`, and no timer to be left. */
function expectShutdownTimeout(outcome: Tracked, clock: TestClock, names: string[]): ShutdownTimeoutError {
  expect(outcome.settled).toBe(true);
  expect(outcome.error).toBeInstanceOf(ShutdownTimeoutError);
  const error = outcome.error as ShutdownTimeoutError;
  expect(error.name).toBe("ShutdownTimeoutError");
  expect(error.manifolds).toEqual(names);
  for (const name of names) expect(error.message).toContain(JSON.stringify(name));
  expect(clock.pending).toEqual([]);
  return error;
}

// ---------------------------------------------------------------- configuration

describe("stopTimeout: engine default, engine setting, per-manifold override", () => {
  it("defaults to 30000 ms: a worker that ignores kill() is stuck 30 s after it was killed, not before", async () => {
    const { clock, engine } = makeEngine();
    const x = testWorkers([], { stopOnKill: false });
    engine.install("x", x.manifold);
    await settle();
    engine.kill();
    await settle();
    expect(clock.pending.map((timer) => timer.delay)).toEqual([30_000]);
    const outcome = track(engine.wait());
    await settle();
    await clock.advance(29_999);
    expect(engine.report().manifolds.x).toMatchObject({ state: "stopping" });
    expect(engine.report().manifolds.x?.stuck).toBeUndefined();
    expect(outcome.settled).toBe(false);
    await clock.advance(1);
    expect(engine.report().manifolds.x).toMatchObject({ state: "stopping", stuck: true });
    expectShutdownTimeout(outcome, clock, ["x"]);
  });

  it("uses the engine's stopTimeout for every manifold that does not set its own", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 500 });
    const x = testWorkers([], { stopOnKill: false });
    const y = testWorkers([], { stopOnKill: false });
    engine.installAll({ x: x.manifold, y: y.manifold });
    await settle();
    const outcome = await killAndSettle(engine);
    await clock.advance(499);
    expect(outcome.settled).toBe(false);
    await clock.advance(1);
    expect(engine.report().manifolds.x?.stuck).toBe(true);
    expect(engine.report().manifolds.y?.stuck).toBe(true);
    expectShutdownTimeout(outcome, clock, ["x", "y"]);
  });

  it("lets a manifold's own stopTimeout win over the engine's, whether longer or shorter", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 500 });
    const longer = testWorkers([], { stopOnKill: false }, { stopTimeout: 2000 });
    const shorter = testWorkers([], { stopOnKill: false }, { stopTimeout: 100 });
    const plain = testWorkers([], { stopOnKill: false });
    engine.installAll({ longer: longer.manifold, shorter: shorter.manifold, plain: plain.manifold });
    await settle();
    const outcome = await killAndSettle(engine);
    // One watchdog timer for every deadline, armed for the earliest.
    expect(clock.pending.map((timer) => timer.delay)).toEqual([100]);

    const stuck = (): string[] =>
      Object.entries(engine.report().manifolds)
        .filter(([, entry]) => entry.stuck === true)
        .map(([name]) => name)
        .sort();
    await clock.advance(100);
    expect(stuck()).toEqual(["shorter"]);
    await clock.advance(400);
    expect(stuck()).toEqual(["plain", "shorter"]);
    await clock.advance(1499);
    expect(stuck()).toEqual(["plain", "shorter"]);
    expect(outcome.settled).toBe(false);
    await clock.advance(1);
    expect(stuck()).toEqual(["longer", "plain", "shorter"]);
    expectShutdownTimeout(outcome, clock, ["longer", "plain", "shorter"]);
  });

  it("reads a manifold's stopTimeout at install: changing the manifold afterwards changes nothing (as Juju, which copies it)", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 500 });
    const changed = testWorkers([], { stopOnKill: false }, { stopTimeout: 100 });
    const added = testWorkers([], { stopOnKill: false });
    engine.installAll({ changed: changed.manifold, added: added.manifold });
    await settle();
    // Neither the per-manifold value nor its absence can be changed behind the engine's back (nor made invalid).
    Object.assign(changed.manifold, { stopTimeout: -1 });
    Object.assign(added.manifold, { stopTimeout: 50 });
    const outcome = await killAndSettle(engine);
    expect(clock.pending.map((timer) => timer.delay)).toEqual([100]);
    await clock.advance(100);
    expect(entry(engine, "changed").stuck).toBe(true);
    expect(entry(engine, "added").stuck).toBeUndefined();
    await clock.advance(400);
    expect(entry(engine, "added").stuck).toBe(true);
    expectShutdownTimeout(outcome, clock, ["added", "changed"]);
  });

  it("stopTimeout 0 on the engine waits forever: no stuck timer, wait() settles only when the worker stops", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 0 });
    const x = testWorkers([], { stopOnKill: false });
    engine.install("x", x.manifold);
    await settle();
    const outcome = await killAndSettle(engine);
    expect(clock.pending).toEqual([]);
    await clock.advance(10 * 24 * 3600 * 1000);
    expect(outcome.settled).toBe(false);
    expect(engine.report().manifolds.x?.stuck).toBeUndefined();
    newest(x.workers).complete();
    await settle();
    expect(outcome).toMatchObject({ settled: true, ok: true });
    expect(clock.delays).toEqual([]);
  });

  it("a manifold's stopTimeout 0 disables the engine's for it; a manifold's non-zero stopTimeout applies when the engine's is 0", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 500 });
    const patient = testWorkers([], { stopOnKill: false }, { stopTimeout: 0 });
    engine.install("patient", patient.manifold);
    await settle();
    const outcome = await killAndSettle(engine);
    expect(clock.pending).toEqual([]);
    await clock.advance(3_600_000);
    expect(outcome.settled).toBe(false);
    newest(patient.workers).complete();
    await settle();
    expect(outcome.ok).toBe(true);

    const other = makeEngine({ stopTimeout: 0 });
    const strict = testWorkers([], { stopOnKill: false }, { stopTimeout: 300 });
    other.engine.install("strict", strict.manifold);
    await settle();
    const otherOutcome = await killAndSettle(other.engine);
    await other.clock.advance(300);
    expectShutdownTimeout(otherOutcome, other.clock, ["strict"]);
  });
});

// ---------------------------------------------------------------- stuck at shutdown

describe("stuck workers at shutdown", () => {
  it("rejects wait() with ShutdownTimeoutError naming the stuck worker, after stopping every other one", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 1000 });
    const base = testWorkers([]);
    const stuck = testWorkers(["base"], { stopOnKill: false });
    const top = testWorkers(["stuck"]);
    const aside = testWorkers([]);
    engine.installAll({ base: base.manifold, stuck: stuck.manifold, top: top.manifold, aside: aside.manifold });
    await settle();
    const outcome = await killAndSettle(engine);
    expect(newest(top.workers).killed).toBe(true);
    expect(newest(aside.workers).killed).toBe(true);
    expect(newest(stuck.workers).killed).toBe(true);
    expect(newest(base.workers).killed).toBe(false);

    await clock.advance(1000);
    expect(newest(base.workers).killed).toBe(true);
    const error = expectShutdownTimeout(outcome, clock, ["stuck"]);
    expect(error.cause).toBeUndefined();
    const report = engine.report();
    expect(report.state).toBe("stopped");
    expect(report.manifolds.stuck).toMatchObject({ state: "stopping", stuck: true });
    for (const name of ["base", "top", "aside"]) {
      expect(report.manifolds[name]?.state).toBe("stopped");
      expect(report.manifolds[name]?.stuck).toBeUndefined();
    }
  });

  it("lists several stuck manifolds sorted by name and names each in the message", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 100 });
    for (const name of ["zeta", "alpha", "mid"]) engine.install(name, testWorkers([], { stopOnKill: false }).manifold);
    await settle();
    const outcome = await killAndSettle(engine);
    await clock.advance(100);
    expectShutdownTimeout(outcome, clock, ["alpha", "mid", "zeta"]);
  });

  it("waits for a slow (not stuck) worker to stop before rejecting for a stuck one", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 100 });
    const stuck = testWorkers([], { stopOnKill: false });
    const slow = testWorkers([], { stopOnKill: false }, { stopTimeout: 0 });
    engine.installAll({ stuck: stuck.manifold, slow: slow.manifold });
    await settle();
    const outcome = await killAndSettle(engine);
    await clock.advance(100_000);
    expect(engine.report().manifolds.stuck?.stuck).toBe(true);
    expect(outcome.settled).toBe(false);
    newest(slow.workers).complete();
    await settle();
    expectShutdownTimeout(outcome, clock, ["stuck"]);
  });

  it("with a fatal error and a stuck worker, rejects with ShutdownTimeoutError whose cause is the fatal error", async () => {
    const fatal = new Error("disk on fire");
    const { clock, engine } = makeEngine({ stopTimeout: 1000, isFatal: (error) => error === fatal });
    const failing = testWorkers([]);
    const stuck = testWorkers([], { stopOnKill: false });
    engine.installAll({ failing: failing.manifold, stuck: stuck.manifold });
    await settle();
    newest(failing.workers).fail(fatal);
    await settle();
    expect(engine.report().state).toBe("stopping");
    const outcome = track(engine.wait());
    await settle();
    await clock.advance(1000);
    const error = expectShutdownTimeout(outcome, clock, ["stuck"]);
    expect(error.cause).toBe(fatal);
    expect(engine.report().error).toBe("disk on fire");
  });

  it("a stuck worker that settles after the engine finished creates no timer and changes neither wait()'s result nor the engine state", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 1000, errorDelay: 10, bounceDelay: 10 });
    const base = testWorkers([]);
    const stuck = testWorkers(["base"], { stopOnKill: false });
    engine.installAll({ base: base.manifold, stuck: stuck.manifold });
    await settle();
    const outcome = await killAndSettle(engine);
    await clock.advance(1000);
    const error = expectShutdownTimeout(outcome, clock, ["stuck"]);
    const delays = clock.delays.length;

    newest(stuck.workers).fail(new Error("finally gave up"));
    await settle();
    await clock.advance(60_000);
    expect(clock.delays.length).toBe(delays);
    expect(clock.pending).toEqual([]);
    expect(stuck.workers).toHaveLength(1); // not restarted
    expect(base.workers).toHaveLength(1);
    await expect(engine.wait()).rejects.toBe(error);
    const report = engine.report();
    expect(report.state).toBe("stopped");
    expect(report.manifolds.stuck?.state).toBe("stopped");
    expect(report.manifolds.stuck?.stuck).toBeUndefined();
  });

  it("a stuck worker that settles after the engine finished with an error isFatal accepts does not change wait()'s result", async () => {
    const late = new Error("late fatal");
    const { clock, engine } = makeEngine({ stopTimeout: 1000, isFatal: (error) => error === late });
    const stuck = testWorkers([], { stopOnKill: false });
    engine.install("stuck", stuck.manifold);
    await settle();
    const outcome = await killAndSettle(engine);
    await clock.advance(1000);
    const error = expectShutdownTimeout(outcome, clock, ["stuck"]);
    newest(stuck.workers).fail(late);
    await settle();
    await expect(engine.wait()).rejects.toBe(error);
    expect(error.cause).toBeUndefined();
    expect(clock.pending).toEqual([]);
    expect(engine.report().state).toBe("stopped");
  });
});

// ---------------------------------------------------------------- starts that never settle

describe("a start function that never settles", () => {
  it("is reported starting, with since the time it was called, for as long as it runs", async () => {
    const { clock, engine } = makeEngine();
    await clock.advance(5000);
    const started = iso(clock.now());
    const hang = hangingStart([]);
    engine.install("hang", hang.manifold);
    await settle();
    expect(hang.contexts).toHaveLength(1);
    await clock.advance(3_600_000);
    const entry = engine.report().manifolds.hang;
    expect(entry).toMatchObject({ state: "starting", since: started, startCount: 0 });
    expect(entry?.stuck).toBeUndefined();
    expect(hang.contexts[0]?.signal.aborted).toBe(false);
    expect(clock.pending).toEqual([]);
    engine.kill();
    await settle();
    await clock.advance(30_000);
    await expect(engine.wait()).rejects.toBeInstanceOf(ShutdownTimeoutError);
  });

  it("has its signal aborted at kill(), becomes stuck after stopTimeout, and wait() rejects instead of hanging", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 2000 });
    const hang = hangingStart([]);
    engine.install("hang", hang.manifold);
    await settle();
    const since = engine.report().manifolds.hang?.since;
    engine.kill();
    expect(hang.contexts[0]?.signal.aborted).toBe(true);
    const outcome = track(engine.wait());
    await settle();
    await clock.advance(1999);
    expect(outcome.settled).toBe(false);
    expect(engine.report().manifolds.hang?.stuck).toBeUndefined();
    await clock.advance(1);
    expect(engine.report().manifolds.hang).toMatchObject({ state: "starting", stuck: true, since });
    expectShutdownTimeout(outcome, clock, ["hang"]);
    expect(hang.contexts).toHaveLength(1);
  });

  it("holds its input back at shutdown only until it is stuck", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 2000 });
    const base = testWorkers([]);
    const hang = hangingStart(["base"]);
    engine.installAll({ base: base.manifold, hang: hang.manifold });
    await settle();
    const outcome = await killAndSettle(engine);
    await clock.advance(1999);
    expect(newest(base.workers).killed).toBe(false);
    await clock.advance(1);
    expect(newest(base.workers).killed).toBe(true);
    expectShutdownTimeout(outcome, clock, ["hang"]);
    expect(engine.report().manifolds.base?.state).toBe("stopped");
  });

  it("if it finally returns a worker after the engine finished, that worker is killed at once and no timer is created", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 100 });
    let resolve!: (worker: Worker) => void;
    engine.install("late", { inputs: [], start: () => new Promise<Worker>((res) => (resolve = res)) });
    await settle();
    const outcome = await killAndSettle(engine);
    await clock.advance(100);
    const error = expectShutdownTimeout(outcome, clock, ["late"]);
    const delays = clock.delays.length;
    const worker = new TestWorker("late");
    resolve(worker);
    await settle();
    expect(worker.killed).toBe(true);
    expect(clock.delays.length).toBe(delays);
    expect(clock.pending).toEqual([]);
    await expect(engine.wait()).rejects.toBe(error);
    expect(engine.report().manifolds.late).toMatchObject({ state: "stopped", startCount: 0 });
  });
});

// ---------------------------------------------------------------- stuck outside shutdown

describe("stuck during a bounce (the engine keeps running)", () => {
  /** base <- mid <- top; mid's first worker ignores kill. base bounces itself with BounceError. */
  async function bouncedWithStuckMiddle(): Promise<{
    clock: TestClock;
    engine: Engine;
    base: ReturnType<typeof testWorkers>;
    midWorkers: TestWorker[];
    top: ReturnType<typeof testWorkers>;
  }> {
    const { clock, engine } = makeEngine({ stopTimeout: 1000, bounceDelay: 10 });
    const base = testWorkers([]);
    const midWorkers: TestWorker[] = [];
    const mid: Manifold = {
      inputs: ["base"],
      start: () => {
        const worker = new TestWorker(`mid${midWorkers.length}`, { stopOnKill: midWorkers.length > 0 });
        midWorkers.push(worker);
        return worker;
      },
      output: () => "mid-output",
    };
    const top = testWorkers(["mid"]);
    engine.installAll({ base: base.manifold, mid, top: top.manifold });
    await settle();
    expect([base.workers.length, midWorkers.length, top.workers.length]).toEqual([1, 1, 1]);
    newest(base.workers).fail(new BounceError("again"));
    await settle();
    return { clock, engine, base, midWorkers, top };
  }

  it("stays stopping and is marked stuck after stopTimeout, is not restarted while stuck, and restarts normally once it stops", async () => {
    const { clock, engine, midWorkers } = await bouncedWithStuckMiddle();
    expect(midWorkers[0]?.killed).toBe(true);
    expect(engine.report().manifolds.mid?.state).toBe("stopping");
    await clock.advance(999);
    expect(engine.report().manifolds.mid?.stuck).toBeUndefined();
    await clock.advance(1);
    const entry = engine.report().manifolds.mid;
    expect(entry).toMatchObject({ state: "stopping", stuck: true, startCount: 1 });
    expect(engine.report().state).toBe("started");

    // However long it takes, there is never a second mid worker alongside the stuck one.
    await clock.advance(3_600_000);
    expect(midWorkers).toHaveLength(1);
    expect(engine.report().manifolds.mid).toMatchObject({ state: "stopping", stuck: true, startCount: 1 });

    midWorkers[0]?.complete();
    await settle();
    expect(engine.report().manifolds.mid?.stuck).toBeUndefined();
    await clock.advance(10);
    expect(midWorkers).toHaveLength(2);
    expect(engine.report().manifolds.mid).toMatchObject({ state: "started", startCount: 2, since: iso(clock.now()) });
    expect(engine.report().manifolds.mid?.stuck).toBeUndefined();

    engine.kill();
    await settle();
    await expect(engine.wait()).resolves.toBeUndefined();
    expect(clock.pending).toEqual([]);
  });

  it("no longer holds back its dependents' restarts once it is stuck", async () => {
    const { clock, engine, top } = await bouncedWithStuckMiddle();
    // top was bounced along with mid; its restart waits while mid is stopping with a restart pending.
    await clock.advance(999);
    expect(top.workers).toHaveLength(1);
    expect(engine.report().manifolds.top?.state).toBe("starting");
    await clock.advance(1);
    expect(engine.report().manifolds.mid?.stuck).toBe(true);
    await settle();
    expect(top.workers).toHaveLength(2);
    expect(newest(top.contexts).has).toEqual({ mid: false });
    expect(engine.report().manifolds.top?.state).toBe("started");
  });

  it("kill() after a bounce left a worker stuck still stops its inputs, and wait() rejects naming it", async () => {
    const { clock, engine, base, midWorkers } = await bouncedWithStuckMiddle();
    await clock.advance(1000);
    expect(engine.report().manifolds.mid?.stuck).toBe(true);
    await clock.advance(10);
    expect(base.workers).toHaveLength(2); // base restarted after its bounce

    const outcome = await killAndSettle(engine);
    await clock.advance(100_000);
    // mid is already stuck: it must not hold base (its input) back from being killed.
    expect(newest(base.workers).killed).toBe(true);
    expect(engine.report().manifolds.base?.state).toBe("stopped");
    expectShutdownTimeout(outcome, clock, ["mid"]);
    expect(midWorkers).toHaveLength(1);
  });

  it("an aborted start that is stuck no longer holds back its dependents' starts", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 1000, bounceDelay: 10 });
    const base = testWorkers([]);
    const hang = hangingStart(["base"]);
    const top = testWorkers(["hang"]);
    engine.installAll({ base: base.manifold, hang: hang.manifold, top: top.manifold });
    await settle();
    expect(hang.contexts).toHaveLength(1);
    expect(top.workers).toHaveLength(0); // rule 9: waits for hang's start
    // base bounces: hang's start in flight is aborted (and wanted again once it settles).
    newest(base.workers).fail(new BounceError());
    await settle();
    expect(hang.contexts[0]?.signal.aborted).toBe(true);
    await clock.advance(1000);
    expect(engine.report().manifolds.hang).toMatchObject({ state: "starting", stuck: true });
    await settle();
    // Stuck inputs never hold a start back: top starts without hang.
    expect(top.workers).toHaveLength(1);
    expect(newest(top.contexts).has).toEqual({ hang: false });
  });

  it("kill() after an aborted start became stuck still stops its inputs, and wait() rejects naming it", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 1000, bounceDelay: 10 });
    const base = testWorkers([]);
    const hang = hangingStart(["base"]);
    engine.installAll({ base: base.manifold, hang: hang.manifold });
    await settle();
    newest(base.workers).fail(new BounceError());
    await settle();
    await clock.advance(1000);
    expect(engine.report().manifolds.hang).toMatchObject({ state: "starting", stuck: true });
    await clock.advance(10);
    expect(base.workers).toHaveLength(2);

    const outcome = await killAndSettle(engine);
    await clock.advance(100_000);
    expect(newest(base.workers).killed).toBe(true);
    expectShutdownTimeout(outcome, clock, ["hang"]);
  });

  it("an uninstalled worker that is stuck does not stop the engine from finishing", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 500 });
    const x = testWorkers([], { stopOnKill: false });
    const y = testWorkers([]);
    engine.installAll({ x: x.manifold, y: y.manifold });
    await settle();
    const uninstalled = track(engine.uninstall("x"));
    await clock.advance(500);
    const outcome = await killAndSettle(engine);
    expectShutdownTimeout(outcome, clock, ["x"]);
    expect(uninstalled.settled).toBe(false); // its worker never stopped
    newest(x.workers).complete();
    await settle();
    expect(uninstalled.ok).toBe(true);
    expect(clock.pending).toEqual([]);
  });
});

/** Installs `x` with a worker that ignores kill(), uninstalls it and lets it become stuck; returns its manifold's workers. */
async function stuckNamesake(engine: Engine, clock: TestClock, stopTimeout: number): Promise<TestWorker[]> {
  const first = testWorkers([], { stopOnKill: false });
  engine.install("x", first.manifold);
  await settle();
  void engine.uninstall("x");
  await clock.advance(stopTimeout);
  return first.workers;
}

describe("stuck workers never get a second instance", () => {
  it("reinstalling the name of an uninstalled stuck worker does not start it until the stuck one stops", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 500 });
    const firstWorkers = await stuckNamesake(engine, clock, 500);
    const second = testWorkers([]);
    engine.install("x", second.manifold);
    await clock.advance(60_000);
    expect(second.workers).toHaveLength(0);
    expect(engine.report().manifolds.x?.state).toBe("starting");
    newest(firstWorkers).complete();
    await settle();
    expect(second.workers).toHaveLength(1);
    engine.kill();
    await expect(engine.wait()).resolves.toBeUndefined();
    expect(clock.pending).toEqual([]);
  });

  it("a reinstalled name waiting for its stuck namesake does not hold back its dependents; they restart when it finally starts", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 500, bounceDelay: 10 });
    const firstWorkers = await stuckNamesake(engine, clock, 500);
    expect(engine.report().manifolds.x).toBeUndefined();
    const second = testWorkers([], {}, { output: () => "second" });
    engine.install("x", second.manifold);
    // d is installed when the old x is already stuck.
    const early = testWorkers(["x"]);
    engine.install("d", early.manifold);
    await clock.advance(1000);
    expect(early.contexts).toEqual([{ has: { x: false } }]);
    expect(engine.report().manifolds.d?.state).toBe("started");

    newest(firstWorkers).complete();
    await settle();
    expect(second.workers).toHaveLength(1);
    await clock.advance(10);
    expect(early.contexts).toEqual([{ has: { x: false } }, { has: { x: true } }]);
    engine.kill();
    await expect(engine.wait()).resolves.toBeUndefined();
    expect(clock.pending).toEqual([]);
  });

  it("once the stuck namesake stops, a reinstalled name still waiting for its own input holds its dependents back again", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 500 });
    const firstWorkers = await stuckNamesake(engine, clock, 500);
    const yStarted = deferred<Worker>();
    engine.install("y", { inputs: [], start: () => yStarted.promise, output: () => "y" });
    const second = testWorkers(["y"], {}, { output: () => "second" });
    engine.install("x", second.manifold);
    await settle();
    newest(firstWorkers).complete();
    await settle();
    // x now waits for y's start only: a start that will come, so x holds its dependents back.
    const late = testWorkers(["x"]);
    engine.install("d", late.manifold);
    await clock.advance(1000);
    expect(late.contexts).toEqual([]);
    yStarted.resolve(new TestWorker("y"));
    await settle();
    expect(second.workers).toHaveLength(1);
    expect(late.contexts).toEqual([{ has: { x: true } }]);
    engine.kill();
    await expect(engine.wait()).resolves.toBeUndefined();
  });

  it("a dependent already waiting for the reinstalled name is released when the namesake becomes stuck", async () => {
    const { clock, engine } = makeEngine({ stopTimeout: 500 });
    const first = testWorkers([], { stopOnKill: false });
    engine.install("x", first.manifold);
    await settle();
    void engine.uninstall("x");
    const second = testWorkers([], {}, { output: () => "second" });
    engine.install("x", second.manifold);
    const dependent = testWorkers(["x"]);
    engine.install("d", dependent.manifold);
    await clock.advance(499);
    expect(dependent.contexts).toEqual([]);
    await clock.advance(1);
    expect(dependent.contexts).toEqual([{ has: { x: false } }]);
    engine.kill();
    await expect(engine.wait()).rejects.toBeInstanceOf(ShutdownTimeoutError);
    expect(clock.pending).toEqual([]);
  });
});
