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
 * drain; or earlier in it, when the deadline timer's message is handled in
 * that drain: never before they were added). Those of
 * one timeout wait in a first-in-first-out queue, in the order they were
 * added, which is their due order. A stop deadline is no object: it is an
 * entry (its item, the ticket number it was given, its due time) in three
 * lists, and the item holds the ticket (its `stopTicket`, a small integer)
 * while the deadline matters; an entry whose item holds another ticket, or
 * none, was cancelled. Workers mostly stop in the order they were stopped,
 * so a cancelled entry is mostly its queue's head, and goes at once. Adding
 * one is three pushes and a field write, whether a drain adds 100,000 of
 * them (a shutdown) or one (a chain's shutdown, or a layered graph's, stops
 * a worker or two per drain). (A
 * deadline object and a clock read per stop cost about a third of a
 * 100,000-worker shutdown, measured against stopTimeout 0. A batch object
 * per drain instead: a layered shutdown, where a drain stops two workers on
 * average, made 48,000 of them at 100,000 workers; in one process, its kill
 * took a median 616 ms against 502 without them.)
 * Memory stays proportional to the deadlines pending, however long one
 * worker takes to stop: cancelled entries are dropped, in place, once they
 * are most of those held (more than twice the pending deadlines, heartbeat
 * and probe ones included, and over 1,024); a queue keeps up to 1,024 taken
 * off before it cuts its lists (see StopQueue.shift); and everything goes,
 * with the timer, when nothing is pending at the end of a drain.
 *
 * The other deadlines (a heartbeat deadline re-armed from the worker's last
 * heartbeat, a probe's) go into one binary heap: O(log n) per re-arm, which
 * happens once per timeout period per worker, never per heartbeat.
 *
 * Deadlines are kept in a monotonic time base (`performance.now()` with the
 * system clock), so a wall-clock step neither delays nor hastens them.
 */
import { Chunked } from "./chunked.js";
import type { Clock } from "./config.js";
import { keepShape } from "./shapes.js";

/** What a deadline of the heap is for: a worker's heartbeat, a quarantine probe that must run long enough. @internal */
export type DeadlineKind = "heartbeat" | "probe";

/** One pending deadline of the heap; `cancelled` once it no longer matters. @internal */
export interface Deadline<T> {
  readonly item: T;
  readonly kind: DeadlineKind;
  readonly due: number;
  cancelled: boolean;
}

/** What a stop deadline is kept for: an item that holds the ticket of its pending stop deadline (0: none). @internal */
export interface StopItem {
  stopTicket: number;
}

/**
 * The stop deadlines of one timeout value, in the order they were added,
 * which is their due order: entry `i` is `items.at(i)`, the ticket it was
 * given (`tickets.at(i)`; an entry whose item no longer holds it was
 * cancelled, or added again later) and its due time (`dues.at(i)`, NaN until
 * the drain that added it ends). Entries are dropped in place, so the lists
 * are only ever cut short, never copied. (Lists in chunks, not arrays: a
 * 100,000-worker shutdown spent 43 ms pushing three arrays past the
 * large-object size, see chunked.ts.)
 */
class StopQueue<T extends StopItem> {
  readonly timeout: number;
  readonly items = new Chunked<T | undefined>();
  readonly tickets = new Chunked<number>();
  readonly dues = new Chunked<number>();
  head = 0;
  /** The first entry the running drain added (the entries from here on have no due time yet). */
  unstamped = 0;
  /** Whether the running drain has added entries, to be stamped when it ends. */
  open = false;

  constructor(timeout: number) {
    this.timeout = timeout;
  }

  get size(): number {
    return this.items.length - this.head;
  }

  /** Whether entry `i` is still pending: its item holds its ticket. */
  pendingAt(i: number): boolean {
    return (this.items.at(i) as T).stopTicket === this.tickets.at(i);
  }

  add(item: T, ticket: number): void {
    this.items.push(item);
    this.tickets.push(ticket);
    this.dues.push(Number.NaN);
  }

  /**
   * The entries added since the last stamp (by the drain that is ending, or
   * before `expired` in it) are due `timeout` ms after `now`. Returns that
   * due time if one of them is still pending, else +Infinity: a drain that
   * cancelled all it added (the engine's own manifold, stopped and settled
   * in one drain) arms no timer.
   */
  stamp(now: number): number {
    const due = now + this.timeout;
    const start = this.unstamped;
    const end = this.items.length;
    // No loop over the entries here: one that ran over 100,000 of them was
    // compiled on-stack and then, in a layered shutdown (a drain or two per
    // stop), left by a deoptimization at nearly every drain (measured).
    this.dues.fill(start, end, due);
    this.unstamped = end;
    this.open = false;
    return this.#firstPending(start, end) < end ? due : Number.POSITIVE_INFINITY;
  }

  /** The first pending entry from `start` on (the first one, unless cancelled), or `end`. */
  #firstPending(start: number, end: number): number {
    let at = start;
    while (at < end && !this.pendingAt(at)) at++;
    return at;
  }

  /** Whether the head entry has `ticket` (tickets are unique: this is that entry). */
  headHas(ticket: number): boolean {
    return this.head < this.tickets.length && this.tickets.at(this.head) === ticket;
  }

  /** Takes the head entry off; its place is cleared for the GC. */
  shift(): void {
    this.items.set(this.head++, undefined);
    // A deadline cancelled in the drain that added it goes before it is stamped.
    if (this.unstamped < this.head) this.unstamped = this.head;
    // Once more than 1,024 entries went and they are most of the lists (always so when it is empty), the rest move to
    // the front. Not at every emptying: a chain's shutdown empties its queue at every stop, and three new lists each
    // time cost 19 ms of a 100k chain's kill (A/B in one process, 10 runs each: min 173 -> 154 ms).
    if (this.head > 1024 && this.head * 2 > this.items.length) this.#keep(() => true);
  }

  /** Keeps the entries from `head` on whose item still holds their ticket; returns how many it dropped. */
  dropCancelled(): number {
    const before = this.size;
    this.#keep((i) => this.pendingAt(i));
    return before - this.size;
  }

  /** Moves the entries from `head` on that `keep` accepts (by index) to the front, in order, and cuts the lists there. */
  #keep(keep: (i: number) => boolean): void {
    const { items, tickets, dues } = this;
    let kept = 0;
    let unstamped = -1;
    for (let i = this.head; i < items.length; i++) {
      if (i === this.unstamped) unstamped = kept;
      if (!keep(i)) continue;
      // Entry i is read before anything is written at i (kept <= i).
      items.set(kept, items.at(i));
      tickets.set(kept, tickets.at(i));
      dues.set(kept, dues.at(i));
      kept++;
    }
    this.unstamped = unstamped < 0 ? kept : unstamped;
    items.truncate(kept);
    tickets.truncate(kept);
    dues.truncate(kept);
    this.head = 0;
  }
}

