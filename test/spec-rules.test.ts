/**
 * SPEC rules that Juju's own test suite does not exercise: typed resources,
 * start-context expiry, installAll atomicity, uninstall, error wrapping,
 * rule 8/9/10/11 guarantees, report fields and async disposal.
 */
import fc from "fast-check";
import { describe, expect, expectTypeOf, it } from "vitest";
import {
  BounceError,
  CycleError,
  AlreadyInstalledError,
  Engine,
  errorIs,
  manifold,
  MissingError,
  resource,
  selfManifold,
  UninstallError,
  valueWorker,
  type EngineConfig,
  type EngineControls,
  type EngineReport,
  type InputName,
  type Manifold,
  type ManifoldReport,
  type StartContext,
  type Worker,
} from "../src/index.js";
import { FakeClock, settle, TestWorker, failOnUnhandledRejections, deferred, expectStillWorking } from "./helpers.js";

// ------------------------------------------------------------------ local helpers

// Rule 7 and rule 10: nothing the engine does may surface as an unhandled rejection.
// Every test in this file is checked.
failOnUnhandledRejections();


type Tracked = { state: "pending" | "resolved" | "rejected"; value?: unknown };
/** Observes a promise without ever leaving it unhandled. */
function track(promise: Promise<unknown>): Tracked {
  const record: Tracked = { state: "pending" };
  promise.then(
    (value) => Object.assign(record, { state: "resolved", value }),
    (error: unknown) => Object.assign(record, { state: "rejected", value: error }),
  );
  return record;
}

/** The error `fn` throws (fails the test if it does not throw). */
function thrownBy(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected the call to throw");
}

function entry(engine: Engine, name: string): ManifoldReport {
  const found = Object.getOwnPropertyDescriptor(engine.report().manifolds, name)?.value as ManifoldReport | undefined;
  if (found === undefined) throw new Error(`no report entry for ${name}`);
  return found;
}

function makeEngine(config: EngineConfig = {}): { engine: Engine; clock: FakeClock } {
  const clock = new FakeClock();
  return { engine: new Engine({ clock, jitter: 0, bounceDelay: 0, ...config }), clock };
}

async function stop(engine: Engine): Promise<void> {
  engine.kill();
  await engine.wait();
}

/** A manifold whose worker holds `value` and offers it as output. */
function valueManifold<T>(value: T, inputs: InputName[] = []): Manifold<Worker & { readonly value: T }, T> {
  return { inputs, start: () => valueWorker(value), output: (worker) => worker.value };
}

/** A manifold that records each start call (with which inputs were available) in `log`. */
function recording(log: string[], name: string, inputs: string[] = []): Manifold<Worker & { readonly value: string }, string> {
  return {
    inputs,
    start: (context) => {
      log.push(`${name}(${inputs.filter((input) => context.hasResource(input)).join(",")})`);
      return valueWorker(name);
    },
    output: (worker) => worker.value,
  };
}


// ------------------------------------------------------------------ tests

describe("typed resource tokens", () => {
  interface Db {
    query(sql: string): string[];
  }
  const db = resource<Db>("db");

  it("works as a manifold name, an input and a getResource argument, with the output's type", async () => {
    const { engine } = makeEngine();
    const fakeDb: Db = { query: (sql) => [sql] };
    engine.install(
      db,
      manifold({ inputs: [], start: () => valueWorker(fakeDb), output: (worker) => worker.value }),
    );
    const rows: string[][] = [];
    engine.install("api", {
      inputs: [db],
      start: (context) => {
        const got = context.getResource(db);
        expectTypeOf(got).toEqualTypeOf<Db>();
        rows.push(got.query("select 1"));
        return valueWorker(0);
      },
    });
    await settle();
    expect(rows).toEqual([["select 1"]]);
    // The token's name is the manifold's name everywhere.
    expect(Object.keys(engine.report().manifolds).sort()).toEqual(["api", "db"]);
    expect(entry(engine, "api").inputs).toEqual(["db"]);
    await stop(engine);
  });

  it("is interchangeable with its plain name", async () => {
    const { engine } = makeEngine();
    engine.install("db", valueManifold<Db>({ query: () => ["x"] }));
    const seen: unknown[] = [];
    engine.install("api", {
      inputs: ["db"],
      start: (context) => {
        seen.push(context.getResource(db).query(""), context.hasResource(db), context.getResource("db"));
        return valueWorker(0);
      },
    });
    await settle();
    expect(seen[0]).toEqual(["x"]);
    expect(seen[1]).toBe(true);
    expect(seen[2]).toHaveProperty("query");
    await engine.uninstall(db);
    expect(Object.keys(engine.report().manifolds)).toEqual(["api"]);
    await stop(engine);
  });

  it("types a plain-name getResource as unknown", () => {
    const context = {} as StartContext;
    // Only the types are checked here: the functions are never called.
    const check = (): void => {
      expectTypeOf(context.getResource("db")).toEqualTypeOf<unknown>();
      expectTypeOf(context.getResource(resource<number>("n"))).toEqualTypeOf<number>();
    };
    expect(typeof check).toBe("function");
  });

  it("refuses, at compile time, a manifold whose output does not match the token's type", () => {
    const { engine } = makeEngine();
    const port = resource<number>("port");
    const install = (): void =>
      // @ts-expect-error: a Resource<number> cannot name a manifold whose output is a string.
      engine.install(port, manifold({ inputs: [], start: () => valueWorker("x"), output: (w) => w.value }));
    expect(typeof install).toBe("function");
    engine.kill();
  });

  it("refuses an empty token name", () => {
    expect(() => resource("")).toThrow(TypeError);
  });
});

