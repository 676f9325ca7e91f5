/**
 * One `/events` client, and the slow-client policy.
 *
 * Policy: a client that does not keep up never holds the engine up and never
 * makes the process buffer without bound. Messages go straight to the socket
 * while it accepts them (a batch of up to 512 events in one write); once the
 * socket reports back-pressure (`write` returns false), they wait in a queue
 * of at most `capacity` messages. When the queue is full the oldest message
 * is dropped and counted; when the socket drains, the client first gets one
 * `dropped` message with that count (`event: dropped`, `data:
 * {"dropped":N}`), then the queued messages. A client therefore always sees
 * the newest events, and knows how many it missed. Disconnecting slow
 * clients was the alternative; dropping keeps a browser tab on a busy engine
 * useful. Queued events are kept as the engine's objects and serialised only
 * when they are written, so a client that never reads costs a queue push per
 * event and no serialisation.
 */
import type { ServerResponse } from "node:http";
import type { IntrospectionEvent } from "./types.js";

/** What waits in a client's queue: an event (serialised when written) or a ready message. */
type Item = IntrospectionEvent | string;

/** A bounded queue that drops its oldest entry when full. */
class DroppingQueue {
  #items: Item[] = [];
  #head = 0;

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Adds `item`; returns true when the oldest item had to be dropped to make room. */
  push(item: Item): boolean {
    if (this.capacity <= 0) return true;
    let dropped = false;
    if (this.length >= this.capacity) {
      this.#head++;
      dropped = true;
    }
    this.#items.push(item);
    // Compact now and then rather than shift() on every drop (O(n) each).
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return dropped;
  }

  shift(): Item | undefined {
    if (this.length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = "";
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    }
    return item;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

/** One Server-Sent Events response, with its bounded queue. @internal */
export class SseClient {
  readonly #res: ServerResponse;
  readonly #queue: DroppingQueue;
  readonly #onClose: (client: SseClient) => void;
  readonly #serialize: (event: IntrospectionEvent) => string;
  #dropped = 0;
  #blocked = false;
  #closed = false;

  /**
   * @param res - the response, headers already sent.
   * @param capacity - messages kept while the socket is blocked.
   * @param onClose - called once when the client goes away or is ended.
   * @param serialize - an event as its SSE message, for queued events.
   */
  constructor(res: ServerResponse, capacity: number, onClose: (client: SseClient) => void, serialize: (event: IntrospectionEvent) => string) {
    this.#res = res;
    this.#queue = new DroppingQueue(capacity);
    this.#onClose = onClose;
    this.#serialize = serialize;
    res.on("drain", () => this.#drain());
    res.on("close", () => this.#finish());
    // A socket error ends the response; "close" follows and cleans up.
    res.on("error", () => undefined);
  }

  /** Messages dropped and not yet reported to the client. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Messages waiting for the socket to drain. */
  get queued(): number {
    return this.#queue.length;
  }

  /** True once the response has ended or the client went away. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True while the socket reports back-pressure: what is sent now waits in the queue. */
  get blocked(): boolean {
    return this.#blocked;
  }

  /** Queues `event` (to be serialised when written); only while blocked, else use send or sendBatch. */
  enqueue(event: IntrospectionEvent): void {
    if (this.#closed) return;
    if (this.#queue.push(event)) this.#dropped++;
  }

  /** Sends one complete SSE message ("id: …\ndata: …\n\n"), or queues it while the socket is blocked. */
  send(message: string): void {
    if (this.#closed) return;
    if (this.#blocked) {
      if (this.#queue.push(message)) this.#dropped++;
      return;
    }
    this.#write(message);
  }

  /**
   * Sends several events: `joined` (their messages, concatenated) in one
   * write while the socket accepts it, or each event into the queue while it
   * is blocked (so that drops are counted per event).
   */
  sendBatch(joined: Buffer, events: readonly IntrospectionEvent[]): void {
    if (this.#closed) return;
    if (!this.#blocked) {
      this.#write(joined);
      return;
    }
    for (const event of events) this.enqueue(event);
  }

  #write(message: string | Buffer): void {
    try {
      if (!this.#res.write(message)) this.#blocked = true;
    } catch {
      this.#finish();
    }
  }

  #drain(): void {
    this.#blocked = false;
    if (this.#dropped > 0) {
      const dropped = this.#dropped;
      this.#dropped = 0;
      this.#write(`event: dropped\ndata: ${JSON.stringify({ dropped })}\n\n`);
    }
    while (!this.#blocked && !this.#closed) {
      const next = this.#queue.shift();
      if (next === undefined) break;
      this.#write(typeof next === "string" ? next : this.#serialize(next));
    }
  }

  /** Ends the stream, after `last` (a final message) if given; queued messages are discarded. */
  end(last?: string): void {
    if (this.#closed) return;
    this.#queue.clear();
    try {
      this.#res.end(last);
    } catch {
      // Already gone.
    }
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.clear();
    this.#onClose(this);
  }
}
