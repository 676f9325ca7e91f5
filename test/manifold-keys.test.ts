/**
 * A manifold with a key that is not a manifold field (`input` for `inputs`) is
 * refused by install, installAll and validate with a TypeError naming the
 * manifold, the key and the field meant; nothing is installed. Also: the
 * cycle message of validate, which installs nothing, does not say "install".
 */
import { describe, expect, it } from "vitest";
import { CycleError, Engine, validate, valueWorker, type Manifold, type Manifolds } from "../src/index.js";
import { MANIFOLD_KEYS } from "../src/manifold.js";
import { FakeClock, settle, stop, thrownBy, typosOf } from "./fixtures.js";

/** Bypasses the compile-time check: these are run-time checks. */
const loose = (value: unknown): Manifold => value as Manifold;

/**
 * A valid value for every field, so that only the key is on trial. (A field
 * added to MANIFOLD_KEYS needs a line here: the type says so.)
 */
const validValues: Required<{ [K in (typeof MANIFOLD_KEYS)[number]]: unknown }> = {
  inputs: [],
  start: () => valueWorker(1),
  output: (worker: { value: number }) => worker.value,
  filter: (error: unknown) => error,
  stopTimeout: 1000,
  heartbeatTimeout: 1000,
  heartbeatAction: "report",
  restartLimit: { count: 5, within: 60_000 },
  quarantineTime: 1000,
  when: "ready", // installed with the requirement "ready" below
  config: { port: 8080 },
};

/** A manifold with every field valid, plus `extra`. */
function withField(key: string, value: unknown, extra: Record<string, unknown> = {}): Manifold {
  return loose({ inputs: [], start: () => valueWorker(1), ...extra, [key]: value });
}




