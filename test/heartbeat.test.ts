/**
 * Heartbeats and progress (issue 11, enotify's "rogue" generators): a worker
 * that stays silent for longer than its `heartbeatTimeout` is killed as
 * failed with a HeartbeatTimeoutError, exactly at its deadline and not
 * before; heartbeats and progress push the deadline out; a replaced worker's
 * heartbeats never touch its successor; `heartbeatAction: "report"` only
 * marks the worker silent; an event-loop stall gives every deadline a fresh
 * period instead of killing; the report and the event stream show it all;
 * bad options are TypeErrors naming the manifold and the field.
 *
 * Time is a TestClock, except for the stall tests, which need a clock whose
 * timers can fire late ({@link StallClock}).
 */
import { describe, expect, it } from "vitest";
import {
  BounceError,
  Engine,
  HeartbeatTimeoutError,
  selfManifold,
  ShutdownTimeoutError,
  type Clock,
  type EngineConfig,
  type EngineEvent,
  type Logger,
  type Manifold,
  type StartContext,
} from "../src/index.js";
import {
  deferred,
  entry,
  expectStillWorking,
  failOnUnhandledRejections,
  failureOf,
  fieldThatChanges,
  iso,
  killAndSettle,
  makeEngine,
  settle,
  stop,
  TestWorker,
  thrownBy,
  track,
  valueManifold,
} from "./fixtures.js";

failOnUnhandledRejections();

// ---------------------------------------------------------------- local helpers

/** Each start of a watched manifold: its context (to beat from) and its worker (to see kills). */
interface Run {
  readonly context: StartContext;
  readonly worker: TestWorker;
}

/** A manifold whose every start makes a TestWorker and keeps the run, newest last; `extra` adds fields (heartbeatTimeout, ...). */
function watched(extra: Partial<Manifold> = {}, options: { stopOnKill?: boolean } = {}): { manifold: Manifold; runs: Run[] } {
  const runs: Run[] = [];
  const manifold: Manifold = {
    inputs: [],
    start: (context) => {
      const worker = new TestWorker(`w${runs.length}`, options);
      runs.push({ context, worker });
      return worker;
    },
    output: (worker: TestWorker) => worker.label,
    ...extra,
  };
  return { manifold, runs };
}

/** A manifold using `input`, recording for each start whether the input was running. */
function dependent(input: string): { manifold: Manifold; runs: { worker: TestWorker; sawInput: boolean }[] } {
  const runs: { worker: TestWorker; sawInput: boolean }[] = [];
  const manifold: Manifold = {
    inputs: [input],
    start: (context) => {
      const worker = new TestWorker(`u${runs.length}`);
      runs.push({ worker, sawInput: context.hasResource(input) });
      return worker;
    },
  };
  return { manifold, runs };
}

function latest<T>(runs: readonly T[]): T {
  const run = runs[runs.length - 1];
  if (run === undefined) throw new Error("no start has been called yet");
  return run;
}

/** A logger that keeps warnings. */
function warnings(): { logger: Logger; warned: string[] } {
  const warned: string[] = [];
  const ignore = (): void => undefined;
  return { logger: { debug: ignore, info: ignore, warn: (message) => warned.push(message), error: ignore }, warned };
}

/** Every event of `engine` from now on. */
function record(engine: Engine): EngineEvent[] {
  const events: EngineEvent[] = [];
  engine.events.subscribe((event) => events.push(event));
  return events;
}

function ofType<T extends EngineEvent["type"]>(events: readonly EngineEvent[], type: T): Extract<EngineEvent, { type: T }>[] {
  return events.filter((event): event is Extract<EngineEvent, { type: T }> => event.type === type);
}

/**
 * A clock whose timers can fire late, as they do when the event loop is
 * blocked: `jump(ms)` moves time at once and only then fires every timer
 * that fell due meanwhile, in due order, each seeing the late time.
 * `advance(ms)` moves time normally (each timer fires on time). Promises are
 * settled after every firing, as TestClock does.
 */
class StallClock implements Clock {
  #now = Date.UTC(2026, 0, 1);
  #nextId = 1;
  readonly #timers = new Map<number, { due: number; fn: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.#timers.set(id, { due: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** The event loop was blocked for `ms`: time moves first, then what fell due fires, late. */
  async jump(ms: number): Promise<void> {
    await settle();
    this.#now += ms;
    await this.#fireUntil(this.#now);
  }

  /** Time moves by `ms`, each timer firing at its due time. */
  async advance(ms: number): Promise<void> {
    await settle();
    const target = this.#now + ms;
    await this.#fireUntil(target);
    this.#now = target;
    await settle();
  }

