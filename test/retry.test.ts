/**
 * withRetry (issue 11): a start function's failures retried inside one start
 * attempt with p-retry, in a real Engine driven by a FakeClock. The pauses
 * between attempts run on a second FakeClock, so every delay is asserted
 * exactly and nothing sleeps.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  BounceError,
  Engine,
  MissingError,
  resource,
  UninstallError,
  valueWorker,
  withRetry,
  type FailedAttempt,
  type ManifoldReport,
  type StartContext,
  type Worker,
  type WithRetryOptions,
} from "../src/index.js";
import {
  deferred,
  entry,
  expectStillWorking,
  failOnUnhandledRejections,
  FakeClock,
  hasEntry,
  makeEngine,
  settle,
  TestWorker,
  track,
  type Tracked,
} from "./fixtures.js";

failOnUnhandledRejections();

const engines: Engine[] = [];

/** An engine on `clock` with fixed delays (no jitter), so that the clock's delays can be asserted. */
function newEngine(clock: FakeClock): Engine {
  const { engine } = makeEngine({ errorDelay: 3000, bounceDelay: 10, backoffFactor: 2 }, clock);
  engines.push(engine);
  return engine;
}

afterEach(async () => {
  for (const engine of engines.splice(0)) {
    engine.kill();
    await settle();
    await engine.wait().catch(() => undefined);
  }
});


/** A start function that throws `failures[i]` on call i and returns a value worker once they run out. */
function flaky(failures: unknown[], onCall?: (context: StartContext, call: number) => void) {
  const calls: number[] = [];
  const start = (context: StartContext): Worker => {
    const call = calls.length + 1;
    calls.push(call);
    onCall?.(context, call);
    if (call <= failures.length) throw failures[call - 1];
    return valueWorker(`attempt ${call}`);
  };
  return { start, calls };
}

/** Wraps a start function to record how the promise it returns settles. */
function recordOutcome(start: (context: StartContext) => Promise<Worker>) {
  const outcomes: Tracked<Worker>[] = [];
  const contexts: StartContext[] = [];
  return {
    outcomes,
    contexts,
    start: (context: StartContext): Promise<Worker> => {
      contexts.push(context);
      const promise = start(context);
      outcomes.push(track(promise));
      return promise;
    },
  };
}

