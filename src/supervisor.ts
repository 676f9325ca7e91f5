/**
 * Misbehaving workers, as the loop handles them (enotify's rogue
 * generators): heartbeat deadlines, the stall check, restart storms and
 * quarantine, an operator's restart. The options, records and pure
 * decisions are in supervision.ts; this file acts on them, and changes
 * manifold state only through the loop's own actions (`SupervisorHands`),
 * so the loop stays the only writer of phases and restarts. Nothing here
 * runs for a manifold that uses none of it.
 */
import type { ResolvedConfig } from "./config.js";
import type { Deadline, Deadlines } from "./deadlines.js";
import { EngineStoppedError, HeartbeatTimeoutError, quote } from "./errors.js";
import type { ManifoldNode, RestartReason } from "./node.js";
import { checkProgress, supervised, SupervisionRecord, type SupervisionOptions } from "./supervision.js";
import type { TransitionObserver } from "./transitions.js";

/** No supervision options: what a record made after install takes from its manifold. */
const NO_OPTIONS: SupervisionOptions = Object.freeze({});

/** The loop's actions the supervisor uses (the loop's own methods). @internal */
export interface SupervisorHands {
  observer(): TransitionObserver | undefined;
  /** Whether the engine is running (not stopping). */
  running(): boolean;
  interrupt(node: ManifoldNode, reason: RestartReason, why: string): boolean;
  bounceDependents(node: ManifoldNode): void;
  restartAfter(node: ManifoldNode, reason: Exclude<RestartReason, "none">, delay: number): number;
  rest(node: ManifoldNode): undefined;
  scheduleRestart(node: ManifoldNode, reason: Exclude<RestartReason, "none">): number | undefined;
  clearTimer(node: ManifoldNode): void;
}

/** @internal */
export class Supervisor {
  readonly #config: ResolvedConfig;
  readonly #deadlines: Deadlines<ManifoldNode>;
  readonly #hands: SupervisorHands;
  /** The last event-loop stall the deadline timer saw: clock time and how late it fired. */
  lastStall: { time: number; late: number } | undefined = undefined;

  constructor(config: ResolvedConfig, deadlines: Deadlines<ManifoldNode>, hands: SupervisorHands) {
    this.#config = config;
    this.#deadlines = deadlines;
    this.#hands = hands;
  }

