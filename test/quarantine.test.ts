/**
 * Restart storms (issue 11): a manifold that fails more than
 * `restartLimit.count` times within `restartLimit.within` ms is quarantined
 * (not restarted automatically, shown in the report and the event stream);
 * after `quarantineTime` one probe start runs, which releases it if it runs
 * for `backoffResetTime` and quarantines it again if it fails; and
 * `engine.restart(name)`, an operator's manual restart, which releases a
 * quarantine, resets the backoff and restarts the manifold. Off by default:
 * without a restartLimit a failing manifold is restarted forever, as in Juju.
 */
import { describe, expect, it } from "vitest";
import {
  BounceError,
  Engine,
  EngineStoppedError,
  MissingError,
  type EngineConfig,
  type EngineEvent,
  type Logger,
  type Manifold,
  type StartContext,
  type Worker,
} from "../src/index.js";
import {
  deferred,
  entry,
  expectStillWorking,
  failOnUnhandledRejections,
  failureOf,
  iso,
  makeEngine,
  outcome,
  settle,
  stop,
  TestWorker,
  thrownBy,
  track,
  valueManifold,
} from "./fixtures.js";

failOnUnhandledRejections();

// ---------------------------------------------------------------- local helpers

/**
 * A manifold whose start follows `script`: for each call, "fail" throws,
 * "run" returns a TestWorker (kept in `workers`), anything past the end of
 * the script runs. Each start call's clock time goes in `calls`.
 */
function scripted(
  clock: { now(): number },
  script: readonly ("fail" | "run")[] = [],
  extra: Partial<Manifold> = {},
): { manifold: Manifold; calls: number[]; workers: TestWorker[]; contexts: StartContext[] } {
  const calls: number[] = [];
  const workers: TestWorker[] = [];
  const contexts: StartContext[] = [];
  const manifold: Manifold = {
    inputs: [],
    start: (context) => {
      contexts.push(context);
      const step = script[calls.length] ?? "run";
      calls.push(clock.now());
      if (step === "fail") throw new Error(`start ${calls.length} failed`);
      const worker = new TestWorker(`w${workers.length}`);
      workers.push(worker);
      return worker;
    },
    output: (worker: TestWorker) => worker.label,
    ...extra,
  };
  return { manifold, calls, workers, contexts };
}

/** A manifold whose every start throws; each call's time in `calls`. */
function failing(clock: { now(): number }, extra: Partial<Manifold> = {}): { manifold: Manifold; calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    manifold: {
      inputs: [],
      start: () => {
        calls.push(clock.now());
        throw new Error(`attempt ${calls.length} failed`);
      },
      ...extra,
    },
  };
}

function record(engine: Engine): EngineEvent[] {
  const events: EngineEvent[] = [];
  engine.events.subscribe((event) => events.push(event));
  return events;
}

function ofType<T extends EngineEvent["type"]>(events: readonly EngineEvent[], type: T): Extract<EngineEvent, { type: T }>[] {
  return events.filter((event): event is Extract<EngineEvent, { type: T }> => event.type === type);
}

function warnings(): { logger: Logger; warned: string[] } {
  const warned: string[] = [];
  const ignore = (): void => undefined;
  return { logger: { debug: ignore, info: ignore, warn: (message) => warned.push(message), error: ignore }, warned };
}

/** Plain restarts: errorDelay 1000, no backoff, no jitter. */
const PLAIN: EngineConfig = { errorDelay: 1000, backoffFactor: 0 };

// ---------------------------------------------------------------- quarantine

