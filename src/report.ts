/**
 * The engine's report: types, and turning node state (and workers' own
 * reports) into plain JSON-serialisable data.
 */
import type { ManifoldNode } from "./node.js";
import type { FailureRecord } from "./bookkeeping.js";
import type { ProgressReport, QuarantineReport, SupervisionRecord } from "./supervision.js";
import { isReporter, type Reporter } from "./workers.js";

/** One entry of a manifold's resource log: a `getResource` call of its last start attempt. */
export type ResourceLogEntry = { name: string; error?: string };

/** What `engine.report()` returns. (A type alias so it is assignable to `Record<string, unknown>`.) */
export type EngineReport = {
  /** "started" until `kill()`, "stopping" until every worker has stopped, then "stopped". */
  state: "started" | "stopping" | "stopped";
  /** The worst fatal error (before the config `filter`), once there is one. */
  error?: string;
  /** One entry per installed manifold. */
  manifolds: Record<string, ManifoldReport>;
  /** When the engine was created: ISO 8601 UTC. */
  startedAt: string;
  /** Counts over the engine's life, uninstalled manifolds included. */
  totals: {
    /** Workers accepted as started. */
    starts: number;
    /** Starts and workers that ended with an error (not a clean completion, MissingError, BounceError, an uninstall or a kill). */
    failures: number;
    /** Dependents restarted because an input's worker came or went. */
    bounces: number;
  };
  /** How many installed manifolds are in each state. */
  counts: Record<ManifoldReport["state"], number>;
  /** The installed set's generation: every install, uninstall and apply moves it on (see `apply`'s `ifGeneration`). */
  generation?: number;
  /** The manifolds the last `installAll`/`apply` with requirements left out because their `when` was false. */
  skipped?: { name: string; when: string }[];
  /** The last time the event loop was found blocked (the deadline timer fired 1 s late or more), and how late. */
  lastStall?: { time: string; lateMs: number };
};

/** One manifold's entry in an {@link EngineReport}. */
export type ManifoldReport = {
  /** "starting" while a start is scheduled or running, "started" while its worker runs, "stopping" until it has stopped, else "stopped". */
  state: "starting" | "started" | "stopping" | "stopped";
  /** ISO 8601 UTC time at which `state` last changed. */
  since: string;
  /** The names of its inputs. */
  inputs: string[];
  /** Most recent error from start or worker (after filter), kept until the next successful start. */
  error?: string;
  /** Successful starts so far. */
  startCount: number;
  /** Successful starts after the first: `max(0, startCount - 1)`. */
  restartCount: number;
  /** Starts and workers that ended with an error (not a clean completion, MissingError, BounceError or an uninstall). */
  failureCount: number;
  /** The last failures (at most 5), newest first. */
  lastFailures: FailureRecord[];
  /** Milliseconds the running worker has been up (only while `state` is "started"). */
  uptimeMs?: number;
  /** ISO 8601 UTC time of the last successful start; kept after the worker stops. */
  lastStart?: string;
  /** The worker's own `report()`, if it is a Reporter (or `{ error }` if that threw). */
  report?: Record<string, unknown>;
  /** `getResource` calls of the last start attempt. */
  resourceLog?: ResourceLogEntry[];
  /** The worker (or aborted start) did not settle within its stopTimeout after the engine stopped it. */
  stuck?: boolean;
  /** ISO 8601 UTC time of the running worker's last `heartbeat()` or `progress()` (heartbeat-supervised manifolds only). */
  lastHeartbeat?: string;
  /** The worker's latest `progress(message, details)`. */
  progress?: ProgressReport;
  /** The worker missed its heartbeat and its `heartbeatAction` is "report": marked silent until it beats again. */
  silent?: boolean;
  /** While its start waits for inputs whose starts are in flight (rule 9): which. */
  blockedBy?: string[];
  /** It failed more often than its `restartLimit` allows and is not restarted automatically. */
  quarantined?: QuarantineReport;
};

