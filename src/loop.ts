/**
 * The engine loop: the only code that changes manifold state.
 *
 * Everything that happens to the engine becomes a message: a start function
 * settling, a worker's `wait()` settling, a timer firing, an uninstall, a kill.
 * The mailbox (`mailbox.ts`) hands them to the `gotX` handlers one at a time,
 * in order, and between messages hands over nodes whose start is due. User
 * code that calls back into the engine while a message is being handled only
 * queues another message, so no handler ever runs inside another.
 *
 * Messages can be stale: a start attempt that was aborted, a timer that was
 * superseded. Each message carries the generation of the attempt (or timer)
 * it belongs to, and the handler drops it when that is no longer the node's
 * current one. A worker's `stopped` needs none: a node starts again only
 * after that message (start-attempt.ts).
 *
 * Around it, one concept per file: `start-attempt.ts` calls start functions;
 * `failure.ts` reads errors and `schedule.ts` turns them into delays;
 * `readiness.ts` keeps rule 9's counters (it decides nothing: the loop asks);
 * `deadlines.ts` is the one timer for deadlines; `shutdown.ts` orders a
 * shutdown; `transitions.ts` is how observers (event stream, bookkeeping,
 * metrics) hear of every change, at no cost when nobody listens.
 *
 * "A worker exits with an error", followed: `start-attempt.ts` posts
 * `stopped` → `#gotStopped` reads the error → `#decideRestart` →
 * `#scheduleRestart` asks `schedule.ts` for the backed-off delay and arms
 * the timer.
 *
 * Costs: a start with delay 0 goes through the ready queue, never a timer; a
 * bounce touches only the transitive dependents it restarts; shutdown touches
 * each node and edge a constant number of times. Nothing here scans the whole
 * graph per event.
 */
import { systemClock, type ResolvedConfig } from "./config.js";
import { Deadlines } from "./deadlines.js";
import { EngineStoppedError, quote, toError } from "./errors.js";
import { classify, filterError, isFatal, rankFatal, type Verdict } from "./failure.js";
import { Graph } from "./graph.js";
import { Lifecycle, reportState } from "./lifecycle.js";
import { Mailbox } from "./mailbox.js";
import type { CheckedManifold } from "./manifold.js";
import { ManifoldNode, type Phase, type RestartReason } from "./node.js";
import { Readiness } from "./readiness.js";
import { engineReport, isoTime, type EngineReport, type ReportHistory } from "./report.js";
import { bounceRestartDelay, errorRestartDelay, nextRecentErrors } from "./schedule.js";
import { ShutdownOrder, shutdownOutcome } from "./shutdown.js";
import { runStartAttempt, type AttemptMessage } from "./start-attempt.js";
import { abortAttempt, attemptAborted, freezeAttempt, loggedErrors, loggedNames, StartAttempt, type AttemptHost } from "./start-context.js";
import { AbsentInputs } from "./absent-inputs.js";
import { Supervisor } from "./supervisor.js";
import { Observers, scheduleReason, stopOutcome, type TransitionObserver } from "./transitions.js";
import type { Worker } from "./workers.js";

type Message =
  | AttemptMessage
  | { kind: "due"; node: ManifoldNode; generation: number }
  | { kind: "deadlines"; generation: number }
  | { kind: "uninstall"; node: ManifoldNode }
  | { kind: "restart"; node: ManifoldNode }
  | { kind: "apply"; order: ShutdownOrder; remove: readonly ManifoldNode[]; restart: readonly ManifoldNode[]; changed: ReadonlySet<ManifoldNode> }
  | { kind: "kill" };

/** A deadline timer this much late (or more) means the event loop was blocked, not that workers hung. */
const STALL_THRESHOLD = 1000;

/** @internal */
export class EngineLoop {
  readonly #config: ResolvedConfig;
  /** The engine itself: never killed or waited for when it is one of its own workers (rule 11). */
  readonly #self: Worker;
  readonly #graph = new Graph<ManifoldNode>();
  readonly #readiness = new Readiness((node) => this.#makeReady(node));
  readonly #mailbox: Mailbox<Message, ManifoldNode>;
  /** Deadlines of workers (and aborted starts) the engine stopped, of heartbeats and of quarantine probes. */
  readonly #deadlines: Deadlines<ManifoldNode>;
  /**
   * The clock's time for the message (or ready node) being handled, read at
   * most once per handler (see #now): a kill stops 100,000 workers in one
   * handler, and a clock read for each cost about 10% of it (measured).
   */
  #handlerTime: number | undefined = undefined;
  /**
   * The clock's first reading, floored: nodes keep their times (`since`,
   * `lastStart`) as ms after it. Exact for every clock time after it (both
   * are multiples of that time's precision). An offset that is not a small
   * integer (a clock with fractions of a millisecond, or 2^31 ms = 24.8 days
   * after the epoch) is a HeapNumber of its own, as every time was before.
   */
  readonly #epoch: number;
  /** Who is told of every transition (see transitions.ts); undefined while nobody listens. */
  #observer: TransitionObserver | undefined = undefined;
  readonly #observers: TransitionObserver[] = [];

  #lifecycle = Lifecycle.Running;
  /** The id of the next node installed (see `ManifoldNode.id`). */
  #nextId = 0;
  /** Made when the kill message is handled. */
  #shutdown: ShutdownOrder | undefined = undefined;
  /** Callers (applies) waiting for a removed node to settle or become stuck. */
  readonly #stopOrStuckWaiters = new Map<ManifoldNode, (() => void)[]>();
  /** The stop orders of applies whose workers are still stopping. */
  readonly #applyOrders = new Set<ShutdownOrder>();
  /** Nodes with a start or worker that has not settled. */
  #live = 0;
  /** Live nodes past their stopTimeout. */
  #stuck = 0;
  /** Nodes scheduled, starting or stopping (see `isBusy`): `onIdle` waits for none. */
  #busy = 0;
  #idleWaiters: (() => void)[] = [];
  /** Moves on with every change of the installed set: what a plan's `ifGeneration` is checked against. */
  #generation = 0;
  #worst: Error | undefined;
  #reporting = false;
  /** The start attempt whose start function is running synchronously now, if any (see #freezeCalling). */
  #calling: StartAttempt | undefined = undefined;
  readonly #absent: AbsentInputs;
  readonly #supervisor: Supervisor;


