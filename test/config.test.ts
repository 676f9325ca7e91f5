import { describe, expect, it } from "vitest";
import { ENGINE_CONFIG_KEYS } from "../src/config.js";
import { Engine, valueWorker, type EngineConfig } from "../src/index.js";
import { FakeClock, settle, typosOf } from "./fixtures.js";

/** Builds an engine from a config the type system would refuse: these are run-time checks. */
function engineWith(config: unknown): Engine {
  return new Engine(config as EngineConfig);
}

const noop = (): void => undefined;
const goodLogger = { debug: noop, info: noop, warn: noop, error: noop };

/** A working engine: a manifold installed into it starts, and it stops cleanly. */
async function expectWorking(config: EngineConfig): Promise<void> {
  const engine = new Engine({ clock: new FakeClock(), ...config });
  engine.install("probe", { inputs: [], start: () => valueWorker(1) });
  await settle();
  expect(engine.report().manifolds.probe?.state).toBe("started");
  engine.kill();
  await expect(engine.wait()).resolves.toBeUndefined();
}

const delayFields = ["errorDelay", "bounceDelay", "backoffResetTime", "maxDelay", "stopTimeout"] as const;

describe("invalid delays are TypeErrors naming the field", () => {
  describe.each(delayFields)("%s", (field) => {
    it.each([
      ["negative", -1],
      ["a tiny negative", -0.001],
      ["NaN", Number.NaN],
      ["Infinity", Number.POSITIVE_INFINITY],
      ["-Infinity", Number.NEGATIVE_INFINITY],
      ["a numeric string", "100"],
      ["null", null],
      ["a boolean", true],
      ["an object", {}],
      ["a bigint", 10n],
    ])("rejects %s", (_label, value) => {
      expect(() => engineWith({ [field]: value })).toThrow(TypeError);
      expect(() => engineWith({ [field]: value })).toThrow(new RegExp(`\\b${field}\\b`));
    });
  });
});

describe("backoffFactor", () => {
  it.each([
    ["between 0 and 1", 0.5],
    ["just below 1", 0.999],
    ["negative", -1.2],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["a string", "1.2"],
    ["null", null],
  ])("rejects %s with a TypeError naming backoffFactor", (_label, value) => {
    expect(() => engineWith({ backoffFactor: value })).toThrow(TypeError);
    expect(() => engineWith({ backoffFactor: value })).toThrow(/\bbackoffFactor\b/);
  });

  it.each([0, 1, 1.2, 2, 1000])("accepts %s", async (value) => {
    await expectWorking({ backoffFactor: value });
  });
});

describe("jitter", () => {
  it.each([
    ["above 1", 1.5],
    ["just above 1", 1.0001],
    ["negative", -0.1],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["a string", "0.1"],
    ["null", null],
  ])("rejects %s with a TypeError naming jitter", (_label, value) => {
    expect(() => engineWith({ jitter: value })).toThrow(TypeError);
    expect(() => engineWith({ jitter: value })).toThrow(/\bjitter\b/);
  });

  it.each([0, 0.5, 1])("accepts %s", async (value) => {
    await expectWorking({ jitter: value });
  });
});

describe("function fields", () => {
  describe.each(["isFatal", "worstError", "filter", "random"] as const)("%s", (field) => {
    it.each([
      ["a string", "yes"],
      ["a number", 1],
      ["an object", {}],
      ["null", null],
      ["true", true],
    ])("rejects %s with a TypeError naming the field", (_label, value) => {
      expect(() => engineWith({ [field]: value })).toThrow(TypeError);
      expect(() => engineWith({ [field]: value })).toThrow(new RegExp(`\\b${field}\\b`));
    });
  });

  it("accepts functions, and undefined as absent", async () => {
    await expectWorking({
      isFatal: () => false,
      worstError: (a) => a,
      filter: (error) => error,
      random: () => 0.5,
    });
    await expectWorking({ isFatal: undefined, worstError: undefined, filter: undefined });
  });
});