  async #fireUntil(target: number): Promise<void> {
    for (;;) {
      let next: [number, { due: number; fn: () => void }] | undefined;
      for (const timer of this.#timers) if (timer[1].due <= target && (next === undefined || timer[1].due < next[1].due)) next = timer;
      if (next === undefined) return;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].due);
      next[1].fn();
      await settle();
    }
  }
}

const TIMING: EngineConfig = { errorDelay: 1000, backoffFactor: 0 };

// ---------------------------------------------------------------- the deadline

describe("heartbeatTimeout: a silent worker is killed as failed", () => {
  it("at exactly its deadline, counted from the moment the worker runs (not from the start call), and not a millisecond before", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const ready = deferred<TestWorker>();
    const worker = new TestWorker();
    engine.install("gen", { inputs: [], heartbeatTimeout: 1000, start: () => ready.promise });
    await clock.advance(700); // the start function takes 700 ms: not the worker's silence
    ready.resolve(worker);
    await settle();
    expect(entry(engine, "gen").state).toBe("started");
    await clock.advance(999);
    expect(worker.killed).toBe(false);
    expect(entry(engine, "gen").state).toBe("started");
    await clock.advance(1);
    expect(worker.killed).toBe(true);
    const report = entry(engine, "gen");
    expect(report.state).toBe("starting"); // waiting out errorDelay
    expect(report.error).toMatch(/manifold "gen": its worker sent no heartbeat for 1000 ms \(heartbeatTimeout 1000 ms\)/);
    expect(report.failureCount).toBe(1);
    expect(clock.pending.map((timer) => timer.delay)).toEqual([1000]);
    await stop(engine);
  });

  it("uses the heartbeatTimeout checked at install: a getter is not read again, whatever it would answer", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const worker = new TestWorker();
    const manifold: Manifold = { inputs: [], start: () => worker };
    const reads = fieldThatChanges(manifold, "heartbeatTimeout", 1000, 1);
    engine.install("gen", manifold);
    await settle();
    expect(entry(engine, "gen").state).toBe("started");
    await clock.advance(999);
    expect(worker.killed).toBe(false);
    await clock.advance(1);
    expect(worker.killed).toBe(true);
    expect(entry(engine, "gen").error).toMatch(/heartbeatTimeout 1000 ms/);
    expect(reads()).toBe(1);
    await stop(engine);
  });

  it("with a HeartbeatTimeoutError that names the manifold, the timeout and the silence, through the manifold's filter and isFatal", async () => {
    const filtered: unknown[] = [];
    const judged: unknown[] = [];
    const { engine, clock } = makeEngine({ ...TIMING, isFatal: (error) => (judged.push(error), false) });
    const { manifold } = watched({ heartbeatTimeout: 250, filter: (error) => (filtered.push(error), error) });
    engine.install("gen", manifold);
    await clock.advance(250);
    expect(filtered).toHaveLength(1);
    const error = filtered[0] as HeartbeatTimeoutError;
    expect(error).toBeInstanceOf(HeartbeatTimeoutError);
    expect(error.name).toBe("HeartbeatTimeoutError");
    expect({ manifoldName: error.manifoldName, timeout: error.timeout, silentFor: error.silentFor }).toEqual({ manifoldName: "gen", timeout: 250, silentFor: 250 });
    expect(error.message).toContain("raise heartbeatTimeout"); // says what to do
    expect(judged).toEqual([error]);
    await stop(engine);
  });

  it("restarts after errorDelay with backoff, each silence one more recent error", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000, backoffFactor: 2, maxDelay: 0 });
    const { manifold, runs } = watched({ heartbeatTimeout: 100 });
    engine.install("gen", manifold);
    await settle();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      await clock.advance(100); // silent: killed
      expect(latest(runs).worker.killed).toBe(true);
      const restart = clock.pending.find((timer) => timer.delay >= 1000);
      delays.push(restart?.delay ?? -1);
      await clock.advance(restart?.delay ?? 0); // restarted
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000]);
    expect(runs).toHaveLength(5);
    expect(entry(engine, "gen").state).toBe("started");
    await stop(engine);
  });

  it("as the filter says: a filter that turns it into a BounceError restarts it after bounceDelay, unbacked-off", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000, bounceDelay: 50, backoffFactor: 2 });
    const { manifold, runs } = watched({
      heartbeatTimeout: 100,
      filter: (error) => (error instanceof HeartbeatTimeoutError ? new BounceError("hung: restart at once", { cause: error }) : error),
    });
    engine.install("gen", manifold);
    await clock.advance(100);
    expect(clock.pending.map((timer) => timer.delay)).toEqual([50]);
    await clock.advance(50);
    expect(runs).toHaveLength(2);
    expect(entry(engine, "gen").failureCount).toBe(0); // a bounce is not a failure
    await stop(engine);
  });

  it("as isFatal says: a fatal HeartbeatTimeoutError stops the engine, and wait() rejects with it", async () => {
    const { engine, clock } = makeEngine({ ...TIMING, isFatal: (error) => error instanceof HeartbeatTimeoutError });
    engine.install("gen", watched({ heartbeatTimeout: 100 }).manifold);
    await clock.advance(100);
    expect(await failureOf(() => engine.wait())).toBeInstanceOf(HeartbeatTimeoutError);
    expect(engine.report().state).toBe("stopped");
  });

  it("bounces its dependents at once, when it is killed, not when it has stopped (a dependent never waits for a hung input)", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const hung = watched({ heartbeatTimeout: 100 }, { stopOnKill: false }); // takes its time to stop
    const user = dependent("hung");
    engine.installAll({ hung: hung.manifold, user: user.manifold });
    await settle();
    expect(user.runs.map((run) => run.sawInput)).toEqual([true]);
    await clock.advance(100);
    expect(latest(hung.runs).worker.killed).toBe(true);
    expect(entry(engine, "hung").state).toBe("stopping");
    expect(user.runs[0]?.worker.killed).toBe(true); // bounced now
    expect(user.runs.map((run) => run.sawInput)).toEqual([true, false]); // and running again, without it
    latest(hung.runs).worker.complete();
    await stop(engine);
  });

  it("a dependent restarted without its hung input is not restarted again when that input finally stops, only when it is back", async () => {
    // One restart per change the dependent can see: its second worker never
    // saw the hung one (a stopping worker is not in any snapshot), so the
    // hung worker's end changes nothing for it.
    const { engine, clock } = makeEngine(TIMING);
    const hung = watched({ heartbeatTimeout: 100 }, { stopOnKill: false });
    const user = dependent("hung");
    engine.installAll({ hung: hung.manifold, user: user.manifold });
    await clock.advance(100);
    expect(user.runs.map((run) => run.sawInput)).toEqual([true, false]);
    latest(hung.runs).worker.complete();
    await settle();
    expect(user.runs.map((run) => run.sawInput)).toEqual([true, false]);
    await clock.advance(1000); // errorDelay: the input is back
    expect(user.runs.map((run) => run.sawInput)).toEqual([true, false, true]);
    engine.kill();
    for (const run of hung.runs) run.worker.complete();
    await engine.wait();
  });

  it("a hung worker that also ignores kill() ends up stuck after its stopTimeout, is not restarted, and wait() still settles", async () => {
    const { engine, clock } = makeEngine({ ...TIMING, stopTimeout: 500 });
    const { manifold, runs } = watched({ heartbeatTimeout: 100 }, { stopOnKill: false });
    engine.install("gen", manifold);
    await clock.advance(100);
    expect(latest(runs).worker.killed).toBe(true);
    await clock.advance(499);
    expect(entry(engine, "gen").stuck).toBeUndefined();
    await clock.advance(1);
    expect(entry(engine, "gen")).toMatchObject({ state: "stopping", stuck: true });
    await clock.advance(60_000);
    expect(runs).toHaveLength(1); // never two workers: no restart while it runs on
    const stopped = await killAndSettle(engine);
    expect(stopped.settled).toBe(true);
    expect(stopped.error).toBeInstanceOf(ShutdownTimeoutError);
    expect((stopped.error as ShutdownTimeoutError).manifolds).toEqual(["gen"]);
    expect(clock.pending).toEqual([]);
  });

  it("a stuck hung worker that finally stops is restarted after errorDelay, as failed with its HeartbeatTimeoutError", async () => {
    const { engine, clock } = makeEngine({ ...TIMING, stopTimeout: 500 });
    const { manifold, runs } = watched({ heartbeatTimeout: 100 }, { stopOnKill: false });
    engine.install("gen", manifold);
    await clock.advance(100 + 500);
    expect(entry(engine, "gen").stuck).toBe(true);
    latest(runs).worker.complete(); // "stopped cleanly": it was still killed as hung
    await settle();
    expect(entry(engine, "gen")).toMatchObject({ state: "starting", failureCount: 1 });
    expect(entry(engine, "gen").error).toMatch(/no heartbeat for 100 ms/);
    await clock.advance(1000);
    expect(runs).toHaveLength(2);
    latest(runs).context.heartbeat();
    const stopped = await killAndSettle(engine);
    latest(runs).worker.complete(); // this one ignores kill() too, but ends
    await settle();
    expect(stopped).toEqual({ settled: true, ok: true, value: undefined, error: undefined });
  });

  it("kill() while a worker killed as hung has not stopped: wait() settles after its stopTimeout, with a ShutdownTimeoutError; no timer is left", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const { manifold } = watched({ heartbeatTimeout: 100 }, { stopOnKill: false });
    engine.install("gen", manifold);
    await clock.advance(100);
    const stopped = track(engine.wait());
    engine.kill();
    await settle();
    expect(stopped.settled).toBe(false); // it has not stopped yet
    await clock.advance(30_000); // the default stopTimeout
    expect(stopped.settled).toBe(true);
    expect(stopped.error).toBeInstanceOf(ShutdownTimeoutError);
    expect(clock.pending).toEqual([]);
  });
});