/**
 * The last time rendered, and its string: a report renders one or two times
 * per manifold, and the manifolds of a cold start share a few hundred
 * distinct milliseconds, so most renderings repeat the one before (a 100k
 * chain's report: 17% of its time was `toISOString`).
 */
let lastIsoMs = Number.NaN;
let lastIso = "";

/** ISO 8601 UTC rendering of a clock time. @internal */
export function isoTime(ms: number): string {
  if (ms === lastIsoMs) return lastIso;
  const date = new Date(ms);
  const iso = Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
  lastIsoMs = ms;
  lastIso = iso;
  return iso;
}

/** Sets `key` as an own enumerable property even when it is `__proto__`. @internal */
export function setEntry<T>(record: Record<string, T>, key: string, value: T): void {
  if (key === "__proto__") {
    Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    record[key] = value;
  }
}

const MAX_DEPTH = 32;

/**
 * A JSON-serialisable copy of `value`: cycles become "[Circular]", functions
 * and symbols are dropped, bigints become strings, errors become their message,
 * anything nested deeper than 32 levels becomes "[Too deep]".
 * @internal
 */
export function toJsonSafe(value: unknown, ancestors: unknown[] = []): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return Number.isFinite(value) ? value : String(value);
    case "bigint":
      return value.toString();
    case "undefined":
    case "function":
    case "symbol":
      return undefined;
  }
  if (value === null) return null;
  try {
    return copyObject(value as object, ancestors);
  } catch (error) {
    // A revoked proxy throws even on Array.isArray.
    return `[unreadable: ${describeError(error)}]`;
  }
}

function copyObject(value: object, ancestors: unknown[]): unknown {
  if (ancestors.includes(value)) return "[Circular]";
  if (ancestors.length >= MAX_DEPTH) return "[Too deep]";
  if (value instanceof Error) return value.message;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? String(value) : value.toISOString();
  ancestors.push(value);
  try {
    if (Array.isArray(value)) return value.map((item) => toJsonSafe(item, ancestors) ?? null);
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(value as object)) {
      let item: unknown;
      try {
        item = toJsonSafe((value as Record<string, unknown>)[key], ancestors);
      } catch (error) {
        // One unreadable property (a throwing getter) must not hide the others.
        item = `[unreadable: ${describeError(error)}]`;
      }
      if (item !== undefined) setEntry(copy, key, item);
    }
    return copy;
  } catch (error) {
    return `[unreadable: ${describeError(error)}]`;
  } finally {
    ancestors.pop();
  }
}

function describeError(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return "an unreadable error";
  }
}

/** A worker's own report, made safe; `{ error }` if `report()` threw or returned a non-object. */
function workerReport(worker: Reporter): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = worker.report();
  } catch (error) {
    return { error: describeError(error) };
  }
  const report = toJsonSafe(raw);
  if (report !== null && typeof report === "object" && !Array.isArray(report)) return report as Record<string, unknown>;
  return { error: `report() returned ${raw === undefined ? "nothing" : typeof report === "string" ? report : "a non-object"}; it must return a plain object` };
}

/** `isReporter`, but a throwing `report` getter means "not a reporter". */
function safeIsReporter(worker: unknown): worker is Reporter {
  try {
    return isReporter(worker);
  } catch {
    return false;
  }
}

/**
 * One manifold's report entry. `history` is the engine's bookkeeping. `self` is the engine itself, whose report is
 * never nested in its own (SPEC rule 11); `withWorkerReports` is false when
 * a worker's report() re-entered engine.report(). `epoch` is the time the
 * node's times (`since`, `lastStart`) are counted from.
 * @internal
 */
