/**
 * Review of the engine core after the issue-9 reshaping and the features
 * that plugged into it (issues 10-12). Each test pins one bug the review
 * found; they fail until the fix described beside them lands.
 */
import { describe, expect, it } from "vitest";
import { MissingError, type EngineEvent, type Manifold, type StartContext } from "../src/index.js";
import { failOnUnhandledRejections, makeEngine, outcome, settle, stop, TestWorker, track, valueManifold, entry } from "./fixtures.js";

failOnUnhandledRejections();

/** A manifold whose starts make TestWorkers (newest last) that do NOT stop when killed, unless told. */
function stubborn(inputs: string[] = [], extra: Partial<Manifold> = {}): { manifold: Manifold; workers: TestWorker[]; contexts: StartContext[] } {
  const workers: TestWorker[] = [];
  const contexts: StartContext[] = [];
  return {
    workers,
    contexts,
    manifold: {
      inputs,
      start: (context) => {
        contexts.push(context);
        const worker = new TestWorker(`w${workers.length}`, { stopOnKill: false });
        workers.push(worker);
        return worker;
      },
      output: (worker: TestWorker) => worker.label,
      ...extra,
    },
  };
}

describe("shutdown order", () => {
  it("a heartbeat deadline during shutdown does not kill an input before its dependent has stopped", async () => {
    const { engine, clock } = makeEngine({ stopTimeout: 10_000 });
    const db = stubborn([], { heartbeatTimeout: 1000 });
    const api = stubborn(["db"]);
    engine.installAll({ db: db.manifold, api: api.manifold });
    await settle();
    // db heartbeats while it runs normally.
    db.contexts[0]!.heartbeat();
    engine.kill();
    await settle();
    expect(api.workers[0]!.killed, "the dependent is stopped first").toBe(true);
    expect(db.workers[0]!.killed, "the input waits for its dependent").toBe(false);
    // The dependent takes 1.5 s to stop; the input, waiting to be stopped, sends no more heartbeats.
    await clock.advance(1500);
    expect(db.workers[0]!.killed, "db killed while api (its dependent) still runs").toBe(false);
    expect(entry(engine, "db").failureCount, "a shutdown is not a failure").toBe(0);
    api.workers[0]!.complete();
    await settle();
    expect(db.workers[0]!.killed).toBe(true);
    db.workers[0]!.complete();
    expect((await outcome(engine.wait())).ok).toBe(true);
  });

  it("kill() during an apply does not stop a removed input before its kept dependent has stopped", async () => {
    const { engine } = makeEngine({ stopTimeout: 10_000 });
    const a = stubborn();
    const d = stubborn(["a"]);
    const desired = { a: a.manifold, d: d.manifold };
    engine.installAll(desired);
    await settle();
    // Remove a: d is kept, restarted because its input goes; d must stop before a.
    const applied = track(engine.apply({ d: d.manifold }));
    await settle();
    expect(d.workers[0]!.killed, "the dependent is stopped first").toBe(true);
    expect(a.workers[0]!.killed, "the removed input waits for it").toBe(false);
    engine.kill();
    await settle();
    expect(a.workers[0]!.killed, "a killed while its dependent d has not stopped").toBe(false);
    d.workers[0]!.complete();
    await settle();
    expect(a.workers[0]!.killed).toBe(true);
    a.workers[0]!.complete();
    await settle();
    expect(applied.settled).toBe(true);
    expect((await outcome(engine.wait())).ok).toBe(true);
  });
});

describe("onIdle", () => {
  it("resolves while a reinstalled manifold waits behind its stuck namesake (stuck counts as idle)", async () => {
    const { engine, clock } = makeEngine({ stopTimeout: 1000 });
    const old = stubborn();
    engine.install("a", old.manifold);
    await settle();
    void engine.uninstall("a");
    engine.install("a", valueManifold(1));
    await settle();
    await clock.advance(1000); // the old worker is stuck now
    expect(entry(engine, "a").state).toBe("starting");
    const idle = await outcome(engine.onIdle());
    expect(idle.settled, "onIdle() waits forever for a start that waits for a stuck worker").toBe(true);
    old.workers[0]!.complete();
    await settle();
    await stop(engine);
  });
});

describe("quarantine probes", () => {
  // Found in this review; fixed while it ran (287c200, loop.ts `quarantined()`): kept as a regression test.
  it("a probe start that ends with MissingError does not leave the manifold quarantined for good: the input arriving restarts it", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 100, backoffFactor: 0 });
    let mode: "fail" | "missing" | "run" = "fail";
    let starts = 0;
    engine.install("m", {
      inputs: ["db"],
      restartLimit: { count: 1, within: 10_000 },
      quarantineTime: 1000,
      start: () => {
        starts++;
        if (mode === "fail") throw new Error("boom");
        if (mode === "missing") throw new MissingError("db is not there");
        return new TestWorker();
      },
    });
    await settle();
    await clock.advance(100); // second failure: quarantined
    expect(entry(engine, "m").quarantined).toBeDefined();
    mode = "missing";
    await clock.advance(1000); // the probe start: db is missing
    expect(starts).toBe(3);
    mode = "run";
    engine.install("db", valueManifold("db"));
    await settle();
    await clock.advance(100);
    // db arrived: m's probe ended without failing, so the input change restarts it (rule 3).
    expect(starts, "m never restarted after its input arrived").toBe(4);
    await stop(engine);
  });
});

describe("event causes", () => {
  it("the stop of a worker killed for missing its heartbeat is caused by the heartbeat-missed event, not a root", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 100, backoffFactor: 0 });
    const events: EngineEvent[] = [];
    engine.events.subscribe((event) => events.push(event));
    const hung = stubborn([], { heartbeatTimeout: 1000 });
    hung.manifold.start = (context) => {
      hung.contexts.push(context);
      const worker = new TestWorker(`w${hung.workers.length}`); // stops when killed
      hung.workers.push(worker);
      return worker;
    };
    engine.install("hung", hung.manifold);
    await settle();
    await clock.advance(1000);
    expect(hung.workers[0]!.killed).toBe(true);
    const missed = events.find((event) => event.type === "heartbeat-missed");
    const stopped = events.find((event) => event.type === "stopped" && event.name === "hung");
    expect(missed).toBeDefined();
    expect(stopped, "the stop of the hung worker").toMatchObject({ outcome: "error" });
    expect(stopped!.cause, "stopped (HeartbeatTimeoutError) should point at heartbeat-missed").toBe(missed!.id);
    await stop(engine);
  });
});
