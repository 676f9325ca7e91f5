/**
 * The engine's lifecycle as one value (not three booleans that reports must
 * combine). Numeric, so that "stopping or later" is one comparison.
 */

/** The engine's life, in order: each state only ever moves to a later one. @internal */
export enum Lifecycle {
  /** Installing, starting and restarting workers. */
  Running,
  /** `kill()` was called (or a fatal error arrived): changes are refused, the kill message is queued. */
  KillRequested,
  /** The kill message was handled: workers are being stopped, dependents first. */
  ShuttingDown,
  /** Every worker has settled (or is stuck) and every timer is cleared: `wait()` has settled. */
  Stopped,
}

/** The engine state a report shows: "started" until `kill()`, "stopping" until every worker has stopped, then "stopped". @internal */
export function reportState(lifecycle: Lifecycle): "started" | "stopping" | "stopped" {
  if (lifecycle === Lifecycle.Running) return "started";
  return lifecycle === Lifecycle.Stopped ? "stopped" : "stopping";
}