describe("start context expiry (rule 2)", () => {
  it("getResource and hasResource throw a plain 'expired' Error once a synchronous start has returned", async () => {
    const { engine } = makeEngine();
    engine.install("a", valueManifold("A"));
    let captured: StartContext | undefined;
    engine.install("b", {
      inputs: ["a"],
      start: (context) => {
        captured = context;
        expect(context.getResource("a")).toBe("A");
        return valueWorker(0);
      },
    });
    await settle();
    const context = captured as StartContext;
    const error = thrownBy(() => context.getResource("a"));
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(/expired/);
    expect(error.message).toMatch(/"b"/);
    // A MissingError would tell the engine "do not restart": expiry is a programming error instead.
    expect(errorIs(error, MissingError)).toBe(false);
    const hasError = thrownBy(() => context.hasResource("a"));
    expect(hasError.message).toMatch(/expired/);
    expect(errorIs(hasError, MissingError)).toBe(false);
    // Also for names it never declared: expiry wins.
    expect(() => context.getResource("undeclared")).toThrow(/expired/);
    await stop(engine);
  });

  it("lets an asynchronous start use the context until its promise settles, then expires it", async () => {
    const { engine } = makeEngine();
    engine.install("a", valueManifold("A"));
    const gate = deferred();
    let captured: StartContext | undefined;
    const during: unknown[] = [];
    engine.install("b", {
      inputs: ["a"],
      start: async (context) => {
        captured = context;
        await gate.promise;
        during.push(context.getResource("a"), context.hasResource("a"));
        return valueWorker(0);
      },
    });
    await settle();
    const context = captured as StartContext;
    // Still inside the start function: usable.
    expect(context.getResource("a")).toBe("A");
    gate.resolve();
    await settle();
    expect(during).toEqual(["A", true]);
    expect(entry(engine, "b").state).toBe("started");
    const error = thrownBy(() => context.getResource("a"));
    expect(error.message).toMatch(/expired/);
    expect(errorIs(error, MissingError)).toBe(false);
    expect(() => context.hasResource("a")).toThrow(/expired/);
    await stop(engine);
  });

  it("expires the context of a start that failed", async () => {
    const { engine } = makeEngine();
    engine.install("a", valueManifold("A"));
    let captured: StartContext | undefined;
    engine.install("b", {
      inputs: ["a"],
      start: async (context) => {
        captured = context;
        throw new Error("failed start");
      },
    });
    await settle();
    expect(() => (captured as StartContext).getResource("a")).toThrow(/expired/);
    await stop(engine);
  });
});

describe("the snapshot is taken when the start function is called (rule 2)", () => {
  it("still hands out an input that stopped while the start was running", async () => {
    const { engine } = makeEngine();
    const inputWorker = new TestWorker("a");
    engine.install("a", { inputs: [], start: () => inputWorker, output: () => "A-out" });
    const gate = deferred();
    const seen: unknown[] = [];
    let firstSignal: AbortSignal | undefined;
    engine.install("b", {
      inputs: ["a"],
      start: async (context) => {
        firstSignal ??= context.signal;
        await gate.promise;
        seen.push(context.getResource("a"));
        return valueWorker(0);
      },
    });
    await settle();
    inputWorker.complete();
    await settle();
    // The input went away, so this start attempt is no longer wanted...
    expect(firstSignal?.aborted).toBe(true);
    gate.resolve();
    await settle();
    // ...but its snapshot still holds what was running when it was called.
    expect(seen[0]).toBe("A-out");
    // The restart that follows sees the input gone.
    expect(seen).toHaveLength(1);
    expect(entry(engine, "b").error).toMatch(/"a" is not running/);
    await stop(engine);
  });

  it("does not hand out an input that came up after the start was called", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 100 });
    let inputCalls = 0;
    engine.install("a", {
      inputs: [],
      start: () => {
        if (++inputCalls === 1) throw new Error("not yet");
        return valueWorker("A");
      },
      output: (worker) => worker.value,
    });
    const gate = deferred();
    const observed: unknown[] = [];
    engine.install("b", {
      inputs: ["a"],
      start: async (context) => {
        await gate.promise;
        observed.push(context.hasResource("a"));
        try {
          observed.push(context.getResource("a"));
        } catch (error) {
          observed.push(error);
        }
        return valueWorker(0);
      },
    });
    await settle();
    // "a" failed and waits out its error delay; "b" started without it (rule 9).
    await clock.advance(100);
    expect(entry(engine, "a").state).toBe("started");
    gate.resolve();
    await settle();
    expect(observed[0]).toBe(false);
    expect(observed[1]).toBeInstanceOf(MissingError);
    await stop(engine);
  });
});

