/**
 * Plans and conditions at scale: `node --expose-gc --import tsx bench/plan.ts`
 * (options: `--sizes=10000,100000 --runs=7`).
 *
 * 1. `computePlan` on the layered graph of graphs.ts where 1% of the
 *    manifolds are replaced (config changed), 0.5% removed and 0.5% added,
 *    and where one is replaced. Every other desired manifold is a new object
 *    with an equal `config` (what a daemon rebuilding its manifolds from an
 *    unchanged file passes), so the deep comparison is paid for the whole
 *    graph; other rows keep those as the installed objects themselves (the
 *    identity shortcut). The installed set is a Map (the plan walks the whole
 *    desired graph) or also answers `dependents` (it walks from the changes).
 * 2. `selectByConditions` for 100k manifolds each with a 5-term `when`,
 *    against `installAll` of the same graph without conditions (the engine's
 *    install checks refuse `when` until the engine takes conditions), as
 *    texts shared by many manifolds and as a distinct text per manifold, with
 *    every condition true (the cost of conditions alone) and with some false
 *    (kept manifolds that listed a left-out one are then new objects).
 *
 * Medians of `--runs` runs after a warm-up, a full GC before each timed run.
 * computePlan and selectByConditions run from the sources (tsx); installAll is
 * the engine of bench/engine.ts (the built package unless BENCH_TARGET says
 * otherwise). Figures go to stdout as markdown.
 */
import { parseArgs } from "node:util";
import { Engine } from "./engine.js";
import type { Manifold, Manifolds } from "../src/index.js";
import { computePlan, type InstalledSet, type Plan, type PlanEntry } from "../src/plan.js";
import { selectByConditions } from "../src/when.js";
import { makeGraph, type Graph, mulberry32 } from "./graphs.js";
import { collect, machine, median, now, Tally } from "./measure.js";
import { BenchWorker } from "./workload.js";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "10000,100000" },
    runs: { type: "string", default: "7" },
  },
});
const sizes = values.sizes.split(",").map(Number);
const runs = Number(values.runs);
if (sizes.some((size) => !Number.isInteger(size) || size < 1000) || !Number.isInteger(runs) || runs < 1) {
  console.error("bench/plan: --sizes must be integers >= 1000, --runs an integer >= 1");
  process.exit(2);
}


function pick(count: number, size: number, taken: Set<number>, next: () => number): number[] {
  const chosen: number[] = [];
  while (chosen.length < count) {
    const index = Math.floor(next() * size);
    if (taken.has(index)) continue;
    taken.add(index);
    chosen.push(index);
  }
  return chosen;
}

const start = (): BenchWorker => new BenchWorker(1);

/** A manifold rebuilt from its configuration: a new object and closures every time. */
function build(inputs: readonly string[], config: unknown): Manifold {
  return Object.assign({ inputs, start, output: (worker: BenchWorker) => worker.value }, { config }) as Manifold;
}

interface Change {
  installed: Map<string, PlanEntry>;
  /** The same set answering `dependents` from an index kept beside it, as the engine's graph does. */
  withDependents: InstalledSet;
  desired: PlanEntry[];
  desiredSame: PlanEntry[];
  replaced: number;
  removed: number;
  added: number;
}

/** The installed graph, and a desired set with `replace`, `remove` and `add` manifolds changed. */
function makeChange(graph: Graph, replace: number, remove: number, add: number): Change {
  const installed = new Map<string, PlanEntry>();
  const dependents = new Map<string, PlanEntry[]>();
  const inputsOf = (i: number): string[] => (graph.inputs[i] as number[]).map((input) => graph.names[input] as string);
  graph.names.forEach((name, i) => {
    const inputs = inputsOf(i);
    const entry = { name, manifold: build(inputs, { index: i, version: 1, tags: ["a", "b"] }), inputs };
    installed.set(name, entry);
    for (const input of inputs) {
      const list = dependents.get(input);
      if (list === undefined) dependents.set(input, [entry]);
      else list.push(entry);
    }
  });
  const none: readonly PlanEntry[] = [];
  const withDependents: InstalledSet = {
    size: installed.size,
    get: (name) => installed.get(name),
    values: () => installed.values(),
    dependents: (name) => dependents.get(name) ?? none,
  };
  const next = mulberry32(0xc4a96e);
  const taken = new Set<number>();
  const replaced = new Set(pick(replace, graph.size, taken, next));
  const removed = new Set(pick(remove, graph.size, taken, next));
  const desired: PlanEntry[] = [];
  const desiredSame: PlanEntry[] = [];
  graph.names.forEach((name, i) => {
    if (removed.has(i)) return;
    const inputs = inputsOf(i);
    const version = replaced.has(i) ? 2 : 1;
    const entry = { name, manifold: build(inputs, { index: i, version, tags: ["a", "b"] }), inputs };
    desired.push(entry);
    desiredSame.push(replaced.has(i) ? entry : (installed.get(name) as PlanEntry));
  });
  for (let k = 0; k < add; k++) {
    const inputs = [graph.names[Math.floor(next() * graph.size)] as string];
    const entry = { name: `new${k}`, manifold: build(inputs, { index: -k, version: 1, tags: [] }), inputs };
    desired.push(entry);
    desiredSame.push(entry);
  }
  return { installed, withDependents, desired, desiredSame, replaced: replaced.size, removed: removed.size, added: add };
}

