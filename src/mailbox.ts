/**
 * The loop's two queues and the drain that empties them.
 *
 * Messages (a start settled, a worker stopped, a timer fired, a kill) are
 * handled one at a time, in order. Between messages the drain takes one node
 * off the ready queue (starts with no delay never go through a timer). A
 * message posted while a drain is running, for example by user code that a
 * handler called, is only queued: no handler ever runs inside another.
 *
 * Restarts with no delay (after a failure or a bounce with errorDelay or
 * bounceDelay 0) wait for the next turn of the event loop (`setImmediate`,
 * which is not a timer) before they join the ready queue: a start that fails
 * at once, again and again, must never keep the drain (or the microtask
 * queue) busy forever and starve `kill()`, timers and I/O.
 */

import { CHUNK } from "./chunked.js";

/** @internal */
export interface MailboxHandlers<M, N> {
  /** Handles one message; may post more and push ready nodes. */
  message(message: M): void;
  /** Handles one node taken off the ready queue. */
  ready(node: N): void;
  /** A handler threw: the mailbox carries on with the next item. */
  crashed(what: string, error: unknown): void;
  /** Runs after each drain, once both queues are empty. */
  idle(): void;
}

/** @internal */
export class Mailbox<M extends { kind: string }, N> {
  readonly #handlers: MailboxHandlers<M, N>;
  readonly #messages = new Queue<M>();
  readonly #ready = new Queue<N>();
  #deferred: N[] = [];
  #draining = false;
  #drainScheduled = false;
  #deferredScheduled = false;

  constructor(handlers: MailboxHandlers<M, N>) {
    this.#handlers = handlers;
  }

  /** Queues `message` and, unless a drain is running, drains now (messages and starts). */
  post(message: M): void {
    this.#messages.push(message);
    if (!this.#draining) this.#drain(true);
  }

  /**
   * For public calls (`uninstall()`, `kill()`): queues `message` and, unless a
   * drain is running, handles messages now but leaves ready nodes to the next
   * microtask, so that no start function runs inside the caller's call.
   */
  postFromCaller(message: M): void {
    this.#messages.push(message);
    if (!this.#draining) this.#drain(false);
  }

  /** Queues `message` for the running drain (for handlers: never drains re-entrantly). */
  enqueue(message: M): void {
    this.#messages.push(message);
  }

  /**
   * Queues a node whose start is due. Outside a drain this schedules one in a
   * microtask, so that a batch of synchronous installs is queued whole before
   * any start function runs (and starts in dependency order).
   */
  pushReady(node: N): void {
    this.#ready.push(node);
    this.#scheduleDrain();
  }

  /** Queues a restart for the ready queue of the next event-loop turn. */
  pushNextTurn(node: N): void {
    this.#deferred.push(node);
    if (this.#deferredScheduled) return;
    this.#deferredScheduled = true;
    setImmediate(() => {
      this.#deferredScheduled = false;
      const due = this.#deferred;
      this.#deferred = [];
      for (const item of due) this.#ready.push(item);
      this.#drain(true);
    });
  }

  #scheduleDrain(): void {
    if (this.#draining || this.#drainScheduled) return;
    this.#drainScheduled = true;
    queueMicrotask(() => {
      this.#drainScheduled = false;
      this.#drain(true);
    });
  }

  #drain(startsToo: boolean): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (;;) {
        // One item per iteration, each in its own try: a handler that throws
        // must not stop the ones after it.
        if (this.#messages.size > 0) {
          const message = this.#messages.shift();
          try {
            this.#handlers.message(message);
          } catch (error) {
            this.#handlers.crashed(message.kind, error);
          }
        } else if (startsToo && this.#ready.size > 0) {
          const node = this.#ready.shift();
          try {
            this.#handlers.ready(node);
          } catch (error) {
            this.#handlers.crashed("ready", error);
          }
        } else {
          break;
        }
      }
      this.#messages.trim();
      this.#ready.trim();
    } finally {
      this.#draining = false;
    }
    if (this.#ready.size > 0) this.#scheduleDrain();
    this.#handlers.idle();
  }
}

/**
 * A first-in-first-out queue in chunks of up to CHUNK (4,096) items, each
 * reused from its start once emptied. A drain that handles 100,000 messages never
 * holds more than a few at once, and one chunk serves it without allocating
 * (an array pushed at the end and read from a moving head made about 24 B
 * of garbage per message, measured). A burst (a cold start's ready queue:
 * 100,000 nodes at once in a fan-out) adds chunks rather than growing one
 * array: past 128 KB an array is mapped fresh at each growth, and a fresh
 * page costs a page fault (see chunked.ts; a ring doubling to 131,072 slots
 * cost a fan-out cold start 8 ms, measured).
 * @internal
 */
export class Queue<T> {
  #head: QueueChunk<T> = new QueueChunk<T>();
  #tail: QueueChunk<T> = this.#head;
  /** An emptied chunk kept for the next one needed, so that a queue hovering at a chunk boundary allocates nothing. */
  #spare: QueueChunk<T> | undefined = undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    if (this.#tail.end === CHUNK) {
      const chunk = this.#spare ?? new QueueChunk<T>();
      this.#spare = undefined;
      this.#tail.next = chunk;
      this.#tail = chunk;
    }
    this.#tail.add(item);
    this.#size++;
  }

  /** The oldest item, removed; only while `size > 0`. */
  shift(): T {
    const head = this.#head;
    const item = head.take();
    this.#size--;
    if (head.start === head.end) {
      if (head.next === undefined) {
        head.start = head.end = 0; // empty: the chunk is used again from its start
      } else {
        this.#head = head.next;
        head.start = head.end = 0;
        head.next = undefined;
        this.#spare = head;
      }
    }
    return item;
  }

  /** Once empty, gives back the items a burst left in the chunk (a few KB are kept for the next burst). */
  trim(): void {
    if (this.#size === 0) {
      this.#spare = undefined;
      this.#head.shrink();
    }
  }
}

/** One chunk of a {@link Queue}: its items from `start` to `end`, and the next chunk. */
class QueueChunk<T> {
  /** Written in order from 0, so never holey; grown by push up to CHUNK items. */
  readonly items: (T | undefined)[] = [];
  start = 0;
  end = 0;
  next: QueueChunk<T> | undefined = undefined;

  add(item: T): void {
    if (this.end < this.items.length) this.items[this.end] = item;
    else this.items.push(item);
    this.end++;
  }

  take(): T {
    const item = this.items[this.start] as T;
    this.items[this.start++] = undefined;
    return item;
  }

  /** Once empty, drops the slots past MAX_IDLE_CHUNK. */
  shrink(): void {
    if (this.items.length > MAX_IDLE_CHUNK) this.items.length = MAX_IDLE_CHUNK;
  }
}

/** An empty queue keeps this many slots of its chunk for the next burst. */
const MAX_IDLE_CHUNK = 1024;
