/**
 * Shared test tools: a fake clock that records and fires timers on demand, a
 * way to let every pending promise callback run, and workers tests control.
 */
import { afterEach, beforeEach, expect } from "vitest";
import { createWorker, valueWorker, type Clock, type Engine, type Worker } from "../src/index.js";

/** A timer the fake clock holds. */
export interface FakeTimer {
  readonly id: number;
  readonly due: number;
  readonly delay: number;
  readonly fn: () => void;
}

/** A Clock whose time moves only when the test says so. */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, FakeTimer>();
  /** Every delay ever passed to setTimeout, in order. */
  readonly delays: number[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.delays.push(ms);
    this.#timers.set(id, { id, due: this.#now + ms, delay: ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Timers not yet fired or cleared, earliest first. */
  get pending(): FakeTimer[] {
    return [...this.#timers.values()].sort((a, b) => a.due - b.due || a.id - b.id);
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order, settling promises between them. */
  async advance(ms: number): Promise<void> {
    // Let starts queued by synchronous installs run first, at the current time.
    await settle();
    const target = this.#now + ms;
    for (;;) {
      const next = this.pending[0];
      if (next === undefined || next.due > target) break;
      this.#timers.delete(next.id);
      this.#now = Math.max(this.#now, next.due);
      next.fn();
      await settle();
    }
    this.#now = target;
    await settle();
  }

  /** Fires the earliest pending timer (moving time to it) and returns its delay. */
  async fireNext(): Promise<number> {
    const next = this.pending[0];
    if (next === undefined) throw new Error("FakeClock.fireNext: no timer is pending");
    await this.advance(next.due - this.#now);
    return next.delay;
  }
}

/** Lets every queued promise callback (and the callbacks they queue) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A worker the test stops by hand, that records whether it was killed. */
export class TestWorker implements Worker {
  killed = false;
  #resolve!: () => void;
  #reject!: (error: unknown) => void;
  readonly #done: Promise<void>;
  /** When true, kill() makes wait() resolve at once; otherwise the test settles it. */
  readonly stopOnKill: boolean;

  constructor(readonly label = "worker", options: { stopOnKill?: boolean } = {}) {
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

/** A promise with its resolve and reject, for tests that settle things by hand. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** What {@link track} saw of a promise so far. */
export type Outcome = { settled: boolean; ok: boolean; error: unknown };

/** Watches a promise without awaiting it, so a test can assert it has NOT settled (a hang shows up as a failure, not a timeout). */
export function track(promise: Promise<unknown>): Outcome {
  const outcome: Outcome = { settled: false, ok: false, error: undefined };
  promise.then(
    () => {
      outcome.settled = true;
      outcome.ok = true;
    },
    (error: unknown) => {
      outcome.settled = true;
      outcome.error = error;
    },
  );
  return outcome;
}

/**
 * Rules 7 and 10: nothing the engine does may surface as an unhandled
 * rejection. Call at the top of a test file: every test in it is checked.
 */
export function failOnUnhandledRejections(): void {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  beforeEach(() => {
    unhandled.length = 0;
    process.on("unhandledRejection", onUnhandled);
  });
  afterEach(async () => {
    await settle();
    process.off("unhandledRejection", onUnhandled);
    expect(unhandled, "unhandled rejections during the test").toEqual([]);
  });
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