describe("withRetry: retries inside one start attempt", () => {
  it("retries a failing start, then runs its worker as one successful start: no dependent restart, no engine backoff", async () => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const seen: FailedAttempt[] = [];
    const dial = flaky([new Error("connection refused"), new Error("connection reset")]);
    let userStarts = 0;
    engine.install("dial", {
      inputs: [],
      start: withRetry(dial.start, { minTimeout: 0, onFailedAttempt: (failure) => void seen.push(failure) }),
      output: (worker: Worker & { value: string }) => worker.value,
    });
    engine.install("user", {
      inputs: ["dial"],
      start: (context) => {
        userStarts++;
        return valueWorker(context.getResource("dial"));
      },
    });
    await settle();

    expect(dial.calls).toEqual([1, 2, 3]);
    expect(entry(engine, "dial")).toMatchObject({ state: "started", startCount: 1 });
    expect(entry(engine, "dial")?.error).toBeUndefined();
    expect(userStarts).toBe(1);
    expect(entry(engine, "user")).toMatchObject({ state: "started", startCount: 1 });
    // The engine never scheduled a restart: no errorDelay, no bounce.
    expect(clock.delays).not.toContain(3000);
    expect(clock.pending).toEqual([]);
    expect(seen.map(({ name, error, attemptNumber, retriesLeft, retriesConsumed }) => ({ name, message: error.message, attemptNumber, retriesLeft, retriesConsumed }))).toEqual([
      { name: "dial", message: "connection refused", attemptNumber: 1, retriesLeft: 10, retriesConsumed: 0 },
      { name: "dial", message: "connection reset", attemptNumber: 2, retriesLeft: 9, retriesConsumed: 1 },
    ]);
  });

  it("pauses on the given clock with p-retry's backoff (minTimeout * factor^n, capped at maxTimeout), never before the pause is over", async () => {
    const clock = new FakeClock();
    const retryClock = new FakeClock();
    const engine = newEngine(clock);
    const dial = flaky([1, 2, 3, 4].map((n) => new Error(`failure ${n}`)));
    engine.install("dial", {
      inputs: [],
      start: withRetry(dial.start, { retries: 5, minTimeout: 100, factor: 2, maxTimeout: 300, clock: retryClock }),
    });
    await settle();
    expect(dial.calls).toEqual([1]);

    for (const [delay, calls] of [
      [100, 2],
      [200, 3],
      [300, 4],
      [300, 5],
    ] as const) {
      expect(retryClock.pending.map((timer) => timer.delay)).toEqual([delay]);
      await retryClock.advance(delay - 1);
      expect(dial.calls.length, `one ms before the ${delay} ms pause ends`).toBe(calls - 1);
      await retryClock.advance(1);
      expect(dial.calls.length).toBe(calls);
    }
    expect(retryClock.delays).toEqual([100, 200, 300, 300]);
    expect(retryClock.pending).toEqual([]);
    expect(entry(engine, "dial")).toMatchObject({ state: "started", startCount: 1 });
    // The engine's own clock never saw a pause.
    expect(clock.delays).toEqual([]);
  });

  it("gives up with the last error itself after the last retry; the engine then restarts it after errorDelay as one failure", async () => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const errors = [new Error("first"), new Error("second"), new Error("third")];
    const dial = flaky([...errors, ...errors]);
    const filtered: unknown[] = [];
    engine.install("dial", {
      inputs: [],
      start: withRetry(dial.start, { retries: 2, minTimeout: 0 }),
      filter: (error) => {
        filtered.push(error);
        return error;
      },
    });
    await settle();

    expect(dial.calls).toEqual([1, 2, 3]);
    expect(filtered).toHaveLength(1);
    expect(filtered[0]).toBe(errors[2]);
    expect(entry(engine, "dial")).toMatchObject({ state: "starting", startCount: 0, error: "third" });
    // One failed start as far as the engine knows: the plain errorDelay, not a backed-off one.
    expect(clock.pending.map((timer) => timer.delay)).toEqual([3000]);

    await clock.advance(3000);
    expect(dial.calls).toEqual([1, 2, 3, 4, 5, 6]);
    expect(filtered).toHaveLength(2);
    // The second failed start is backed off (backoffFactor 2): the engine counts starts, not attempts.
    expect(clock.pending.map((timer) => timer.delay)).toEqual([6000]);
  });

  it("retries: 0 makes one attempt; a non-Error thrown is wrapped (the value as cause) and retried like any failure", async () => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const once = flaky([new Error("only once")]);
    const strings = flaky(["a string", undefined]);
    const failures: FailedAttempt[] = [];
    engine.install("once", { inputs: [], start: withRetry(once.start, { retries: 0 }) });
    engine.install("strings", {
      inputs: [],
      start: withRetry(strings.start, { minTimeout: 0, onFailedAttempt: (failure) => void failures.push(failure) }),
    });
    await settle();

    expect(once.calls).toEqual([1]);
    expect(entry(engine, "once")).toMatchObject({ state: "starting", error: "only once" });
    expect(strings.calls).toEqual([1, 2, 3]);
    expect(entry(engine, "strings")).toMatchObject({ state: "started" });
    expect(failures.map((failure) => failure.error)).toEqual([expect.any(Error), expect.any(Error)]);
    expect(failures[0]?.error.message).toBe('the start function of manifold "strings" threw a non-Error value: "a string"');
    expect(failures[0]?.error.cause).toBe("a string");
    expect(failures[1]?.error.message).toMatch(/threw a non-Error value: undefined/);
  });

  it("awaits an async onFailedAttempt before the pause and the next attempt", async () => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const gate = deferred();
    const dial = flaky([new Error("down")]);
    engine.install("dial", {
      inputs: [],
      start: withRetry(dial.start, { minTimeout: 0, onFailedAttempt: () => gate.promise }),
    });
    await settle();
    expect(dial.calls).toEqual([1]);
    expect(entry(engine, "dial")?.state).toBe("starting");
    gate.resolve();
    await settle();
    expect(dial.calls).toEqual([1, 2]);
    expect(entry(engine, "dial")?.state).toBe("started");
  });

  it("passes `this` through to the wrapped start function (the manifold, when the engine calls it as a method)", async () => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const receivers: unknown[] = [];
    const dialer = {
      inputs: [],
      start: withRetry(function (this: unknown, _context: StartContext) {
        receivers.push(this);
        if (receivers.length < 2) throw new Error("not yet");
        return valueWorker("dialer");
      }, { minTimeout: 0 }),
    };
    engine.install("dial", dialer);
    await settle();
    expect(receivers).toEqual([dialer, dialer]);
  });

  it("copies its options when it wraps: changing the object afterwards changes nothing", async () => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const options: WithRetryOptions = { retries: 1, minTimeout: 0 };
    const dial = flaky([new Error("1"), new Error("2"), new Error("3")]);
    const start = withRetry(dial.start, options);
    options.retries = 5;
    engine.install("dial", { inputs: [], start });
    await settle();
    expect(dial.calls).toEqual([1, 2]);
    expect(entry(engine, "dial")?.error).toBe("2");
  });
});

