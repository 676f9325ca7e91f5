/**
 * Desired state at scale, through the engine as users get it (the built
 * package, see engine.ts):
 *
 *   npm run build && node --expose-gc --import tsx bench/apply.ts
 *
 * Options: `--sizes=10000,100000` (layered graphs, graphs.ts), `--runs=5`
 * (runs at 100k; smaller graphs get more, as in run.ts), `--when-runs=11`
 * (rounds of the conditions part, after a warm-up round).
 *
 * 1. A reload: every manifold of a running layered graph is rebuilt from its
 *    configuration (new objects, new closures, an equal `config`), except
 *    that 1% have a changed config (replaced, drawn from all), 0.5% are gone
 *    (uninstalled, drawn from those no manifold uses, as in a consistent
 *    configuration) and 0.5% are new (installed, each using one existing
 *    manifold). Timed:
 *    `engine.plan(desired)`, and `engine.apply(desired)` until `onIdle()`.
 *    Counted: start calls of each affected manifold (installed, replaced or
 *    in `plan.restart`: exactly 1 each) and of every other (0).
 * 2. `installAll` of 100,000 manifolds each with a 5-term `when` (every
 *    condition true, so the same graph is installed) against `installAll` of
 *    the same manifolds without `when`: the overhead of conditions. Each round
 *    times both back to back (alternating which goes first), so a busy
 *    machine slows both alike; the table shows medians of the per-round ratios.
 *
 * A full GC before each timed phase; figures to stdout as markdown, progress
 * to stderr. Nothing here is asserted in tests: counts are checked and
 * printed, timings only printed.
 */
import { parseArgs } from "node:util";
import type { Manifold, Manifolds, Plan, StartContext } from "../src/index.js";
import { Engine, target } from "./engine.js";
import { dependentsOf, makeGraph, type Graph, mulberry32 } from "./graphs.js";
import { collect, deadline, machine, median, now } from "./measure.js";

/** CPU time of this process in ms (all threads, GC included): what other processes on a shared machine disturb much less than the wall clock. */
function cpu(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
import { BenchWorker } from "./workload.js";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "10000,100000" },
    runs: { type: "string", default: "5" },
    "when-runs": { type: "string", default: "11" },
  },
});
const sizes = values.sizes.split(",").map(Number);
const runs = Number(values.runs);
const whenRuns = Number(values["when-runs"]);
if (sizes.some((size) => !Number.isInteger(size) || size < 1000) || ![runs, whenRuns].every((n) => Number.isInteger(n) && n >= 1)) {
  console.error("bench/apply: --sizes must be integers >= 1000; --runs and --when-runs integers >= 1");
  process.exit(2);
}

const progress = (message: string): void => void process.stderr.write(`${message}\n`);
const MODULUS = 1_000_003;
const REPLACED = 0.01;
const REMOVED = 0.005;
const ADDED = 0.005;


/** Start calls per manifold, by a dense index (graph nodes first, added ones after). */
class Calls {
  readonly counts: Int32Array;
  constructor(size: number) {
    this.counts = new Int32Array(size);
  }
  reset(): void {
    this.counts.fill(0);
  }
}

/**
 * A manifold as a daemon builds it from one entry of its configuration: a
 * new object and new closures every time, the entry as `config`. Its start
 * reads every input (as real start functions do) and returns a trivial worker.
 */
function build(index: number, inputs: readonly string[], config: unknown, calls: Calls, when?: string): Manifold {
  // One literal either way (`when` undefined or a string), so that both sets
  // of manifolds have the same shape and only the condition differs.
  const manifold: Manifold<BenchWorker, number> = {
    inputs,
    config,
    when,
    start(context: StartContext): BenchWorker {
      calls.counts[index] = (calls.counts[index] as number) + 1;
      let value = 1;
      for (const input of inputs) value += context.getResource(input) as number;
      return new BenchWorker(value % MODULUS);
    },
    output: (worker) => worker.value,
  };
  return manifold as Manifold;
}

function inputNames(graph: Graph, index: number): string[] {
  return (graph.inputs[index] as readonly number[]).map((input) => graph.names[input] as string);
}

interface Reload {
  readonly initial: Manifolds;
  readonly desired: Manifolds;
  /** Name -> index into Calls. */
  readonly indexOf: Map<string, number>;
  readonly replaced: number;
  readonly removed: number;
  readonly added: number;
}

