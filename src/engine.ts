/**
 * The public Engine: a thin shell that checks arguments and hands the work to
 * the loop (`loop.ts`), which owns all state.
 */
import type { Observable } from "rxjs";
import { Bookkeeping } from "./bookkeeping.js";
import { resolveConfig, type Clock, type EngineConfig } from "./config.js";
import type { EngineEvent } from "./event-types.js";
import { EventStream } from "./events.js";
import { EngineStoppedError, StalePlanError } from "./errors.js";
import { computePlan, type Plan } from "./plan.js";
import { selectByConditions, type SkippedManifold } from "./when.js";
import { checkOptions, type ApplyOptions, type InstallOptions, type PlanOptions } from "./desired-state.js";
import { describeValue } from "./errors.js";
import { EngineLoop } from "./loop.js";
import type { ManifoldNode } from "./node.js";
import { MetricsObserver } from "./metrics.js";
import { checkManifold, type CheckedManifold, type Manifold, type Manifolds } from "./manifold.js";
import type { EngineReport } from "./report.js";
import { nameOf, type InputName, type Resource } from "./resource.js";
import type { Reporter, Worker } from "./workers.js";

/**
 * Keeps one worker running per installed manifold for as long as it lives:
 * restarts workers that fail, restarts dependents when an input's worker comes
 * or goes, hands start functions their inputs' outputs, and stops when a fatal
 * error arrives. An Engine is itself a {@link Worker} and a {@link Reporter},
 * so engines nest.
 *
 * Guarantees:
 * - never more than one worker (or start in flight) per manifold name;
 * - a start function is called only when none of its installed inputs has a
 *   start in flight, so a cold start calls each start function once, in
 *   dependency order;
 * - `kill()` stops dependents before their inputs; `wait()` settles only after
 *   every worker's `wait()` has settled (or its `stopTimeout` passed) and every
 *   timer is cleared;
 * - nothing thrown by user code escapes as an exception or unhandled rejection.
 */
export class Engine implements Worker, Reporter {
  readonly #loop: EngineLoop;
  readonly #clock: Clock;
  readonly #bookkeeping: Bookkeeping;
  /** Made the first time `events` is read (rxjs is loaded then). */
  #events: EventStream | undefined;
  /** Applies run one after another: this settles when the last one queued has. */
  #applying: Promise<void> = Promise.resolve();
  /** What the last installAll/apply with requirements left out. */
  #skipped: SkippedManifold[] | undefined;

  /**
   * @param config - see {@link EngineConfig}; every field is optional.
   * @throws TypeError naming the first invalid field.
   */
  constructor(config?: EngineConfig) {
    const resolved = resolveConfig(config);
    this.#clock = resolved.clock;
    this.#loop = new EngineLoop(resolved, this);
    this.#bookkeeping = new Bookkeeping(resolved.clock);
    this.#loop.observe(this.#bookkeeping);
    if (resolved.metrics !== undefined) this.#loop.observe(new MetricsObserver(resolved.metrics, resolved.logger));
  }