  /**
   * The node's supervision record, made on first need: at install with the
   * manifold's own options as checked then (`own`), later with the engine's
   * defaults alone. A manifold whose own options matter (a heartbeat timeout
   * or a restart limit, or any option while the engine has defaults) got its
   * record at install, so the live manifold is never read again.
   */
  supervise(node: ManifoldNode, own: SupervisionOptions = NO_OPTIONS): SupervisionRecord {
    return (node.supervision ??= new SupervisionRecord(supervised(own, this.#config.supervision ?? NO_OPTIONS)));
  }

  /** A worker's heartbeat: O(1), allocation-free: one time written; the loop's deadline reads it. */
  heartbeat(node: ManifoldNode, generation: number): void {
    const record = node.supervision;
    if (record !== undefined && record.generation === generation && record.options.heartbeatTimeout > 0) {
      record.lastBeat = this.#deadlines.now();
      record.beaten = true;
      record.silentSince = undefined;
    }
  }

  /** A worker's progress: recorded (and counted as a heartbeat) unless its worker has stopped or been replaced. */
  progress(node: ManifoldNode, generation: number, message: unknown, details: unknown): void {
    checkProgress(node.name, message);
    if (node.startGeneration !== generation || !node.live) return;
    const record = this.supervise(node);
    record.progress = { message, time: this.#config.clock.now(), details };
    if (record.generation === generation) {
      record.lastBeat = this.#deadlines.now();
      record.beaten = true;
      record.silentSince = undefined;
    }
    this.#hands.observer()?.progress(node);
  }

  /** A supervised node's start is being called: a restart it was asked for takes effect, a quarantine is probed. */
  starting(node: ManifoldNode, record: SupervisionRecord): void {
    // An operator's restart resets backoff: the next failure waits the plain errorDelay.
    if (record.restartWaiters !== undefined) node.recentErrors = 0;
    if (record.quarantine !== undefined) record.quarantine.probing = true;
  }

  /** A supervised worker is running: its heartbeat deadline (and a quarantine probe's) starts now. */
  watch(node: ManifoldNode, record: SupervisionRecord): void {
    const now = this.#deadlines.now();
    record.watch(node.startGeneration, now);
    const timeout = record.options.heartbeatTimeout;
    if (timeout > 0) record.heartbeatDeadline = this.#deadlines.addAt(node, "heartbeat", now + timeout);
    if (record.quarantine?.probing === true) record.probeDeadline = this.#deadlines.addAt(node, "probe", now + this.#config.backoffResetTime);
  }

  unwatch(record: SupervisionRecord): void {
    if (record.heartbeatDeadline !== undefined) this.#deadlines.cancel(record.heartbeatDeadline as Deadline<ManifoldNode>);
    if (record.probeDeadline !== undefined) this.#deadlines.cancel(record.probeDeadline as Deadline<ManifoldNode>);
    record.heartbeatDeadline = undefined;
    record.probeDeadline = undefined;
  }

  /**
   * A running worker's heartbeat deadline came. Beaten since: the deadline
   * moves to its last heartbeat plus the timeout. Silent: `report` marks it,
   * `restart` kills it as failed (its dependents are bounced now; it restarts
   * after errorDelay once it has stopped). After a stall, a fresh period.
   */
  heartbeatDue(node: ManifoldNode, deadline: Deadline<ManifoldNode>, stalled: boolean): void {
    const record = node.supervision as SupervisionRecord;
    if (record.heartbeatDeadline !== deadline) return;
    record.heartbeatDeadline = undefined;
    if (node.phase !== "running" || record.generation !== node.startGeneration) return;
    // Being stopped in order (a shutdown, an apply that removes or restarts it): stopTimeout bounds it, not its heartbeat.
    if (!this.#hands.running() || !node.installed || node.restart !== "none") return;
    const now = this.#deadlines.now();
    const timeout = record.options.heartbeatTimeout;
    if (stalled) record.lastBeat = Math.max(record.lastBeat, now); // the loop was blocked, not the worker
    if (record.silentSince !== undefined && record.lastBeat > record.silentSince) record.silentSince = undefined; // it came back
    const silentFor = now - record.lastBeat;
    if (silentFor < timeout) {
      record.heartbeatDeadline = this.#deadlines.addAt(node, "heartbeat", record.lastBeat + timeout);
      return;
    }
    if (record.options.heartbeatAction === "report") {
      record.heartbeatDeadline = this.#deadlines.addAt(node, "heartbeat", now + timeout);
      if (record.silentSince !== undefined) return; // already reported
      record.silentSince = now;
      this.#config.logger.warn(`manifold ${quote(node.name)} sent no heartbeat for ${silentFor} ms (heartbeatTimeout ${timeout} ms); marked silent`);
      this.#hands.observer()?.heartbeatMissed(node, silentFor, "report");
      return;
    }
    record.killError = new HeartbeatTimeoutError(undefined, { manifoldName: node.name, timeout, silentFor });
    this.#config.logger.warn(`manifold ${quote(node.name)} sent no heartbeat for ${silentFor} ms (heartbeatTimeout ${timeout} ms); killing it as hung`);
    this.#hands.observer()?.heartbeatMissed(node, silentFor, "restart");
    this.#hands.interrupt(node, "failed", "it missed its heartbeat");
    this.#hands.bounceDependents(node);
  }

  stall(late: number): void {
    this.lastStall = { time: this.#config.clock.now(), late };
    this.#config.logger.warn(`the event loop was blocked: deadlines fired ${Math.round(late)} ms late; heartbeat deadlines get a fresh period`);
    this.#hands.observer()?.stalled(late);
  }

  /**
   * A failure of a manifold with a restart limit: quarantines it when it
   * failed more than `count` times within the window, or when it was
   * probing a quarantine. Returns whether it is quarantined.
   */
  quarantineIfStorm(node: ManifoldNode, record: SupervisionRecord): boolean {
    const now = this.#config.clock.now();
    const probe = record.quarantine;
    const failures = probe?.probing === true ? probe.failures : record.failed(now);
    if (failures === 0) return false;
    const time = record.options.quarantineTime;
    record.quarantine = { since: now, until: time > 0 ? now + time : undefined, failures, probing: false, announced: false };
    this.#config.logger.warn(
      `manifold ${quote(node.name)} failed ${failures} times within its restartLimit; quarantined ` +
        (time > 0 ? `for ${time} ms, then one probe start` : `until engine.restart(${quote(node.name)})`),
    );
    return true;
  }

  /** A quarantined node rests, or waits `quarantineTime` for its probe start. */
  scheduleProbe(node: ManifoldNode, record: SupervisionRecord): number | undefined {
    const time = record.options.quarantineTime;
    this.#hands.clearTimer(node);
    return time > 0 ? this.#hands.restartAfter(node, "failed", time) : this.#hands.rest(node);
  }

  /** A quarantine probe ran for backoffResetTime: the quarantine is over. */
  probePassed(node: ManifoldNode, deadline: Deadline<ManifoldNode>): void {
    const record = node.supervision as SupervisionRecord;
    if (record.probeDeadline !== deadline) return;
    record.probeDeadline = undefined;
    this.release(node, record, "probe");
  }

  release(node: ManifoldNode, record: SupervisionRecord, by: "probe" | "restart"): void {
    if (record.quarantine === undefined) return;
    record.quarantine = undefined;
    record.forgetFailures();
    this.#config.logger.info(`manifold ${quote(node.name)} released from quarantine (${by === "probe" ? "its probe start ran long enough" : "engine.restart"})`);
    this.#hands.observer()?.released(node, by);
  }

  /** An operator's restart: releases a quarantine, resets backoff, stops the worker if any and starts it again after bounceDelay. */
  restart(node: ManifoldNode): void {
    const record = this.supervise(node);
    if (!node.installed || !this.#hands.running()) return; // its waiters were told already
    this.release(node, record, "restart");
    switch (node.phase) {
      case "ready":
      case "blocked":
        return; // its start is due anyway
      case "idle":
      case "delayed": {
        const delay = this.#hands.scheduleRestart(node, "bounce");
        if (delay !== undefined) this.#hands.observer()?.scheduled(node, delay, "bounce");
        return;
      }
      default:
        // The operator's restart wins over a kill for a missed heartbeat: a bounce, not a failure.
        record.killError = undefined;
        if (node.restart !== "bounce") this.#hands.interrupt(node, "bounce", "an operator restarted it");
    }
  }

  dropRestartWaiters(record: SupervisionRecord, why: string): void {
    const waiters = record.restartWaiters;
    if (waiters === undefined) return;
    record.restartWaiters = undefined;
    for (const waiter of waiters) waiter.reject(new EngineStoppedError(`the restart did not happen: ${why}`));
  }
}
