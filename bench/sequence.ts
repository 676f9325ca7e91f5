/**
 * The small graphs' cold start with nothing else in the process (issue 16):
 *
 *   npm run bench:sequence [-- --shapes=chain,fanout,layered --sizes=1000,10000 --rounds=25 --processes=2]
 *
 * Why: `run.ts` times, in one process, each engine's whole life (cold start,
 * `report()`, root bounce, uninstall and reinstall, kill) and the floor, the
 * reference and the hand-written start and stop (the two halves alternating
 * from run to run). At 1,000 and 10,000
 * manifolds a cold start takes milliseconds, and what ran before it in the
 * process (which code V8 has optimised, for which hidden classes, and what
 * the last full GC threw away) moves it by as much as the engine's own work:
 * both the engine's cold start and the hand-written one. This script leaves
 * out everything but three cold starts, the engine's, the reference's
 * (reference.ts, the least any engine keeping the contract must do) and the
 * hand-written one, so that engine/hand-written can be read without the rest
 * of the run, beside reference/hand-written: where the reference too is over
 * a target, no engine keeping the contract meets it in that setting.
 *
 * Each cell (shape and size) runs in child processes of its own
 * (`--processes`, one after the other: the same cell moves by up to 1.7x
 * from one process to the next), each with the resident engine
 * (resident.ts), for `--rounds` rounds (default 25 at 1k or less, 10 above)
 * plus one warm-up round that is not counted. A round times three starts,
 * each after a full GC and the wait for V8's sweeping (`collectAndSweep`),
 * as in run.ts, in an order rotated from round to round (round 0, the
 * warm-up, begins with the first of this list, round 1 with the second,
 * round 2 with the third, and so on), so that each start takes each place
 * in turn, nearly equally often (with 25 rounds one start goes first once
 * more than the others): what ran just before moves a start as much as the
 * engine's own work does (bench/README.md, "What runs first"):
 * 1. a new engine, configured as run.ts configures it (restart delays 0, the
 *    counting clock, `metrics.recordStart`), installs the graph in index
 *    order: timed from the first install until every worker has started;
 *    then kill + wait (untimed);
 * 2. the reference's start (timed until it resolves), then its stop;
 * 3. the hand-written start (handwritten.ts, timed until it resolves), then
 *    its stop.
 * Each child prints the medians of its rounds as JSON; this process prints
 * them per child, with engine/hand-written and reference/hand-written.
 * Progress goes to stderr, the table to stdout as markdown.
  */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Engine } from "./engine.js";
import { makeGraph, parseShape, SHAPES, type Shape } from "./graphs.js";
import { startByHand, stopByHand } from "./handwritten.js";
import { collectAndSweep, CountingClock, deadline, machine, median, now, positiveInteger } from "./measure.js";
import { runReference, stopReference } from "./reference.js";
import { startResident } from "./resident.js";
import { fmtMs } from "./summary.js";
import { makeManifolds, measuredConfig, Probe, STOP_TIMEOUT } from "./workload.js";

const { values } = parseArgs({
  options: {
    shapes: { type: "string", default: SHAPES.join(",") },
    sizes: { type: "string", default: "1000,10000" },
    rounds: { type: "string", default: "" },
    processes: { type: "string", default: "2" },
    /** Internal: run one cell in this process and print its figures as JSON. */
    cell: { type: "string" },
  },
});

/** What one process measured for one cell: ms, medians over its rounds. */
interface CellFigures {
  engineMs: number;
  referenceMs: number;
  handwrittenMs: number;
}

/** Rounds per process: enough for a stable median without making the 10k cells slow. */
function roundsFor(size: number): number {
  if (values.rounds !== "") return positiveInteger(values.rounds, "--rounds");
  return size <= 1_000 ? 25 : 10;
}

async function engineColdStart(shape: Shape, size: number): Promise<number> {
  const graph = makeGraph(shape, size);
  const probe = new Probe(size);
  const manifolds = makeManifolds(graph, probe);
  const engine = new Engine(measuredConfig(probe, new CountingClock(STOP_TIMEOUT)));
  await collectAndSweep();
  const t0 = now();
  for (const name of graph.names) engine.install(name, manifolds[name] as NonNullable<(typeof manifolds)[string]>);
  const end = await deadline(probe.started.reach(size), "cold start");
  if (probe.startCalls.count !== size) throw new Error(`engine cold start made ${probe.startCalls.count} start calls for ${size} manifolds`);
  engine.kill();
  await deadline(engine.wait(), "kill + wait");
  return end - t0;
}

async function referenceStart(shape: Shape, size: number): Promise<number> {
  const graph = makeGraph(shape, size);
  const probe = new Probe(size);
  const manifolds = makeManifolds(graph, probe);
  await collectAndSweep();
  const t0 = now();
  const state = await deadline(runReference(graph, manifolds), "reference start");
  const ms = now() - t0;
  if (probe.startCalls.count !== size) throw new Error(`reference start made ${probe.startCalls.count} start calls for ${size} manifolds`);
  await deadline(stopReference(state, STOP_TIMEOUT), "reference stop");
  return ms;
}

