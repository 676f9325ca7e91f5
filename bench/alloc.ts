/**
 * Allocation: the bytes the engine allocates per manifold at install, per
 * start during a cold start, and per restart during a root bounce, measured
 * as heap growth with no GC in between.
 *
 *   node --expose-gc --max-semi-space-size=512 --min-semi-space-size=512 --import tsx bench/alloc.ts
 *
 * Why those flags: V8 allocates new objects in the young generation and
 * scavenges it when it is full; a scavenge frees garbage, after which heap
 * growth is less than what was allocated. With 512 MB semi-spaces from the
 * start, a phase of a 100k graph (a few hundred MB at most) never fills it,
 * so heap growth from a GC'd heap to the phase's end is exactly what the
 * phase allocated. Each phase is checked: a GC pause that began inside it (a
 * `PerformanceObserver` on "gc" entries) voids that run's figure for the
 * phase, and the output says so instead of giving a wrong figure.
 *
 * Per shape, after a warm-up on a 3,000-manifold graph, each run measures,
 * after a full GC each:
 * - install: N `engine.install` calls (starts wait for a microtask);
 * - start: from the last install until the last start (its `recordStart`);
 * - bounce: the root's worker exits with `BounceError`, until the root and
 *   each transitive dependent has started again; per restarted manifold;
 * - floor: workload.ts's `runFloor` on the same graph, per start. It pays
 *   for the workload (the worker, its promise and closures) and for its own
 *   context and `Map` entry per start; start - floor is what the engine
 *   allocates per start beyond that, bounce - floor per restart likewise;
 * - the reference (reference.ts, the least any engine keeping the contract
 *   must do) on the same graph: its install (a `Map` entry, a record and
 *   the edges per manifold) and its starts, per start, less the floor's, as
 *   for the engine: what the contract itself costs, for the engine's
 *   figures to be read against.
 * Figures are medians over the runs (`--runs`, default 3) that had no GC in
 * the phase. Code the JIT compiles during a phase counts too: the warm-up
 * keeps that small.
 *
 * Options: --size=100000, --shapes=chain,fanout,layered, --runs=3, --json
 * (the figures as JSON on stdout, for run.ts; otherwise a markdown table).
 * Progress goes to stderr. `BENCH_TARGET` picks the build, as for run.ts.
 */
import { parseArgs } from "node:util";
import v8 from "node:v8";
import type { Manifold } from "../src/index.js";
import { BounceError, Engine } from "./engine.js";
import { makeGraph, SHAPES, transitiveDependents, type Graph, type Shape } from "./graphs.js";
import { ALLOC_NODE_FLAGS, WARM_UP_SIZE, collect, CountingClock, deadline, GcLog, heapInUse, median, now, settle } from "./measure.js";
import { allocTable, type AllocPhase, type AllocReport, type AllocResult } from "./summary.js";
import { runReference } from "./reference.js";
import { makeManifolds, measuredConfig, Probe, runFloor, STOP_TIMEOUT } from "./workload.js";

/** Below this young generation, a 100k phase would surely be interrupted by a scavenge. */
const MIN_NEW_SPACE_MB = 256;

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "100000" },
    shapes: { type: "string", default: SHAPES.join(",") },
    runs: { type: "string", default: "3" },
    json: { type: "boolean", default: false },
  },
});

const size = Number(values.size);
if (!Number.isInteger(size) || size < 30) fail(`--size takes a whole number of manifolds, at least 30 (got ${values.size})`);
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) fail(`--runs takes a whole number, at least 1 (got ${values.runs})`);
const shapes = values.shapes.split(",").map((s) => {
  if (!(SHAPES as readonly string[]).includes(s)) fail(`--shapes: unknown shape ${s} (known: ${SHAPES.join(", ")})`);
  return s as Shape;
});

