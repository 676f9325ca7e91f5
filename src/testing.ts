/**
 * The testing kit, `manifold-engine/testing`: a clock whose time moves only
 * when the test says so, and helpers that wait for a manifold's state or for
 * the engine to go idle by settling promises and firing that clock's timers,
 * never by sleeping. Tests written with it are deterministic: the same test
 * sees the same delays, starts and reports on every run and every machine.
 *
 * It imports nothing from the engine at run time (only types), so one copy of
 * the kit works with the ESM and the CommonJS build of the engine alike.
 */
import type { Clock } from "./config.js";
import type { EngineReport, ManifoldReport } from "./report.js";

// The engine types the kit's signatures use (and those they contain), so that
// this entry point is complete on its own.
export type { FailureRecord } from "./bookkeeping.js";
export type { Clock } from "./config.js";
export type { EngineReport, ManifoldReport, ResourceLogEntry } from "./report.js";
export type { ProgressReport, QuarantineReport } from "./supervision.js";

/**
 * The real `setImmediate`, taken when this module loads: a test that later
 * installs fake timers (`vi.useFakeTimers()`, sinon) would otherwise make
 * {@link settle} wait forever.
 */
const realSetImmediate: (callback: () => void) => unknown = globalThis.setImmediate.bind(globalThis);

/** One timer a {@link TestClock} holds: not yet fired nor cleared. */
export interface TestTimer {
  /** The handle `setTimeout` returned (pass it to `clearTimeout`). */
  readonly id: number;
  /** The clock time at which it falls due. */
  readonly due: number;
  /** The delay it was set with, as given. */
  readonly delay: number;
  /** What it calls when it fires. */
  readonly fn: () => void;
}

/** Options of {@link TestClock.runAll}. */
export interface RunAllOptions {
  /** Fire at most this many timers; more means something reschedules forever. Default 10,000. */
  readonly limit?: number | undefined;
}

/**
 * Lets every queued promise callback, and the callbacks those queue, run: a
 * number of turns of the event loop (10 by default), each of which empties
 * the microtask queue. Uses the real `setImmediate` even under fake timers.
 *
 * @example
 * ```ts
 * engine.install("a", manifold({ inputs: [], start: () => valueWorker(1) }));
 * await settle();
 * expect(engine.report().manifolds.a?.state).toBe("started");
 * ```
 */
export async function settle(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => realSetImmediate(resolve));
}

/**
 * A {@link Clock} whose time moves only when the test says so. Give it to the
 * engine (`new Engine({ clock })`); the engine's restart delays, backoff and
 * stop timeouts then become timers the test can inspect (`pending`,
 * `delays`) and fire (`advance`, `fireNext`, `runAll`).
 *
 * Guarantees: timers fire in order of due time (equal times in the order they
 * were set); time never goes backwards; promises are settled before the first
 * timer fires and after each one, so whatever a timer starts has run before
 * the next fires; concurrent `advance`/`fireNext`/`runAll` calls run one after
 * the other, in call order.
 *
 * @example
 * ```ts
 * const clock = new TestClock();
 * const engine = new Engine({ clock, errorDelay: 1000, jitter: 0 });
 * engine.install("flaky", manifold({ inputs: [], start: () => { throw new Error("no") } }));
 * await settle();
 * expect(clock.pending.map((timer) => timer.delay)).toEqual([1000]);
 * await clock.advance(1000); // the second attempt runs
 * ```
 */
