/**
 * What observability costs: `npm run build && node --expose-gc --import tsx bench/events.ts [-- options]`.
 *
 * 1. The event stream. A cold start of the 100k layered graph (install to
 *    last start, as `npm run bench` times it), by the same build, as:
 *    - `none`: nobody touched `engine.events`;
 *    - `touched`: `engine.events` was read (rxjs loaded, the stream made)
 *      but nobody subscribed: the engine must not build a single event;
 *    - `counting`: one subscriber counting events (3 per manifold:
 *      installed, starting, started; checked);
 *    - `baseline` (with `--baseline=<dir>`): another build with nobody
 *      listening, e.g. the engine before the event stream and bookkeeping,
 *      to compare with "today's figure" in the same process.
 *    Rounds are interleaved: each round runs every variant once, in an order
 *    rotated from round to round, so drift in the machine's load falls on
 *    every variant alike. Each cold start is timed twice: wall-clock, and the
 *    CPU time this process used (all its threads, GC included), which other
 *    processes on a shared machine disturb far less. The table shows medians
 *    and minimums and each variant's ratio to `none` (the target for
 *    `counting`: at most 1.3x).
 * 2. Failure bookkeeping. Heap per manifold once every manifold of a flat
 *    graph (no inputs) has failed `k` times at start and then started, for
 *    k = 0, 5 and 50 with a message of its own each time, and k = 5 with one
 *    shared message: the failure count and the ring of the last 5 failures
 *    must cost the same after 50 failures as after 5 (bounded). What a
 *    failed manifold adds (k = 5 less k = 0) goes on top of the engine's
 *    bytes per manifold of `npm run bench`, where nothing fails.
 *
 * Options (all optional):
 *   --size=100000      manifolds in the cold-start graph
 *   --shape=layered    its shape (chain, fanout, layered)
 *   --rounds=7         interleaved rounds; 0 skips the cold starts
 *   --gc=full          GC before each cold start: full or minor (see scenarios.ts)
 *   --baseline=<dir>   a build folder (with index.js) to run as the `baseline` variant
 *   --heap-size=20000  manifolds in the bookkeeping heap runs; 0 skips them
 *
 * Progress goes to stderr, the tables to stdout.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type * as Api from "../src/index.js";
import { Engine, target as engineTarget } from "./engine.js";
import { makeGraph, SHAPES, type Graph, type Shape } from "./graphs.js";
import { collect, CountingClock, deadline, heapAfterGc, machine, median, minorGc, now, settle, settledHeap } from "./measure.js";
import { BenchWorker, makeManifolds, Probe } from "./workload.js";

/** The cost of one subscriber counting events may be at most this multiple of none. */
const SUBSCRIBER_LIMIT = 1.3;
/** Engine heap per manifold, bookkeeping included, must stay under this. */
const HEAP_LIMIT = 1024;

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "100000" },
    shape: { type: "string", default: "layered" },
    rounds: { type: "string", default: "7" },
    gc: { type: "string", default: "full" },
    baseline: { type: "string" },
    "heap-size": { type: "string", default: "20000" },
  },
});
const size = wholeNumber("size", values.size);
const rounds = wholeNumber("rounds", values.rounds);
const heapSize = wholeNumber("heap-size", values["heap-size"]);
const shape = values.shape as Shape;
if (!(SHAPES as readonly string[]).includes(shape)) fail(`--shape: unknown shape ${values.shape} (known: ${SHAPES.join(", ")})`);
const gc = values.gc;
if (gc !== "full" && gc !== "minor") fail(`--gc must be full or minor (got ${gc})`);

type EngineClass = typeof Api.Engine;
interface Variant {
  readonly name: string;
  readonly what: string;
  readonly Engine: EngineClass;
  /** What to do with `engine.events` before the first install; returns the count of events seen so far. */
  readonly listen: (engine: Api.Engine) => { events: () => number; stop: () => void };
}

const nobody = (): { events: () => number; stop: () => void } => ({ events: () => 0, stop: () => undefined });
const variants: Variant[] = [
  { name: "none", what: "nobody touched engine.events", Engine, listen: nobody },
  {
    name: "touched",
    what: "engine.events read (rxjs loaded), no subscriber",
    Engine,
    listen: (engine) => {
      void engine.events;
      return nobody();
    },
  },
  {
    name: "counting",
    what: "one subscriber counting events",
    Engine,
    listen: (engine) => {
      let count = 0;
      const subscription = engine.events.subscribe(() => void count++);
      return { events: () => count, stop: () => subscription.unsubscribe() };
    },
  },
];
if (values.baseline !== undefined) {
  const entry = resolve(values.baseline, "index.js");
  if (!existsSync(entry)) fail(`--baseline: ${entry} is missing; give a build folder (see bench/README.md, "Events")`);
  const baseline = (await import(pathToFileURL(entry).href)) as typeof Api;
  variants.push({ name: "baseline", what: `the build in ${values.baseline}, nobody listening`, Engine: baseline.Engine, listen: nobody });
}

