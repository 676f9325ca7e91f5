/**
 * The one place where the loop says what changed. The event stream,
 * failure bookkeeping, the metrics hook and heartbeats are observers of it:
 * `engine.ts` attaches them, and `loop.ts` imports none of them.
 *
 * Guarantees to an observer:
 * - one call per change, made after the change is complete (so a report
 *   made inside the call already shows it), in the order the changes happen;
 * - calls for one manifold come in a valid order: `starting` before
 *   `started` or `stopped`, `started` before the `stopped` of that worker;
 * - `cause` on `bounced` is the node whose change is spreading through the
 *   graph (the loop keeps it in one field while a bounce walks the graph).
 *
 * What an observer must do: change no engine state (a change is a message
 * to the loop), never throw (a throw is a bug and becomes the engine's fatal
 * error), and guard every user callback it makes.
 *
 * Cost: with no observer attached each call site is one field load and
 * compare (`observer?.x(...)`): no event object, string or closure is built.
 */
import type { Verdict } from "./failure.js";
import type { ManifoldNode, RestartReason } from "./node.js";
import type { HeartbeatAction } from "./supervision.js";

/**
 * How a start or worker ended, as the event stream reports it:
 * `completed` (no error), `missing` (MissingError), `bounce` (BounceError),
 * `uninstall` (UninstallError or uninstalled), `error` (any other error),
 * `killed` (the engine stopped it, for a bounce or shutdown), `fatal` (its
 * error stopped the engine).
 */
export type StopOutcome = "completed" | "missing" | "bounce" | "uninstall" | "error" | "killed" | "fatal";

/** Why a restart was scheduled: `error` (failure, with backoff), `bounce` (asked for), `input-changed` (an input's worker came or went). */
export type ScheduleReason = "error" | "bounce" | "input-changed";

/** How a start or worker ended, for observers. @internal */
export function stopOutcome(verdict: Verdict, killed: boolean, fatal: boolean): StopOutcome {
  if (fatal) return "fatal";
  if (killed) return "killed";
  return verdict === "unknown" ? "error" : verdict;
}

/** Why a restart was scheduled, for observers. @internal */
export function scheduleReason(restart: RestartReason): ScheduleReason {
  return restart === "failed" ? "error" : restart === "bounce" ? "bounce" : "input-changed";
}

/** @internal */
export interface TransitionObserver {
  /** `node` was installed. */
  installed(node: ManifoldNode): void;
  /** `node` was uninstalled: by a `call` (uninstall, apply), or by `itself` (its UninstallError, just reported as `stopped`). */
  uninstalled(node: ManifoldNode, by: "call" | "itself"): void;
  /** `node`'s start function is about to be called. */
  starting(node: ManifoldNode): void;
  /** `node`'s worker was accepted as running. */
  started(node: ManifoldNode): void;
  /**
   * `node`'s start or worker settled; `error` is after the manifold's filter.
   * `byEngine`: the engine stopped it (a kill, an abort, a missed heartbeat),
   * so its stop has a cause; otherwise it ended by itself.
   */
  stopped(node: ManifoldNode, outcome: StopOutcome, error: Error | undefined, byEngine: boolean): void;
  /** A restart of `node` is due in `delay` ms (0: the next turn of the event loop). */
  scheduled(node: ManifoldNode, delay: number, reason: ScheduleReason): void;
  /** `node` (a dependent of `cause`) is restarted because `cause`'s worker came or went. */
  bounced(node: ManifoldNode, cause: ManifoldNode): void;
  /** `error` from `node` is fatal; `worst` says whether it is now the engine's worst error. */
  fatal(node: ManifoldNode, error: Error, worst: boolean): void;
  /** `node` did not settle within its stopTimeout after the engine stopped it. */
  stuck(node: ManifoldNode): void;
  /** `node`'s running worker sent no heartbeat for `silentFor` ms (past its timeout); `action` says what the engine does. */
  heartbeatMissed(node: ManifoldNode, silentFor: number, action: HeartbeatAction): void;
  /** `node`'s worker reported progress (its record holds the message). */
  progress(node: ManifoldNode): void;
  /** `node` failed too often within its restart limit: it is quarantined (its record says until when). */
  quarantined(node: ManifoldNode): void;
  /** `node`'s quarantine ended: a probe ran long enough, or an operator called `engine.restart`. */
  released(node: ManifoldNode, by: "probe" | "restart"): void;
  /** The deadline timer fired `late` ms late (the event loop was blocked): heartbeat deadlines got a fresh period. */
  stalled(late: number): void;
  /** The engine began to stop. */
  engineStopping(): void;
  /** The engine stopped; `error` is what `wait()` rejects with, if anything. */
  engineStopped(error: Error | undefined): void;
}

