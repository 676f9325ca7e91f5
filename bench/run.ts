/**
 * The benchmark: `npm run bench [-- options]`. See bench/README.md for what
 * each figure means.
 *
 * Options (all optional):
 *   --sizes=1000,10000,100000   graph sizes (manifolds per graph)
 *   --shapes=chain,fanout,layered
 *   --runs=5                    runs per row (shape, size, stopTimeout) at 100k manifolds; the
 *                               tables show medians. Smaller graphs get more runs, since their
 *                               timings are shorter and noisier: runs x sqrt(100000 / N), at
 *                               most 5x (25 at 1k, 16 at 10k)
 *   --stop-timeouts=30000,0     EngineConfig.stopTimeout values: the first fills the main
 *                               table, every one the timer table (30000 is the default;
 *                               0 arms no stuck-worker watchdogs)
 *   --order=topo                install order: topo (inputs first) or reverse (dependents
 *                               first, so rule 9 has to hold every start back)
 *   --gc=full                   the GC before each timed phase: full (no phase pays for
 *                               another's garbage, but small graphs may run partly
 *                               unoptimised) or minor (code stays optimised); see scenarios.ts
 *   --resident=engine           engine: keep one small engine of the build running for the whole
 *                               run, as a daemon does, so that the full GC before each phase
 *                               leaves the engine's classes and optimised code alone; none: no
 *                               such engine (see resident.ts)
 *   --alloc-runs=3              runs of bench/alloc.ts (allocation per install, start and
 *                               restart), spawned at the end at the largest size with the
 *                               node flags it needs; 0 skips it
 *   --out=bench/results.json    where to write the results; --out= writes nothing
 *
 * Progress goes to stderr, the tables to stdout. Exits 1 when a row had
 * problems (the engine misbehaved: see the target "every phase ends quiet")
 * or when allocation figures were asked for and bench/alloc.ts gave none; a
 * missed speed or memory target leaves the exit code 0. The environment picks the
 * builds: BENCH_TARGET (see engine.ts), and BENCH_TARGET_SMALL for the cells
 * below 100,000 manifolds (default: the same module as BENCH_TARGET).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { makeGraph, SHAPES, type Shape } from "./graphs.js";
import { smallTarget, target, useMainTarget } from "./engine.js";
import { ALLOC_NODE_FLAGS, machine, WARM_UP_SIZE } from "./measure.js";
import { startResident } from "./resident.js";
import { measureHeap, runOnce, type RunFigures, type RunOptions } from "./scenarios.js";
import {
  allocTable, checkTargets, fmtMs, mainTable, runFailures, scalingTable, summarize, targetList, timerTable, type AllocReport, type Result,
} from "./summary.js";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "1000,10000,100000" },
    shapes: { type: "string", default: SHAPES.join(",") },
    runs: { type: "string", default: "5" },
    "stop-timeouts": { type: "string", default: "30000,0" },
    order: { type: "string", default: "topo" },
    gc: { type: "string", default: "full" },
    resident: { type: "string", default: "engine" },
    "alloc-runs": { type: "string", default: "3" },
    out: { type: "string", default: "bench/results.json" },
  },
});

const sizes = numbers("sizes", values.sizes);
const stopTimeouts = numbers("stop-timeouts", values["stop-timeouts"]);
const runs = numbers("runs", values.runs)[0] as number;
const allocRuns = numbers("alloc-runs", values["alloc-runs"])[0] as number;
const shapes = values.shapes.split(",").map((s) => {
  if (!(SHAPES as readonly string[]).includes(s)) fail(`--shapes: unknown shape ${s} (known: ${SHAPES.join(", ")})`);
  return s as Shape;
});
const order = values.order;
if (order !== "topo" && order !== "reverse") fail(`--order must be topo or reverse (got ${order})`);
const gc = values.gc;
if (gc !== "full" && gc !== "minor") fail(`--gc must be full or minor (got ${gc})`);
const residentKind = values.resident;
if (residentKind !== "engine" && residentKind !== "none") fail(`--resident must be engine or none (got ${residentKind})`);

const host = machine();
const started = Date.now();
console.error(`machine: ${host.cpu}, ${host.cores} cores, ${host.memoryGb} GB, Node ${host.node}, load ${host.loadAverage}`);

let resident = residentKind === "engine" ? await startResident() : undefined;
let onMainTarget = smallTarget === undefined;
const results: Result[] = [];
for (const size of [...sizes].sort((a, b) => a - b)) {
  if (size >= 100_000 && !onMainTarget) {
    useMainTarget();
    onMainTarget = true;
    // The resident engine is of the build measured: from now on, the main one.
    if (resident !== undefined) {
      await resident.stop();
      resident = await startResident();
    }
  }
  for (const shape of shapes) {
    const graph = makeGraph(shape, size);
    for (const stopTimeout of stopTimeouts) {
      const options: RunOptions = { stopTimeout, order, gc };
      await runOnce(makeGraph(shape, WARM_UP_SIZE), options, "engine");
      const figures: RunFigures[] = [];
      const count = runsFor(size);
      for (let run = 1; run <= count; run++) {
        // Alternated: each half moves with what ran before it (scenarios.ts, RunFirst).
        const f = await runOnce(graph, options, run % 2 === 1 ? "engine" : "yardsticks");
        figures.push(f);
        console.error(
          `${shape} ${size} stopTimeout=${stopTimeout} run ${run}/${count} (${f.first} first): cold start ${fmtMs(f.coldStartMs)} ms, ` +
            `bounce ${fmtMs(f.bounceMs)} ms, kill+wait ${fmtMs(f.killMs)} ms, hand-written ${fmtMs(f.handwrittenMs)} ms, ` +
            `its stop ${fmtMs(f.handwrittenStopMs)} ms, reference stop ${fmtMs(f.referenceStopMs)} ms, GC in cold start ${fmtMs(f.coldGcMs)} ms (hand-written ${fmtMs(f.handwrittenGcMs)} ms, reference ${fmtMs(f.referenceGcMs)} ms)${f.problems.length > 0 ? `, PROBLEMS: ${f.problems.join("; ")}` : ""}`,
        );
      }
      results.push(summarize({ shape, size, stopTimeout, order }, figures, await measureHeap(graph, options)));
    }
  }
}

await resident?.stop();
const alloc = measureAllocation();
const main = results.filter((r) => r.stopTimeout === stopTimeouts[0]);
const targets = checkTargets(main, results, alloc);
const seconds = Math.round((Date.now() - started) / 1000);

console.log(`\nMachine: ${host.cpu}, ${host.cores} cores, ${host.memoryGb} GB RAM, Node ${host.node} (V8 ${host.v8}), ${host.platform}`);
console.log(`Runs: median of ${sizes.map((n) => `${runsFor(n)} at ${n}`).join(", ")} per row; install order ${order}; ${gc} GC before each phase; ${seconds} s in all; 1-minute load average at start ${host.loadAverage}.\n`);
console.log(`Engine: ${target === "dist" ? "the built package (dist/)" : target === "src" ? "the sources through tsx (BENCH_TARGET=src)" : `the build in ${target} (BENCH_TARGET)`}; config: errorDelay 0, bounceDelay 0, jitter 0, stopTimeout ${stopTimeouts[0]}.${smallTarget === undefined ? "" : ` Cells below 100k: the build in ${smallTarget} (BENCH_TARGET_SMALL).`} ${residentKind === "engine" ? "A resident engine of the same build (300 manifolds) ran throughout (--resident=engine; see bench/resident.ts)." : "No resident engine (--resident=none): each full GC found no engine alive."}\n`);
console.log(mainTable(main));
console.log("\nTime per manifold across sizes:\n");
console.log(scalingTable(main));
console.log("\nTimers (setTimeout calls through the clock) and the phases that arm them, by stopTimeout:\n");
console.log(timerTable(results));
if (alloc !== undefined) {
  console.log(`\nAllocation (bench/alloc.ts; bytes; young generation ${alloc.newSpaceMb} MB, so no GC inside a phase; medians of ${allocRuns} run${allocRuns === 1 ? "" : "s"}):\n`);
  console.log(allocTable(alloc));
}
console.log("\nTargets:\n");
console.log(targetList(targets));

if (values.out !== "") {
  const output = {
    date: new Date().toISOString(),
    commit: commit(),
    machine: host,
    target,
    smallTarget,
    options: { sizes, shapes, runs, stopTimeouts, order, gc, resident: residentKind, allocRuns },
    seconds,
    targets,
    results,
    alloc: alloc ?? null,
  };
  writeFileSync(values.out, `${JSON.stringify(output, null, 2)}\n`);
  console.error(`\nwrote ${values.out}`);
}

// A run in which the engine misbehaved, or that got no allocation figures it asked for, exits 1 (see runFailures).
const failures = runFailures(results, allocRuns > 0, alloc);
for (const failure of failures) console.error(`\nfailed: ${failure}`);
if (failures.length > 0) process.exitCode = 1;

/**
 * Runs bench/alloc.ts in a process of its own (it needs a young generation
 * too large to fill, which would change every other figure here) at the
 * largest size, on the same build; its JSON comes back on stdout, its
 * progress goes to our stderr. Undefined when skipped or when it failed.
 */
