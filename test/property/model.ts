/**
 * A model of the engine for property tests, and the instrumented manifolds
 * that let the model watch the real engine from the inside. The commands that
 * drive it are in commands.ts.
 *
 * Every manifold installed by a test is made here: its start function and its
 * workers report to a {@link Harness}, which keeps plain data about what the
 * engine has been asked to do and what it has done (installed manifolds, each
 * start attempt, each worker and whether it was accepted, killed or stopped),
 * predicts what the engine must do next, and records a violation whenever the
 * engine does something the contract forbids.
 *
 * All asynchrony goes through fast-check's scheduler: a start function's
 * promise, a worker's `wait()` and the end of an aborted start are settled by
 * scheduled tasks, so fast-check picks the order in which start completions,
 * worker exits and kills reach the engine. Time is a {@link TestClock} that
 * only moves when a command says so.
 *
 * How the model sees what the engine sees: every promise the engine awaits is
 * a native promise made here, and the harness attaches its own reaction to it
 * before handing it over. When such a promise settles, the harness's reaction
 * runs in the microtask immediately before the engine's, so the model updates
 * its view (this start succeeded, this worker stopped) exactly when the engine
 * is about to, and no other engine code can run in between. The engine's own
 * decisions are observed synchronously: `metrics.recordStart` (a worker was
 * accepted as started), `worker.kill()`, the abort of a start signal, the call
 * of a start function.
 */
import fc from "fast-check";
import {
  AlreadyInstalledError,
  BounceError,
  EngineStoppedError,
  MissingError,
  UninstallError,
  type Engine,
  type Manifold,
  type StartContext,
  type Worker,
} from "../../src/index.js";
import { deferred, iso, makeEngine, RejectionLog, settle, type TestClock } from "../fixtures.js";

// ------------------------------------------------------------------ configuration

/** The engine configuration every property uses (no jitter; stopTimeout far beyond any run). */
export const ENGINE_TIMING = {
  errorDelay: 3000,
  bounceDelay: 10,
  backoffFactor: 1.2,
  maxDelay: 120_000,
  jitter: 0,
  stopTimeout: 1_000_000_000,
} as const;

/** Delays the engine may pass to setTimeout under {@link ENGINE_TIMING}. */
const ALLOWED_DELAYS: ReadonlySet<number> = (() => {
  const allowed = new Set<number>([ENGINE_TIMING.bounceDelay, ENGINE_TIMING.stopTimeout]);
  for (let k = 0; k < 200; k++) {
    const delay = Math.min(ENGINE_TIMING.errorDelay * ENGINE_TIMING.backoffFactor ** k, ENGINE_TIMING.maxDelay);
    // Allow for a different but equivalent floating-point order of operations.
    for (const d of [Math.round(delay) - 1, Math.round(delay), Math.round(delay) + 1]) allowed.add(d);
  }
  return allowed;
})();

/** Upper bound on scheduler steps and timer firings while settling; beyond it the engine is livelocked. */
const QUIESCE_LIMIT = 20_000;

// ------------------------------------------------------------------ errors

/** Outcomes of a start function that fails, or of a worker that stops with an error. */
export type FailKind = "plain" | "missing" | "bounce" | "uninstall" | "fatal";
/** How a worker stops: cleanly, or with one of the errors. */
export type ExitKind = "clean" | FailKind;

/** The error the tests' `isFatal` recognises; `rank` orders them for `worstError`. */
export class FatalError extends Error {
  readonly rank: number;
  constructor(rank: number, message: string) {
    super(message);
    this.name = "FatalError";
    this.rank = rank;
  }
}

