/**
 * Every deadline of the engine, all on one timer: stuck-worker deadlines
 * (a worker, or an aborted start, the engine stopped must settle within its
 * `stopTimeout`) and, next to them, heartbeat and quarantine-probe deadlines.
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
 * and the item keeps a reference to the batch (its `stopBatch`)
 * while the deadline matters; an item that no longer names the batch was
 * cancelled. (A deadline object and a clock read per stop cost about a
 * third of a 100,000-worker shutdown, measured against stopTimeout 0.)
 * Memory stays proportional to the deadlines pending, however long one
 * worker takes to stop: a batch whose items were all cancelled lets go of
 * them at once, and cancelled items are dropped from a batch once they are
 * most of it (more than twice its pending ones, and over 1,024); empty
 * batches leave the head of their queue at once, and the rest of it once
 * they are most of it; and everything goes, with the timer, when nothing is
 * pending at the end of a drain.
 *
 * The other deadlines (a heartbeat deadline re-armed from the worker's last
 * heartbeat, a probe's) go into one binary heap: O(log n) per re-arm, which
 * happens once per timeout period per worker, never per heartbeat.
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

/** What a stop deadline is kept for: an item that names the batch of its pending stop deadline (undefined: none). @internal */
export interface StopItem<T> {
  stopBatch: StopBatch<T> | undefined;
}

/**
 * The stop deadlines one drain added with one timeout: all due together,
 * `timeout` ms after the drain ended. An item in `items` whose `stopBatch`
 * no longer names this batch was cancelled (or moved to a later batch).
 * @internal
 */
export class StopBatch<T> {
  readonly queue: BatchQueue<T>;
  items: T[] = [];
  /** How many items still hold this batch. */
  pending = 0;
  /** NaN until the drain ends (see {@link Deadlines.stamp}). */
  due = Number.NaN;

  constructor(queue: BatchQueue<T>) {
    this.queue = queue;
  }

  /** Lets go of every item: a small list is cut short (a one-stop batch is emptied once per stop in a chain's shutdown), a large one replaced. */
  empty(): void {
    if (this.items.length > 16) this.items = [];
    else this.items.length = 0;
  }
}

/** The stop batches of one timeout value, in due order from `head` on. @internal */
class BatchQueue<T> {
  readonly timeout: number;
  batches: StopBatch<T>[] = [];
  head = 0;
  /** The batch the running drain adds to (always the last one), until the drain ends. */
  open: StopBatch<T> | undefined = undefined;
  /** How many of `batches` from `head` on are empty. */
  #empties = 0;

  constructor(timeout: number) {
    this.timeout = timeout;
  }

  get size(): number {
    return this.batches.length - this.head;
  }

  /**
   * The batch the running drain adds to: the open one; else the last one if
   * it is empty (a shutdown of a chain stops one worker per drain, and
   * cancels its deadline before adding the next: no allocation per stop);
   * else a new one at the end.
   */
  openBatch(): StopBatch<T> {
    if (this.open !== undefined) return this.open;
    let batch = this.size > 0 ? (this.batches[this.batches.length - 1] as StopBatch<T>) : undefined;
    if (batch !== undefined && batch.pending === 0) {
      this.#empties--;
    } else {
      batch = new StopBatch<T>(this);
      this.batches.push(batch);
    }
    batch.due = Number.NaN;
    this.open = batch;
    return batch;
  }

  /**
   * Every deadline of `batch` was cancelled. Empty batches at the head go at
   * once; behind a batch that stays pending (a worker taking most of its
   * stopTimeout), they go once they are most of the queue, so the queue
   * stays proportional to the batches pending.
   */
  emptied(batch: StopBatch<T>): void {
    batch.empty();
    this.#empties++;
    this.#dropEmptyHead();
    if (this.#empties > 64 && this.#empties * 2 > this.size) this.#compact();
  }

  /** Takes the batch at the head off the queue; its place is cleared for the GC. */
  shift(): StopBatch<T> {
    const batch = this.batches[this.head] as StopBatch<T>;
    this.batches[this.head++] = undefined as unknown as StopBatch<T>;
    if (batch.pending === 0) this.#empties--;
    if (this.head > 1024 && this.head * 2 > this.batches.length) {
      this.batches = this.batches.slice(this.head);
      this.head = 0;
    }
    return batch;
  }

  #dropEmptyHead(): void {
    // The last batch stays: emptied, it is reused by the next drain's stops (see openBatch).
    while (this.size > 1 && (this.batches[this.head] as StopBatch<T>).pending === 0) this.shift();
  }

