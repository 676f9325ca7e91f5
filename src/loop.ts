/**
 * The engine loop: the only code that changes manifold state.
 *
 * Everything that happens to the engine becomes a message: a start function
 * settling, a worker's `wait()` settling, a timer firing, an uninstall, a kill.
 * `#drain` handles messages one at a time, in order, and between messages
 * takes nodes off the ready queue and calls their start functions. User code
 * that calls back into the engine while a message is being handled only
 * queues another message, so no handler ever runs inside another.
 *
 * Messages can be stale: a worker that was replaced, a start attempt that was
 * aborted, a timer that was superseded. Each message carries the generation of
 * the attempt (or timer) it belongs to, and the handler drops it when that is
 * no longer the node's current one.
 *
 * Why one file of this size: every state change of every manifold is here,
 * so "a worker exits with an error" can be followed from its message
 * (`#onStopped`) to the restart decision (`#afterStop`) to the timer
 * (`#scheduleStart`) without leaving it. What decides nothing lives elsewhere:
 * the queues (`mailbox.ts`), calling start functions (`start-attempt.ts`),
 * reading errors (`failure.ts`), shutdown order (`shutdown.ts`), reports.
 *
 * Costs: a start with delay 0 goes through the ready queue, never a timer; a
 * bounce touches only the transitive dependents it restarts; shutdown touches
 * each node and edge a constant number of times. Nothing here scans the whole
 * graph per event.
 */
import { systemClock, type ResolvedConfig } from "./config.js";
import { EngineStoppedError, quote, toError } from "./errors.js";
import { classify, filterError, isFatal, nextRecentErrors, rankFatal, type Verdict } from "./failure.js";
import { Graph, type Slot } from "./graph.js";
import { Mailbox } from "./mailbox.js";
import type { CheckedManifold } from "./manifold.js";
import { ManifoldNode, waitsForStart, type Phase } from "./node.js";
import { manifoldReport, setEntry, type EngineReport, type ManifoldReport } from "./report.js";
import { errorRestartDelay, spread } from "./schedule.js";
import { countLiveDependents, releaseInputs, shutdownOutcome } from "./shutdown.js";
import { runStartAttempt, type AttemptMessage } from "./start-attempt.js";
import { StartAttempt, type Snapshot } from "./start-context.js";
import { Watchdog } from "./watchdog.js";
import type { Worker } from "./workers.js";

type Message =
  | AttemptMessage
  | { kind: "due"; node: ManifoldNode; token: number }
  | { kind: "watchdog"; token: number }
  | { kind: "uninstall"; node: ManifoldNode }
  | { kind: "kill" };

const EMPTY_SNAPSHOT: Snapshot = Object.freeze([]);
const NO_DEPENDENTS: readonly ManifoldNode[] = Object.freeze([]);

/** @internal */
export class EngineLoop {
  readonly #config: ResolvedConfig;
  /** The engine itself: never killed or waited for when it is one of its own workers (rule 11). */
  readonly #self: Worker;
  readonly #graph = new Graph<ManifoldNode>();
  /** Uninstalled nodes whose start or worker has not settled yet, by name. */
  readonly #retiring = new Map<string, ManifoldNode>();

  readonly #mailbox: Mailbox<Message, ManifoldNode>;
  /** Deadlines of workers (and aborted starts) the engine stopped: see watchdog.ts. */
  readonly #watchdog: Watchdog<ManifoldNode>;

  /** kill() was called: refuse changes at once, even before the kill message is handled. */
  #killRequested = false;
  #dying = false;
  #finished = false;
  /** Nodes with a start or worker that has not settled. */
  #live = 0;
  /** Live nodes past their stopTimeout. */
  #stuck = 0;
  #worst: Error | undefined;
  #reporting = false;

  readonly done: Promise<void>;
  #resolveDone!: () => void;
  #rejectDone!: (error: Error) => void;

