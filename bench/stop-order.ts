/**
 * What the order of a shutdown costs (issue 16's kill target):
 *
 *   npm run bench:stop-order [-- --shapes=layered --size=100000 --rounds=5]
 *
 * Why: issue 16 asks for kill + wait within 2x the hand-written stop at
 * 100k. The hand-written stop (handwritten.ts) knows the whole graph and
 * kills it layer by layer, each layer in the order its workers were
 * allocated; an engine keeping the contract kills each worker once its own
 * dependents have stopped, in the order they free it. On the layered graph,
 * whose edges are random, that order scatters across the heap. This script
 * measures, on the same graph and the same workers (workload.ts), how much
 * of the stop is that order and how much is waiting for the dependents, with
 * nothing of an engine in between but the reference's one loop
 * (reference.ts):
 *
 * 1. hand-written stop: the yardstick;
 * 2. reference stop: `stopReference`, each input killed as soon as its last
 *    dependent has stopped (as the engine does);
 * 3. reference stop, waves sorted: the same, but the inputs freed while
 *    workers settle are killed together a microtask later, in allocation
 *    order (the obvious way to give the heap back its order while still
 *    stopping dependents first);
 * 4. all at once, allocation order: every worker killed in one loop, in
 *    index order, no order kept; each settles through the reference's
 *    handler and loop, and the time runs until the last has (the next
 *    event-loop turn);
 * 5. all at once, release order: the same, in the order the reference's
 *    stop kills them (first every worker with no dependent, then each input
 *    as its last dependent goes), without waiting for anyone;
 * 6. engine kill + wait: the engine (the build in dist/, or BENCH_TARGET's,
 *    as run.ts), configured as run.ts configures it, after its cold start:
 *    for reading the engine against 1 to 5 in the same process. As in
 *    run.ts, the resident engine (resident.ts) runs throughout: without
 *    one, the full GC before each stop frees the engine's hidden classes
 *    and V8 throws away its optimised code (the engine's 100k fan-out kill
 *    took 195 ms so, against 67 ms in run.ts).
 *
 * 4 and 5 do the same work in two orders: what the order alone costs. 2
 * against 5 is what keeping the contract's order costs on top (counting
 * each worker's dependents, a stop deadline per kill, each kill made from
 * the handler of the stop that freed it). 3 is whether sorting the kills
 * buys the order back. 4 and 5 are timed until the next event-loop turn.
 *
 * Each stop runs on a fresh start of its own (the hand-written start, the
 * reference's or the engine's cold start, untimed), after a full GC and the wait for V8's sweeping
 * (`collectAndSweep`), as in run.ts. A round runs the six in an order
 * rotated from round to round, after one warm-up round that is not counted.
 * Prints, per shape, the median ms of each and its ratio to the
 * hand-written stop, as markdown on stdout; progress on stderr.
 */
import { parseArgs } from "node:util";
import type { Manifold } from "../src/index.js";
import { makeGraph, parseShape, SHAPES, type Graph } from "./graphs.js";
import { startByHand, stopByHand } from "./handwritten.js";
import { Engine } from "./engine.js";
import { collectAndSweep, CountingClock, deadline, machine, median, now, positiveInteger } from "./measure.js";
import { allocationOrder, killAllAtOnce, releaseOrder, runReference, stopReference, type ReferenceState } from "./reference.js";
import { startResident } from "./resident.js";
import { fmtMs } from "./summary.js";
import { makeManifolds, measuredConfig, Probe, STOP_TIMEOUT } from "./workload.js";

/**
 * A stop of the reference's: `prepare` does, untimed, what the stop needs
 * before it begins (as an engine's ids and graph are made at install) and
 * returns the stop itself, which is timed.
 */
type ReferenceStop = (state: ReferenceState) => () => Promise<void>;

/** The six stops, in the order round 0 runs them; each times one stop of a fresh start of `graph`. */
const STOPS: readonly { readonly name: string; readonly time: (graph: Graph) => Promise<number> }[] = [
  { name: "hand-written stop", time: timeHandwrittenStop },
  { name: "reference stop", time: timeReferenceStop((state) => () => stopReference(state, STOP_TIMEOUT)) },
  {
    name: "reference stop, waves sorted",
    time: timeReferenceStop((state) => {
      const killOrder = allocationOrder(state);
      return () => stopReference(state, STOP_TIMEOUT, killOrder);
    }),
  },
  {
    name: "all at once, allocation order",
    time: timeReferenceStop((state) => {
      const order = [...state.entries.values()];
      return () => killAllAtOnce(order);
    }),
  },
  {
    name: "all at once, release order",
    time: timeReferenceStop((state) => {
      const order = releaseOrder(state);
      return () => killAllAtOnce(order);
    }),
  },
  { name: "engine kill + wait", time: timeEngineKill },
];

