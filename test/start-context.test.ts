/**
 * The start context (rule 2): typed resource tokens, what getResource and
 * hasResource see (the inputs running when the start function was called),
 * when the context expires, and the resource log of the last start attempt.
 */
import { describe, expect, expectTypeOf, it } from "vitest";
import { errorIs, manifold, MissingError, resource, valueWorker, type Engine, type StartContext, type Worker } from "../src/index.js";
import { deferred, entry, failOnUnhandledRejections, makeEngine, settle, stop, TestWorker, thrownBy, valueManifold } from "./fixtures.js";

failOnUnhandledRejections();

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

describe("an input's output", () => {
  it("is called with its manifold as `this`, from a synchronous start and from a snapshot alike", async () => {
    const { engine } = makeEngine();
    // A class instance: its methods and private state are not fields of the manifold.
    class Db {
      readonly inputs = [];
      readonly #prefix = "db:";
      start(): Worker & { value: string } {
        return valueWorker("x");
      }
      output(worker: { value: string }): string {
        return this.#prefix + worker.value; // throws a TypeError unless `this` is the Db
      }
    }
    engine.install("db", new Db());
    const gate = deferred();
    const seen: unknown[] = [];
    engine.install("sync", { inputs: ["db"], start: (context) => (seen.push(context.getResource("db")), valueWorker(0)) });
    engine.install("async", {
      inputs: ["db"],
      start: async (context) => {
        await gate.promise; // past its first turn: getResource reads the snapshot
        seen.push(context.getResource("db"));
        return valueWorker(0);
      },
    });
    await settle();
    gate.resolve();
    await settle();
    expect(seen).toEqual(["db:x", "db:x"]);
    await stop(engine);
  });
});

describe("a synchronous start reads its inputs live until it changes the graph (rule 2 holds)", () => {
  /** Installs "b", using "a", whose first start runs `first` (later starts do nothing but start). */
  function installB(engine: Engine, first: (context: StartContext) => void): void {
    let starts = 0;
    engine.install("b", {
      inputs: ["a"],
      start: (context) => {
        if (starts++ === 0) first(context);
        return valueWorker(0);
      },
    });
  }

  it("still hands out an input it uninstalled itself while running", async () => {
    const { engine } = makeEngine();
    engine.install("a", valueManifold("A"));
    const seen: unknown[] = [];
    installB(engine, (context) => {
      seen.push(context.hasResource("a"));
      void engine.uninstall("a");
      // The snapshot was taken before "a" left: it is still what was running when start was called.
      seen.push(context.hasResource("a"), context.getResource("a"));
    });
    await settle();
    expect(seen).toEqual([true, true, "A"]);
    await stop(engine);
  });

  it("does not see an input it installed itself while running", async () => {
    const { engine } = makeEngine();
    const seen: unknown[] = [];
    installB(engine, (context) => {
      engine.install("a", valueManifold("A"));
      seen.push(context.hasResource("a"), thrownBy(() => context.getResource("a")).message);
    });
    await settle();
    // "a" was not installed when start was called: the snapshot says so, not "not running".
    expect(seen).toEqual([false, expect.stringMatching(/"a" is not installed/)]);
    await stop(engine);
  });
});

describe("the context offers only the StartContext", () => {
  it("has no engine-side function on its class either (expire, abort, freeze live in the module)", async () => {
    const { engine } = makeEngine();
    let statics: string[] = [];
    engine.install("a", {
      inputs: [],
      start: (context) => {
        statics = Object.getOwnPropertyNames(context.constructor).sort();
        return valueWorker(0);
      },
    });
    await settle();
    expect(statics).toEqual(["length", "name", "prototype"]);
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
    expect(log[4]?.error).toMatch(/"ghost" is not installed/);
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
