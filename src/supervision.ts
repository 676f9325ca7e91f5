/**
 * Misbehaving workers (enotify's "rogue" generators): heartbeats that catch
 * a worker that hangs, and restart limits that catch one that fails in a
 * tight loop. This file holds the options, their checks, the per-manifold
 * record the loop keeps for them, and the pure decisions; the loop acts.
 *
 * Zero cost when unused: a manifold with no heartbeat timeout, no restart
 * limit and no progress report has no record at all.
 */
import type { Deadline } from "./deadlines.js";
import { describeValue, quote } from "./errors.js";

/** What a missed heartbeat does: `restart` kills the worker as failed; `report` only marks it silent. */
export type HeartbeatAction = "restart" | "report";

/** At most `count` failures within `within` ms; one more quarantines the manifold. */
export interface RestartLimit {
  /** Failures allowed within the window: a whole number, at least 1. */
  readonly count: number;
  /** The window in milliseconds, more than 0. */
  readonly within: number;
}

/** Options a manifold may set, and the engine config may default. */
export interface SupervisionOptions {
  /**
   * Milliseconds a running worker may stay silent (no `heartbeat()` or
   * `progress()` from its start context) before it counts as hung. 0 or
   * absent: off.
   */
  heartbeatTimeout?: number | undefined;
  /** What a missed heartbeat does; default `restart`. */
  heartbeatAction?: HeartbeatAction | undefined;
  /** Quarantine after more than `count` failures within `within` ms; absent: never. */
  restartLimit?: RestartLimit | undefined;
  /** Milliseconds of quarantine before one probe start; 0 or absent: until `engine.restart(name)`. */
  quarantineTime?: number | undefined;
}

/** The keys of {@link SupervisionOptions}, for unknown-key checks. @internal */
export const SUPERVISION_KEYS = Object.freeze(["heartbeatTimeout", "heartbeatAction", "restartLimit", "quarantineTime"] as const);

/** The latest `progress()` of a worker, as the report shows it. */
export type ProgressReport = {
  /** What the worker said, e.g. "GENERATION_RENDERING_PAGES_START". */
  message: string;
  /** When: ISO 8601 UTC. */
  time: string;
  /** The details it gave, if any (made JSON-safe). */
  details?: unknown;
};

/** A manifold's quarantine, as the report shows it. */
export type QuarantineReport = {
  /** When it began: ISO 8601 UTC. */
  since: string;
  /** When the probe start is due (absent: until `engine.restart(name)`). */
  until?: string;
  /** The failures within the window that put it there. */
  failures: number;
};

/**
 * Checks the supervision options of `value` (a manifold or the config) and
 * returns what it checked: each field read once and `restartLimit` copied,
 * so that a getter's next answer or a later change to the object cannot
 * hand the engine an unchecked value. `where` names `value` in messages,
 * e.g. `manifold "db"` or `EngineConfig`.
 * @throws TypeError naming the field and what it takes.
 * @internal
 */
export function checkSupervision(where: string, value: SupervisionOptions): SupervisionOptions {
  const { heartbeatTimeout, heartbeatAction, restartLimit, quarantineTime } = value;
  if (heartbeatTimeout !== undefined && !(typeof heartbeatTimeout === "number" && Number.isFinite(heartbeatTimeout) && heartbeatTimeout >= 0)) {
    throw new TypeError(`${where}: heartbeatTimeout must be a finite number of milliseconds >= 0, or 0 for none (got ${describeValue(heartbeatTimeout)})`);
  }
  if (heartbeatAction !== undefined && heartbeatAction !== "restart" && heartbeatAction !== "report") {
    throw new TypeError(`${where}: heartbeatAction must be "restart" or "report" (got ${describeValue(heartbeatAction)})`);
  }
  if (quarantineTime !== undefined && !(typeof quarantineTime === "number" && Number.isFinite(quarantineTime) && quarantineTime >= 0)) {
    throw new TypeError(`${where}: quarantineTime must be a finite number of milliseconds >= 0, or 0 for "until released" (got ${describeValue(quarantineTime)})`);
  }
  if (restartLimit === undefined) return { heartbeatTimeout, heartbeatAction, restartLimit: undefined, quarantineTime };
  if (restartLimit === null || typeof restartLimit !== "object") {
    throw new TypeError(`${where}: restartLimit must be an object { count, within } (got ${describeValue(restartLimit)})`);
  }
  const { count, within } = restartLimit;
  if (!(typeof count === "number" && Number.isInteger(count) && count >= 1)) {
    throw new TypeError(`${where}: restartLimit.count must be a whole number >= 1 of failures allowed within the window (got ${describeValue(count)})`);
  }
  if (!(typeof within === "number" && Number.isFinite(within) && within > 0)) {
    throw new TypeError(`${where}: restartLimit.within must be a window in milliseconds > 0 (got ${describeValue(within)})`);
  }
  return { heartbeatTimeout, heartbeatAction, restartLimit: { count, within }, quarantineTime };
}

