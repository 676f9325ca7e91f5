/**
 * One run of every measurement on one graph: the floor, the reference, the
 * hand-written start and stop, and the phases of an engine's life, each timed
 * on its own and each followed by a check that the engine did exactly what it
 * should and is quiet. GC pauses inside the engine's cold start and root
 * bounce are recorded too (a `PerformanceObserver` on "gc" entries).
 *
 * "Quiet" means: after the phase's last expected start, a few event-loop
 * turns pass with no further start call, and no timer is pending.
 *
 * Before each timed phase a GC clears what ran before (`--gc`):
 * - `full` (the default): a full GC, so that no phase pays for another's
 *   garbage, then a pause while V8 finishes sweeping in the background
 *   (`collectAndSweep`: otherwise the phase shares the cores with it, and
 *   waits for it in its first scavenge). It
 *   also throws away optimised code that referred to objects it freed; with
 *   no engine alive (`--resident=none`) that is all the code compiled for
 *   the engine's records, and at small N a phase runs partly unoptimised:
 *   a 1,000-manifold cold start then takes several times longer per
 *   manifold than at 100,000 (see resident.ts).
 * - `minor`: a scavenge only, which keeps optimised code, as in a process
 *   that has been running a while; but the old garbage of earlier phases and
 *   runs is then collected whenever V8 decides, often inside a later phase.
 * The heap needs full GCs, so it is measured in a run of its own.
 */
import type { Manifold, Manifolds } from "../src/index.js";
import { BounceError, Engine } from "./engine.js";
import { dependentsOf, transitiveDependents, type Graph } from "./graphs.js";
import { startByHand, stopByHand } from "./handwritten.js";
import { collectAndSweep, CountingClock, deadline, GcLog, heapAfterGc, minorGc, now, settle, settledHeap, timersSince, type TimerCounts } from "./measure.js";
import { runReference, stopReference, type ReferenceState } from "./reference.js";
import { makeManifolds, measuredConfig, Probe, runFloor } from "./workload.js";

export interface RunOptions {
  /** EngineConfig.stopTimeout: 30000 is the default; 0 arms no stuck-worker watchdogs. */
  stopTimeout: number;
  /** Install order: "topo" (inputs first) or "reverse" (dependents first; rule 9 must hold them back). */
  order: "topo" | "reverse";
  /** The GC before each timed phase: see the top of this file. */
  gc: "full" | "minor";
}

/** What one run measured. Times in ms, heap in bytes. */
export interface RunFigures {
  installMs: number;
  coldStartMs: number;
  /** GC pauses (ms, summed) that began during the cold start, install included. */
  coldGcMs: number;
  /** Start calls during the cold start, divided by the number of manifolds (target: 1). */
  coldChurn: number;
  reportMs: number;
  /** Transitive dependents of the root. */
  bounceAffected: number;
  bounceMs: number;
  /** The longest GC pause (ms) that began during the root bounce; 0 if none did. */
  bounceGcMs: number;
  /** Start calls of the root's transitive dependents during the bounce, per dependent (target: 1). */
  bounceChurn: number;
  uninstallAffected: number;
  uninstallMs: number;
  /** Start calls of the uninstalled manifold's transitive dependents, per dependent (target: 1). */
  uninstallChurn: number;
  killMs: number;
  floorMs: number;
  /** The same cold start by the reference, the least any engine must do (reference.ts). */
  referenceMs: number;
  /** The reference's shutdown right after, every worker running: the least kill + wait must do. */
  referenceStopMs: number;
  /** GC pauses (ms, summed) that began during the reference's cold start, measured as `coldGcMs` is. */
  referenceGcMs: number;
  /** The same cold start written by hand (handwritten.ts): maps, topological layers, `Promise.all` per layer. */
  handwrittenMs: number;
  /** Its reverse-layer stop, every worker running. */
  handwrittenStopMs: number;
  /** GC pauses (ms, summed) that began during the hand-written start, measured as `coldGcMs` is. */
  handwrittenGcMs: number;
  timers: { cold: TimerCounts; bounce: TimerCounts; uninstall: TimerCounts; kill: TimerCounts };
  /** Which half of the run went first (see RunFirst). */
  first: RunFirst;
  /** Anything the engine did that it should not have; empty when all is well. */
  problems: string[];
}