describe("withRetry: what is never retried", () => {
  /** An error as the other build (ESM vs CJS) of this package makes it: a different class carrying the shared brand. */
  function fromOtherBuild(name: "MissingError" | "BounceError" | "UninstallError"): Error {
    const error = new Error(`${name} from the other build`);
    Object.defineProperty(error, Symbol.for(`manifold-engine.${name}`), { value: true });
    error.name = name;
    return error;
  }

  const cases: { label: string; error: () => Error; state: string }[] = [
    { label: "MissingError", error: () => new MissingError("input gone"), state: "stopped" },
    { label: "BounceError", error: () => new BounceError("bounce me"), state: "starting" },
    { label: "UninstallError", error: () => new UninstallError("done for good"), state: "gone" },
    { label: "an error caused by a MissingError", error: () => new Error("dial failed", { cause: new MissingError("no config") }), state: "stopped" },
    { label: "a BounceError of the other build", error: () => fromOtherBuild("BounceError"), state: "starting" },
    { label: "an UninstallError of the other build", error: () => fromOtherBuild("UninstallError"), state: "gone" },
    { label: "an AbortError (DOMException)", error: () => new DOMException("cancelled by its caller", "AbortError"), state: "starting" },
    { label: "a TypeError that is not a network error (p-retry's rule)", error: () => new TypeError("x.dial is not a function"), state: "starting" },
  ];

  it.each(cases)("$label: one attempt, onFailedAttempt not told, the engine sees that very error", async ({ error, state }) => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const thrown = error();
    const dial = flaky([thrown, thrown]);
    const told: FailedAttempt[] = [];
    const filtered: unknown[] = [];
    engine.install("dial", {
      inputs: [],
      start: withRetry(dial.start, { minTimeout: 0, onFailedAttempt: (failure) => void told.push(failure) }),
      filter: (seen) => {
        filtered.push(seen);
        return seen;
      },
    });
    await settle();
    expect(dial.calls).toEqual([1]);
    expect(filtered).toEqual([thrown]);
    expect(filtered[0]).toBe(thrown);
    // A TypeError reaches onFailedAttempt (p-retry tells it of every failure it considers), but is not retried.
    expect(told.map((failure) => failure.error)).toEqual(thrown instanceof TypeError ? [thrown] : []);
    expect(hasEntry(engine, "dial") ? entry(engine, "dial").state : "gone").toBe(state);
  });

  it("a MissingError from getResource of an input that is not installed is not retried: the snapshot cannot change within the attempt", async () => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    let calls = 0;
    engine.install("dial", {
      inputs: ["config"],
      start: withRetry((context) => {
        calls++;
        return valueWorker(context.getResource("config"));
      }, { minTimeout: 0 }),
    });
    await settle();
    expect(calls).toBe(1);
    expect(entry(engine, "dial")).toMatchObject({ state: "stopped", error: 'manifold "dial": input "config" is not installed; install it, or fix the name in inputs' });
  });

  it("throwing p-retry's own AbortError stops retrying with its original error", async () => {
    const { AbortError } = await import("p-retry");
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const original = new Error("give up");
    const dial = flaky([new AbortError(original)]);
    const filtered: unknown[] = [];
    engine.install("dial", {
      inputs: [],
      start: withRetry(dial.start, { minTimeout: 0 }),
      filter: (error) => {
        filtered.push(error);
        return error;
      },
    });
    await settle();
    expect(dial.calls).toEqual([1]);
    expect(filtered).toEqual([original]);
  });

  it("a throwing onFailedAttempt stops retrying: the start fails with what it threw (a BounceError makes the engine bounce it)", async () => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const dial = flaky([new Error("down"), new Error("down again")]);
    const bounce = new BounceError("try again after bounceDelay");
    engine.install("dial", {
      inputs: [],
      start: withRetry(dial.start, {
        minTimeout: 0,
        onFailedAttempt: () => {
          throw bounce;
        },
      }),
    });
    await settle();
    expect(dial.calls).toEqual([1]);
    expect(entry(engine, "dial")).toMatchObject({ state: "starting", error: "try again after bounceDelay" });
    expect(clock.pending.map((timer) => timer.delay)).toEqual([10]);
  });

  it("a non-Error thrown by onFailedAttempt is wrapped in an Error that names it and the manifold", async () => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const dial = flaky([new Error("down")]);
    engine.install("dial", {
      inputs: [],
      start: withRetry(dial.start, {
        minTimeout: 0,
        onFailedAttempt: () => {
          throw 42; // eslint-disable-line @typescript-eslint/only-throw-error
        },
      }),
    });
    await settle();
    expect(dial.calls).toEqual([1]);
    expect(entry(engine, "dial")?.error).toBe(`withRetry's onFailedAttempt for manifold "dial" threw a non-Error value: number 42`);
  });

  it("a clock whose setTimeout throws ends the retries with an error naming it, never an unhandled rejection", async () => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const dial = flaky([new Error("down"), new Error("down again")]);
    const brokenClock = {
      setTimeout: (): unknown => {
        throw new Error("no timers here");
      },
      clearTimeout: (): void => undefined,
    };
    engine.install("dial", { inputs: [], start: withRetry(dial.start, { minTimeout: 5, clock: brokenClock }) });
    await settle();
    expect(dial.calls).toEqual([1]);
    expect(entry(engine, "dial")?.error).toMatch(/^withRetry: clock\.setTimeout\(fn, 5\) threw, so the pause before the next attempt could not be taken: no timers here$/);
  });
});

