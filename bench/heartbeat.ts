/**
 * The cost of heartbeats (issue 11): `node --expose-gc --import tsx bench/heartbeat.ts [-- options]`.
 * Builds nothing: the engine comes from src/ through tsx, unless
 * BENCH_TARGET says otherwise (see engine.ts; `BENCH_TARGET=dist` after
 * `npm run build` measures the built package).
 *
 * 1. Fake clock: `--manifolds` manifolds (10,000) with a heartbeatTimeout of
 *    `--timeout` ms (50), each heartbeating every `--period` ms (10) of a fake
 *    clock, for `--ticks` ticks of 1 ms (10,000): manifold i beats at the
 *    ticks where (tick + i) % period is 0, so each tick a tenth of them beat.
 *    Measured per run (medians of `--runs`, after one warm-up run):
 *    - the heartbeat calls alone, against the same loop calling as many
 *      distinct no-op closures: the engine's added cost per heartbeat;
 *    - the whole run: the calls, the clock's ticks, and every deadline the
 *      engine handles on its one timer (each comes once per timeout period
 *      per manifold at most, finds a later heartbeat, and moves on): the
 *      heartbeats per second the engine turns over, end to end;
 *    - the timers it armed and the heartbeat deadlines it handled;
 *    - the heap allocated per heartbeat (bytes in use after 100,000 calls,
 *      less before, with no GC in between).
 * 2. Real time: `--workers` workers (1,000) on the system clock (deadlines on
 *    performance.now()), each calling heartbeat() in bursts of 100 as fast as
 *    it can, yielding (setImmediate) between bursts, for `--seconds` s (2);
 *    against the same workers calling a no-op with no engine.
 *
 * Progress goes to stderr, the tables to stdout as markdown.
 */
import { parseArgs } from "node:util";
import type { Clock, Manifold, Worker } from "../src/index.js";
import { heapAfterGc, machine, median, now, settle } from "./measure.js";

process.env["BENCH_TARGET"] ??= "src";
const { Engine, createWorker, target } = await import("./engine.js");

const { values } = parseArgs({
  options: {
    manifolds: { type: "string", default: "10000" },
    ticks: { type: "string", default: "10000" },
    period: { type: "string", default: "10" },
    timeout: { type: "string", default: "50" },
    runs: { type: "string", default: "5" },
    workers: { type: "string", default: "1000" },
    seconds: { type: "string", default: "2" },
  },
});
const N = whole("manifolds", values.manifolds);
const TICKS = whole("ticks", values.ticks);
const PERIOD = Math.max(1, whole("period", values.period));
const TIMEOUT = whole("timeout", values.timeout);
const RUNS = Math.max(1, whole("runs", values.runs));
const WORKERS = whole("workers", values.workers);
const SECONDS = Number(values.seconds);
if (TIMEOUT <= PERIOD) fail(`--timeout (${TIMEOUT}) must be more than --period (${PERIOD}), or every manifold is killed`);

const host = machine();
console.error(`machine: ${host.cpu}, ${host.cores} cores, Node ${host.node}, load ${host.loadAverage}; engine from ${target}`);

// ---------------------------------------------------------------- 1. fake clock

/** A fake clock that counts what the engine asks of it; `advanceTo` fires due timers in order. */
class TickClock implements Clock {
  time = Date.UTC(2026, 0, 1);
  armed = 0;
  fired = 0;
  #nextId = 1;
  readonly #timers = new Map<number, { due: number; fn: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    this.armed++;
    const id = this.#nextId++;
    this.#timers.set(id, { due: this.time + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  advanceTo(time: number): void {
    for (;;) {
      let next: number | undefined;
      let due = time;
      // The engine keeps one deadline timer: this map holds one or two entries.
      for (const [id, timer] of this.#timers) {
        if (timer.due <= due) {
          due = timer.due;
          next = id;
        }
      }
      if (next === undefined) break;
      const timer = this.#timers.get(next) as { due: number; fn: () => void };
      this.#timers.delete(next);
      this.time = Math.max(this.time, timer.due);
      this.fired++;
      timer.fn();
    }
    this.time = time;
  }
}

/** A worker that does nothing until killed; counts kills. */
let kills = 0;
function idle(): Worker {
  let stop!: () => void;
  const done = new Promise<void>((resolve) => (stop = resolve));
  return {
    kill: () => {
      kills++;
      stop();
    },
    wait: () => done,
  };
}

