/**
 * The report's fields: since, lastStart, error, a worker's nested report,
 * awkward names as own keys, and the engine's own state and worst error.
 * (The ports of Juju's ReportSuite: juju/reporter.test.ts; the report while
 * shutting down: shutdown.test.ts; a worker's report that misbehaves:
 * hostile.test.ts.)
 */
import { describe, expect, it } from "vitest";
import type { EngineReport } from "../src/index.js";
import { deferred, entry, failOnUnhandledRejections, iso, makeEngine, settle, stop, TestClock, TestWorker, valueManifold } from "./fixtures.js";

failOnUnhandledRejections();

describe("report fields", () => {
  it("since is the ISO time at which the state began", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000 });
    const t0 = clock.now();
    const worker = new TestWorker("a");
    engine.install("a", { inputs: [], start: () => worker });
    expect(entry(engine, "a").since).toBe(iso(t0));
    await settle();
    expect(entry(engine, "a")).toMatchObject({ state: "started", since: iso(t0) });
    await clock.advance(5000);
    // No change of state: since does not move.
    expect(entry(engine, "a").since).toBe(iso(t0));
    worker.fail(new Error("x"));
    await settle();
    expect(entry(engine, "a")).toMatchObject({ state: "starting", since: iso(t0 + 5000) });
    await stop(engine);
  });

  it("times read back exactly from a clock with fractions of a millisecond and a clock starting at 0 (nodes keep them as offsets)", async () => {
    for (const start of [Date.UTC(2026, 0, 1) + 0.75, 0, 0.3]) {
      const clock = new TestClock(start);
      const { engine } = makeEngine({ errorDelay: 1000 }, clock);
      const worker = new TestWorker("a");
      engine.install("a", { inputs: [], start: () => worker });
      await settle();
      await clock.advance(1000.5);
      expect(entry(engine, "a")).toMatchObject({ since: iso(start), lastStart: iso(start), uptimeMs: 1000.5 });
      worker.fail(new Error("x"));
      await settle();
      expect(entry(engine, "a")).toMatchObject({ state: "starting", since: iso(start + 1000.5), lastStart: iso(start) });
      await stop(engine);
    }
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
    expect(entry(engine, "a")).toMatchObject({ startCount: 2, lastStart: iso(t0 + 1200) });
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
    const { engine: inner } = makeEngine();
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