/** CPU milliseconds of this process (all threads, the GC's included) since `since`. */
function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

function timePlan(installed: InstalledSet, entries: PlanEntry[]): { ms: number; cpu: number; plan: Plan } {
  let plan: Plan | undefined;
  const samples: number[] = [];
  const cpu: number[] = [];
  computePlan(installed, { entries }, 1); // warm-up
  for (let run = 0; run < runs; run++) {
    collect();
    const c0 = process.cpuUsage();
    const t0 = now();
    plan = computePlan(installed, { entries }, 1);
    samples.push(now() - t0);
    cpu.push(cpuMs(c0));
  }
  return { ms: median(samples), cpu: median(cpu), plan: plan as Plan };
}

const host = machine();
console.log(`# bench/plan: ${host.cpu}, ${host.cores} cores, Node ${process.version}, load ${host.loadAverage}\n`);

console.log("## computePlan on the layered graph\n");
console.log("| N | change | unchanged given as | installed set | plan ms | plan CPU ms | ns/manifold | install | uninstall | replace | keep | restart |");
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
for (const size of sizes) {
  const graph = makeGraph("layered", size);
  const changes = [
    ["1% replaced, 0.5% removed, 0.5% added", makeChange(graph, Math.round(size * 0.01), Math.round(size * 0.005), Math.round(size * 0.005))],
    ["1 replaced", makeChange(graph, 1, 0, 0)],
  ] as const;
  for (const [what, change] of changes) {
    for (const [label, entries] of [
      ["equal config", change.desired],
      ["same object", change.desiredSame],
    ] as const) {
      for (const [kind, installed] of [
        ["Map (walks the desired graph)", change.installed],
        ["with dependents (walks from the changes)", change.withDependents],
      ] as const) {
        const { ms, cpu, plan } = timePlan(installed, entries);
        if (plan.install.length !== change.added || plan.uninstall.length !== change.removed || plan.replace.length !== change.replaced) {
          throw new Error(`bench/plan: the plan does not match the change (${plan.install.length}/${plan.uninstall.length}/${plan.replace.length})`);
        }
        console.log(
          `| ${size} | ${what} | ${label} | ${kind} | ${ms.toFixed(1)} | ${cpu.toFixed(1)} | ${((ms * 1e6) / size).toFixed(0)} | ` +
            `${plan.install.length} | ${plan.uninstall.length} | ${plan.replace.length} | ${plan.keep.length} | ${plan.restart.length} |`,
        );
      }
    }
  }
}

console.log("\n## selectByConditions: 100k manifolds, each with a 5-term when, vs installAll\n");
const SIZE = 100_000;
const graph = makeGraph("layered", SIZE);
const requirements = ["os.debian", "hardware.vm", "region.eu", "tier.2", "zone.a", "zone.c"];
/**
 * The string as a configuration file would give it: flat. A template literal
 * makes a rope that V8 flattens, allocating, the first time it is hashed,
 * which would charge the selection for what parsing the file already did.
 */
function flat(text: string): string {
  return JSON.parse(JSON.stringify(text)) as string;
}