const newSpace = v8.getHeapSpaceStatistics().find((space) => space.space_name === "new_space");
const newSpaceMb = Math.round((newSpace?.space_size ?? 0) / 2 ** 20);
if (newSpaceMb < MIN_NEW_SPACE_MB) {
  console.error(
    `alloc: the young generation is ${newSpaceMb} MB, so scavenges will fall inside the phases and void their figures; ` +
      `run with node ${ALLOC_NODE_FLAGS.join(" ")} --import tsx bench/alloc.ts`,
  );
}

const gcLog = new GcLog();
const results: AllocResult[] = [];
for (const shape of shapes) {
  await measureRun(makeGraph(shape, WARM_UP_SIZE));
  const graph = makeGraph(shape, size);
  const measured: RunBytes[] = [];
  for (let run = 1; run <= runs; run++) {
    const bytes = await measureRun(graph);
    measured.push(bytes);
    const shown = (Object.entries(bytes.perManifold) as [AllocPhase, number | null][]).map(([phase, b]) => `${phase} ${b === null ? "GC in phase" : `${Math.round(b)} B`}`);
    console.error(`alloc ${shape} ${size} run ${run}/${runs}: ${shown.join(", ")}`);
  }
  results.push(summarize(shape, graph, measured));
}
gcLog.disconnect();

const report: AllocReport = { size, newSpaceMb, results };
if (values.json) {
  console.log(JSON.stringify(report));
} else {
  console.log(`\nAllocation, bytes (young generation ${newSpaceMb} MB; medians of ${runs} run${runs === 1 ? "" : "s"}; BENCH_TARGET ${process.env.BENCH_TARGET ?? "dist"}):\n`);
  console.log(allocTable(report));
}

/** One run's bytes per manifold (per start, per restart) by phase; null where a GC fell inside the phase. */
interface RunBytes {
  perManifold: Record<AllocPhase, number | null>;
  gcs: Record<AllocPhase, number>;
  bounceRestarts: number;
}

/** One engine's install, cold start and root bounce, then the floor, then the reference; each phase's heap growth after a full GC. */
async function measureRun(graph: Graph): Promise<RunBytes> {
  const root = 0;
  const bounceRestarts = transitiveDependents(graph, root).size + 1;
  const probe = new Probe(graph.size);
  const manifolds = makeManifolds(graph, probe);
  const order = graph.names.map((name) => [name, manifolds[name] as Manifold] as const);
  const engine = new Engine(measuredConfig(probe, new CountingClock(STOP_TIMEOUT)));

  collect();
  const installFrom = now();
  const h0 = heapInUse();
  for (const [name, m] of order) engine.install(name, m);
  const h1 = heapInUse();
  const startFrom = now();
  await deadline(probe.started.reach(graph.size), "cold start");
  const h2 = heapInUse();
  const startTo = now();
  await settle(5);
  if (probe.startCalls.count !== graph.size) throw new Error(`alloc: ${probe.startCalls.count} start calls in the cold start of ${graph.size} manifolds`);

  const error = new BounceError("bench: root bounce");
  const target = probe.started.count + bounceRestarts;
  collect();
  const bounceFrom = now();
  const h3 = heapInUse();
  probe.workers[root]?.fail(error);
  await deadline(probe.started.reach(target), "root bounce");
  const h4 = heapInUse();
  const bounceTo = now();
  await settle(5);
  if (probe.startCalls.count !== graph.size + bounceRestarts) throw new Error(`alloc: ${probe.startCalls.count - graph.size} start calls in a bounce of ${bounceRestarts}`);
  engine.kill();
  await deadline(engine.wait(), "kill + wait");

  const floorProbe = new Probe(graph.size);
  const floorManifolds = makeManifolds(graph, floorProbe);
  collect();
  const floorFrom = now();
  const h5 = heapInUse();
  runFloor(graph, floorManifolds);
  const h6 = heapInUse();
  const floorTo = now();

  // The reference: its install runs in runReference itself, its starts in a
  // microtask after (as the engine's do), so the install's heap is read
  // before that microtask can run.
  const referenceProbe = new Probe(graph.size);
  const referenceManifolds = makeManifolds(graph, referenceProbe);
  collect();
  const referenceInstallFrom = now();
  const h7 = heapInUse();
  const referenceRun = runReference(graph, referenceManifolds);
  const h8 = heapInUse();
  const referenceStartFrom = now();
  const reference = await referenceRun;
  const h9 = heapInUse();
  const referenceStartTo = now();
  if (reference.started !== graph.size || referenceProbe.startCalls.count !== graph.size) {
    throw new Error(`alloc: the reference started ${reference.started} workers with ${referenceProbe.startCalls.count} start calls for ${graph.size} manifolds`);
  }

  // Asked in time order: GcLog forgets what began before each `from`.
  const gcs: Record<AllocPhase, number> = {
    install: (await gcLog.pauses(installFrom, startFrom)).length,
    start: (await gcLog.pauses(startFrom, startTo)).length,
    bounce: (await gcLog.pauses(bounceFrom, bounceTo)).length,
    floor: (await gcLog.pauses(floorFrom, floorTo)).length,
    referenceInstall: (await gcLog.pauses(referenceInstallFrom, referenceStartFrom)).length,
    referenceStart: (await gcLog.pauses(referenceStartFrom, referenceStartTo)).length,
  };
  const clean = (phase: AllocPhase, bytes: number, count: number): number | null => (gcs[phase] === 0 ? bytes / count : null);
  return {
    perManifold: {
      install: clean("install", h1 - h0, graph.size),
      start: clean("start", h2 - h1, graph.size),
      bounce: clean("bounce", h4 - h3, bounceRestarts),
      floor: clean("floor", h6 - h5, graph.size),
      referenceInstall: clean("referenceInstall", h8 - h7, graph.size),
      referenceStart: clean("referenceStart", h9 - h8, graph.size),
    },
    gcs,
    bounceRestarts,
  };
}

