/**
 * The engine's bookkeeping in the report (PyFarm's master): failure counts,
 * the last failures with their times, restarts, uptime, totals and counts by
 * state; and the metrics hook's start, stop and bounce calls.
 */
import { describe, expect, it } from "vitest";
import { BounceError, createWorker, MissingError, type StopOutcome } from "../src/index.js";
import { entry, failOnUnhandledRejections, iso, makeEngine, settle, stop, TestWorker, valueManifold, controlled } from "./fixtures.js";

failOnUnhandledRejections();


describe("bookkeeping in the report", () => {
  it("counts failures (not completions, MissingError or BounceError), keeps the last 5 newest first with their times, and counts restarts", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 100, backoffFactor: 0, bounceDelay: 0 });
    const start = clock.now();
    const a = controlled();
    engine.install("a", a.manifold);
    await settle();
    expect(entry(engine, "a")).toMatchObject({ failureCount: 0, lastFailures: [], restartCount: 0, uptimeMs: 0 });
    for (let i = 1; i <= 7; i++) {
      await clock.advance(1000);
      a.workers.at(-1)?.fail(new Error(`failure ${i}`));
      await clock.advance(100);
    }
    // Not failures: a MissingError, a BounceError, a clean completion.
    a.workers.at(-1)?.fail(new BounceError("again"));
    await settle();
    a.workers.at(-1)?.fail(new MissingError("no db"));
    await settle();
    const report = entry(engine, "a");
    expect(report.failureCount).toBe(7);
    expect(report.lastFailures).toEqual([7, 6, 5, 4, 3].map((i) => ({ error: `failure ${i}`, time: iso(start + i * 1100 - 100) })));
    expect(report.restartCount).toBe(8); // 9 starts: the first, 7 after failures, 1 after the bounce
    expect(report.startCount).toBe(9);
    expect(report.uptimeMs).toBeUndefined(); // MissingError: it is not running
    expect(engine.report().totals).toEqual({ starts: 9, failures: 7, bounces: 0 });
    await stop(engine);
  });

  it("uptimeMs grows with the clock while the worker runs and is absent otherwise", async () => {
    const { engine, clock } = makeEngine();
    engine.install("a", valueManifold(1));
    await settle();
    await clock.advance(2500);
    expect(entry(engine, "a").uptimeMs).toBe(2500);
    engine.kill();
    await engine.wait();
    expect(entry(engine, "a").uptimeMs).toBeUndefined();
  });

  it("counts start failures too, and keeps memory bounded to the last 5", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 10, backoffFactor: 0 });
    let calls = 0;
    engine.install("flaky", {
      inputs: [],
      start: () => {
        calls++;
        throw new Error(`start ${calls}`);
      },
    });
    for (let i = 0; i < 200; i++) await clock.advance(10);
    const report = entry(engine, "flaky");
    expect(report.failureCount).toBe(calls);
    expect(report.lastFailures).toHaveLength(5);
    expect(report.lastFailures[0]?.error).toBe(`start ${calls}`);
    expect(report.restartCount).toBe(0);
    await stop(engine);
  });

  it("the engine: startedAt from the clock, totals of starts, failures and bounces, and counts by state", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000 });
    const created = clock.now();
    const root = controlled();
    engine.installAll({ root: root.manifold, b: valueManifold(2, ["root"]), c: valueManifold(3, ["root"]), lonely: valueManifold(0, ["absent"]) });
    await settle();
    root.workers[0]?.fail(new Error("down"));
    await settle();
    const report = engine.report();
    expect(report.startedAt).toBe(iso(created));
    expect(report.totals).toEqual({ starts: 6, failures: 1, bounces: 2 });
    expect(report.counts).toEqual({ starting: 1, started: 3, stopping: 0, stopped: 0 });
    await stop(engine);
    expect(engine.report().counts).toEqual({ starting: 0, started: 0, stopping: 0, stopped: 4 });
  });
});

