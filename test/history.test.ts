/**
 * The engine's bookkeeping in the report (PyFarm's master): failure counts,
 * the last failures with their times, restarts, uptime, totals and counts by
 * state; and the metrics hook's start, stop and bounce calls.
 */
import { describe, expect, it } from "vitest";
import { BounceError, MissingError, type StopOutcome } from "../src/index.js";
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
});