const host = machine();
const startedAt = Date.now();
console.error(`machine: ${host.cpu}, ${host.cores} cores, Node ${host.node}, load ${host.loadAverage}`);

// ------------------------------------------------------------------ 1. the event stream on a cold start

const graph = makeGraph(shape, size);
/** Per variant: wall-clock ms and CPU ms of each cold start. */
const times = new Map<string, { wall: number[]; cpu: number[] }>(variants.map((variant) => [variant.name, { wall: [], cpu: [] }]));
const problems: string[] = [];

// Warm-up: every variant once on a small graph, so the first timed round is not also the JIT's.
if (rounds > 0) for (const variant of variants) await coldStart(makeGraph(shape, 3000), variant);
for (let round = 0; round < rounds; round++) {
  const order = variants.map((_, i) => variants[(i + round) % variants.length] as Variant);
  const line: string[] = [];
  for (const variant of order) {
    const { wall, cpu } = await coldStart(graph, variant);
    const samples = times.get(variant.name) as { wall: number[]; cpu: number[] };
    samples.wall.push(wall);
    samples.cpu.push(cpu);
    line.push(`${variant.name} ${wall.toFixed(0)} ms (cpu ${cpu.toFixed(0)})`);
  }
  console.error(`round ${round + 1}/${rounds}: ${line.join(", ")}`);
}

/** CPU time this process has used (user + system, all threads), in ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * One cold start of `graph` by `variant`: install to last start (wall-clock
 * and CPU ms), then kill and wait (untimed). Checks the starts and the events.
 */
async function coldStart(g: Graph, variant: Variant): Promise<{ wall: number; cpu: number }> {
  const probe = new Probe(g.size);
  const manifolds = makeManifolds(g, probe);
  const engine = new variant.Engine({ errorDelay: 0, bounceDelay: 0, jitter: 0, clock: new CountingClock(30_000), metrics: probe.metrics });
  const listener = variant.listen(engine);
  if (gc === "full") collect();
  else minorGc();
  const cpu0 = cpuMs();
  const t0 = now();
  for (const name of g.names) engine.install(name, manifolds[name] as Api.Manifold);
  const end = await deadline(probe.started.reach(g.size), `${variant.name} cold start`);
  const cpu = cpuMs() - cpu0;
  await settle();
  if (probe.startCalls.count !== g.size) problems.push(`${variant.name}: ${probe.startCalls.count} start calls for ${g.size} manifolds`);
  const expected = variant.name === "counting" ? 3 * g.size : 0;
  if (listener.events() !== expected) problems.push(`${variant.name}: ${listener.events()} events, expected ${expected}`);
  listener.stop();
  engine.kill();
  await deadline(engine.wait(), `${variant.name} kill + wait`);
  return { wall: end - t0, cpu };
}

// ------------------------------------------------------------------ 2. failure bookkeeping on the heap

interface HeapRow {
  failures: number;
  /** Whether each failure had a message of its own (else one message string shared by all). */
  distinct: boolean;
  /** Engine and workers, per manifold. */
  bytesPerManifold: number;
  /** The report's failureCount and lastFailures length of one manifold: k and min(k, 5). */
  failureCount: number;
  kept: number;
}
const heapRows: HeapRow[] = [];
if (heapSize > 0) {
  for (const [failures, distinct] of [[0, true], [5, true], [50, true], [5, false]] as const) {
    const row = await heapAfterFailures(heapSize, failures, distinct);
    heapRows.push(row);
    console.error(`heap: ${failures} failures each${distinct ? "" : " (one shared message)"}: ${row.bytesPerManifold.toFixed(0)} B/manifold`);
  }
}

/**
 * Heap per manifold (engine and workers; the manifolds exist before) once
 * each of `n` independent manifolds has failed `failures` times at start,
 * each time with a message of its own (`distinct`) or all with one shared
 * message string, and then started. The same workers in every row, so the
 * difference between rows is what the engine keeps for the failures.
 */
async function heapAfterFailures(n: number, failures: number, distinct: boolean): Promise<HeapRow> {
  const names = Array.from({ length: n }, (_, i) => `m${i}`);
  const attempts = new Int32Array(n);
  const workers: BenchWorker[] = [];
  const shared = "the start failed";
  const manifolds = names.map((name, i) => ({
    inputs: [],
    start: (): BenchWorker => {
      const attempt = (attempts[i] as number) + 1;
      attempts[i] = attempt;
      if (attempt <= failures) throw new Error(distinct ? `${name}: attempt ${attempt} failed` : shared);
      const worker = new BenchWorker(i);
      workers.push(worker);
      return worker;
    },
  }));
  let started = 0;
  const engine = new Engine({ errorDelay: 0, bounceDelay: 0, backoffFactor: 0, jitter: 0, metrics: { recordStart: () => void started++ } });
  const before = settledHeap();
  names.forEach((name, i) => engine.install(name, manifolds[i] as Api.Manifold));
  for (const t0 = now(); started < n; ) {
    await settle(1);
    if (now() - t0 > 120_000) throw new Error(`bench: the heap run with ${failures} failures did not finish`);
  }
  await settle();
  const bytesPerManifold = (heapAfterGc() - before) / n;
  const entry = engine.report().manifolds[names[0] as string];
  engine.kill();
  await engine.wait();
  if (workers.length !== n) throw new Error("bench: lost workers");
  return { failures, distinct, bytesPerManifold, failureCount: entry?.failureCount ?? -1, kept: entry?.lastFailures.length ?? -1 };
}