export class TestClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, TestTimer>();
  /** The end of the last queued advance/fireNext/runAll: each waits for the one before. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Every delay ever passed to `setTimeout`, in order (clear it with `delays.length = 0`). */
  readonly delays: number[] = [];

  /**
   * @param start - the clock's initial time in ms since the epoch; default
   * 2026-01-01T00:00:00Z, so report times are the same on every run.
   * @throws TypeError if `start` is not a finite number.
   */
  constructor(start: number = Date.UTC(2026, 0, 1)) {
    if (typeof start !== "number" || !Number.isFinite(start)) {
      throw new TypeError(`new TestClock(start): start must be a finite number of ms since the epoch (got ${String(start)})`);
    }
    this.#now = start;
  }

  /** The clock's current time, in ms since the epoch. */
  now(): number {
    return this.#now;
  }

  /**
   * Holds `fn` until the clock reaches now + `ms` (a negative or non-finite
   * `ms` counts as 0, as with the global timers). Returns the timer's id.
   */
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.delays.push(ms);
    const wait = typeof ms === "number" && ms > 0 && Number.isFinite(ms) ? ms : 0;
    this.#timers.set(id, { id, due: this.#now + wait, delay: ms, fn });
    return id;
  }

  /** Drops a pending timer; an unknown or already fired handle is ignored. */
  clearTimeout(handle: unknown): void {
    if (typeof handle === "number") this.#timers.delete(handle);
  }

  /** The timers not yet fired or cleared, earliest first (a fresh array each time). */
  get pending(): TestTimer[] {
    return [...this.#timers.values()].sort((a, b) => a.due - b.due || a.id - b.id);
  }

  /**
   * Settles promises, then moves time forward by `ms`, firing every timer
   * that falls due on the way (timers those set included), in order, and
   * settling promises after each.
   * @throws TypeError if `ms` is negative or not a finite number; rethrows what a timer's callback throws.
   */
  advance(ms: number): Promise<void> {
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
      return Promise.reject(new TypeError(`TestClock.advance(ms): ms must be a finite number >= 0 (got ${String(ms)})`));
    }
    return this.#enqueue(async () => {
      await settle();
      const target = this.#now + ms;
      for (let next = this.#earliest(); next !== undefined && next.due <= target; next = this.#earliest()) {
        await this.#fire(next);
      }
      this.#now = Math.max(this.#now, target);
      await settle();
    });
  }

  /**
   * Moves time to the earliest pending timer and fires it (after settling
   * promises, and settling them again after), returning its delay.
   * @throws Error if no timer is pending.
   */
  fireNext(): Promise<number> {
    return this.#enqueue(async () => {
      await settle();
      const next = this.#earliest();
      if (next === undefined) {
        throw new Error("TestClock.fireNext(): no timer is pending; check clock.pending before firing, or use advance(ms)");
      }
      await this.#fire(next);
      return next.delay;
    });
  }

  /**
   * Fires pending timers in order, moving time to each, until none is left
   * (timers they set included); returns how many fired.
   * @throws Error if more than `limit` timers fire: something sets a new
   * timer every time (a manifold that fails on every start, say); move time
   * by a bounded amount with `advance(ms)` instead.
   */
  runAll(options: RunAllOptions = {}): Promise<number> {
    const limit = options.limit ?? 10_000;
    if (typeof limit !== "number" || !(limit >= 0)) {
      return Promise.reject(new TypeError(`TestClock.runAll({ limit }): limit must be a number >= 0 (got ${String(limit)})`));
    }
    return this.#enqueue(async () => {
      await settle();
      let fired = 0;
      for (let next = this.#earliest(); next !== undefined; next = this.#earliest()) {
        if (fired >= limit) {
          throw new Error(
            `TestClock.runAll(): ${this.#timers.size} timer(s) still pending after firing ${fired}: something sets a new timer ` +
              "each time one fires (a manifold failing on every start?); move time by a bounded amount with advance(ms)",
          );
        }
        await this.#fire(next);
        fired++;
      }
      return fired;
    });
  }

  #earliest(): TestTimer | undefined {
    let earliest: TestTimer | undefined;
    for (const timer of this.#timers.values()) {
      if (earliest === undefined || timer.due < earliest.due || (timer.due === earliest.due && timer.id < earliest.id)) earliest = timer;
    }
    return earliest;
  }

  async #fire(timer: TestTimer): Promise<void> {
    this.#timers.delete(timer.id);
    this.#now = Math.max(this.#now, timer.due);
    timer.fn();
    await settle();
  }

  /** Runs `task` after every earlier queued task has finished (whether it failed or not). */
  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(task, task);
    this.#queue = result.catch(() => undefined);
    return result;
  }
}

/** What the waiting helpers need of an engine: its report (any `Engine` has one). */
export interface ReportingEngine {
  /** The engine's report, which the helpers read after each round of settling. */
  report(): EngineReport;
}

/** Options of {@link waitFor}, {@link waitForState} and {@link waitForIdle}. */
export interface WaitOptions {
  /**
   * The engine's clock. With it, `waitFor` and `waitForState`, finding
   * nothing left to settle, fire the clock's next timer (moving time to it)
   * and keep waiting; without it, time never moves and they give up instead.
   * `waitForIdle` never moves time, but counts a manifold waiting for one of
   * this clock's timers as idle.
   */
  readonly clock?: TestClock | undefined;
  /** Move the clock by at most this many ms in all. Default 600,000 (ten minutes of clock time). */
  readonly maxTime?: number | undefined;
  /** Give up after this many rounds of settling (each a {@link settle}). Default 1,000. */
  readonly maxRounds?: number | undefined;
}

/** Options of {@link waitFor}. */
export interface WaitForOptions extends WaitOptions {
  /** What is awaited, for the rejection's message (e.g. `"db to start twice"`). */
  readonly description?: string | undefined;
}