function makeReload(graph: Graph, calls: Calls): Reload {
  const size = graph.size;
  const next = mulberry32(0xa9917);
  const taken = new Set<number>();
  const pick = (count: number, from: readonly number[]): Set<number> => {
    const chosen = new Set<number>();
    while (chosen.size < count) {
      const index = from[Math.floor(next() * from.length)] as number;
      if (taken.has(index)) continue;
      taken.add(index);
      chosen.add(index);
    }
    return chosen;
  };
  const everyone = graph.names.map((_, i) => i);
  // A consistent configuration removes what nothing uses any more: the
  // removed are drawn from the manifolds without dependents (else their
  // dependents' starts would fail with MissingError, which is not what is
  // measured here). The replaced are drawn from all.
  const unused = dependentsOf(graph).flatMap((dependents, i) => (dependents.length === 0 ? [i] : []));
  const replaced = pick(Math.round(size * REPLACED), everyone);
  const removed = pick(Math.round(size * REMOVED), unused);
  const added = Math.round(size * ADDED);
  const indexOf = new Map<string, number>();
  const initial: Manifolds = {};
  const desired: Manifolds = {};
  graph.names.forEach((name, i) => {
    indexOf.set(name, i);
    const inputs = inputNames(graph, i);
    initial[name] = build(i, inputs, { index: i, version: 1, tags: ["a", "b"] }, calls);
    if (removed.has(i)) return;
    // Rebuilt from scratch: an equal config (a new object), or a changed one.
    desired[name] = build(i, [...inputs], { index: i, version: replaced.has(i) ? 2 : 1, tags: ["a", "b"] }, calls);
  });
  for (let k = 0; k < added; k++) {
    const name = `added${k}`;
    let input: number;
    do input = Math.floor(next() * size);
    while (removed.has(input));
    indexOf.set(name, size + k);
    desired[name] = build(size + k, [graph.names[input] as string], { index: size + k, version: 1, tags: [] }, calls);
  }
  return { initial, desired, indexOf, replaced: replaced.size, removed: removed.size, added };
}

interface ReloadFigures {
  planMs: number;
  applyMs: number;
  /** CPU time of apply until onIdle. */
  applyCpuMs: number;
  resolvedMs: number;
  plan: Plan;
  affected: number;
  /** Start calls of the affected manifolds / their number. */
  perAffected: number;
  /** Affected manifolds whose start was not called exactly once. */
  wrong: number;
  /** Start calls of manifolds the plan neither installs, replaces nor restarts. */
  unaffectedStarts: number;
}

async function reloadOnce(graph: Graph): Promise<ReloadFigures> {
  const calls = new Calls(graph.size + Math.round(graph.size * ADDED));
  const reload = makeReload(graph, calls);
  const engine = new Engine({ errorDelay: 0, bounceDelay: 0, jitter: 0 });
  await engine.apply(reload.initial);
  await deadline(engine.onIdle(), "the first apply");
  if (calls.counts.some((count, i) => i < graph.size && count !== 1)) throw new Error("bench/apply: the first apply did not start each manifold once");
  calls.reset();

  collect();
  const t0 = now();
  const plan = engine.plan(reload.desired);
  const planMs = now() - t0;
  if (plan.install.length !== reload.added || plan.uninstall.length !== reload.removed || plan.replace.length !== reload.replaced) {
    throw new Error(`bench/apply: the plan does not match the change (${plan.install.length}/${plan.uninstall.length}/${plan.replace.length})`);
  }

  collect();
  const c1 = cpu();
  const t1 = now();
  const applied = engine.apply(reload.desired);
  await applied;
  const resolvedMs = now() - t1;
  await deadline(engine.onIdle(), "apply until onIdle");
  const applyMs = now() - t1;
  const applyCpuMs = cpu() - c1;

  const affected = new Set([...plan.install, ...plan.replace, ...plan.restart]);
  let affectedCalls = 0;
  let wrong = 0;
  let unaffectedStarts = 0;
  for (const [name, index] of reload.indexOf) {
    const count = calls.counts[index] as number;
    if (affected.has(name)) {
      affectedCalls += count;
      if (count !== 1) wrong++;
    } else {
      unaffectedStarts += count;
    }
  }
  const installed = Object.keys(engine.report().manifolds).length;
  if (installed !== Object.keys(reload.desired).length) throw new Error(`bench/apply: ${installed} manifolds installed after apply, ${Object.keys(reload.desired).length} desired`);
  engine.kill();
  await engine.wait();
  return { planMs, applyMs, applyCpuMs, resolvedMs, plan, affected: affected.size, perAffected: affectedCalls / affected.size, wrong, unaffectedStarts };
}