describe("restartLimit: a restart storm quarantines the manifold", () => {
  it("after exactly count+1 failures within the window: no automatic restart, the report and the log say so", async () => {
    const { logger, warned } = warnings();
    const { engine, clock } = makeEngine({ ...PLAIN, logger });
    const t0 = clock.now();
    const { manifold, calls } = failing(clock, { restartLimit: { count: 3, within: 60_000 } });
    engine.install("broken", manifold);
    await settle();
    for (let failures = 1; failures <= 3; failures++) {
      expect(calls).toHaveLength(failures);
      expect(entry(engine, "broken").quarantined).toBeUndefined();
      expect(clock.pending.map((timer) => timer.delay)).toEqual([1000]); // restarted as usual
      await clock.advance(1000);
    }
    expect(calls).toEqual([t0, t0 + 1000, t0 + 2000, t0 + 3000]); // the 4th failure: count + 1
    expect(clock.pending).toEqual([]);
    expect(entry(engine, "broken")).toMatchObject({
      state: "stopped",
      quarantined: { since: iso(t0 + 3000), failures: 4 },
      error: "attempt 4 failed",
      failureCount: 4,
    });
    expect(entry(engine, "broken").quarantined?.until).toBeUndefined(); // quarantineTime 0: until released
    expect(warned).toContain('manifold "broken" failed 4 times within its restartLimit; quarantined until engine.restart("broken")');
    await clock.advance(24 * 3600 * 1000);
    expect(calls).toHaveLength(4);
    await stop(engine);
  });

  it("not when the failures are spread out: a failure exactly `within` ms old has left the window", async () => {
    const { engine, clock } = makeEngine({ ...PLAIN, errorDelay: 2500 });
    const { manifold, calls } = failing(clock, { restartLimit: { count: 2, within: 5000 } });
    engine.install("flaky", manifold);
    await settle();
    // Failures every 2500 ms: at each, the one 5000 ms back is out, so at most 2 are within the window.
    for (let i = 0; i < 30; i++) await clock.advance(2500);
    expect(calls).toHaveLength(31);
    expect(entry(engine, "flaky").quarantined).toBeUndefined();
    expect(entry(engine, "flaky").state).toBe("starting");
    await stop(engine);
  });

  it("a worker that runs a little, then fails, counts like a start that fails; so does a worker killed for its heartbeat", async () => {
    const { engine, clock } = makeEngine(PLAIN);
    const crashing = scripted(clock, [], { restartLimit: { count: 2, within: 60_000 } });
    const hanging = scripted(clock, [], { restartLimit: { count: 2, within: 60_000 }, heartbeatTimeout: 100 });
    engine.installAll({ crashing: crashing.manifold, hanging: hanging.manifold });
    await settle();
    for (let i = 0; i < 3; i++) {
      await clock.advance(50);
      crashing.workers[crashing.workers.length - 1]?.fail(new Error("segfault"));
      await clock.advance(1000); // hanging: silent for 100 ms, killed; both restart after errorDelay
    }
    expect(entry(engine, "crashing").quarantined?.failures).toBe(3);
    expect(entry(engine, "hanging").quarantined?.failures).toBe(3);
    expect(entry(engine, "hanging").error).toMatch(/no heartbeat for 100 ms/);
    expect([crashing.calls.length, hanging.calls.length]).toEqual([3, 3]);
    await stop(engine);
  });

  it("only unknown errors count: BounceError, MissingError and clean completions never quarantine", async () => {
    const { engine, clock } = makeEngine({ ...PLAIN, bounceDelay: 10 });
    const limit = { restartLimit: { count: 1, within: 60_000 } };
    let bounces = 0;
    engine.install("bouncy", {
      inputs: [],
      ...limit,
      start: () => {
        bounces++;
        throw new BounceError("again");
      },
    });
    const ticker = scripted(clock);
    let missing = 0;
    let completed = 0;
    engine.installAll({
      ticker: ticker.manifold,
      needy: {
        inputs: ["ticker"],
        ...limit,
        start: () => {
          missing++;
          throw new MissingError("not yet");
        },
      },
      done: {
        inputs: ["ticker"],
        ...limit,
        start: () => {
          completed++;
          const worker = new TestWorker();
          worker.complete();
          return worker;
        },
      },
    });
    await settle();
    for (let i = 0; i < 5; i++) {
      const restarted = track(engine.restart("ticker")); // its worker goes and comes back: needy and done restart
      await clock.advance(100);
      expect(restarted.ok).toBe(true);
    }
    expect(bounces).toBeGreaterThan(10);
    expect(missing).toBeGreaterThan(2);
    expect(completed).toBeGreaterThan(2);
    for (const name of ["bouncy", "needy", "done"]) expect(entry(engine, name).quarantined).toBeUndefined();
    await stop(engine);
  });

  it("off by default: without a restartLimit a failing manifold is restarted forever, as in Juju", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 0, backoffFactor: 0 });
    const { manifold, calls } = failing(clock);
    engine.install("juju", manifold);
    await settle(300);
    expect(calls.length).toBeGreaterThan(100);
    expect(entry(engine, "juju").quarantined).toBeUndefined();
    expect(entry(engine, "juju").state).toBe("starting");
    await stop(engine);
  });

  it("takes the restartLimit checked at install: changing the object afterwards changes nothing", async () => {
    const { engine, clock } = makeEngine(PLAIN);
    const restartLimit = { count: 1, within: 60_000 };
    const storm = failing(clock, { restartLimit });
    engine.install("storm", storm.manifold);
    restartLimit.count = 100; // a later change: the engine keeps what it checked
    await clock.advance(1000);
    expect(entry(engine, "storm").quarantined?.failures).toBe(2);
    expect(storm.calls.length).toBe(2);
    await stop(engine);
  });

  it("takes the engine's restartLimit as checked by new Engine: changing the object afterwards changes nothing", async () => {
    const restartLimit = { count: 1, within: 60_000 };
    const { engine, clock } = makeEngine({ ...PLAIN, restartLimit });
    restartLimit.within = Number.NaN;
    const storm = failing(clock);
    engine.install("storm", storm.manifold);
    await clock.advance(1000);
    expect(entry(engine, "storm").quarantined?.failures).toBe(2);
    await stop(engine);
  });

  it("the engine's restartLimit applies to every manifold; a manifold's own overrides it", async () => {
    const { engine, clock } = makeEngine({ ...PLAIN, restartLimit: { count: 1, within: 60_000 } });
    const strict = failing(clock);
    const lenient = failing(clock, { restartLimit: { count: 5, within: 60_000 } });
    engine.installAll({ strict: strict.manifold, lenient: lenient.manifold });
    await clock.advance(1000);
    expect(entry(engine, "strict").quarantined?.failures).toBe(2);
    expect(entry(engine, "lenient").quarantined).toBeUndefined();
    await clock.advance(4000);
    expect(entry(engine, "lenient").quarantined?.failures).toBe(6);
    expect([strict.calls.length, lenient.calls.length]).toEqual([2, 6]);
    await stop(engine);
  });

  it("a quarantined manifold is not restarted when an input changes, nor when it is waiting for its probe", async () => {
    const { engine, clock } = makeEngine(PLAIN);
    const input = scripted(clock);
    const resting = failing(clock, { inputs: ["input"], restartLimit: { count: 1, within: 60_000 } });
    const probing = failing(clock, { inputs: ["input"], restartLimit: { count: 1, within: 60_000 }, quarantineTime: 100_000 });
    engine.installAll({ input: input.manifold, resting: resting.manifold, probing: probing.manifold });
    await clock.advance(1000);
    expect(entry(engine, "resting").quarantined).toBeDefined();
    expect(entry(engine, "probing").quarantined).toBeDefined();
    expect([resting.calls.length, probing.calls.length]).toEqual([2, 2]);
    for (let i = 0; i < 3; i++) {
      await engine.restart("input"); // its worker comes and goes
      await clock.advance(100);
    }
    expect(input.calls).toHaveLength(4);
    expect([resting.calls.length, probing.calls.length]).toEqual([2, 2]);
    expect(entry(engine, "probing").state).toBe("starting"); // its probe is scheduled
    await stop(engine);
  });

  it("events: quarantined (failures, until) after the failure's stopped event, with no scheduled restart", async () => {
    const { engine, clock } = makeEngine(PLAIN);
    const events = record(engine);
    engine.install("broken", failing(clock, { restartLimit: { count: 1, within: 60_000 }, quarantineTime: 30_000 }).manifold);
    await clock.advance(1000);
    const types = events.filter((event) => "name" in event && event.name === "broken").map((event) => event.type);
    expect(types).toEqual(["installed", "starting", "stopped", "scheduled", "starting", "stopped", "quarantined", "scheduled"]);
    const quarantined = ofType(events, "quarantined");
    expect(quarantined).toEqual([expect.objectContaining({ name: "broken", failures: 2, until: iso(clock.now() + 30_000), time: iso(clock.now()) })]);
    // What follows a quarantine is its probe, 30 s on.
    expect(ofType(events, "scheduled").at(-1)).toMatchObject({ name: "broken", delay: 30_000 });
    await stop(engine);
  });
});