/**
 * An observer that ignores everything: extend it and override what you need
 * (bookkeeping and metrics each care about a few transitions).
 * @internal
 */
export class IgnoringObserver implements TransitionObserver {
  installed(_node: ManifoldNode): void {}
  uninstalled(_node: ManifoldNode, _by: "call" | "itself"): void {}
  starting(_node: ManifoldNode): void {}
  started(_node: ManifoldNode): void {}
  stopped(_node: ManifoldNode, _outcome: StopOutcome, _error: Error | undefined, _byEngine: boolean): void {}
  scheduled(_node: ManifoldNode, _delay: number, _reason: ScheduleReason): void {}
  bounced(_node: ManifoldNode, _cause: ManifoldNode): void {}
  fatal(_node: ManifoldNode, _error: Error, _worst: boolean): void {}
  stuck(_node: ManifoldNode): void {}
  heartbeatMissed(_node: ManifoldNode, _silentFor: number, _action: HeartbeatAction): void {}
  progress(_node: ManifoldNode): void {}
  quarantined(_node: ManifoldNode): void {}
  released(_node: ManifoldNode, _by: "probe" | "restart"): void {}
  stalled(_late: number): void {}
  engineStopping(): void {}
  engineStopped(_error: Error | undefined): void {}
}

/**
 * Several observers as one, in the order attached. The loop holds a single
 * observer (or none), so attaching a second costs the first nothing extra.
 * @internal
 */
export class Observers implements TransitionObserver {
  readonly #list: readonly TransitionObserver[];

  constructor(list: readonly TransitionObserver[]) {
    this.#list = list;
  }

  /** No observer, one observer as it is, or several behind one. */
  static combine(list: readonly TransitionObserver[]): TransitionObserver | undefined {
    if (list.length === 0) return undefined;
    if (list.length === 1) return list[0];
    return new Observers([...list]);
  }

  installed(node: ManifoldNode): void {
    for (const observer of this.#list) observer.installed(node);
  }
  uninstalled(node: ManifoldNode, by: "call" | "itself"): void {
    for (const observer of this.#list) observer.uninstalled(node, by);
  }
  starting(node: ManifoldNode): void {
    for (const observer of this.#list) observer.starting(node);
  }
  started(node: ManifoldNode): void {
    for (const observer of this.#list) observer.started(node);
  }
  stopped(node: ManifoldNode, outcome: StopOutcome, error: Error | undefined, byEngine: boolean): void {
    for (const observer of this.#list) observer.stopped(node, outcome, error, byEngine);
  }
  scheduled(node: ManifoldNode, delay: number, reason: ScheduleReason): void {
    for (const observer of this.#list) observer.scheduled(node, delay, reason);
  }
  bounced(node: ManifoldNode, cause: ManifoldNode): void {
    for (const observer of this.#list) observer.bounced(node, cause);
  }
  fatal(node: ManifoldNode, error: Error, worst: boolean): void {
    for (const observer of this.#list) observer.fatal(node, error, worst);
  }
  stuck(node: ManifoldNode): void {
    for (const observer of this.#list) observer.stuck(node);
  }
  heartbeatMissed(node: ManifoldNode, silentFor: number, action: HeartbeatAction): void {
    for (const observer of this.#list) observer.heartbeatMissed(node, silentFor, action);
  }
  progress(node: ManifoldNode): void {
    for (const observer of this.#list) observer.progress(node);
  }
  quarantined(node: ManifoldNode): void {
    for (const observer of this.#list) observer.quarantined(node);
  }
  released(node: ManifoldNode, by: "probe" | "restart"): void {
    for (const observer of this.#list) observer.released(node, by);
  }
  stalled(late: number): void {
    for (const observer of this.#list) observer.stalled(late);
  }
  engineStopping(): void {
    for (const observer of this.#list) observer.engineStopping();
  }
  engineStopped(error: Error | undefined): void {
    for (const observer of this.#list) observer.engineStopped(error);
  }
}