// ------------------------------------------------------------------ the tables

const seconds = Math.round((Date.now() - startedAt) / 1000);
console.log(`\nMachine: ${host.cpu}, ${host.cores} cores, ${host.memoryGb} GB RAM, Node ${host.node}; 1-minute load average at start ${host.loadAverage}; ${seconds} s in all.`);
console.log(`Engine: ${engineTarget === "dist" ? "the built package (dist/)" : engineTarget === "src" ? "the sources through tsx" : `the build in ${engineTarget}`}.`);
if (rounds > 0) {
  const of = (name: string, kind: "wall" | "cpu"): number[] => (times.get(name) as { wall: number[]; cpu: number[] })[kind];
  const none = { wall: median(of("none", "wall")), cpu: median(of("none", "cpu")), minCpu: Math.min(...of("none", "cpu")) };
  console.log(`\nCold start of the ${size} ${shape} graph (install to last start), ${rounds} interleaved rounds, ${gc} GC before each:\n`);
  console.log(
    "| variant | what | wall ms (median) | wall ms (min-max) | CPU ms (median) | CPU ms (min) | / none (wall) | / none (CPU) | / none (min CPU) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const variant of variants) {
    const wall = of(variant.name, "wall");
    const cpu = of(variant.name, "cpu");
    console.log(
      `| ${variant.name} | ${variant.what} | ${median(wall).toFixed(0)} | ${Math.min(...wall).toFixed(0)}-${Math.max(...wall).toFixed(0)} | ${median(cpu).toFixed(0)} | ${Math.min(...cpu).toFixed(0)} | ` +
        `${(median(wall) / none.wall).toFixed(2)}x | ${(median(cpu) / none.cpu).toFixed(2)}x | ${(Math.min(...cpu) / none.minCpu).toFixed(2)}x |`,
    );
  }
  const spread = (samples: number[]): string => `${((Math.max(...samples) / Math.min(...samples) - 1) * 100).toFixed(0)}%`;
  console.log(`\nRun-to-run spread (max/min - 1), wall / CPU: ${variants.map((variant) => `${variant.name} ${spread(of(variant.name, "wall"))} / ${spread(of(variant.name, "cpu"))}`).join(", ")}.`);
  const counting = median(of("counting", "cpu")) / none.cpu;
  console.log(`Target: one counting subscriber at most ${SUBSCRIBER_LIMIT}x (median CPU time): ${counting <= SUBSCRIBER_LIMIT ? "met" : "**MISSED**"} (${counting.toFixed(2)}x; wall ${(median(of("counting", "wall")) / none.wall).toFixed(2)}x).`);
}

if (heapRows.length > 0) {
  console.log(`\nHeap per manifold (engine and workers, after a full GC) of ${heapSize} independent manifolds, each failed k times at start, then started:\n`);
  console.log("| failures each (k) | messages | heap B/manifold | more than k = 0 | failureCount | lastFailures kept |\n| --- | --- | --- | --- | --- | --- |");
  const zero = (heapRows[0] as HeapRow).bytesPerManifold;
  for (const row of heapRows) {
    const more = (row.bytesPerManifold - zero).toFixed(0);
    console.log(`| ${row.failures} | ${row.distinct ? "one each" : "one shared"} | ${row.bytesPerManifold.toFixed(0)} | ${more} | ${row.failureCount} | ${row.kept} |`);
  }
  const [, five, fifty, sharedFive] = heapRows as [HeapRow, HeapRow, HeapRow, HeapRow];
  console.log(`\nBounded: 50 failures each cost ${(fifty.bytesPerManifold - five.bytesPerManifold).toFixed(0)} B/manifold more than 5 (the ring keeps 5).`);
  console.log(
    `A manifold that failed costs ${(five.bytesPerManifold - zero).toFixed(0)} B more with messages of its own, ${(sharedFive.bytesPerManifold - zero).toFixed(0)} B with one shared message; ` +
      `add that to the engine's B/manifold of \`npm run bench\` (a cold start, where nothing failed and bookkeeping keeps nothing; target < ${HEAP_LIMIT} B).`,
  );
}
if (problems.length > 0) {
  console.log(`\nPROBLEMS:\n- ${[...new Set(problems)].join("\n- ")}`);
  process.exitCode = 1;
}

function wholeNumber(option: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) fail(`--${option} takes a whole number (got ${text})`);
  return n;
}

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}
