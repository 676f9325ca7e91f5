/**
 * The soak: `npm run bench:soak [-- options]`. One manifold whose worker
 * fails again and again (errorDelay 0, backoffFactor 0, so every failure
 * restarts it at once), with one dependent that is bounced each time. What
 * it shows: whether anything the engine keeps per restart accumulates (heap
 * after GC at checkpoints should stay flat), and how many restarts a second
 * one engine turns over.
 *
 * Options (all optional):
 *   --failures=1000000     failures of the crashing worker
 *   --checkpoints=10       pauses (evenly spaced) to measure the heap; each
 *                          holds the crashing worker up until the engine is
 *                          quiet, so the measurement sees no work in flight
 *   --stop-timeout=30000   EngineConfig.stopTimeout (the default): each bounce
 *                          of the dependent arms and clears a watchdog timer;
 *                          0 arms none
 *   --subscriber           subscribe to engine.events before the first install,
 *                          with a subscriber that counts each event and keeps
 *                          nothing: the stream's own bookkeeping (ids, each
 *                          manifold's latest event) must not grow either
 *
 * Progress goes to stderr, the summary to stdout.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import type { Worker } from "../src/index.js";
import { createWorker, Engine, target as engineTarget, valueWorker } from "./engine.js";
import { CountingClock, heapAfterGc, machine, now, settle } from "./measure.js";

/** The heap may grow at most this much over the whole soak. */
const HEAP_GROWTH_LIMIT = 5 * 2 ** 20;

const { values } = parseArgs({
  options: {
    failures: { type: "string", default: "1000000" },
    checkpoints: { type: "string", default: "10" },
    "stop-timeout": { type: "string", default: "30000" },
    subscriber: { type: "boolean", default: false },
  },
});
const failures = wholeNumber("failures", values.failures);
const checkpoints = Math.max(1, wholeNumber("checkpoints", values.checkpoints));
const stopTimeout = wholeNumber("stop-timeout", values["stop-timeout"]);

const soakError = new Error("soak: the worker failed");
const starts = { crasher: 0, dependent: 0 };
/** Crasher workers created, and how many of them have failed. */
let created = 0;
let failed = 0;
/** Workers past this number are held up by `gate` (a checkpoint) instead of failing at once. */
let holdAfter = 0;
let gate: Promise<void> = Promise.resolve();
let release: () => void = () => undefined;
/** When the held (or the last) worker was created: the end of a stretch of failures. */
let endedAt = 0;

const clock = new CountingClock(stopTimeout);
const engine = new Engine({
  errorDelay: 0,
  bounceDelay: 0,
  backoffFactor: 0,
  jitter: 0,
  stopTimeout,
  clock,
  metrics: { recordStart: (name) => void (name === "crasher" ? starts.crasher++ : starts.dependent++) },
});

/** Events the subscriber saw (with --subscriber); it keeps none of them. */
let events = 0;
if (values.subscriber) engine.events.subscribe(() => void events++);

engine.install("crasher", {
  inputs: [],
  start: (): Worker => {
    const n = ++created;
    if (n > holdAfter) endedAt = now();
    if (n > failures) return valueWorker(n); // done: run until killed
    const held = n > holdAfter ? gate : undefined;
    return createWorker(async () => {
      if (held !== undefined) await held;
      failed++;
      throw soakError;
    });
  },
  output: (worker: Worker) => worker,
});
engine.install("dependent", {
  inputs: ["crasher"],
  start: (context) => valueWorker(context.getResource("crasher")),
});

const host = machine();
console.error(`machine: ${host.cpu}, ${host.cores} cores, Node ${host.node}, load ${host.loadAverage}`);

// The longest time the event loop could not turn: a crash loop that runs
// entirely in promise callbacks would block timers and I/O for its whole length.
const stalls = monitorEventLoopDelay({ resolution: 10 });
stalls.enable();

// Each checkpoint: the crasher's next worker is held up, the engine goes quiet,
// the heap is measured; then it is released and fails, and the next stretch runs.
const rows: { failures: number; heapMb: number; restartsPerSecond: number }[] = [];
let busyMs = 0;
let lastStarts = 0;
for (let checkpoint = 0; checkpoint <= checkpoints; checkpoint++) {
  const target = Math.round((failures * checkpoint) / checkpoints);
  const releasePrevious = release;
  holdAfter = target;
  gate = new Promise<void>((resolve) => (release = resolve));
  const t0 = now();
  releasePrevious();
  while (created <= Math.min(target, failures)) await settle(1);
  const stretchMs = checkpoint === 0 ? 0 : endedAt - t0;
  await settle();
  busyMs += stretchMs;
  const total = starts.crasher + starts.dependent;
  const heap = heapAfterGc();
  rows.push({ failures: failed, heapMb: heap / 2 ** 20, restartsPerSecond: stretchMs === 0 ? 0 : ((total - lastStarts) * 1000) / stretchMs });
  lastStarts = total;
  console.error(`${failed} failures: heap ${(heap / 2 ** 20).toFixed(2)} MB, ${Math.round(rows.at(-1)?.restartsPerSecond ?? 0)} restarts/s`);
}
stalls.disable();

engine.kill();
await engine.wait();

const first = rows[0] as (typeof rows)[number];
const last = rows.at(-1) as (typeof rows)[number];
const growth = (last.heapMb - first.heapMb) * 2 ** 20;
const seconds = busyMs / 1000;
console.log(
  `\nMachine: ${host.cpu}, ${host.cores} cores, Node ${host.node}, load ${host.loadAverage} at start; engine from ${engineTarget === "dist" ? "dist/" : engineTarget === "src" ? "src/ (tsx)" : engineTarget}; stopTimeout ${stopTimeout}; ${values.subscriber ? "one engine.events subscriber (counting, keeping nothing)" : "no engine.events subscriber"}.`,
);
if (values.subscriber) console.log(`Events: ${events} seen by the subscriber (${Math.round(events / Math.max(1, failed))} per failure).`);
console.log(`Failures: ${failed} of the crashing worker in ${seconds.toFixed(1)} s of engine time.`);
console.log(
  `Starts: crasher ${starts.crasher}, dependent ${starts.dependent}; ${Math.round((starts.crasher + starts.dependent) / seconds)} restarts/s in all, ${Math.round(failed / seconds)} failures/s.`,
);
console.log(`Timers: ${clock.restartTimers} restart timers, ${clock.watchdogTimers} watchdog timers armed.`);
console.log(`Heap after GC: ${first.heapMb.toFixed(2)} MB before, ${last.heapMb.toFixed(2)} MB after: ${(growth / 2 ** 20).toFixed(2)} MB growth.`);
console.log(`Longest event-loop stall: ${(stalls.max / 1e6).toFixed(0)} ms (a stretch of ${Math.round(failures / checkpoints)} failures took ${(busyMs / checkpoints).toFixed(0)} ms on average).`);
console.log(`\n| failures | heap after GC (MB) | restarts/s since last row |\n| --- | --- | --- |`);
for (const row of rows) console.log(`| ${row.failures} | ${row.heapMb.toFixed(2)} | ${row.restartsPerSecond === 0 ? "" : Math.round(row.restartsPerSecond)} |`);
console.log(`\nTarget: heap growth < 5 MB: ${growth < HEAP_GROWTH_LIMIT ? "met" : "**MISSED**"} (${(growth / 2 ** 20).toFixed(2)} MB).`);

function wholeNumber(option: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${option} takes a whole number (got ${text})`);
    process.exit(2);
  }
  return n;
}