async function handwrittenStart(shape: Shape, size: number): Promise<number> {
  const graph = makeGraph(shape, size);
  const manifolds = makeManifolds(graph, new Probe(size));
  await collectAndSweep();
  const t0 = now();
  const started = await deadline(startByHand(graph, manifolds), "hand-written start");
  const ms = now() - t0;
  if (started.workers.size !== size) throw new Error(`hand-written start kept ${started.workers.size} workers for ${size} manifolds`);
  await deadline(stopByHand(started), "hand-written stop");
  return ms;
}

async function runCell(shape: Shape, size: number): Promise<CellFigures> {
  const resident = await startResident();
  const engine: number[] = [];
  const reference: number[] = [];
  const handwritten: number[] = [];
  const rounds = roundsFor(size);
  // Each start with the list its times go to, in the order round 0 runs them.
  const starts: readonly (readonly [number[], () => Promise<number>])[] = [
    [engine, () => engineColdStart(shape, size)],
    [reference, () => referenceStart(shape, size)],
    [handwritten, () => handwrittenStart(shape, size)],
  ];
  for (let round = 0; round <= rounds; round++) {
    for (let i = 0; i < starts.length; i++) {
      const [times, start] = starts[(round + i) % starts.length] as (typeof starts)[number];
      const ms = await start();
      if (round > 0) times.push(ms); // round 0 is the warm-up
    }
  }
  await resident.stop();
  return { engineMs: median(engine), referenceMs: median(reference), handwrittenMs: median(handwritten) };
}

function parseCell(text: string): { shape: Shape; size: number } {
  const [shape, size] = text.split(":");
  return { shape: parseShape(shape, "--cell"), size: positiveInteger(size ?? "", "--cell's size") };
}

/** Runs one cell in a child process (this script with --cell), with this process's Node flags. */
function inChild(shape: Shape, size: number): CellFigures {
  const script = fileURLToPath(import.meta.url);
  const rounds = values.rounds === "" ? [] : [`--rounds=${values.rounds}`];
  const child = spawnSync(process.execPath, [...process.execArgv, script, `--cell=${shape}:${size}`, ...rounds], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    env: process.env,
  });
  if (child.error !== undefined) throw new Error(`bench/sequence.ts: could not run the child for ${shape} ${size}: ${child.error.message}`);
  if (child.status !== 0) throw new Error(`bench/sequence.ts: the child for ${shape} ${size} exited with ${child.status ?? child.signal}`);
  const last = child.stdout.trim().split("\n").pop() ?? "";
  if (last === "") throw new Error(`bench/sequence.ts: the child for ${shape} ${size} printed no figures`);
  return JSON.parse(last) as CellFigures;
}

if (values.cell !== undefined) {
  const { shape, size } = parseCell(values.cell);
  console.log(JSON.stringify(await runCell(shape, size)));
} else {
  const shapes = values.shapes.split(",").map((shape) => parseShape(shape, "--shapes"));
  const sizes = values.sizes.split(",").map((size) => positiveInteger(size, "--sizes"));
  const processes = positiveInteger(values.processes, "--processes");
  if (values.rounds !== "") positiveInteger(values.rounds, "--rounds"); // refused here, not in every child
  const host = machine();
  console.error(`machine: ${host.cpu}, ${host.cores} cores, Node ${host.node}, load ${host.loadAverage}`);
  const rows: string[] = [];
  for (const size of sizes) {
    for (const shape of shapes) {
      const figures: CellFigures[] = [];
      for (let p = 1; p <= processes; p++) {
        const f = inChild(shape, size);
        console.error(`${shape} ${size} process ${p}/${processes}: engine ${fmtMs(f.engineMs)} ms, reference ${fmtMs(f.referenceMs)} ms, hand-written ${fmtMs(f.handwrittenMs)} ms`);
        figures.push(f);
      }
      const cells = (pick: (f: CellFigures) => string): string => figures.map(pick).join(", ");
      const ratio = (ms: (f: CellFigures) => number) => cells((f) => `${(ms(f) / f.handwrittenMs).toFixed(2)}x`);
      rows.push(
        `| ${shape} | ${size / 1000}k | ${cells((f) => fmtMs(f.engineMs))} | ${cells((f) => fmtMs(f.referenceMs))} | ${cells((f) => fmtMs(f.handwrittenMs))} | ` +
          `${ratio((f) => f.engineMs)} | ${ratio((f) => f.referenceMs)} |`,
      );
    }
  }
  console.log(`\nCold starts alone (bench/sequence.ts): ${processes} process${processes === 1 ? "" : "es"} per cell, each the median of its rounds; load average at start ${host.loadAverage}.\n`);
  console.log("| shape | N | engine cold start ms | reference start ms | hand-written start ms | engine/hand-written | reference/hand-written |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const row of rows) console.log(row);
}