describe("heartbeat() and progress() keep a worker alive", () => {
  it("heartbeats just inside the deadline keep it alive for 10,000 ticks; then silence kills it one timeout after the last", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const { manifold, runs } = watched({ heartbeatTimeout: 100 });
    engine.install("gen", manifold);
    await settle();
    const { context, worker } = latest(runs);
    let beats = 0;
    const beat = (): void => {
      context.heartbeat();
      if (++beats < 10_000) clock.setTimeout(beat, 99);
    };
    clock.setTimeout(beat, 99);
    const startedAt = clock.now();
    await clock.advance(99 * 10_000);
    expect(beats).toBe(10_000);
    expect(worker.killed).toBe(false);
    expect(runs).toHaveLength(1);
    expect(entry(engine, "gen")).toMatchObject({ state: "started", lastHeartbeat: iso(startedAt + 99 * 10_000) });
    await clock.advance(99);
    expect(worker.killed).toBe(false);
    await clock.advance(1);
    expect(worker.killed).toBe(true);
    await stop(engine);
  });

  it("each heartbeat() or progress() pushes the deadline to a full timeout after it", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const { manifold, runs } = watched({ heartbeatTimeout: 1000 });
    engine.install("gen", manifold);
    await clock.advance(600);
    latest(runs).context.heartbeat(); // deadline 1600
    await clock.advance(900);
    latest(runs).context.progress("GENERATION_START"); // deadline 2500
    await clock.advance(999);
    expect(latest(runs).worker.killed).toBe(false);
    await clock.advance(1);
    expect(latest(runs).worker.killed).toBe(true);
    expect(entry(engine, "gen").error).toMatch(/no heartbeat for 1000 ms/);
    await stop(engine);
  });

  it("both stay valid for the worker's whole life, unlike getResource, and work destructured", async () => {
    const { engine, clock } = makeEngine(TIMING);
    let beats: { heartbeat: () => void; progress: (message: string) => void } | undefined;
    const worker = new TestWorker();
    engine.install("gen", {
      inputs: [],
      heartbeatTimeout: 100,
      start: ({ heartbeat, progress }) => {
        beats = { heartbeat, progress };
        return worker;
      },
    });
    await settle();
    for (let i = 0; i < 20; i++) {
      await clock.advance(90);
      if (i % 2 === 0) beats?.heartbeat();
      else beats?.progress(`step ${i}`);
    }
    expect(worker.killed).toBe(false);
    expect(entry(engine, "gen").progress?.message).toBe("step 19");
    await stop(engine);
  });

  it("a stale heartbeat or progress from a replaced worker is ignored: it never keeps its successor alive, nor shows in the report", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const { manifold, runs } = watched({ heartbeatTimeout: 1000 });
    engine.install("gen", manifold);
    await settle();
    const old = latest(runs);
    old.context.progress("OLD_START");
    await engine.restart("gen"); // replaced: the old worker is stopped, a new one starts
    await settle();
    expect(runs).toHaveLength(2);
    expect(old.worker.killed).toBe(true);
    const current = latest(runs);
    const startedAt = clock.now();
    // The old worker goes on beating (it kept its context), more often than the timeout.
    for (let t = 0; t < 900; t += 300) {
      await clock.advance(300);
      old.context.heartbeat();
      old.context.progress("OLD_STILL_HERE");
    }
    await clock.advance(1000 - 900 - 1);
    expect(current.worker.killed).toBe(false);
    expect(entry(engine, "gen").lastHeartbeat).toBeUndefined(); // the new worker never beat
    expect(entry(engine, "gen").progress?.message).toBe("OLD_START"); // from when it was current
    await clock.advance(1);
    expect(clock.now() - startedAt).toBe(1000);
    expect(current.worker.killed).toBe(true); // exactly its own deadline
    await stop(engine);
  });

  it("calls after the worker stopped do nothing and never throw", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const { manifold, runs } = watched({ heartbeatTimeout: 100 });
    engine.install("gen", manifold);
    await settle();
    latest(runs).worker.complete(); // it ends by itself, cleanly: not restarted
    await settle();
    expect(entry(engine, "gen").state).toBe("stopped");
    latest(runs).context.heartbeat();
    latest(runs).context.progress("TOO_LATE");
    await clock.advance(10_000);
    expect(entry(engine, "gen").progress).toBeUndefined();
    expect(entry(engine, "gen").lastHeartbeat).toBeUndefined();
    expect(runs).toHaveLength(1);
    await stop(engine);
    latest(runs).context.heartbeat(); // after the engine stopped, too
    latest(runs).context.progress("LATER_STILL");
  });

  it("heartbeat() of a manifold without heartbeatTimeout is a harmless no-op (no timer, no lastHeartbeat); progress() is still recorded", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const { manifold, runs } = watched();
    engine.install("gen", manifold);
    await settle();
    clock.delays.length = 0;
    for (let i = 0; i < 1000; i++) latest(runs).context.heartbeat();
    await clock.advance(10);
    latest(runs).context.progress("GENERATION_START", { site: "bugs.example.org" });
    await settle();
    expect(clock.delays).toEqual([]);
    expect(clock.pending).toEqual([]);
    const report = entry(engine, "gen");
    expect(report.lastHeartbeat).toBeUndefined();
    expect(report.progress).toEqual({ message: "GENERATION_START", time: iso(clock.now()), details: { site: "bugs.example.org" } });
    await clock.advance(1_000_000);
    expect(latest(runs).worker.killed).toBe(false);
    await stop(engine);
  });

  it("the engine's own manifold (selfManifold) is never watched: an engine default heartbeatTimeout does not kill the engine in itself", async () => {
    // Rule 11: the engine never kills itself; it has no start context to beat
    // from either, so a default meant for workers must not apply to it.
    const { engine, clock } = makeEngine({ ...TIMING, heartbeatTimeout: 100 });
    const user = dependent("self");
    engine.installAll({ self: selfManifold(engine), user: { ...user.manifold, heartbeatTimeout: 0 } });
    await clock.advance(10_000);
    expect(entry(engine, "self")).toMatchObject({ state: "started", startCount: 1, failureCount: 0 });
    expect(user.runs).toHaveLength(1);
    await stop(engine);
  });

  it("a heartbeatTimeout of 0 on a manifold turns off the engine's default for it", async () => {
    const { engine, clock } = makeEngine({ ...TIMING, heartbeatTimeout: 100 });
    const off = watched({ heartbeatTimeout: 0 });
    const defaulted = watched();
    const own = watched({ heartbeatTimeout: 300 });
    engine.installAll({ off: off.manifold, defaulted: defaulted.manifold, own: own.manifold });
    await clock.advance(100);
    expect([latest(off.runs).worker.killed, latest(defaulted.runs).worker.killed, latest(own.runs).worker.killed]).toEqual([false, true, false]);
    await clock.advance(200);
    expect(latest(own.runs).worker.killed).toBe(true);
    await clock.advance(100_000);
    expect(latest(off.runs).worker.killed).toBe(false);
    expect(off.runs).toHaveLength(1);
    await stop(engine);
  });
});

