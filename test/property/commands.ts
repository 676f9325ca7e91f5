/**
 * The commands of the model-based property, their arbitraries, and the
 * functions that run one case of each property (see model.ts for the model).
 */
import fc from "fast-check";
import { settle } from "../fixtures.js";
import {
  describePlan,
  describeSpec,
  Harness,
  unhandledRejections,
  type ErrorSpec,
  type ExitKind,
  type FailKind,
  type StartPlan,
  type Universe,
} from "./model.js";

// ------------------------------------------------------------------ the scheduler

/**
 * Makes a fresh `fc.scheduler()` from a seed for each execution of a run.
 *
 * Why not `fc.scheduler()` directly: in fast-check 4.10 every clone of a
 * scheduler value shares one task selector (`cloneMethod` hands the same
 * `sourceTaskSelector` to each clone), so re-running a counterexample, or
 * replaying it from its seed and path, releases tasks in a different order
 * from one execution to the next. A scheduler built afresh from a seed
 * releases tasks in the same order every time, so shrinking is stable and a
 * failure replays exactly. Its `toString` shows the task order of the last
 * execution, as fast-check's own scheduler does.
 */
export class SchedulerSource {
  #last: fc.Scheduler | undefined;

  constructor(readonly seed: number) {}

  make(): fc.Scheduler {
    const [scheduler] = fc.sample(fc.scheduler(), { seed: this.seed, numRuns: 1 });
    if (scheduler === undefined) throw new Error("fc.sample returned no scheduler");
    this.#last = scheduler;
    return scheduler;
  }

  toString(): string {
    return `scheduler(seed ${this.seed}) ${this.#last === undefined ? "(not run)" : String(this.#last)}`;
  }

  [fc.toStringMethod](): string {
    return this.toString();
  }
}

export const schedulerArb: fc.Arbitrary<SchedulerSource> = fc.noShrink(fc.integer()).map((seed) => new SchedulerSource(seed));

// ------------------------------------------------------------------ commands

type EngineCommand = fc.AsyncCommand<Harness, Harness>;

abstract class BaseCommand implements EngineCommand {
  check(): boolean {
    return true;
  }
  abstract act(h: Harness): void | Promise<void>;
  async run(_model: Harness, h: Harness): Promise<void> {
    await this.act(h);
    await settle(1);
    h.check(`after ${this.toString()}`);
  }
  abstract toString(): string;
}

class InstallCommand extends BaseCommand {
  constructor(readonly index: number) {
    super();
  }
  act(h: Harness): void {
    h.install(this.index);
  }
  toString(): string {
    return `install(m?${this.index})`;
  }
}

class InstallAllCommand extends BaseCommand {
  constructor(
    readonly indices: readonly number[],
    readonly poison: boolean,
  ) {
    super();
  }
  act(h: Harness): void {
    h.installAll(this.indices, this.poison);
  }
  toString(): string {
    return `installAll([${this.indices.join(",")}]${this.poison ? ", poison" : ""})`;
  }
}

class UninstallCommand extends BaseCommand {
  constructor(readonly index: number) {
    super();
  }
  act(h: Harness): void {
    h.uninstall(this.index);
  }
  toString(): string {
    return `uninstall(m?${this.index})`;
  }
}

/** uninstall then install at once: the new instance must wait for the old one's worker (rule 8). */
class ReinstallCommand extends BaseCommand {
  constructor(readonly index: number) {
    super();
  }
  act(h: Harness): void {
    h.uninstall(this.index);
    h.install(this.index);
  }
  toString(): string {
    return `reinstall(m?${this.index})`;
  }
}

class ExitCommand extends BaseCommand {
  constructor(
    readonly pick: number,
    readonly kind: ExitKind,
    readonly spec: ErrorSpec,
  ) {
    super();
  }
  act(h: Harness): void {
    h.exit(this.pick, this.kind, this.spec);
  }
  toString(): string {
    return `exit(worker ${this.pick}, ${this.kind === "clean" ? "clean" : describeSpec(this.spec)})`;
  }
}

class PlanCommand extends BaseCommand {
  constructor(
    readonly index: number,
    readonly startPlan: StartPlan,
  ) {
    super();
  }
  act(h: Harness): void {
    h.plan(this.index, this.startPlan);
  }
  toString(): string {
    return `plan(m?${this.index}, ${describePlan(this.startPlan)})`;
  }
}

class ReleaseCommand extends BaseCommand {
  constructor(readonly count: number) {
    super();
  }
  act(h: Harness): Promise<void> {
    return h.release(this.count);
  }
  toString(): string {
    return `release(${this.count})`;
  }
}

class AdvanceCommand extends BaseCommand {
  constructor(readonly ms: number) {
    super();
  }
  act(h: Harness): Promise<void> {
    return h.advance(this.ms);
  }
  toString(): string {
    return `advance(${this.ms})`;
  }
}

