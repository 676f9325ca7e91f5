/**
 * The loop's two queues and the drain that empties them.
 *
 * Messages (a start settled, a worker stopped, a timer fired, a kill) are
 * handled one at a time, in order. Between messages the drain takes one node
 * off the ready queue (starts with no delay never go through a timer). A
 * message posted while a drain is running, for example by user code that a
 * handler called, is only queued: no handler ever runs inside another.
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
  #draining = false;
  #drainScheduled = false;

  constructor(handlers: MailboxHandlers<M, N>) {
    this.#handlers = handlers;
  }

  /** Queues `message` and, unless a drain is running, drains now. */
  post(message: M): void {
    this.#messages.push(message);
    if (!this.#draining) this.#drain();
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
    if (this.#draining || this.#drainScheduled) return;
    this.#drainScheduled = true;
    queueMicrotask(() => {
      this.#drainScheduled = false;
      this.#drain();
    });
  }

  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (;;) {
        if (this.#messageHead < this.#messages.length) {
          const message = this.#messages[this.#messageHead] as M;
          this.#messages[this.#messageHead++] = undefined;
          this.#run(message.kind, () => this.#handlers.message(message));
        } else if (this.#readyHead < this.#ready.length) {
          const node = this.#ready[this.#readyHead] as N;
          this.#ready[this.#readyHead++] = undefined;
          this.#run("ready", () => this.#handlers.ready(node));
        } else {
          break;
        }
      }
      this.#messages.length = 0;
      this.#messageHead = 0;
      this.#ready.length = 0;
      this.#readyHead = 0;
    } finally {
      this.#draining = false;
    }
    this.#handlers.idle();
  }

  #run(what: string, handle: () => void): void {
    try {
      handle();
    } catch (error) {
      this.#handlers.crashed(what, error);
    }
  }
}