/** Rounds in a row with an unchanged report after which promises count as settled, and a timer may fire. */
const QUIET_ROUNDS = 2;
/**
 * Rounds in a row with an unchanged report (and no timer to fire) after which
 * a helper gives up. More than QUIET_ROUNDS, so that a start waiting on quick
 * real I/O (a file read, a local socket) usually gets there first.
 */
const GIVE_UP_ROUNDS = 20;

/**
 * What counts as a change of the report, between two rounds: everything but
 * the workers' own reports (a worker may count, or read a real clock, for
 * ever) and uptimes (which grow with the engine's clock, for ever if it is
 * the wall clock).
 */
function fingerprint(report: EngineReport): string {
  return JSON.stringify(report, (key, value: unknown) => (key === "report" || key === "uptimeMs" ? undefined : value));
}

/** True when a manifold's state changes only once time moves (or never). */
function isResting(entry: ManifoldReport): boolean {
  return entry.state === "started" || entry.state === "stopped" || entry.stuck === true;
}

function describeState(name: string, entry: ManifoldReport | undefined): string {
  if (entry === undefined) return `manifold ${JSON.stringify(name)} is not installed`;
  return `manifold ${JSON.stringify(name)} is ${JSON.stringify(entry.state)}${entry.error === undefined ? "" : ` (error: ${entry.error})`}`;
}

function entryOf(report: EngineReport, name: string): ManifoldReport | undefined {
  return Object.prototype.hasOwnProperty.call(report.manifolds, name) ? report.manifolds[name] : undefined;
}

function checkOptions(helper: string, options: WaitOptions): { maxTime: number; maxRounds: number } {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`${helper}: options must be an object such as { clock } (got ${String(options)})`);
  }
  const maxTime = options.maxTime ?? 600_000;
  const maxRounds = options.maxRounds ?? 1_000;
  if (typeof maxTime !== "number" || !(maxTime >= 0)) {
    throw new TypeError(`${helper}: options.maxTime must be a number of ms >= 0 (got ${String(maxTime)})`);
  }
  if (typeof maxRounds !== "number" || !(maxRounds >= 1)) {
    throw new TypeError(`${helper}: options.maxRounds must be a number >= 1 (got ${String(maxRounds)})`);
  }
  // By shape, not instanceof: a TestClock of the other build (ESM or CommonJS) works as well.
  const clock = options.clock as Partial<TestClock> | undefined;
  if (clock !== undefined && (clock === null || typeof clock.fireNext !== "function" || typeof clock.now !== "function" || !Array.isArray(clock.pending))) {
    throw new TypeError(`${helper}: options.clock must be the TestClock the engine was made with (got ${String(options.clock)})`);
  }
  return { maxTime, maxRounds };
}

function checkEngine(helper: string, engine: ReportingEngine): void {
  if (engine === null || typeof engine !== "object" || typeof engine.report !== "function") {
    throw new TypeError(`${helper}: engine must be an Engine (something with report()) (got ${String(engine)})`);
  }
}

/**
 * The loop behind every helper: settle, look at the report, and when it has
 * stopped changing, fire the clock's next timer (if `moveTime`), or give up
 * with a message saying what was awaited, what was seen, and why nothing
 * more will happen.
 */
async function drive<R>(
  helper: string,
  engine: ReportingEngine,
  check: (report: EngineReport, quietRounds: number) => R | undefined,
  describe: (report: EngineReport) => string,
  options: WaitOptions,
  moveTime: boolean,
): Promise<R> {
  checkEngine(helper, engine);
  const { maxTime, maxRounds } = checkOptions(helper, options);
  const clock = options.clock;
  const startTime = clock?.now() ?? 0;
  let last = "";
  let quiet = 0;
  for (let round = 0; round < maxRounds; round++) {
    await settle();
    const report = engine.report();
    const print = fingerprint(report);
    quiet = print === last ? quiet + 1 : 0;
    last = print;
    const result = check(report, quiet);
    if (result !== undefined) return result;
    if (quiet < QUIET_ROUNDS) continue;
    // Promises have settled and nothing changes: only time can move things on.
    const next = clock?.pending[0];
    const timerAllowed = next !== undefined && next.due - startTime <= maxTime;
    if (moveTime && clock !== undefined && timerAllowed) {
      await clock.fireNext();
      quiet = 0;
      continue;
    }
    if (report.state !== "stopped" && quiet < GIVE_UP_ROUNDS) continue;
    const why =
      report.state === "stopped"
        ? "the engine has stopped"
        : !moveTime
          ? "promises have settled, and it is waiting for something the clock does not drive (a real timer, I/O, a promise nobody settles)"
          : clock === undefined
            ? "promises have settled and no clock was given to move time (pass the engine's TestClock as options.clock)"
            : next === undefined
              ? "promises have settled and no timer is pending"
              : `the next timer is due after options.maxTime (${maxTime} ms)`;
    throw new Error(`${describe(report)}; nothing more will happen: ${why}`);
  }
  throw new Error(`${describe(engine.report())}, after ${maxRounds} rounds of settling (options.maxRounds): the report kept changing`);
}