describe("withRetry: abort", () => {
  it("an abort during a pause ends it at once: the timer is cleared, no further attempt, rejects with the signal's reason", async () => {
    const clock = new FakeClock();
    const retryClock = new FakeClock();
    const engine = newEngine(clock);
    const dial = flaky([new Error("down"), new Error("down")]);
    const told: FailedAttempt[] = [];
    const recorded = recordOutcome(withRetry(dial.start, { minTimeout: 60_000, clock: retryClock, onFailedAttempt: (f) => void told.push(f) }));
    engine.install("dial", { inputs: [], start: recorded.start });
    await settle();
    expect(retryClock.pending.map((timer) => timer.delay)).toEqual([60_000]);

    const uninstalled = track(engine.uninstall("dial"));
    await settle();
    expect(retryClock.pending).toEqual([]);
    const [context] = recorded.contexts;
    expect(context?.signal.aborted).toBe(true);
    expect(recorded.outcomes[0]).toMatchObject({ settled: true, ok: false });
    expect(recorded.outcomes[0]?.error).toBe(context?.signal.reason);
    expect(uninstalled).toMatchObject({ settled: true, ok: true });
    await retryClock.advance(120_000);
    expect(dial.calls).toEqual([1]);
    expect(told).toHaveLength(1);
    await expectStillWorking(engine);
  });

  it("an abort while an attempt runs: that attempt's failure is not retried, and the start rejects with the reason, not the failure", async () => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const attempts: ReturnType<typeof deferred<Worker>>[] = [];
    const told: FailedAttempt[] = [];
    const recorded = recordOutcome(
      withRetry(() => {
        const attempt = deferred<Worker>();
        attempts.push(attempt);
        return attempt.promise;
      }, { minTimeout: 0, onFailedAttempt: (f) => void told.push(f) }),
    );
    engine.install("dial", { inputs: [], start: recorded.start });
    await settle();
    attempts[0]?.reject(new Error("transient"));
    await settle();
    expect(attempts).toHaveLength(2);

    engine.kill();
    await settle();
    // The running attempt is awaited (it has the same signal), then nothing more.
    expect(recorded.outcomes[0]?.settled).toBe(false);
    attempts[1]?.reject(new Error("dial interrupted"));
    await settle();
    expect(attempts).toHaveLength(2);
    expect(told).toHaveLength(1);
    expect(recorded.outcomes[0]).toMatchObject({ settled: true, ok: false });
    expect(recorded.outcomes[0]?.error).toBe(recorded.contexts[0]?.signal.reason);
    await expect(engine.wait()).resolves.toBeUndefined();
  });

  it("an attempt that returns a worker after the abort hands it to the engine, which stops it: no worker runs on unseen", async () => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const attempt = deferred<Worker>();
    const worker = new TestWorker("late");
    const recorded = recordOutcome(withRetry(() => attempt.promise, { minTimeout: 0 }));
    engine.install("dial", { inputs: [], start: recorded.start });
    await settle();
    engine.kill();
    await settle();
    attempt.resolve(worker);
    await settle();
    expect(recorded.outcomes[0]).toMatchObject({ settled: true, ok: true });
    expect(worker.killed).toBe(true);
    await expect(engine.wait()).resolves.toBeUndefined();
  });

  it("a signal already aborted: the wrapped start is never called and the promise rejects with the reason", async () => {
    const controller = new AbortController();
    const reason = new Error("stopped before it began");
    controller.abort(reason);
    let calls = 0;
    const start = withRetry(() => {
      calls++;
      return valueWorker(1);
    });
    const context: StartContext = {
      name: "dial",
      signal: controller.signal,
      heartbeat: () => undefined,
      progress: () => undefined,
      getResource: () => {
        throw new Error("unused");
      },
      hasResource: () => false,
    };
    await expect(start(context)).rejects.toBe(reason);
    expect(calls).toBe(0);
  });

  it("retries: Infinity keeps trying until the abort, then stops at once", async () => {
    const clock = new FakeClock();
    const retryClock = new FakeClock();
    const engine = newEngine(clock);
    let calls = 0;
    engine.install("dial", {
      inputs: [],
      start: withRetry(() => {
        calls++;
        throw new Error("never up");
      }, { retries: Infinity, minTimeout: 1000, factor: 1, clock: retryClock }),
    });
    await settle();
    for (let i = 0; i < 50; i++) await retryClock.advance(1000);
    expect(calls).toBe(51);
    engine.kill();
    await settle();
    expect(retryClock.pending).toEqual([]);
    await retryClock.advance(10_000);
    expect(calls).toBe(51);
    await expect(engine.wait()).resolves.toBeUndefined();
  });
});

