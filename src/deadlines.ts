/**
 * Every deadline of the engine, all on one timer: stuck-worker deadlines
 * (a worker, or an aborted start, the engine stopped must settle within its
 * `stopTimeout`) and, next to them, heartbeat deadlines.
 *
 * Arming a timer per deadline would cost a setTimeout and a clearTimeout each
 * (a bounce or a shutdown of 100,000 workers is 100,000 of each). Instead, deadlines wait in one first-in-first-out queue per distinct
 * timeout value (so each queue is ordered by deadline and adding is O(1)), and
 * a single timer is armed for the earliest. Cancelling marks the entry; marked
 * entries are dropped when they reach the head, when they outnumber the
 * pending ones (so memory stays proportional to the workers being stopped,
 * however long one of them takes), and all at once, with the timer, when
 * nothing is pending at the end of a loop turn.
 *
 * Deadlines whose due time is not "now + a fixed timeout" (a heartbeat
 * deadline re-armed from the worker's last heartbeat) go into one binary
 * heap instead: O(log n) per re-arm, which happens once per timeout period
 * per worker, never per heartbeat.
 *
 * Deadlines are kept in a monotonic time base (`performance.now()` with the
 * system clock), so a wall-clock step neither delays nor hastens them.
 */
import type { Clock } from "./config.js";

/** What a deadline is for: a stopped worker that must settle, a worker's heartbeat, a quarantine probe that must run long enough. @internal */
export type DeadlineKind = "stop" | "heartbeat" | "probe";

/** One pending deadline; `cancelled` once it no longer matters. @internal */
export interface Deadline<T> {
  readonly item: T;
  readonly kind: DeadlineKind;
  readonly due: number;
  cancelled: boolean;
}

/** @internal */
export class Deadlines<T> {
  readonly #clock: Clock;
  readonly #now: () => number;
  readonly #onTimer: (generation: number) => void;
  /** Per timeout value: deadlines in due order, from `head` on. */
  readonly #queues = new Map<number, { entries: Deadline<T>[]; head: number }>();
  /** Deadlines of any due time (see {@link Deadlines.addAt}). */
  #heap = new DeadlineHeap<T>();
  #pending = 0;
  #cancelled = 0;
  #timer: unknown = undefined;
  #timerDue = Number.POSITIVE_INFINITY;
  /** Generation of the armed timer, so a late firing of a replaced one is recognised. */
  #generation = 0;
  /** How late the last timer fired, in ms past its due time (an event-loop stall shows here). */
  #lateness = 0;

  /**
   * `now` is the time base of deadlines (monotonic for the system clock);
   * `onTimer(generation)` runs when the timer fires and should call
   * `expired(generation)` from the engine loop.
   */
  constructor(clock: Clock, now: () => number, onTimer: (generation: number) => void) {
    this.#clock = clock;
    this.#now = now;
    this.#onTimer = onTimer;
  }

  /** The time base of deadlines: what `due` is measured in. */
  now(): number {
    return this.#now();
  }

