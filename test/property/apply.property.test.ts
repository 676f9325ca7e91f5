/**
 * Property of desired state (issue 12): for random current and desired
 * graphs (DAGs whose manifolds keep or change their config, inputs and
 * `when`, some removed, some added, some passed again as the very object
 * installed), with random requirements, `apply` then `onIdle` ends with
 * exactly the desired set running; each affected manifold (installed,
 * replaced, or in `plan.restart`) has its start called exactly once, with
 * every desired input running; the others are never restarted; the plan
 * made just before predicted all of it, and agrees with an independent model
 * of the comparison rule written here.
 *
 * In some cases the second apply is made while the first is still
 * converging (after a random number of scheduler steps): then a manifold the
 * second apply leaves untouched has its start called only if its first start
 * was still to come, and every affected one exactly once after the apply.
 *
 * Every start result and every worker's stop goes through fast-check's
 * scheduler, so the engine meets them in random orders; along the way the
 * harness checks rule 8 (never two workers, or a worker and a start, for one
 * name) and that a removed, replaced or restarted worker is killed only once
 * the old workers of its changed dependents have stopped.
 *
 * Environment: FC_NUM_RUNS, FC_SEED, FC_PATH, FC_VERBOSE (see commands.ts).
 */
import fc from "fast-check";
import { describe, it } from "vitest";
import { valueWorker, type Engine, type Manifold, type Manifolds, type Plan, type StartContext, type Worker } from "../../src/index.js";
import { failOnUnhandledRejections, makeEngine, RejectionLog, settle, type TestClock } from "../fixtures.js";
import { assertProperty, schedulerArb, type SchedulerSource } from "./commands.js";

const rejections = failOnUnhandledRejections(new RejectionLog());

// ------------------------------------------------------------------ scenarios

/** What a manifold is built from. Inputs are indices below its own, so every graph is a DAG. */
interface Spec {
  readonly inputs: readonly number[];
  /** Stands for the configuration: another version is a changed config. */
  readonly version: number;
  /** Whether the manifold carries a `config` at all (without one, only the same object is kept). */
  readonly config: boolean;
  readonly when: string | undefined;
}

/** How a desired manifold relates to the current one of its name. */
type Mode = "reuse" | "rebuild" | "fresh";

interface Scenario {
  readonly size: number;
  readonly current: readonly (Spec | undefined)[];
  /** `reuse`: the installed object itself; `rebuild`: a new object from the current spec; `fresh`: a new object from `spec`. */
  readonly desired: readonly ({ readonly mode: Mode; readonly spec: Spec } | undefined)[];
  readonly initialRequirements: readonly string[];
  readonly requirements: readonly string[];
  readonly bounceDelay: number;
  /** Scheduler steps the first apply gets before the second is made; undefined: it converges first. */
  readonly interrupt: number | undefined;
}

const WHENS = [undefined, undefined, undefined, "on", "!on", "on | off"] as const;

function holds(when: string | undefined, requirements: ReadonlySet<string>): boolean {
  switch (when) {
    case undefined:
      return true;
    case "on":
      return requirements.has("on");
    case "!on":
      return !requirements.has("on");
    case "on | off":
      return requirements.has("on") || requirements.has("off");
    default:
      throw new Error(`unexpected when ${when}`);
  }
}

const specArb = (index: number): fc.Arbitrary<Spec> =>
  fc.record({
    inputs: fc.subarray(Array.from({ length: index }, (_, i) => i)),
    version: fc.nat({ max: 1 }),
    config: fc.nat({ max: 4 }).map((n) => n > 0), // mostly with a config
    when: fc.constantFrom(...WHENS),
  });

const scenarioArb: fc.Arbitrary<Scenario> = fc.integer({ min: 2, max: 8 }).chain((size) =>
  fc.record({
    size: fc.constant(size),
    current: fc.tuple(...Array.from({ length: size }, (_, i) => fc.option(specArb(i), { freq: 4 }))).map((specs) => specs.map((spec) => spec ?? undefined)),
    desired: fc.tuple(
      ...Array.from({ length: size }, (_, i) =>
        fc.option(fc.record({ mode: fc.constantFrom<Mode>("reuse", "rebuild", "rebuild", "fresh"), spec: specArb(i) }), { freq: 4 }),
      ),
    ).map((entries) => entries.map((entry) => entry ?? undefined)),
    initialRequirements: fc.subarray(["on", "off"]),
    requirements: fc.subarray(["on", "off"]),
    bounceDelay: fc.constantFrom(0, 10),
    interrupt: fc.option(fc.nat({ max: 12 }), { freq: 2, nil: undefined }),
  }),
);

