/**
 * The engine's event stream, fanned out to `/events` clients and kept in a
 * short history for late clients and cause chains.
 *
 * Why events are written to clients from `setImmediate` rather than from the
 * engine's `next` call: the engine emits synchronously, inside its loop. The
 * subscriber here only appends to the history and to a pending list (no
 * serialisation, no I/O), so however many clients are attached, and however
 * slow, the engine pays the same small constant per event. Serialising and
 * writing happen afterwards, once per batch, each message serialised once for
 * all clients.
 */
import type { ServerResponse } from "node:http";
import { EventHistory } from "./history.js";
import { SseClient } from "./sse-client.js";
import type { IntrospectableEngine, IntrospectionEvent } from "./types.js";

/** Settings of an {@link EventHub}. @internal */
export interface EventHubOptions {
  /** Events kept for replay and cause chains; 0 subscribes only while a client is connected. */
  readonly history: number;
  /** Messages queued per blocked client before the oldest are dropped. */
  readonly clientBuffer: number;
  /** Milliseconds between keep-alive comments to connected clients; 0 for none. */
  readonly keepAlive: number;
}

/**
 * A batch of up to this many events goes to a client in one write; a bigger
 * one message by message, so that a client that cannot take it all is held
 * to its bounded queue (see sse-client.ts), and the rest is not serialised
 * for it, rather than handed a burst of any size.
 */
const MAX_BATCH = 512;

/** What the SSE clients are told when the stream ends. */
const END = "event: end\ndata: {}\n\n";

/** Errors become their message and bigints strings, so any event serialises. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return value.message;
  if (typeof value === "bigint") return value.toString();
  return value;
}

/** One SSE message for `event`: its id as the SSE id, the event as JSON data on one line. */
export function eventMessage(event: IntrospectionEvent): string {
  let json: string;
  try {
    json = JSON.stringify(event, replacer);
  } catch {
    // A field that cannot be serialised (a cycle): keep what every event has.
    json = JSON.stringify({ type: event.type, id: event.id, time: event.time, name: event.name, cause: event.cause }, replacer);
  }
  // JSON.stringify leaves U+2028/U+2029 raw; SSE splits lines only on CR and LF, which JSON always escapes.
  return `id: ${event.id}\ndata: ${json}\n\n`;
}

function messageOf(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return "an unreadable error";
  }
}

/** Fans the engine's events out to SSE clients. @internal */
export class EventHub {
  readonly #engine: IntrospectableEngine;
  readonly #options: EventHubOptions;
  /** The last events, for replay and cause chains. */
  readonly history: EventHistory;
  readonly #clients = new Map<SseClient, { lastId: number }>();
  #subscription: { unsubscribe(): void } | undefined;
  #unavailable: string | undefined;
  #ended = false;
  #endError: string | undefined;
  #closed = false;
  #pending: IntrospectionEvent[] = [];
  #flushScheduled = false;
  #keepAliveTimer: ReturnType<typeof setInterval> | undefined;

  constructor(engine: IntrospectableEngine, options: EventHubOptions) {
    this.#engine = engine;
    this.#options = options;
    this.history = new EventHistory(options.history);
    // With a history, listen from now on, so that chains and replays cover what happened before the first client.
    if (options.history > 0) this.#subscribe();
  }

  /** Why there are no events (no `engine.events`, or reading it threw), once tried. */
  get unavailable(): string | undefined {
    return this.#unavailable;
  }

  /** True once the engine's stream has ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Connected `/events` clients. */
  get clients(): number {
    return this.#clients.size;
  }

  /** The engine's event stream, or undefined (and {@link EventHub.unavailable} set) when it has none. */
  #source(): IntrospectableEngine["events"] & object | undefined {
    if (this.#unavailable !== undefined) return undefined;
    let source: unknown;
    try {
      source = this.#engine.events;
    } catch (error) {
      this.#unavailable = messageOf(error);
      return undefined;
    }
    if (source === undefined || source === null || typeof (source as { subscribe?: unknown }).subscribe !== "function") {
      this.#unavailable =
        "this engine has no event stream (engine.events is missing): use a version of manifold-engine whose Engine has `events`, or pass an object whose `events` is an rxjs Observable";
      return undefined;
    }
    return source as IntrospectableEngine["events"] & object;
  }

  /** True when the engine has an event stream (reading `engine.events` without subscribing: that costs the engine nothing). */
  probe(): boolean {
    return this.#subscription !== undefined || this.#ended || this.#source() !== undefined;
  }

  /** Subscribes if not yet subscribed; false when the engine has no usable event stream. */
  #subscribe(): boolean {
    if (this.#subscription !== undefined || this.#ended) return true;
    const source = this.#source();
    if (source === undefined) return false;
    try {
      const subscription = source.subscribe({
        next: (event) => this.#onEvent(event),
        error: (error) => this.#onEnd(messageOf(error)),
        complete: () => this.#onEnd(undefined),
      });
      // A stream that had already completed ends inside subscribe(): drop the subscription at once.
      if (this.#ended || this.#closed) subscription.unsubscribe();
      else this.#subscription = subscription;
    } catch (error) {
      this.#unavailable = `engine.events.subscribe() threw: ${messageOf(error)}`;
      return false;
    }
    return true;
  }

  #unsubscribe(): void {
    const subscription = this.#subscription;
    this.#subscription = undefined;
    try {
      subscription?.unsubscribe();
    } catch {
      // A broken subscription must not keep the server from closing.
    }
  }