describe("heartbeat deadlines share the engine's one deadline timer", () => {
  it("500 supervised workers arm one timer; 100,000 heartbeats arm none", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const all: Run[][] = [];
    for (let i = 0; i < 500; i++) {
      const { manifold, runs } = watched({ heartbeatTimeout: 1000 + i });
      all.push(runs);
      engine.install(`gen${i}`, manifold);
    }
    await settle();
    expect(clock.pending.map((timer) => timer.delay)).toEqual([1000]); // for the earliest deadline
    await clock.advance(500);
    clock.delays.length = 0;
    for (let round = 0; round < 200; round++) for (const runs of all) latest(runs).context.heartbeat();
    expect(clock.delays).toEqual([]);
    // Each old deadline comes once, finds a later heartbeat and moves on to
    // it (re-arming lazily): one timer at a time, at most one firing per
    // worker per period, never one per heartbeat.
    await clock.advance(500);
    expect(clock.pending.map((timer) => timer.due - clock.now())).toEqual([1]); // gen1's old deadline, 1001
    await clock.advance(499);
    expect(clock.delays.length).toBeLessThanOrEqual(500);
    expect(clock.pending.map((timer) => timer.due - clock.now())).toEqual([1]); // the earliest new deadline, gen0's at 1500
    expect(all.every((runs) => !latest(runs).worker.killed)).toBe(true);
    await stop(engine);
  });
});

