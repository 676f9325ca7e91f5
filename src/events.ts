/**
 * `engine.events`: the engine's transitions as an rxjs Observable of
 * {@link EngineEvent}, with ids and causes.
 *
 * rxjs is an optional peer dependency: it is loaded the first time someone
 * touches `engine.events`, never before, so the package loads and runs
 * without it. The stream is hot and costs nothing while nobody subscribes:
 * the observer that builds events is attached to the loop on the first
 * subscription and detached after the last, so no event object, ISO string
 * or cause lookup is made while nobody listens.
 *
 * Causes. Each manifold's latest event is remembered; a new event of the
 * same manifold is caused by it, except where the change came from outside
 * the manifold: a worker or start that ended by itself (its error is the
 * root), a bounce (caused by the input's latest event), a shutdown (caused
 * by `engine-stopping`, itself caused by the fatal error if there was one).
 */
import { createRequire } from "node:module";
import type { Clock } from "./config.js";
import type { EngineEvent } from "./event-types.js";
import type { ManifoldNode } from "./node.js";
import { isoTime } from "./report.js";
import type { HeartbeatAction } from "./supervision.js";
import type { ScheduleReason, StopOutcome, TransitionObserver } from "./transitions.js";

/** The part of rxjs this file uses (so that its types are not needed to build). */
interface RxSubject<T> {
  next(value: T): void;
  complete(): void;
  subscribe(observer: unknown): { unsubscribe(): void };
  readonly observed: boolean;
}
interface Rx {
  Subject: new <T>() => RxSubject<T>;
  Observable: new <T>(subscribe: (subscriber: unknown) => () => void) => unknown;
}

declare const __filename: string | undefined;

/** Loads rxjs from wherever the user's project has it, or says exactly what to install. */
function loadRxjs(): Rx {
  try {
    // A require resolving from this file: the CommonJS build has __filename, the ESM build
    // import.meta.url (rxjs 7 ships CommonJS too). (A bare `require` check would be
    // rewritten by the bundler into a stub that throws in the ESM build.)
    const load = createRequire(typeof __filename === "string" ? __filename : import.meta.url);
    return load("rxjs") as Rx;
  } catch (error) {
    throw new Error(
      "engine.events needs rxjs, an optional peer dependency of manifold-engine that is not installed: " +
        'run "npm install rxjs@^7.8" (the engine itself works without it; only the event stream needs it)',
      { cause: error },
    );
  }
}

/**
 * Builds the events for an engine's stream. Attach/detach are the engine's
 * `observe`/`unobserve`, called as the first subscriber comes and the last goes.
 * @internal
 */
export class EventStream implements TransitionObserver {
  readonly #clock: Clock;
  readonly #subject: RxSubject<EngineEvent>;
  /** The Observable handed out as `engine.events`. */
  readonly observable: unknown;
  #nextId = 1;
  /** Each manifold's latest event id. */
  readonly #latest = new WeakMap<ManifoldNode, number>();
  /** The `engine-stopping` event, once there is one: what shutdown kills are caused by. */
  #stoppingId: number | undefined = undefined;
  /** The first fatal event: what `engine-stopping` is caused by. */
  #fatalId: number | undefined = undefined;
  #completed = false;
  #timeMs = Number.NaN;
  #time = "";

  constructor(
    clock: Clock,
    isStopped: () => boolean,
    attach: (observer: TransitionObserver) => void,
    detach: (observer: TransitionObserver) => void,
  ) {
    const rx = loadRxjs();
    this.#clock = clock;
    const subject = (this.#subject = new rx.Subject<EngineEvent>());
    this.observable = new rx.Observable<EngineEvent>((subscriber) => {
      // A stream that has ended (even while nobody listened) completes at once for latecomers.
      if (this.#completed || isStopped()) {
        (subscriber as { complete(): void }).complete();
        return () => undefined;
      }
      const first = !subject.observed;
      const inner = subject.subscribe(subscriber);
      if (first) attach(this);
      return () => {
        inner.unsubscribe();
        if (!subject.observed) detach(this);
      };
    });
  }

  /** A new event's common fields; its `time` string is made once per clock millisecond. */
  #event(type: EngineEvent["type"], node: ManifoldNode | undefined): Record<string, unknown> {
    const now = this.#clock.now();
    if (now !== this.#timeMs) {
      this.#timeMs = now;
      this.#time = isoTime(now);
    }
    const event: Record<string, unknown> = { id: this.#nextId++, time: this.#time, type };
    if (node !== undefined) event.name = node.name;
    return event;
  }

  /** Sends `event`, caused by `cause` if any, as `node`'s latest. */
  #send(event: Record<string, unknown>, node: ManifoldNode | undefined, cause: number | undefined): void {
    if (cause !== undefined) event.cause = cause;
    if (node !== undefined) this.#latest.set(node, event.id as number);
    this.#subject.next(event as unknown as EngineEvent);
  }

