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
 * A first-in-first-out queue in a ring of power-of-two size. A drain that
 * handles 100,000 messages never holds more than a few at once: an array
 * that is pushed at the end and read from a moving head grew to 100,000
 * slots by copying, about 24 B of garbage per message (measured); the ring
 * stays at its high-water mark and allocates nothing.
 * @internal
 */
class Queue<T> {
  #items: (T | undefined)[] = new Array<T | undefined>(MIN_RING).fill(undefined);
  #head = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    if (this.#size === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#size) & (this.#items.length - 1)] = item;
    this.#size++;
  }

  /** The oldest item, removed; only while `size > 0`. */
  shift(): T {
    const item = this.#items[this.#head] as T;
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#size--;
    return item;
  }

  /** Once empty, gives back a ring that a burst (a cold start's ready queue) made large. */
  trim(): void {
    if (this.#size === 0 && this.#items.length > MAX_IDLE_RING) {
      this.#items = new Array<T | undefined>(MIN_RING).fill(undefined);
      this.#head = 0;
    }
  }

  #grow(): void {
    const old = this.#items;
    const items = new Array<T | undefined>(old.length * 2).fill(undefined);
    for (let i = 0; i < this.#size; i++) items[i] = old[(this.#head + i) & (old.length - 1)];
    this.#items = items;
    this.#head = 0;
  }
}

const MIN_RING = 16;
/** A ring larger than this is given back once empty (a few KB are kept for the next burst). */
const MAX_IDLE_RING = 1024;
