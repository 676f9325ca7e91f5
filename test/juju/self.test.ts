/**
 * Ports of Juju's `dependency/self_test.go` (juju/worker): the self manifold,
 * whose worker is the engine itself and whose output lets other manifolds
 * install into, uninstall from and report on that engine.
 */
import { describe, expect, it } from "vitest";
import { resource, selfManifold, type EngineControls, type StartContext } from "../../src/index.js";
import { failOnUnhandledRejections, makeEngine, outcome, settle } from "../fixtures.js";
import { EngineFixture, ManifoldHarness, startMinimalWorker } from "./util.js";

failOnUnhandledRejections();

/** A start context for calling a start function by hand, as Juju's TestStart does. */
function handContext(name: string): StartContext {
  return {
    name,
    signal: new AbortController().signal,
    heartbeat: () => undefined,
    progress: () => undefined,
    getResource: (() => {
      throw new Error("no resources here");
    }) as StartContext["getResource"],
    hasResource: () => false,
  };
}

describe("selfManifold (Juju SelfSuite)", () => {
  it("has no inputs (TestInputs)", async () => {
    const fix = new EngineFixture();
    expect(selfManifold(fix.engine).inputs).toEqual([]);
    await fix.cleanKill();
  });

  it("starts the engine itself as its worker (TestStart)", async () => {
    const fix = new EngineFixture();
    const started = await selfManifold(fix.engine).start(handContext("self"));
    expect(started).toBe(fix.engine);
    await fix.cleanKill();
  });

  it("refuses to offer controls for a worker that is not its engine (TestOutputBadInput)", async () => {
    // Juju: Output(otherEngine) fails with "unexpected input worker". SPEC:
    // the controls are bound to the engine given to selfManifold, so they
    // must never act on some other engine.
    const fix = new EngineFixture();
    const { engine: other } = makeEngine();
    const m = selfManifold(fix.engine);
    expect(() => m.output?.(other)).toThrow();
    other.kill();
    await other.wait();
    await fix.cleanKill();
  });

  it("offers exactly install, installAll, uninstall and report (TestOutputBadOutput)", async () => {
    // Go's Output takes a typed out-pointer and rejects other types; in
    // TypeScript the output is one object, so what is checked is its shape.
    const fix = new EngineFixture();
    const controls = selfManifold(fix.engine).output?.(fix.engine);
    expect(Object.keys(controls ?? {}).sort()).toEqual(["install", "installAll", "report", "uninstall"]);
    for (const control of Object.values(controls ?? {})) expect(typeof control).toBe("function");
    await fix.cleanKill();
  });

  it("offers the engine's report (TestOutputReporter)", async () => {
    const fix = new EngineFixture();
    fix.engine.install("task", new ManifoldHarness().manifold());
    await settle();
    const controls = selfManifold(fix.engine).output?.(fix.engine);
    expect(controls?.report()).toEqual(fix.engine.report());
    expect(controls?.report().manifolds.task?.state).toBe("started");
    await fix.cleanKill();
  });

  it("offers install, installAll and uninstall acting on the engine (TestOutputInstaller)", async () => {
    const fix = new EngineFixture();
    const controls = selfManifold(fix.engine).output?.(fix.engine);
    const mh1 = new ManifoldHarness();
    const mh2 = new ManifoldHarness();
    controls?.install("one", mh1.manifold());
    controls?.installAll({ two: mh2.manifold() });
    await settle();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([1, 1]);
    expect(Object.keys(fix.engine.report().manifolds).sort()).toEqual(["one", "two"]);

    expect(await outcome(controls?.uninstall("one") ?? Promise.reject(new Error("no controls")))).toEqual({
      settled: true,
      ok: true,
      value: undefined,
    });
    expect(mh1.workers[0]?.killed).toBe(true);
    expect(Object.keys(fix.engine.report().manifolds)).toEqual(["two"]);
    await fix.cleanKill();
  });

  it("installed in its own engine, it starts and lets a waiting dependent start (TestActuallyWorks)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness(["self"]);
    fix.engine.install("dependent", mh1.manifold());
    await settle();
    expect(mh1.takeStarts()).toBe(0);

    fix.engine.install("self", selfManifold(fix.engine));
    await fix.shortWait();
    expect(mh1.takeStarts()).toBe(1);
    await fix.shortWait();
    expect(mh1.takeStarts()).toBe(0);

    // No deadlock, no self-kill: the engine is alive and well.
    const report = fix.engine.report();
    expect(report.state).toBe("started");
    expect(report.manifolds.self?.state).toBe("started");
    expect(report.manifolds.dependent?.state).toBe("started");
    expect(await outcome(fix.engine.wait())).toEqual({ settled: false, ok: false });
    await fix.cleanKill();
  });

  it("lets a dependent install further manifolds through its output", async () => {
    const fix = new EngineFixture();
    const self = resource<EngineControls>("self");
    const child = new ManifoldHarness();
    fix.engine.install(self, selfManifold(fix.engine));
    fix.engine.install("installer", {
      inputs: [self],
      start: (context) => {
        const controls = context.getResource(self);
        if (controls.report().manifolds.child === undefined) controls.install("child", child.manifold());
        return startMinimalWorker();
      },
    });
    await settle();
    expect(child.takeStarts()).toBe(1);
    expect(fix.engine.report().manifolds.child?.state).toBe("started");
    await fix.cleanKill();
  });

  it("survives being installed a hundred times over (TestStress)", async () => {
    const fix = new EngineFixture();
    const m = selfManifold(fix.engine);
    for (let i = 0; i < 100; i++) fix.engine.install(`self-${i}`, m);
    await fix.shortWait();
    const report = fix.engine.report();
    expect(report.state).toBe("started");
    expect(Object.values(report.manifolds).map((entry) => entry.state)).toEqual(new Array<string>(100).fill("started"));
    expect(await outcome(fix.engine.wait())).toEqual({ settled: false, ok: false });
    await fix.cleanKill();
  });

  it("omits the engine's own report from the self manifold's entry", async () => {
    const fix = new EngineFixture();
    fix.engine.install("self", selfManifold(fix.engine));
    await settle();
    const entry = fix.engine.report().manifolds.self;
    expect(entry?.state).toBe("started");
    expect(entry).not.toHaveProperty("report");
    await fix.cleanKill();
  });

  it("never kills or waits for itself: kill() settles wait() and uninstalling self leaves the engine running", async () => {
    const fix = new EngineFixture();
    const mh = new ManifoldHarness(["self"]);
    fix.engine.install("self", selfManifold(fix.engine));
    fix.engine.install("dependent", mh.manifold());
    await settle();
    expect(mh.takeStarts()).toBe(1);

    expect(await outcome(fix.engine.uninstall("self"))).toEqual({ settled: true, ok: true, value: undefined });
    await fix.shortWait();
    expect(fix.engine.report().state).toBe("started");
    expect(Object.keys(fix.engine.report().manifolds)).toEqual(["dependent"]);
    // The dependent lost its input: killed, retried, MissingError.
    expect(mh.workers[0]?.killed).toBe(true);

    fix.engine.install("self", selfManifold(fix.engine));
    await fix.shortWait();
    expect(mh.takeStarts()).toBe(1);
    await fix.cleanKill();
    expect(fix.engine.report().manifolds.self?.state).toBe("stopped");
  });
});