class QuiesceCommand extends BaseCommand {
  async act(h: Harness): Promise<void> {
    await h.quiesce();
    h.checkQuiescent();
  }
  toString(): string {
    return "quiesce()";
  }
}

class ReportCommand extends BaseCommand {
  act(h: Harness): void {
    // The report is checked after every command; this one also checks that it is JSON.
    const report = h.engine.report();
    const copy: unknown = JSON.parse(JSON.stringify(report));
    if (JSON.stringify(copy) !== JSON.stringify(report)) h.violate("report() is not JSON-serialisable");
  }
  toString(): string {
    return "report()";
  }
}

class KillCommand extends BaseCommand {
  act(h: Harness): void {
    h.kill();
  }
  toString(): string {
    return "kill()";
  }
}

// ------------------------------------------------------------------ arbitraries

const failKindArb = fc.constantFrom<FailKind>("plain", "missing", "bounce", "uninstall", "fatal");
const errorSpecArb = (kind: fc.Arbitrary<FailKind>): fc.Arbitrary<ErrorSpec> =>
  fc.record({ kind, wrapped: fc.nat({ max: 4 }).map((n) => n === 0), rank: fc.nat({ max: 3 }) });

const planArb: fc.Arbitrary<StartPlan> = fc.oneof(
  { weight: 2, arbitrary: fc.constant<StartPlan>({ type: "async" }) },
  { weight: 2, arbitrary: fc.constant<StartPlan>({ type: "sync" }) },
  {
    weight: 5,
    arbitrary: fc.record({
      type: fc.constant("fail" as const),
      error: errorSpecArb(
        fc.oneof(
          { weight: 20, arbitrary: fc.constantFrom<FailKind>("plain", "missing", "bounce", "uninstall") },
          { weight: 1, arbitrary: fc.constant<FailKind>("fatal") },
        ),
      ),
      sync: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ type: fc.constant("hang" as const), onAbort: fc.constantFrom<"reject" | "resolve">("reject", "resolve") }) },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("flash" as const),
      exit: fc.constantFrom<ExitKind>("clean", "plain", "missing", "bounce", "uninstall"),
      error: errorSpecArb(failKindArb),
      sync: fc.boolean(),
    }),
  },
);

const exitKindArb: fc.Arbitrary<ExitKind> = fc.oneof(
  { weight: 25, arbitrary: fc.constantFrom<ExitKind>("clean", "plain", "missing", "bounce", "uninstall") },
  { weight: 1, arbitrary: fc.constant<ExitKind>("fatal") },
);

/** Indices are taken modulo the universe's size when a command runs, so commands never depend on it. */
/** The manifolds a run installs before its commands (indices modulo the universe's size). */
export const initialArb: fc.Arbitrary<number[]> = fc.uniqueArray(fc.nat({ max: 29 }), { maxLength: 30, size: "max" });

export function commandsArb(maxCommands: number, replayPath?: string): fc.Arbitrary<Iterable<EngineCommand>> {
  const index = fc.nat({ max: 29 });
  const install = index.map((i): EngineCommand => new InstallCommand(i));
  const installAll = fc
    .tuple(fc.uniqueArray(index, { minLength: 1, maxLength: 30 }), fc.nat({ max: 9 }))
    .map(([is, p]): EngineCommand => new InstallAllCommand(is, p === 0));
  const uninstall = index.map((i): EngineCommand => new UninstallCommand(i));
  const reinstall = index.map((i): EngineCommand => new ReinstallCommand(i));
  const exit = fc
    .tuple(fc.nat({ max: 1000 }), exitKindArb, errorSpecArb(failKindArb))
    .map(([pick, kind, spec]): EngineCommand => new ExitCommand(pick, kind, kind === "clean" ? spec : { ...spec, kind }));
  const plan = fc.tuple(index, planArb).map(([i, p]): EngineCommand => new PlanCommand(i, p));
  const release = fc.integer({ min: 1, max: 8 }).map((n): EngineCommand => new ReleaseCommand(n));
  const advance = fc.constantFrom(1, 10, 3000, 5000, 20_000).map((ms): EngineCommand => new AdvanceCommand(ms));
  const quiesce = fc.constant<EngineCommand>(new QuiesceCommand());
  // kill() ends the interesting part of a run (shutdown is checked at the end of every run anyway): keep it rare.
  const reportOrKill = fc.oneof(
    { weight: 6, arbitrary: fc.constant<EngineCommand>(new ReportCommand()) },
    { weight: 1, arbitrary: fc.constant<EngineCommand>(new KillCommand()) },
  );
  return fc.commands(
    [
      install,
      install,
      installAll,
      installAll,
      uninstall,
      reinstall,
      exit,
      exit,
      exit,
      plan,
      plan,
      release,
      release,
      release,
      release,
      advance,
      quiesce,
      quiesce,
      reportOrKill,
    ],
    // replayPath: commands shrink statefully; replaying a shrunk failure needs the replayPath printed with it.
    replayPath === undefined ? { maxCommands, size: "max" } : { maxCommands, size: "max", replayPath },
  );
}