describe("resourceLog", () => {
  it("records each getResource call of the start attempt, with the error of those that failed, and no hasResource call", async () => {
    const { engine } = makeEngine();
    engine.install("a", valueManifold("A"));
    engine.install("leaf", { inputs: [], start: () => valueWorker(0) }); // no output
    engine.install("bad", {
      inputs: [],
      start: () => valueWorker(0),
      output: () => {
        throw new Error("output exploded");
      },
    });
    engine.install("b", {
      inputs: ["a", "leaf", "bad", "ghost"],
      start: (context) => {
        context.hasResource("a");
        context.hasResource("ghost");
        context.getResource("a");
        for (const name of ["undeclared", "leaf", "bad", "ghost"]) {
          try {
            context.getResource(name);
          } catch {
            // The log, not the throw, is under test.
          }
        }
        return valueWorker(0);
      },
    });
    await settle();
    const log = entry(engine, "b").resourceLog ?? [];
    expect(log.map((item) => item.name)).toEqual(["a", "undeclared", "leaf", "bad", "ghost"]);
    expect(log[0]).toStrictEqual({ name: "a" });
    expect(log[1]?.error).toMatch(/not in its inputs/);
    expect(log[2]?.error).toMatch(/no output/);
    expect(log[3]?.error).toBe("output exploded");
    expect(log[4]?.error).toMatch(/not running/);
    expect(() => JSON.stringify(engine.report())).not.toThrow();
    await stop(engine);
  });

  it("shows only the last start attempt", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 50 });
    engine.install("a", valueManifold("A"));
    let calls = 0;
    engine.install("b", {
      inputs: ["a"],
      start: (context) => {
        calls++;
        if (calls === 1) {
          context.getResource("a");
          context.getResource("a");
          throw new Error("first attempt fails");
        }
        return valueWorker(0);
      },
    });
    await settle();
    expect(entry(engine, "b").resourceLog).toHaveLength(2);
    await clock.advance(50);
    expect(calls).toBe(2);
    expect(entry(engine, "b").resourceLog).toEqual([]);
    await stop(engine);
  });
});

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
    expect(uninstalled.state).toBe("pending");
    // It is gone from the report at once, though its worker lingers.
    expect(engine.report().manifolds).toEqual({});
    worker.complete();
    await settle();
    expect(uninstalled.state).toBe("resolved");
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
    expect(uninstalled.state).toBe("resolved");
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
    expect(uninstalled.state).toBe("resolved");
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
    expect(uninstalled.state).toBe("resolved");
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
    expect(uninstalled.state).toBe("pending");
    const late = new TestWorker("late", { stopOnKill: false });
    gate.resolve(late);
    await settle();
    expect(late.killed).toBe(true);
    expect(uninstalled.state).toBe("pending");
    late.complete();
    await settle();
    expect(uninstalled.state).toBe("resolved");
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
    expect(uninstalled.state).toBe("resolved");
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
    expect(uninstalled?.state).toBe("resolved");
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

describe("engine errors are recognised along cause chains", () => {
  it("a wrapped MissingError stops the manifold without a restart", async () => {
    const { engine, clock } = makeEngine();
    const worker = new TestWorker("a");
    engine.install("a", { inputs: [], start: () => worker });
    await settle();
    worker.fail(new Error("wrapper", { cause: new MissingError("db gone") }));
    await settle();
    expect(entry(engine, "a")).toMatchObject({ state: "stopped", error: "wrapper", startCount: 1 });
    expect(clock.pending).toEqual([]);
    await stop(engine);
  });

  it("a wrapped BounceError restarts after bounceDelay, never backed off", async () => {
    const { engine, clock } = makeEngine({ bounceDelay: 25, errorDelay: 1000, backoffFactor: 2 });
    let calls = 0;
    engine.install("a", {
      inputs: [],
      start: () => {
        calls++;
        throw new Error(`bounce me ${calls}`, { cause: new BounceError() });
      },
    });
    await settle();
    for (let i = 0; i < 3; i++) await clock.fireNext();
    expect(calls).toBe(4);
    expect(clock.delays).toEqual([25, 25, 25, 25]);
    await stop(engine);
  });

  it("isFatal written with errorIs sees through wrapping, and wait() rejects with the wrapper", async () => {
    class DiskFull extends Error {}
    const { engine } = makeEngine({ isFatal: (error) => errorIs(error, DiskFull) });
    const worker = new TestWorker("a");
    engine.install("a", { inputs: [], start: () => worker });
    engine.install("other", valueManifold(0));
    await settle();
    const wrapper = new Error("write failed", { cause: new DiskFull("no space") });
    worker.fail(wrapper);
    await expect(engine.wait()).rejects.toBe(wrapper);
    expect(engine.report()).toMatchObject({ state: "stopped", error: "write failed" });
  });
});

