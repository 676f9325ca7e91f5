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
} from "../src/index.js";

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