/** @internal */
export class Deadlines<T extends StopItem> {
  readonly #clock: Clock;
  readonly #now: () => number;
  readonly #onTimer: (generation: number) => void;
  /** Per timeout value: its stop deadlines in due order. */
  readonly #queues = new Map<number, StopQueue<T>>();
  /** The queue added to last: most stops share one timeout, and this saves a lookup per stop. */
  #lastQueue: StopQueue<T> | undefined = undefined;
  /** Queues the running drain added to: the first `#openCount` (a count: setting an array's length costs ~40 ns, and a chain's shutdown ends a drain per stop). */
  readonly #openQueues: StopQueue<T>[] = [];
  #openCount = 0;
  /** The last ticket given (never reused while an entry may hold it: they start again from 1 when `clear` has dropped every entry). */
  #ticket = 0;
  /** Stop entries held whose item no longer holds their ticket (cancelled, not yet dropped). */
  #stopsCancelled = 0;
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
    if (!queue.open) {
      queue.open = true;
      this.#openQueues[this.#openCount++] = queue;
    }
    const ticket = ++this.#ticket;
    queue.add(item, ticket);
    item.stopTicket = ticket;
    this.#pending++;
  }

  #queue(timeout: number): StopQueue<T> {
    const last = this.#lastQueue;
    if (last !== undefined && last.timeout === timeout) return last;
    let queue = this.#queues.get(timeout);
    if (queue === undefined) {
      queue = new StopQueue<T>(timeout);
      this.#queues.set(timeout, queue);
    }
    this.#lastQueue = queue;
    return queue;
  }

  /** Whether `item` has a stop deadline pending. */
  hasStop(item: T): boolean {
    return item.stopTicket !== 0;
  }

  /** Cancels `item`'s stop deadline, if it has one. */
  cancelStop(item: T): void {
    const ticket = item.stopTicket;
    if (ticket === 0) return;
    item.stopTicket = 0;
    this.#pending--;
    // Workers mostly stop in the order they were killed: the entry is then
    // its queue's head, taken off now rather than left to be dropped later,
    // which reads each entry's item again (a cache miss: a fan-out shutdown
    // of 100,000 workers spent ~20 ms dropping them, measured).
    const queue = this.#lastQueue;
    if (queue !== undefined && queue.headHas(ticket)) {
      queue.shift();
      return;
    }
    this.#stopsCancelled++;
    this.#dropCancelledIfMost();
  }

  /** Cancelled entries are most of those held: drop them, so memory stays proportional to the deadlines pending. */
  #dropCancelledIfMost(): void {
    if (this.#stopsCancelled <= Math.max(1024, 2 * this.#pending)) return;
    for (const queue of this.#queues.values()) this.#stopsCancelled -= queue.dropCancelled();
  }

  /**
   * Gives the stop deadlines the ending drain added their due time, from one
   * clock read, and arms the timer for them. The loop calls it when a drain
   * ends (through {@link Deadlines.tidy}); `expired` calls it first.
   */
  stamp(): void {
    if (this.#openCount === 0) return;
    const now = this.#now();
    for (let i = 0; i < this.#openCount; i++) {
      const due = (this.#openQueues[i] as StopQueue<T>).stamp(now);
      if (due < this.#timerDue) this.#arm(due);
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
    for (const queue of this.#queues.values()) next = Math.min(next, this.#expireStops(queue, now, stops));
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

  /** Takes the passed entries off the head of `queue` (their items into `stops`), and the cancelled ones before them; returns the next due time. */
  #expireStops(queue: StopQueue<T>, now: number, stops: T[]): number {
    while (queue.size > 0) {
      if (!queue.pendingAt(queue.head)) {
        this.#stopsCancelled--;
      } else {
        const due = queue.dues.at(queue.head);
        if (due > now) return due;
        const item = queue.items.at(queue.head) as T;
        item.stopTicket = 0;
        this.#pending--;
        stops.push(item);
      }
      queue.shift();
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
    for (const queue of this.#queues.values()) stored += queue.size;
    return stored + this.#heap.size;
  }

  /** At the end of a loop turn: stamps the turn's stop deadlines; with nothing pending, drops every entry and the timer. */
  tidy(): void {
    this.stamp();
    // Also here: pending deadlines of other kinds (a heartbeat's) may have gone since the last cancelled stop.
    this.#dropCancelledIfMost();
    if (this.#pending === 0 && (this.#timer !== undefined || this.#queues.size > 0 || this.#heap.size > 0)) this.clear();
  }

  /** Forgets every deadline (items forget their tickets) and clears the timer. */
  clear(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Number.POSITIVE_INFINITY;
    for (const queue of this.#queues.values()) {
      for (let i = queue.head; i < queue.items.length; i++) if (queue.pendingAt(i)) (queue.items.at(i) as T).stopTicket = 0;
    }
    this.#queues.clear();
    this.#lastQueue = undefined;
    this.#openQueues.length = 0;
    this.#openCount = 0;
    this.#ticket = 0;
    this.#stopsCancelled = 0;
    // Marked cancelled, so that cancelling one later (a stuck worker's heartbeat, once it stops) changes no count.
    this.#heap.cancelAll();
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

  cancelAll(): void {
    for (const deadline of this.#items) deadline.cancelled = true;
  }

  /** A heap of the entries not cancelled. */
  withoutCancelled(): DeadlineHeap<T> {
    const heap = new DeadlineHeap<T>();
    for (const deadline of this.#items) if (!deadline.cancelled) heap.push(deadline);
    return heap;
  }
}

// A stop-deadline queue (and its three `Chunked` lists) exists only while workers are being stopped (shapes.ts).
keepShape(new StopQueue(0));
