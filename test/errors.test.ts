/**
 * Errors: the classes the package exports, `errorIs`, and how the engine reads
 * what user code throws (engine errors found along cause chains, non-Error
 * throwables wrapped in Errors that name the manifold).
 */
import { describe, expect, it } from "vitest";
import {
  AlreadyInstalledError,
  BounceError,
  CycleError,
  EngineStoppedError,
  errorIs,
  MissingError,
  ShutdownTimeoutError,
  UninstallError,
  valueWorker,
  type Worker,
} from "../src/index.js";
import { entry, failOnUnhandledRejections, makeEngine, settle, stop, TestWorker, valueManifold } from "./fixtures.js";

failOnUnhandledRejections();

// Every class the package exports, with the default message its constructor gives.
const classes = [
  { Class: MissingError, name: "MissingError", defaultMessage: /dependency not available/ },
  { Class: BounceError, name: "BounceError", defaultMessage: /restart/ },
  { Class: UninstallError, name: "UninstallError", defaultMessage: /uninstall/ },
  { Class: CycleError, name: "CycleError", defaultMessage: /dependency cycle/ },
  { Class: AlreadyInstalledError, name: "AlreadyInstalledError", defaultMessage: /already installed/ },
  { Class: EngineStoppedError, name: "EngineStoppedError", defaultMessage: /stopping or stopped/ },
  { Class: ShutdownTimeoutError, name: "ShutdownTimeoutError", defaultMessage: /shutdown timed out/ },
] as const;

describe.each(classes)("$name", ({ Class, name, defaultMessage }) => {
  it("is an Error and an instance of its own class", () => {
    const error = new Class();
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(Class);
  });

  it("sets name to the class name (so stack traces and reports say what it is)", () => {
    expect(new Class().name).toBe(name);
    expect(String(new Class("x"))).toBe(`${name}: x`);
  });

  it("has a readable default message", () => {
    const message = new Class().message;
    expect(message).toMatch(defaultMessage);
  });

  it("uses the given message", () => {
    expect(new Class("custom words").message).toBe("custom words");
  });

  it("keeps the cause option", () => {
    const cause = new Error("root");
    expect(new Class("wrapped", { cause }).cause).toBe(cause);
    // Non-Error causes are kept as they are.
    expect(new Class("wrapped", { cause: "text" }).cause).toBe("text");
  });

  it("has no cause when none is given", () => {
    expect("cause" in new Class("plain")).toBe(false);
  });

  it("is not mistaken for the other classes", () => {
    const error = new Class();
    for (const other of classes) {
      if (other.Class !== Class) expect(errorIs(error, other.Class)).toBe(false);
    }
  });
});

describe("CycleError", () => {
  it("carries the names along the cycle, first equal to last", () => {
    const error = new CycleError(undefined, { cycle: ["a", "b", "a"] });
    expect(error.cycle).toEqual(["a", "b", "a"]);
  });

  it("names the cycle in its default message", () => {
    expect(new CycleError(undefined, { cycle: ["a", "b", "a"] }).message).toMatch(/"a" -> "b" -> "a"/);
  });

  it("has an empty cycle when none is given", () => {
    expect(new CycleError().cycle).toEqual([]);
  });

  it("copies the cycle, so the caller's array cannot change it later", () => {
    const names = ["x", "x"];
    const error = new CycleError(undefined, { cycle: names });
    names.push("y");
    expect(error.cycle).toEqual(["x", "x"]);
    expect(Object.isFrozen(error.cycle)).toBe(true);
  });

  it("keeps cause next to cycle", () => {
    const cause = new Error("root");
    const error = new CycleError("m", { cycle: ["a", "a"], cause });
    expect(error.cause).toBe(cause);
    expect(error.cycle).toEqual(["a", "a"]);
  });
});

describe("AlreadyInstalledError", () => {
  it("carries the manifold name and names it in its default message", () => {
    const error = new AlreadyInstalledError(undefined, { manifoldName: "db" });
    expect(error.manifoldName).toBe("db");
    expect(error.message).toMatch(/"db"/);
  });

  it("has an empty manifold name when none is given", () => {
    expect(new AlreadyInstalledError().manifoldName).toBe("");
  });
});

describe("ShutdownTimeoutError", () => {
  it("carries the stuck manifolds and names them in its default message", () => {
    const error = new ShutdownTimeoutError(undefined, { manifolds: ["a", "b"] });
    expect(error.manifolds).toEqual(["a", "b"]);
    expect(error.message).toMatch(/"a", "b"/);
  });

  it("copies and freezes the list", () => {
    const names = ["a"];
    const error = new ShutdownTimeoutError(undefined, { manifolds: names });
    names.push("b");
    expect(error.manifolds).toEqual(["a"]);
    expect(Object.isFrozen(error.manifolds)).toBe(true);
  });

  it("has no manifolds when none are given", () => {
    expect(new ShutdownTimeoutError().manifolds).toEqual([]);
  });
});

describe("errorIs", () => {
  it("recognises the error itself", () => {
    expect(errorIs(new MissingError(), MissingError)).toBe(true);
  });

  it("recognises a class anywhere along the cause chain", () => {
    const chain = new Error("outer", { cause: new Error("middle", { cause: new BounceError() }) });
    expect(errorIs(chain, BounceError)).toBe(true);
    expect(errorIs(chain, MissingError)).toBe(false);
  });

  it("recognises a class wrapped by another engine error", () => {
    const error = new BounceError("bounce", { cause: new UninstallError() });
    expect(errorIs(error, BounceError)).toBe(true);
    expect(errorIs(error, UninstallError)).toBe(true);
  });

  it("recognises subclasses", () => {
    class DbMissing extends MissingError {}
    expect(errorIs(new Error("x", { cause: new DbMissing() }), MissingError)).toBe(true);
  });

  it("matches any Error for the Error class", () => {
    expect(errorIs(new TypeError("t"), Error)).toBe(true);
  });

  it("terminates on a cause chain that loops back on itself", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(errorIs(a, MissingError)).toBe(false);
    expect(errorIs(a, Error)).toBe(true);
  });

  it("terminates on an error that is its own cause", () => {
    const a = new Error("a");
    (a as { cause?: unknown }).cause = a;
    expect(errorIs(a, BounceError)).toBe(false);
  });

  it("finds a class in a cyclic chain after several links", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: new Error("c", { cause: a }) });
    (a as { cause?: unknown }).cause = b;
    const withTarget = new Error("top", { cause: new Error("mid", { cause: new UninstallError("u", { cause: a }) }) });
    expect(errorIs(withTarget, UninstallError)).toBe(true);
    expect(errorIs(withTarget, MissingError)).toBe(false);
  });

  it("looks through non-Error objects on the chain", () => {
    // A plain object with a cause is still a link: libraries wrap errors in all sorts of things.
    const chain = { message: "wrapper", cause: new MissingError() };
    expect(errorIs(chain, MissingError)).toBe(true);
  });

  it.each([undefined, null, "MissingError", 42, Symbol("x"), () => undefined])("is false for %s", (value) => {
    expect(errorIs(value, MissingError)).toBe(false);
  });

  it("stops at a non-object cause", () => {
    expect(errorIs(new Error("x", { cause: "MissingError" }), MissingError)).toBe(false);
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