describe("non-Error throwables are wrapped in Errors", () => {
  const values: [string, unknown, RegExp][] = [
    ["a string", "boom", /"boom"/],
    ["undefined", undefined, /undefined/],
    ["null", null, /null/],
    ["a number", 42, /42/],
    ["a plain object", { code: "E_LOST" }, /E_LOST/],
  ];

  it.each(values)("%s thrown by a start function", async (_label, value, shows) => {
    const seen: unknown[] = [];
    const { engine } = makeEngine({ isFatal: (error) => (seen.push(error), false) });
    engine.install("m", {
      inputs: [],
      start: () => {
        throw value;
      },
    });
    await settle();
    expect(seen).toHaveLength(1);
    const error = seen[0] as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.cause).toBe(value);
    expect(error.message).toMatch(/"m"/);
    expect(error.message).toMatch(shows);
    expect(entry(engine, "m").error).toBe(error.message);
    await stop(engine);
  });

  it.each(values)("%s rejected by a worker's wait()", async (_label, value, shows) => {
    const seen: unknown[] = [];
    const { engine } = makeEngine({ isFatal: (error) => (seen.push(error), false) });
    const worker = new TestWorker("m");
    engine.install("m", { inputs: [], start: () => worker });
    await settle();
    worker.fail(value);
    await settle();
    const error = seen[0] as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.cause).toBe(value);
    expect(error.message).toMatch(/"m"/);
    expect(error.message).toMatch(shows);
    await stop(engine);
  });

  it.each(values)("%s rejected by an asynchronous start", async (_label, value, shows) => {
    const seen: unknown[] = [];
    const { engine } = makeEngine({ isFatal: (error) => (seen.push(error), false) });
    engine.install("m", { inputs: [], start: () => Promise.reject(value) as Promise<Worker> });
    await settle();
    const error = seen[0] as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.cause).toBe(value);
    expect(error.message).toMatch(shows);
    await stop(engine);
  });

  it("a filter is only ever called with Errors", async () => {
    const filtered: unknown[] = [];
    const { engine } = makeEngine();
    engine.install("m", {
      inputs: [],
      start: () => {
        throw "raw";
      },
      filter: (error) => (filtered.push(error), error),
    });
    await settle();
    expect(filtered).toHaveLength(1);
    expect(filtered[0]).toBeInstanceOf(Error);
    expect((filtered[0] as Error).cause).toBe("raw");
    await stop(engine);
  });

  it("a non-Error thrown by a filter", async () => {
    const seen: unknown[] = [];
    const { engine } = makeEngine({ isFatal: (error) => (seen.push(error), false) });
    engine.install("m", {
      inputs: [],
      start: () => {
        throw new Error("original");
      },
      filter: () => {
        throw { reason: "filter broke" };
      },
    });
    await settle();
    const error = seen[0] as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(/filter broke/);
    expect(error.message).toMatch(/"m"/);
    expect(error.cause).toEqual({ reason: "filter broke" });
    await stop(engine);
  });

  it("a non-Error returned by a filter", async () => {
    const seen: unknown[] = [];
    const { engine } = makeEngine({ isFatal: (error) => (seen.push(error), false) });
    engine.install("m", {
      inputs: [],
      start: () => {
        throw new Error("original");
      },
      filter: () => "converted",
    });
    await settle();
    const error = seen[0] as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.cause).toBe("converted");
    expect(entry(engine, "m").error).toMatch(/"converted"/);
    await stop(engine);
  });

  it("a non-Error thrown by an output function reaches the dependent's start error wrapped", async () => {
    const seen: unknown[] = [];
    const { engine } = makeEngine({ isFatal: (error) => (seen.push(error), false) });
    engine.install("a", {
      inputs: [],
      start: () => valueWorker(0),
      output: () => {
        throw "no output today";
      },
    });
    engine.install("b", {
      inputs: ["a"],
      start: (context) => {
        context.getResource("a");
        return valueWorker(0);
      },
    });
    await settle();
    const error = seen[0] as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.cause).toBe("no output today");
    expect(error.message).toMatch(/"b"/);
    // The resource log shows it readably too.
    expect(entry(engine, "b").resourceLog?.[0]?.error).toMatch(/no output today/);
    await stop(engine);
  });

  it("wait() rejects with an Error when the fatal throwable was not one", async () => {
    const { engine } = makeEngine({ isFatal: () => true });
    engine.install("m", {
      inputs: [],
      start: () => {
        throw "fatal string";
      },
    });
    const error = await engine.wait().then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).cause).toBe("fatal string");
    expect(engine.report().error).toMatch(/fatal string/);
  });

  it("wait() rejects with an Error when the config filter returns a non-Error", async () => {
    const { engine } = makeEngine({ isFatal: () => true, filter: () => 404 });
    engine.install("m", {
      inputs: [],
      start: () => {
        throw new Error("fatal");
      },
    });
    const error = await engine.wait().then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).cause).toBe(404);
    // The report keeps the error before the config filter.
    expect(engine.report().error).toBe("fatal");
  });

  it("worstError returning a non-Error is wrapped too", async () => {
    const { engine } = makeEngine({ isFatal: () => true, worstError: () => "the worst" });
    const a = new TestWorker("a", { stopOnKill: false });
    engine.install("a", { inputs: [], start: () => a });
    engine.install("b", {
      inputs: [],
      start: () => {
        throw new Error("first fatal");
      },
    });
    await settle();
    // "b" was fatal; while the engine stops, "a" fails too and worstError ranks them.
    a.fail(new Error("second fatal"));
    const error = await engine.wait().then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).cause).toBe("the worst");
  });
});

