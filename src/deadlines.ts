/**
 * Every deadline of the engine, all on one timer: stuck-worker deadlines
 * (a worker, or an aborted start, the engine stopped must settle within its
 * `stopTimeout`) and, next to them, heartbeat deadlines.
 *
 * Arming a timer per deadline would cost a setTimeout and a clearTimeout each
 * (a bounce or a shutdown of 100,000 workers is 100,000 of each). Instead,
 * one timer is armed for the earliest deadline.
 *
 * Stop deadlines are counted from the end of the loop's drain that added
 * them (their due time is stamped then, from one clock read for the whole
 * drain: never early, and no timer could fire before it anyway). The ones a
 * drain adds with the same timeout form one batch, due together; the batches
 * of one timeout wait in a first-in-first-out queue, so each queue is in due
 * order. A stop deadline is no object: it is its item in the batch's list,
 * and the item keeps a reference to the batch (through {@link BatchField})
 * while the deadline matters; an item that no longer names the batch was
 * cancelled. (A deadline object and a clock read per stop cost about a
 * third of a 100,000-worker shutdown, measured against stopTimeout 0.) A
 * batch whose items were all cancelled lets go of them at once; cancelled
 * items are dropped from a batch when they outnumber its pending ones (so
 * memory stays proportional to the workers being stopped, however long one
 * of them takes); and everything is dropped, with the timer, when nothing is
 * pending at the end of a drain.
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

/** What a deadline of the heap is for: a worker's heartbeat, a quarantine probe that must run long enough. @internal */
export type DeadlineKind = "heartbeat" | "probe";

/** One pending deadline of the heap; `cancelled` once it no longer matters. @internal */
export interface Deadline<T> {
  readonly item: T;
  readonly kind: DeadlineKind;
  readonly due: number;
  cancelled: boolean;
}

/** Where an item keeps the batch of its pending stop deadline (undefined: none). @internal */
export interface BatchField<T> {
  get(item: T): StopBatch<T> | undefined;
  set(item: T, batch: StopBatch<T> | undefined): void;
}

/**
 * The stop deadlines one drain added with one timeout: all due together,
 * `timeout` ms after the drain ended. An item in `items` whose batch field
 * no longer names this batch was cancelled (or moved to a later batch).
 * @internal
 */
export class StopBatch<T> {
  readonly timeout: number;
  items: T[] = [];
  /** How many items still hold this batch. */
  pending = 0;
  /** NaN until the drain ends (see {@link Deadlines.stamp}). */
  due = Number.NaN;

  constructor(timeout: number) {
    this.timeout = timeout;
  }

  /** Lets go of every item: a small list is cut short (a one-stop batch is emptied once per stop in a chain's shutdown), a large one replaced. */
  empty(): void {
    if (this.items.length > 16) this.items = [];
    else this.items.length = 0;
  }
}

/** The batches of one timeout value, in due order from `head` on. */
interface BatchQueue<T> {
  batches: StopBatch<T>[];
  head: number;
}

/** @internal */
export class Deadlines<T> {
  readonly #clock: Clock;
  readonly #now: () => number;
  readonly #onTimer: (generation: number) => void;
  readonly #batchOf: BatchField<T>;
  /** Per timeout value: stop batches in due order. */
  readonly #queues = new Map<number, BatchQueue<T>>();
  /** Batches of the drain running now (not yet stamped): the first `#openCount` (a count: setting the length costs ~40 ns, once per drain, which in a chain's shutdown is once per stop). */
  readonly #open: StopBatch<T>[] = [];
  #openCount = 0;
  /** Deadlines of any due time (see {@link Deadlines.addAt}). */
  #heap = new DeadlineHeap<T>();
  /** Deadlines that matter, stop and heap alike. */
  #pending = 0;
  /** Cancelled deadlines still in the heap. */
  #heapCancelled = 0;
  #timer: unknown = undefined;
  #timerDue = Number.POSITIVE_INFINITY;
  /** Generation of the armed timer, so a late firing of a replaced one is recognised. */
  #generation = 0;
  /** How late the last timer fired, in ms past its due time (an event-loop stall shows here). */
  #lateness = 0;