// ---------------------------------------------------------------- probes

describe("quarantineTime: one probe start after it", () => {
  it("the probe start comes exactly quarantineTime after the quarantine began; the report shows until when", async () => {
    const { engine, clock } = makeEngine(PLAIN);
    const { manifold, calls } = scripted(clock, ["fail", "fail", "fail"], { restartLimit: { count: 2, within: 60_000 }, quarantineTime: 5000 });
    engine.install("broken", manifold);
    await clock.advance(2000);
    const since = clock.now();
    expect(calls).toHaveLength(3);
    expect(entry(engine, "broken")).toMatchObject({ state: "starting", quarantined: { since: iso(since), until: iso(since + 5000), failures: 3 } });
    await clock.advance(4999);
    expect(calls).toHaveLength(3);
    await clock.advance(1);
    expect(calls).toEqual([since - 2000, since - 1000, since, since + 5000]);
    expect(entry(engine, "broken")).toMatchObject({ state: "started", quarantined: { failures: 3 } }); // still, while it probes
    await stop(engine);
  });

  it("a probe that runs for backoffResetTime releases it: released event, no quarantine, the old failures forgotten", async () => {
    const { engine, clock } = makeEngine({ ...PLAIN, backoffResetTime: 10_000 });
    const events = record(engine);
    const { manifold, calls, workers } = scripted(clock, ["fail", "fail"], { restartLimit: { count: 1, within: 600_000 }, quarantineTime: 5000 });
    engine.install("broken", manifold);
    await clock.advance(1000 + 5000); // quarantined at 1000, probe at 6000
    expect(workers).toHaveLength(1);
    await clock.advance(9999);
    expect(entry(engine, "broken").quarantined).toBeDefined();
    expect(ofType(events, "released")).toEqual([]);
    await clock.advance(1);
    expect(entry(engine, "broken").quarantined).toBeUndefined();
    expect(ofType(events, "released")).toEqual([expect.objectContaining({ name: "broken", by: "probe" })]);
    // Forgotten: one failure now is one, not the third within the window.
    workers[0]?.fail(new Error("once"));
    await settle();
    expect(entry(engine, "broken").quarantined).toBeUndefined();
    expect(clock.pending.map((timer) => timer.delay)).toEqual([1000]);
    await clock.advance(1000);
    expect(calls).toHaveLength(4);
    await stop(engine);
  });

  it("a probe start that fails quarantines it again, from now, with the same count", async () => {
    const { engine, clock } = makeEngine(PLAIN);
    const events = record(engine);
    const { manifold, calls } = failing(clock, { restartLimit: { count: 1, within: 60_000 }, quarantineTime: 5000 });
    engine.install("broken", manifold);
    await clock.advance(1000 + 5000);
    expect(calls).toHaveLength(3); // two failures, then the probe, which failed
    expect(entry(engine, "broken").quarantined).toEqual({ since: iso(clock.now()), until: iso(clock.now() + 5000), failures: 2 });
    expect(ofType(events, "quarantined")).toHaveLength(2);
    await clock.advance(5000);
    expect(calls).toHaveLength(4); // the next probe
    expect(ofType(events, "quarantined")).toHaveLength(3);
    await stop(engine);
  });

  it("a probe worker that fails before backoffResetTime quarantines it again", async () => {
    const { engine, clock } = makeEngine({ ...PLAIN, backoffResetTime: 10_000 });
    const { manifold, calls, workers } = scripted(clock, ["fail", "fail"], { restartLimit: { count: 1, within: 60_000 }, quarantineTime: 5000 });
    engine.install("broken", manifold);
    await clock.advance(1000 + 5000);
    expect(workers).toHaveLength(1);
    await clock.advance(9999);
    workers[0]?.fail(new Error("not quite"));
    await settle();
    expect(entry(engine, "broken").quarantined).toEqual({ since: iso(clock.now()), until: iso(clock.now() + 5000), failures: 2 });
    expect(clock.pending.map((timer) => timer.delay)).toEqual([5000]);
    expect(calls).toHaveLength(3);
    await stop(engine);
  });

  it("a probe that ends without failing (its input is missing) is still the probe: it starts again when the input arrives", async () => {
    // A MissingError is no failure (SPEC rule 4: wait for an input change).
    // The probe neither failed nor ran long enough, so the quarantine stands,
    // but the input change that rule 4 waits for must still start it.
    const { engine, clock } = makeEngine({ ...PLAIN, bounceDelay: 10, backoffResetTime: 10_000 });
    let calls = 0;
    engine.install("report", {
      inputs: ["db"],
      restartLimit: { count: 1, within: 60_000 },
      quarantineTime: 5000,
      start: (context) => {
        calls++;
        if (calls <= 2) throw new Error("boom");
        if (!context.hasResource("db")) throw new MissingError("db is not running");
        return new TestWorker();
      },
    });
    await clock.advance(1000 + 5000);
    expect(calls).toBe(3); // the probe, which found no db
    expect(entry(engine, "report").quarantined).toBeDefined();
    engine.install("db", valueManifold("db"));
    await clock.advance(100);
    expect(calls).toBe(4);
    expect(entry(engine, "report").state).toBe("started");
    await clock.advance(10_000);
    expect(entry(engine, "report").quarantined).toBeUndefined();
    await stop(engine);
  });
});