describe("never two workers for one manifold (rule 8)", () => {
  it("does not start again while the previous worker ignores its kill, however often it is bounced", async () => {
    const { engine, clock } = makeEngine({ bounceDelay: 10 });
    let input = new TestWorker("a");
    engine.install("a", {
      inputs: [],
      start: () => (input = new TestWorker("a")),
      output: () => "A",
    });
    const workers: TestWorker[] = [];
    let outstanding = 0;
    let violations = 0;
    engine.install("b", {
      inputs: ["a"],
      start: () => {
        if (outstanding > 0) violations++;
        const worker = new TestWorker(`b${workers.length}`, { stopOnKill: false });
        outstanding++;
        const settled = (): void => void outstanding--;
        void worker.wait().then(settled, settled);
        workers.push(worker);
        return worker;
      },
    });
    await settle();
    expect(workers).toHaveLength(1);
    for (let i = 0; i < 3; i++) {
      input.fail(new BounceError());
      await settle();
      await clock.advance(10);
    }
    expect(workers[0]?.killed).toBe(true);
    expect(workers).toHaveLength(1);
    workers[0]?.complete();
    await settle();
    await clock.advance(10);
    expect(workers).toHaveLength(2);
    expect(violations).toBe(0);
    engine.kill();
    workers[1]?.complete();
    await engine.wait();
  });

  it("waits for the worker an aborted start still returned to stop before starting again", async () => {
    const { engine } = makeEngine();
    let input = new TestWorker("a");
    engine.install("a", { inputs: [], start: () => (input = new TestWorker("a")), output: () => "A" });
    const gates: { resolve: (w: TestWorker) => void }[] = [];
    engine.install("b", {
      inputs: ["a"],
      start: () => {
        const gate = deferred<TestWorker>();
        gates.push(gate);
        return gate.promise;
      },
    });
    await settle();
    expect(gates).toHaveLength(1);
    input.fail(new BounceError());
    await settle();
    // The first start is aborted but has not settled: no second start yet.
    expect(gates).toHaveLength(1);
    const late = new TestWorker("late", { stopOnKill: false });
    gates[0]?.resolve(late);
    await settle();
    expect(late.killed).toBe(true);
    expect(gates).toHaveLength(1);
    late.complete();
    await settle();
    expect(gates).toHaveLength(2);
    gates[1]?.resolve(new TestWorker("b2"));
    await settle();
    expect(entry(engine, "b").state).toBe("started");
    await stop(engine);
  });

  it("holds for any interleaving of input failures, bounces and slow stops (property)", async () => {
    type Action = "bounceA" | "failA" | "completeA" | "releaseB" | "failB" | "tick";
    const action = fc.constantFrom<Action>("bounceA", "failA", "completeA", "releaseB", "failB", "tick");
    await fc.assert(
      fc.asyncProperty(fc.array(action, { maxLength: 40 }), async (actions) => {
        const clock = new FakeClock();
        // stopTimeout 0: slow workers are never declared stuck, so wait() resolves once they are released.
        const engine = new Engine({ clock, jitter: 0, errorDelay: 30, bounceDelay: 10, stopTimeout: 0 });
        let input: TestWorker | undefined;
        engine.install("a", {
          inputs: [],
          start: () => (input = new TestWorker("a")),
          output: () => "A",
        });
        const live: TestWorker[] = [];
        let violations = 0;
        engine.install("b", {
          inputs: ["a"],
          start: () => {
            if (live.length > 0) violations++;
            const worker = new TestWorker("b", { stopOnKill: false });
            live.push(worker);
            const settled = (): void => void live.splice(live.indexOf(worker), 1);
            void worker.wait().then(settled, settled);
            return worker;
          },
        });
        await settle();
        for (const step of actions) {
          switch (step) {
            case "bounceA":
              input?.fail(new BounceError());
              break;
            case "failA":
              input?.fail(new Error("a failed"));
              break;
            case "completeA":
              input?.complete();
              break;
            case "releaseB":
              live.find((worker) => worker.killed)?.complete();
              break;
            case "failB":
              live[0]?.fail(new Error("b failed"));
              break;
            case "tick":
              if (clock.pending.length > 0) await clock.fireNext();
              break;
          }
          await settle();
        }
        engine.kill();
        await settle();
        for (const worker of [...live]) worker.complete();
        await engine.wait();
        expect(violations).toBe(0);
        expect(clock.pending).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });
});

describe("start order (rule 9)", () => {
  it("a cold start calls each start function once, in dependency order, even with asynchronous starts", async () => {
    const { engine, clock } = makeEngine({ bounceDelay: 10 });
    const log: string[] = [];
    const slow = (name: string, inputs: string[], ticks: number): Manifold<Worker & { readonly value: string }, string> => ({
      inputs,
      start: async (context) => {
        log.push(`${name}(${inputs.filter((input) => context.hasResource(input)).join(",")})`);
        for (let i = 0; i < ticks; i++) await Promise.resolve();
        return valueWorker(name);
      },
      output: (worker) => worker.value,
    });
    // Installed dependents first; the inputs' starts take different times.
    engine.install("top", slow("top", ["left", "right"], 1));
    engine.install("left", slow("left", ["root"], 5));
    engine.install("right", slow("right", ["root"], 1));
    engine.install("root", slow("root", [], 3));
    await settle();
    expect(log[0]).toBe("root()");
    expect(log.slice(1, 3).sort()).toEqual(["left(root)", "right(root)"]);
    expect(log[3]).toBe("top(left,right)");
    expect(log).toHaveLength(4);
    // Nothing was bounced, so no bounce timer was ever set.
    expect(clock.delays).toEqual([]);
    await stop(engine);
  });

  it("an input waiting out an error delay does not hold back its dependent", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 500 });
    const log: string[] = [];
    let inputCalls = 0;
    engine.install("a", {
      inputs: [],
      start: () => {
        if (++inputCalls === 1) throw new Error("first start fails");
        return valueWorker("A");
      },
      output: (worker) => worker.value,
    });
    engine.install("b", recording(log, "b", ["a"]));
    await settle();
    expect(log).toEqual(["b()"]);
    expect(entry(engine, "b").state).toBe("started");
    await clock.advance(500);
    // When the input comes up, the dependent is restarted once, now with it.
    expect(log).toEqual(["b()", "b(a)"]);
    await stop(engine);
  });

  it("an input waiting out a bounce delay holds back a dependent whose own delay ends first", async () => {
    // jitter 0.5 with these random draws makes a's bounce delay 15 ms and b's 5 ms.
    const draws = [0.99, 0];
    const { engine, clock } = makeEngine({ bounceDelay: 10, jitter: 0.5, random: () => draws.shift() ?? 0.5 });
    let input = new TestWorker("a");
    engine.install("a", { inputs: [], start: () => (input = new TestWorker("a")), output: () => "A" });
    const log: string[] = [];
    engine.install("b", recording(log, "b", ["a"]));
    await settle();
    input.fail(new BounceError());
    await settle();
    expect(clock.pending.map((timer) => timer.delay)).toEqual([5, 15]);
    await clock.advance(5);
    expect(log).toEqual(["b(a)"]);
    expect(entry(engine, "b").state).toBe("starting");
    await clock.advance(10);
    expect(log).toEqual(["b(a)", "b(a)"]);
    await stop(engine);
  });

  it("inputs that are not installed, completed or missing never hold a start back", async () => {
    const { engine } = makeEngine();
    const done = new TestWorker("done");
    engine.install("done", { inputs: [], start: () => done, output: () => "D" });
    engine.install("missing", {
      inputs: [],
      start: () => {
        throw new MissingError();
      },
    });
    await settle();
    done.complete();
    await settle();
    const log: string[] = [];
    engine.install("user", recording(log, "user", ["done", "missing", "absent"]));
    await settle();
    expect(log).toEqual(["user()"]);
    expect(entry(engine, "user").state).toBe("started");
    await stop(engine);
  });
});