  constructor(config: ResolvedConfig, self: Worker) {
    this.#config = config;
    this.#self = self;
    this.#mailbox = new Mailbox<Message, ManifoldNode>({
      message: (message) => this.#dispatch(message),
      ready: (node) => this.#processReady(node),
      crashed: (what, error) => this.#crashed(what, error),
      idle: () => this.#checkFinished(),
    });
    // With the system clock, deadlines run on monotonic time; a test's clock drives both.
    const elapsed = config.clock === systemClock ? () => performance.now() : () => config.clock.now();
    this.#watchdog = new Watchdog<ManifoldNode>(config.clock, elapsed, (token) => this.#post({ kind: "watchdog", token }));
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolveDone = resolve;
      this.#rejectDone = reject;
    });
    // A failure reaches only those who call wait().
    this.done.catch(() => undefined);
  }

  // ---------------------------------------------------------------- public calls

  /** Adds one manifold; it starts at once (via the ready queue). */
  installOne(checked: CheckedManifold): void {
    this.#refuseIfKilled(checked.name, 1);
    const now = this.#config.clock.now();
    this.#queueInstalled(this.#addNode(checked, now), now);
  }

  /** Adds every manifold or none; each starts at once (via the ready queue). */
  install(batch: readonly CheckedManifold[]): void {
    this.#refuseIfKilled((batch[0] as CheckedManifold | undefined)?.name ?? "", batch.length);
    const now = this.#config.clock.now();
    const added: ManifoldNode[] = [];
    try {
      for (const checked of batch) added.push(this.#addNode(checked, now));
    } catch (error) {
      for (const node of added) this.#graph.remove(node);
      throw error;
    }
    for (const node of added) this.#queueInstalled(node, now);
  }

  #refuseIfKilled(name: string, count: number): void {
    if (!this.#killRequested) return;
    const what = count === 1 ? `manifold ${quote(name)}` : `${count} manifolds`;
    throw new EngineStoppedError(`cannot install ${what}: the engine is stopping or stopped`);
  }

  /** @throws AlreadyInstalledError or CycleError, having changed nothing. */
  #addNode({ name, manifold, inputs }: CheckedManifold, now: number): ManifoldNode {
    const node = new ManifoldNode(name, manifold, inputs, now);
    this.#graph.add(node);
    return node;
  }

  #queueInstalled(node: ManifoldNode, now: number): void {
    if (this.#config.debugEnabled) this.#config.logger.debug("installed manifold %s", node.name);
    this.#makeReady(node, now);
  }

  uninstall(name: string): Promise<void> {
    if (this.#killRequested) {
      return Promise.reject(new EngineStoppedError(`cannot uninstall manifold ${quote(name)}: the engine is stopping or stopped`));
    }
    const node = this.#graph.get(name);
    if (node === undefined) return Promise.resolve();
    // The name is free at once (so it can be installed again); a new node of
    // the same name waits for this one to settle before it starts (rule 8).
    this.#removeNode(node);
    let stopped = Promise.resolve();
    if (node.live) {
      this.#retiring.set(name, node);
      stopped = new Promise<void>((resolve) => (node.uninstallWaiters ??= []).push(resolve));
    }
    // Its dependents stop counting it now, before anything else can be installed under its name.
    this.#refreshHolding(node);
    this.#mailbox.post({ kind: "uninstall", node }, false);
    return stopped;
  }

  kill(): void {
    this.#killRequested = true;
    this.#mailbox.post({ kind: "kill" }, false);
  }

  report(): EngineReport {
    const reentered = this.#reporting;
    this.#reporting = true;
    try {
      const manifolds: Record<string, ManifoldReport> = {};
      for (const node of this.#graph.nodes()) setEntry(manifolds, node.name, manifoldReport(node, this.#self, !reentered));
      const report: EngineReport = { state: this.#finished ? "stopped" : this.#killRequested ? "stopping" : "started", manifolds };
      if (this.#worst !== undefined) report.error = this.#worst.message;
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
    if (!this.#finished) this.#worst = internal;
    this.#mailbox.enqueue({ kind: "kill" });
  }

  #dispatch(message: Message): void {
    switch (message.kind) {
      case "started":
        return this.#onStarted(message.node, message.attempt, message.worker, message.startAttempt);
      case "startFailed":
        return this.#onStartFailed(message.node, message.attempt, message.error, message.startAttempt);
      case "stopped":
        return this.#onStopped(message.node, message.attempt, message.error);
      case "due":
        return this.#onDue(message.node, message.token);
      case "watchdog":
        return this.#onWatchdog(message.token);
      case "uninstall":
        return this.#onUninstall(message.node);
      case "kill":
        return this.#onKill();
    }
  }

  // ---------------------------------------------------------------- phases and rule 9

  /** The installed nodes that list `node`'s name as an input. */
  #dependentsOf(node: ManifoldNode): Iterable<ManifoldNode> {
    return node.slot === undefined ? NO_DEPENDENTS : node.slot.dependents;
  }

  /** Every phase change goes through here: it keeps the live count and the holding flag true. */
  #setPhase(node: ManifoldNode, phase: Phase, now?: number): void {
    const wasLive = node.live;
    const oldState = node.reportState;
    const old = node.phase;
    node.phase = phase;
    if (old !== phase) this.#trackWaiting(node, old, phase);
    if (node.reportState !== oldState) node.since = now ?? this.#config.clock.now();
    this.#refreshHolding(node);
    if (wasLive !== node.live) {
      if (node.live) {
        this.#live++;
      } else {
        this.#live--;
        this.#afterSettled(node);
      }
    }
  }

  /**
   * Keeps `holding` true and, for every blocked dependent, the count of its
   * holding inputs: O(dependents) when the flag flips and some dependent is
   * blocked, so that unblocking a node is O(1) however many inputs it has.
   * (Nodes that are not blocked keep no count: `#processReady` looks at their
   * inputs when their turn comes, as the snapshot is about to anyway.)
   */
  #refreshHolding(node: ManifoldNode): void {
    const holding = node.computeHolding(this.#dying) && !this.#behindStuck(node);
    if (holding === node.holding) return;
    node.holding = holding;
    const slot = node.slot;
    if (slot === undefined || slot.blockedDependents === 0) return;
    const change = holding ? 1 : -1;
    for (const dependent of slot.dependents) {
      if (dependent.phase !== "blocked") continue;
      dependent.holdingInputs += change;
      if (!holding) this.#tryUnblock(dependent);
    }
  }

  /**
   * Keeps its input slots' counts true as a node enters or leaves `ready` and
   * `blocked` (waiting for its start to be called), and `blocked` itself.
   */
  #trackWaiting(node: ManifoldNode, from: Phase, to: Phase): void {
    const wasWaiting = waitsForStart(from);
    if (node.installed && wasWaiting !== waitsForStart(to)) {
      const change = wasWaiting ? -1 : 1;
      for (const slot of node.inputSlots) slot.waitingDependents += change;
    }
    if (from === "blocked") this.#unwatchInputs(node);
    else if (to === "blocked") this.#watchInputs(node);
  }

  /** Takes a node out of the graph: uninstalled, or its worker asked for it. Its name is free at once. */
  #removeNode(node: ManifoldNode): void {
    this.#graph.remove(node);
    node.installed = false;
    // No longer a dependent of its inputs, so no longer one that waits.
    if (waitsForStart(node.phase)) for (const slot of node.inputSlots) slot.waitingDependents--;
  }

  /**
   * Whether `node` waits for an uninstalled namesake that is stuck (rule 8):
   * its start is then no more imminent than a stuck worker's restart, so like
   * a stuck node it holds nobody back.
   */
  #behindStuck(node: ManifoldNode): boolean {
    return this.#retiring.size > 0 && node.phase === "blocked" && this.#retiring.get(node.name)?.stuck === true;
  }

  /** A node entering `blocked` counts its holding inputs, and has their slots keep the count up to date. */
  #watchInputs(node: ManifoldNode): void {
    let holding = 0;
    for (const slot of node.inputSlots) {
      slot.blockedDependents++;
      if (slot.node?.holding === true) holding++;
    }
    node.holdingInputs = holding;
  }

  #unwatchInputs(node: ManifoldNode): void {
    for (const slot of node.inputSlots) slot.blockedDependents--;
    node.holdingInputs = 0;
  }

  /** Rule 9: whether an installed input has a start in flight or imminent. */
  #inputHolding(node: ManifoldNode): boolean {
    for (const slot of node.inputSlots) if (slot.node?.holding === true) return true;
    return false;
  }

  /** A blocked node starts once no input holds it back and no namesake is retiring. */
  #tryUnblock(node: ManifoldNode): void {
    if (node.phase === "blocked" && node.holdingInputs === 0 && !this.#retiring.has(node.name) && !this.#dying) {
      this.#makeReady(node);
    }
  }

  #makeReady(node: ManifoldNode, now?: number): void {
    this.#setPhase(node, "ready", now);
    this.#mailbox.pushReady(node);
  }

  /** Rule 9: start only when no installed input (and no retiring namesake) has a start in flight. */
  #processReady(node: ManifoldNode): void {
    if (node.phase !== "ready") return;
    if (this.#killRequested || !node.installed) return this.#setPhase(node, "idle");
    if (this.#inputHolding(node) || this.#retiring.has(node.name)) return this.#setPhase(node, "blocked");
    this.#callStart(node);
  }

  // ---------------------------------------------------------------- starting

  #snapshot(node: ManifoldNode): Snapshot {
    const count = node.inputs.length;
    if (count === 0) return EMPTY_SNAPSHOT;
    const snapshot = new Array<unknown>(2 * count);
    for (let i = 0; i < count; i++) {
      const input = (node.inputSlots[i] as Slot<ManifoldNode>).node;
      if (input !== undefined && input.phase === "running" && input.workerRan) {
        snapshot[2 * i] = input.worker;
        snapshot[2 * i + 1] = input.manifold;
      }
    }
    return snapshot;
  }

  #callStart(node: ManifoldNode): void {
    const attempt = ++node.attempt;
    const startAttempt = new StartAttempt(node, this.#snapshot(node));
    node.abort = startAttempt;
    node.restartWanted = false;
    this.#setPhase(node, "starting");
    runStartAttempt(node, attempt, startAttempt, this.#self, this.#postAttempt);
  }

  #onStarted(node: ManifoldNode, attempt: number, worker: Worker, startAttempt: StartAttempt): void {
    if (node.attempt !== attempt || node.phase !== "starting") {
      throw new Error(`unexpected start of ${quote(node.name)} (attempt ${attempt}, phase ${node.phase})`);
    }
    const aborted = node.abort?.aborted === true;
    node.abort = undefined;
    node.resourceNames = startAttempt.loggedNames;
    node.resourceErrors = startAttempt.loggedErrors;
    node.worker = worker;
    if (aborted || this.#dying || !node.installed) {
      // Nobody wants this worker any more; it never counts as started, and
      // like any aborted start it resets backoff (rule 5).
      node.workerRan = false;
      if (aborted) node.recentErrors = 1;
      return this.#stopWorker(node, node.restartWanted);
    }
    const now = this.#config.clock.now();
    node.workerRan = true;
    node.startCount++;
    node.lastStart = now;
    node.error = undefined;
    this.#setPhase(node, "running", now);
    if (this.#config.debugEnabled) this.#config.logger.debug("manifold %s started", node.name);
    try {
      this.#config.metrics?.recordStart(node.name);
    } catch (error) {
      this.#config.logger.warn(`metrics.recordStart(${quote(node.name)}) threw: ${toError(error, "recordStart").message}`);
    }
    this.#bounceDependents(node);
  }

  #onStartFailed(node: ManifoldNode, attempt: number, raw: Error, startAttempt: StartAttempt): void {
    if (node.attempt !== attempt || node.phase !== "starting") {
      throw new Error(`unexpected start failure of ${quote(node.name)} (attempt ${attempt}, phase ${node.phase})`);
    }
    const aborted = node.abort?.aborted === true;
    node.abort = undefined;
    node.resourceNames = startAttempt.loggedNames;
    node.resourceErrors = startAttempt.loggedErrors;
    const verdict = classify(this.#noteError(node, raw, "start"));
    // An aborted start resets backoff: the input change that aborted it may well fix it.
    node.recentErrors = aborted ? 1 : nextRecentErrors(node.recentErrors, verdict, undefined, this.#config);
    this.#afterStop(node, verdict, aborted);
  }

  // ---------------------------------------------------------------- stopping

  #onStopped(node: ManifoldNode, attempt: number, raw: Error | undefined): void {
    if (node.attempt !== attempt || node.worker === undefined) return; // stale
    const killed = node.phase === "stopping";
    const ran = node.workerRan;
    node.worker = undefined;
    node.workerRan = false;
    // Decided before any user code (filter, isFatal) runs: an uninstall it
    // makes re-entrantly must not make us forget the dependents.
    const bounce = ran && node.installed;
    const error = raw === undefined ? undefined : this.#noteError(node, raw, "worker");
    const verdict = classify(error);
    const ranFor = ran ? this.#config.clock.now() - (node.lastStart ?? 0) : undefined;
    node.recentErrors = nextRecentErrors(node.recentErrors, verdict, ranFor, this.#config);
    this.#afterStop(node, verdict, killed);
    if (bounce) this.#bounceDependents(node);
  }

  /** Decides what follows a start or worker that settled without leaving a worker (SPEC rule 4). */
  #afterStop(node: ManifoldNode, verdict: Verdict, killed: boolean): void {
    if (this.#dying || !node.installed) return this.#setPhase(node, "idle");
    if (killed) {
      // The engine stopped it: restart after bounceDelay if still wanted, whatever it returned.
      if (node.restartWanted) return this.#scheduleStart(node, spread(this.#config, this.#config.bounceDelay), true);
      return this.#setPhase(node, "idle");
    }
    switch (verdict) {
      case "completed":
      case "missing":
        return this.#setPhase(node, "idle"); // until an input changes
      case "bounce":
        return this.#scheduleStart(node, spread(this.#config, this.#config.bounceDelay), true);
      case "uninstall":
        this.#config.logger.debug(`manifold ${quote(node.name)} asked to be uninstalled`);
        this.#removeNode(node);
        return this.#setPhase(node, "idle");
      case "unknown":
        this.#config.logger.error(`manifold ${quote(node.name)} failed: ${node.error?.message ?? "unknown error"}`);
        return this.#scheduleStart(node, errorRestartDelay(this.#config, node.recentErrors), false);
    }
  }

  /** Filters an error, records it on the node, and stops the engine if it is fatal (rule 6). */
  #noteError(node: ManifoldNode, raw: Error, source: "start" | "worker"): Error | undefined {
    const error = filterError(node.name, node.manifold, raw, this.#config);
    if (error === undefined) return undefined;
    node.error = error;
    if (this.#config.debugEnabled) this.#config.logger.debug("manifold %s %s error: %s", node.name, source, error.message);
    // Once wait() has settled its outcome is final: a straggler's error is recorded, never ranked.
    if (!this.#finished && isFatal(this.#config, error, node.name)) {
      this.#worst = rankFatal(this.#config, this.#worst, error);
      this.#config.logger.error(`fatal error from ${quote(node.name)}, stopping the engine: ${error.message}`);
      // Stop after the current message, so no handler runs half-way through a
      // shutdown; meanwhile nothing more is bounced or restarted, so shutdown
      // order (dependents first) holds after a fatal error too.
      this.#killRequested = true;
      this.#mailbox.enqueue({ kind: "kill" });
    }
    return error;
  }

  /** Kills the worker (never the engine itself); it restarts after it stops if `restart`. */
  #stopWorker(node: ManifoldNode, restart: boolean): void {
    node.restartWanted = restart;
    if (node.phase === "stopping") return this.#refreshHolding(node);
    this.#setPhase(node, "stopping");
    this.#armStuck(node);
    const worker = node.worker as Worker;
    if (worker === this.#self) {
      // Never kill ourselves (rule 11): our own "worker" stops when we say so.
      this.#mailbox.enqueue({ kind: "stopped", node, attempt: node.attempt, error: undefined });
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
    if (node.abort === undefined || node.abort.aborted) return;
    this.#armStuck(node);
    node.abort.abort(new DOMException(`start of manifold ${quote(node.name)} aborted: ${why}`, "AbortError"));
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
    if (this.#killRequested || !this.#mayBounce(node)) return;
    const stack = [node];
    while (stack.length > 0) {
      const current = stack.pop() as ManifoldNode;
      for (const dependent of this.#dependentsOf(current)) {
        if (this.#bounce(dependent) && this.#mayBounce(dependent)) stack.push(dependent);
      }
    }
  }

  /** Whether some dependent of `node` has had its start called (the others will see the change by themselves). */
  #mayBounce(node: ManifoldNode): boolean {
    const slot = node.slot;
    return slot !== undefined && slot.waitingDependents < slot.dependentCount;
  }

  /** Bounces one dependent; true if it killed a running worker (whose dependents are affected too). */
  #bounce(node: ManifoldNode): boolean {
    if (!node.installed) return false;
    switch (node.phase) {
      case "idle":
        this.#scheduleStart(node, spread(this.#config, this.#config.bounceDelay), true);
        return false;
      case "delayed":
        // An input change cuts an error delay short, as in Juju.
        if (!node.timerIsBounce) {
          node.recentErrors = 1;
          this.#scheduleStart(node, spread(this.#config, this.#config.bounceDelay), true);
        }
        return false;
      case "ready":
      case "blocked":
        return false; // its start has not been called: it will see the change
      case "starting":
        node.restartWanted = true;
        this.#abortStart(node, "an input changed");
        this.#refreshHolding(node);
        return false;
      case "running":
        this.#stopWorker(node, true);
        return true;
      case "stopping":
        node.restartWanted = true;
        this.#refreshHolding(node);
        return false;
    }
  }

  // ---------------------------------------------------------------- timers

  /**
   * Restarts `node` after `delay` ms: a timer when non-zero; otherwise the
   * ready queue of the next event-loop turn (never a timer, and never a tight
   * loop of a start that fails at once).
   */
  #scheduleStart(node: ManifoldNode, delay: number, isBounce: boolean): void {
    this.#clearTimer(node);
    if (this.#killRequested || !node.installed) return this.#setPhase(node, "idle");
    if (delay <= 0) {
      this.#setPhase(node, "ready");
      return this.#mailbox.pushNextTurn(node);
    }
    const token = node.timerToken;
    node.timerIsBounce = isBounce;
    node.timer = this.#config.clock.setTimeout(() => this.#post({ kind: "due", node, token }), delay);
    this.#setPhase(node, "delayed");
  }

  #clearTimer(node: ManifoldNode): void {
    node.timerToken++;
    if (node.timer === undefined) return;
    this.#config.clock.clearTimeout(node.timer);
    node.timer = undefined;
  }

  #onDue(node: ManifoldNode, token: number): void {
    if (node.timerToken !== token || node.phase !== "delayed") return;
    node.timer = undefined;
    this.#makeReady(node);
  }

  #armStuck(node: ManifoldNode): void {
    if (node.deadline !== undefined || node.stuck || this.#finished) return;
    const timeout = node.manifold.stopTimeout ?? this.#config.stopTimeout;
    if (timeout <= 0) return;
    node.deadline = this.#watchdog.add(node, timeout);
  }

  #onWatchdog(token: number): void {
    for (const node of this.#watchdog.expired(token)) this.#markStuck(node);
  }

  #markStuck(node: ManifoldNode): void {
    node.deadline = undefined;
    if (!node.live || node.stuck) return;
    node.stuck = true;
    this.#stuck++;
    this.#config.logger.warn(`manifold ${quote(node.name)} did not stop within its stopTimeout; it is stuck`);
    this.#refreshHolding(node);
    if (!node.installed) this.#retiringChanged(node.name);
    this.#releaseInputs(node);
  }

  // ---------------------------------------------------------------- uninstall and shutdown

  #onUninstall(node: ManifoldNode): void {
    this.#config.logger.debug("uninstalling manifold %s", node.name);
    const ran = node.workerRan;
    switch (node.phase) {
      case "starting":
        node.restartWanted = false;
        this.#abortStart(node, "it was uninstalled");
        this.#refreshHolding(node);
        break;
      case "running":
        this.#stopWorker(node, false);
        break;
      case "stopping":
        node.restartWanted = false;
        this.#refreshHolding(node);
        break;
      default:
        this.#clearTimer(node);
        this.#setPhase(node, "idle");
    }
    if (ran) this.#bounceDependents(node);
  }

  /** Runs when a node's start or worker has settled (it is no longer live). */
  #afterSettled(node: ManifoldNode): void {
    if (node.deadline !== undefined) {
      this.#watchdog.cancel(node.deadline);
      node.deadline = undefined;
    }
    if (node.stuck) {
      node.stuck = false;
      this.#stuck--;
    }
    this.#releaseInputs(node);
    if (!node.installed) {
      if (this.#retiring.get(node.name) === node) this.#retiring.delete(node.name);
      const waiters = node.uninstallWaiters;
      node.uninstallWaiters = undefined;
      if (waiters !== undefined) for (const resolve of waiters) resolve();
      this.#retiringChanged(node.name);
    }
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
    this.#refreshHolding(successor);
    this.#tryUnblock(successor);
  }

  /**
   * Shutdown stops dependents before their inputs: each node counts its live
   * dependents, and its worker is killed when that count reaches zero. Starts
   * in flight are aborted at once. O(N + E) in total.
   */
  #onKill(): void {
    if (this.#dying) return;
    this.#killRequested = true;
    this.#dying = true;
    this.#config.logger.info("engine stopping");
    const nodes = [...this.#graph.nodes(), ...this.#retiring.values()];
    for (const node of nodes) {
      this.#clearTimer(node);
      node.restartWanted = false;
      if (node.phase === "delayed" || node.phase === "ready" || node.phase === "blocked") {
        this.#setPhase(node, "idle");
      } else if (node.phase === "running" && node.worker === this.#self) {
        node.worker = undefined;
        node.workerRan = false;
        this.#setPhase(node, "idle");
      } else {
        this.#refreshHolding(node);
      }
    }
    countLiveDependents(this.#graph);
    for (const node of nodes) {
      if (node.phase === "starting") this.#abortStart(node, "the engine is stopping");
      else if (node.phase === "running" && node.liveDependents === 0) this.#stopWorker(node, false);
    }
  }

  #releaseInputs(node: ManifoldNode): void {
    releaseInputs(node, (input) => this.#stopWorker(input, false));
  }

  /** Rule 7: wait() settles once every worker has settled (or is stuck) and no timer is left. */
  #checkFinished(): void {
    this.#watchdog.tidy();
    if (!this.#dying || this.#finished || this.#live > this.#stuck) return;
    this.#finished = true;
    this.#watchdog.clear();
    const stuck: string[] = [];
    for (const node of [...this.#graph.nodes(), ...this.#retiring.values()]) {
      this.#clearTimer(node);
      if (node.stuck) stuck.push(node.name);
    }
    this.#config.logger.info("engine stopped");
    const outcome = shutdownOutcome(stuck, this.#worst, this.#config.filter);
    if (outcome === undefined) this.#resolveDone();
    else this.#rejectDone(outcome);
  }
}