/**
 * The manifold the uninstall phase removes: the first one from the middle
 * (index N/2) on that has a dependent, so that there is something to bounce;
 * in the fan-out, where only the root has dependents, the middle one.
 */
export function uninstallIndex(graph: Graph): number {
  const dependents = dependentsOf(graph);
  const mid = graph.size >> 1;
  for (let i = mid; i < graph.size; i++) if ((dependents[i] as number[]).length > 0) return i;
  return mid;
}

/** Heap in bytes per manifold once the cold start is over. */
export interface HeapFigures {
  /** The engine and the workers (the manifolds existed before). */
  heapPerManifold: number;
  /** The floor's: the workers (and the floor's map of outputs). */
  floorHeapPerManifold: number;
  /** The reference's (reference.ts), measured alike: the least any engine keeps, plus the workers. */
  referenceHeapPerManifold: number;
}

/**
 * Which half of a run goes first: the engine's life, or the yardsticks (the
 * floor, the reference, the hand-written start and stop, in that order).
 * Each half moves with what ran before it in the process (engine /
 * hand-written by up to 2.6x at 1k, 1.6x at 10k and 1.4x at 100k:
 * bench/README.md, "What runs first"), so run.ts alternates the two
 * between runs rather than giving one side the same place in every run.
 */
export type RunFirst = "engine" | "yardsticks";

/** Measures everything once: one engine's life (garbage once this returns), the floor, the reference, the hand-written start and stop; `first` says which half runs first. */
export async function runOnce(graph: Graph, options: RunOptions, first: RunFirst): Promise<RunFigures> {
  const problems: string[] = [];
  const before = first === "yardsticks" ? await yardsticks(graph, options) : undefined;
  const engine = await lifecycle(graph, options, problems);
  const measured = before ?? (await yardsticks(graph, options));
  return { ...engine, ...measured, first, problems };
}

/** The floor, the reference and the hand-written start and stop, in that order. */
async function yardsticks(graph: Graph, options: RunOptions): Promise<Pick<RunFigures, YardstickFigure>> {
  const floorMs = await timeFloor(graph, options);
  const reference = await timeReference(graph, options);
  const handwritten = await timeHandwritten(graph, options);
  return { floorMs, ...reference, ...handwritten };
}

type YardstickFigure = "floorMs" | "referenceMs" | "referenceStopMs" | "referenceGcMs" | "handwrittenMs" | "handwrittenStopMs" | "handwrittenGcMs";

/** Every GC pause from here on, for the phases to pick theirs from (it must observe before a phase begins). */
const gcLog = new GcLog();

/** The GC before a timed phase (see the top of this file). */
async function beforePhase(options: RunOptions): Promise<void> {
  if (options.gc === "full") await collectAndSweep();
  else minorGc();
}

/** Heap is measured over at least this many manifolds (several engines of a small graph). */
const HEAP_SAMPLE = 10_000;

/**
 * The heap after a cold start, of the engine, of the floor and of the
 * reference, each after a full GC. A small graph is measured as several
 * engines at once, enough for HEAP_SAMPLE manifolds: the heap moves by a megabyte or so for reasons of
 * its own, which at 1,000 manifolds would be a thousand bytes per manifold.
 */
