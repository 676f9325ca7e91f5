/**
 * Fixtures for the ports of Juju's dependency tests (juju/worker
 * `dependency/util_test.go`): Juju's engine fixture (the suite's `makeEngine`
 * with Juju's delays, and Juju's ShortWait, CleanKill and DirtyKill), and a
 * manifold harness that counts start attempts and started workers and lets a
 * test stop the current worker with an error of its choice. Everything else
 * comes from ../fixtures.ts.
 *
 * Juju's harness waits on real time (`AssertNoStart` sleeps ShortWait); here
 * time moves only when a test says so, and every expectation is on counts.
 */
import { expect } from "vitest";
import { MissingError, type Engine, type EngineConfig, type Manifold, type Reporter, type StartContext } from "../../src/index.js";
import { expectCleanStop, makeEngine, outcome, settle, TestClock, TestWorker } from "../fixtures.js";

/** Milliseconds the fixture engine waits before restarting after an unknown error (Juju: ShortWait / 2). */
export const ERROR_DELAY = 100;
/** Milliseconds the fixture engine waits before restarting after a bounce (Juju: ShortWait / 10). */
export const BOUNCE_DELAY = 10;
/** Longer than any delay the fixture uses without backoff: Juju's ShortWait. */
export const SHORT_WAIT = 1000;

/** Juju's engineFixture: an engine with short delays, no backoff and no jitter, on a fake clock. */
export class EngineFixture {
  readonly clock: TestClock;
  readonly engine: Engine;

  constructor(config: Omit<EngineConfig, "clock"> = {}, clock = new TestClock()) {
    const juju = { errorDelay: ERROR_DELAY, bounceDelay: BOUNCE_DELAY, backoffFactor: 0, maxDelay: 1000, backoffResetTime: 60_000 };
    const fixture = makeEngine({ ...juju, ...config }, clock);
    this.engine = fixture.engine;
    this.clock = fixture.clock;
  }

  /**
   * Moves time on by Juju's ShortWait, firing every timer that falls due.
   * Settles first, so that starts queued by a synchronous install have run
   * (and set their timers) before time jumps.
   */
  async shortWait(): Promise<void> {
    await settle();
    await this.clock.advance(SHORT_WAIT);
  }

  /** workertest.CleanKill: the engine stops without error and leaves no timer behind. */
  async cleanKill(): Promise<void> {
    this.engine.kill();
    await expectCleanStop(this.engine, this.clock);
  }

  /** workertest.DirtyKill / CheckKilled: the engine stops with an error, which is returned. */
  async dirtyKill(): Promise<unknown> {
    this.engine.kill();
    const result = await outcome(this.engine.wait());
    expect(result).toMatchObject({ settled: true, ok: false });
    expect(this.clock.pending).toEqual([]);
    return result.error;
  }
}

/** Juju's isFatalIf: only `expected` itself is fatal. */
export function isFatalIf(expected: unknown): (error: unknown) => boolean {
  return (actual) => actual === expected;
}

export function alwaysFatal(): boolean {
  return true;
}

/** Juju's minimalWorker: runs until killed or told to stop, and reports `{ key1: "hello there" }`. */
export class HarnessWorker extends TestWorker implements Reporter {
  /** True once its wait() has been settled (by kill, completion or failure). */
  stopped = false;

  override kill(): void {
    super.kill();
    if (this.stopOnKill) this.stopped = true;
  }

  override complete(): void {
    super.complete();
    this.stopped = true;
  }

  override fail(error: unknown): void {
    super.fail(error);
    this.stopped = true;
  }

  report(): Record<string, unknown> {
    return { key1: "hello there" };
  }
}

export interface HarnessOptions {
  /** Throw MissingError from start when a declared input is not running (Juju's default). */
  requireResources?: boolean;
  /** Workers ignore kill() and stop only when the test says so (newErrorIgnoringManifoldHarness). */
  ignoreExternalKill?: boolean;
}

/**
 * Juju's manifoldHarness. Its start function counts the attempt, throws
 * `startError` if set, checks each input with `hasResource` (Juju's
 * `Get(name, nil)`), and returns a fresh HarnessWorker.
 */
export class ManifoldHarness {
  readonly inputs: string[];
  readonly requireResources: boolean;
  readonly ignoreExternalKill: boolean;
  /** When set, every start attempt throws it. */
  startError: unknown = undefined;
  /** Every worker this harness started, oldest first. */
  readonly workers: HarnessWorker[] = [];
  /** For each start attempt, the inputs that were running when it was called. */
  readonly seen: string[][] = [];
  #attempts = 0;
  #starts = 0;

  constructor(inputs: string[] = [], options: HarnessOptions = {}) {
    this.inputs = inputs;
    this.requireResources = options.requireResources ?? true;
    this.ignoreExternalKill = options.ignoreExternalKill ?? false;
  }

  manifold(): Manifold<HarnessWorker> {
    return { inputs: [...this.inputs], start: (context) => this.#start(context) };
  }

  #start(context: StartContext): HarnessWorker {
    this.#attempts++;
    this.seen.push(this.inputs.filter((input) => context.hasResource(input)));
    if (this.startError !== undefined) throw this.startError;
    for (const input of this.inputs) {
      if (this.requireResources && !context.hasResource(input)) {
        throw new MissingError(`"${input}" not running: dependency not available`);
      }
    }
    const worker = new HarnessWorker(context.name, { stopOnKill: !this.ignoreExternalKill });
    this.workers.push(worker);
    this.#starts++;
    return worker;
  }

  /** Workers started since the last call (Juju's AssertOneStart is `takeStarts() === 1`). */
  takeStarts(): number {
    const starts = this.#starts;
    this.#starts = 0;
    return starts;
  }

  /** Start function calls since the last call (Juju's AssertStartAttempt). */
  takeAttempts(): number {
    const attempts = this.#attempts;
    this.#attempts = 0;
    return attempts;
  }

  /** The newest worker that has not stopped. */
  get current(): HarnessWorker | undefined {
    const last = this.workers[this.workers.length - 1];
    return last !== undefined && !last.stopped ? last : undefined;
  }

  /** Juju's InjectError: the running worker stops with `error`, or cleanly for `null`. */
  async injectError(error: unknown): Promise<void> {
    const worker = this.current;
    if (worker === undefined) throw new Error("ManifoldHarness.injectError: no worker is running");
    if (error === null) worker.complete();
    else worker.fail(error);
    await settle();
  }
}

/** Starts a minimal worker that runs until killed (Juju's startMinimalWorker). */
export function startMinimalWorker(): HarnessWorker {
  return new HarnessWorker("minimal");
}
