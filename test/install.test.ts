/**
 * Installing and uninstalling: installAll is all or nothing, uninstall
 * resolves only once the worker has stopped (and a reinstall of the name
 * waits for it), and UninstallError removes a manifold from inside.
 */
import { describe, expect, it } from "vitest";
import { AlreadyInstalledError, CycleError, UninstallError, valueWorker, type Manifold } from "../src/index.js";
import {
  deferred,
  entry,
  expectStillWorking,
  failOnUnhandledRejections,
  makeEngine,
  recording,
  settle,
  stop,
  TestWorker,
  thrownBy,
  track,
  valueManifold,
  type Tracked,
} from "./fixtures.js";

failOnUnhandledRejections();

describe("installAll is all or nothing", () => {
  const spyStart = (calls: string[], name: string) => () => {
    calls.push(name);
    return valueWorker(name);
  };

  it("installs and starts nothing when one manifold is malformed", async () => {
    const { engine } = makeEngine();
    const calls: string[] = [];
    const error = thrownBy(() =>
      engine.installAll({
        good: { inputs: [], start: spyStart(calls, "good") },
        other: { inputs: ["good"], start: spyStart(calls, "other") },
        bad: { inputs: "good" } as unknown as Manifold,
      }),
    );
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/"bad"/);
    await settle();
    expect(engine.report().manifolds).toEqual({});
    expect(calls).toEqual([]);
    await stop(engine);
  });

  it("installs and starts nothing when the group contains a cycle", async () => {
    const { engine } = makeEngine();
    const calls: string[] = [];
    const error = thrownBy(() =>
      engine.installAll({
        free: { inputs: [], start: spyStart(calls, "free") },
        x: { inputs: ["y"], start: spyStart(calls, "x") },
        y: { inputs: ["z"], start: spyStart(calls, "y") },
        z: { inputs: ["x"], start: spyStart(calls, "z") },
      }),
    );
    expect(error).toBeInstanceOf(CycleError);
    const cycle = (error as CycleError).cycle;
    expect(cycle[0]).toBe(cycle[cycle.length - 1]);
    expect(cycle).toHaveLength(4);
    expect(new Set(cycle)).toEqual(new Set(["x", "y", "z"]));
    await settle();
    expect(engine.report().manifolds).toEqual({});
    expect(calls).toEqual([]);
    await stop(engine);
  });

  it("installs nothing when the group closes a cycle with what is installed", async () => {
    const { engine } = makeEngine();
    const calls: string[] = [];
    engine.install("installed", { inputs: ["p"], start: spyStart(calls, "installed") });
    await settle();
    expect(() =>
      engine.installAll({
        q: { inputs: [], start: spyStart(calls, "q") },
        p: { inputs: ["installed"], start: spyStart(calls, "p") },
      }),
    ).toThrow(CycleError);
    await settle();
    expect(Object.keys(engine.report().manifolds)).toEqual(["installed"]);
    expect(calls).toEqual(["installed"]);
    await stop(engine);
  });

  it("installs nothing when one name is already installed", async () => {
    const { engine } = makeEngine();
    const calls: string[] = [];
    engine.install("taken", { inputs: [], start: spyStart(calls, "taken") });
    const error = thrownBy(() =>
      engine.installAll({
        fresh: { inputs: [], start: spyStart(calls, "fresh") },
        taken: { inputs: [], start: spyStart(calls, "taken again") },
      }),
    );
    expect(error).toBeInstanceOf(AlreadyInstalledError);
    expect((error as AlreadyInstalledError).manifoldName).toBe("taken");
    await settle();
    expect(Object.keys(engine.report().manifolds)).toEqual(["taken"]);
    expect(calls).toEqual(["taken"]);
    await stop(engine);
  });

  it("leaves no trace of a refused group: its names and edges are free afterwards", async () => {
    const { engine } = makeEngine();
    expect(() =>
      engine.installAll({
        x: { inputs: ["y"], start: () => valueWorker(0) },
        broken: { inputs: [], start: 42 } as unknown as Manifold,
      }),
    ).toThrow(TypeError);
    // Were x's edge to y left behind, this would be refused as a cycle y -> x -> y.
    expect(() => engine.install("y", { inputs: ["x"], start: () => valueWorker(0) })).not.toThrow();
    expect(() => engine.install("broken", { inputs: [], start: () => valueWorker(0) })).not.toThrow();
    await settle();
    expect(entry(engine, "y").state).toBe("started");
    await stop(engine);
  });

  it("starts a valid group once each, in dependency order", async () => {
    const { engine } = makeEngine({ bounceDelay: 10 });
    const log: string[] = [];
    engine.installAll({
      d: recording(log, "d", ["b", "c"]),
      c: recording(log, "c", ["a"]),
      b: recording(log, "b", ["a"]),
      a: recording(log, "a"),
    });
    await settle();
    expect(log).toEqual(["a()", "c(a)", "b(a)", "d(b,c)"]);
    await stop(engine);
  });
});