  readonly done: Promise<void>;
  #resolveDone!: () => void;
  #rejectDone!: (error: Error) => void;

  constructor(config: ResolvedConfig, self: Worker) {
    this.#config = config;
    this.#self = self;
    this.#mailbox = new Mailbox<Message, ManifoldNode>({
      message: (message) => {
        this.#handlerTime = undefined;
        this.#dispatch(message);
      },
      ready: (node) => {
        this.#handlerTime = undefined;
        this.#gotReady(node);
      },
      crashed: (what, error) => this.#crashed(what, error),
      idle: () => this.#gotIdle(),
    });
    this.#epoch = Math.floor(config.clock.now());
    // With the system clock, deadlines run on monotonic time; a test's clock drives both.
    const elapsed = config.clock === systemClock ? () => performance.now() : () => config.clock.now();
    this.#deadlines = new Deadlines<ManifoldNode>(config.clock, elapsed, (generation) => this.#post({ kind: "deadlines", generation }));
    this.#absent = new AbsentInputs(this.#graph, config.logger, () => this.#generation);
    this.#supervisor = new Supervisor(config, this.#deadlines, {
      observer: () => this.#observer,
      running: () => this.#lifecycle === Lifecycle.Running,
      interrupt: (node, reason, why) => this.#interrupt(node, reason, why),
      bounceDependents: (node) => this.#bounceDependents(node),
      restartAfter: (node, reason, delay) => this.#restartAfter(node, reason, delay),
      rest: (node) => this.#rest(node),
      scheduleRestart: (node, reason) => this.#scheduleRestart(node, reason),
      clearTimer: (node) => this.#clearTimer(node),
    });
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolveDone = resolve;
      this.#rejectDone = reject;
    });
    // A failure reaches only those who call wait().
    this.done.catch(() => undefined);
  }

  // ---------------------------------------------------------------- observers

  /** Tells `observer` of every transition from now on (see transitions.ts). */
  observe(observer: TransitionObserver): void {
    this.#observers.push(observer);
    this.#observer = Observers.combine(this.#observers);
  }

  /** Stops telling `observer`. */
  unobserve(observer: TransitionObserver): void {
    const index = this.#observers.indexOf(observer);
    if (index < 0) return;
    this.#observers.splice(index, 1);
    this.#observer = Observers.combine(this.#observers);
  }

  // ---------------------------------------------------------------- public calls

  /** Adds one manifold; it starts at once (via the ready queue). */
  install(checked: CheckedManifold): void {
    if (this.stopping) this.#refuseInstall(`manifold ${quote(checked.name)}`);
    const now = this.#config.clock.now();
    this.#gotInstalled(this.#addNode(checked, now), now);
    this.#generation++;
  }

  /** Adds every manifold or none; each starts at once (via the ready queue). */
  installBatch(batch: readonly CheckedManifold[]): void {
    if (this.stopping) this.#refuseInstall(batch.length === 1 ? `manifold ${quote((batch[0] as CheckedManifold).name)}` : `${batch.length} manifolds`);
    const now = this.#config.clock.now();
    const added: ManifoldNode[] = [];
    try {
      for (const checked of batch) added.push(this.#addNode(checked, now));
    } catch (error) {
      for (const node of added) this.#graph.remove(node);
      throw error;
    }
    for (const node of added) this.#gotInstalled(node, now);
    this.#generation++;
  }

  /**
   * The error for an install once the engine is stopping. Callers check
   * `stopping` first and build `what` only then: a closure for it cost up to
   * 46 B per install (alloc.ts at 100k: 46 B fan-out, 5 B layered).
   */
  #refuseInstall(what: string): never {
    throw new EngineStoppedError(`cannot install ${what}: the engine is stopping or stopped`);
  }

  /**
   * A start function that installs or uninstalls while it runs synchronously
   * changes what its inputs are: its snapshot is taken first (start-context.ts).
   */
  #freezeCalling(): void {
    if (this.#calling !== undefined) freezeAttempt(this.#calling);
  }

  /** @throws AlreadyInstalledError or CycleError, having changed nothing. */
  #addNode(checked: CheckedManifold, now: number): ManifoldNode {
    this.#freezeCalling();
    const node = new ManifoldNode(this.#nextId++, checked, now - this.#epoch, this.#postAttempt);
    this.#graph.add(node, checked.inputs);
    const supervision = checked.supervision;
    // Only manifolds that ask for supervision (or an engine that defaults it) get a record now, with
    // the options checked at install; a record made later needs none of the manifold's (supervisor.ts).
    const defaults = this.#config.supervision;
    if (defaults !== undefined || (supervision?.heartbeatTimeout ?? 0) > 0 || supervision?.restartLimit !== undefined) {
      this.#supervisor.supervise(node, supervision);
    }
    return node;
  }

  #gotInstalled(node: ManifoldNode, now: number): void {
    if (this.#config.debugEnabled) this.#config.logger.debug(`manifold ${quote(node.name)} installed`);
    this.#makeReady(node, now);
    this.#observer?.installed(node);
  }

  uninstall(name: string): Promise<void> {
    if (this.#lifecycle !== Lifecycle.Running) {
      return Promise.reject(new EngineStoppedError(`cannot uninstall manifold ${quote(name)}: the engine is stopping or stopped`));
    }
    const node = this.#graph.get(name);
    if (node === undefined) return Promise.resolve();
    // The name is free at once (so it can be installed again); a new node of
    // the same name waits for this one to settle before it starts (rule 8).
    let stopped = Promise.resolve();
    if (node.live) {
      this.#readiness.retiring.set(name, node);
      stopped = new Promise<void>((resolve) => (node.uninstallWaiters ??= []).push(resolve));
    }
    this.#removeNode(node);
    this.#observer?.uninstalled(node, "call");
    this.#mailbox.postFromCaller({ kind: "uninstall", node });
    return stopped;
  }

  /** Whether `kill()` was called (or a fatal error arrived): changes are refused. */
  get stopping(): boolean {
    return this.#lifecycle !== Lifecycle.Running;
  }

  /** Whether the engine has stopped (`wait()` has settled). */
  get stopped(): boolean {
    return this.#lifecycle === Lifecycle.Stopped;
  }

  /** The installed set's generation: every install, uninstall and apply moves it on. */
  get generation(): number {
    return this.#generation;
  }

  /** The installed nodes by name, as a plan reads them (name, manifold, inputs). */
  get installed(): {
    get(name: string): ManifoldNode | undefined;
    values(): Iterable<ManifoldNode>;
    readonly size: number;
    dependents(name: string): Iterable<ManifoldNode>;
  } {
    const graph = this.#graph;
    // `size` and `dependents` let a plan start from the changes rather than walk the whole graph.
    return { get: (name) => graph.get(name), values: () => graph.nodes(), size: graph.size, dependents: (name) => graph.dependentsOf(name) };
  }

  /** Resolves once no node is scheduled, starting or stopping (see `isBusy`). */
  onIdle(): Promise<void> {
    if (this.#busy === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Carries out a plan (plan.ts): `remove` (uninstalled and replaced names),
   * `restart` (kept manifolds an input change restarts) and `batch` (the new
   * and replacing manifolds). Workers stop dependents first: each removed or
   * restarted worker is stopped once none of its dependents among them is
   * live (as at shutdown); replacements wait for their old worker (rule 8),
   * and every start waits for its inputs (rule 9), so each affected manifold
   * starts once. `stopped` resolves once every removed worker has stopped (as
   * uninstall does); `stoppedOrStuck` once each has stopped or is stuck.
   * @throws what `installBatch` throws, having changed nothing.
   */
  applyChange(
    remove: readonly ManifoldNode[],
    restart: readonly ManifoldNode[],
    batch: readonly CheckedManifold[],
  ): { stopped: Promise<void>; stoppedOrStuck: Promise<void> } {
    if (this.stopping) this.#refuseInstall("the desired manifolds");
    // Counted while the removed nodes are still in the graph: who must stop before whom.
    const changed = new Set<ManifoldNode>([...remove, ...restart]);
    const order = new ShutdownOrder(this.#nextId, changed);
    for (const node of changed) order.count(node);
    const stopped: Promise<void>[] = [];
    const stoppedOrStuck: Promise<void>[] = [];
    for (const node of remove) {
      if (node.live) {
        this.#readiness.retiring.set(node.name, node);
        stopped.push(new Promise<void>((resolve) => (node.uninstallWaiters ??= []).push(resolve)));
        // Settled or stuck: a worker that never stops must not hold every later apply back.
        if (!node.stuck) {
          stoppedOrStuck.push(new Promise<void>((resolve) => this.#stopOrStuckWaiters.set(node, [...(this.#stopOrStuckWaiters.get(node) ?? []), resolve])));
        }
      }
      this.#removeNode(node);
      this.#observer?.uninstalled(node, "call");
    }
    try {
      this.installBatch(batch);
    } catch (error) {
      // The plan checked shapes and cycles, so this is a bug; the removals stand, and say so.
      this.#config.logger.error(`apply: installing the desired manifolds failed after removing ${remove.length}: ${toError(error, "install").message}`);
      throw error;
    }
    this.#mailbox.postFromCaller({ kind: "apply", order, remove, restart, changed });
    return { stopped: Promise.all(stopped).then(() => undefined), stoppedOrStuck: Promise.all(stoppedOrStuck).then(() => undefined) };
  }

  /** An operator's restart of `name`: see `Engine.restart`. */
  restart(name: string): Promise<void> {
    if (this.#lifecycle !== Lifecycle.Running) {
      return Promise.reject(new EngineStoppedError(`cannot restart manifold ${quote(name)}: the engine is stopping or stopped`));
    }
    const node = this.#graph.get(name);
    if (node === undefined) {
      return Promise.reject(new Error(`cannot restart manifold ${quote(name)}: it is not installed; install it first (installed: ${this.#graph.size} manifolds)`));
    }
    const record = this.#supervisor.supervise(node);
    return new Promise<void>((resolve, reject) => {
      (record.restartWaiters ??= []).push({ resolve, reject });
      this.#mailbox.postFromCaller({ kind: "restart", node });
    });
  }

  kill(): void {
    if (this.#lifecycle === Lifecycle.Running) this.#lifecycle = Lifecycle.KillRequested;
    this.#mailbox.postFromCaller({ kind: "kill" });
  }

  /** The report, with `history` (the engine's bookkeeping) for what the loop does not keep. */
  report(history: ReportHistory): EngineReport {
    const reentered = this.#reporting;
    this.#reporting = true;
    try {
      const report = engineReport(this.#graph.nodes(), reportState(this.#lifecycle), this.#worst, history, this.#self, !reentered, this.#wallTime, this.#epoch);
      const stall = this.#supervisor.lastStall;
      if (stall !== undefined) report.lastStall = { time: isoTime(stall.time), lateMs: stall.late };
      return report;
    } finally {
      this.#reporting = reentered;
    }
  }

  // ---------------------------------------------------------------- the loop

  #post(message: Message): void {
    this.#mailbox.post(message);
  }

  /** Shared by every start attempt (one function, not one closure per attempt). */
  readonly #postAttempt = (message: AttemptMessage): void => this.#mailbox.post(message);

  /** A bug in a handler must not wedge the loop: it becomes the engine's fatal error. */
  #crashed(what: string, error: unknown): void {
    const internal = new Error(`manifold-engine internal error while handling ${what}: ${toError(error, what).message}`, { cause: error });
    this.#config.logger.error(internal.message);
    if (this.#lifecycle !== Lifecycle.Stopped) this.#worst = internal;
    this.#requestKill();
  }

  #dispatch(message: Message): void {
    switch (message.kind) {
      case "started":
        return this.#gotStarted(message.node, message.generation, message.worker);
      case "startFailed":
        return this.#gotStartFailed(message.node, message.generation, message.error);
      case "stopped":
        return this.#gotStopped(message.node, message.error);
      case "due":
        return this.#gotDue(message.node, message.generation);
      case "deadlines":
        return this.#gotDeadlines(message.generation);
      case "uninstall":
        return this.#gotUninstall(message.node);
      case "restart":
        return this.#supervisor.restart(message.node);
      case "apply":
        return this.#gotApply(message.order, message.remove, message.restart, message.changed);
      case "kill":
        return this.#gotKill();
    }
  }

  // ---------------------------------------------------------------- the transition point

  /** The time of the handler running now: a handler is one instant, whatever it changes. */
  #now(): number {
    return (this.#handlerTime ??= this.#config.clock.now());
  }

  /**
   * Every phase change goes through here: it keeps `since`, the live count
   * and rule 9's counters true, and runs what follows a settled node.
   */
  #setPhase(node: ManifoldNode, phase: Phase, now?: number): void {
    const from = node.phase;
    const wasLive = node.live;
    const oldState = node.reportState;
    node.phase = phase;
    if (from !== phase) this.#readiness.phaseChanged(node, from, phase);
    if (node.reportState !== oldState) node.since = (now ?? this.#now()) - this.#epoch;
    this.#refresh(node);
    if (wasLive === node.live) return;
    if (node.live) {
      this.#live++;
    } else {
      this.#live--;
      this.#gotSettled(node);
    }
  }

  /** After anything that decides them changed: rule 9's holding (readiness.ts) and whether the node keeps the engine busy. */
  #refresh(node: ManifoldNode): void {
    this.#readiness.refresh(node);
    const busy = isBusy(node);
    if (busy === node.busy) return;
    node.busy = busy;
    this.#busy += busy ? 1 : -1;
  }

  /** Every change of what follows a node's current start, worker or timer goes through here. */
  #setRestart(node: ManifoldNode, reason: RestartReason): void {
    node.restart = reason;
    this.#refresh(node);
  }

  // ---------------------------------------------------------------- ready queue (rules 8 and 9)

  #makeReady(node: ManifoldNode, now?: number): void {
    this.#setPhase(node, "ready", now);
    this.#mailbox.pushReady(node);
  }

  /** A node's turn in the ready queue: start it unless an input (or a retiring namesake) has a start in flight. */
  #gotReady(node: ManifoldNode): void {
    if (node.phase !== "ready") return;
    if (this.#lifecycle !== Lifecycle.Running || !node.installed) return this.#setPhase(node, "idle");
    if (!this.#readiness.mayStart(node)) return this.#setPhase(node, "blocked");
    this.#requestStart(node);
  }

  // ---------------------------------------------------------------- starting

  /** What start contexts ask of the loop: heartbeats and progress (supervisor.ts), name suggestions (absent-inputs.ts). One object for all. */
  readonly #host: AttemptHost = {
    heartbeat: (owner, generation) => this.#supervisor.heartbeat(owner as ManifoldNode, generation),
    progress: (owner, generation, message, details) => this.#supervisor.progress(owner as ManifoldNode, generation, message, details),
    suggest: (name) => this.#absent.suggest(name),
  };

  #requestStart(node: ManifoldNode): void {
    const generation = ++node.startGeneration;
    const startAttempt = new StartAttempt(node, generation, this.#host);
    node.attempt = startAttempt;
    node.restart = "none"; // refreshed by the phase change
    const record = node.supervision;
    // From here until the start function returns, an install or uninstall (by the start function, or by
    // an observer told of `starting`) freezes the snapshot first, as it was when the attempt began (#freezeCalling).
    this.#calling = startAttempt;
    try {
      if (record !== undefined) this.#supervisor.starting(node, record);
      this.#setPhase(node, "starting");
      this.#observer?.starting(node);
      runStartAttempt(node, generation, startAttempt, this.#self);
    } finally {
      this.#calling = undefined;
    }
    const waiters = record?.restartWaiters;
    if (waiters !== undefined) {
      record!.restartWaiters = undefined;
      for (const waiter of waiters) waiter.resolve();
    }
  }

  /** What every settled start does first: checks it is current and keeps its resource log. Returns whether it was aborted. */
  #startSettled(node: ManifoldNode, generation: number, what: string): boolean {
    const attempt = node.attempt;
    if (node.startGeneration !== generation || node.phase !== "starting" || attempt === undefined) {
      throw new Error(`unexpected ${what} of ${quote(node.name)} (generation ${generation}, phase ${node.phase})`);
    }
    node.attempt = undefined;
    node.resourceNames = loggedNames(attempt);
    node.resourceErrors = loggedErrors(attempt);
    return attemptAborted(attempt);
  }

  #gotStarted(node: ManifoldNode, generation: number, worker: Worker): void {
    const aborted = this.#startSettled(node, generation, "start");
    node.worker = worker;
    if (aborted || this.#lifecycle >= Lifecycle.ShuttingDown || !node.installed) {
      // Nobody wants this worker any more; it never counts as started, and
      // like any aborted start it resets backoff (rule 5).
      node.workerAccepted = false;
      if (aborted) node.recentErrors = 1;
      return this.#requestStop(node);
    }
    const now = this.#now();
    node.workerAccepted = true;
    node.startCount++;
    node.lastStart = now - this.#epoch;
    node.error = undefined;
    this.#setPhase(node, "running", now);
    // The engine's own manifold (rule 11) never beats: it is not watched.
    if (node.supervision !== undefined && worker !== this.#self) this.#supervisor.watch(node, node.supervision);
    if (this.#config.debugEnabled) this.#config.logger.debug(`manifold ${quote(node.name)} started`);
    this.#observer?.started(node);
    this.#bounceDependents(node);
  }

  #gotStartFailed(node: ManifoldNode, generation: number, raw: Error): void {
    const aborted = this.#startSettled(node, generation, "start failure");
    const error = this.#recordError(node, raw, "start");
    const fatal = error !== undefined && this.#checkFatal(node, error);
    const verdict = classify(error);
    // An aborted start resets backoff: the input change that aborted it may well fix it.
    node.recentErrors = aborted ? 1 : nextRecentErrors(node.recentErrors, verdict, undefined, this.#config);
    const delay = this.#decideRestart(node, verdict, aborted);
    this.#observer?.stopped(node, stopOutcome(verdict, aborted, fatal), error, aborted);
    this.#announceNext(node, aborted ? "completed" : verdict, fatal, delay);
  }

  // ---------------------------------------------------------------- stopping

  #gotStopped(node: ManifoldNode, raw: Error | undefined): void {
    if (node.worker === undefined) return; // stale: its worker's stop was already handled (the engine's own, at shutdown)
    let killed = node.phase === "stopping";
    /** Killed for a missed heartbeat: its dependents were bounced then, and need no second restart now. */
    let bouncedAtKill = false;
    const record = node.supervision;
    if (record !== undefined) {
      this.#supervisor.unwatch(record);
      // Killed for its own reasons (a missed heartbeat): it failed, with the error that says why.
      if (record.killError !== undefined) {
        raw = record.killError;
        record.killError = undefined;
        killed = false;
        bouncedAtKill = true;
      }
    }
    const accepted = node.workerAccepted;
    node.worker = undefined;
    node.workerAccepted = false;
    // Decided before any user code (filter, isFatal) runs: an uninstall it
    // makes re-entrantly must not make us forget the dependents.
    const bounce = accepted && node.installed && !bouncedAtKill;
    const error = raw === undefined ? undefined : this.#recordError(node, raw, "worker");
    const fatal = error !== undefined && this.#checkFatal(node, error);
    const verdict = classify(error);
    // One clock read serves the backoff and the state change (a shutdown makes 100,000 of these).
    const now = this.#now();
    const ranFor = accepted ? now - this.#epoch - (node.lastStart ?? 0) : undefined;
    node.recentErrors = nextRecentErrors(node.recentErrors, verdict, ranFor, this.#config);
    const delay = this.#decideRestart(node, verdict, killed, now);
    this.#observer?.stopped(node, stopOutcome(verdict, killed, fatal), error, killed || bouncedAtKill);
    this.#announceNext(node, killed ? "completed" : verdict, fatal, delay);
    if (bounce) this.#bounceDependents(node);
  }

  /**
   * What follows a start or worker that settled without leaving a worker
   * (SPEC rule 4). Returns the delay of the restart it scheduled, if any.
   */
  #decideRestart(node: ManifoldNode, verdict: Verdict, killed: boolean, now?: number): number | undefined {
    if (this.#lifecycle >= Lifecycle.ShuttingDown || !node.installed) return this.#rest(node, now);
    if (killed) {
      // The engine stopped it: restart if still wanted, for the reason it was stopped, whatever it returned.
      return node.restart === "none" ? this.#rest(node, now) : this.#scheduleRestart(node, node.restart);
    }
    switch (verdict) {
      case "completed":
      case "missing":
        return this.#rest(node); // until an input changes
      case "bounce":
        return this.#scheduleRestart(node, "bounce");
      case "uninstall":
        if (this.#config.debugEnabled) this.#config.logger.debug(`manifold ${quote(node.name)} asked to be uninstalled`);
        this.#removeNode(node);
        return this.#rest(node);
      case "unknown":
        if (node.supervision !== undefined && this.#supervisor.quarantineIfStorm(node, node.supervision)) return this.#supervisor.scheduleProbe(node, node.supervision);
        return this.#scheduleRestart(node, "failed");
    }
  }

  /**
   * After a start or worker settled: logs a failure once, with what follows
   * it; tells observers of a new quarantine, and of the restart scheduled
   * (`delay`), if any.
   */
  #announceNext(node: ManifoldNode, verdict: Verdict, fatal: boolean, delay: number | undefined): void {
    if (verdict === "unknown" && !fatal && node.error !== undefined) {
      const next = node.supervision?.quarantine !== undefined ? "quarantined" : delay === undefined ? "not restarted" : `restarting in ${delay} ms`;
      this.#config.logger.error(`manifold ${quote(node.name)} failed: ${withoutName(node.name, node.error.message)}; ${next}`);
    }
    if (verdict === "uninstall" && !node.installed) this.#observer?.uninstalled(node, "itself");
    const quarantine = node.supervision?.quarantine;
    if (quarantine !== undefined && !quarantine.announced) {
      quarantine.announced = true;
      this.#observer?.quarantined(node);
    }
    if (delay !== undefined) this.#observer?.scheduled(node, delay, scheduleReason(node.restart));
  }

  /** Leaves `node` idle until something changes. */
  #rest(node: ManifoldNode, now?: number): undefined {
    this.#setPhase(node, "idle", now);
    return undefined;
  }

  /** Passes `raw` through the manifold's filter and keeps the result as the node's error. */
  #recordError(node: ManifoldNode, raw: Error, source: "start" | "worker"): Error | undefined {
    const error = filterError(node.name, node.manifold, raw, this.#config);
    if (error === undefined) return undefined;
    node.error = error;
    if (this.#config.debugEnabled && classify(error) !== "unknown") {
      this.#config.logger.debug(`manifold ${quote(node.name)}: ${source} ended: ${withoutName(node.name, error.message)}`);
    }
    return error;
  }

  /** Rule 6: whether `error` is fatal; a fatal error is ranked and stops the engine. */
  #checkFatal(node: ManifoldNode, error: Error): boolean {
    // Once wait() has settled its outcome is final: a straggler's error is recorded, never ranked.
    if (this.#lifecycle === Lifecycle.Stopped || !isFatal(this.#config, error, node.name)) return false;
    this.#worst = rankFatal(this.#config, this.#worst, error);
    this.#config.logger.error(`fatal error from ${quote(node.name)}, stopping the engine: ${error.message}`);
    this.#observer?.fatal(node, error, this.#worst === error);
    this.#requestKill();
    return true;
  }

  /**
   * Stops the engine after the current message, so no handler runs half-way
   * through a shutdown; meanwhile nothing more is bounced or restarted, so
   * shutdown order (dependents first) holds after a fatal error too.
   */
  #requestKill(): void {
    if (this.#lifecycle === Lifecycle.Running) this.#lifecycle = Lifecycle.KillRequested;
    this.#mailbox.enqueue({ kind: "kill" });
  }

  /** Kills the worker (never the engine itself). What follows its stop is `node.restart`. */
  #requestStop(node: ManifoldNode): void {
    if (node.phase === "stopping") return;
    this.#setPhase(node, "stopping");
    this.#armStuck(node);
    const worker = node.worker as Worker;
    if (worker === this.#self) {
      // Never kill ourselves (rule 11): our own "worker" stops when we say so.
      this.#mailbox.enqueue({ kind: "stopped", node, error: undefined });
      return;
    }
    try {
      worker.kill();
    } catch (error) {
      this.#config.logger.warn(`manifold ${quote(node.name)}: worker.kill() threw: ${toError(error, "kill").message}`);
    }
  }

  /**
   * Aborts the start in flight with a reason that says why. (An abort listener
   * that throws is reported by Node as an uncaught exception: no caller can
   * catch it, so listeners must not throw.)
   */
  #abortStart(node: ManifoldNode, why: string): void {
    if (node.attempt === undefined || attemptAborted(node.attempt)) return;
    this.#armStuck(node);
    abortAttempt(node.attempt, new DOMException(`start of manifold ${quote(node.name)} aborted: ${why}`, "AbortError"));
  }

  /**
   * Stops what `node` is doing for `reason` (`none`: for good) and returns
   * whether that killed a running worker. A start in flight is aborted with
   * `why`; a worker already stopping just learns what follows.
   */
  #interrupt(node: ManifoldNode, reason: RestartReason, why: string): boolean {
    switch (node.phase) {
      case "starting":
        this.#setRestart(node, reason);
        this.#abortStart(node, why);
        return false;
      case "running":
        this.#setRestart(node, reason);
        this.#requestStop(node);
        return true;
      case "stopping":
        this.#setRestart(node, reason);
        return false;
      default:
        return false;
    }
  }

  // ---------------------------------------------------------------- bouncing (rule 3)

  /**
   * Restarts every dependent of `node`. A running dependent that is killed
   * passes the bounce on to its own dependents at once, rather than when it
   * has stopped: they would be bounced then anyway, and marking the whole
   * affected subgraph now makes every restart in it wait for its inputs
   * (rule 9), so each affected manifold restarts exactly once.
   */
  #bounceDependents(node: ManifoldNode): void {
    if (this.#lifecycle !== Lifecycle.Running || !this.#readiness.hasCalledDependents(node)) return;
    // A method of its own: the walk's closure makes a context on entry, which every start and stop would pay (measured: ~25 B per start).
    this.#walkBounce(node);
  }

  #walkBounce(node: ManifoldNode): void {
    const stack = [node];
    let cause = node;
    const visit = (dependent: ManifoldNode): void => {
      if (this.#bounce(dependent, cause) && this.#readiness.hasCalledDependents(dependent)) stack.push(dependent);
    };
    while (stack.length > 0) {
      cause = stack.pop() as ManifoldNode;
      cause.slot?.forEachDependent(visit);
    }
  }

  /** Bounces one dependent because `cause` changed; true if it killed a running worker (whose dependents are affected too). */
  #bounce(node: ManifoldNode, cause: ManifoldNode): boolean {
    if (!node.installed) return false;
    switch (node.phase) {
      case "ready":
      case "blocked":
        return false; // its start has not been called: it will see the change
      case "delayed":
        // An input change cuts an error delay short, as in Juju; a pending bounce stands.
        if (node.restart === "bounce" || node.restart === "input-changed") return false;
        if (quarantined(node)) return false; // not restarted automatically
        node.recentErrors = 1;
        break;
      case "idle":
        if (quarantined(node)) return false;
        break;
      default: {
        // Live: a restart already wanted (by an earlier input) stands, and was reported then.
        if (node.restart === "input-changed" || node.restart === "bounce") return false;
        const killed = this.#interrupt(node, "input-changed", "an input changed");
        this.#observer?.bounced(node, cause);
        return killed;
      }
    }
    const delay = this.#scheduleRestart(node, "input-changed");
    this.#observer?.bounced(node, cause);
    if (delay !== undefined) this.#observer?.scheduled(node, delay, "input-changed");
    return false;
  }

  // ---------------------------------------------------------------- timers

  /**
   * Restarts `node` for `reason` after the delay that reason calls for
   * (backoff for a failure, bounceDelay otherwise): a timer when non-zero;
   * otherwise the ready queue of the next event-loop turn (never a timer, and
   * never a tight loop of a start that fails at once). Returns the delay, or
   * undefined when the node is left idle instead (the engine is stopping, or
   * the node was uninstalled).
   */
  #scheduleRestart(node: ManifoldNode, reason: Exclude<RestartReason, "none">): number | undefined {
    this.#clearTimer(node);
    if (this.#lifecycle !== Lifecycle.Running || !node.installed) return this.#rest(node);
    const delay = reason === "failed" ? errorRestartDelay(this.#config, node.recentErrors) : bounceRestartDelay(this.#config);
    return this.#restartAfter(node, reason, delay);
  }

  /** Starts `node` again after `delay` ms (0: the ready queue of the next turn), for `reason`. */
  #restartAfter(node: ManifoldNode, reason: Exclude<RestartReason, "none">, delay: number): number {
    node.restart = reason; // refreshed by the phase change
    if (delay <= 0) {
      this.#setPhase(node, "ready");
      this.#mailbox.pushNextTurn(node);
      return 0;
    }
    this.#clearTimer(node); // one timer per node: an earlier one must not fire too
    const generation = node.timerGeneration;
    node.timer = this.#config.clock.setTimeout(() => this.#post({ kind: "due", node, generation }), delay);
    node.timerPending = true;
    this.#setPhase(node, "delayed");
    return delay;
  }

  #clearTimer(node: ManifoldNode): void {
    // Only a pending timer can have a `due` message on its way: with none, no generation to move
    // on, so a shutdown makes no rare record (node.ts) for each node.
    if (!node.timerPending) return;
    node.timerPending = false;
    node.timerGeneration++;
    if (node.timer !== undefined) this.#config.clock.clearTimeout(node.timer);
    node.timer = undefined;
  }

  #gotDue(node: ManifoldNode, generation: number): void {
    if (node.timerGeneration !== generation) return;
    node.timerPending = false;
    node.timer = undefined;
    if (node.phase === "delayed") this.#makeReady(node);
  }

  // ---------------------------------------------------------------- stuck workers

  #armStuck(node: ManifoldNode): void {
    if (this.#deadlines.hasStop(node) || node.stuck || this.#lifecycle === Lifecycle.Stopped) return;
    const timeout = node.stopTimeout ?? this.#config.stopTimeout;
    if (timeout <= 0) return;
    this.#deadlines.addStop(node, timeout);
  }

  #gotDeadlines(generation: number): void {
    const { stops, others } = this.#deadlines.expired(generation);
    const stalled = this.#deadlines.lateness >= STALL_THRESHOLD;
    if (stalled && others.some((deadline) => deadline.kind === "heartbeat")) this.#supervisor.stall(this.#deadlines.lateness);
    for (const node of stops) this.#gotStuck(node);
    for (const deadline of others) {
      if (deadline.kind === "heartbeat") this.#supervisor.heartbeatDue(deadline.item, deadline, stalled);
      else this.#supervisor.probePassed(deadline.item, deadline);
    }
  }

  #gotStuck(node: ManifoldNode): void {
    if (!node.live || node.stuck) return;
    node.stuck = true;
    this.#stuck++;
    this.#config.logger.warn(`manifold ${quote(node.name)} did not stop within its stopTimeout; it is stuck`);
    this.#tellStopOrStuck(node);
    this.#refresh(node);
    if (!node.installed) this.#retiringChanged(node.name);
    this.#releaseInputs(node);
    this.#observer?.stuck(node);
  }

  /** The deadlines' time base as clock time (they run on monotonic time with the system clock). */
  readonly #wallTime = (time: number): number =>
    this.#config.clock === systemClock ? performance.timeOrigin + time : time;

  // ---------------------------------------------------------------- uninstall

  /** Takes a node out of the graph: uninstalled, or its worker asked for it. Its name is free at once. */
  #removeNode(node: ManifoldNode): void {
    this.#freezeCalling();
    this.#graph.remove(node);
    this.#generation++;
    this.#readiness.removed(node);
    if (node.supervision !== undefined) this.#supervisor.dropRestartWaiters(node.supervision, "it was uninstalled");
    // Its dependents stop counting it now, before anything else can be installed under its name.
    this.#refresh(node);
  }

  #gotUninstall(node: ManifoldNode): void {
    if (this.#config.debugEnabled) this.#config.logger.debug(`manifold ${quote(node.name)} uninstalled`);
    const accepted = node.workerAccepted;
    if (!node.live) {
      this.#clearTimer(node);
      this.#setPhase(node, "idle");
    } else {
      this.#interrupt(node, "none", "it was uninstalled");
    }
    if (accepted) this.#bounceDependents(node);
  }

  /**
   * The stopping half of `applyChange`: removed nodes stop for good and kept
   * ones restart, each worker once none of its dependents among them is live.
   */
  #gotApply(order: ShutdownOrder, remove: readonly ManifoldNode[], restart: readonly ManifoldNode[], changed: ReadonlySet<ManifoldNode>): void {
    this.#applyOrders.add(order);
    for (const node of remove) {
      if (!node.live) {
        this.#clearTimer(node);
        this.#setPhase(node, "idle");
      } else {
        this.#setRestart(node, "none");
      }
    }
    const removedByName = new Map(remove.map((node) => [node.name, node]));
    for (const node of restart) {
      if (!node.installed) continue;
      const cause = changedInput(node, changed, removedByName);
      if (!node.live) {
        this.#bounce(node, cause ?? node);
        continue;
      }
      if (node.restart !== "bounce" && node.restart !== "input-changed") this.#setRestart(node, "input-changed");
      if (cause !== undefined) this.#observer?.bounced(node, cause);
    }
    for (const node of changed) {
      if (node.phase === "starting") this.#abortStart(node, node.installed ? "an input changed" : "it was uninstalled");
      else if (node.phase === "running" && this.#mayStopNow(node)) this.#requestStop(node);
    }
    if (order.done) this.#applyOrders.delete(order);
  }

  /** A node's start or worker has settled (it is no longer live). */
  #gotSettled(node: ManifoldNode): void {
    this.#tellStopOrStuck(node);
    this.#clearStuck(node);
    this.#releaseInputs(node);
    if (!node.installed) this.#gotRetired(node);
  }

  #tellStopOrStuck(node: ManifoldNode): void {
    if (this.#stopOrStuckWaiters.size === 0) return;
    const waiters = this.#stopOrStuckWaiters.get(node);
    if (waiters === undefined) return;
    this.#stopOrStuckWaiters.delete(node);
    for (const resolve of waiters) resolve();
  }

  #clearStuck(node: ManifoldNode): void {
    this.#deadlines.cancelStop(node);
    if (node.stuck) {
      node.stuck = false;
      this.#stuck--;
    }
  }

  /** An uninstalled node has settled: its `uninstall()` callers are told, and a namesake may start. */
  #gotRetired(node: ManifoldNode): void {
    const retiring = this.#readiness.retiring;
    if (retiring.get(node.name) === node) retiring.delete(node.name);
    const waiters = node.uninstallWaiters;
    node.uninstallWaiters = undefined;
    if (waiters !== undefined) for (const resolve of waiters) resolve();
    this.#retiringChanged(node.name);
  }

  /**
   * The uninstalled namesake a node installed under `name` waits for (rule 8)
   * became stuck or settled: whether that node holds its dependents back, and
   * whether it may start, have changed with it.
   */
  #retiringChanged(name: string): void {
    // By name: the slot the old node kept may have been released and replaced.
    const successor = this.#graph.get(name);
    if (successor === undefined) return;
    this.#refresh(successor);
    if (this.#readiness.mayUnblock(successor)) this.#makeReady(successor);
  }

  // ---------------------------------------------------------------- shutdown

  /**
   * Shutdown stops dependents before their inputs (shutdown.ts): a running
   * worker is killed once none of its dependents is live. Starts in flight
   * are aborted at once. O(N + E) in total.
   */
  #gotKill(): void {
    if (this.#lifecycle >= Lifecycle.ShuttingDown) return;
    this.#lifecycle = Lifecycle.ShuttingDown;
    this.#readiness.stopHolding();
    this.#config.logger.info("engine stopping");
    // Nothing is installed or removed while stopping: the list is read in place.
    const installed = this.#graph.installedView();
    const retiring = [...this.#readiness.retiring.values()];
    const order = new ShutdownOrder(this.#nextId);
    for (const node of installed) {
      if (node === undefined) continue;
      this.#settleForShutdown(node);
      order.count(node);
    }
    // Uninstalled nodes still retiring are stopping already: nobody waits for them.
    for (const node of retiring) this.#settleForShutdown(node);
    this.#shutdown = order;
    this.#observer?.engineStopping();
    for (const node of installed) if (node !== undefined) this.#stopForShutdown(node);
    for (const node of retiring) this.#stopForShutdown(node);
  }

  /** At shutdown: aborts `node`'s start in flight, or stops its worker if none of its dependents is live. */
  #stopForShutdown(node: ManifoldNode): void {
    if (node.phase === "starting") this.#abortStart(node, "the engine is stopping");
    else if (node.phase === "running" && this.#mayStopNow(node)) this.#requestStop(node);
  }

  /** At shutdown: `node` will not start again (no timer, no restart, not waiting to start), and the engine's own worker is let go. */
  #settleForShutdown(node: ManifoldNode): void {
    this.#clearTimer(node);
    if (node.supervision !== undefined) this.#supervisor.dropRestartWaiters(node.supervision, "the engine is stopping");
    node.restart = "none"; // refreshed below
    if (node.phase === "delayed" || node.phase === "ready" || node.phase === "blocked") {
      this.#setPhase(node, "idle");
    } else if (node.phase === "running" && node.worker === this.#self) {
      node.worker = undefined;
      node.workerAccepted = false;
      this.#setPhase(node, "idle");
    } else {
      this.#refresh(node);
    }
  }

  /** `installed` and the uninstalled nodes still retiring (rule 8): every node that may have a worker or a timer. */
  #withRetiring(installed: ManifoldNode[]): ManifoldNode[] {
    return this.#readiness.retiring.size === 0 ? installed : [...installed, ...this.#readiness.retiring.values()];
  }

  /** During shutdown or an apply: `node` no longer holds its inputs up; each input whose last live dependent it was is stopped. */
  #releaseInputs(node: ManifoldNode): void {
    this.#shutdown?.release(node, this.#stopIfFree);
    if (this.#applyOrders.size === 0) return;
    for (const order of this.#applyOrders) {
      order.release(node, this.#stopIfFree);
      if (order.done) this.#applyOrders.delete(order);
    }
  }

  /** Stops `node` if no order in force (shutdown, applies) still waits for one of its dependents. */
  readonly #stopIfFree = (node: ManifoldNode): void => {
    if (this.#mayStopNow(node)) this.#requestStop(node);
  };

  #mayStopNow(node: ManifoldNode): boolean {
    if (this.#shutdown !== undefined && !this.#shutdown.mayStop(node)) return false;
    if (this.#applyOrders.size === 0) return true; // (no iterator made: this runs once per worker at shutdown)
    for (const order of this.#applyOrders) if (!order.mayStop(node)) return false;
    return true;
  }

  /** The mailbox is empty: the engine may have stopped, or become idle. */
  #gotIdle(): void {
    // A public call after the drain reads the clock afresh.
    this.#handlerTime = undefined;
    this.#checkFinished();
    if (this.#busy !== 0) return;
    if (this.#lifecycle === Lifecycle.Running) this.#absent.warnOnce();
    if (this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Rule 7: wait() settles once every worker has settled (or is stuck) and no timer is left. */
  #checkFinished(): void {
    this.#deadlines.tidy();
    if (this.#lifecycle !== Lifecycle.ShuttingDown || this.#live > this.#stuck) return;
    this.#lifecycle = Lifecycle.Stopped;
    this.#deadlines.clear();
    // No node has a restart timer: the kill cleared them (#settleForShutdown), those set between
    // kill() and its message included (a restart, a quarantine probe), and none is set once stopping
    // (#scheduleRestart, #decideRestart). So only stuck workers need a pass over the nodes, which at
    // 100,000 costs 10 to 20 ms.
    const stuck: string[] = [];
    if (this.#stuck > 0) for (const node of this.#withRetiring(this.#graph.nodes())) if (node.stuck) stuck.push(node.name);
    this.#config.logger.info("engine stopped");
    const outcome = shutdownOutcome(stuck, this.#worst, this.#config.filter);
    this.#observer?.engineStopped(outcome);
    if (outcome === undefined) this.#resolveDone();
    else this.#rejectDone(outcome);
  }
}

/**
 * Whether a node keeps the engine from being idle: a start scheduled (a
 * bounce delay, the ready queue), in flight, or a worker stopping. A node
 * waiting out an error delay, running, idle or stuck does not.
 */
function isBusy(node: ManifoldNode): boolean {
  switch (node.phase) {
    case "ready":
      return true;
    case "blocked":
      return node.holding; // not when behind a stuck namesake (readiness.ts): that may never end
    case "starting":
    case "stopping":
      return !node.stuck;
    case "running": // to be restarted by an apply, once its dependents have stopped
    case "delayed":
      return node.restart === "bounce" || node.restart === "input-changed";
    default:
      return false;
  }
}

/** An input of `node` that an apply installs, replaces, removes or restarts: the cause reported for its restart. */
function changedInput(
  node: ManifoldNode,
  changed: ReadonlySet<ManifoldNode>,
  removedByName: ReadonlyMap<string, ManifoldNode>,
): ManifoldNode | undefined {
  for (const slot of node.inputSlots) {
    const input = slot.node;
    // A new or replacing node (still waiting for its first start) is a change too.
    if (input !== undefined && (input.startCount === 0 || changed.has(input))) return input;
  }
  // An input that was removed has left the graph: find it by name (O(inputs), not O(changed)).
  for (const slot of node.inputSlots) {
    const removed = removedByName.get(slot.name);
    if (removed !== undefined) return removed;
  }
  return undefined;
}

/** An error message without a leading `manifold "name": ` (the log line names the manifold once). */
function withoutName(name: string, message: string): string {
  const prefix = `manifold ${quote(name)}: `;
  return message.startsWith(prefix) ? message.slice(prefix.length) : message;
}

/** Quarantined and not probing: an input change does not restart it (a probe that ended without failing does restart). */
function quarantined(node: ManifoldNode): boolean {
  const quarantine = node.supervision?.quarantine;
  return quarantine !== undefined && !quarantine.probing;
}