describe("withRetry: resources across retries", () => {
  it("getResource and hasResource work on every retry of the attempt, and expire once the wrapped start settles", async () => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    const config = resource<{ url: string }>("config");
    engine.install(config, { inputs: [], start: () => valueWorker({ url: "tcp://db" }), output: (worker: Worker & { value: { url: string } }) => worker.value });
    const seen: { url: string; has: boolean; hasAbsent: boolean }[] = [];
    const contexts: StartContext[] = [];
    const dial = flaky([new Error("refused"), new Error("refused")], (context) => {
      contexts.push(context);
      seen.push({ url: context.getResource(config).url, has: context.hasResource(config), hasAbsent: context.hasResource("cache") });
    });
    engine.install("dial", { inputs: [config, "cache"], start: withRetry(dial.start, { minTimeout: 0 }) });
    await settle();

    expect(seen).toEqual([
      { url: "tcp://db", has: true, hasAbsent: false },
      { url: "tcp://db", has: true, hasAbsent: false },
      { url: "tcp://db", has: true, hasAbsent: false },
    ]);
    // One context, the attempt's, handed to every retry.
    expect(new Set(contexts).size).toBe(1);
    expect(entry(engine, "dial")).toMatchObject({ state: "started", startCount: 1 });
    expect(() => contexts[0]?.getResource(config)).toThrow(/expired/);
    expect(() => contexts[0]?.hasResource(config)).toThrow(/expired/);
  });
});

