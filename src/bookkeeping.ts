/**
 * What the engine remembers of each manifold's past, as PyFarm's master does
 * for every agent: how often it failed, its last failures with their times,
 * and the engine's totals. An observer of the loop's transitions (it changes
 * no engine state); `engine.report()` reads it.
 *
 * Memory stays bounded: a manifold that never failed costs nothing here, and
 * one that did keeps its count and a ring of its last 5 failures.
 */
import type { Clock } from "./config.js";
import type { ManifoldNode } from "./node.js";
import { isoTime, type EngineReport, type ReportHistory } from "./report.js";
import { IgnoringObserver, type StopOutcome } from "./transitions.js";

/** How many failures each manifold's report keeps. */
export const FAILURES_KEPT = 5;

/** One failure in a manifold's report. */
export type FailureRecord = {
  /** The error's message (after the manifold's filter). */
  error: string;
  /** When it happened: ISO 8601 UTC. */
  time: string;
};

/** A manifold's failures: a count and a ring of the last few (clock times, kept as numbers until reported). */
class FailureHistory {
  count = 0;
  // Filled up front: growing an array one element at a time costs more than the five slots.
  readonly #errors: string[] = ["", "", "", "", ""];
  readonly #times: number[] = [0, 0, 0, 0, 0];
  /** Where the next failure goes in the ring. */
  #next = 0;

  add(error: string, time: number): void {
    this.count++;
    this.#errors[this.#next] = error;
    this.#times[this.#next] = time;
    this.#next = (this.#next + 1) % FAILURES_KEPT;
  }

  /** Newest first. */
  newestFirst(): FailureRecord[] {
    const kept = Math.min(this.count, FAILURES_KEPT);
    const records: FailureRecord[] = [];
    for (let i = 1; i <= kept; i++) {
      const at = (this.#next - i + FAILURES_KEPT) % FAILURES_KEPT;
      records.push({ error: this.#errors[at] as string, time: isoTime(this.#times[at] as number) });
    }
    return records;
  }
}

/** Outcomes that count as failures: not a clean completion, MissingError, BounceError, an uninstall or a kill. */
function isFailure(outcome: StopOutcome): boolean {
  return outcome === "error" || outcome === "fatal";
}

/** @internal */
export class Bookkeeping extends IgnoringObserver implements ReportHistory {
  readonly #clock: Clock;
  readonly #startedAt: number;
  readonly #failures = new WeakMap<ManifoldNode, FailureHistory>();
  #starts = 0;
  #failureTotal = 0;
  #bounces = 0;

  constructor(clock: Clock) {
    super();
    this.#clock = clock;
    this.#startedAt = clock.now();
  }

  override started(): void {
    this.#starts++;
  }

  override stopped(node: ManifoldNode, outcome: StopOutcome, error: Error | undefined): void {
    if (!isFailure(outcome)) return;
    this.#failureTotal++;
    let history = this.#failures.get(node);
    if (history === undefined) {
      history = new FailureHistory();
      this.#failures.set(node, history);
    }
    history.add(error?.message ?? "unknown error", this.#clock.now());
  }

  override bounced(): void {
    this.#bounces++;
  }

  now(): number {
    return this.#clock.now();
  }

  failureCount(node: ManifoldNode): number {
    return this.#failures.get(node)?.count ?? 0;
  }

  lastFailures(node: ManifoldNode): FailureRecord[] {
    return this.#failures.get(node)?.newestFirst() ?? [];
  }

  startedAt(): string {
    return isoTime(this.#startedAt);
  }

  totals(): EngineReport["totals"] {
    return { starts: this.#starts, failures: this.#failureTotal, bounces: this.#bounces };
  }

}