describe("unknown manifold fields are refused, naming the manifold, the key and the field meant", () => {
  it("knows exactly the fields of Manifold (and the table below covers each)", () => {
    expect([...MANIFOLD_KEYS].sort()).toEqual(Object.keys(validValues).sort());
  });

  describe.each(MANIFOLD_KEYS.map((key) => [key]))("%s", (key) => {
    it.each(typosOf(key).map((typo) => [typo]))(`install refuses the typo %s, suggesting "${key}", and installs nothing`, async (typo) => {
      expect(typo).not.toBe(key);
      const engine = new Engine({ clock: new FakeClock() });
      // The typo stands in for the field: the manifold is otherwise complete (inputs and start stay, unless they are the typo).
      const manifold = loose({ ...validValues, [key]: undefined, [typo]: validValues[key] });
      delete (manifold as unknown as Record<string, unknown>)[key];
      const error = thrownBy(() => engine.install("svc", manifold));
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toBe(
        `manifold "svc": unknown field ${JSON.stringify(typo)}; did you mean ${JSON.stringify(key)}? (the fields are ${MANIFOLD_KEYS.join(", ")})`,
      );
      await settle();
      expect(engine.report().manifolds).toEqual({});
      await stop(engine);
    });

    it("installAll refuses the typo and installs none of the group; validate refuses it too", async () => {
      const [typo] = typosOf(key) as [string];
      const engine = new Engine({ clock: new FakeClock() });
      const group: Manifolds = { fine: withField("stopTimeout", 5), svc: withField(typo, validValues[key]) };
      expect(() => engine.installAll(group)).toThrow(`manifold "svc": unknown field ${JSON.stringify(typo)}; did you mean ${JSON.stringify(key)}?`);
      expect(() => validate(group)).toThrow(`manifold "svc": unknown field ${JSON.stringify(typo)}; did you mean ${JSON.stringify(key)}?`);
      await settle();
      expect(engine.report().manifolds).toEqual({});
      await stop(engine);
    });

    it("accepts the field spelt right", async () => {
      const engine = new Engine({ clock: new FakeClock() });
      engine.installAll({ svc: withField(key, validValues[key]) }, { requirements: ["ready"] });
      await settle();
      expect(engine.report().manifolds.svc?.state).toBe("started");
      await stop(engine);
    });
  });

  it.each([
    ["input", "inputs"],
    ["Inputs", "inputs"],
    ["imputs", "inputs"],
    ["starts", "start"],
    ["outptu", "output"],
    ["filtr", "filter"],
    ["stoptimeout", "stopTimeout"],
    ["stopTimout", "stopTimeout"],
    ["stop", "stopTimeout"],
  ])("%s suggests %s", (typo, key) => {
    expect(() => validate({ m: withField(typo, 1) })).toThrow(`manifold "m": unknown field ${JSON.stringify(typo)}; did you mean ${JSON.stringify(key)}?`);
  });

  it.each([["name"], ["dependencies"], ["x"], ["worker"]])("refuses %s, with nothing close, telling the user to remove it and listing the fields", (key) => {
    expect(() => validate({ m: withField(key, 1) })).toThrow(
      `manifold "m": unknown field ${JSON.stringify(key)}; remove it (the fields are ${MANIFOLD_KEYS.join(", ")})`,
    );
  });

  it("reports `input` (a typo) rather than the missing `inputs` it causes", () => {
    const error = thrownBy(() => validate({ m: loose({ input: ["db"], start: () => valueWorker(1) }) }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^manifold "m": unknown field "input"; did you mean "inputs"\?/);
  });

  it("refuses an unknown key whose value is undefined: the key itself is the mistake", () => {
    expect(() => validate({ m: withField("outputs", undefined) })).toThrow(/unknown field "outputs"; did you mean "output"\?/);
  });

  it("ignores symbol keys, non-enumerable keys and the prototype's methods (a class instance is a manifold)", async () => {
    type NumberWorker = ReturnType<typeof valueWorker<number>>;
    class ValueManifold implements Manifold<NumberWorker, number> {
      readonly inputs = [];
      start(): NumberWorker {
        return valueWorker(7);
      }
      output(worker: NumberWorker): number {
        return worker.value;
      }
    }
    const tagged = Object.assign(new ValueManifold(), { [Symbol("tag")]: "mine" });
    Object.defineProperty(tagged, "hidden", { value: 1, enumerable: false });
    const engine = new Engine({ clock: new FakeClock() });
    engine.install("cls", tagged);
    await settle();
    expect(engine.report().manifolds.cls?.state).toBe("started");
    await stop(engine);
  });

  it("refuses a manifold whose keys cannot be read with a TypeError naming it", () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const error = thrownBy(() => validate({ p: loose(proxy) }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^manifold "p": its fields cannot be read/);
  });

  it("leaves the engine working after a refusal", async () => {
    const engine = new Engine({ clock: new FakeClock() });
    expect(() => engine.install("a", withField("inptus", []))).toThrow(TypeError);
    engine.install("a", withField("stopTimeout", 10));
    await settle();
    expect(engine.report().manifolds.a?.state).toBe("started");
    await stop(engine);
  });
});

describe("validate's cycle message", () => {
  it("names the manifold and the cycle, and does not claim to install anything", () => {
    const error = thrownBy(() =>
      validate({ p: { inputs: ["q"], start: () => valueWorker(0) }, q: { inputs: ["p"], start: () => valueWorker(0) } }),
    );
    expect(error).toBeInstanceOf(CycleError);
    expect(error.message).toBe('manifold "q": its inputs close a dependency cycle "q" -> "p" -> "q"; remove one of these inputs');
    expect(error.message).not.toMatch(/install/);
  });

  it("reads the same from install", () => {
    const engine = new Engine({ clock: new FakeClock() });
    engine.install("p", { inputs: ["q"], start: () => valueWorker(0) });
    expect(() => engine.install("q", { inputs: ["p"], start: () => valueWorker(0) })).toThrow(
      'manifold "q": its inputs close a dependency cycle "q" -> "p" -> "q"; remove one of these inputs',
    );
    engine.kill();
  });
});
