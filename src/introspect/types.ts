/**
 * What the introspection server needs from an engine, written structurally so
 * that it works with any `Engine` (and with stand-ins in tests): a `report()`
 * and, optionally, the `events` stream.
 */
/**
 * The fields of an engine event that introspection reads. The engine's own
 * event type has more (outcome, error, delay, reason, input…); every field is
 * passed on to `/events` clients as is.
 */
export interface IntrospectionEvent {
  /** What happened: "installed", "starting", "started", "stopped", "scheduled", "bounced", "fatal", "engine-stopped"… */
  readonly type: string;
  /** Increasing integer, unique per engine. */
  readonly id: number;
  /** ISO 8601 UTC time, from the engine's clock. */
  readonly time: string;
  /** The manifold it concerns, if any. */
  readonly name?: string | undefined;
  /** The `id` of the event that led to this one, if any. */
  readonly cause?: number | undefined;
}

/** The observer {@link Subscribable} hands events to (an rxjs `Observer`). */
export interface EventObserver<T> {
  /** One event. */
  next(value: T): void;
  /** The stream failed; nothing follows. */
  error(error: unknown): void;
  /** The stream ended (the engine stopped); nothing follows. */
  complete(): void;
}

/**
 * The part of an rxjs `Observable` introspection uses: `engine.events` is
 * one, and so is an rxjs `Subject`.
 */
export interface Subscribable<T> {
  /** Starts delivering events to `observer` until `unsubscribe()`. */
  subscribe(observer: EventObserver<T>): { unsubscribe(): void };
}

/**
 * What introspection needs from an engine: `report()`, and `events` for the
 * live routes (`/events`, the page's live updates, cause chains). An
 * `Engine` is one. Reading `events` may throw (the engine's stream
 * needs the optional rxjs package): the live routes then answer 501 with that
 * error's message, and everything else still works.
 */
export interface IntrospectableEngine {
  /**
   * A JSON-serialisable snapshot of the engine: an `EngineReport`. (Typed
   * loosely so that any `Reporter` can be served; the pictures read it
   * defensively and show what they find.)
   */
  report(): Record<string, unknown>;
  /** The engine's live event stream, when it has one. */
  readonly events?: Subscribable<IntrospectionEvent> | undefined;
}
