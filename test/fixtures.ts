/**
 * The test suite's one fixture module. Every helper a test file could share
 * lives here, once; test files keep only what is about their own subject
 * (a worker that logs its kills for the shutdown tests, the Juju harness for
 * the Juju ports, the model for the property tests).
 *
 * - Time and settling: `TestClock` and `settle`, re-exported from the testing
 *   kit (src/testing.ts); {@link iso}.
 * - Watching promises without awaiting them: {@link deferred}, {@link track},
 *   {@link outcome}; errors: {@link thrownBy}, {@link failureOf}.
 * - Guarding a file against unhandled rejections: {@link failOnUnhandledRejections}.
 * - Engines: {@link makeEngine} (an engine on a fake clock with no jitter and
 *   no bounce delay), {@link stop}, {@link killAndSettle},
 *   {@link expectCleanStop}, {@link expectStillWorking}, {@link entry}.
 * - Workers and manifolds: {@link TestWorker}, {@link idleWorker},
 *   {@link valueManifold}, {@link recording}.
 *
 * Tests never sleep: they move the fake clock and settle. Build an engine with
 * `new Engine(...)` inline only when the constructor or the configuration is
 * what the test is about (or when it needs the real clock).
 */
import { afterEach, beforeEach, expect } from "vitest";
import { settle, TestClock } from "../src/testing.js";
import {
  createWorker,
  Engine,
  valueWorker,
  type EngineConfig,
  type InputName,
  type Manifold,
  type ManifoldReport,
  type Worker,
} from "../src/index.js";

// ------------------------------------------------------------------ time and settling

// The clock and `settle` are the public testing kit's (manifold-engine/testing),
// so the suite runs on what users get: TestClock holds every timer until the
// test moves time (advance, fireNext, runAll; pending and delays to look), and
// settle(turns = 10) lets queued promise callbacks run for that many turns of
// the event loop (each drains the microtask queue; 10 also let the engine's own
// yields, a restart with no delay waiting one turn, run to their end). The
// property harness settles one turn at a time, so that its model checks every
// state in between.
export { settle, TestClock, type TestTimer } from "../src/testing.js";
/** @deprecated The suite's name for {@link TestClock} before the testing kit existed; write TestClock. */
export { TestClock as FakeClock } from "../src/testing.js";

/** `ms` (a clock reading) as the ISO 8601 UTC string the report uses. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

// ------------------------------------------------------------------ promises and errors

/** A promise with its resolve and reject, for tests that settle things by hand. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

/** A promise the test settles by hand. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * What {@link track} has seen of a promise so far: not `settled` until it
 * settles, then `ok` with its `value`, or not `ok` with its `error`. A plain
 * record, so `toEqual({ settled: false, ok: false })` compares it.
 */
export interface Tracked<T = unknown> {
  readonly settled: boolean;
  readonly ok: boolean;
  readonly value: T | undefined;
  readonly error: unknown;
}

/**
 * Watches a promise without awaiting it, so a test can assert that it has NOT
 * settled (a hang shows up as a failure, not a timeout). The promise is
 * handled: its rejection is never unhandled.
 */
export function track<T>(promise: Promise<T>): Tracked<T> {
  const record: { -readonly [K in keyof Tracked<T>]: Tracked<T>[K] } = { settled: false, ok: false, value: undefined, error: undefined };
  promise.then(
    (value) => {
      record.settled = true;
      record.ok = true;
      record.value = value;
    },
    (error: unknown) => {
      record.settled = true;
      record.error = error;
    },
  );
  return record;
}

/** Lets pending callbacks run ({@link settle}), then says how `promise` stands, without ever waiting for it. */
export async function outcome<T>(promise: Promise<T>): Promise<Tracked<T>> {
  const tracked = track(promise);
  await settle();
  return tracked;
}

/** The error `fn` throws; fails the test if it returns instead. */
export function thrownBy(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected the call to throw, but it returned");
}

/** The error a call throws or the promise it returns rejects with; fails the test if it neither throws nor rejects. */
export async function failureOf(call: () => unknown): Promise<Error> {
  let result: unknown;
  try {
    result = call();
  } catch (error) {
    return error as Error;
  }
  if (result instanceof Promise) {
    try {
      await result;
    } catch (error) {
      return error as Error;
    }
  }
  throw new Error(`expected the call to fail; it returned ${String(result)}`);
}

// ------------------------------------------------------------------ unhandled rejections