export async function measureHeap(graph: Graph, options: RunOptions): Promise<HeapFigures> {
  const copies = Math.ceil(HEAP_SAMPLE / graph.size);
  const manifolds = copies * graph.size;

  const builds = Array.from({ length: copies }, () => build(graph));
  const before = settledHeap();
  const engines = [];
  for (const built of builds) engines.push((await coldStart(graph, options, [], built)).engine);
  const heapPerManifold = (heapAfterGc() - before) / manifolds;
  for (const engine of engines) engine.kill();
  await Promise.all(engines.map((engine) => engine.wait()));

  const floors = Array.from({ length: copies }, () => build(graph));
  const floorBefore = settledHeap();
  for (const floor of floors) runFloor(graph, floor.manifolds);
  const floorHeapPerManifold = (heapAfterGc() - floorBefore) / manifolds;
  // The workers are the user's, not the engine's: keep them alive past the measurement, as the engine does.
  if (floors.some((floor) => floor.probe.workers.length !== graph.size)) throw new Error("floor lost its workers");

  // The reference, measured as the engine is: what the contract itself costs.
  const references = Array.from({ length: copies }, () => build(graph));
  const referenceBefore = settledHeap();
  const states: ReferenceState[] = [];
  for (const reference of references) states.push(await deadline(runReference(graph, reference.manifolds), "reference"));
  const referenceHeapPerManifold = (heapAfterGc() - referenceBefore) / manifolds;
  // Held until measured (read after it, so that nothing could free it before).
  if (states.some((state) => state.entries.size !== graph.size || state.started !== graph.size)) throw new Error("reference lost its entries");
  return { heapPerManifold, floorHeapPerManifold, referenceHeapPerManifold };
}

/** A graph's manifolds, and the probe they report to. */
function build(graph: Graph): { probe: Probe; manifolds: Manifolds } {
  const probe = new Probe(graph.size);
  return { probe, manifolds: makeManifolds(graph, probe) };
}

/**
 * An engine's life: install, cold start, report, root bounce,
 * uninstall of a mid-graph manifold (and, untimed, installing it again so
 * that everything runs once more), kill + wait.
 */
async function lifecycle(
  graph: Graph,
  options: RunOptions,
  problems: string[],
): Promise<Omit<RunFigures, YardstickFigure | "first" | "problems">> {
  const root = 0;
  const bounceSet = transitiveDependents(graph, root);
  const mid = uninstallIndex(graph);
  const midName = graph.names[mid] as string;
  const uninstallSet = transitiveDependents(graph, mid);
  const started = await coldStart(graph, options, problems);
  const { engine, probe, clock, manifolds } = started;

  await beforePhase(options);
  let t0 = now();
  const report = engine.report();
  const reportMs = now() - t0;
  const notStarted = Object.values(report.manifolds).filter((m) => m.state !== "started").length;
  if (notStarted > 0) problems.push(`report after cold start: ${notStarted} manifolds not started`);

  // The root's worker exits with BounceError: the root restarts, and each
  // transitive dependent must restart exactly once.
  probe.calls.fill(0);
  let timers = clock.counts();
  await beforePhase(options);
  t0 = now();
  probe.workers[root]?.fail(new BounceError("bench: root bounce"));
  const bounceEnd = await deadline(probe.started.reach(probe.started.count + bounceSet.size + 1), "root bounce");
  const bounceMs = bounceEnd - t0;
  await expectQuiet("root bounce", started, problems);
  const bounceGcMs = Math.max(0, ...(await gcLog.pauses(t0, bounceEnd)));
  const bounceTimers = timersSince(clock, timers);
  checkCalls("root bounce", probe, (i) => (i === root || bounceSet.has(i) ? 1 : 0), problems);
  const bounceChurn = sumOver(probe.calls, bounceSet) / Math.max(1, bounceSet.size);

  // Uninstall a mid-graph manifold. Its transitive dependents are bounced;
  // with the input gone each start fails with MissingError and the manifold
  // stays stopped, so each should see exactly one start call.
  probe.calls.fill(0);
  timers = clock.counts();
  await beforePhase(options);
  t0 = now();
  // Until both: the promise uninstall returned has resolved, and each dependent has had its start call.
  await deadline(Promise.all([probe.startCalls.reach(probe.startCalls.count + uninstallSet.size), engine.uninstall(midName)]), "uninstall");
  const uninstallMs = now() - t0;
  await expectQuiet("uninstall", started, problems);
  const uninstallTimers = timersSince(clock, timers);
  checkCalls("uninstall", probe, (i) => (uninstallSet.has(i) ? 1 : 0), problems);
  const uninstallChurn = sumOver(probe.calls, uninstallSet) / Math.max(1, uninstallSet.size);

  // Put it back (untimed), so that kill + wait meets a graph where everything runs.
  probe.calls.fill(0);
  engine.install(midName, manifolds[midName] as Manifold);
  await deadline(probe.started.reach(probe.started.count + uninstallSet.size + 1), "reinstall");
  await expectQuiet("reinstall", started, problems);
  checkCalls("reinstall", probe, (i) => (i === mid || uninstallSet.has(i) ? 1 : 0), problems);

  timers = clock.counts();
  probe.calls.fill(0);
  await beforePhase(options);
  t0 = now();
  engine.kill();
  await deadline(engine.wait(), "kill + wait");
  const killMs = now() - t0;
  const killTimers = timersSince(clock, timers);
  if (clock.pending > 0) problems.push(`kill: ${clock.pending} timers pending after wait()`);
  checkCalls("kill", probe, () => 0, problems);

  return {
    installMs: started.installMs,
    coldStartMs: started.coldStartMs,
    coldGcMs: started.coldGcMs,
    coldChurn: started.coldChurn,
    reportMs,
    bounceAffected: bounceSet.size,
    bounceMs,
    bounceGcMs,
    bounceChurn,
    uninstallAffected: uninstallSet.size,
    uninstallMs,
    uninstallChurn,
    killMs,
    timers: { cold: started.coldTimers, bounce: bounceTimers, uninstall: uninstallTimers, kill: killTimers },
  };
}