/** One model-based run: the commands, then quiescence checks, then shutdown checks. */
export async function runCommands(universe: Universe, initial: readonly number[], commands: Iterable<EngineCommand>, scheduler: SchedulerSource): Promise<void> {
  unhandledRejections.clear();
  const harness = new Harness(universe, scheduler.make());
  // Most runs begin with a batch of manifolds, so that the commands find a graph to work on.
  if (initial.length > 0) {
    harness.installAll(initial, false);
    await settle(1);
    harness.check("after the initial installAll");
  }
  await fc.asyncModelRun(() => ({ model: harness, real: harness }), commands);
  await harness.quiesce();
  harness.check("at the end of the commands");
  harness.checkQuiescent();
  harness.check("at quiescence");
  await harness.shutdown();
}

/**
 * Cold start: every manifold installed in one synchronous batch (some with
 * installAll), every start succeeding in the order fast-check picks. Each
 * start function must be called exactly once, in dependency order, seeing
 * every installed input running; no timer is ever set. Then kill(): workers
 * stop in the order fast-check picks, dependents always before their inputs.
 */
export async function runColdStart(
  universe: Universe,
  order: readonly number[],
  batchSplit: number,
  syncMask: number,
  scheduler: SchedulerSource,
): Promise<void> {
  unhandledRejections.clear();
  const harness = new Harness(universe, scheduler.make());
  const n = universe.defs.length;
  const indices = [...new Set(order.map((i) => i % n))];
  for (let i = 0; i < n; i++) if (!indices.includes(i)) indices.push(i);
  for (const i of indices) if ((syncMask >> i % 30) & 1) harness.plan(i, { type: "sync" });
  const split = batchSplit % (indices.length + 1);
  harness.installAll(indices.slice(0, split), false);
  for (const i of indices.slice(split)) harness.install(i);
  await settle(1);
  harness.check("after installing");
  await harness.quiesce();
  harness.check("after the cold start");
  if (harness.clock.delays.length > 0) harness.violate(`rule 9: the cold start set timers (${harness.clock.delays.join(", ")}): some manifold was bounced`);
  for (const inst of harness.instances) {
    if (inst.attempts.length !== 1) harness.violate(`rule 9: the start of ${inst.id} was called ${inst.attempts.length} times on a cold start`);
    if (harness.runningWorker(inst.name) === undefined) harness.violate(`cold start: ${inst.id} is not running`);
    const missing = inst.attempts[0]?.log.filter((e) => e.error && harness.installed.has(e.name) && harness.defs.get(e.name)?.hasOutput === true);
    if (missing !== undefined && missing.length > 0) harness.violate(`rule 9: ${inst.id} started without its inputs ${missing.map((e) => e.name).join(",")}`);
  }
  harness.checkQuiescent();
  harness.check("at quiescence");
  await harness.shutdown();
}

// ------------------------------------------------------------------ running a property

const env = process.env;

/** fast-check parameters, overridable from the environment to replay or extend a run. */
function params(defaultRuns: number): fc.Parameters<unknown> {
  const p: fc.Parameters<unknown> = { numRuns: env["FC_NUM_RUNS"] ? Number(env["FC_NUM_RUNS"]) : defaultRuns };
  if (env["FC_SEED"]) p.seed = Number(env["FC_SEED"]);
  if (env["FC_PATH"]) p.path = env["FC_PATH"];
  if (env["FC_VERBOSE"]) p.verbose = Number(env["FC_VERBOSE"]) as fc.VerbosityLevel;
  return p;
}

/**
 * Like fc.assert, but the error also says how to replay the failure
 * (`testName` is the test's name, for `vitest -t`). Every property file uses
 * it, so FC_NUM_RUNS, FC_SEED, FC_PATH and FC_VERBOSE work the same in all.
 */
export async function assertProperty<Ts>(testName: string, property: fc.IAsyncProperty<Ts>, defaultRuns: number): Promise<void> {
  const details = await fc.check(property, params(defaultRuns));
  if (!details.failed) return;
  const replayPath = /replayPath="([^"]*)"/.exec(fc.stringify(details.counterexample))?.[1];
  const replay =
    `FC_SEED=${details.seed} FC_PATH="${details.counterexamplePath ?? ""}"` +
    (replayPath === undefined ? "" : ` FC_REPLAY_PATH="${replayPath}"`) +
    ` npx vitest run test/property -t "${testName}"`;
  const error = details.errorInstance;
  const got = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  throw new Error(`${fc.defaultReportMessage(details)}\n\nGot ${got}\n\nReplay this failure (see CONTRIBUTING.md):\n  ${replay}\n`);
}