async function timeHandwrittenStop(graph: Graph): Promise<number> {
  const started = await deadline(startByHand(graph, makeManifolds(graph, new Probe(graph.size))), "hand-written start");
  await collectAndSweep();
  const t0 = now();
  await deadline(stopByHand(started), "hand-written stop");
  return now() - t0;
}

/** Times a stop of the reference's (see ReferenceStop) after its start, and checks that every worker stopped. */
function timeReferenceStop(prepare: ReferenceStop): (graph: Graph) => Promise<number> {
  return async (graph) => {
    const state = await deadline(runReference(graph, makeManifolds(graph, new Probe(graph.size))), "reference start");
    const stop = prepare(state);
    await collectAndSweep();
    const t0 = now();
    await deadline(stop(), "reference stop");
    const ms = now() - t0;
    for (const entry of state.entries.values()) if (entry.worker !== undefined) throw new Error(`reference stop: ${entry.name} still runs`);
    return ms;
  };
}

/** The engine's kill + wait after its cold start, configured as run.ts configures it. */
async function timeEngineKill(graph: Graph): Promise<number> {
  const probe = new Probe(graph.size);
  const manifolds = makeManifolds(graph, probe);
  const clock = new CountingClock(STOP_TIMEOUT);
  const engine = new Engine(measuredConfig(probe, clock));
  for (const name of graph.names) engine.install(name, manifolds[name] as Manifold);
  await deadline(probe.started.reach(graph.size), "engine cold start");
  if (probe.startCalls.count !== graph.size) throw new Error(`engine cold start made ${probe.startCalls.count} start calls for ${graph.size} manifolds`);
  await collectAndSweep();
  const t0 = now();
  engine.kill();
  await deadline(engine.wait(), "engine kill + wait");
  const ms = now() - t0;
  if (clock.pending > 0) throw new Error(`engine kill + wait: ${clock.pending} timers pending after wait()`);
  return ms;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      shapes: { type: "string", default: SHAPES.join(",") },
      size: { type: "string", default: "100000" },
      rounds: { type: "string", default: "5" },
    },
  });
  const shapes = values.shapes.split(",").map((shape) => parseShape(shape, "--shapes"));
  const size = positiveInteger(values.size, "--size");
  const rounds = positiveInteger(values.rounds, "--rounds");
  const resident = await startResident();
  const { cpu, cores } = machine();
  console.log(`Stops of ${size.toLocaleString("en")} workers, median of ${rounds} rounds (after one warm-up), ${cpu}, ${cores} cores, Node ${process.version}.\n`);
  console.log(`| shape | ${STOPS.map((stop) => `${stop.name} ms`).join(" | ")} | ${STOPS.slice(1).map((stop) => `${stop.name} / hand-written`).join(" | ")} |`);
  console.log(`| --- | ${STOPS.map(() => "---").join(" | ")} | ${STOPS.slice(1).map(() => "---").join(" | ")} |`);
  for (const shape of shapes) {
    const graph = makeGraph(shape, size);
    const times: number[][] = STOPS.map(() => []);
    for (let round = 0; round <= rounds; round++) {
      for (let i = 0; i < STOPS.length; i++) {
        const at = (round + i) % STOPS.length;
        const stop = STOPS[at] as (typeof STOPS)[number];
        const ms = await stop.time(graph);
        if (round > 0) times[at]?.push(ms); // round 0 is the warm-up
        process.stderr.write(`${shape} ${size} round ${round}${round === 0 ? " (warm-up)" : ""}: ${stop.name} ${fmtMs(ms)} ms\n`);
      }
    }
    const medians = times.map((ms) => median(ms));
    const hand = medians[0] as number;
    console.log(`| ${shape} | ${medians.map(fmtMs).join(" | ")} | ${medians.slice(1).map((ms) => `${(ms / hand).toFixed(2)}x`).join(" | ")} |`);
  }
  await resident.stop();
}

await main();