interface Started {
  engine: Engine;
  manifolds: Manifolds;
  probe: Probe;
  clock: CountingClock;
  installMs: number;
  coldStartMs: number;
  coldGcMs: number;
  coldChurn: number;
  coldTimers: TimerCounts;
}

/**
 * Installs every manifold (one `install` call each, in the chosen order) and
 * waits until all are started. The cold start is timed from the first
 * install to the last start.
 */
async function coldStart(graph: Graph, options: RunOptions, problems: string[], built = build(graph)): Promise<Started> {
  const { probe, manifolds } = built;
  const order = graph.names.map((name) => [name, manifolds[name]] as const);
  if (options.order === "reverse") order.reverse();
  const clock = new CountingClock(options.stopTimeout);
  const engine = new Engine(measuredConfig(probe, clock));
  await beforePhase(options);
  const t0 = now();
  for (const [name, m] of order) engine.install(name, m as NonNullable<typeof m>);
  const installMs = now() - t0;
  const end = await deadline(probe.started.reach(graph.size), "cold start");
  const coldStartMs = end - t0;
  const started: Started = {
    engine,
    manifolds,
    probe,
    clock,
    installMs,
    coldStartMs,
    coldGcMs: 0,
    coldChurn: probe.startCalls.count / graph.size,
    coldTimers: clock.counts(),
  };
  await expectQuiet("cold start", started, problems);
  started.coldGcMs = sum(await gcLog.pauses(t0, end));
  checkCalls("cold start", probe, () => 1, problems);
  started.coldChurn = probe.startCalls.count / graph.size;
  return started;
}

async function timeFloor(graph: Graph, options: RunOptions): Promise<number> {
  const { manifolds } = build(graph);
  await beforePhase(options);
  const t0 = now();
  runFloor(graph, manifolds);
  return now() - t0;
}