  /**
   * Everything that happens to the engine, as it happens: an rxjs
   * `Observable` of {@link EngineEvent} (installs, starts, stops with their
   * outcome, scheduled restarts, bounces with the input that caused them,
   * fatal errors, the engine stopping and stopped). Each event has an `id`,
   * an ISO 8601 UTC `time` and, where there is one, the `cause`: the id of the
   * event that led to it (see {@link formatCauseChain}).
   *
   * Guarantees:
   * - hot: a subscriber gets the events after it subscribed, none before;
   * - each event is emitted synchronously once its change is complete, so
   *   `engine.report()` inside a subscriber already shows it; in order;
   * - completes after `engine-stopped` (at once for a subscriber that comes later);
   * - free while nobody subscribes: no event is built;
   * - a subscriber that throws breaks neither the engine nor other subscribers:
   *   rxjs reports the error through `config.onUnhandledError` (from rxjs),
   *   and without one rethrows it asynchronously as an uncaught exception;
   *   so catch in your subscriber, or set `onUnhandledError`.
   *
   * rxjs (^7.8) is an optional peer dependency, loaded when this is first read.
   * @throws Error saying what to install when rxjs is missing.
   */
  get events(): Observable<EngineEvent> {
    this.#events ??= new EventStream(
      this.#clock,
      () => this.#loop.stopped,
      (observer) => this.#loop.observe(observer),
      (observer) => this.#loop.unobserve(observer),
    );
    return this.#events.observable as Observable<EngineEvent>;
  }

  /**
   * Installs a manifold and starts its worker at once (in the next microtask,
   * so that a batch of synchronous installs starts in dependency order),
   * whether or not its inputs are installed or running.
   * @throws TypeError for a malformed name or manifold (the message names both);
   * AlreadyInstalledError; CycleError if its inputs close a cycle;
   * EngineStoppedError after `kill()`.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  install<T>(name: string | Resource<T>, manifold: Manifold<any, T>): void {
    const checked = checkManifold(name, manifold);
    if (checked.manifold.when !== undefined) {
      throw new TypeError(
        `manifold ${JSON.stringify(checked.name)} has a when condition, which needs requirements: ` +
          "install it with installAll(manifolds, { requirements }) or apply(desired, { requirements })",
      );
    }
    this.#loop.install(checked);
  }

  /**
   * Installs several manifolds, all or nothing: every manifold is checked, and
   * the group for cycles (with what is installed), before any is installed.
   * A manifold whose `when` is false for `options.requirements` is left out
   * (and removed from the others' inputs); the report's `skipped` lists them.
   * @throws as {@link Engine.install}; ConditionSyntaxError for a malformed
   * `when`; TypeError for requirements that are not an iterable of strings.
   * Nothing is installed then.
   */
  installAll(manifolds: Manifolds, options?: InstallOptions): void {
    if (manifolds === null || typeof manifolds !== "object") {
      throw new TypeError(`installAll(manifolds): manifolds must be an object of name -> manifold (got ${describeValue(manifolds)})`);
    }
    const { requirements } = checkOptions("installAll", options, ["requirements"]);
    const { batch, skipped } = this.#select(manifolds, requirements);
    this.#loop.installBatch(batch);
    // As apply: a call that used requirements (or left something out) says what it left out.
    if (requirements !== undefined || skipped.length > 0) this.#skipped = skipped;
  }

  /** The manifolds `when` keeps for `requirements`, checked as install checks them; and the ones it leaves out. */
  #select(manifolds: Manifolds, requirements: Iterable<string> | undefined): { batch: CheckedManifold[]; skipped: SkippedManifold[] } {
    const selection = selectByConditions(manifolds, requirements, checkManifold);
    // A manifold its `when` leaves out is still checked: a malformed one is a bug whatever the requirements.
    for (const { name } of selection.skipped) checkManifold(name, manifolds[name]);
    return { batch: [...selection.kept], skipped: [...selection.skipped] };
  }

  /**
   * What {@link Engine.apply} would do with `desired`, without changing
   * anything: which manifolds it would install, uninstall, replace, keep
   * running, skip (their `when` is false) and restart (kept, but an input of
   * theirs changes), with the reason for each replacement and restart, and the
   * `generation` of the installed set it was computed against.
   * Still answers after `kill()`.
   * @throws what `apply` rejects with for a bad desired set.
   */
  plan(desired: Manifolds, options?: PlanOptions): Plan {
    const { requirements } = checkOptions("plan", options, ["requirements"]);
    const { batch, skipped } = this.#select(desired, requirements);
    return computePlan(this.#loop.installed, { entries: batch, skipped }, this.#loop.generation);
  }

  /**
   * Makes the installed set equal to `desired` (after conditions): installs
   * the new, uninstalls the absent, replaces the changed and leaves the
   * unchanged running, untouched. A desired manifold is unchanged when it is
   * the installed object itself, or when both carry a deeply equal `config`
   * and their inputs, `when` and options are equal (functions are not
   * compared: a reload that rebuilds closures from the same configuration
   * restarts nothing).
   *
   * Guarantees:
   * - all or nothing: the whole desired set is checked first (names, shapes,
   *   conditions, cycles, including through manifolds that stay); on a fault
   *   it rejects with the error `installAll` would give and changes nothing;
   * - dependents stop before their inputs; a replaced manifold's new start
   *   waits for its old worker to stop; every affected manifold (installed,
   *   replaced, or restarted because an input changed) starts once, after its
   *   inputs;
   * - calls are serialised: a second `apply` is planned against the state the
   *   first leaves;
   * - with `ifGeneration`, rejects with StalePlanError (changing nothing) when
   *   the installed set moved on since the plan was made.
   *
   * Resolves with the plan it carried out once every removed or replaced
   * worker has stopped; then `onIdle()` says when the new state has converged.
   * Rejects with EngineStoppedError after `kill()`.
   */
  apply(desired: Manifolds, options?: ApplyOptions): Promise<Plan> {
    // The next apply is planned once this one's removed workers have stopped
    // (or are stuck: one that never stops must not hold every later apply back).
    let done!: () => void;
    const previous = this.#applying;
    this.#applying = new Promise<void>((resolve) => (done = resolve));
    return previous.then(async () => {
      let change: { plan: Plan; stopped: Promise<void>; stoppedOrStuck: Promise<void> };
      try {
        change = this.#applyNow(desired, options);
      } catch (error) {
        done();
        throw error;
      }
      void change.stoppedOrStuck.then(done);
      await change.stopped;
      return change.plan;
    });
  }

  /** Checks, plans and starts carrying out one apply; throws (having changed nothing) for a bad desired set or a stale plan. */
  #applyNow(desired: Manifolds, options: ApplyOptions | undefined): { plan: Plan; stopped: Promise<void>; stoppedOrStuck: Promise<void> } {
    if (this.#loop.stopping) throw new EngineStoppedError("cannot apply: the engine is stopping or stopped");
    const { requirements, ifGeneration } = checkOptions("apply", options, ["requirements", "ifGeneration"]);
    if (ifGeneration !== undefined && !(typeof ifGeneration === "number" && Number.isInteger(ifGeneration))) {
      throw new TypeError(`apply(desired, options): options.ifGeneration must be a whole number, a plan's generation (got ${describeValue(ifGeneration)})`);
    }
    const { batch, skipped } = this.#select(desired, requirements);
    const installed = this.#loop.installed;
    const plan = computePlan(installed, { entries: batch, skipped }, this.#loop.generation);
    if (ifGeneration !== undefined && ifGeneration !== plan.generation) {
      throw new StalePlanError(undefined, { expected: ifGeneration, actual: plan.generation });
    }
    const changing = new Set([...plan.install, ...plan.replace]);
    const remove = [...plan.uninstall, ...plan.replace].map((name) => installed.get(name) as ManifoldNode);
    const restart = plan.restart.map((name) => installed.get(name) as ManifoldNode);
    const { stopped, stoppedOrStuck } = this.#loop.applyChange(
      remove,
      restart,
      batch.filter((checked) => changing.has(checked.name)),
    );
    if (requirements !== undefined || skipped.length > 0) this.#skipped = skipped;
    return { plan, stopped, stoppedOrStuck };
  }

  /**
   * Resolves once nothing is scheduled, starting or stopping: every manifold
   * is running, completed, missing, waiting out an error delay, quarantined
   * or stuck, and no `apply` is in progress. "apply, then await onIdle()" is
   * how a caller knows the new state has converged. It does not wait for
   * error delays (a failing manifold may never converge), and a later change
   * makes the engine busy again: it is a moment, not a promise about the future.
   */
  async onIdle(): Promise<void> {
    await this.#applying;
    await this.#loop.onIdle();
  }

  /**
   * Removes a manifold: its start is aborted or its worker killed, and its
   * dependents are restarted without it. The name is free at once; a manifold
   * installed under it again starts only after this one's worker has stopped.
   * Resolves once its worker has stopped; at once if it is not installed.
   * Rejects with EngineStoppedError after `kill()`, TypeError for a bad name.
   * (A worker stuck past its stopTimeout keeps it pending until it does stop;
   * `wait()` reports the stuck worker meanwhile.)
   */
  uninstall(name: InputName): Promise<void> {
    const resolved = nameOf(name);
    if (resolved === undefined) {
      return Promise.reject(new TypeError(`uninstall(name): name must be a non-empty string or a resource token (got ${describeValue(name)})`));
    }
    return this.#loop.uninstall(resolved);
  }

  /**
   * An operator's manual restart of `name`: releases its quarantine (see
   * `restartLimit`), resets its backoff (its next failure waits the plain
   * `errorDelay`), stops its worker if one runs (or aborts its start) and
   * starts it again after `bounceDelay`; its dependents are bounced as usual.
   * Resolves once the new start function has been called.
   * Rejects with an Error naming the manifold when it is not installed, and
   * with EngineStoppedError after `kill()` (or when the engine stops, or the
   * manifold is uninstalled, before the start is called).
   */
  restart(name: InputName): Promise<void> {
    const resolved = nameOf(name);
    if (resolved === undefined) {
      return Promise.reject(new TypeError(`restart(name): name must be a non-empty string or a resource token (got ${describeValue(name)})`));
    }
    return this.#loop.restart(resolved);
  }

  /** Asks the engine to stop every worker and itself. Idempotent, never throws, does not wait. */
  kill(): void {
    this.#loop.kill();
  }

  /**
   * Settles once the engine has stopped: every worker's `wait()` has settled
   * and every timer is cleared. Rejects with the worst fatal error (after the
   * config `filter`), or with ShutdownTimeoutError if some worker did not stop
   * within its stopTimeout; resolves otherwise. Returns the same promise every
   * time; it never causes an unhandled rejection by itself.
   */
  wait(): Promise<void> {
    return this.#loop.done;
  }

  /** A JSON-serialisable snapshot of the engine and every installed manifold. */
  report(): EngineReport {
    const report = this.#loop.report(this.#bookkeeping);
    report.generation = this.#loop.generation;
    if (this.#skipped !== undefined) report.skipped = this.#skipped.map(({ name, when }) => ({ name, when }));
    return report;
  }

  /** `kill()` then `wait()`, swallowing nothing: `await using engine = new Engine()`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.kill();
    return this.wait();
  }
}
