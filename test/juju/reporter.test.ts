/**
 * Ports of Juju's `dependency/reporter_test.go` (juju/worker). Juju starts its
 * clock in a non-UTC zone to show that report times come out in UTC; our
 * times are ISO 8601 UTC strings, so the fixture clock starts at the same
 * instant (2018-08-07 13:15:42 UTC) and the tests compare whole strings.
 */
import { describe, expect, it } from "vitest";
import type { ManifoldReport } from "../../src/index.js";
import { FakeClock, settle } from "../helpers.js";
import { EngineFixture, ManifoldHarness, outcome } from "./util.js";

const T0 = Date.UTC(2018, 7, 7, 13, 15, 42);
const T0_ISO = "2018-08-07T13:15:42.000Z";

function fixture(): EngineFixture {
  return new EngineFixture({}, new FakeClock(T0));
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

describe("engine report (Juju ReportSuite)", () => {
  it("reports a fresh engine as started with no manifolds (TestReportStarted)", async () => {
    const fix = fixture();
    expect(fix.engine.report()).toEqual({ state: "started", manifolds: {} });
    await fix.cleanKill();
  });

  it("reports a killed engine as stopped with no manifolds (TestReportStopped)", async () => {
    const fix = fixture();
    await fix.cleanKill();
    expect(fix.engine.report()).toEqual({ state: "stopped", manifolds: {} });
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
      lastStart: T0_ISO,
      report: { key1: "hello there" },
    });
    expect(await outcome(fix.engine.wait())).toEqual({ status: "pending" });

    // Stopping the worker between kill and wait lets the engine stop cleanly.
    await mh1.injectError(null);
    expect(await outcome(fix.engine.wait())).toEqual({ status: "resolved", value: undefined });
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
      lastStart: T0_ISO,
      report: { key1: "hello there" },
    });
    expect(withoutResourceLog(report.manifolds["another task"])).toEqual({
      state: "started",
      since: T0_ISO,
      inputs: ["task"],
      startCount: 1,
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