// ---------------------------------------------------------------- the report action

describe('heartbeatAction: "report" marks a silent worker, never kills it', () => {
  it("silent in the report, a warning and one heartbeat-missed event per silence; a heartbeat clears it", async () => {
    const { logger, warned } = warnings();
    const { engine, clock } = makeEngine({ ...TIMING, logger });
    const events = record(engine);
    const { manifold, runs } = watched({ heartbeatTimeout: 100, heartbeatAction: "report" });
    engine.install("gen", manifold);
    await clock.advance(99);
    expect(entry(engine, "gen").silent).toBeUndefined();
    await clock.advance(1);
    expect(entry(engine, "gen")).toMatchObject({ state: "started", silent: true });
    expect(warned.filter((line) => line.includes("marked silent"))).toHaveLength(1);
    expect(warned[0]).toMatch(/manifold "gen" sent no heartbeat for 100 ms \(heartbeatTimeout 100 ms\)/);
    expect(ofType(events, "heartbeat-missed")).toEqual([expect.objectContaining({ name: "gen", silentFor: 100, timeout: 100, action: "report" })]);
    await clock.advance(10_000); // still silent: reported once, still running
    expect(ofType(events, "heartbeat-missed")).toHaveLength(1);
    expect(latest(runs).worker.killed).toBe(false);
    expect(entry(engine, "gen").silent).toBe(true);
    latest(runs).context.heartbeat();
    expect(entry(engine, "gen").silent).toBeUndefined(); // back at once
    await clock.advance(99);
    expect(entry(engine, "gen").silent).toBeUndefined();
    await clock.advance(1); // silent again: a new report
    expect(entry(engine, "gen").silent).toBe(true);
    expect(ofType(events, "heartbeat-missed")).toHaveLength(2);
    expect(ofType(events, "stopped")).toEqual([]);
    expect(runs).toHaveLength(1);
    await stop(engine);
  });

  it("a heartbeat in the very millisecond the worker was marked silent clears the mark", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const { manifold, runs } = watched({ heartbeatTimeout: 100, heartbeatAction: "report" });
    engine.install("gen", manifold);
    await clock.advance(100);
    expect(entry(engine, "gen").silent).toBe(true);
    latest(runs).context.heartbeat(); // same clock reading as the mark: it did beat after it
    expect(entry(engine, "gen").silent).toBeUndefined();
    await stop(engine);
  });

  it("the engine's default heartbeatAction applies to manifolds that set none", async () => {
    const { engine, clock } = makeEngine({ ...TIMING, heartbeatTimeout: 100, heartbeatAction: "report" });
    const soft = watched();
    const hard = watched({ heartbeatAction: "restart" });
    engine.installAll({ soft: soft.manifold, hard: hard.manifold });
    await clock.advance(100);
    expect(latest(soft.runs).worker.killed).toBe(false);
    expect(entry(engine, "soft").silent).toBe(true);
    expect(latest(hard.runs).worker.killed).toBe(true);
    await stop(engine);
  });
});