  /**
   * `now` is the time base of deadlines (monotonic for the system clock);
   * `onTimer(generation)` runs when the timer fires and should call
   * `expired(generation)` from the engine loop; `batchOf` is where an item
   * keeps the batch of its stop deadline.
   */
  constructor(clock: Clock, now: () => number, onTimer: (generation: number) => void, batchOf: BatchField<T>) {
    this.#clock = clock;
    this.#now = now;
    this.#onTimer = onTimer;
    this.#batchOf = batchOf;
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

  cancel(deadline: Deadline<T>): void {
    if (deadline.cancelled) return;
    deadline.cancelled = true;
    this.#pending--;
    if (++this.#heapCancelled > Math.max(1024, this.#heap.size - this.#heapCancelled)) {
      this.#heap = this.#heap.withoutCancelled();
      this.#heapCancelled = 0;
    }
  }

  /**
   * A stop deadline for `item`, `timeout` ms after the current drain ends
   * (see {@link Deadlines.stamp}); replaces the one `item` had.
   */
  addStop(item: T, timeout: number): void {
    this.cancelStop(item);
    const batch = this.#openBatch(timeout);
    batch.items.push(item);
    batch.pending++;
    this.#batchOf.set(item, batch);
    this.#pending++;
  }

  /**
   * The batch this drain adds `timeout` deadlines to: the queue's last
   * batch if it is open or empty (a shutdown of a chain stops one worker per
   * drain, and cancels its deadline before adding the next: no allocation
   * per stop), else a new one at the end of the queue.
   */
  #openBatch(timeout: number): StopBatch<T> {
    const open = this.#open;
    for (let i = this.#openCount - 1; i >= 0; i--) if ((open[i] as StopBatch<T>).timeout === timeout) return open[i] as StopBatch<T>;
    let queue = this.#queues.get(timeout);
    if (queue === undefined) {
      queue = { batches: [], head: 0 };
      this.#queues.set(timeout, queue);
    }
    let batch = queue.batches.length > queue.head ? (queue.batches[queue.batches.length - 1] as StopBatch<T>) : undefined;
    if (batch === undefined || batch.pending > 0) {
      batch = new StopBatch<T>(timeout);
      queue.batches.push(batch);
    }
    batch.due = Number.NaN;
    open[this.#openCount++] = batch;
    return batch;
  }

  /** Whether `item` has a stop deadline pending. */
  hasStop(item: T): boolean {
    return this.#batchOf.get(item) !== undefined;
  }

  /** Cancels `item`'s stop deadline, if it has one. */
  cancelStop(item: T): void {
    const batch = this.#batchOf.get(item);
    if (batch === undefined) return;
    this.#batchOf.set(item, undefined);
    this.#pending--;
    const pending = --batch.pending;
    if (pending === 0) {
      batch.empty();
      this.#dropEmpty(batch.timeout);
    } else if (batch.items.length - pending > Math.max(1024, 2 * pending)) {
      // Cancelled items outnumber the pending ones: memory stays proportional to the workers being stopped.
      batch.items = batch.items.filter((held) => this.#batchOf.get(held) === batch);
    }
  }

  /** Takes the empty batches off the head of the `timeout` queue, so that it holds none for long. */
  #dropEmpty(timeout: number): void {
    const queue = this.#queues.get(timeout);
    if (queue === undefined) return;
    const batches = queue.batches;
    // The last batch stays (emptied, it is reused by the next drain's stops: see #openBatch).
    while (queue.head < batches.length - 1 && (batches[queue.head] as StopBatch<T>).pending === 0) {
      batches[queue.head++] = undefined as unknown as StopBatch<T>;
    }
    if (queue.head > 1024 && queue.head * 2 > batches.length) {
      queue.batches = batches.slice(queue.head);
      queue.head = 0;
    }
  }

  /**
   * Gives the batches of the drain that is ending their due time, from one
   * clock read, and arms the timer for them. The loop calls it when a drain
   * ends (through {@link Deadlines.tidy}); `expired` calls it first.
   */
  stamp(): void {
    if (this.#openCount === 0) return;
    const now = this.#now();
    for (let i = 0; i < this.#openCount; i++) {
      const batch = this.#open[i] as StopBatch<T>;
      batch.due = now + batch.timeout;
      if (batch.pending > 0 && batch.due < this.#timerDue) this.#arm(batch.due);
    }
    this.#openCount = 0;
  }

  /**
   * The deadlines that have passed (each once), and re-arms for the next:
   * the items whose stop deadline passed, and the heap's deadlines.
   * `generation` says which timer fired: a replaced one's late firing leaves
   * the armed timer alone.
   */
  expired(generation: number): { stops: T[]; others: Deadline<T>[] } {
    this.stamp();
    const now = this.#now();
    if (generation === this.#generation) {
      this.#lateness = this.#timerDue === Number.POSITIVE_INFINITY ? 0 : Math.max(0, now - this.#timerDue);
      this.#timer = undefined;
      this.#timerDue = Number.POSITIVE_INFINITY;
    }
    const stops: T[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const queue of this.#queues.values()) next = Math.min(next, this.#expireBatches(queue, now, stops));
    const others: Deadline<T>[] = [];
    for (let top = this.#heap.peek(); top !== undefined; top = this.#heap.peek()) {
      if (!top.cancelled && top.due > now) {
        next = Math.min(next, top.due);
        break;
      }
      this.#heap.pop();
      if (top.cancelled) {
        this.#heapCancelled--;
      } else {
        top.cancelled = true;
        this.#pending--;
        others.push(top);
      }
    }
    if (next < this.#timerDue) this.#arm(next);
    return { stops, others };
  }

  /** Takes the passed batches off the head of `queue` (their pending items into `stops`); returns the next due time. */
  #expireBatches(queue: BatchQueue<T>, now: number, stops: T[]): number {
    const batches = queue.batches;
    while (queue.head < batches.length) {
      const batch = batches[queue.head] as StopBatch<T>;
      if (batch.pending > 0 && batch.due > now) return batch.due;
      batches[queue.head++] = undefined as unknown as StopBatch<T>;
      if (batch.pending === 0) continue;
      for (const item of batch.items) {
        if (this.#batchOf.get(item) !== batch) continue;
        this.#batchOf.set(item, undefined);
        stops.push(item);
      }
      this.#pending -= batch.pending;
      batch.pending = 0;
      batch.empty();
    }
    if (queue.head > 1024 && queue.head * 2 > batches.length) {
      queue.batches = batches.slice(queue.head);
      queue.head = 0;
    }
    return Number.POSITIVE_INFINITY;
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
    for (const queue of this.#queues.values()) {
      for (let i = queue.head; i < queue.batches.length; i++) stored += (queue.batches[i] as StopBatch<T>).items.length;
    }
    return stored + this.#heap.size;
  }

  /** At the end of a loop turn: stamps the turn's stop deadlines; with nothing pending, drops every entry and the timer. */
  tidy(): void {
    this.stamp();
    if (this.#pending === 0 && (this.#timer !== undefined || this.#queues.size > 0 || this.#heap.size > 0)) this.clear();
  }

  /** Forgets every deadline (items forget their batches) and clears the timer. */
  clear(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Number.POSITIVE_INFINITY;
    for (const queue of this.#queues.values()) {
      for (let i = queue.head; i < queue.batches.length; i++) {
        const batch = queue.batches[i] as StopBatch<T>;
        if (batch.pending === 0) continue;
        for (const item of batch.items) if (this.#batchOf.get(item) === batch) this.#batchOf.set(item, undefined);
      }
    }
    this.#queues.clear();
    this.#open.length = 0;
    this.#openCount = 0;
    this.#heap = new DeadlineHeap<T>();
    this.#pending = 0;
    this.#heapCancelled = 0;
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