  #compact(): void {
    const last = this.batches[this.batches.length - 1] as StopBatch<T>;
    const kept = this.batches.slice(this.head).filter((batch) => batch.pending > 0 || batch === last);
    this.batches = kept;
    this.head = 0;
    this.#empties = last.pending === 0 ? 1 : 0;
  }
}

/** @internal */
export class Deadlines<T extends StopItem<T>> {
  readonly #clock: Clock;
  readonly #now: () => number;
  readonly #onTimer: (generation: number) => void;
  /** Per timeout value: stop batches in due order. */
  readonly #queues = new Map<number, BatchQueue<T>>();
  /** The queue added to last: most stops share one timeout, and this saves a lookup per stop. */
  #lastQueue: BatchQueue<T> | undefined = undefined;
  /** Queues with a batch open in the running drain: the first `#openCount` (a count: setting an array's length costs ~40 ns, and a chain's shutdown ends a drain per stop). */
  readonly #openQueues: BatchQueue<T>[] = [];
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
    const queue = this.#queue(timeout);
    if (queue.open === undefined) this.#openQueues[this.#openCount++] = queue;
    const batch = queue.openBatch();
    batch.items.push(item);
    batch.pending++;
    item.stopBatch = batch;
    this.#pending++;
  }

  #queue(timeout: number): BatchQueue<T> {
    const last = this.#lastQueue;
    if (last !== undefined && last.timeout === timeout) return last;
    let queue = this.#queues.get(timeout);
    if (queue === undefined) {
      queue = new BatchQueue<T>(timeout);
      this.#queues.set(timeout, queue);
    }
    this.#lastQueue = queue;
    return queue;
  }

  /** Whether `item` has a stop deadline pending. */
  hasStop(item: T): boolean {
    return item.stopBatch !== undefined;
  }

  /** Cancels `item`'s stop deadline, if it has one. */
  cancelStop(item: T): void {
    const batch = item.stopBatch;
    if (batch === undefined) return;
    item.stopBatch = undefined;
    this.#pending--;
    const pending = --batch.pending;
    if (pending === 0) {
      batch.queue.emptied(batch);
    } else if (batch.items.length - pending > Math.max(1024, 2 * pending)) {
      // Cancelled items are most of the batch: drop them, so a batch stays proportional to its pending deadlines.
      batch.items = batch.items.filter((held) => held.stopBatch === batch);
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
      const queue = this.#openQueues[i] as BatchQueue<T>;
      const batch = queue.open as StopBatch<T>;
      queue.open = undefined;
      batch.due = now + queue.timeout;
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
    while (queue.size > 0) {
      const head = queue.batches[queue.head] as StopBatch<T>;
      if (head.pending > 0 && head.due > now) return head.due;
      const batch = queue.shift();
      if (batch.pending === 0) continue;
      for (const item of batch.items) {
        if (item.stopBatch !== batch) continue;
        item.stopBatch = undefined;
        stops.push(item);
      }
      this.#pending -= batch.pending;
      batch.pending = 0;
      batch.empty();
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

  /** Stop batches held, empty ones included: for diagnostics and tests. */
  get storedBatches(): number {
    let batches = 0;
    for (const queue of this.#queues.values()) batches += queue.size;
    return batches;
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
        for (const item of batch.items) if (item.stopBatch === batch) item.stopBatch = undefined;
      }
    }
    this.#queues.clear();
    this.#lastQueue = undefined;
    this.#openQueues.length = 0;
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