describe("uninstall", () => {
  it("resolves only once the worker has stopped", async () => {
    const { engine } = makeEngine();
    const worker = new TestWorker("a", { stopOnKill: false });
    engine.install("a", { inputs: [], start: () => worker });
    await settle();
    const uninstalled = track(engine.uninstall("a"));
    await settle();
    expect(worker.killed).toBe(true);
    expect(uninstalled.settled).toBe(false);
    // It is gone from the report at once, though its worker lingers.
    expect(engine.report().manifolds).toEqual({});
    worker.complete();
    await settle();
    expect(uninstalled.ok).toBe(true);
    await stop(engine);
  });

  it("resolves even when the worker stops with an error", async () => {
    const { engine } = makeEngine();
    const worker = new TestWorker("a", { stopOnKill: false });
    engine.install("a", { inputs: [], start: () => worker });
    await settle();
    const uninstalled = track(engine.uninstall("a"));
    worker.fail(new Error("died badly"));
    await settle();
    expect(uninstalled.ok).toBe(true);
    await stop(engine);
  });

  it("restarts dependents without it", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    engine.install("a", recording(log, "a"));
    engine.install("b", recording(log, "b", ["a"]));
    await settle();
    expect(log).toEqual(["a()", "b(a)"]);
    await engine.uninstall("a");
    await settle();
    expect(log).toEqual(["a()", "b(a)", "b()"]);
    expect(entry(engine, "b").state).toBe("started");
    // The dependent still declares it: a later install of "a" will bounce it again.
    expect(entry(engine, "b").inputs).toEqual(["a"]);
    engine.install("a", recording(log, "a"));
    await settle();
    expect(log.slice(3)).toEqual(["a()", "b(a)"]);
    await stop(engine);
  });

  it("resolves at once for a name that is not installed", async () => {
    const { engine } = makeEngine();
    const uninstalled = track(engine.uninstall("ghost"));
    await Promise.resolve();
    await Promise.resolve();
    expect(uninstalled.ok).toBe(true);
    await stop(engine);
  });

  it("resolves at once for a manifold waiting out an error delay, and clears its timer", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000 });
    engine.install("a", {
      inputs: [],
      start: () => {
        throw new Error("nope");
      },
    });
    await settle();
    expect(clock.pending).toHaveLength(1);
    const uninstalled = track(engine.uninstall("a"));
    await Promise.resolve();
    await Promise.resolve();
    expect(uninstalled.ok).toBe(true);
    expect(clock.pending).toEqual([]);
    await stop(engine);
  });

  it("aborts a start in flight and waits for the worker it still returns to stop", async () => {
    const { engine } = makeEngine();
    const gate = deferred<TestWorker>();
    let signal: AbortSignal | undefined;
    engine.install("a", {
      inputs: [],
      start: (context) => {
        signal = context.signal;
        return gate.promise;
      },
    });
    await settle();
    const uninstalled = track(engine.uninstall("a"));
    await settle();
    expect(signal?.aborted).toBe(true);
    expect(uninstalled.settled).toBe(false);
    const late = new TestWorker("late", { stopOnKill: false });
    gate.resolve(late);
    await settle();
    expect(late.killed).toBe(true);
    expect(uninstalled.settled).toBe(false);
    late.complete();
    await settle();
    expect(uninstalled.ok).toBe(true);
    await stop(engine);
  });

  it("makes a reinstall of the same name wait for the old worker to stop: never two workers", async () => {
    const { engine } = makeEngine();
    const old = new TestWorker("old", { stopOnKill: false });
    // Registered before the engine's own callback, so the flag is set before the engine can react.
    let oldSettled = false;
    void old.wait().then(
      () => (oldSettled = true),
      () => (oldSettled = true),
    );
    engine.install("a", { inputs: [], start: () => old });
    await settle();
    const uninstalled = track(engine.uninstall("a"));
    let newStarts = 0;
    let oldSettledAtNewStart: boolean | undefined;
    engine.install("a", {
      inputs: [],
      start: () => {
        newStarts++;
        oldSettledAtNewStart = oldSettled;
        return valueWorker("new");
      },
    });
    await settle();
    expect(newStarts).toBe(0);
    expect(entry(engine, "a").state).toBe("starting");
    old.complete();
    await settle();
    expect(uninstalled.ok).toBe(true);
    expect(newStarts).toBe(1);
    expect(oldSettledAtNewStart).toBe(true);
    expect(entry(engine, "a").state).toBe("started");
    await stop(engine);
  });

  it("may be called by the manifold's own start function: the worker it returns is stopped", async () => {
    const { engine } = makeEngine();
    const worker = new TestWorker("a");
    let uninstalled: Tracked | undefined;
    engine.install("a", {
      inputs: [],
      start: () => {
        // Re-entrant call while the engine is handling this start.
        uninstalled = track(engine.uninstall("a"));
        return worker;
      },
    });
    await settle();
    expect(worker.killed).toBe(true);
    expect(uninstalled?.ok).toBe(true);
    expect(engine.report().manifolds).toEqual({});
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("makes dependents of a reinstalled name wait for the new worker rather than start without it", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    const old = new TestWorker("old", { stopOnKill: false });
    engine.install("a", { inputs: [], start: () => old, output: () => "old" });
    engine.install("b", recording(log, "b", ["a"]));
    await settle();
    expect(log).toEqual(["b(a)"]);
    void engine.uninstall("a");
    engine.install("a", recording(log, "a"));
    await settle();
    // "b" was bounced by the uninstall; the new "a" is blocked behind the old worker
    // and counts as a start in flight, so "b" waits for it (rule 9).
    expect(log).toEqual(["b(a)"]);
    old.complete();
    await settle();
    expect(log).toEqual(["b(a)", "a()", "b(a)"]);
    await stop(engine);
  });
});

