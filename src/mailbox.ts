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
  #messages: (M | undefined)[] = [];
  #messageHead = 0;
  #ready: (N | undefined)[] = [];
  #readyHead = 0;
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
        if (this.#messageHead < this.#messages.length) {
          const message = this.#messages[this.#messageHead] as M;
          this.#messages[this.#messageHead++] = undefined;
          try {
            this.#handlers.message(message);
          } catch (error) {
            this.#handlers.crashed(message.kind, error);
          }
        } else if (startsToo && this.#readyHead < this.#ready.length) {
          const node = this.#ready[this.#readyHead] as N;
          this.#ready[this.#readyHead++] = undefined;
          try {
            this.#handlers.ready(node);
          } catch (error) {
            this.#handlers.crashed("ready", error);
          }
        } else {
          break;
        }
      }
      this.#messages.length = 0;
      this.#messageHead = 0;
      if (this.#readyHead === this.#ready.length) {
        this.#ready.length = 0;
        this.#readyHead = 0;
      }
    } finally {
      this.#draining = false;
    }
    if (this.#readyHead < this.#ready.length) this.#scheduleDrain();
    this.#handlers.idle();
  }
}