// ---------------------------------------------------------------- stalls

describe("an event-loop stall is not a hung worker", () => {
  it("a deadline timer that fires 1 s late or more gives a fresh period, and reports the stall (report, event, warning)", async () => {
    const clock = new StallClock();
    const { logger, warned } = warnings();
    const engine = new Engine({ ...TIMING, jitter: 0, bounceDelay: 0, clock, logger });
    const events = record(engine);
    const { manifold, runs } = watched({ heartbeatTimeout: 500 });
    engine.install("gen", manifold);
    await settle();
    expect(engine.report().lastStall).toBeUndefined();
    await clock.jump(1500); // the deadline (500) fires 1000 ms late
    expect(latest(runs).worker.killed).toBe(false);
    expect(engine.report().lastStall).toEqual({ time: iso(clock.now()), lateMs: 1000 });
    expect(ofType(events, "stall")).toEqual([expect.objectContaining({ type: "stall", lateMs: 1000 })]);
    expect(ofType(events, "heartbeat-missed")).toEqual([]);
    expect(warned.some((line) => /event loop was blocked: deadlines fired 1000 ms late/.test(line))).toBe(true);
    // A fresh period from the end of the stall: still silent, it is killed a full timeout later.
    await clock.advance(499);
    expect(latest(runs).worker.killed).toBe(false);
    await clock.advance(1);
    expect(latest(runs).worker.killed).toBe(true);
    expect(entry(engine, "gen").error).toMatch(/no heartbeat for 500 ms/);
    await stop(engine);
  });

  it("a timer late by less than 1 s is no stall: the worker was silent that long, and is killed", async () => {
    const clock = new StallClock();
    const engine = new Engine({ ...TIMING, jitter: 0, bounceDelay: 0, clock });
    const events = record(engine);
    const { manifold, runs } = watched({ heartbeatTimeout: 500 });
    engine.install("gen", manifold);
    await settle();
    await clock.jump(1499); // 999 ms late
    expect(latest(runs).worker.killed).toBe(true);
    expect(entry(engine, "gen").error).toMatch(/no heartbeat for 1499 ms/);
    expect(engine.report().lastStall).toBeUndefined();
    expect(ofType(events, "stall")).toEqual([]);
    await stop(engine);
  });

  it("a stall spares every worker whose deadline passed meanwhile, and a beating worker stays alive through it", async () => {
    const clock = new StallClock();
    const engine = new Engine({ ...TIMING, jitter: 0, bounceDelay: 0, clock });
    const a = watched({ heartbeatTimeout: 300 });
    const b = watched({ heartbeatTimeout: 700 });
    engine.installAll({ a: a.manifold, b: b.manifold });
    await settle();
    await clock.jump(5000);
    expect([latest(a.runs).worker.killed, latest(b.runs).worker.killed]).toEqual([false, false]);
    latest(b.runs).context.heartbeat();
    await clock.advance(300);
    expect([latest(a.runs).worker.killed, latest(b.runs).worker.killed]).toEqual([true, false]);
    await clock.advance(400);
    expect(latest(b.runs).worker.killed).toBe(true);
    await stop(engine);
  });
});