function measureAllocation(): AllocReport | undefined {
  if (allocRuns === 0) return undefined;
  const script = fileURLToPath(new URL("./alloc.ts", import.meta.url));
  const root = fileURLToPath(new URL("..", import.meta.url));
  const size = Math.max(...sizes);
  const args = [...ALLOC_NODE_FLAGS, "--import", "tsx", script, `--size=${size}`, `--shapes=${shapes.join(",")}`, `--runs=${allocRuns}`, "--json"];
  console.error(`\nallocation: node ${args.join(" ")}`);
  // Without BENCH_TARGET_SMALL: alloc.ts measures the largest size, with the main build.
  const env = { ...process.env, BENCH_TARGET_SMALL: undefined };
  const child = spawnSync(process.execPath, args, { cwd: root, env, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8", maxBuffer: 64 * 2 ** 20 });
  if (child.status !== 0) {
    console.error(`allocation: bench/alloc.ts failed (${child.error?.message ?? `exit ${child.status ?? child.signal}`}); no allocation figures`);
    return undefined;
  }
  try {
    return JSON.parse(child.stdout) as AllocReport;
  } catch (error) {
    console.error(`allocation: bench/alloc.ts printed no JSON (${String(error)}); no allocation figures`);
    return undefined;
  }
}

/** More runs for smaller (faster, noisier) graphs; see --runs. */
function runsFor(size: number): number {
  return Math.round(runs * Math.min(5, Math.max(1, Math.sqrt(100_000 / size))));
}

function numbers(option: string, text: string): number[] {
  const list = text.split(",").map(Number);
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 0)) fail(`--${option} takes whole numbers separated by commas (got ${text})`);
  return list;
}

/** The commit measured, marked "+dirty" when src/ has uncommitted changes. */
function commit(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { encoding: "utf8" }).trim() !== "";
    return dirty ? `${head}+dirty` : head;
  } catch {
    return "unknown";
  }
}

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}