describe("withRetry: bad input, a TypeError at wrap time naming what is wrong", () => {
  const start = (): Worker => valueWorker(1);
  const cases: { label: string; wrap: () => unknown; message: RegExp }[] = [
    { label: "start undefined", wrap: () => withRetry(undefined as never), message: /^withRetry\(start, options\): start must be a start function, \(context\) => Worker \(got undefined\)$/ },
    { label: "start an object", wrap: () => withRetry({ start } as never), message: /start must be a start function.*\(got an object/ },
    { label: "start a string", wrap: () => withRetry("start" as never), message: /start must be a start function.*\(got "start"\)/ },
    { label: "options null", wrap: () => withRetry(start, null as never), message: /options must be an object when given \(got null\)/ },
    { label: "options an array", wrap: () => withRetry(start, [] as never), message: /options must be an object when given \(got an array of length 0\)/ },
    { label: "options a number", wrap: () => withRetry(start, 3 as never), message: /options must be an object when given \(got number 3\)/ },
    { label: "an unknown option", wrap: () => withRetry(start, { retry: 3 } as never), message: /^withRetry: unknown option "retry"; the options are retries, factor, minTimeout, maxTimeout, onFailedAttempt, clock$/ },
    { label: "signal", wrap: () => withRetry(start, { signal: new AbortController().signal } as never), message: /unknown option "signal" \(the start context's signal is always used\)/ },
    { label: "forever", wrap: () => withRetry(start, { forever: true } as never), message: /unknown option "forever" \(use retries: Infinity\)/ },
    { label: "retries negative", wrap: () => withRetry(start, { retries: -1 }), message: /^withRetry: option retries must be a whole number >= 0 or Infinity \(0 = no retries\) \(got number -1\)$/ },
    { label: "retries fractional", wrap: () => withRetry(start, { retries: 1.5 }), message: /option retries must be a whole number.*\(got number 1\.5\)/ },
    { label: "retries NaN", wrap: () => withRetry(start, { retries: Number.NaN }), message: /option retries must be.*\(got number NaN\)/ },
    { label: "retries a string", wrap: () => withRetry(start, { retries: "3" as never }), message: /option retries must be.*\(got "3"\)/ },
    { label: "factor below 1", wrap: () => withRetry(start, { factor: 0.5 }), message: /^withRetry: option factor must be a finite number >= 1 \(1 keeps the pause constant\) \(got number 0\.5\)$/ },
    { label: "factor Infinity", wrap: () => withRetry(start, { factor: Infinity }), message: /option factor must be a finite number >= 1.*\(got number Infinity\)/ },
    { label: "factor a string", wrap: () => withRetry(start, { factor: "2" as never }), message: /option factor must be.*\(got "2"\)/ },
    { label: "minTimeout negative", wrap: () => withRetry(start, { minTimeout: -1 }), message: /^withRetry: option minTimeout must be a finite number of milliseconds >= 0 \(got number -1\)$/ },
    { label: "minTimeout Infinity", wrap: () => withRetry(start, { minTimeout: Infinity }), message: /option minTimeout must be a finite number.*\(got number Infinity\)/ },
    { label: "minTimeout null", wrap: () => withRetry(start, { minTimeout: null as never }), message: /option minTimeout must be.*\(got null\)/ },
    { label: "maxTimeout negative", wrap: () => withRetry(start, { minTimeout: 0, maxTimeout: -5 }), message: /^withRetry: option maxTimeout must be a number of milliseconds >= 0, or Infinity for no cap \(got number -5\)$/ },
    { label: "maxTimeout NaN", wrap: () => withRetry(start, { maxTimeout: Number.NaN }), message: /option maxTimeout must be.*\(got number NaN\)/ },
    { label: "maxTimeout below the default minTimeout", wrap: () => withRetry(start, { maxTimeout: 500 }), message: /^withRetry: option maxTimeout \(500\) is below minTimeout \(1000\), so every pause would be maxTimeout; raise maxTimeout or lower minTimeout$/ },
    { label: "onFailedAttempt not a function", wrap: () => withRetry(start, { onFailedAttempt: "log" as never }), message: /^withRetry: option onFailedAttempt must be a function when given \(got "log"\)$/ },
    { label: "clock null", wrap: () => withRetry(start, { clock: null as never }), message: /option clock must be an object with setTimeout and clearTimeout \(an engine Clock\) \(got null\)/ },
    { label: "clock without clearTimeout", wrap: () => withRetry(start, { clock: { setTimeout: () => 1 } as never }), message: /^withRetry: option clock is missing method clearTimeout\(\); it needs setTimeout and clearTimeout/ },
  ];

  it.each(cases)("$label", async ({ wrap, message }) => {
    const clock = new FakeClock();
    const engine = newEngine(clock);
    // Thrown while the manifold is being written: nothing is installed, the engine runs on.
    let thrown: unknown;
    try {
      engine.install("dial", { inputs: [], start: wrap() as (context: StartContext) => Promise<Worker> });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as TypeError).message).toMatch(message);
    expect(hasEntry(engine, "dial")).toBe(false);
    await expectStillWorking(engine);
  });

  it("accepts the edge values: retries 0 and Infinity, factor 1, minTimeout 0, maxTimeout Infinity or equal to minTimeout, undefined fields", () => {
    expect(() => withRetry(start, { retries: 0, factor: 1, minTimeout: 0, maxTimeout: 0 })).not.toThrow();
    expect(() => withRetry(start, { retries: Infinity, maxTimeout: Infinity })).not.toThrow();
    expect(() => withRetry(start, { retries: undefined, factor: undefined, minTimeout: undefined, maxTimeout: undefined, onFailedAttempt: undefined, clock: undefined })).not.toThrow();
    expect(() => withRetry(start)).not.toThrow();
  });
});