function summarize(shape: Shape, graph: Graph, measured: readonly RunBytes[]): AllocResult {
  const phase = (p: AllocPhase): (number | null)[] => measured.map((run) => run.perManifold[p]);
  const less = (p: AllocPhase): (number | null)[] =>
    measured.map((run) => {
      const bytes = run.perManifold[p];
      const floor = run.perManifold.floor;
      return bytes === null || floor === null ? null : bytes - floor;
    });
  const count = (p: AllocPhase): number => measured.reduce((total, run) => total + run.gcs[p], 0);
  return {
    shape,
    size: graph.size,
    runs: measured.length,
    installPerManifold: cleanMedian(phase("install")),
    startPerManifold: cleanMedian(phase("start")),
    floorPerStart: cleanMedian(phase("floor")),
    enginePerStart: cleanMedian(less("start")),
    bounceRestarts: (measured[0] as RunBytes).bounceRestarts,
    bouncePerRestart: cleanMedian(phase("bounce")),
    engineBouncePerRestart: cleanMedian(less("bounce")),
    referenceInstallPerManifold: cleanMedian(phase("referenceInstall")),
    referenceStartPerManifold: cleanMedian(phase("referenceStart")),
    referencePerStart: cleanMedian(less("referenceStart")),
    gcs: {
      install: count("install"), start: count("start"), floor: count("floor"), bounce: count("bounce"),
      referenceInstall: count("referenceInstall"), referenceStart: count("referenceStart"),
    },
    samples: {
      install: phase("install").map(round), start: phase("start").map(round), floor: phase("floor").map(round), bounce: phase("bounce").map(round),
      referenceInstall: phase("referenceInstall").map(round), referenceStart: phase("referenceStart").map(round),
    },
  };
}

/** The median of the runs that had no GC in the phase; null if none had. */
function cleanMedian(values: readonly (number | null)[]): number | null {
  const clean = values.filter((value): value is number => value !== null);
  return clean.length === 0 ? null : median(clean);
}

function round(value: number | null): number | null {
  return value === null ? null : Math.round(value * 10) / 10;
}

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}