/** The first error along `error`'s cause chain that is an instance of `cls` (our own walk: the model does not trust `errorIs`). */
function findInChain<E extends Error>(error: unknown, cls: abstract new (...args: never[]) => E): E | undefined {
  const seen = new Set<unknown>();
  for (let current = error; current !== null && typeof current === "object" && !seen.has(current); ) {
    if (current instanceof cls) return current;
    seen.add(current);
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

export function isFatalError(error: unknown): boolean {
  return findInChain(error, FatalError) !== undefined;
}

export function rankOf(error: unknown): number {
  return findInChain(error, FatalError)?.rank ?? -1;
}

/** How the engine must read an error (SPEC rule 4); fatal is decided separately. */
function classify(error: unknown): "missing" | "bounce" | "uninstall" | "unknown" {
  if (findInChain(error, MissingError)) return "missing";
  if (findInChain(error, BounceError)) return "bounce";
  if (findInChain(error, UninstallError)) return "uninstall";
  return "unknown";
}

/** A description of an error to make: its kind, whether it is wrapped in a plain Error (as `cause`), its rank if fatal. */
export interface ErrorSpec {
  readonly kind: FailKind;
  readonly wrapped: boolean;
  readonly rank: number;
}

let errorSerial = 0;

function makeError(spec: ErrorSpec, where: string): Error {
  const tag = `${where} #${++errorSerial}`;
  let inner: Error;
  switch (spec.kind) {
    case "plain":
      inner = new Error(`${tag}: plain failure`);
      break;
    case "missing":
      inner = new MissingError(`${tag}: missing`);
      break;
    case "bounce":
      inner = new BounceError(`${tag}: bounce`);
      break;
    case "uninstall":
      inner = new UninstallError(`${tag}: uninstall`);
      break;
    case "fatal":
      inner = new FatalError(spec.rank, `${tag}: fatal (rank ${spec.rank})`);
      break;
  }
  return spec.wrapped ? new Error(`${tag}: wrapped`, { cause: inner }) : inner;
}

export function describeSpec(spec: ErrorSpec): string {
  return `${spec.wrapped ? "wrapped " : ""}${spec.kind}${spec.kind === "fatal" ? `(rank ${spec.rank})` : ""}`;
}

// ------------------------------------------------------------------ the universe of manifolds

/** One manifold a run may install (under its name, any number of times). */
export interface ManifoldDef {
  readonly name: string;
  readonly inputs: readonly string[];
  /** Whether its manifold has an `output` (the worker's id). */
  readonly hasOutput: boolean;
  /** How its workers stop when the engine kills them to bounce or uninstall them. */
  readonly killExit: ExitKind;
  /** How its workers stop when the engine kills them while shutting down (fatal errors here exercise worstError). */
  readonly dyingExit: ExitKind;
  /** Rank of the fatal errors its workers stop with when killed. */
  readonly rank: number;
}

/** The manifolds of a run: a DAG (inputs are earlier names, or names never installed). */
export interface Universe {
  readonly defs: readonly ManifoldDef[];
}

export function describeUniverse(universe: Universe): string {
  return universe.defs
    .map(
      (d) =>
        `${d.name}(${d.inputs.join(",")})${d.hasOutput ? "" : " no-output"}${d.killExit === "clean" ? "" : ` kill->${d.killExit}`}` +
        `${d.dyingExit === "clean" ? "" : ` shutdown->${d.dyingExit}`}${d.killExit === "fatal" || d.dyingExit === "fatal" ? `(rank ${d.rank})` : ""}`,
    )
    .join("; ");
}

const killExitArb: fc.Arbitrary<ExitKind> = fc.oneof(
  { weight: 80, arbitrary: fc.constant<ExitKind>("clean") },
  { weight: 4, arbitrary: fc.constantFrom<ExitKind>("plain", "missing", "bounce", "uninstall") },
  { weight: 1, arbitrary: fc.constant<ExitKind>("fatal") },
);

const dyingExitArb: fc.Arbitrary<ExitKind> = fc.oneof(
  { weight: 12, arbitrary: fc.constant<ExitKind>("clean") },
  { weight: 3, arbitrary: fc.constantFrom<ExitKind>("plain", "missing", "bounce", "uninstall") },
  { weight: 5, arbitrary: fc.constant<ExitKind>("fatal") },
);

/** Random DAGs of 1..maxSize manifolds; each input is an earlier name, sometimes a name that is never installed. */
export function universeArb(maxSize: number): fc.Arbitrary<Universe> {
  const defArb = fc.record({
    inputs: fc.uniqueArray(fc.nat({ max: 1000 }), { maxLength: 4 }),
    ghost: fc.nat({ max: 9 }),
    hasOutput: fc.nat({ max: 9 }),
    killExit: killExitArb,
    dyingExit: dyingExitArb,
    rank: fc.nat({ max: 3 }),
  });
  return fc.array(defArb, { minLength: 1, maxLength: maxSize, size: "max" }).map((raw) => {
    const defs = raw.map((r, i): ManifoldDef => {
      const inputs = i === 0 ? [] : [...new Set(r.inputs.map((x) => `m${x % i}`))];
      if (r.ghost === 0) inputs.push(`ghost${i % 3}`);
      return { name: `m${i}`, inputs, hasOutput: r.hasOutput !== 0, killExit: r.killExit, dyingExit: r.dyingExit, rank: r.rank };
    });
    return { defs };
  });
}

// ------------------------------------------------------------------ start plans

/** What the next start function of a name does. */
export type StartPlan =
  | { readonly type: "async" } // resolves with a worker in a scheduled task (the default)
  | { readonly type: "sync" } // returns a worker at once
  | { readonly type: "fail"; readonly error: ErrorSpec; readonly sync: boolean } // throws, or rejects in a scheduled task
  | { readonly type: "hang"; readonly onAbort: "reject" | "resolve" } // settles only after its signal is aborted
  | { readonly type: "flash"; readonly exit: ExitKind; readonly error: ErrorSpec; readonly sync: boolean }; // succeeds with a worker that has already stopped

export function describePlan(plan: StartPlan): string {
  switch (plan.type) {
    case "async":
    case "sync":
      return plan.type;
    case "fail":
      return `fail ${plan.sync ? "sync" : "async"} ${describeSpec(plan.error)}`;
    case "hang":
      return `hang then ${plan.onAbort} on abort`;
    case "flash":
      return `${plan.sync ? "sync" : "async"} start of a worker that stops at once ${plan.exit === "clean" ? "cleanly" : describeSpec({ ...plan.error, kind: plan.exit })}`;
  }
}

// ------------------------------------------------------------------ model entities


/** One installation of a name (a name installed again after uninstall is a new instance). */
export class Instance {
  installed = true;
  /** The engine owes this manifold a start that it has not called yet (it is delayed, ready or blocked). */
  pending = true;
  /** Why: "bounce" (install, input change, bounce, restart after a kill) always holds dependents back; "error" (an error delay) may not. */
  pendingKind: "bounce" | "error" = "bounce";
  readonly attempts: Attempt[] = [];
  readonly workers: ModelWorker[] = [];
  startCount = 0;
  lastStart: number | undefined = undefined;
  lastError: Error | undefined = undefined;
  lastLog: LogEntry[] | undefined = undefined;
  /** uninstall() was called for this instance and its promise has resolved. */
  uninstallResolved = false;
  uninstallCalled = false;

  constructor(
    readonly id: string,
    readonly def: ManifoldDef,
  ) {}

  get name(): string {
    return this.def.name;
  }

  /** The start attempt whose outcome the engine has not seen yet. */
  get liveAttempt(): Attempt | undefined {
    const last = this.attempts[this.attempts.length - 1];
    return last !== undefined && !last.seen ? last : undefined;
  }

  /** The worker whose stop the engine has not seen yet. */
  get liveWorker(): ModelWorker | undefined {
    for (let i = this.workers.length - 1; i >= 0; i--) {
      const worker = this.workers[i] as ModelWorker;
      if (!worker.seen) return worker;
    }
    return undefined;
  }

  /** Has a start or a worker whose promise has not settled. */
  get unsettled(): boolean {
    return this.attempts.some((a) => !a.settled) || this.workers.some((w) => !w.settled);
  }
}

interface LogEntry {
  readonly name: string;
  readonly error: boolean;
}

interface Attempt {
  readonly id: string;
  readonly inst: Instance;
  readonly plan: StartPlan;
  readonly context: StartContext;
  readonly signal: AbortSignal;
  readonly log: LogEntry[];
  /** The promise (or synchronous return) has settled. */
  settled: boolean;
  /** The engine is handling (or has handled) the outcome. */
  seen: boolean;
  /** An input changed while it was in flight: the engine must abort it. */
  mustStop: boolean;
  expiryChecked: boolean;
}

/** A worker the harness controls; `value` (its id) is its manifold's output. */
export class ModelWorker implements Worker {
  readonly done = deferred<void>();
  /** The model expects the engine to accept it as started (it then calls metrics.recordStart). */
  predictedAccept = false;
  /** The engine did call metrics.recordStart for it. */
  confirmed = false;
  /** The engine must kill it at once (its start was aborted, the engine is stopping, or it was uninstalled). */
  expectKill = false;
  /** An input changed while it ran: the engine must kill it. */
  mustStop = false;
  killed = false;
  /** How it will stop (set by an exit command, or when killed). */
  exiting: { kind: ExitKind; error: Error | undefined } | undefined = undefined;
  settled = false;
  seen = false;

  constructor(
    readonly harness: Harness,
    readonly id: string,
    readonly attempt: Attempt,
  ) {
    // Registered before the engine ever sees this worker: this reaction runs just before the engine's.
    this.done.promise.then(
      () => harness.onWorkerSeen(this, undefined),
      (error: unknown) => harness.onWorkerSeen(this, error),
    );
  }

  get value(): string {
    return this.id;
  }

  kill(): void {
    this.harness.onKill(this);
  }

  wait(): Promise<void> {
    return this.done.promise;
  }

  report(): Record<string, unknown> {
    return { id: this.id };
  }
}

// ------------------------------------------------------------------ the harness

/** Rejections nobody handled, collected while the property test file runs (it listens through failOnUnhandledRejections). */
export const unhandledRejections = new RejectionLog();

const silentLogger = { debug() {}, info() {}, warn() {}, error() {} };

export class PropertyViolation extends Error {
  override name = "PropertyViolation";
}

export class Harness {
  readonly clock: TestClock;
  readonly engine: Engine;
  readonly defs = new Map<string, ManifoldDef>();
  /** Every instance ever installed, in order. */
  readonly instances: Instance[] = [];
  /** The installed instance of each name. */
  readonly installed = new Map<string, Instance>();
  /** The plan for the next start of each name (default: async success). */
  readonly plans = new Map<string, StartPlan>();
  readonly violations: string[] = [];
  /** A short trace of what happened, printed with a failure. */
  readonly trace: string[] = [];

  dying = false;
  finished = false;
  waitError: unknown = undefined;
  waitRejected = false;
  worst: Error | undefined = undefined;
  startCalls = 0;
  #delaysChecked = 0;
  #serial = 0;
  /** uninstall() promises of names that were not installed: they must resolve by the next check. */
  #uninstallNoops: { name: string; resolved: boolean }[] = [];

  constructor(
    readonly universe: Universe,
    readonly s: fc.Scheduler,
  ) {
    for (const def of universe.defs) this.defs.set(def.name, def);
    const fixture = makeEngine({
      ...ENGINE_TIMING,
      logger: silentLogger,
      isFatal: (error) => isFatalError(error),
      worstError: (a, b) => (rankOf(a) > rankOf(b) ? a : b),
      metrics: { recordStart: (name) => this.onRecordStart(name) },
    });
    this.engine = fixture.engine;
    this.clock = fixture.clock;
    this.engine.wait().then(
      () => this.onFinished(false, undefined),
      (error: unknown) => this.onFinished(true, error),
    );
  }

  // ---------------------------------------------------------------- bookkeeping

  violate(message: string): void {
    this.violations.push(message);
    this.note(`VIOLATION: ${message}`);
  }

  note(line: string): void {
    if (this.trace.length < 400) this.trace.push(line);
  }

  /** Runs `fn` in a scheduled task: fast-check decides when, relative to every other task. */
  later(label: string, fn: () => void): void {
    void this.s.schedule(Promise.resolve(label), label).then(() => {
      try {
        fn();
      } catch (error) {
        this.violate(`harness task ${label} threw: ${String(error)}`);
      }
    });
  }

  defOf(index: number): ManifoldDef {
    const defs = this.universe.defs;
    return defs[index % defs.length] as ManifoldDef;
  }

  /** The worker the engine considers running for an installed name, if any. */
  runningWorker(name: string): ModelWorker | undefined {
    const inst = this.installed.get(name);
    const worker = inst?.liveWorker;
    return worker !== undefined && worker.predictedAccept && !worker.killed ? worker : undefined;
  }

  instancesNamed(name: string): Instance[] {
    return this.instances.filter((i) => i.name === name);
  }

  dependentsOf(name: string): Instance[] {
    return [...this.installed.values()].filter((i) => i.def.inputs.includes(name));
  }

  becomeDying(): void {
    if (this.dying) return;
    this.dying = true;
    this.note("engine dying");
    for (const inst of this.instances) inst.pending = false;
  }

  noteError(inst: Instance, error: unknown): void {
    if (!(error instanceof Error)) {
      this.violate(`harness delivered a non-Error ${String(error)}`);
      return;
    }
    inst.lastError = error;
    if (isFatalError(error)) {
      if (this.worst === undefined || rankOf(error) > rankOf(this.worst)) this.worst = error;
      this.becomeDying();
    }
  }

  /** An input's worker came or went: every installed dependent must be restarted (SPEC rule 3). */
  inputChanged(name: string, why: string): void {
    if (this.dying) return;
    for (const dependent of this.dependentsOf(name)) {
      const attempt = dependent.liveAttempt;
      const worker = dependent.liveWorker;
      if (attempt !== undefined) attempt.mustStop = true;
      else if (worker !== undefined) worker.mustStop = true;
      else {
        dependent.pending = true;
        dependent.pendingKind = "bounce";
      }
      this.note(`  ${dependent.id} bounced (${name} ${why})`);
    }
  }

  // ---------------------------------------------------------------- manifolds

  manifoldFor(inst: Instance): Manifold<ModelWorker, string> {
    const m: Manifold<ModelWorker, string> = {
      inputs: [...inst.def.inputs],
      start: (context) => this.onStart(inst, context),
    };
    return inst.def.hasOutput ? { ...m, output: (worker) => worker.value } : m;
  }

  newInstance(def: ManifoldDef): Instance {
    return new Instance(`${def.name}#${++this.#serial}`, def);
  }

  onStart(inst: Instance, context: StartContext): ModelWorker | Promise<ModelWorker> {
    const name = inst.name;
    this.startCalls++;
    this.note(`start ${inst.id} called`);
    if (this.dying) this.violate(`start of ${inst.id} called after the engine began stopping (kill or fatal error)`);
    if (!inst.installed) this.violate(`start of ${inst.id} called after it was uninstalled`);
    else if (!inst.pending) this.violate(`start of ${inst.id} called, but nothing asked for a start (completed/Missing workers wait for an input change; rule 4)`);
    // Rule 8: never two workers (or a start and a worker) for one name.
    for (const other of this.instancesNamed(name)) {
      for (const a of other.attempts) if (!a.settled) this.violate(`rule 8: start of ${inst.id} called while start ${a.id} has not settled`);
      for (const w of other.workers) if (!w.settled) this.violate(`rule 8: start of ${inst.id} called while worker ${w.id}'s wait() has not settled`);
    }
    // Rule 9 (the part the model can prove): inputs that are starting, or about to, hold the start back.
    for (const inputName of inst.def.inputs) {
      const input = this.installed.get(inputName);
      if (input === undefined) continue;
      if (input.liveAttempt !== undefined) this.violate(`rule 9: start of ${inst.id} called while its input ${input.id} is starting`);
      const worker = input.liveWorker;
      if (worker !== undefined && worker.killed) this.violate(`rule 9: start of ${inst.id} called while its input ${input.id} is stopping to restart`);
      if (input.pending && input.pendingKind === "bounce") this.violate(`rule 9: start of ${inst.id} called while its input ${input.id} waits to (re)start`);
    }
    // Rule 2: the snapshot is exactly the inputs running now.
    const log: LogEntry[] = [];
    for (const inputName of inst.def.inputs) {
      const running = this.runningWorker(inputName);
      const has = context.hasResource(inputName);
      if (has !== (running !== undefined)) {
        this.violate(`rule 2: start of ${inst.id}: hasResource(${inputName}) is ${has}, but ${running === undefined ? "no worker of it is running" : `${running.id} is running`}`);
      }
      try {
        const value = context.getResource(inputName);
        log.push({ name: inputName, error: false });
        if (running === undefined || !running.attempt.inst.def.hasOutput) {
          this.violate(`rule 2: start of ${inst.id}: getResource(${inputName}) returned ${String(value)} but should throw MissingError`);
        } else if (value !== running.id) {
          this.violate(`rule 2: start of ${inst.id}: getResource(${inputName}) returned ${String(value)}, expected ${running.id}`);
        }
      } catch (error) {
        log.push({ name: inputName, error: true });
        if (!(error instanceof MissingError)) this.violate(`start of ${inst.id}: getResource(${inputName}) threw ${String(error)}, not a MissingError`);
        else if (running !== undefined && running.attempt.inst.def.hasOutput) {
          this.violate(`rule 2: start of ${inst.id}: getResource(${inputName}) threw MissingError although ${running.id} is running`);
        }
      }
    }
    if (context.hasResource("not-an-input")) this.violate(`rule 2: start of ${inst.id}: hasResource of an undeclared name is true`);
    if (context.name !== name) this.violate(`start of ${inst.id}: context.name is ${context.name}`);

    inst.pending = false;
    const plan = this.plans.get(name) ?? { type: "async" };
    this.plans.delete(name);
    const attempt: Attempt = {
      id: `${inst.id}.a${inst.attempts.length + 1}`,
      inst,
      plan,
      context,
      signal: context.signal,
      log,
      settled: false,
      seen: false,
      mustStop: false,
      expiryChecked: false,
    };
    inst.attempts.push(attempt);
    context.signal.addEventListener("abort", () => this.onAbort(attempt), { once: true });

    switch (plan.type) {
      case "sync":
      case "flash": {
        if (plan.type === "flash" && !plan.sync) break;
        const worker = this.newWorker(attempt);
        attempt.settled = true;
        this.onAttemptSeen(attempt, worker, undefined);
        return worker;
      }
      case "fail":
        if (plan.sync) {
          const error = makeError(plan.error, `start ${attempt.id}`);
          attempt.settled = true;
          this.onAttemptSeen(attempt, undefined, error);
          throw error;
        }
        break;
      default:
        break;
    }
    const result = deferred<ModelWorker>();
    // Registered before the engine's reaction: the model updates just before the engine handles the outcome.
    result.promise.then(
      (worker) => this.onAttemptSeen(attempt, worker, undefined),
      (error: unknown) => this.onAttemptSeen(attempt, undefined, error),
    );
    if (plan.type === "async" || plan.type === "flash") {
      this.later(`${attempt.id} start resolves`, () => {
        attempt.settled = true;
        result.resolve(this.newWorker(attempt));
      });
    } else if (plan.type === "fail") {
      this.later(`${attempt.id} start rejects ${describeSpec(plan.error)}`, () => {
        attempt.settled = true;
        result.reject(makeError(plan.error, `start ${attempt.id}`));
      });
    } else if (plan.type === "hang") {
      const onAbort = (): void =>
        this.later(`${attempt.id} aborted start ${plan.onAbort}s`, () => {
          attempt.settled = true;
          if (plan.onAbort === "resolve") result.resolve(this.newWorker(attempt));
          else result.reject(new Error(`start ${attempt.id} gave up: aborted`, { cause: context.signal.reason }));
        });
      if (context.signal.aborted) onAbort();
      else context.signal.addEventListener("abort", onAbort, { once: true });
    }
    return result.promise;
  }

  newWorker(attempt: Attempt): ModelWorker {
    const worker = new ModelWorker(this, `${attempt.id}.w`, attempt);
    attempt.inst.workers.push(worker);
    return worker;
  }

  onAbort(attempt: Attempt): void {
    const inst = attempt.inst;
    this.note(`start ${attempt.id} aborted`);
    if (attempt.seen) this.violate(`start ${attempt.id} aborted after the engine had its outcome`);
    if (!(this.dying || !inst.installed || attempt.mustStop)) this.violate(`start ${attempt.id} aborted for no reason (no input change, uninstall or kill)`);
  }

  /** The engine is about to handle the outcome of `attempt` (this runs just before it does). */
  onAttemptSeen(attempt: Attempt, worker: ModelWorker | undefined, error: unknown): void {
    attempt.seen = true;
    const inst = attempt.inst;
    inst.lastLog = attempt.log;
    const aborted = attempt.signal.aborted;
    if (worker !== undefined && attempt.plan.type === "flash") {
      // The worker stops before the engine sees it start: its wait() settles now, so the engine's
      // reaction to it queues after ours (the engine attaches to wait() only once it handles the start).
      const { exit, error } = attempt.plan;
      worker.exiting = { kind: exit, error: exit === "clean" ? undefined : makeError({ ...error, kind: exit }, `flash ${worker.id}`) };
      this.settleWorker(worker);
    }
    if (worker !== undefined) {
      if (aborted || this.dying || !inst.installed) {
        worker.expectKill = true;
        this.note(`start ${attempt.id} resolved unwanted: ${worker.id} must be killed`);
        return;
      }
      worker.predictedAccept = true;
      inst.startCount++;
      inst.lastStart = this.clock.now();
      inst.lastError = undefined;
      this.note(`start ${attempt.id} resolved: ${worker.id} running`);
      this.inputChanged(inst.name, "started");
      return;
    }
    this.note(`start ${attempt.id} failed${aborted ? " (aborted)" : ""}: ${error instanceof Error ? error.message : String(error)}`);
    this.noteError(inst, error);
    if (this.dying || !inst.installed) return;
    if (aborted) {
      inst.pending = true;
      inst.pendingKind = "bounce";
      return;
    }
    switch (classify(error)) {
      case "missing":
        break;
      case "bounce":
        inst.pending = true;
        inst.pendingKind = "bounce";
        break;
      case "uninstall":
        this.remove(inst);
        break;
      case "unknown":
        inst.pending = true;
        inst.pendingKind = "error";
        break;
    }
  }

  onRecordStart(name: string): void {
    const worker = this.installed.get(name)?.workers.find((w) => w.predictedAccept && !w.confirmed);
    if (worker === undefined) this.violate(`metrics.recordStart(${name}) but the model expected no worker of ${name} to be accepted`);
    else worker.confirmed = true;
  }

  /** The engine called `worker.kill()`. */
  onKill(worker: ModelWorker): void {
    if (worker.killed) return;
    const inst = worker.attempt.inst;
    this.note(`kill ${worker.id}`);
    if (worker.seen) this.violate(`kill of ${worker.id} after the engine had seen it stop`);
    worker.killed = true;
    if (!(this.dying || !inst.installed || worker.mustStop || worker.expectKill)) {
      this.violate(`${worker.id} killed for no reason (no input change, uninstall or kill)`);
    }
    if (this.dying) {
      if (worker.predictedAccept && inst.installed) {
        // Shutdown stops dependents before their inputs.
        for (const dependent of this.dependentsOf(inst.name)) {
          if (dependent.unsettled) this.violate(`shutdown order: ${worker.id} killed while its dependent ${dependent.id} has not stopped`);
        }
      }
    } else if (inst.installed && worker.predictedAccept) {
      // A bounce kill is passed on to dependents at once.
      this.inputChanged(inst.name, "killed");
    }
    if (worker.exiting === undefined) {
      const kind = this.dying ? inst.def.dyingExit : inst.def.killExit;
      worker.exiting = { kind, error: kind === "clean" ? undefined : makeError({ kind, wrapped: false, rank: inst.def.rank }, `killed ${worker.id}`) };
      this.later(`${worker.id} stops after kill${kind === "clean" ? "" : ` with ${kind}`}`, () => this.settleWorker(worker));
    }
  }

  settleWorker(worker: ModelWorker): void {
    worker.settled = true;
    const exiting = worker.exiting;
    if (exiting?.error === undefined) worker.done.resolve();
    else worker.done.reject(exiting.error);
  }

  /** The engine is about to handle the end of `worker` (this runs just before it does). */
  onWorkerSeen(worker: ModelWorker, error: unknown): void {
    worker.seen = true;
    const inst = worker.attempt.inst;
    this.note(`${worker.id} stopped${worker.killed ? " (killed)" : ""}${error === undefined ? "" : `: ${error instanceof Error ? error.message : String(error)}`}`);
    if (error !== undefined) this.noteError(inst, error);
    if (!worker.predictedAccept) {
      if (!this.dying && inst.installed) {
        inst.pending = true;
        inst.pendingKind = "bounce";
      }
      return;
    }
    const wasInstalled = inst.installed;
    if (!this.dying && inst.installed) {
      if (worker.killed) {
        inst.pending = true;
        inst.pendingKind = "bounce";
      } else {
        switch (error === undefined ? "clean" : classify(error)) {
          case "clean":
          case "missing":
            break;
          case "bounce":
            inst.pending = true;
            inst.pendingKind = "bounce";
            break;
          case "uninstall":
            this.remove(inst);
            break;
          case "unknown":
            inst.pending = true;
            inst.pendingKind = "error";
            break;
        }
      }
    }
    if (wasInstalled) this.inputChanged(inst.name, "stopped");
  }

  onFinished(rejected: boolean, error: unknown): void {
    this.note(`engine.wait() ${rejected ? "rejected" : "resolved"}`);
    if (!this.dying) this.violate("engine.wait() settled although nobody killed the engine and no fatal error arrived");
    this.finished = true;
    this.waitRejected = rejected;
    this.waitError = error;
    for (const inst of this.instances) {
      for (const a of inst.attempts) if (!a.settled) this.violate(`rule 7: wait() settled while start ${a.id} had not settled`);
      for (const w of inst.workers) if (!w.settled) this.violate(`rule 7: wait() settled while ${w.id}'s wait() had not settled`);
    }
    if (this.clock.pending.length > 0) {
      this.violate(`rule 7: wait() settled with ${this.clock.pending.length} timer(s) left (delays ${this.clock.pending.map((t) => t.delay).join(", ")})`);
    }
  }

  remove(inst: Instance): void {
    inst.installed = false;
    inst.pending = false;
    if (this.installed.get(inst.name) === inst) this.installed.delete(inst.name);
  }

  // ---------------------------------------------------------------- commands

  install(index: number): void {
    const def = this.defOf(index);
    const inst = this.newInstance(def);
    const expected = this.dying ? "EngineStoppedError" : this.installed.has(def.name) ? "AlreadyInstalledError" : "ok";
    this.note(`install ${def.name} (expect ${expected})`);
    let outcome = "ok";
    try {
      this.engine.install(def.name, this.manifoldFor(inst));
    } catch (error) {
      outcome = error instanceof EngineStoppedError ? "EngineStoppedError" : error instanceof AlreadyInstalledError ? "AlreadyInstalledError" : `other: ${String(error)}`;
    }
    if (outcome !== expected) this.violate(`install(${def.name}): expected ${expected}, got ${outcome}`);
    if (outcome === "ok") this.register(inst);
  }

  installAll(indices: readonly number[], poison: boolean): void {
    const defs = [...new Map(indices.map((i) => [this.defOf(i).name, this.defOf(i)])).values()];
    const insts = defs.map((def) => this.newInstance(def));
    const manifolds: Record<string, Manifold<ModelWorker, string>> = {};
    for (const inst of insts) manifolds[inst.name] = this.manifoldFor(inst);
    if (poison) manifolds["poison"] = { inputs: "not an array" } as unknown as Manifold<ModelWorker, string>;
    const allowed = new Set<string>();
    if (poison) allowed.add("TypeError");
    if (this.dying) allowed.add("EngineStoppedError");
    if (defs.some((d) => this.installed.has(d.name))) allowed.add("AlreadyInstalledError");
    if (allowed.size === 0) allowed.add("ok");
    this.note(`installAll ${defs.map((d) => d.name).join(",")}${poison ? " +poison" : ""} (expect ${[...allowed].join("|")})`);
    let outcome = "ok";
    try {
      this.engine.installAll(manifolds);
    } catch (error) {
      outcome =
        error instanceof EngineStoppedError
          ? "EngineStoppedError"
          : error instanceof AlreadyInstalledError
            ? "AlreadyInstalledError"
            : error instanceof TypeError
              ? "TypeError"
              : `other: ${String(error)}`;
    }
    if (!allowed.has(outcome)) this.violate(`installAll: expected ${[...allowed].join(" or ")}, got ${outcome}`);
    if (outcome === "ok") for (const inst of insts) this.register(inst);
  }

  register(inst: Instance): void {
    this.instances.push(inst);
    this.installed.set(inst.name, inst);
  }

  uninstall(index: number): void {
    const name = this.defOf(index).name;
    const inst = this.installed.get(name);
    this.note(`uninstall ${name}${inst === undefined ? " (not installed)" : ""}`);
    if (this.dying) {
      this.engine.uninstall(name).then(
        () => this.violate(`uninstall(${name}) resolved after kill; expected EngineStoppedError`),
        (error: unknown) => {
          if (!(error instanceof EngineStoppedError)) this.violate(`uninstall(${name}) after kill rejected with ${String(error)}`);
        },
      );
      return;
    }
    if (inst === undefined) {
      const noop = { name, resolved: false };
      this.#uninstallNoops.push(noop);
      this.engine.uninstall(name).then(
        () => (noop.resolved = true),
        (error: unknown) => this.violate(`uninstall(${name}) of a name not installed rejected with ${String(error)}`),
      );
      return;
    }
    // Update the model first: the engine acts synchronously inside uninstall().
    const ran = inst.liveWorker?.predictedAccept === true;
    this.remove(inst);
    inst.uninstallCalled = true;
    const attempt = inst.liveAttempt;
    if (attempt !== undefined) attempt.mustStop = true;
    const worker = inst.liveWorker;
    if (worker !== undefined) worker.mustStop = true;
    if (ran) this.inputChanged(name, "uninstalled");
    this.engine.uninstall(name).then(
      () => {
        inst.uninstallResolved = true;
        if (inst.unsettled) this.violate(`uninstall(${name}) resolved before ${inst.id}'s start or worker had settled`);
      },
      (error: unknown) => this.violate(`uninstall(${name}) rejected with ${String(error)}`),
    );
  }

  exit(pick: number, kind: ExitKind, spec: ErrorSpec): void {
    const eligible = this.instances.flatMap((i) => i.workers).filter((w) => w.predictedAccept && !w.killed && w.exiting === undefined && !w.settled);
    const worker = eligible[pick % Math.max(1, eligible.length)];
    if (worker === undefined) return;
    const error = kind === "clean" ? undefined : makeError(spec, `exit ${worker.id}`);
    worker.exiting = { kind, error };
    this.note(`${worker.id} will exit ${kind === "clean" ? "cleanly" : describeSpec(spec)}`);
    this.later(`${worker.id} exits ${kind === "clean" ? "cleanly" : describeSpec(spec)}`, () => this.settleWorker(worker));
  }

  plan(index: number, plan: StartPlan): void {
    const name = this.defOf(index).name;
    this.plans.set(name, plan);
    this.note(`next start of ${name}: ${describePlan(plan)}`);
  }

  kill(): void {
    this.note("kill()");
    this.becomeDying();
    this.engine.kill();
  }

  async release(count: number): Promise<void> {
    for (let i = 0; i < count && this.s.count() > 0; i++) {
      await this.s.waitNext(1);
      await settle(1);
    }
  }

  async advance(ms: number): Promise<void> {
    this.note(`advance ${ms}ms`);
    await this.clock.advance(ms);
    await settle(1);
  }

  /**
   * Releases every scheduled task and (unless `tasksOnly`) fires every timer,
   * until nothing is left: the engine is quiescent.
   */
  async quiesce(tasksOnly = false): Promise<void> {
    for (let steps = 0; steps < QUIESCE_LIMIT; steps++) {
      if (this.s.count() > 0) {
        await this.s.waitNext(1);
        await settle(1);
        continue;
      }
      const next = this.clock.pending[0];
      if (tasksOnly || next === undefined) return;
      if (next.delay === ENGINE_TIMING.stopTimeout) {
        this.violate(`a stop timer is pending although every worker's wait() has been released`);
        return;
      }
      // Up to the earliest timer's due time (fireNext would settle first and
      // then pick whichever timer is earliest by then, or none).
      await this.clock.advance(next.due - this.clock.now());
      await settle(1);
    }
    this.violate(`the engine did not become quiescent within ${QUIESCE_LIMIT} steps (livelock?)`);
  }

  // ---------------------------------------------------------------- checks

  /** Throws if anything went wrong so far; checks the report against the model. Call with all microtasks flushed. */
  check(where: string): void {
    this.checkState();
    this.checkReport();
    this.checkDelays();
    if (unhandledRejections.reasons.length > 0) this.violate(`unhandled rejection: ${String(unhandledRejections.reasons[0])}`);
    for (const noop of this.#uninstallNoops) if (!noop.resolved) this.violate(`uninstall(${noop.name}) of a name not installed did not resolve at once`);
    this.#uninstallNoops = [];
    if (this.violations.length > 0) {
      throw new PropertyViolation(
        `${this.violations.length} violation(s) ${where}:\n  - ${this.violations.slice(0, 8).join("\n  - ")}\n` +
          `universe: ${describeUniverse(this.universe)}\ntrace (last 60):\n  ${this.trace.slice(-60).join("\n  ")}`,
      );
    }
  }

  checkState(): void {
    for (const inst of this.instances) {
      for (const a of inst.attempts) {
        if (a.seen && !a.expiryChecked) {
          a.expiryChecked = true;
          let message = "";
          try {
            a.context.hasResource(inst.def.inputs[0] ?? "anything");
          } catch (error) {
            message = error instanceof Error ? error.message : String(error);
          }
          if (!/expired/.test(message)) this.violate(`rule 2: the context of ${a.id} did not expire when its start settled`);
        }
        if (a.seen) continue;
        if (a.mustStop && !a.signal.aborted) this.violate(`rule 3: an input of ${inst.id} changed but its start ${a.id} was not aborted`);
        if (this.dying && !a.signal.aborted) this.violate(`kill: start ${a.id} in flight was not aborted`);
        if (!inst.installed && !a.signal.aborted) this.violate(`uninstall: start ${a.id} of uninstalled ${inst.id} was not aborted`);
      }
      for (const w of inst.workers) {
        if (w.predictedAccept && !w.confirmed) this.violate(`${w.id}: the model expected the engine to accept it as started, but it did not`);
        if (w.expectKill && !w.killed) this.violate(`${w.id} came from an unwanted start but was not killed`);
        if (w.seen) continue;
        if (w.mustStop && !w.killed) this.violate(`rule 3: an input of ${inst.id} changed but ${w.id} was not killed`);
      }
    }
  }

  checkReport(): void {
    const report = this.engine.report();
    const expectedState = this.finished ? "stopped" : this.dying ? "stopping" : "started";
    if (report.state !== expectedState) this.violate(`report.state is ${report.state}, expected ${expectedState}`);
    const expectedError = this.worst?.message;
    if (report.error !== expectedError) this.violate(`report.error is ${report.error}, expected ${expectedError}`);
    const names = Object.keys(report.manifolds).sort();
    const installedNames = [...this.installed.keys()].sort();
    if (names.join(",") !== installedNames.join(",")) this.violate(`report lists [${names.join(",")}], installed are [${installedNames.join(",")}]`);
    for (const inst of this.installed.values()) {
      const entry = report.manifolds[inst.name];
      if (entry === undefined) continue;
      const attempt = inst.liveAttempt;
      const worker = inst.liveWorker;
      const state =
        attempt !== undefined ? "starting" : worker !== undefined ? (worker.killed ? "stopping" : "started") : inst.pending ? "starting" : "stopped";
      if (entry.state !== state) this.violate(`report: ${inst.id} is ${entry.state}, the model says ${state}`);
      if (entry.inputs.join(",") !== inst.def.inputs.join(",")) this.violate(`report: ${inst.id} inputs [${entry.inputs.join(",")}]`);
      if (entry.startCount !== inst.startCount) this.violate(`report: ${inst.id} startCount ${entry.startCount}, the model counted ${inst.startCount}`);
      const lastStart = inst.lastStart === undefined ? undefined : iso(inst.lastStart);
      if (entry.lastStart !== lastStart) this.violate(`report: ${inst.id} lastStart ${entry.lastStart}, expected ${lastStart}`);
      if (entry.error !== inst.lastError?.message) this.violate(`report: ${inst.id} error ${JSON.stringify(entry.error)}, expected ${JSON.stringify(inst.lastError?.message)}`);
      const workerReport = worker === undefined ? undefined : JSON.stringify({ id: worker.id });
      if ((entry.report === undefined ? undefined : JSON.stringify(entry.report)) !== workerReport) {
        this.violate(`report: ${inst.id} worker report ${JSON.stringify(entry.report)}, expected ${workerReport}`);
      }
      const log = entry.resourceLog?.map((e) => `${e.name}${e.error === undefined ? "" : "!"}`).join(",");
      const expectedLog = inst.lastLog?.map((e) => `${e.name}${e.error ? "!" : ""}`).join(",");
      if (log !== expectedLog) this.violate(`report: ${inst.id} resourceLog [${log}], expected [${expectedLog}]`);
      if (entry.stuck !== undefined) this.violate(`report: ${inst.id} is stuck`);
    }
  }

  checkDelays(): void {
    const delays = this.clock.delays;
    for (; this.#delaysChecked < delays.length; this.#delaysChecked++) {
      const delay = delays[this.#delaysChecked] as number;
      if (!ALLOWED_DELAYS.has(delay)) this.violate(`rule 5: unexpected timer delay ${delay}ms`);
    }
  }

  /** At quiescence (no task, no timer) and before kill: every manifold is where the model says it must settle. */
  checkQuiescent(): void {
    if (this.dying) return;
    for (const inst of this.installed.values()) {
      const attempt = inst.liveAttempt;
      if (attempt !== undefined && attempt.plan.type !== "hang") this.violate(`quiescent: start ${attempt.id} still in flight`);
      const worker = inst.liveWorker;
      if (worker !== undefined && (worker.killed || !worker.predictedAccept)) this.violate(`quiescent: ${worker.id} still stopping`);
      if (inst.pending) {
        const holder = inst.def.inputs.map((n) => this.installed.get(n)).find((i) => i !== undefined && (i.liveAttempt !== undefined || i.pending));
        if (holder === undefined) this.violate(`liveness: ${inst.id} still waits to start, but no input holds it back`);
      }
    }
    for (const inst of this.instances) {
      if (inst.uninstallCalled && !inst.uninstallResolved) this.violate(`uninstall of ${inst.id} has not resolved though everything settled`);
    }
  }

  /** Kills the engine (if nothing did yet), lets every worker stop, and checks how it ended. */
  async shutdown(): Promise<void> {
    if (!this.dying) this.kill();
    await settle(1);
    this.check("right after kill");
    await this.quiesce(true);
    if (!this.finished) this.violate(`engine.wait() has not settled after every worker stopped (timers pending: ${this.clock.pending.length})`);
    else if (this.worst !== undefined) {
      if (!this.waitRejected || this.waitError !== this.worst) {
        this.violate(`rule 6: wait() should reject with the worst fatal error ${this.worst.message}, got ${this.waitRejected ? "rejection" : "resolution"} ${String(this.waitError)}`);
      }
    } else if (this.waitRejected) this.violate(`wait() rejected with ${String(this.waitError)} but no fatal error arrived`);
    for (const inst of this.instances) {
      for (const a of inst.attempts) if (!a.seen) this.violate(`after shutdown: start ${a.id} never settled`);
      for (const w of inst.workers) if (!w.seen) this.violate(`after shutdown: ${w.id} never stopped`);
      if (inst.uninstallCalled && !inst.uninstallResolved) this.violate(`after shutdown: uninstall of ${inst.id} never resolved`);
    }
    if (this.clock.pending.length > 0) this.violate(`after shutdown: ${this.clock.pending.length} timer(s) left`);
    const report = this.engine.report();
    for (const [name, entry] of Object.entries(report.manifolds)) if (entry.state !== "stopped") this.violate(`after shutdown: ${name} is ${entry.state}`);
    try {
      this.engine.install("late", {
        inputs: [],
        start: () => {
          throw new Error("a start after shutdown");
        },
      });
      this.violate("install after shutdown did not throw");
    } catch (error) {
      if (!(error instanceof EngineStoppedError)) this.violate(`install after shutdown threw ${String(error)}`);
    }
    let lateUninstall = "pending";
    this.engine.uninstall("m0").then(
      () => (lateUninstall = "resolved"),
      (error: unknown) => (lateUninstall = error instanceof EngineStoppedError ? "ok" : String(error)),
    );
    await settle(1);
    if (lateUninstall !== "ok") this.violate(`uninstall after shutdown: ${lateUninstall}, expected EngineStoppedError`);
    this.check("after shutdown");
  }
}
