/**
 * The resident engine: one small engine kept running for the whole
 * benchmark, beside the engines it measures, as a daemon's engine runs for
 * the life of its process (`--resident=engine`, the default).
 *
 * Why: before each timed phase the benchmark forces a full GC, and by then
 * every engine of the previous phase is garbage. With no engine left at
 * all, that GC also frees the hidden classes (V8 maps) of the engine's
 * records, and V8 throws away the optimised code compiled for them
 * ("weak objects" deoptimisations): each phase then starts partly
 * unoptimised. A process that runs an engine never gets there, since its
 * engine keeps those classes alive (and, for the records that exist only
 * while something happens, the engine keeps one of each: src/shapes.ts). With `--resident=none` the benchmark
 * measures that case anyway (every figure before this option was).
 *
 * With one, the 10k cold start took about half as long; keeping only the
 * workload's objects alive changed nothing, so it is the engine's own
 * classes (figures in bench/README.md, "The resident engine").
 *
 * It is the build under test (see engine.ts), holds the same workload as
 * the measured engines on a small layered graph, all running, plus one
 * start that has not returned yet (so that a start attempt is alive too),
 * and is stopped when the benchmark ends.
 */
import { Engine } from "./engine.js";
import { makeGraph } from "./graphs.js";
import { deadline } from "./measure.js";
import { makeManifolds, Probe } from "./workload.js";

/** Manifolds in the resident engine: enough for every kind of record, too few to weigh on any figure. */
const RESIDENT_SIZE = 300;

/** A running resident engine; `stop` kills it and resolves once it has stopped. */
export interface Resident {
  stop(): Promise<void>;
}

/** Starts a resident engine of the current build (`Engine` as engine.ts exports it now); resolves once every worker runs. */
export async function startResident(): Promise<Resident> {
  const graph = makeGraph("layered", RESIDENT_SIZE);
  const probe = new Probe(RESIDENT_SIZE);
  const engine = new Engine({ errorDelay: 0, bounceDelay: 0, jitter: 0, metrics: probe.metrics });
  engine.installAll(makeManifolds(graph, probe));
  // Never returns until the engine stops it: its start attempt stays alive.
  engine.install("resident-pending-start", {
    inputs: [graph.names[0] as string],
    start: ({ signal }) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason as Error))),
  });
  await deadline(probe.started.reach(RESIDENT_SIZE), "resident engine start");
  return {
    async stop() {
      engine.kill();
      await deadline(engine.wait(), "resident engine stop");
    },
  };
}