// ---------------------------------------------------------------- engine.restart

describe("engine.restart(name): an operator's manual restart", () => {
  it("releases a quarantine (released event, by restart) and starts it; resolves when the new start has been called", async () => {
    const { engine, clock } = makeEngine({ ...PLAIN, bounceDelay: 10 });
    const events = record(engine);
    const { manifold, calls } = scripted(clock, ["fail", "fail"], { restartLimit: { count: 1, within: 60_000 } });
    engine.install("broken", manifold);
    await clock.advance(1000);
    expect(entry(engine, "broken").quarantined).toBeDefined();
    const restarted = track(engine.restart("broken"));
    await settle();
    expect(entry(engine, "broken").quarantined).toBeUndefined();
    expect(ofType(events, "released")).toEqual([expect.objectContaining({ name: "broken", by: "restart" })]);
    expect(restarted.settled).toBe(false); // the start comes after bounceDelay
    expect(calls).toHaveLength(2);
    await clock.advance(9);
    expect(restarted.settled).toBe(false);
    await clock.advance(1);
    expect(calls).toHaveLength(3);
    expect(restarted).toMatchObject({ settled: true, ok: true });
    expect(entry(engine, "broken").state).toBe("started");
    await stop(engine);
  });

  it("resets the backoff: the next failure waits the plain errorDelay", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000, backoffFactor: 2, maxDelay: 0, bounceDelay: 10 });
    const { manifold, calls } = scripted(clock, ["fail", "fail", "fail", "fail", "fail"]);
    engine.install("flaky", manifold);
    await settle();
    await clock.advance(1000);
    await clock.advance(2000);
    expect(calls).toHaveLength(3);
    expect(clock.pending.map((timer) => timer.delay)).toEqual([4000]);
    const restarted = track(engine.restart("flaky"));
    await clock.advance(9);
    expect(calls).toHaveLength(3); // not a 4000 ms wait any more ...
    await clock.advance(1); // ... but bounceDelay
    expect(calls).toHaveLength(4);
    expect(restarted.settled).toBe(true);
    expect(clock.pending.map((timer) => timer.delay)).toEqual([1000]); // failed again: plain errorDelay
    await stop(engine);
  });

  it("stops a running worker and starts it again after bounceDelay; its dependents are bounced as usual", async () => {
    const { engine, clock } = makeEngine({ ...PLAIN, bounceDelay: 10 });
    const db = scripted(clock);
    const seen: boolean[] = [];
    engine.installAll({
      db: db.manifold,
      api: {
        inputs: ["db"],
        start: (context) => {
          seen.push(context.hasResource("db"));
          return new TestWorker();
        },
      },
    });
    await settle();
    expect(seen).toEqual([true]);
    const restarted = track(engine.restart("db"));
    await settle();
    expect(db.workers[0]?.killed).toBe(true);
    expect(restarted.settled).toBe(false);
    await clock.advance(10);
    expect(restarted.settled).toBe(true);
    expect(db.calls).toHaveLength(2);
    await clock.advance(100);
    expect(seen.at(-1)).toBe(true); // api restarted with the new db
    expect(entry(engine, "db").startCount).toBe(2);
    expect(entry(engine, "db").error).toBeUndefined(); // an operator's restart is no failure
    expect(entry(engine, "db").failureCount).toBe(0);
    await stop(engine);
  });

  it("aborts a start in flight and calls start again; works on any manifold, supervised or not", async () => {
    const { engine, clock } = makeEngine({ ...PLAIN, bounceDelay: 10 });
    const signals: AbortSignal[] = [];
    const gate = deferred<Worker>();
    let calls = 0;
    engine.install("slow", {
      inputs: [],
      start: (context) => {
        calls++;
        signals.push(context.signal);
        return calls === 1 ? gate.promise : new TestWorker();
      },
    });
    await settle();
    const restarted = track(engine.restart("slow"));
    await settle();
    expect(signals[0]?.aborted).toBe(true);
    expect(String(signals[0]?.reason)).toMatch(/an operator restarted it/);
    gate.reject(signals[0]?.reason);
    await clock.advance(10);
    expect(calls).toBe(2);
    expect(restarted.settled).toBe(true);
    expect(entry(engine, "slow").state).toBe("started");
    await stop(engine);
  });

  it("restarts after bounceDelay a worker that is being killed for its heartbeat (the operator's restart wins)", async () => {
    const { engine, clock } = makeEngine({ ...PLAIN, bounceDelay: 10 });
    const workers: TestWorker[] = [];
    engine.install("hung", {
      inputs: [],
      heartbeatTimeout: 100,
      start: () => {
        const worker = new TestWorker(`w${workers.length}`, { stopOnKill: false });
        workers.push(worker);
        return worker;
      },
    });
    await clock.advance(100); // killed as hung; it takes its time to stop
    expect(workers[0]?.killed).toBe(true);
    const restarted = track(engine.restart("hung"));
    await settle();
    workers[0]?.complete();
    await clock.advance(10);
    expect(workers).toHaveLength(2);
    expect(restarted.settled).toBe(true);
    for (const worker of workers) worker.complete();
    await stop(engine);
  });

  it("resolves several callers with the same start; a stopped (completed) manifold is started again", async () => {
    const { engine, clock } = makeEngine({ ...PLAIN, bounceDelay: 10 });
    const { manifold, calls, workers } = scripted(clock);
    engine.install("job", manifold);
    await settle();
    workers[0]?.complete();
    await settle();
    expect(entry(engine, "job").state).toBe("stopped");
    const first = track(engine.restart("job"));
    const second = track(engine.restart("job"));
    await clock.advance(10);
    expect(calls).toHaveLength(2);
    expect([first.settled, second.settled]).toEqual([true, true]);
    await stop(engine);
  });

  it("rejects for a name that is not installed, with an error naming it and saying what to do", async () => {
    const { engine } = makeEngine();
    engine.install("present", valueManifold(1));
    const error = await failureOf(() => engine.restart("absent"));
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(/^cannot restart manifold "absent": it is not installed; install it first/);
    const bad = await failureOf(() => engine.restart("" as string));
    expect(bad).toBeInstanceOf(TypeError);
    expect(bad.message).toMatch(/^restart\(name\): name must be a non-empty string or a resource token/);
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("rejects with EngineStoppedError after kill(), and when the engine stops before the start is called", async () => {
    const { engine, clock } = makeEngine({ ...PLAIN, bounceDelay: 10 });
    engine.install("db", scripted(clock).manifold);
    await settle();
    const pending = track(engine.restart("db"));
    await settle();
    engine.kill();
    await settle();
    expect(pending.settled).toBe(true);
    expect(pending.error).toBeInstanceOf(EngineStoppedError);
    expect((pending.error as Error).message).toMatch(/the restart did not happen: the engine is stopping/);
    const after = await failureOf(() => engine.restart("db"));
    expect(after).toBeInstanceOf(EngineStoppedError);
    expect(after.message).toMatch(/^cannot restart manifold "db": the engine is stopping or stopped/);
    await engine.wait();
    expect(clock.pending).toEqual([]);
  });

  it("rejects when the manifold is uninstalled before its start is called", async () => {
    const { engine, clock } = makeEngine({ ...PLAIN, bounceDelay: 10 });
    engine.install("db", scripted(clock).manifold);
    await settle();
    const pending = track(engine.restart("db"));
    await settle();
    await engine.uninstall("db");
    await settle();
    expect(pending.error).toBeInstanceOf(EngineStoppedError);
    expect((pending.error as Error).message).toMatch(/it was uninstalled/);
    await expectStillWorking(engine);
    await stop(engine);
  });
});

