/**
 * Mistakes that used to fail in silence: a misspelt input, a start that
 * returns something that is not a Worker, and how failures are logged (once,
 * with the restart they lead to, every name quoted the same way).
 */
import createDebug from "debug";
import { describe, expect, it } from "vitest";
import { Engine, valueWorker, type Logger } from "../src/index.js";
import { entry, failOnUnhandledRejections, makeEngine, settle, stop, valueManifold } from "./fixtures.js";

failOnUnhandledRejections();

/** A logger that keeps every line as `level: message`. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => void lines.push(`${level}: ${message}`);
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

describe("a misspelt input", () => {
  it("the report says the input is not installed and suggests the closest installed name", async () => {
    const { engine } = makeEngine();
    engine.installAll({
      config: valueManifold({ port: 1 }),
      server: { inputs: ["confg"], start: (context) => valueWorker(context.getResource("confg")) },
    });
    await settle();
    expect(entry(engine, "server")).toMatchObject({
      state: "stopped",
      error: 'manifold "server": input "confg" is not installed; did you mean "config"?',
    });
    await stop(engine);
  });

  it("says what to do when no installed name is close", async () => {
    const { engine } = makeEngine();
    engine.install("server", { inputs: ["database"], start: (context) => valueWorker(context.getResource("database")) });
    await settle();
    expect(entry(engine, "server").error).toBe('manifold "server": input "database" is not installed; install it, or fix the name in inputs');
    await stop(engine);
  });

  it("an input that is installed but not running is still 'not running'", async () => {
    const { engine } = makeEngine({ errorDelay: 1000 });
    engine.installAll({
      config: { inputs: [], start: () => Promise.reject(new Error("bad file")) },
      server: { inputs: ["config"], start: (context) => valueWorker(context.getResource("config")) },
    });
    await settle();
    expect(entry(engine, "server").error).toBe('manifold "server": input "config" is not running');
    await stop(engine);
  });

  it("logs one warning, once the engine is idle, for each input still absent, naming who lists it and the closest name", async () => {
    const logger = recordingLogger();
    const { engine, clock } = makeEngine({ logger });
    engine.installAll({
      config: valueManifold(1),
      a: { inputs: ["confg"], start: () => valueWorker(0) },
      b: { inputs: ["confg"], start: () => valueWorker(0) },
    });
    await settle();
    await clock.advance(1000);
    const warnings = logger.lines.filter((line) => line.startsWith("warn:"));
    expect(warnings).toEqual(['warn: manifold "a" (and 1 more) lists input "confg", which is not installed; did you mean "config"?']);
    // Installing the name ends it; no warning again.
    engine.install("confg", valueManifold(2));
    await settle();
    expect(logger.lines.filter((line) => line.startsWith("warn:"))).toHaveLength(1);
    await stop(engine);
  });
});

describe("a start that returns something that is not a Worker", () => {
  it("is restarted with backoff and logged at error level every time, once, with the full message and the delay", async () => {
    const logger = recordingLogger();
    const { engine, clock } = makeEngine({ logger, errorDelay: 100, backoffFactor: 2 });
    let calls = 0;
    engine.install("broken", { inputs: [], start: () => (++calls < 3 ? ({ kill() {} } as never) : valueWorker(1)) });
    await settle();
    await clock.advance(100);
    await clock.advance(200);
    const errors = logger.lines.filter((line) => line.startsWith("error:"));
    expect(errors).toEqual([
      'error: manifold "broken" failed: start returned an object whose wait is not a function; it must return a Worker (an object with kill() and wait()); restarting in 100 ms',
      'error: manifold "broken" failed: start returned an object whose wait is not a function; it must return a Worker (an object with kill() and wait()); restarting in 200 ms',
    ]);
    expect(entry(engine, "broken").state).toBe("started");
    await stop(engine);
  });
});

describe("logging", () => {
  it("logs each failure once, at error level, with the restart delay; nothing about it at debug level", async () => {
    const logger = recordingLogger();
    const { engine, clock } = makeEngine({ logger, errorDelay: 500 });
    let calls = 0;
    engine.install("flaky", { inputs: [], start: () => (++calls === 1 ? Promise.reject(new Error("connection reset")) : valueWorker(1)) });
    await settle();
    const about = logger.lines.filter((line) => line.includes("connection reset"));
    expect(about).toEqual(['error: manifold "flaky" failed: connection reset; restarting in 500 ms']);
    await clock.advance(500);
    await stop(engine);
  });

  it("quotes every manifold name the same way in debug lines", async () => {
    const logger = recordingLogger();
    const { engine } = makeEngine({ logger });
    engine.install("a b", valueManifold(1));
    await settle();
    await engine.uninstall("a b");
    const debug = logger.lines.filter((line) => line.startsWith("debug:"));
    expect(debug).toEqual(['debug: manifold "a b" installed', 'debug: manifold "a b" started', 'debug: manifold "a b" uninstalled']);
    await stop(engine);
  });

  it("the default logger has one debug namespace per level, so each can be turned on alone", async () => {
    const written: string[] = [];
    const original = createDebug.log;
    createDebug.log = (...args: unknown[]) => void written.push(args.map(String).join(" "));
    createDebug.enable("manifold-engine:error");
    try {
      const engine = new Engine({ errorDelay: 10_000 });
      engine.install("x", { inputs: [], start: () => Promise.reject(new Error("nope")) });
      await settle();
      engine.kill();
      await engine.wait();
    } finally {
      createDebug.disable();
      createDebug.log = original;
    }
    expect(written.some((line) => line.includes("manifold-engine:error") && line.includes('manifold "x" failed: nope'))).toBe(true);
    expect(written.some((line) => line.includes("manifold-engine:info"))).toBe(false);
    expect(written.some((line) => line.includes("manifold-engine:debug"))).toBe(false);
  });
});

describe("a malformed manifold that its when leaves out", () => {
  it("is refused all the same, naming it, and nothing is installed", async () => {
    const { engine } = makeEngine();
    expect(() =>
      engine.installAll(
        { good: valueManifold(1), bad: { inputs: "db", when: "never", start: () => valueWorker(0) } as never },
        { requirements: [] },
      ),
    ).toThrow(/manifold "bad"/);
    expect(Object.keys(engine.report().manifolds)).toEqual([]);
    await stop(engine);
  });
});