const clock = new TickClock();
let started = 0;
const engine = new Engine({ clock, jitter: 0, bounceDelay: 0, errorDelay: 1000, metrics: { recordStart: () => void started++ } });
const beats: (() => void)[] = new Array<() => void>(N);
const manifolds: Record<string, Manifold> = {};
for (let i = 0; i < N; i++) {
  manifolds[`gen${i}`] = {
    inputs: [],
    heartbeatTimeout: TIMEOUT,
    start: (context) => {
      beats[i] = context.heartbeat;
      return idle();
    },
  };
}
engine.installAll(manifolds);
while (started < N) await settle(1);
console.error(`${N} manifolds running`);

/** The functions each tick calls: bucket t % PERIOD holds manifolds i with (t + i) % PERIOD === 0. */
function buckets(calls: readonly (() => void)[]): (() => void)[][] {
  const out: (() => void)[][] = Array.from({ length: PERIOD }, () => []);
  for (let i = 0; i < calls.length; i++) (out[(PERIOD - (i % PERIOD)) % PERIOD] as (() => void)[]).push(calls[i] as () => void);
  return out;
}
const engineBuckets = buckets(beats);
// As many distinct closures of one function as the engine has heartbeat functions (same call-site shape).
let sink = 0;
const makeNoop = (i: number) => (): void => void (sink ^= i);
const noopBuckets = buckets(Array.from({ length: N }, (_, i) => makeNoop(i)));

interface FakeRun {
  callsMs: number;
  totalMs: number;
  armed: number;
  fired: number;
}

/** One run of TICKS ticks: each tick moves the clock 1 ms (firing what is due), then makes its bucket's calls. */
function fakeRun(calls: (() => void)[][], withClock: boolean): FakeRun {
  const armed0 = clock.armed;
  const fired0 = clock.fired;
  let callsMs = 0;
  const start = now();
  for (let tick = 1; tick <= TICKS; tick++) {
    if (withClock) clock.advanceTo(clock.time + 1);
    const bucket = calls[tick % PERIOD] as (() => void)[];
    const t = now();
    for (let k = 0; k < bucket.length; k++) (bucket[k] as () => void)();
    callsMs += now() - t;
  }
  return { callsMs, totalMs: now() - start, armed: clock.armed - armed0, fired: clock.fired - fired0 };
}

const heartbeatsPerRun = Math.round((N * TICKS) / PERIOD);
const engineRuns: FakeRun[] = [];
const noopRuns: FakeRun[] = [];
for (let run = 0; run <= RUNS; run++) {
  heapAfterGc();
  const e = fakeRun(engineBuckets, true);
  heapAfterGc();
  const b = fakeRun(noopBuckets, false);
  if (run === 0) continue; // warm-up
  engineRuns.push(e);
  noopRuns.push(b);
  console.error(`run ${run}: engine ${e.totalMs.toFixed(0)} ms (calls ${e.callsMs.toFixed(0)} ms), no-op calls ${b.callsMs.toFixed(0)} ms`);
}

/** Heap bytes per call over `count` calls with no GC in between (a scavenge would show as a negative figure). */
function bytesPerCall(calls: readonly (() => void)[], count: number): number {
  heapAfterGc();
  const before = process.memoryUsage().heapUsed;
  for (let k = 0; k < count; k++) (calls[k % calls.length] as () => void)();
  return (process.memoryUsage().heapUsed - before) / count;
}
// Twice each: the first calls after a GC may allocate for the engine's own bookkeeping of the code (feedback, tiering).
bytesPerCall(beats, 100_000);
bytesPerCall(noopBuckets.flat(), 100_000);
const engineBytes = bytesPerCall(beats, 100_000);
const noopBytes = bytesPerCall(noopBuckets.flat(), 100_000);

const killedDuringRuns = kills;
if (kills > 0) fail(`${kills} workers were killed during the fake-clock runs: a heartbeat every ${PERIOD} ms should keep every one alive`);
const report = engine.report();
const fakeStartCount = Object.values(report.manifolds).reduce((sum, m) => sum + m.startCount, 0);
engine.kill();
await engine.wait();

const med = (runs: readonly FakeRun[], key: keyof FakeRun): number => median(runs.map((run) => run[key]));
const engineNs = (med(engineRuns, "callsMs") * 1e6) / heartbeatsPerRun;
const noopNs = (med(noopRuns, "callsMs") * 1e6) / heartbeatsPerRun;
const totalMs = med(engineRuns, "totalMs");

// ---------------------------------------------------------------- 2. real time

const BURST = 100;