/**
 * The reference's cold start, install to last start, on fresh manifolds, and
 * its shutdown right after, every worker running (with the engine's
 * stopTimeout); each after the same GC as the engine's phases. The GC pauses
 * that began during the start are summed as the engine's cold start's are,
 * and asked for before the stop's GC, as the engine's are before the next
 * phase's.
 */
async function timeReference(graph: Graph, options: RunOptions): Promise<Pick<RunFigures, "referenceMs" | "referenceStopMs" | "referenceGcMs">> {
  const { probe, manifolds } = build(graph);
  await beforePhase(options);
  let t0 = now();
  const state = await deadline(runReference(graph, manifolds), "reference");
  const end = now();
  const referenceMs = end - t0;
  if (probe.startCalls.count !== graph.size) throw new Error(`reference made ${probe.startCalls.count} start calls for ${graph.size} manifolds`);
  const referenceGcMs = sum(await gcLog.pauses(t0, end));
  await beforePhase(options);
  t0 = now();
  await deadline(stopReference(state, options.stopTimeout), "reference stop");
  const referenceStopMs = now() - t0;
  for (const entry of state.entries.values()) if (entry.worker !== undefined) throw new Error(`reference stop: ${entry.name} still runs`);
  return { referenceMs, referenceStopMs, referenceGcMs };
}

/**
 * The hand-written start-up (handwritten.ts) on fresh manifolds, and its
 * stop right after, every worker running; each after the same GC as the
 * engine's phases, and the start's GC pauses summed as the reference's are.
 */
async function timeHandwritten(graph: Graph, options: RunOptions): Promise<Pick<RunFigures, "handwrittenMs" | "handwrittenStopMs" | "handwrittenGcMs">> {
  const { probe, manifolds } = build(graph);
  await beforePhase(options);
  let t0 = now();
  const started = await deadline(startByHand(graph, manifolds), "hand-written start");
  const end = now();
  const handwrittenMs = end - t0;
  const handwrittenGcMs = sum(await gcLog.pauses(t0, end));
  if (probe.startCalls.count !== graph.size || started.workers.size !== graph.size) {
    throw new Error(`hand-written start made ${probe.startCalls.count} start calls and kept ${started.workers.size} workers for ${graph.size} manifolds`);
  }
  // A start run before one of its inputs would have read undefined and made NaN.
  for (const [name, output] of started.outputs) {
    if (typeof output !== "number" || Number.isNaN(output)) throw new Error(`hand-written start: ${name} started before its inputs (output ${String(output)})`);
  }
  await beforePhase(options);
  t0 = now();
  await deadline(stopByHand(started), "hand-written stop");
  const handwrittenStopMs = now() - t0;
  if (started.failures.length > 0) throw new Error(`hand-written start: ${started.failures.length} workers failed, e.g. ${started.failures[0]?.name}`);
  return { handwrittenMs, handwrittenStopMs, handwrittenGcMs };
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

/**
 * Lets the engine run on for a few event-loop turns (restarts with no delay
 * may wait for the next turn) and complains if it starts anything more or
 * leaves a timer pending.
 */
async function expectQuiet(phase: string, run: { probe: Probe; clock: CountingClock }, problems: string[]): Promise<void> {
  const calls = run.probe.startCalls.count;
  await settle(5);
  if (run.probe.startCalls.count !== calls) problems.push(`${phase}: ${run.probe.startCalls.count - calls} start calls after the phase ended`);
  if (run.clock.pending > 0) problems.push(`${phase}: ${run.clock.pending} timers still pending`);
}

function checkCalls(phase: string, probe: Probe, expected: (index: number) => number, problems: string[]): void {
  for (const i of probe.mismatches(expected)) {
    problems.push(`${phase}: m${i} had ${probe.calls[i]} start calls, expected ${expected(i)}`);
  }
}

function sumOver(calls: Int32Array, indices: Set<number>): number {
  let sum = 0;
  for (const i of indices) sum += calls[i] as number;
  return sum;
}