describe("an engine installed in itself (rule 11)", () => {
  const self = resource<EngineControls>("self");

  it("offers install/uninstall/report to its dependents and never kills or waits for itself", async () => {
    const { engine } = makeEngine();
    engine.install(self, selfManifold(engine));
    engine.install("installer", {
      inputs: [self],
      start: (context) => {
        const controls = context.getResource(self);
        expectTypeOf(controls.install).toBeFunction();
        controls.install("child", valueManifold("c"));
        expect(controls.report().state).toBe("started");
        return valueWorker(0);
      },
    });
    await settle();
    const report = engine.report();
    expect(Object.keys(report.manifolds).sort()).toEqual(["child", "installer", "self"]);
    expect(entry(engine, "child").state).toBe("started");
    expect(entry(engine, "self").state).toBe("started");
    // Its own report is never nested in itself.
    expect(entry(engine, "self")).not.toHaveProperty("report");
    expect(() => JSON.stringify(report)).not.toThrow();
    await expect(stop(engine)).resolves.toBeUndefined();
    expect(engine.report().state).toBe("stopped");
  });

  it("can be uninstalled without stopping the engine", async () => {
    const { engine } = makeEngine();
    engine.install("self", selfManifold(engine));
    await settle();
    await engine.uninstall("self");
    expect(engine.report().state).toBe("started");
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("refuses a non-engine", () => {
    expect(() => selfManifold({} as Engine)).toThrow(TypeError);
  });
});

describe("user code never crashes the engine (rule 10)", () => {
  it("a start function that throws or rejects", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 100 });
    engine.install("sync", {
      inputs: [],
      start: () => {
        throw new Error("sync");
      },
    });
    engine.install("async", { inputs: [], start: async () => Promise.reject(new Error("async")) });
    await settle();
    expect(entry(engine, "sync").error).toBe("sync");
    expect(entry(engine, "async").error).toBe("async");
    expect(clock.pending).toHaveLength(2);
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("an output function that throws", async () => {
    const { engine } = makeEngine();
    engine.install("a", {
      inputs: [],
      start: () => valueWorker(0),
      output: () => {
        throw new Error("output");
      },
    });
    engine.install("b", {
      inputs: ["a"],
      start: (context) => {
        context.getResource("a");
        return valueWorker(0);
      },
    });
    await settle();
    expect(entry(engine, "b").error).toBe("output");
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("a filter that throws", async () => {
    const { engine } = makeEngine();
    const worker = new TestWorker("a");
    engine.install("a", {
      inputs: [],
      start: () => worker,
      filter: () => {
        throw new Error("filter");
      },
    });
    await settle();
    worker.fail(new Error("worker"));
    await settle();
    expect(entry(engine, "a").error).toBe("filter");
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("a worker whose report() throws", async () => {
    const { engine } = makeEngine();
    engine.install("a", {
      inputs: [],
      start: () =>
        Object.assign(valueWorker(0), {
          report: (): Record<string, unknown> => {
            throw new Error("report");
          },
        }),
    });
    await settle();
    let report: EngineReport | undefined;
    expect(() => (report = engine.report())).not.toThrow();
    expect(report?.manifolds.a?.report).toEqual({ error: "report" });
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("a worker whose kill() throws", async () => {
    const { engine } = makeEngine();
    const worker = new TestWorker("a");
    engine.install("a", {
      inputs: [],
      start: () => ({
        kill: () => {
          worker.kill();
          throw new Error("kill");
        },
        wait: () => worker.wait(),
      }),
    });
    await settle();
    await expect(engine.uninstall("a")).resolves.toBeUndefined();
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("a worker whose wait() throws synchronously", async () => {
    const { engine } = makeEngine({ errorDelay: 100 });
    engine.install("a", {
      inputs: [],
      start: () => ({
        kill: () => undefined,
        wait: () => {
          throw new Error("wait");
        },
      }),
    });
    await settle();
    expect(entry(engine, "a").error).toBe("wait");
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("an isFatal that throws counts the error as not fatal", async () => {
    const { engine, clock } = makeEngine({
      errorDelay: 100,
      isFatal: () => {
        throw new Error("isFatal");
      },
    });
    engine.install("a", {
      inputs: [],
      start: () => {
        throw new Error("start");
      },
    });
    await settle();
    expect(engine.report().state).toBe("started");
    expect(clock.delays).toEqual([100]);
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("a worstError that throws keeps the previous worst error", async () => {
    const first = new Error("first fatal");
    const { engine } = makeEngine({
      isFatal: () => true,
      worstError: () => {
        throw new Error("worstError");
      },
    });
    const slow = new TestWorker("slow", { stopOnKill: false });
    engine.install("slow", { inputs: [], start: () => slow });
    engine.install("fatal", {
      inputs: [],
      start: () => {
        throw first;
      },
    });
    await settle();
    slow.fail(new Error("second fatal"));
    await expect(engine.wait()).rejects.toBe(first);
    expect(engine.report().error).toBe("first fatal");
  });

  it("a config filter that throws makes wait() reject with what it threw, not an unhandled rejection", async () => {
    const filterError = new Error("config filter");
    const { engine } = makeEngine({
      isFatal: () => true,
      filter: () => {
        throw filterError;
      },
    });
    engine.install("a", {
      inputs: [],
      start: () => {
        throw new Error("fatal");
      },
    });
    await expect(engine.wait()).rejects.toBe(filterError);
  });

  it("metrics.recordStart that throws", async () => {
    const { engine } = makeEngine({
      metrics: {
        recordStart: () => {
          throw new Error("metrics");
        },
      },
    });
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("a logger whose every method throws", async () => {
    const boom = (): void => {
      throw new Error("logger");
    };
    const { engine, clock } = makeEngine({
      errorDelay: 100,
      isFatal: (error) => error instanceof Error && error.message === "fatal",
      logger: { debug: boom, info: boom, warn: boom, error: boom },
    });
    engine.install("failing", {
      inputs: [],
      start: () => {
        throw new Error("ordinary");
      },
    });
    await settle();
    await clock.advance(100);
    await expectStillWorking(engine);
    engine.install("fatal", {
      inputs: [],
      start: () => {
        throw new Error("fatal");
      },
    });
    await expect(engine.wait()).rejects.toThrow("fatal");
  });
});

describe("report fields", () => {
  it("since is the ISO time at which the state began", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000 });
    const t0 = clock.now();
    const worker = new TestWorker("a");
    engine.install("a", { inputs: [], start: () => worker });
    expect(entry(engine, "a").since).toBe(new Date(t0).toISOString());
    await settle();
    expect(entry(engine, "a")).toMatchObject({ state: "started", since: new Date(t0).toISOString() });
    await clock.advance(5000);
    // No change of state: since does not move.
    expect(entry(engine, "a").since).toBe(new Date(t0).toISOString());
    worker.fail(new Error("x"));
    await settle();
    expect(entry(engine, "a")).toMatchObject({ state: "starting", since: new Date(t0 + 5000).toISOString() });
    await stop(engine);
  });

  it("lastStart is the ISO 8601 UTC time of the last successful start, kept after the worker stops", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000 });
    const t0 = clock.now();
    let worker = new TestWorker("a");
    engine.install("a", { inputs: [], start: () => (worker = new TestWorker("a")) });
    expect(entry(engine, "a")).not.toHaveProperty("lastStart");
    await settle();
    const first = entry(engine, "a").lastStart;
    expect(first).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Date.parse(first ?? "")).toBe(t0);
    await clock.advance(200);
    worker.fail(new Error("crash"));
    await settle();
    expect(entry(engine, "a").lastStart).toBe(first);
    await clock.advance(1000);
    expect(entry(engine, "a")).toMatchObject({ startCount: 2, lastStart: new Date(t0 + 1200).toISOString() });
    await stop(engine);
  });

  it("error is kept until the next successful start, through the delay and a slow start", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000 });
    let worker = new TestWorker("a");
    let gate: ReturnType<typeof deferred<TestWorker>> | undefined;
    engine.install("a", {
      inputs: [],
      start: () => {
        if (gate === undefined) return (worker = new TestWorker("a"));
        return gate.promise;
      },
    });
    await settle();
    expect(entry(engine, "a")).not.toHaveProperty("error");
    gate = deferred<TestWorker>();
    worker.fail(new Error("crashed"));
    await settle();
    expect(entry(engine, "a")).toMatchObject({ state: "starting", error: "crashed" });
    await clock.advance(1000);
    // The start is running but has not succeeded yet.
    expect(entry(engine, "a")).toMatchObject({ state: "starting", error: "crashed" });
    gate.resolve(new TestWorker("again"));
    await settle();
    expect(entry(engine, "a").state).toBe("started");
    expect(entry(engine, "a")).not.toHaveProperty("error");
    await stop(engine);
  });

  it("nests a worker's own report, an engine's included", async () => {
    const { engine } = makeEngine();
    const inner = new Engine({ clock: new FakeClock() });
    inner.install("x", valueManifold(1));
    engine.install("inner", { inputs: [], start: () => inner });
    await settle();
    const nested = entry(engine, "inner").report as EngineReport | undefined;
    expect(nested?.state).toBe("started");
    expect(nested?.manifolds.x?.state).toBe("started");
    expect(JSON.parse(JSON.stringify(engine.report()))).toEqual(engine.report());
    await stop(engine);
    // Stopping the outer engine killed the inner one.
    expect(inner.report().state).toBe("stopped");
  });

  it("shows names like __proto__ and constructor as own keys", async () => {
    const { engine } = makeEngine();
    for (const name of ["__proto__", "constructor", "toString"]) engine.install(name, valueManifold(name));
    await settle();
    const { manifolds } = engine.report();
    expect(Object.keys(manifolds).sort()).toEqual(["__proto__", "constructor", "toString"]);
    expect(Object.getPrototypeOf(manifolds)).toBe(Object.prototype);
    expect(entry(engine, "__proto__").state).toBe("started");
    const parsed = JSON.parse(JSON.stringify(engine.report())) as EngineReport;
    expect(Object.getOwnPropertyDescriptor(parsed.manifolds, "constructor")?.value).toMatchObject({ state: "started" });
    expect(JSON.stringify(engine.report())).toContain('"__proto__":{"state":"started"');
    await stop(engine);
  });

  it("tracks the engine's own state and its worst error before the config filter", async () => {
    const { engine } = makeEngine({ isFatal: () => true, filter: () => undefined });
    const worker = new TestWorker("a", { stopOnKill: false });
    engine.install("a", { inputs: [], start: () => worker });
    await settle();
    expect(engine.report()).toMatchObject({ state: "started" });
    expect(engine.report()).not.toHaveProperty("error");
    engine.kill();
    expect(engine.report().state).toBe("stopping");
    worker.fail(new Error("fatal on the way out"));
    // The config filter turns the fatal error into a clean stop...
    await expect(engine.wait()).resolves.toBeUndefined();
    // ...but the report keeps it.
    expect(engine.report()).toMatchObject({ state: "stopped", error: "fatal on the way out" });
  });
});

describe("Symbol.asyncDispose", () => {
  it("kills the engine and waits for every worker", async () => {
    const clock = new FakeClock();
    const worker = new TestWorker("a");
    let engineRef: Engine | undefined;
    {
      await using engine = new Engine({ clock });
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
      await using engine = new Engine({ clock: new FakeClock(), isFatal: () => true });
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