/** `WORKERS` loops calling `beat` in bursts for SECONDS; returns the calls made and the time taken. */
async function realRun(useEngine: boolean): Promise<{ calls: number; ms: number; failures: number }> {
  let calls = 0;
  let running = true;
  const loop = async (beat: () => void, signal?: AbortSignal): Promise<void> => {
    while (running && signal?.aborted !== true) {
      for (let k = 0; k < BURST; k++) beat();
      calls += BURST;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };
  let failures = 0;
  const real = useEngine ? new Engine({ jitter: 0, errorDelay: 1000 }) : undefined;
  let ready = 0;
  const loops: Promise<void>[] = [];
  if (real !== undefined) {
    for (let i = 0; i < WORKERS; i++) {
      real.install(`worker${i}`, {
        inputs: [],
        heartbeatTimeout: 1000,
        start: ({ heartbeat }) =>
          createWorker(async (signal) => {
            ready++;
            await loop(heartbeat, signal);
          }),
      });
    }
    while (ready < WORKERS) await settle(1);
  } else {
    const noop = (): void => undefined;
    for (let i = 0; i < WORKERS; i++) loops.push(loop(noop));
  }
  calls = 0;
  const start = now();
  await new Promise<void>((resolve) => setTimeout(resolve, SECONDS * 1000));
  const ms = now() - start;
  const made = calls;
  running = false;
  if (real !== undefined) {
    failures = real.report().totals.failures;
    real.kill();
    await real.wait();
  }
  await Promise.all(loops);
  return { calls: made, ms, failures };
}

heapAfterGc();
const realEngine = await realRun(true);
heapAfterGc();
const realNoop = await realRun(false);
console.error(`real time: engine ${realEngine.calls} heartbeats in ${realEngine.ms.toFixed(0)} ms; no-op ${realNoop.calls} calls`);
if (realEngine.failures > 0) fail(`${realEngine.failures} workers failed (missed heartbeats?) in the real-time run`);

// ---------------------------------------------------------------- output

const perSecond = (calls: number, ms: number): string => `${((calls * 1000) / ms / 1e6).toFixed(2)} M`;
console.log(
  `\nMachine: ${host.cpu}, ${host.cores} cores, Node ${host.node}, load ${host.loadAverage}; engine from ${target === "src" ? "src/ (tsx)" : target}.`,
);
console.log(`\n### Fake clock: ${N} manifolds, a heartbeat every ${PERIOD} ms each, heartbeatTimeout ${TIMEOUT} ms, ${TICKS} ticks of 1 ms`);
console.log(`\n${heartbeatsPerRun} heartbeats per run; medians of ${RUNS} runs after a warm-up.\n`);
console.log("| figure | value |\n| --- | --- |");
console.log(`| heartbeat call, engine | ${engineNs.toFixed(1)} ns |`);
console.log(`| the same call into a no-op closure | ${noopNs.toFixed(1)} ns |`);
console.log(`| engine's added cost per heartbeat | ${(engineNs - noopNs).toFixed(1)} ns |`);
console.log(`| heartbeats per second, calls only | ${perSecond(heartbeatsPerRun, med(engineRuns, "callsMs"))} |`);
console.log(`| heartbeats per second, end to end (calls, ticks, deadlines) | ${perSecond(heartbeatsPerRun, totalMs)} |`);
console.log(`| whole run | ${totalMs.toFixed(0)} ms |`);
console.log(`| timers armed per run (one timer, re-armed lazily) | ${Math.round(med(engineRuns, "armed"))} (${(med(engineRuns, "armed") / heartbeatsPerRun).toExponential(1)} per heartbeat) |`);
console.log(`| deadline timer firings per run (each handles every deadline due by then) | ${Math.round(med(engineRuns, "fired"))} |`);
console.log(`| heap allocated per heartbeat (engine / no-op) | ${engineBytes.toFixed(2)} B / ${noopBytes.toFixed(2)} B |`);
console.log(`| workers killed / restarted during the runs | ${killedDuringRuns} / ${fakeStartCount - N} |`);
console.log(`\n### Real time: ${WORKERS} workers heartbeating as fast as they can for ${SECONDS} s (bursts of ${BURST}, setImmediate between)\n`);
console.log("| figure | engine | no engine (no-op) |\n| --- | --- | --- |");
console.log(`| heartbeats per second | ${perSecond(realEngine.calls, realEngine.ms)} | ${perSecond(realNoop.calls, realNoop.ms)} |`);
const realAdded = (realEngine.ms * 1e6) / realEngine.calls - (realNoop.ms * 1e6) / realNoop.calls;
console.log(`| time per heartbeat (engine's added cost) | ${((realEngine.ms * 1e6) / realEngine.calls).toFixed(1)} ns (+${realAdded.toFixed(1)} ns) | ${((realNoop.ms * 1e6) / realNoop.calls).toFixed(1)} ns |`);
console.log(`| workers failed | ${realEngine.failures} | |`);
void sink;

function whole(option: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) fail(`--${option} takes a whole number (got ${text})`);
  return n;
}

function fail(message: string): never {
  console.error(`bench/heartbeat: ${message}`);
  process.exit(2);
}
