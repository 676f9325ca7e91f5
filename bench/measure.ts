/**
 * Measuring tools: a monotonic timer, counters that say when they reach a
 * target, a clock that counts the timers the engine arms, forced GC, medians,
 * and a description of the machine.
 */
import os from "node:os";
import { performance, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks";
import v8 from "node:v8";
import type { Clock } from "../src/index.js";

/** Milliseconds, monotonic, sub-millisecond resolution. */
export const now = (): number => performance.now();

/** The size of the untimed warm-up run per shape (run.ts, alloc.ts), so that the first measured run is not also the JIT's first compiles. */
export const WARM_UP_SIZE = 3000;

/**
 * A count that can be awaited: `reach(n)` resolves with the time at which the
 * count reached `n`. Phases end at that instant (the last start the phase was
 * waiting for), not when a later event-loop turn notices it, so small graphs
 * are not charged a turn of latency.
 */
export class Tally {
  count = 0;
  #target = -1;
  #resolve: ((time: number) => void) | undefined;

  hit(): void {
    if (++this.count === this.#target) {
      const resolve = this.#resolve as (time: number) => void;
      this.#target = -1;
      this.#resolve = undefined;
      resolve(now());
    }
  }

  reach(target: number): Promise<number> {
    if (this.count >= target) return Promise.resolve(now());
    if (this.#resolve !== undefined) throw new Error("Tally.reach: already waiting");
    this.#target = target;
    return new Promise((resolve) => (this.#resolve = resolve));
  }
}

/**
 * The real clock, wrapped to count what the engine asks of it. With every
 * restart delay set to 0, no restart may go through a timer: every timer is
 * then the stuck-worker watchdog, which the engine arms for the earliest
 * deadline of the workers it is stopping (stopTimeout after a kill, or less
 * when it re-arms for a later deadline). A timer due well before any
 * watchdog could be (under half the stopTimeout) is a restart that went
 * through a timer instead of the ready queue: a bug.
 */
export class CountingClock implements Clock {
  /** The stopTimeout the engine was given: timers of this delay are watchdogs. */
  readonly stopTimeout: number;
  /** setTimeout calls for restarts (should stay 0). */
  restartTimers = 0;
  /** setTimeout calls for stuck-worker watchdogs. */
  watchdogTimers = 0;
  readonly #pending = new Set<unknown>();

  constructor(stopTimeout: number) {
    this.stopTimeout = stopTimeout;
  }

  /** Timers armed and neither fired nor cleared. */
  get pending(): number {
    return this.#pending.size;
  }

  now(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, ms: number): unknown {
    if (this.stopTimeout > 0 && ms > this.stopTimeout / 2 && ms <= this.stopTimeout) this.watchdogTimers++;
    else this.restartTimers++;
    const handle = setTimeout(() => {
      this.#pending.delete(handle);
      fn();
    }, ms);
    this.#pending.add(handle);
    return handle;
  }

  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle);
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  }

  /** Both counts, for a before/after difference. */
  counts(): TimerCounts {
    return { restart: this.restartTimers, watchdog: this.watchdogTimers };
  }
}

export interface TimerCounts {
  restart: number;
  watchdog: number;
}

export function timersSince(clock: CountingClock, before: TimerCounts): TimerCounts {
  return { restart: clock.restartTimers - before.restart, watchdog: clock.watchdogTimers - before.watchdog };
}

/**
 * `promise`, or a rejection after `ms`: an engine that loses a start would
 * otherwise hang the benchmark without saying where.
 */
export async function deadline<T>(promise: Promise<T>, what: string, ms = 120_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench: ${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Lets every queued promise callback run, and a few event-loop turns pass. */
export async function settle(turns = 2): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * A full GC, then a pause until V8's background work after it is over: the
 * GC's pause ends before V8 has swept the heap and returned the freed pages to
 * the system, which it does on background threads. Work timed at once shares
 * the machine's two cores with that, and waits for it inside its first
 * scavenge (`--trace-gc-nvp`: a 71 ms pause of which 3.9 ms was scavenging,
 * beside 437 ms of background unmapping). The sign that it is over is the
 * resident set: it falls by 80 to 90 MB 40 to 75 ms after the GC of a 100k
 * chain, then holds. So: poll every 10 ms until it has held (within 1 MB)
 * five times running; at least 50 ms, at most 2 s.
 * A fixed wait of 2 ms per MB in use (before 2026-12-02) was too short once
 * the heap had grown: a 100k chain kill took 262 to 328 ms after 20 ms, 148
 * to 157 ms after 500 ms, and 123 to 215 ms after this wait (126 to 190 ms
 * long), in runs of 4 in a process each.
 */
export async function collectAndSweep(): Promise<void> {
  collect();
  const started = performance.now();
  let rss = process.memoryUsage.rss();
  let steady = 0;
  while (steady < 5 && performance.now() - started < 2_000) {
    await new Promise<void>((resolve) => setTimeout(resolve, 10));
    const now = process.memoryUsage.rss();
    steady = Math.abs(now - rss) < 2 ** 20 ? steady + 1 : 0;
    rss = now;
  }
}

/** A full GC, then the heap in use: the only heap figure that is stable between runs. */
export function heapAfterGc(): number {
  collect();
  return process.memoryUsage().heapUsed;
}

/**
 * Full GCs until the heap stops shrinking (by 64 KB or more), then the heap
 * in use: a baseline that later GCs will not lower. (V8 drops the bytecode
 * of functions not run lately only after several GCs, and the weak objects
 * a GC frees are released by the next one; at 1,000 manifolds a megabyte
 * of that would be a thousand bytes per manifold.)
 */
export function settledHeap(): number {
  let heap = heapAfterGc();
  for (let i = 0; i < 10; i++) {
    const next = heapAfterGc();
    if (heap - next < 64 * 1024) return next;
    heap = next;
  }
  return heap;
}

/** A full GC (mark-compact), so that one run's garbage is not collected in the next run's time. */
export function collect(): void {
  exposedGc()();
}

/**
 * A minor GC (scavenge): the young garbage of one phase is not collected in
 * the next phase's time, and unlike a full GC it keeps optimised code.
 */
export function minorGc(): void {
  exposedGc()({ type: "minor" });
}

function exposedGc(): (options?: { type: "minor" | "major" }) => void {
  const gc = (globalThis as { gc?: (options?: { type: "minor" | "major" }) => void }).gc;
  if (gc === undefined) throw new Error("run with node --expose-gc (npm run bench does)");
  return gc;
}

/**
 * GC pauses as V8 reports them (a `PerformanceObserver` on entry type "gc"),
 * kept from construction on, so that a phase can ask afterwards for the
 * pauses that began inside it. Node delivers the entries asynchronously (it
 * makes each one in a callback after the GC, and buffers it for the
 * observer), so `pauses` first lets two event-loop turns pass.
 */
export class GcLog {
  #entries: PerformanceEntry[] = [];
  readonly #observer: PerformanceObserver;

  constructor() {
    this.#observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) this.#entries.push(entry);
    });
    this.#observer.observe({ entryTypes: ["gc"] });
  }

  /**
   * Durations (ms) of the GC pauses that began between `from` and `to`
   * (`performance.now()` times), oldest first. Forgets the pauses that began
   * before `from`, so ask in time order.
   */
  async pauses(from: number, to: number): Promise<number[]> {
    await settle(2);
    for (const entry of this.#observer.takeRecords()) this.#entries.push(entry);
    this.#entries = this.#entries.filter((entry) => entry.startTime >= from);
    return this.#entries.filter((entry) => entry.startTime <= to).map((entry) => entry.duration);
  }

  disconnect(): void {
    this.#observer.disconnect();
  }
}

/**
 * V8's heap in use, every space, without a GC. With a young generation too
 * large to fill (see alloc.ts) and no GC in between, the growth of this figure
 * is what was allocated.
 */
export function heapInUse(): number {
  return v8.getHeapStatistics().used_heap_size;
}

/**
 * The node flags alloc.ts needs: `gc()`, and a young generation of 512 MB semi-spaces
 * from the start, so that no scavenge happens inside a phase and heap growth
 * equals allocation.
 */
export const ALLOC_NODE_FLAGS: readonly string[] = ["--expose-gc", "--max-semi-space-size=512", "--min-semi-space-size=512"];

/** A command-line option's value that must be a positive integer (`option` names it in the error). */
export function positiveInteger(text: string, option: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${option} must be a positive integer (got ${JSON.stringify(text)})`);
  return value;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGb: number;
  node: string;
  v8: string;
  platform: string;
  /** 1-minute load average when the run began: other work on the machine makes timings noisy. */
  loadAverage: number;
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAverage: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
  };
}