const nameOf = (index: number): string => `n${index}`;

// ------------------------------------------------------------------ the model

/** A manifold as the model knows it once installed. */
interface ModelEntry {
  readonly spec: Spec;
  /** The object the user gave (reused as is by `reuse`). */
  readonly manifold: Manifold;
  /** Its input names after conditions. */
  readonly inputs: readonly string[];
}

interface ModelPlan {
  install: string[];
  uninstall: string[];
  replace: string[];
  keep: string[];
  skip: string[];
  restart: string[];
}

/** The desired record after conditions: what is kept (with its inputs after conditions), and what is skipped. */
function select(desired: ReadonlyMap<string, { spec: Spec; manifold: Manifold }>, requirements: ReadonlySet<string>) {
  const skipped = new Set<string>();
  for (const [name, { spec }] of desired) if (!holds(spec.when, requirements)) skipped.add(name);
  const kept = new Map<string, ModelEntry>();
  for (const [name, { spec, manifold }] of desired) {
    if (skipped.has(name)) continue;
    kept.set(name, { spec, manifold, inputs: spec.inputs.map(nameOf).filter((input) => !skipped.has(input)) });
  }
  return { kept, skipped };
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((name) => b.includes(name));

/** The comparison rule, written independently of src/plan.ts. */
function unchanged(old: ModelEntry, next: ModelEntry): boolean {
  if (!sameSet(old.inputs, next.inputs)) return false;
  if (old.manifold === next.manifold) return true;
  return old.spec.config && next.spec.config && old.spec.version === next.spec.version && old.spec.when === next.spec.when;
}

function modelPlan(installed: ReadonlyMap<string, ModelEntry>, kept: ReadonlyMap<string, ModelEntry>, skipped: ReadonlySet<string>, size: number): ModelPlan {
  const plan: ModelPlan = { install: [], uninstall: [], replace: [], keep: [], skip: [...skipped], restart: [] };
  const changed = new Set<string>();
  for (const name of installed.keys()) {
    if (!kept.has(name)) {
      plan.uninstall.push(name);
      changed.add(name);
    }
  }
  // Index order is a topological order: an input's fate is known before its dependents'.
  for (let i = 0; i < size; i++) {
    const name = nameOf(i);
    const next = kept.get(name);
    if (next === undefined) continue;
    const old = installed.get(name);
    if (old === undefined) {
      plan.install.push(name);
      changed.add(name);
    } else if (!unchanged(old, next)) {
      plan.replace.push(name);
      changed.add(name);
    } else {
      plan.keep.push(name);
      if (next.inputs.some((input) => changed.has(input))) {
        plan.restart.push(name);
        changed.add(name);
      }
    }
  }
  for (const list of Object.values(plan)) list.sort();
  return plan;
}

// ------------------------------------------------------------------ the harness

class PropertyWorker implements Worker {
  killed = false;
  stopped = false;
  readonly #done: Promise<void>;
  #resolve!: () => void;

  constructor(
    readonly name: string,
    readonly harness: Harness,
  ) {
    this.#done = new Promise<void>((resolve) => (this.#resolve = resolve));
  }

  kill(): void {
    if (this.killed) return;
    this.killed = true;
    this.harness.killed(this);
    // The worker stops when the scheduler says.
    void this.harness.s.schedule(Promise.resolve(), `stop ${this.name}`).then(() => {
      this.stopped = true;
      this.harness.stopped(this);
      this.#resolve();
    });
  }

  wait(): Promise<void> {
    return this.#done;
  }
}

/** Steps beyond which the engine counts as livelocked. */
const QUIESCE_LIMIT = 2_000;

class Harness {
  readonly violations: string[] = [];
  readonly trace: string[] = [];
  /** Start calls per name since the last reset, with the inputs each saw running. */
  starts = new Map<string, string[][]>();
  /** Per name: a start in flight ("start"), or the worker whose wait() has not settled (rule 8 allows one of either). */
  readonly busy = new Map<string, PropertyWorker | "start">();
  /** The running worker of each name once a phase is over. */
  readonly running = new Map<string, PropertyWorker>();
  /** While an apply runs: the workers it found running, the names it changes, and who depends on whom before it. */
  phase: { old: Map<string, PropertyWorker>; changed: Set<string>; dependents: Map<string, string[]> } | undefined;

  constructor(
    readonly s: fc.Scheduler,
    readonly clock: TestClock,
  ) {}

  violate(message: string): void {
    this.violations.push(message);
  }

  /** A manifold of `name` built from `spec`: new closures each time, as a daemon rebuilding from its configuration makes. */
  manifold(name: string, spec: Spec): Manifold {
    const inputs = spec.inputs.map(nameOf);
    const manifold: Record<string, unknown> = {
      inputs,
      start: (context: StartContext) => this.start(name, inputs, context),
      output: (worker: PropertyWorker) => worker.name,
    };
    if (spec.config) manifold["config"] = { version: spec.version, tags: ["x"] };
    if (spec.when !== undefined) manifold["when"] = spec.when;
    return manifold as unknown as Manifold;
  }

  start(name: string, inputs: readonly string[], context: StartContext): Promise<Worker> {
    this.trace.push(`start ${name}`);
    const holder = this.busy.get(name);
    if (holder !== undefined) this.violate(`rule 8: ${name}'s start was called while ${holder === "start" ? "a start was in flight" : "a worker still ran"}`);
    this.busy.set(name, "start");
    const seen = inputs.filter((input) => context.hasResource(input));
    const list = this.starts.get(name) ?? [];
    list.push(seen);
    this.starts.set(name, list);
    const worker = new PropertyWorker(name, this);
    // Scheduled without a value, so that fast-check's report of the task order stays short.
    return this.s.schedule(Promise.resolve(), `start ${name}`).then(() => {
      this.busy.set(name, worker);
      this.running.set(name, worker);
      return worker;
    });
  }

  killed(worker: PropertyWorker): void {
    this.trace.push(`kill ${worker.name}`);
    const phase = this.phase;
    if (phase === undefined || phase.old.get(worker.name) !== worker || !phase.changed.has(worker.name)) return;
    for (const dependent of phase.dependents.get(worker.name) ?? []) {
      const theirs = phase.old.get(dependent);
      if (phase.changed.has(dependent) && theirs !== undefined && !theirs.stopped) {
        this.violate(`stop order: ${worker.name} was killed while its dependent ${dependent}'s old worker still ran`);
      }
    }
  }

  stopped(worker: PropertyWorker): void {
    this.trace.push(`stopped ${worker.name}`);
    if (this.running.get(worker.name) === worker) this.running.delete(worker.name);
    if (this.busy.get(worker.name) === worker) this.busy.delete(worker.name);
  }

  /** Releases scheduled tasks and fires timers until nothing is left. */
  async quiesce(): Promise<void> {
    for (let steps = 0; steps < QUIESCE_LIMIT; steps++) {
      await settle(1);
      if (this.s.count() > 0) {
        await this.s.waitNext(1);
        continue;
      }
      const pending = this.clock.pending;
      if (pending.length === 0) return;
      const due = Math.min(...pending.map((timer) => timer.due));
      await this.clock.advance(due - this.clock.now());
    }
    this.violate(`the engine did not become quiescent within ${QUIESCE_LIMIT} steps`);
  }

  fail(where: string, scenario: Scenario): never {
    throw new Error(
      `${this.violations.length} violation(s) ${where}:\n  - ${this.violations.slice(0, 10).join("\n  - ")}\n` +
        `scenario: ${JSON.stringify(scenario)}\ntrace (last 60): ${this.trace.slice(-60).join("; ")}`,
    );
  }
}

// ------------------------------------------------------------------ one case

const lists = (plan: Plan): ModelPlan => ({
  install: [...plan.install],
  uninstall: [...plan.uninstall],
  replace: [...plan.replace],
  keep: [...plan.keep],
  skip: [...plan.skip],
  restart: [...plan.restart],
});

/** An apply under way: what the model expects of it, and how it has settled so far. */
interface Phase {
  readonly label: string;
  readonly expected: ModelPlan;
  readonly kept: ReadonlyMap<string, ModelEntry>;
  readonly plan: Plan;
  /** Names whose start had been called (for the installed node) when the apply was made. */
  readonly calledBefore: ReadonlySet<string>;
  /** Whether the apply was made with everything quiet (then start counts are exact too). */
  readonly quiet: boolean;
  readonly startCounts: ReadonlyMap<string, number>;
  readonly result: { applied?: Plan; failure?: unknown };
}

/** Plans `desired`, checks the plan against the model, and makes the apply (with the plan's generation). */
function beginApply(
  h: Harness,
  engine: Engine,
  installed: ReadonlyMap<string, ModelEntry>,
  desired: ReadonlyMap<string, { spec: Spec; manifold: Manifold }>,
  requirements: readonly string[],
  size: number,
  label: string,
  quiet: boolean,
): Phase {
  const { kept, skipped } = select(desired, new Set(requirements));
  const expected = modelPlan(installed, kept, skipped, size);
  const record: Manifolds = {};
  for (const [name, { manifold }] of desired) record[name] = manifold;

  const generation = engine.report().generation;
  const plan = engine.plan(record, { requirements });
  if (JSON.stringify(lists(plan)) !== JSON.stringify(expected)) {
    h.violate(`${label}: plan ${JSON.stringify(lists(plan))} differs from the model's ${JSON.stringify(expected)}`);
  }
  if (plan.generation !== generation) h.violate(`${label}: plan.generation ${plan.generation}, report.generation ${String(generation)}`);
  const explained = Object.keys(plan.reasons).sort();
  const toExplain = [...plan.replace, ...plan.restart].sort();
  if (explained.join() !== toExplain.join()) h.violate(`${label}: reasons given for [${explained.join()}], expected [${toExplain.join()}]`);

  // Who depends on whom before the apply, among what it changes.
  const changed = new Set([...expected.uninstall, ...expected.replace, ...expected.restart]);
  const dependents = new Map<string, string[]>();
  for (const [name, entry] of installed) {
    for (const input of entry.inputs) dependents.set(input, [...(dependents.get(input) ?? []), name]);
  }
  h.phase = { old: new Map(h.running), changed, dependents };
  const startCounts = new Map(Object.entries(engine.report().manifolds).map(([name, report]) => [name, report.startCount]));
  const calledBefore = new Set(h.starts.keys());
  h.starts = new Map();

  const result: Phase["result"] = {};
  engine.apply(record, { requirements, ifGeneration: plan.generation }).then(
    (applied) => (result.applied = applied),
    (error: unknown) => (result.failure = error ?? new Error("rejected")),
  );
  return { label, expected, kept, plan, calledBefore, quiet, startCounts, result };
}

/**
 * Lets everything run, then checks the phase against the model, and returns
 * the installed set the model expects afterwards.
 */
async function finishApply(h: Harness, engine: Engine, installed: ReadonlyMap<string, ModelEntry>, phase: Phase): Promise<Map<string, ModelEntry>> {
  const { label, expected, kept, plan, result } = phase;
  let idle = false;
  void engine.onIdle().then(() => (idle = true));
  await h.quiesce();
  await settle();
  if (result.failure !== undefined) h.violate(`${label}: apply rejected: ${String(result.failure)}`);
  else if (result.applied === undefined) h.violate(`${label}: apply did not settle once every task had run`);
  else if (JSON.stringify(result.applied) !== JSON.stringify(plan)) h.violate(`${label}: apply carried out ${JSON.stringify(result.applied)}, the plan said ${JSON.stringify(plan)}`);
  if (!idle) h.violate(`${label}: onIdle() did not resolve once every task had run`);

  // Exactly the desired set runs. Each affected manifold has its start called
  // once after the apply, with its desired inputs running; an unaffected one
  // never, unless its first start was still to come.
  const report = engine.report();
  const names = Object.keys(report.manifolds).sort();
  const want = [...kept.keys()].sort();
  if (names.join() !== want.join()) h.violate(`${label}: installed [${names.join()}], desired [${want.join()}]`);
  const affected = new Set([...expected.install, ...expected.replace, ...expected.restart]);
  const old = h.phase?.old ?? new Map<string, PropertyWorker>();
  for (const [name, entry] of kept) {
    const state = report.manifolds[name];
    if (state?.state !== "started") h.violate(`${label}: ${name} is ${state?.state ?? "absent"}, not started`);
    if (h.running.get(name) === undefined) h.violate(`${label}: ${name} has no running worker`);
    const calls = h.starts.get(name) ?? [];
    const fresh = expected.install.includes(name) || expected.replace.includes(name);
    const due = affected.has(name) || !phase.calledBefore.has(name) ? 1 : 0;
    const what = affected.has(name) ? (fresh ? "new" : "restarted") : "unaffected";
    if (calls.length !== due) h.violate(`${label}: ${name} (${what}) had its start called ${calls.length} times, not ${due}`);
    const running = entry.inputs.filter((input) => kept.has(input)).sort();
    const seen = [...(calls[0] ?? [])].sort();
    if (calls.length === 1 && seen.join() !== running.join()) h.violate(`${label}: ${name} started with [${seen.join()}] running, not after its inputs [${running.join()}]`);
    if (!affected.has(name) && old.get(name)?.killed === true) h.violate(`${label}: unaffected ${name}'s worker was killed`);
    if (!phase.quiet) continue;
    const count = fresh ? 1 : (phase.startCounts.get(name) ?? 0) + due;
    if (state?.startCount !== count) h.violate(`${label}: ${name}'s startCount is ${String(state?.startCount)}, expected ${count}`);
  }
  for (const name of [...expected.uninstall, ...expected.replace, ...expected.restart]) {
    const worker = old.get(name);
    if (worker !== undefined && !worker.stopped) h.violate(`${label}: the old worker of ${name} (${expected.uninstall.includes(name) ? "uninstalled" : "changed"}) still runs`);
  }
  for (const name of h.starts.keys()) if (!kept.has(name)) h.violate(`${label}: ${name}, not desired, was started`);
  for (const name of h.running.keys()) if (!kept.has(name)) h.violate(`${label}: ${name}, not desired, still has a running worker`);
  h.phase = undefined;

  // The installed set the model expects next: kept entries stay the installed ones.
  const next = new Map<string, ModelEntry>();
  for (const [name, entry] of kept) next.set(name, expected.keep.includes(name) ? (installed.get(name) as ModelEntry) : entry);
  return next;
}

async function runCase(scenario: Scenario, source: SchedulerSource): Promise<void> {
  rejections.clear();
  const s = source.make();
  const { engine, clock } = makeEngine({ bounceDelay: scenario.bounceDelay, stopTimeout: 0 });
  const h = new Harness(s, clock);

  const current = new Map<string, { spec: Spec; manifold: Manifold }>();
  scenario.current.forEach((spec, i) => {
    if (spec !== undefined) current.set(nameOf(i), { spec, manifold: h.manifold(nameOf(i), spec) });
  });
  // The first apply is a cold start from nothing.
  const first = beginApply(h, engine, new Map(), current, scenario.initialRequirements, scenario.size, "first apply", true);
  const installed = new Map<string, ModelEntry>();
  for (const [name, entry] of first.kept) installed.set(name, entry);
  if (scenario.interrupt === undefined) {
    await finishApply(h, engine, new Map(), first);
    if (h.violations.length > 0) h.fail("in the first apply", scenario);
  } else {
    // The second apply comes while the first is still converging: after this many scheduler steps.
    await settle(1);
    for (let step = 0; step < scenario.interrupt && s.count() > 0; step++) {
      await s.waitNext(1);
      await settle(1);
    }
    h.phase = undefined;
  }

  const desired = new Map<string, { spec: Spec; manifold: Manifold }>();
  scenario.desired.forEach((item, i) => {
    if (item === undefined) return;
    const name = nameOf(i);
    const was = current.get(name);
    if (item.mode === "reuse" && was !== undefined) desired.set(name, was);
    else if (item.mode === "rebuild" && was !== undefined) desired.set(name, { spec: was.spec, manifold: h.manifold(name, was.spec) });
    else desired.set(name, { spec: item.spec, manifold: h.manifold(name, item.spec) });
  });
  const second = beginApply(h, engine, installed, desired, scenario.requirements, scenario.size, "second apply", scenario.interrupt === undefined);
  await finishApply(h, engine, installed, second);
  if (scenario.interrupt !== undefined && first.result.applied === undefined) h.violate("the first apply did not settle");
  if (rejections.reasons.length > 0) h.violate(`unhandled rejection: ${String(rejections.reasons[0])}`);
  if (h.violations.length > 0) h.fail("in the second apply", scenario);

  engine.kill();
  let stopped = false;
  void engine.wait().then(() => (stopped = true));
  await h.quiesce();
  await settle();
  if (!stopped) h.violate("wait() did not resolve after kill() once every task had run");
  if (h.violations.length > 0) h.fail("at shutdown", scenario);
}

// ------------------------------------------------------------------ the property

const NAME = "apply converges on the desired set, starting exactly the affected manifolds once, as the plan predicted";

describe("apply (property, under fc.scheduler)", () => {
  it(NAME, async () => {
    await assertProperty(NAME, fc.asyncProperty(scenarioArb, schedulerArb, runCase), 500);
  });
});