describe("objects with methods", () => {
  const goodClock = new FakeClock();
  const clockMethods = ["now", "setTimeout", "clearTimeout"] as const;
  const loggerMethods = ["debug", "info", "warn", "error"] as const;

  it.each(clockMethods)("rejects a clock missing %s(), naming clock and the method", (method) => {
    const clock = {
      now: () => goodClock.now(),
      setTimeout: (fn: () => void, ms: number) => goodClock.setTimeout(fn, ms),
      clearTimeout: (handle: unknown) => goodClock.clearTimeout(handle),
    } as Record<string, unknown>;
    delete clock[method];
    expect(() => engineWith({ clock })).toThrow(TypeError);
    expect(() => engineWith({ clock })).toThrow(new RegExp(`\\bclock\\b.*\\b${method}\\b`));
  });

  it.each(clockMethods)("rejects a clock whose %s is not a function", (method) => {
    const clock = { now: Date.now, setTimeout: noop, clearTimeout: noop, [method]: 5 };
    expect(() => engineWith({ clock })).toThrow(new RegExp(`\\bclock\\b.*\\b${method}\\b`));
  });

  it.each(loggerMethods)("rejects a logger missing %s(), naming logger and the method", (method) => {
    const logger: Record<string, unknown> = { ...goodLogger };
    delete logger[method];
    expect(() => engineWith({ logger })).toThrow(TypeError);
    expect(() => engineWith({ logger })).toThrow(new RegExp(`\\blogger\\b.*\\b${method}\\b`));
  });

  it("rejects metrics without recordStart, naming metrics", () => {
    expect(() => engineWith({ metrics: {} })).toThrow(TypeError);
    expect(() => engineWith({ metrics: { recordStart: "no" } })).toThrow(/\bmetrics\b.*\brecordStart\b/);
  });

  it.each([
    ["clock", null],
    ["clock", "system"],
    ["clock", 0],
    ["logger", null],
    ["logger", console.log],
    ["metrics", null],
    ["metrics", true],
  ])("rejects %s = %s with a TypeError naming the field", (field, value) => {
    expect(() => engineWith({ [field]: value })).toThrow(TypeError);
    expect(() => engineWith({ [field]: value })).toThrow(new RegExp(`\\b${field}\\b`));
  });

  it("accepts a logger whose methods live on its prototype (a class instance)", async () => {
    class ClassLogger {
      debug(): void {}
      info(): void {}
      warn(): void {}
      error(): void {}
    }
    await expectWorking({ logger: new ClassLogger() });
  });

  it("accepts a complete clock, logger and metrics", async () => {
    const starts: string[] = [];
    await expectWorking({ logger: goodLogger, metrics: { recordStart: (name) => starts.push(name) } });
    expect(starts).toEqual(["probe"]);
  });
});

describe("the config object itself", () => {
  it.each([
    ["null", null],
    ["a string", "fast"],
    ["a number", 3],
  ])("rejects %s with a TypeError", (_label, value) => {
    expect(() => engineWith(value)).toThrow(TypeError);
  });

  it("accepts no config and an empty config", async () => {
    const bare = new Engine();
    bare.kill();
    await expect(bare.wait()).resolves.toBeUndefined();
    await expectWorking({});
  });
});

describe("valid edge values", () => {
  it.each(delayFields)("accepts %s = 0", async (field) => {
    await expectWorking({ [field]: 0 });
  });

  it("accepts every field at once at its edge", async () => {
    await expectWorking({
      errorDelay: 0,
      bounceDelay: 0,
      backoffFactor: 0,
      backoffResetTime: 0,
      maxDelay: 0,
      jitter: 1,
      stopTimeout: 0,
    });
  });

  it("accepts fractional delays", async () => {
    await expectWorking({ errorDelay: 0.5, bounceDelay: 2.5 });
  });

  it("uses errorDelay 0 as an immediate restart through the ready queue, not a timer", async () => {
    const clock = new FakeClock();
    const engine = new Engine({ clock, errorDelay: 0, jitter: 0 });
    let calls = 0;
    engine.install("flaky", {
      inputs: [],
      start: () => {
        calls++;
        if (calls === 1) throw new Error("first start fails");
        return valueWorker(calls);
      },
    });
    await settle();
    expect(calls).toBe(2);
    expect(clock.delays).toEqual([]);
    engine.kill();
    await engine.wait();
  });

  it("backoffFactor 0 and 1 both mean no backoff", async () => {
    for (const backoffFactor of [0, 1]) {
      const clock = new FakeClock();
      const engine = new Engine({ clock, errorDelay: 100, backoffFactor, jitter: 0 });
      engine.install("failing", {
        inputs: [],
        start: () => {
          throw new Error("always");
        },
      });
      await settle();
      for (let i = 0; i < 4; i++) await clock.fireNext();
      expect(clock.delays).toEqual([100, 100, 100, 100, 100]);
      engine.kill();
      await engine.wait();
    }
  });
});

describe("defaults", () => {
  it("restarts after errorDelay 3000 and bounceDelay 10 when not configured (jitter pinned)", async () => {
    const clock = new FakeClock();
    // random 0.5 makes the default ±10% jitter exactly zero.
    const engine = new Engine({ clock, random: () => 0.5 });
    const input = { worker: valueWorker("in") };
    engine.install("input", {
      inputs: [],
      start: () => {
        input.worker = valueWorker("in");
        return input.worker;
      },
    });
    let dependentStarts = 0;
    engine.install("failing", {
      inputs: ["input"],
      start: () => {
        dependentStarts++;
        throw new Error("no");
      },
    });
    await settle();
    expect(clock.delays).toEqual([3000]);
    // An input's worker stopping by itself bounces its dependents after bounceDelay.
    input.worker.kill();
    await settle();
    // The error delay was cut short by the input change (as in Juju), and the
    // input itself completed, so it is not restarted.
    expect(clock.delays.slice(1)).toEqual([10]);
    await clock.fireNext();
    expect(dependentStarts).toBe(2);
    engine.kill();
    await engine.wait();
  });

  it("backs off by 1.2 per recent error by default", async () => {
    const clock = new FakeClock();
    const engine = new Engine({ clock, random: () => 0.5 });
    engine.install("failing", {
      inputs: [],
      start: () => {
        throw new Error("always");
      },
    });
    await settle();
    for (let i = 0; i < 3; i++) await clock.fireNext();
    expect(clock.delays).toEqual([3000, 3600, 4320, 5184]);
    engine.kill();
    await engine.wait();
  });
});