// ---------------------------------------------------------------- report and events

describe("the report and the event stream", () => {
  it("lastHeartbeat, progress { message, time, details } in ISO 8601 UTC, details made JSON-safe; none for an unsupervised manifold", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const { manifold, runs } = watched({ heartbeatTimeout: 1000 });
    engine.installAll({ gen: manifold, plain: valueManifold(1) });
    await settle();
    expect(entry(engine, "gen").lastHeartbeat).toBeUndefined(); // not beaten yet
    await clock.advance(250);
    latest(runs).context.heartbeat();
    expect(entry(engine, "gen").lastHeartbeat).toBe(iso(clock.now()));
    await clock.advance(250);
    const details: Record<string, unknown> = { pages: 12, when: new Date(0), big: 10n, fn: () => 1 };
    details.self = details;
    latest(runs).context.progress("GENERATION_RENDERING_PAGES_START", details);
    const report = entry(engine, "gen");
    expect(report.lastHeartbeat).toBe(iso(clock.now())); // progress counts as a heartbeat
    expect(report.progress).toEqual({
      message: "GENERATION_RENDERING_PAGES_START",
      time: iso(clock.now()),
      details: { pages: 12, when: "1970-01-01T00:00:00.000Z", big: "10", self: "[Circular]" },
    });
    expect(() => JSON.stringify(engine.report())).not.toThrow();
    const plain = entry(engine, "plain");
    for (const field of ["lastHeartbeat", "progress", "silent", "quarantined"] as const) expect(plain[field]).toBeUndefined();
    expect(engine.report().lastStall).toBeUndefined();
    await stop(engine);
  });

  it("progress() from inside the start function is recorded; its time is no heartbeat: the deadline counts from when the worker runs", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const ready = deferred<TestWorker>();
    const worker = new TestWorker();
    engine.install("gen", {
      inputs: [],
      heartbeatTimeout: 100,
      start: (context) => {
        context.progress("GENERATION_START");
        context.heartbeat();
        return ready.promise;
      },
    });
    await settle();
    expect(entry(engine, "gen")).toMatchObject({ state: "starting", progress: { message: "GENERATION_START", time: iso(clock.now()) } });
    expect(entry(engine, "gen").lastHeartbeat).toBeUndefined();
    await clock.advance(50);
    ready.resolve(worker);
    await clock.advance(99);
    expect(worker.killed).toBe(false);
    await clock.advance(1);
    expect(worker.killed).toBe(true);
    await stop(engine);
  });

  it("events: progress (message and details as given), heartbeat-missed, then the stop with its HeartbeatTimeoutError and the restart", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const events = record(engine);
    const { manifold, runs } = watched({ heartbeatTimeout: 100 });
    engine.install("gen", manifold);
    await settle();
    const details = { site: "a" };
    latest(runs).context.progress("GENERATION_START", details);
    latest(runs).context.progress("GENERATION_BUG_LIST_DOWNLOAD_START");
    await clock.advance(100);
    const progress = ofType(events, "progress");
    expect(progress.map((event) => [event.name, event.message, event.details])).toEqual([
      ["gen", "GENERATION_START", details],
      ["gen", "GENERATION_BUG_LIST_DOWNLOAD_START", undefined],
    ]);
    expect(progress[0]?.details).toBe(details);
    expect("details" in (progress[1] as object)).toBe(false);
    const missed = ofType(events, "heartbeat-missed");
    expect(missed).toEqual([expect.objectContaining({ name: "gen", silentFor: 100, timeout: 100, action: "restart", time: iso(clock.now()) })]);
    const after = events.slice(events.indexOf(missed[0] as EngineEvent) + 1).map((event) => event.type);
    expect(after).toEqual(["stopped", "scheduled"]);
    expect(ofType(events, "stopped")[0]).toMatchObject({ name: "gen", outcome: "error", error: expect.stringMatching(/no heartbeat for 100 ms/) });
    expect(ofType(events, "scheduled")[0]).toMatchObject({ name: "gen", delay: 1000, reason: "error" });
    await stop(engine);
  });
});