export function manifoldReport(
  node: ManifoldNode,
  self: unknown,
  withWorkerReports: boolean,
  history: ReportHistory,
  wallTime: (deadlineTime: number) => number,
  epoch: number,
): ManifoldReport {
  const entry: ManifoldReport = {
    state: node.reportState,
    since: isoTime(epoch + node.since),
    inputs: node.inputs,
    startCount: node.startCount,
    restartCount: Math.max(0, node.startCount - 1),
    failureCount: history.failureCount(node),
    lastFailures: history.lastFailures(node),
  };
  const now = history.now();
  if (node.phase === "running" && node.workerAccepted && node.lastStart !== undefined) entry.uptimeMs = Math.max(0, now - (epoch + node.lastStart));
  if (node.error !== undefined) entry.error = node.error.message;
  if (node.lastStart !== undefined) entry.lastStart = isoTime(epoch + node.lastStart);
  if (node.worker !== undefined && node.worker !== self && safeIsReporter(node.worker)) {
    entry.report = withWorkerReports
      ? workerReport(node.worker)
      : { error: "skipped: a worker's report() called engine.report() again" };
  }
  const names = node.resourceNames;
  if (names !== undefined) {
    const errors = node.resourceErrors;
    entry.resourceLog = names.map((name, i) => {
      const error = errors?.[i];
      return error === undefined ? { name } : { name, error };
    });
  }
  if (node.stuck) entry.stuck = true;
  if (node.phase === "blocked") entry.blockedBy = blockedBy(node);
  if (node.supervision !== undefined) addSupervision(entry, node, node.supervision, wallTime);
  return entry;
}

/** The inputs whose start in flight holds a blocked node's start back (rule 9). */
function blockedBy(node: ManifoldNode): string[] {
  const names: string[] = [];
  for (const slot of node.inputSlots) if (slot.node?.holding === true) names.push(slot.name);
  return names;
}

/** The supervision fields of a manifold's report entry (supervision.ts). */
function addSupervision(entry: ManifoldReport, node: ManifoldNode, record: SupervisionRecord, wallTime: (deadlineTime: number) => number): void {
  const watched = node.phase === "running" && record.generation === node.startGeneration;
  if (watched && record.beaten) entry.lastHeartbeat = isoTime(wallTime(record.lastBeat));
  if (watched && record.silent) entry.silent = true;
  const progress = record.progress;
  if (progress !== undefined) {
    entry.progress = { message: progress.message, time: isoTime(progress.time) };
    if (progress.details !== undefined) entry.progress.details = toJsonSafe(progress.details);
  }
  const quarantine = record.quarantine;
  if (quarantine !== undefined) {
    entry.quarantined = { since: isoTime(quarantine.since), failures: quarantine.failures };
    if (quarantine.until !== undefined) entry.quarantined.until = isoTime(quarantine.until);
  }
}

/** What a report needs from the engine's bookkeeping (bookkeeping.ts). @internal */
export interface ReportHistory {
  now(): number;
  failureCount(node: ManifoldNode): number;
  lastFailures(node: ManifoldNode): FailureRecord[];
  startedAt(): string;
  totals(): EngineReport["totals"];
}

/**
 * The engine's report: its state, its worst fatal error, its bookkeeping and
 * one entry per installed manifold (see {@link manifoldReport} for `self`
 * and `withWorkerReports`).
 * @internal
 */
export function engineReport(
  nodes: Iterable<ManifoldNode>,
  state: EngineReport["state"],
  worst: Error | undefined,
  history: ReportHistory,
  self: unknown,
  withWorkerReports: boolean,
  wallTime: (deadlineTime: number) => number,
  epoch: number,
): EngineReport {
  const manifolds: Record<string, ManifoldReport> = {};
  const counts = { starting: 0, started: 0, stopping: 0, stopped: 0 };
  for (const node of nodes) {
    const entry = manifoldReport(node, self, withWorkerReports, history, wallTime, epoch);
    counts[entry.state]++;
    setEntry(manifolds, node.name, entry);
  }
  const report: EngineReport = { state, manifolds, startedAt: history.startedAt(), totals: history.totals(), counts };
  if (worst !== undefined) report.error = worst.message;
  return report;
}