describe("the metrics hook", () => {
  it("is told of every start, every stop with its outcome and error, and every bounce with the input", async () => {
    const calls: string[] = [];
    const { engine } = makeEngine({
      errorDelay: 0,
      metrics: {
        recordStart: (name: string) => calls.push(`start ${name}`),
        recordStop: (name: string, outcome: StopOutcome, error?: string) => calls.push(`stop ${name} ${outcome}${error === undefined ? "" : ` ${error}`}`),
        recordBounce: (name: string, input: string) => calls.push(`bounce ${name} ${input}`),
      },
    });
    const a = controlled();
    engine.installAll({ a: a.manifold, b: valueManifold(1, ["a"]) });
    await settle();
    a.workers[0]?.fail(new Error("reset"));
    await settle();
    expect(calls).toEqual(["start a", "start b", "stop a error reset", "bounce b a", "stop b killed", "start a", "start b"]);
    await stop(engine);
  });

  it("a hook that throws is reported at warn level and ignored; a hook with only some methods is fine", async () => {
    const warnings: string[] = [];
    const logger = { debug: () => undefined, info: () => undefined, warn: (message: string) => warnings.push(message), error: () => undefined };
    const { engine } = makeEngine({
      logger,
      metrics: {
        recordStart: () => {
          throw new Error("registry full");
        },
      },
    });
    engine.install("a", valueManifold(1));
    await settle();
    expect(entry(engine, "a").state).toBe("started");
    expect(warnings).toEqual(['metrics.recordStart("a") threw: registry full']);
    await stop(engine);
  });

  it("recordStop and recordBounce that throw are reported and ignored too: the restart and the bounce still happen", async () => {
    const warnings: string[] = [];
    const logger = { debug: () => undefined, info: () => undefined, warn: (message: string) => warnings.push(message), error: () => undefined };
    const { engine } = makeEngine({
      logger,
      errorDelay: 0,
      metrics: {
        recordStop: () => {
          throw new Error("stop counter gone");
        },
        recordBounce: () => {
          throw "not even an Error";
        },
      },
    });
    const a = controlled();
    const b = controlled(["a"]);
    engine.installAll({ a: a.manifold, b: b.manifold });
    await settle();
    a.workers[0]?.fail(new Error("reset"));
    await settle();
    expect(a.workers).toHaveLength(2);
    expect(b.workers).toHaveLength(2);
    expect(entry(engine, "b")).toMatchObject({ state: "started", startCount: 2 });
    expect(warnings).toContain('metrics.recordStop("a") threw: stop counter gone');
    expect(warnings.some((warning) => warning.startsWith('metrics.recordBounce("b") threw: ') && warning.includes("not even an Error"))).toBe(true);
    await stop(engine);
  });

  it("a start that fails is a stop with outcome error and its message (it never ran: no recordStart before it)", async () => {
    const calls: string[] = [];
    const { engine, clock } = makeEngine({
      errorDelay: 100,
      backoffFactor: 0,
      metrics: {
        recordStart: (name: string) => calls.push(`start ${name}`),
        recordStop: (name: string, outcome: StopOutcome, error?: string) => calls.push(`stop ${name} ${outcome}${error === undefined ? "" : ` ${error}`}`),
      },
    });
    let attempts = 0;
    engine.install("dial", {
      inputs: [],
      start: () => {
        if (++attempts === 1) throw new Error("connection refused");
        return new TestWorker();
      },
    });
    await settle();
    await clock.advance(100);
    expect(calls).toEqual(["stop dial error connection refused", "start dial"]);
    await stop(engine);
    expect(calls.at(-1)).toBe("stop dial killed");
  });
});

describe("bookkeeping across uninstalls, kills and fatal errors", () => {
  it("a fatal error counts as a failure; a worker the engine killed does not, whatever it returned", async () => {
    const boom = new Error("disk on fire");
    const { engine, clock } = makeEngine({ isFatal: (error) => error === boom });
    const a = controlled();
    // b's worker ends with an error of its own when killed: still a kill, not a failure.
    const interrupted = (signal: AbortSignal) => new Promise<void>((_, reject) => signal.addEventListener("abort", () => reject(new Error("interrupted"))));
    engine.installAll({ a: a.manifold, b: { inputs: [], start: () => createWorker(interrupted) } });
    await settle();
    await clock.advance(500);
    a.workers[0]?.fail(boom);
    await expect(engine.wait()).rejects.toBe(boom);
    expect(entry(engine, "a")).toMatchObject({ failureCount: 1, lastFailures: [{ error: "disk on fire", time: iso(clock.now()) }] });
    expect(entry(engine, "b")).toMatchObject({ failureCount: 0, lastFailures: [], error: "interrupted" });
    expect(engine.report().totals).toEqual({ starts: 2, failures: 1, bounces: 0 });
  });

  it("a name installed again starts its own count, while the engine's totals keep counting", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 10, backoffFactor: 0 });
    const first = controlled();
    engine.install("a", first.manifold);
    await settle();
    first.workers[0]?.fail(new Error("first life"));
    await clock.advance(10);
    await engine.uninstall("a");
    const second = controlled();
    engine.install("a", second.manifold);
    await settle();
    expect(entry(engine, "a")).toMatchObject({ startCount: 1, restartCount: 0, failureCount: 0, lastFailures: [] });
    expect(engine.report().totals).toEqual({ starts: 3, failures: 1, bounces: 0 });
    await stop(engine);
  });
});