// ---------------------------------------------------------------- bad input

describe("bad input: a TypeError naming the manifold and the field; the engine goes on working", () => {
  it.each([
    ["count 0", { count: 0, within: 1000 }, /restartLimit\.count must be a whole number >= 1/],
    ["count -1", { count: -1, within: 1000 }, /restartLimit\.count must be a whole number >= 1/],
    ["count 1.5", { count: 1.5, within: 1000 }, /restartLimit\.count must be a whole number >= 1/],
    ["count NaN", { count: Number.NaN, within: 1000 }, /restartLimit\.count must be a whole number >= 1/],
    ["count a string", { count: "3", within: 1000 }, /restartLimit\.count must be a whole number >= 1/],
    ["within 0", { count: 3, within: 0 }, /restartLimit\.within must be a window in milliseconds > 0/],
    ["within negative", { count: 3, within: -1000 }, /restartLimit\.within must be a window in milliseconds > 0/],
    ["within Infinity", { count: 3, within: Number.POSITIVE_INFINITY }, /restartLimit\.within must be a window in milliseconds > 0/],
    ["within missing", { count: 3 }, /restartLimit\.within must be a window in milliseconds > 0/],
    ["not an object", 5, /restartLimit must be an object \{ count, within \}/],
    ["null", null, /restartLimit must be an object \{ count, within \}/],
  ])("restartLimit %s", async (_what, restartLimit, message) => {
    const { engine } = makeEngine();
    const error = thrownBy(() => engine.install("storm", { inputs: [], start: () => new TestWorker(), restartLimit: restartLimit as never }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message.startsWith('manifold "storm": ')).toBe(true);
    expect(error.message).toMatch(message);
    expect(Object.keys(engine.report().manifolds)).toEqual([]);
    await expectStillWorking(engine);
    await stop(engine);
  });

  it.each([
    ["negative", -1],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["a string", "5000"],
  ])("quarantineTime %s", async (_what, quarantineTime) => {
    const { engine } = makeEngine();
    const error = thrownBy(() =>
      engine.install("storm", { inputs: [], start: () => new TestWorker(), restartLimit: { count: 1, within: 1000 }, quarantineTime: quarantineTime as number }),
    );
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^manifold "storm": quarantineTime must be a finite number of milliseconds >= 0/);
    await expectStillWorking(engine);
    await stop(engine);
  });

  it.each([
    [{ restartLimit: { count: 0, within: 1000 } }, /^EngineConfig: restartLimit\.count must be a whole number >= 1/],
    [{ restartLimit: { count: 2, within: -1 } }, /^EngineConfig: restartLimit\.within must be a window in milliseconds > 0/],
    [{ quarantineTime: Number.NaN }, /^EngineConfig: quarantineTime must be a finite number/],
  ])("engine config %j", (config, message) => {
    const error = thrownBy(() => new Engine(config as EngineConfig));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(message);
  });

  it("an engine.restart that failed changes nothing: the manifold runs on", async () => {
    const { engine, clock } = makeEngine(PLAIN);
    const { manifold, workers } = scripted(clock);
    engine.install("db", manifold);
    await settle();
    expect((await outcome(engine.restart("dbx"))).ok).toBe(false);
    expect(workers[0]?.killed).toBe(false);
    expect(entry(engine, "db").state).toBe("started");
    await stop(engine);
  });
});