  #causeOf(node: ManifoldNode): number | undefined {
    return this.#latest.get(node);
  }

  installed(node: ManifoldNode): void {
    this.#send(this.#event("installed", node), node, undefined);
  }

  uninstalled(node: ManifoldNode, by: "call" | "itself"): void {
    // A call is a root; an UninstallError's stop (the node's latest event) caused it.
    this.#send(this.#event("uninstalled", node), node, by === "itself" ? this.#causeOf(node) : undefined);
  }

  starting(node: ManifoldNode): void {
    this.#send(this.#event("starting", node), node, this.#causeOf(node));
  }

  started(node: ManifoldNode): void {
    const event = this.#event("started", node);
    event.startCount = node.startCount;
    this.#send(event, node, this.#causeOf(node));
  }

  stopped(node: ManifoldNode, outcome: StopOutcome, error: Error | undefined, byEngine: boolean): void {
    const event = this.#event("stopped", node);
    event.outcome = outcome;
    if (error !== undefined) event.error = error.message;
    // A fatal stop is caused by its fatal event, a stop the engine made by
    // what made it (a bounce, an uninstall, a missed heartbeat, the
    // shutdown); anything else ended by itself and is a root.
    const cause = outcome === "fatal" ? this.#causeOf(node) : byEngine || outcome === "killed" ? this.#killCause(node) : undefined;
    this.#send(event, node, cause);
  }

  /** A kill during shutdown is caused by `engine-stopping`; otherwise by what made the engine stop the worker (a bounce, an uninstall). */
  #killCause(node: ManifoldNode): number | undefined {
    const latest = this.#causeOf(node);
    if (this.#stoppingId !== undefined && (latest === undefined || latest < this.#stoppingId)) return this.#stoppingId;
    return latest;
  }

  scheduled(node: ManifoldNode, delay: number, reason: ScheduleReason): void {
    const event = this.#event("scheduled", node);
    event.delay = delay;
    event.reason = reason;
    this.#send(event, node, this.#causeOf(node));
  }

  bounced(node: ManifoldNode, cause: ManifoldNode): void {
    const event = this.#event("bounced", node);
    event.input = cause.name;
    this.#send(event, node, this.#causeOf(cause));
  }

  fatal(node: ManifoldNode, error: Error, worst: boolean): void {
    const event = this.#event("fatal", node);
    event.error = error.message;
    event.worst = worst;
    this.#fatalId ??= event.id as number;
    this.#send(event, node, undefined); // the error itself is the root
  }

  stuck(node: ManifoldNode): void {
    this.#send(this.#event("stuck", node), node, this.#causeOf(node));
  }

  heartbeatMissed(node: ManifoldNode, silentFor: number, action: HeartbeatAction): void {
    const event = this.#event("heartbeat-missed", node);
    event.silentFor = silentFor;
    event.timeout = node.supervision?.options.heartbeatTimeout ?? 0;
    event.action = action;
    this.#send(event, node, this.#causeOf(node));
  }

  progress(node: ManifoldNode): void {
    const progress = node.supervision?.progress;
    const event = this.#event("progress", node);
    event.message = progress?.message ?? "";
    if (progress?.details !== undefined) event.details = progress.details;
    this.#send(event, node, this.#causeOf(node));
  }

  quarantined(node: ManifoldNode): void {
    const quarantine = node.supervision?.quarantine;
    const event = this.#event("quarantined", node);
    event.failures = quarantine?.failures ?? 0;
    if (quarantine?.until !== undefined) event.until = isoTime(quarantine.until);
    this.#send(event, node, this.#causeOf(node));
  }

  released(node: ManifoldNode, by: "probe" | "restart"): void {
    const event = this.#event("released", node);
    event.by = by;
    this.#send(event, node, this.#causeOf(node));
  }

  stalled(late: number): void {
    const event = this.#event("stall", undefined);
    event.lateMs = Math.round(late);
    this.#send(event, undefined, undefined);
  }

  engineStopping(): void {
    const event = this.#event("engine-stopping", undefined);
    this.#stoppingId = event.id as number;
    this.#send(event, undefined, this.#fatalId);
  }

  engineStopped(error: Error | undefined): void {
    const event = this.#event("engine-stopped", undefined);
    if (error !== undefined) event.error = error.message;
    this.#completed = true;
    this.#send(event, undefined, this.#stoppingId);
    this.#subject.complete();
  }
}