/** A manifold's effective options: its own, else the engine's defaults. @internal */
export interface Supervised {
  readonly heartbeatTimeout: number;
  readonly heartbeatAction: HeartbeatAction;
  readonly restartLimit: RestartLimit | undefined;
  readonly quarantineTime: number;
}

/** The effective options of a manifold under an engine's defaults. @internal */
export function supervised(own: SupervisionOptions, defaults: SupervisionOptions): Supervised {
  return {
    heartbeatTimeout: own.heartbeatTimeout ?? defaults.heartbeatTimeout ?? 0,
    heartbeatAction: own.heartbeatAction ?? defaults.heartbeatAction ?? "restart",
    restartLimit: own.restartLimit ?? defaults.restartLimit,
    quarantineTime: own.quarantineTime ?? defaults.quarantineTime ?? 0,
  };
}

/**
 * What the loop keeps for a supervised manifold (made on first need). A
 * heartbeat writes one number here and nothing else: the loop reads it when
 * the deadline comes, so a heartbeat is O(1) and allocates nothing.
 * @internal
 */
export class SupervisionRecord {
  readonly options: Supervised;
  /** Start generation of the worker being watched; heartbeats of other generations are stale. */
  generation = -1;
  /** Clock time of the last heartbeat or progress (or of the start) of the watched worker. */
  lastBeat = 0;
  /** Whether the worker has called heartbeat()/progress() at all (for the report's `lastHeartbeat`). */
  beaten = false;
  /** Set when the worker missed its heartbeat and the action is `report`: the time it was marked silent. */
  silentSince: number | undefined = undefined;
  /** The latest progress: message, clock time, details. */
  progress: { readonly message: string; readonly time: number; readonly details: unknown } | undefined = undefined;
  /** The error a worker the engine killed for its own reasons (a missed heartbeat) is treated as having failed with. */
  killError: Error | undefined = undefined;
  /** Clock times of recent failures (a ring of `count + 1`), with restart limits. */
  #failureTimes: number[] = [];
  #nextFailure = 0;
  /** Set while quarantined; `announced` once observers were told. */
  quarantine: { since: number; until: number | undefined; failures: number; probing: boolean; announced: boolean } | undefined = undefined;
  /** The watched worker's heartbeat deadline, and its probe deadline while it probes a quarantine. */
  heartbeatDeadline: Deadline<unknown> | undefined = undefined;
  probeDeadline: Deadline<unknown> | undefined = undefined;
  /** `engine.restart()` callers waiting for the next start call. */
  restartWaiters: { resolve: () => void; reject: (error: Error) => void }[] | undefined = undefined;

  constructor(options: Supervised) {
    this.options = options;
  }

  /** A worker of `generation` is running from `now`: watch it afresh. */
  watch(generation: number, now: number): void {
    this.generation = generation;
    this.lastBeat = now;
    this.beaten = false;
    this.silentSince = undefined;
  }

  /** Whether the watched worker is silent now (`report` action: no heartbeat since it was marked). */
  get silent(): boolean {
    return this.silentSince !== undefined && this.lastBeat <= this.silentSince;
  }

  /**
   * Records a failure at `now`; returns how many failures fell within the
   * window if that is more than the limit allows (quarantine), else 0.
   */
  failed(now: number): number {
    const limit = this.options.restartLimit;
    if (limit === undefined) return 0;
    const size = limit.count + 1;
    this.#failureTimes[this.#nextFailure] = now;
    this.#nextFailure = (this.#nextFailure + 1) % size;
    let within = 0;
    for (const time of this.#failureTimes) if (now - time < limit.within) within++;
    return within > limit.count ? within : 0;
  }

  /** Forgets counted failures (after a release): the window starts afresh. */
  forgetFailures(): void {
    this.#failureTimes = [];
    this.#nextFailure = 0;
  }
}

/** The message of a progress report must be a string (refused, not coerced: a number here is a bug in the worker). @internal */
export function checkProgress(name: string, message: unknown): asserts message is string {
  if (typeof message !== "string") {
    throw new TypeError(`manifold ${quote(name)}: progress(message, details?) takes a string message (got ${describeValue(message)}); pass data in details`);
  }
}