/**
 * Waits until `predicate(engine.report())` is true, and resolves with that
 * report. Between checks it settles promises; once the report has stopped
 * changing it fires the next timer of `options.clock`, if one is due within
 * `maxTime`. It never sleeps and never hangs.
 * @throws Error (as a rejection) with the description, once nothing is left
 * to happen (the engine stopped, no timer is pending) or `maxRounds` is used up.
 *
 * @example
 * ```ts
 * // the second start of "api", after its first worker failed and errorDelay passed
 * await waitFor(engine, (report) => report.manifolds.api?.startCount === 2, { clock, description: "api to start twice" });
 * ```
 */
export function waitFor(engine: ReportingEngine, predicate: (report: EngineReport) => boolean, options: WaitForOptions = {}): Promise<EngineReport> {
  if (typeof predicate !== "function") {
    return Promise.reject(new TypeError(`waitFor(engine, predicate): predicate must be a function of the report (got ${String(predicate)})`));
  }
  const description = options?.description ?? "the predicate to hold";
  return drive(
    "waitFor",
    engine,
    (report) => (predicate(report) ? report : undefined),
    () => `waitFor: waiting for ${description}, but it does not hold`,
    options,
    true,
  );
}

/**
 * Waits until manifold `name` is in `state` (as `engine.report()` shows it),
 * settling promises and firing the clock's timers as needed; resolves with
 * the manifold's report entry.
 * @throws Error (as a rejection) naming the manifold, the state awaited and
 * the state it is in, when it can no longer get there: the engine stopped,
 * or nothing is left to settle and no timer (within `maxTime`) is pending.
 *
 * @example
 * ```ts
 * const clock = new TestClock();
 * const engine = new Engine({ clock });
 * engine.install("api", apiManifold);
 * const entry = await waitForState(engine, "api", "started", { clock });
 * expect(entry.startCount).toBe(1);
 * ```
 */
export function waitForState(
  engine: ReportingEngine,
  name: string,
  state: ManifoldReport["state"],
  options: WaitOptions = {},
): Promise<ManifoldReport> {
  if (typeof name !== "string" || name.length === 0) {
    return Promise.reject(new TypeError(`waitForState(engine, name, state): name must be a manifold name (got ${String(name)})`));
  }
  if (!["starting", "started", "stopping", "stopped"].includes(state)) {
    return Promise.reject(
      new TypeError(`waitForState(engine, name, state): state must be "starting", "started", "stopping" or "stopped" (got ${String(state)})`),
    );
  }
  return drive(
    "waitForState",
    engine,
    (report) => {
      const entry = entryOf(report, name);
      return entry?.state === state ? entry : undefined;
    },
    (report) => `waitForState: waiting for manifold ${JSON.stringify(name)} to be ${JSON.stringify(state)}, but ${describeState(name, entryOf(report, name))}`,
    options,
    true,
  );
}

/**
 * Waits until the engine is idle at the current time: promises have settled,
 * the report has stopped changing, and every manifold is `started`,
 * `stopped` or stuck, or a timer of `options.clock` is pending (a manifold
 * waiting out a restart delay). Time is not moved. Resolves with the report.
 * @throws Error (as a rejection) naming a manifold that stays `starting` or
 * `stopping` with nothing left to settle and no timer pending (its start
 * function or worker waits for something the clock does not drive: a real
 * timer, I/O, a promise nobody settles), or if the report keeps changing for
 * `maxRounds`.
 *
 * @example
 * ```ts
 * engine.installAll(manifolds);
 * const report = await waitForIdle(engine, { clock });
 * expect(report.manifolds.api?.state).toBe("started");
 * ```
 */
export function waitForIdle(engine: ReportingEngine, options: WaitOptions = {}): Promise<EngineReport> {
  const busy = (report: EngineReport): [string, ManifoldReport] | undefined =>
    Object.entries(report.manifolds).find(([, entry]) => !isResting(entry));
  return drive(
    "waitForIdle",
    engine,
    (report, quiet) => {
      if (quiet < QUIET_ROUNDS) return undefined;
      const clock = options?.clock;
      return busy(report) === undefined || (clock !== undefined && clock.pending.length > 0) ? report : undefined;
    },
    (report) => {
      const [name, entry] = busy(report) ?? ["", undefined];
      return `waitForIdle: the engine is not idle: ${describeState(name, entry)}`;
    },
    options,
    false,
  );
}