  /** A deadline at `due` (in the time base of {@link Deadlines.now}) for `item`, whatever the order of earlier ones. */
  addAt(item: T, kind: DeadlineKind, due: number): Deadline<T> {
    const deadline: Deadline<T> = { item, kind, due, cancelled: false };
    this.#heap.push(deadline);
    this.#pending++;
    if (due < this.#timerDue) this.#arm(due);
    return deadline;
  }

  /** A deadline `timeout` ms from now for `item`. */
  add(item: T, kind: DeadlineKind, timeout: number): Deadline<T> {
    const deadline: Deadline<T> = { item, kind, due: this.#now() + timeout, cancelled: false };
    let queue = this.#queues.get(timeout);
    if (queue === undefined) {
      queue = { entries: [], head: 0 };
      this.#queues.set(timeout, queue);
    }
    queue.entries.push(deadline);
    this.#pending++;
    if (deadline.due < this.#timerDue) this.#arm(deadline.due);
    return deadline;
  }

  cancel(deadline: Deadline<T>): void {
    if (deadline.cancelled) return;
    deadline.cancelled = true;
    this.#pending--;
    if (++this.#cancelled > Math.max(1024, this.#pending)) this.#compact();
  }

  /** Drops every cancelled entry: amortised O(1) per cancel. */
  #compact(): void {
    for (const queue of this.#queues.values()) {
      queue.entries = queue.entries.slice(queue.head).filter((deadline) => !deadline.cancelled);
      queue.head = 0;
    }
    this.#heap = this.#heap.withoutCancelled();
    this.#cancelled = 0;
  }

  /**
   * The deadlines that have passed (each once); re-arms for the next.
   * `generation` says which timer fired: a replaced one's late firing leaves
   * the armed timer alone.
   */
  expired(generation: number): Deadline<T>[] {
    const now = this.#now();
    if (generation === this.#generation) {
      this.#lateness = this.#timerDue === Number.POSITIVE_INFINITY ? 0 : Math.max(0, now - this.#timerDue);
      this.#timer = undefined;
      this.#timerDue = Number.POSITIVE_INFINITY;
    }
    const due: Deadline<T>[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const queue of this.#queues.values()) {
      while (queue.head < queue.entries.length) {
        const deadline = queue.entries[queue.head] as Deadline<T>;
        if (!deadline.cancelled && deadline.due > now) {
          next = Math.min(next, deadline.due);
          break;
        }
        queue.entries[queue.head++] = undefined as unknown as Deadline<T>;
        if (deadline.cancelled) {
          this.#cancelled--;
        } else {
          deadline.cancelled = true;
          this.#pending--;
          due.push(deadline);
        }
      }
      if (queue.head > 1024 && queue.head * 2 > queue.entries.length) {
        queue.entries = queue.entries.slice(queue.head);
        queue.head = 0;
      }
    }
    for (let top = this.#heap.peek(); top !== undefined; top = this.#heap.peek()) {
      if (!top.cancelled && top.due > now) {
        next = Math.min(next, top.due);
        break;
      }
      this.#heap.pop();
      if (top.cancelled) {
        this.#cancelled--;
      } else {
        top.cancelled = true;
        this.#pending--;
        due.push(top);
      }
    }
    if (next < this.#timerDue) this.#arm(next);
    return due;
  }

  /**
   * How many ms after its due time the last timer fired. Far more than a
   * timer's usual slack means the event loop was blocked (synchronous work, a
   * debugger, a suspended machine): deadlines that passed meanwhile say
   * nothing about the workers.
   */
  get lateness(): number {
    return this.#lateness;
  }

  /** Entries held (pending and cancelled-but-not-dropped): for diagnostics and tests. */
  get stored(): number {
    let stored = 0;
    for (const queue of this.#queues.values()) stored += queue.entries.length - queue.head;
    return stored + this.#heap.size;
  }

  /** At the end of a loop turn: with nothing pending, drop every entry and the timer. */
  tidy(): void {
    if (this.#pending === 0 && (this.#timer !== undefined || this.#queues.size > 0 || this.#heap.size > 0)) this.clear();
  }

  /** Forgets every deadline and clears the timer. */
  clear(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Number.POSITIVE_INFINITY;
    this.#queues.clear();
    this.#heap = new DeadlineHeap<T>();
    this.#pending = 0;
    this.#cancelled = 0;
  }

  #arm(due: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    const generation = ++this.#generation;
    this.#timerDue = due;
    this.#timer = this.#clock.setTimeout(() => this.#onTimer(generation), Math.max(0, due - this.#now()));
  }
}

/** A binary min-heap of deadlines by due time. */
class DeadlineHeap<T> {
  readonly #items: Deadline<T>[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Deadline<T> | undefined {
    return this.#items[0];
  }

  push(deadline: Deadline<T>): void {
    const items = this.#items;
    let at = items.length;
    items.push(deadline);
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if ((items[parent] as Deadline<T>).due <= deadline.due) break;
      items[at] = items[parent] as Deadline<T>;
      at = parent;
    }
    items[at] = deadline;
  }

  pop(): Deadline<T> | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let at = 0;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && (items[right] as Deadline<T>).due < (items[left] as Deadline<T>).due ? right : left;
      if ((items[child] as Deadline<T>).due >= last.due) break;
      items[at] = items[child] as Deadline<T>;
      at = child;
    }
    items[at] = last;
    return top;
  }

  /** A heap of the entries not cancelled. */
  withoutCancelled(): DeadlineHeap<T> {
    const heap = new DeadlineHeap<T>();
    for (const deadline of this.#items) if (!deadline.cancelled) heap.push(deadline);
    return heap;
  }
}
