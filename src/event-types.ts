/**
 * The events of `engine.events`: what happened to the engine, in order, and
 * why. Types only (this file loads nothing), so that code that merely names
 * an event never pulls rxjs in.
 */
import type { ScheduleReason, StopOutcome } from "./transitions.js";

export type { ScheduleReason, StopOutcome } from "./transitions.js";

/** What every event carries. */
export interface EngineEventBase {
  /** Increasing integer, unique per engine (ids skip the times nobody was subscribed). */
  readonly id: number;
  /** When it happened, from the engine's clock: ISO 8601 UTC. */
  readonly time: string;
  /**
   * The `id` of the event that led to this one, where there is one. Following
   * `cause` from any event reaches its root: an error, an install, a call.
   */
  readonly cause?: number;
}

/** A manifold was installed. */
export interface InstalledEvent extends EngineEventBase {
  readonly type: "installed";
  readonly name: string;
}

/** A manifold was uninstalled (by `uninstall()`, or by its own UninstallError). */
export interface UninstalledEvent extends EngineEventBase {
  readonly type: "uninstalled";
  readonly name: string;
}

/** A manifold's start function is about to be called. */
export interface StartingEvent extends EngineEventBase {
  readonly type: "starting";
  readonly name: string;
}

/** A manifold's worker is running (its start succeeded and was accepted). */
export interface StartedEvent extends EngineEventBase {
  readonly type: "started";
  readonly name: string;
  /** Successful starts so far, this one included. */
  readonly startCount: number;
}

/** A manifold's worker, or its start, settled. */
export interface StoppedEvent extends EngineEventBase {
  readonly type: "stopped";
  readonly name: string;
  /** How it ended: see {@link StopOutcome}. */
  readonly outcome: StopOutcome;
  /** The error's message (after the manifold's filter), if it ended with one. */
  readonly error?: string;
}

/** A restart of a manifold is due in `delay` ms. */
export interface ScheduledEvent extends EngineEventBase {
  readonly type: "scheduled";
  readonly name: string;
  /** Milliseconds until the start is due (0: the next turn of the event loop). */
  readonly delay: number;
  /** Why: see {@link ScheduleReason}. */
  readonly reason: ScheduleReason;
}

/** A dependent is restarted because one of its inputs started or stopped. */
export interface BouncedEvent extends EngineEventBase {
  readonly type: "bounced";
  readonly name: string;
  /** The input whose worker came or went. */
  readonly input: string;
}

/** A manifold's error is fatal: the engine stops. */
export interface FatalEvent extends EngineEventBase {
  readonly type: "fatal";
  readonly name: string;
  /** The error's message (after the manifold's filter). */
  readonly error: string;
  /** Whether it is now the engine's worst error (what `wait()` will reject with). */
  readonly worst: boolean;
}

/** A manifold's worker (or aborted start) did not settle within its stopTimeout. */
export interface StuckEvent extends EngineEventBase {
  readonly type: "stuck";
  readonly name: string;
}

/** A running worker sent no heartbeat for longer than its `heartbeatTimeout`. */
export interface HeartbeatMissedEvent extends EngineEventBase {
  readonly type: "heartbeat-missed";
  readonly name: string;
  /** How long it had been silent, in ms. */
  readonly silentFor: number;
  /** Its heartbeatTimeout, in ms. */
  readonly timeout: number;
  /** `restart`: it is killed as failed (a `stopped` event with a HeartbeatTimeoutError follows); `report`: it is only marked silent. */
  readonly action: "restart" | "report";
}

/** A worker reported progress (`context.progress(message, details)`). */
export interface ProgressEvent extends EngineEventBase {
  readonly type: "progress";
  readonly name: string;
  readonly message: string;
  /** The details it gave, if any (as given: not copied). */
  readonly details?: unknown;
}

/** A manifold failed more often than its `restartLimit` allows: it is not restarted automatically. */
export interface QuarantinedEvent extends EngineEventBase {
  readonly type: "quarantined";
  readonly name: string;
  /** Failures within the window. */
  readonly failures: number;
  /** When its probe start is due (ISO 8601 UTC); absent: until `engine.restart(name)`. */
  readonly until?: string;
}

/** A manifold's quarantine ended: its probe start ran for `backoffResetTime`, or an operator called `engine.restart`. */
export interface ReleasedEvent extends EngineEventBase {
  readonly type: "released";
  readonly name: string;
  readonly by: "probe" | "restart";
}

/** The event loop was blocked: the engine's deadline timer fired `lateMs` late, so heartbeat deadlines got a fresh period instead of killing workers. */
export interface StallEvent extends EngineEventBase {
  readonly type: "stall";
  readonly lateMs: number;
}

/** The engine began to stop (after `kill()` or a fatal error). */
export interface EngineStoppingEvent extends EngineEventBase {
  readonly type: "engine-stopping";
}

/** The engine stopped: every worker settled; the stream completes after this event. */
export interface EngineStoppedEvent extends EngineEventBase {
  readonly type: "engine-stopped";
  /** The message of the error `wait()` rejects with, if any. */
  readonly error?: string;
}

/** Everything `engine.events` emits: a union discriminated by `type`. */
export type EngineEvent =
  | InstalledEvent
  | UninstalledEvent
  | StartingEvent
  | StartedEvent
  | StoppedEvent
  | ScheduledEvent
  | BouncedEvent
  | FatalEvent
  | StuckEvent
  | HeartbeatMissedEvent
  | ProgressEvent
  | QuarantinedEvent
  | ReleasedEvent
  | StallEvent
  | EngineStoppingEvent
  | EngineStoppedEvent;

/** The `type` of every event. */
export type EngineEventType = EngineEvent["type"];