// ------------------------------------------------------------------ conditions

/** Five requirement names per condition; the last one varies, so there are 50 distinct texts (or one per manifold). */
function whenOf(i: number, distinct: boolean): string {
  const own = distinct ? `feature.m${i}` : `zone.${String.fromCharCode(97 + (i % 5))}`;
  // A flat string, as a configuration file gives it (a template literal is a rope V8 flattens on first hash).
  return JSON.parse(JSON.stringify(`(os.debian | os.rhel${i % 10}) & hardware.vm & !support_level.basic & ${own}`)) as string;
}

interface WhenFigures {
  plainMs: number;
  whenMs: number;
  overhead: number;
  /** The same by CPU time. */
  overheadCpu: number;
  plainStartedMs: number;
  whenStartedMs: number;
  overheadStarted: number;
}

/** installAll of `manifolds` into a fresh engine: the call, and until every manifold has started. */
async function installAllOnce(manifolds: Manifolds, size: number, requirements: readonly string[] | undefined): Promise<{ call: number; callCpu: number; started: number }> {
  let started = 0;
  let resolveAll!: (time: number) => void;
  const all = new Promise<number>((resolve) => (resolveAll = resolve));
  const engine = new Engine({
    errorDelay: 0,
    bounceDelay: 0,
    jitter: 0,
    metrics: {
      recordStart: () => {
        if (++started === size) resolveAll(now());
      },
    },
  });
  collect();
  const c0 = cpu();
  const t0 = now();
  if (requirements === undefined) engine.installAll(manifolds);
  else engine.installAll(manifolds, { requirements });
  const call = now() - t0;
  const callCpu = cpu() - c0;
  const end = await deadline(all, "installAll until started");
  if (Object.keys(engine.report().manifolds).length !== size) throw new Error("bench/apply: installAll left manifolds out");
  engine.kill();
  await engine.wait();
  return { call, callCpu, started: end - t0 };
}

async function conditionsOverhead(graph: Graph, distinct: boolean): Promise<WhenFigures> {
  const calls = new Calls(graph.size);
  const plain: Manifolds = {};
  const conditional: Manifolds = {};
  graph.names.forEach((name, i) => {
    const inputs = inputNames(graph, i);
    plain[name] = build(i, inputs, undefined, calls);
    conditional[name] = build(i, inputs, undefined, calls, whenOf(i, distinct));
  });
  const requirements = ["os.debian", "hardware.vm", "zone.a", "zone.b", "zone.c", "zone.d", "zone.e"];
  if (distinct) for (const name of graph.names) requirements.push(JSON.parse(JSON.stringify(`feature.${name}`)) as string);
  const plainMs: number[] = [];
  const whenMs: number[] = [];
  const ratios: number[] = [];
  const ratiosCpu: number[] = [];
  const plainStarted: number[] = [];
  const whenStarted: number[] = [];
  const ratiosStarted: number[] = [];
  for (let round = 0; round <= whenRuns; round++) {
    // Alternate which goes first, so neither always runs on a warmer (or more fragmented) heap.
    const first = round % 2 === 0;
    const a = first ? await installAllOnce(plain, graph.size, undefined) : undefined;
    const b = await installAllOnce(conditional, graph.size, requirements);
    const p = a ?? (await installAllOnce(plain, graph.size, undefined));
    if (round === 0) continue; // warm-up
    plainMs.push(p.call);
    whenMs.push(b.call);
    ratios.push(b.call / p.call);
    ratiosCpu.push(b.callCpu / p.callCpu);
    plainStarted.push(p.started);
    whenStarted.push(b.started);
    ratiosStarted.push(b.started / p.started);
  }
  return {
    plainMs: median(plainMs),
    whenMs: median(whenMs),
    overhead: median(ratios) - 1,
    overheadCpu: median(ratiosCpu) - 1,
    plainStartedMs: median(plainStarted),
    whenStartedMs: median(whenStarted),
    overheadStarted: median(ratiosStarted) - 1,
  };
}

// ------------------------------------------------------------------ main

const host = machine();
console.log(
  `# bench/apply: ${host.cpu}, ${host.cores} cores, ${host.memoryGb} GB, Node ${host.node}, engine: ${target}, load ${host.loadAverage} at start\n`,
);
console.log(`## Reload of a layered graph: ${REPLACED * 100}% replaced (config changed), ${REMOVED * 100}% removed, ${ADDED * 100}% added; every other manifold rebuilt with an equal config\n`);