describe("UninstallError removes the manifold", () => {
  it("when a start function throws it", async () => {
    const { engine, clock } = makeEngine();
    engine.install("a", {
      inputs: [],
      start: () => {
        throw new UninstallError("no hardware");
      },
    });
    await settle();
    expect(engine.report().manifolds).toEqual({});
    expect(clock.pending).toEqual([]);
    // The name is free again, and uninstalling it is a no-op.
    await expect(engine.uninstall("a")).resolves.toBeUndefined();
    engine.install("a", valueManifold(1));
    await settle();
    expect(entry(engine, "a").state).toBe("started");
    await stop(engine);
  });

  it("when a worker fails with it, restarting dependents without it", async () => {
    const { engine } = makeEngine();
    const worker = new TestWorker("a");
    const log: string[] = [];
    engine.install("a", { inputs: [], start: () => worker, output: () => "A" });
    engine.install("b", recording(log, "b", ["a"]));
    await settle();
    worker.fail(new UninstallError());
    await settle();
    expect(Object.keys(engine.report().manifolds)).toEqual(["b"]);
    expect(log).toEqual(["b(a)", "b()"]);
    await stop(engine);
  });

  it("when it arrives at the end of a cause chain", async () => {
    const { engine } = makeEngine();
    engine.install("a", {
      inputs: [],
      start: async () => {
        throw new Error("driver gone", { cause: new Error("io", { cause: new UninstallError() }) });
      },
    });
    await settle();
    expect(engine.report().manifolds).toEqual({});
    await stop(engine);
  });

  it("when the manifold's filter converts an error into it", async () => {
    const { engine } = makeEngine();
    engine.install("a", {
      inputs: [],
      start: () => {
        throw new Error("ENODEV");
      },
      filter: (error) => (error instanceof Error && error.message === "ENODEV" ? new UninstallError("converted") : error),
    });
    await settle();
    expect(engine.report().manifolds).toEqual({});
    await stop(engine);
  });
});