/**
 * A valid value for every option, so that only the key is on trial. (An option
 * added to ENGINE_CONFIG_KEYS needs a line here: the type says so.)
 */
const validValues: Required<{ [K in (typeof ENGINE_CONFIG_KEYS)[number]]: unknown }> = {
  isFatal: () => false,
  worstError: (a: unknown) => a,
  filter: (error: unknown) => error,
  errorDelay: 100,
  bounceDelay: 1,
  backoffFactor: 2,
  backoffResetTime: 1000,
  maxDelay: 1000,
  jitter: 0,
  stopTimeout: 1000,
  clock: new FakeClock(),
  logger: goodLogger,
  metrics: { recordStart: noop },
  random: () => 0.5,
  heartbeatTimeout: 1000,
  heartbeatAction: "report",
  restartLimit: { count: 5, within: 60_000 },
  quarantineTime: 1000,
};

describe("unknown options are refused, naming the key and suggesting the option meant", () => {
  it("knows exactly the options of EngineConfig (and the table below covers each)", () => {
    expect([...ENGINE_CONFIG_KEYS].sort()).toEqual(Object.keys(validValues).sort());
  });

  describe.each(ENGINE_CONFIG_KEYS.map((key) => [key]))("%s", (key) => {
    it.each(typosOf(key).map((typo) => [typo]))(`refuses the typo %s and suggests "${key}"`, (typo) => {
      expect(typo).not.toBe(key);
      let thrown: unknown;
      try {
        engineWith({ [typo]: validValues[key] });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(TypeError);
      expect((thrown as Error).message).toContain(`unknown option ${JSON.stringify(typo)}; did you mean ${JSON.stringify(key)}?`);
      expect((thrown as Error).message).toMatch(/^new Engine\(config\): /);
    });

    it("refuses the typo next to a valid option, with the same message", () => {
      const [typo] = typosOf(key) as [string];
      const others = ENGINE_CONFIG_KEYS.filter((other) => other !== key && other !== "clock");
      const config = Object.fromEntries([...others.map((other) => [other, validValues[other]]), [typo, validValues[key]]]);
      expect(() => engineWith(config)).toThrow(`unknown option ${JSON.stringify(typo)}; did you mean ${JSON.stringify(key)}?`);
    });

    it("accepts the option spelt right", async () => {
      await expectWorking({ [key]: key === "clock" ? new FakeClock() : validValues[key] } as EngineConfig);
    });
  });

  it.each([
    ["ErrorDelay", "errorDelay"],
    ["errordelay", "errorDelay"],
    ["bounce_delay", "bounceDelay"],
    ["backoffFact", "backoffFactor"],
    ["stop", "stopTimeout"],
    ["isfatal", "isFatal"],
    ["stopTimout", "stopTimeout"],
    ["jiter", "jitter"],
    ["loger", "logger"],
  ])("%s suggests %s", (typo, key) => {
    expect(() => engineWith({ [typo]: 1 })).toThrow(`unknown option ${JSON.stringify(typo)}; did you mean ${JSON.stringify(key)}?`);
  });

  it.each([["verbose"], ["x"], ["concurrency"], ["__proto__x"]])("refuses %s, with nothing close, telling the user to remove it and listing the options", (key) => {
    expect(() => engineWith({ [key]: true })).toThrow(
      `new Engine(config): unknown option ${JSON.stringify(key)}; remove it (the options are ${ENGINE_CONFIG_KEYS.join(", ")})`,
    );
  });

  it("refuses an unknown key even when its value is undefined (the key itself is the mistake)", () => {
    expect(() => engineWith({ errorDelay: 5, ErrorDelay: undefined })).toThrow(/unknown option "ErrorDelay"; did you mean "errorDelay"\?/);
  });

  it("reports the unknown key before an invalid value of another field", () => {
    expect(() => engineWith({ jitter: 7, maxdelay: 5 })).toThrow(/unknown option "maxdelay"; did you mean "maxDelay"\?/);
  });

  it("ignores symbol keys and inherited keys: only what an object literal or a spread writes counts", async () => {
    const base = { inheritedOption: true };
    const config = Object.create(base) as Record<string | symbol, unknown>;
    config[Symbol("tag")] = "mine";
    config.errorDelay = 10;
    await expectWorking(config as EngineConfig);
  });

  it("refuses a config whose keys cannot be read with a TypeError", () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(() => engineWith(proxy)).toThrow(TypeError);
    expect(() => engineWith(proxy)).toThrow(/new Engine\(config\): the config's keys cannot be read/);
  });
});