const reloads = new Map<number, ReloadFigures[]>();
// A warm-up reload on a small graph, so the first measured run is not also the JIT's.
await reloadOnce(makeGraph("layered", 3000));
for (const size of sizes) {
  const graph = makeGraph("layered", size);
  const count = Math.min(runs * 5, Math.round(runs * Math.sqrt(100_000 / size)));
  const figures: ReloadFigures[] = [];
  for (let run = 0; run < count; run++) {
    progress(`reload ${size}: run ${run + 1}/${count}`);
    figures.push(await reloadOnce(graph));
  }
  reloads.set(size, figures);
}

console.log(
  "| N | runs | install | uninstall | replace | restart | affected | plan ms | apply resolved ms | apply until onIdle ms | its CPU ms | µs/manifold (apply, CPU) | starts per affected | affected not started once | starts of unaffected |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
const perManifold = new Map<number, { plan: number; apply: number; applyCpu: number }>();
for (const [size, figures] of reloads) {
  const plan = (figures[0] as ReloadFigures).plan;
  const planMs = median(figures.map((f) => f.planMs));
  const applyMs = median(figures.map((f) => f.applyMs));
  const resolvedMs = median(figures.map((f) => f.resolvedMs));
  const applyCpuMs = median(figures.map((f) => f.applyCpuMs));
  const worstPer = figures.reduce((worst, f) => (Math.abs(f.perAffected - 1) > Math.abs(worst - 1) ? f.perAffected : worst), 1);
  const wrong = Math.max(...figures.map((f) => f.wrong));
  const unaffected = Math.max(...figures.map((f) => f.unaffectedStarts));
  perManifold.set(size, { plan: (planMs * 1000) / size, apply: (applyMs * 1000) / size, applyCpu: (applyCpuMs * 1000) / size });
  console.log(
    `| ${size} | ${figures.length} | ${plan.install.length} | ${plan.uninstall.length} | ${plan.replace.length} | ${plan.restart.length} | ${(figures[0] as ReloadFigures).affected} | ` +
      `${planMs.toFixed(1)} | ${resolvedMs.toFixed(1)} | ${applyMs.toFixed(1)} | ${applyCpuMs.toFixed(1)} | ` +
      `${((applyMs * 1000) / size).toFixed(2)}, ${((applyCpuMs * 1000) / size).toFixed(2)} | ${worstPer.toFixed(2)} | ${wrong} | ${unaffected} |`,
  );
}
const smallest = Math.min(...sizes);
const largest = Math.max(...sizes);
if (smallest !== largest) {
  const small = perManifold.get(smallest) as { plan: number; apply: number; applyCpu: number };
  const large = perManifold.get(largest) as { plan: number; apply: number; applyCpu: number };
  console.log(
    `\nTime per manifold, ${largest} vs ${smallest}: plan ${(large.plan / small.plan).toFixed(2)}x, apply until onIdle ` +
      `${(large.apply / small.apply).toFixed(2)}x (CPU ${(large.applyCpu / small.applyCpu).toFixed(2)}x) (target: at most 1.5x)`,
  );
}

const WHEN_SIZE = 100_000;
console.log(`\n## installAll of ${WHEN_SIZE} manifolds (layered), each with a 5-term when (all true), vs without when\n`);
console.log(
  "| when texts | runs | without when: call ms | with when: call ms | overhead (call) | overhead (call, CPU) | without: until started ms | with: until started ms | overhead (until started) |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
const whenGraph = makeGraph("layered", WHEN_SIZE);
for (const [label, distinct] of [
  ["50 shared texts", false],
  ["one per manifold", true],
] as const) {
  progress(`installAll with when: ${label}`);
  const f = await conditionsOverhead(whenGraph, distinct);
  console.log(
    `| ${label} | ${whenRuns} | ${f.plainMs.toFixed(1)} | ${f.whenMs.toFixed(1)} | ${(100 * f.overhead).toFixed(1)}% | ${(100 * f.overheadCpu).toFixed(1)}% | ` +
      `${f.plainStartedMs.toFixed(1)} | ${f.whenStartedMs.toFixed(1)} | ${(100 * f.overheadStarted).toFixed(1)}% |`,
  );
}
console.log(`\nload ${machine().loadAverage} at the end (the machine is shared: compare ratios and counts more than absolute times)`);