// ---------------------------------------------------------------- bad input

describe("bad input: a TypeError naming the manifold and the field; the engine goes on working", () => {
  it.each([
    ["negative", -1],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["a string", "1000"],
    ["null", null],
  ])("heartbeatTimeout %s", async (_what, value) => {
    const { engine } = makeEngine();
    const error = thrownBy(() => engine.install("gen", { inputs: [], start: () => new TestWorker(), heartbeatTimeout: value as number }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^manifold "gen": heartbeatTimeout must be a finite number of milliseconds >= 0/);
    expect(error.message).toContain(typeof value === "string" ? `(got "${value}")` : `${String(value)})`);
    expect(Object.keys(engine.report().manifolds)).toEqual([]);
    await expectStillWorking(engine);
    await stop(engine);
  });

  it('heartbeatAction other than "restart" or "report"', async () => {
    const { engine } = makeEngine();
    const error = thrownBy(() => engine.install("gen", { inputs: [], start: () => new TestWorker(), heartbeatAction: "kill" as "restart" }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^manifold "gen": heartbeatAction must be "restart" or "report" \(got "kill"\)/);
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("installAll with one bad heartbeatTimeout installs nothing", async () => {
    const { engine } = makeEngine();
    const error = thrownBy(() =>
      engine.installAll({ good: valueManifold(1), bad: { inputs: ["good"], start: () => new TestWorker(), heartbeatTimeout: -5 } }),
    );
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^manifold "bad": heartbeatTimeout/);
    expect(Object.keys(engine.report().manifolds)).toEqual([]);
    await expectStillWorking(engine);
    await stop(engine);
  });

  it.each([
    ["heartbeatTimeout", -1, /^EngineConfig: heartbeatTimeout must be a finite number/],
    ["heartbeatTimeout", Number.NaN, /^EngineConfig: heartbeatTimeout must be a finite number/],
    ["heartbeatAction", "never", /^EngineConfig: heartbeatAction must be "restart" or "report"/],
  ])("engine config %s = %s", (field, value, message) => {
    const error = thrownBy(() => new Engine({ [field]: value } as EngineConfig));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(message);
  });

  it("progress() with a message that is not a string throws a TypeError naming the manifold; nothing is recorded and the worker runs on", async () => {
    const { engine, clock } = makeEngine(TIMING);
    const events = record(engine);
    const { manifold, runs } = watched({ heartbeatTimeout: 100 });
    engine.install("gen", manifold);
    await settle();
    latest(runs).context.progress("GENERATION_START");
    await clock.advance(60);
    const { progress } = latest(runs).context;
    for (const bad of [42, undefined, { message: "x" }, null]) {
      const error = thrownBy(() => progress(bad as unknown as string));
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toMatch(/^manifold "gen": progress\(message, details\?\) takes a string message \(got .+\); pass data in details$/);
    }
    expect(entry(engine, "gen").progress?.message).toBe("GENERATION_START");
    expect(ofType(events, "progress")).toHaveLength(1);
    // A refused progress is no heartbeat: the deadline still counts from the last good one.
    await clock.advance(40);
    expect(latest(runs).worker.killed).toBe(true);
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("progress() with a bad message from a replaced worker still throws (a bug in the caller is reported wherever it is)", async () => {
    const { engine } = makeEngine(TIMING);
    const { manifold, runs } = watched({ heartbeatTimeout: 100 });
    engine.install("gen", manifold);
    await settle();
    const old = latest(runs).context;
    await engine.restart("gen");
    expect(thrownBy(() => old.progress(7 as unknown as string))).toBeInstanceOf(TypeError);
    await expectStillWorking(engine);
    await stop(engine);
  });
});