/** Collects the reasons of unhandled rejections while it listens. */
export class RejectionLog {
  /** Every reason seen since the last {@link RejectionLog.clear}. */
  readonly reasons: unknown[] = [];
  readonly #onRejection = (reason: unknown): void => {
    this.reasons.push(reason);
  };

  listen(): void {
    process.on("unhandledRejection", this.#onRejection);
  }

  stop(): void {
    process.off("unhandledRejection", this.#onRejection);
  }

  clear(): void {
    this.reasons.length = 0;
  }
}

/**
 * Rules 7 and 10: nothing the engine does may surface as an unhandled
 * rejection. Call at the top of a test file: every test in it fails if one
 * arrives while it runs. Pass a `log` to read it during the test too (the
 * property harness checks it after every step).
 */
export function failOnUnhandledRejections(log = new RejectionLog()): RejectionLog {
  beforeEach(() => {
    log.clear();
    log.listen();
  });
  afterEach(async () => {
    await settle();
    log.stop();
    expect(log.reasons, "unhandled rejections during the test").toEqual([]);
  });
  return log;
}

// ------------------------------------------------------------------ engines

/** An engine and the fake clock it runs on. */
export interface TestEngine {
  readonly engine: Engine;
  readonly clock: TestClock;
}

/**
 * An engine on a fake clock, with no jitter and no bounce delay (so that a
 * test sees every delay it did not ask for), then `config` on top. Pass a
 * `clock` to start time elsewhere.
 */
export function makeEngine(config: Omit<EngineConfig, "clock"> = {}, clock = new TestClock()): TestEngine {
  return { engine: new Engine({ jitter: 0, bounceDelay: 0, ...config, clock }), clock };
}

/**
 * Defines `field` on `target` as an enumerable getter that answers `first`
 * the first time it is read and `later` every time after, and returns how
 * many reads there have been so far: for checking that the engine reads a
 * field once, when it checks it.
 */
export function fieldThatChanges(target: object, field: string, first: unknown, later: unknown): () => number {
  let reads = 0;
  Object.defineProperty(target, field, { enumerable: true, configurable: true, get: () => (++reads === 1 ? first : later) });
  return () => reads;
}

/** kill(), then await wait(): the end of a test that has checked what it wanted. */
export async function stop(engine: Engine): Promise<void> {
  engine.kill();
  await engine.wait();
}

/**
 * kill(), then let everything kill() sets in motion happen (workers that stop
 * at once stop, their inputs are killed in turn), so that the test looks at
 * the engine, or moves the clock, only once it has done all it can without
 * time passing. Returns wait()'s outcome, tracked.
 */
export async function killAndSettle(engine: Engine): Promise<Tracked<void>> {
  engine.kill();
  const stopped = track(engine.wait());
  await settle();
  return stopped;
}

/** Expects the engine to have stopped cleanly: wait() resolved (after settling, never hanging), no timer left, state stopped. */
export async function expectCleanStop(engine: Engine, clock: TestClock): Promise<void> {
  expect(await outcome(engine.wait()), "engine.wait()").toEqual({ settled: true, ok: true, value: undefined });
  expect(clock.pending, "timers left after wait()").toEqual([]);
  expect(engine.report().state).toBe("stopped");
}

let probes = 0;

/** Installs a fresh manifold and checks that it starts: the engine still works. */
export async function expectStillWorking(engine: Engine): Promise<void> {
  const name = `probe-${++probes}`;
  let started = false;
  engine.install(name, {
    inputs: [],
    start: () => {
      started = true;
      return valueWorker(0);
    },
  });
  await settle();
  expect(started, `${name} started`).toBe(true);
}

/** The report entry of `name` (found as an own key, so `__proto__` works too); throws when there is none. */
export function entry(engine: Engine, name: string): ManifoldReport {
  const found = Object.getOwnPropertyDescriptor(engine.report().manifolds, name)?.value as ManifoldReport | undefined;
  if (found === undefined) throw new Error(`no report entry for ${JSON.stringify(name)}; expect(hasEntry(...)) when it may be absent`);
  return found;
}

/** Whether the report has an entry for `name` (an own key). */
export function hasEntry(engine: Engine, name: string): boolean {
  return Object.hasOwn(engine.report().manifolds, name);
}

// ------------------------------------------------------------------ workers and manifolds

/** A worker the test stops by hand, that records whether it was killed. */
export class TestWorker implements Worker {
  killed = false;
  #resolve!: () => void;
  #reject!: (error: unknown) => void;
  readonly #done: Promise<void>;
  /** When true, kill() makes wait() resolve at once; otherwise the test settles it. */
  readonly stopOnKill: boolean;

  constructor(
    readonly label = "worker",
    options: { stopOnKill?: boolean | undefined } = {},
  ) {
    this.stopOnKill = options.stopOnKill ?? true;
    this.#done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#done.catch(() => undefined);
  }

  kill(): void {
    this.killed = true;
    if (this.stopOnKill) this.#resolve();
  }

  wait(): Promise<void> {
    return this.#done;
  }

  /** The worker stops by itself, cleanly. */
  complete(): void {
    this.#resolve();
  }

  /** The worker stops by itself with `error`. */
  fail(error: unknown): void {
    this.#reject(error);
  }
}

/** A worker that runs until killed. */
export function idleWorker(): Worker {
  return createWorker((signal) => new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve())));
}

/** A manifold whose worker holds `value` and offers it as output. */
export function valueManifold<T>(value: T, inputs: InputName[] = []): Manifold<Worker & { readonly value: T }, T> {
  return { inputs, start: () => valueWorker(value), output: (worker) => worker.value };
}

/**
 * A manifold that records each start call in `log` as `name(inputs running)`,
 * e.g. `b(a)` or `b()`, and offers its name as output.
 */
export function recording(log: string[], name: string, inputs: string[] = []): Manifold<Worker & { readonly value: string }, string> {
  return {
    inputs,
    start: (context) => {
      log.push(`${name}(${inputs.filter((input) => context.hasResource(input)).join(",")})`);
      return valueWorker(name);
    },
    output: (worker) => worker.value,
  };
}

/**
 * A manifold whose every start makes a new TestWorker the test controls
 * (kept in `workers`, newest last), offering the worker's label as output.
 */
export function controlled(inputs: string[] = []): {
  workers: TestWorker[];
  manifold: { inputs: string[]; start: () => TestWorker; output: (worker: TestWorker) => string };
} {
  const workers: TestWorker[] = [];
  return {
    workers,
    manifold: {
      inputs,
      start: () => {
        const worker = new TestWorker();
        workers.push(worker);
        return worker;
      },
      output: (worker) => worker.label,
    },
  };
}

/** Three typos of `key`: a wrong case, a letter dropped, two different neighbours swapped (from the middle on). */
export function typosOf(key: string): string[] {
  let at = Math.floor(key.length / 2);
  while (key[at] === key[at - 1]) at++;
  return [key[0]?.toUpperCase() + key.slice(1), key.slice(0, -1), key.slice(0, at - 1) + key[at] + key[at - 1] + key.slice(at + 1)];
}