  #onEvent(event: IntrospectionEvent): void {
    // Cheap checks only: this runs inside the engine's loop.
    if (event === null || typeof event !== "object" || typeof event.id !== "number") return;
    this.history.push(event);
    if (this.#clients.size === 0) return;
    this.#pending.push(event);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #onEnd(error: string | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#endError = error;
    this.#subscription = undefined;
    // Deliver what is pending first, then end every stream.
    setImmediate(() => {
      this.#flush();
      for (const client of [...this.#clients.keys()]) client.end(this.#endMessage());
    });
  }

  #endMessage(): string {
    return this.#endError === undefined ? END : `event: end\ndata: ${JSON.stringify({ error: this.#endError })}\n\n`;
  }

  #flush(): void {
    this.#flushScheduled = false;
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    const firstId = (pending[0] as IntrospectionEvent).id;
    const lastId = (pending[pending.length - 1] as IntrospectionEvent).id;
    // Each event is serialised once, and only if some client takes it now: a client that is not
    // reading gets the objects queued, serialised when (if ever) they are written.
    const messages: (string | undefined)[] = new Array<string | undefined>(pending.length);
    const message = (i: number): string => (messages[i] ??= eventMessage(pending[i] as IntrospectionEvent));
    let joined: Buffer | undefined;
    for (const [client, state] of this.#clients) {
      if (!client.blocked && state.lastId < firstId && pending.length <= MAX_BATCH) {
        // The usual case: a reading client that has none of them yet: one write for the batch, encoded once for all.
        if (joined === undefined) {
          let text = "";
          for (let i = 0; i < pending.length; i++) text += message(i);
          joined = Buffer.from(text, "utf8");
        }
        client.sendBatch(joined, pending);
        state.lastId = lastId;
        continue;
      }
      for (let i = 0; i < pending.length; i++) {
        const event = pending[i] as IntrospectionEvent;
        // Already sent in the replay this client got when it connected.
        if (event.id <= state.lastId) continue;
        state.lastId = event.id;
        if (client.blocked) client.enqueue(event);
        else client.send(message(i));
      }
    }
  }

  /**
   * Answers an `/events` request: SSE headers, a replay of the kept events
   * after `since` (if given), then live events until the stream ends, the
   * client leaves or the hub closes. Returns false, without touching `res`,
   * when there is no event stream (see {@link EventHub.unavailable}).
   */
  open(res: ServerResponse, since: number | undefined, headers: Record<string, string>): boolean {
    if (this.#closed || !this.#subscribe()) return false;
    res.writeHead(200, {
      ...headers,
      "Content-Type": "text/event-stream; charset=utf-8",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
    });
    res.write("retry: 3000\n\n");
    let lastId = -Infinity;
    if (since !== undefined) {
      const { events, gap } = this.history.since(since);
      // Some events after `since` are no longer kept: say so, with the oldest id still kept.
      if (gap) res.write(`event: gap\ndata: ${JSON.stringify({ since, oldestKept: events[0]?.id ?? null })}\n\n`);
      for (const event of events) res.write(eventMessage(event));
      lastId = events.length > 0 ? (events[events.length - 1] as IntrospectionEvent).id : since;
      // Where the replay ends and live events begin (the page applies only live ones to its report).
      res.write(`event: replayed\ndata: ${JSON.stringify({ lastId: events.length > 0 ? lastId : null })}\n\n`);
    } else {
      // Live only: nothing already kept is sent, even if still pending for the other clients.
      const newest = this.history.newest;
      if (newest !== undefined) lastId = newest.id;
    }
    if (this.#ended) {
      res.end(this.#endMessage());
      return true;
    }
    const client = new SseClient(res, this.#options.clientBuffer, (gone) => this.#remove(gone), eventMessage);
    this.#clients.set(client, { lastId });
    this.#startKeepAlive();
    return true;
  }

  #remove(client: SseClient): void {
    this.#clients.delete(client);
    if (this.#clients.size === 0) {
      this.#stopKeepAlive();
      // Without a history, nobody needs the events now: let the engine go back to building none.
      if (this.#options.history === 0) this.#unsubscribe();
    }
  }

  #startKeepAlive(): void {
    if (this.#keepAliveTimer !== undefined || this.#options.keepAlive <= 0) return;
    this.#keepAliveTimer = setInterval(() => {
      for (const client of this.#clients.keys()) client.send(": keep-alive\n\n");
    }, this.#options.keepAlive);
    this.#keepAliveTimer.unref();
  }

  #stopKeepAlive(): void {
    if (this.#keepAliveTimer !== undefined) clearInterval(this.#keepAliveTimer);
    this.#keepAliveTimer = undefined;
  }

  /** Ends every stream (telling clients not to come back) and stops listening to the engine. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#stopKeepAlive();
    this.#pending = [];
    for (const client of [...this.#clients.keys()]) client.end(`event: end\ndata: ${JSON.stringify({ reason: "introspection closed" })}\n\n`);
  }
}
