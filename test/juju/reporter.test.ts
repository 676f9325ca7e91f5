/**
 * Ports of Juju's `dependency/reporter_test.go` (juju/worker). Juju starts its
 * clock in a non-UTC zone to show that report times come out in UTC; our
 * times are ISO 8601 UTC strings, so the fixture clock starts at the same
 * instant (2018-08-07 13:15:42 UTC) and the tests compare whole strings.
 */
import { describe, expect, it } from "vitest";
import type { ManifoldReport } from "../../src/index.js";
import { failOnUnhandledRejections, outcome, settle, TestClock } from "../fixtures.js";
import { EngineFixture, ManifoldHarness } from "./util.js";

failOnUnhandledRejections();

const T0 = Date.UTC(2018, 7, 7, 13, 15, 42);
const T0_ISO = "2018-08-07T13:15:42.000Z";

function fixture(): EngineFixture {
  return new EngineFixture({}, new TestClock(T0));
}

/**
 * A manifold's entry with `resourceLog` set aside: SPEC makes it optional, and
 * the harness makes no getResource calls, so it is either absent or empty.
 */
function withoutResourceLog(entry: ManifoldReport | undefined): Omit<ManifoldReport, "resourceLog"> | undefined {
  if (entry === undefined) return undefined;
  const { resourceLog, ...rest } = entry;
  expect(resourceLog ?? []).toEqual([]);
  return rest;
}

/** The bookkeeping of an engine created at T0 that never started anything (beyond Juju's report). */
const EMPTY_BOOKS = {
  generation: 0,
  startedAt: T0_ISO,
  totals: { starts: 0, failures: 0, bounces: 0 },
  counts: { starting: 0, started: 0, stopping: 0, stopped: 0 },
};

/** The bookkeeping of a manifold that never failed nor restarted (beyond Juju's report). */
const NO_FAILURES = { restartCount: 0, failureCount: 0, lastFailures: [] };

describe("engine report (Juju ReportSuite)", () => {
  it("reports a fresh engine as started with no manifolds (TestReportStarted)", async () => {
    const fix = fixture();
    expect(fix.engine.report()).toEqual({ state: "started", manifolds: {}, ...EMPTY_BOOKS });
    await fix.cleanKill();
  });

  it("reports a killed engine as stopped with no manifolds (TestReportStopped)", async () => {
    const fix = fixture();
    await fix.cleanKill();
    expect(fix.engine.report()).toEqual({ state: "stopped", manifolds: {}, ...EMPTY_BOOKS });
  });

  it("reports the engine and a worker that ignores kill as stopping until the worker stops (TestReportStopping)", async () => {
    const fix = fixture();
    const mh1 = new ManifoldHarness([], { ignoreExternalKill: true });
    fix.engine.install("task", mh1.manifold());
    await settle();
    expect(mh1.takeStarts()).toBe(1);

    await fix.clock.advance(1000);
    fix.engine.kill();
    await settle();
    const report = fix.engine.report();
    expect(report.state).toBe("stopping");
    expect(Object.keys(report.manifolds)).toEqual(["task"]);
    expect(withoutResourceLog(report.manifolds.task)).toEqual({
      state: "stopping",
      since: "2018-08-07T13:15:43.000Z",
      inputs: [],
      startCount: 1,
      ...NO_FAILURES,
      lastStart: T0_ISO,
      report: { key1: "hello there" },
    });
    expect(await outcome(fix.engine.wait())).toEqual({ settled: false, ok: false });

    // Stopping the worker between kill and wait lets the engine stop cleanly.
    await mh1.injectError(null);
    expect(await outcome(fix.engine.wait())).toEqual({ settled: true, ok: true, value: undefined });
    expect(fix.engine.report().state).toBe("stopped");
    expect(fix.engine.report().manifolds.task?.state).toBe("stopped");
  });

  it("reports each manifold's state, start count, start time, inputs and worker report (TestReportInputs)", async () => {
    const fix = fixture();
    const mh1 = new ManifoldHarness();
    fix.engine.install("task", mh1.manifold());
    const mh2 = new ManifoldHarness(["task"]);
    fix.engine.install("another task", mh2.manifold());
    await settle();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([1, 1]);

    const report = fix.engine.report();
    expect(report.state).toBe("started");
    expect(report.error).toBeUndefined();
    expect(Object.keys(report.manifolds).sort()).toEqual(["another task", "task"]);
    expect(withoutResourceLog(report.manifolds.task)).toEqual({
      state: "started",
      since: T0_ISO,
      inputs: [],
      startCount: 1,
      ...NO_FAILURES,
      uptimeMs: 0,
      lastStart: T0_ISO,
      report: { key1: "hello there" },
    });
    expect(withoutResourceLog(report.manifolds["another task"])).toEqual({
      state: "started",
      since: T0_ISO,
      inputs: ["task"],
      startCount: 1,
      ...NO_FAILURES,
      uptimeMs: 0,
      lastStart: T0_ISO,
      report: { key1: "hello there" },
    });
    // The report is plain data.
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    await fix.cleanKill();
  });

  it("reports a manifold that never started with its last error and no start time (TestReportError)", async () => {
    const fix = fixture();
    const mh1 = new ManifoldHarness(["missing"]);
    fix.engine.install("task", mh1.manifold());
    await settle();
    expect(mh1.takeStarts()).toBe(0);

    await fix.cleanKill();
    const report = fix.engine.report();
    expect(report.state).toBe("stopped");
    expect(report.error).toBeUndefined();
    expect(withoutResourceLog(report.manifolds.task)).toEqual({
      state: "stopped",
      since: T0_ISO,
      inputs: ["missing"],
      error: '"missing" not running: dependency not available',
      startCount: 0,
      ...NO_FAILURES,
    });
  });

  it("keeps a manifold's error until its next successful start, and its start time after it stops (TestReportError)", async () => {
    const fix = fixture();
    const mh1 = new ManifoldHarness();
    fix.engine.install("task", mh1.manifold());
    await settle();
    await fix.clock.advance(5000);
    await mh1.injectError(new Error("splat"));
    let entry = fix.engine.report().manifolds.task;
    expect(entry?.state).toBe("starting"); // waiting out errorDelay
    expect(entry?.error).toBe("splat");
    expect(entry?.lastStart).toBe(T0_ISO);

    await fix.shortWait();
    expect(mh1.takeStarts()).toBe(2);
    entry = fix.engine.report().manifolds.task;
    expect(entry?.state).toBe("started");
    expect(entry?.error).toBeUndefined();
    expect(entry?.startCount).toBe(2);
    expect(entry?.lastStart).toBe("2018-08-07T13:15:47.100Z");
    await fix.cleanKill();
  });
});