function conditional(distinct: boolean): Manifolds {
  const manifolds: Manifolds = {};
  graph.names.forEach((name, i) => {
    const inputs = (graph.inputs[i] as number[]).map((input) => graph.names[input] as string);
    // Shared texts: 50 variants; distinct: the manifold's own name is one of the 5 terms.
    const own = distinct ? `feature.${name}` : `zone.${String.fromCharCode(97 + (i % 5))}`;
    const when = flat(`(os.debian | os.rhel${i % 10}) & hardware.vm & !support_level.basic & ${own}`);
    manifolds[name] = Object.assign({ inputs, start, output: (worker: BenchWorker) => worker.value }, { when }) as Manifold;
  });
  return manifolds;
}
const plain: Manifolds = {};
graph.names.forEach((name, i) => {
  const inputs = (graph.inputs[i] as number[]).map((input) => graph.names[input] as string);
  plain[name] = { inputs, start, output: (worker: BenchWorker) => worker.value };
});

/** One installAll of the plain graph into a fresh engine: the time of the call, and until every worker has started. */
async function installOnce(): Promise<{ call: number; started: number }> {
  const started = new Tally();
  const engine = new Engine({ errorDelay: 0, bounceDelay: 0, jitter: 0, stopTimeout: 0, metrics: { recordStart: () => started.hit() } });
  collect();
  const t0 = now();
  engine.installAll(plain);
  const call = now() - t0;
  const all = await started.reach(SIZE);
  engine.kill();
  await engine.wait(); // so that no engine is left for the selections' GCs to trace
  return { call, started: all - t0 };
}

interface SelectFigures {
  installMs: number;
  startedMs: number;
  selectMs: number;
  /** Medians of the per-round ratios: each round times installAll and the selection back to back, so a busy machine slows both alike. */
  ratio: number;
  ratioStarted: number;
  kept: number;
  derived: number;
}

async function timeSelect(manifolds: Manifolds, reqs: readonly string[]): Promise<SelectFigures> {
  const installs: number[] = [];
  const starts: number[] = [];
  const selects: number[] = [];
  const ratios: number[] = [];
  const ratiosStarted: number[] = [];
  let kept = 0;
  let derived = 0;
  for (let run = 0; run <= runs; run++) {
    const install = await installOnce();
    collect();
    const t0 = now();
    // The engine passes its install checks as `keep`; plain installAll runs
    // them too, so what conditions add is the selection with a `keep` that
    // does nothing.
    selectByConditions(manifolds, reqs, (_, manifold) => manifold);
    const selectMs = now() - t0;
    if (run === 0) {
      // Warm-up; and the counts, untimed.
      const selection = selectByConditions(manifolds, reqs);
      kept = selection.kept.length;
      derived = selection.kept.filter((k) => k.manifold !== manifolds[k.name]).length;
      continue;
    }
    installs.push(install.call);
    starts.push(install.started);
    selects.push(selectMs);
    ratios.push(selectMs / install.call);
    ratiosStarted.push(selectMs / install.started);
  }
  return {
    installMs: median(installs),
    startedMs: median(starts),
    selectMs: median(selects),
    ratio: median(ratios),
    ratioStarted: median(ratiosStarted),
    kept,
    derived,
  };
}

console.log(
  "| when texts | requirements | select ms | installAll call ms | until all started ms | select / call | select / until started | kept | kept without some inputs |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
const shared = conditional(false);
const distinct = conditional(true);
const rows: [string, Manifolds, readonly string[]][] = [
  ["50 shared, all true", shared, [...requirements, "zone.b", "zone.d", "zone.e"]],
  ["50 shared, 80% true", shared, [...requirements, "zone.b", "zone.d"]],
  ["50 shared, 40% true", shared, requirements],
  ["one per manifold, all true", distinct, [...requirements, ...graph.names.map((name) => flat(`feature.${name}`))]],
  ["one per manifold, 90% true", distinct, [...requirements, ...graph.names.filter((_, i) => i % 10 !== 3).map((name) => flat(`feature.${name}`))]],
];
for (const [label, manifolds, reqs] of rows) {
  const f = await timeSelect(manifolds, reqs);
  console.log(
    `| ${label} | ${reqs.length} | ${f.selectMs.toFixed(1)} | ${f.installMs.toFixed(1)} | ${f.startedMs.toFixed(1)} | ` +
      `${(100 * f.ratio).toFixed(1)}% | ${(100 * f.ratioStarted).toFixed(1)}% | ${f.kept} | ${f.derived} |`,
  );
}
