/**
 * The last N engine events, kept for clients that connect late (`/events`
 * replays from `Last-Event-ID` or `?since=`) and for cause chains (`/chain`).
 *
 * Why a ring ordered by id rather than a map: memory stays exactly N events
 * whatever the engine's size, storing an event is two array writes, and
 * since the engine's ids increase, finding an event by id is a binary search.
 * A cause older than the ring is reported as such rather than kept forever.
 */
import { describeEvent } from "../cause-chain.js";
import type { EngineEvent } from "../event-types.js";
import type { IntrospectionEvent } from "./types.js";

/** A chain of causes, newest first, and whether it reached an event with no cause. */
export interface CauseChain {
  /** The events, starting with the one asked about, each followed by its cause. */
  readonly events: readonly IntrospectionEvent[];
  /** True when the last event has no cause; false when the chain was cut (too long, or older than the history). */
  readonly complete: boolean;
  /** Why the chain stops short, when it does. */
  readonly cut?: string;
}

/** Chains longer than this are cut: a restart loop can link every restart to the previous failure. */
const MAX_CHAIN = 64;

/** A fixed-capacity ring of events ordered by id. @internal */
export class EventHistory {
  readonly #events: (IntrospectionEvent | undefined)[];
  #start = 0;
  #size = 0;
  /** The id of the newest event the ring has dropped. */
  #lastEvicted: number | undefined;

  /** @param capacity - how many events to keep; 0 keeps none. */
  constructor(capacity: number) {
    this.#events = new Array<IntrospectionEvent | undefined>(capacity);
  }

  /** Keeps `event`, dropping the oldest when full. An id not above the newest (a misbehaving source) is ignored. */
  push(event: IntrospectionEvent): void {
    const capacity = this.#events.length;
    if (capacity === 0) return;
    const newest = this.#at(this.#size - 1);
    if (newest !== undefined && !(event.id > newest.id)) return;
    if (this.#size < capacity) {
      this.#events[(this.#start + this.#size) % capacity] = event;
      this.#size++;
    } else {
      this.#lastEvicted = (this.#events[this.#start] as IntrospectionEvent).id;
      this.#events[this.#start] = event;
      this.#start = (this.#start + 1) % capacity;
    }
  }

  /** The newest kept event. */
  get newest(): IntrospectionEvent | undefined {
    return this.#at(this.#size - 1);
  }

  /** How many events are kept. */
  get size(): number {
    return this.#size;
  }

  #at(index: number): IntrospectionEvent | undefined {
    if (index < 0 || index >= this.#size) return undefined;
    return this.#events[(this.#start + index) % this.#events.length];
  }

  /** The index of the first kept event whose id is greater than `id`. */
  #firstAfter(id: number): number {
    let low = 0;
    let high = this.#size;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.#at(mid) as IntrospectionEvent).id <= id) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** The kept event with this id. */
  get(id: number): IntrospectionEvent | undefined {
    const index = this.#firstAfter(id - 1);
    const event = this.#at(index);
    return event !== undefined && event.id === id ? event : undefined;
  }

  /**
   * The kept events with an id greater than `id`, oldest first, and whether
   * some events after `id` are no longer kept (the ring dropped them). The
   * engine's ids skip the times nobody listened, so how many were lost is not
   * known, only that some were.
   */
  since(id: number): { events: IntrospectionEvent[]; gap: boolean } {
    const events: IntrospectionEvent[] = [];
    for (let i = this.#firstAfter(id); i < this.#size; i++) events.push(this.#at(i) as IntrospectionEvent);
    return { events, gap: this.#lastEvicted !== undefined && this.#lastEvicted > id };
  }

  /** The newest kept event about `name` for which `accept` is true. */
  latest(name: string, accept: (event: IntrospectionEvent) => boolean): IntrospectionEvent | undefined {
    for (let i = this.#size - 1; i >= 0; i--) {
      const event = this.#at(i) as IntrospectionEvent;
      if (event.name === name && accept(event)) return event;
    }
    return undefined;
  }

  /** Follows `cause` from `event` back to an event with no cause, as far as the history reaches. */
  chain(event: IntrospectionEvent): CauseChain {
    const events: IntrospectionEvent[] = [event];
    let current = event;
    while (current.cause !== undefined && current.cause !== null) {
      if (events.length >= MAX_CHAIN) return { events, complete: false, cut: `longer than ${MAX_CHAIN} events` };
      const cause = current.cause < current.id ? this.get(current.cause) : undefined;
      if (cause === undefined) return { events, complete: false, cut: `event #${current.cause} is older than the kept history` };
      events.push(cause);
      current = cause;
    }
    return { events, complete: true };
  }
}

/** One event as a few words (the engine's `describeEvent`), for any event a stream may carry. */
export function describeAnyEvent(event: IntrospectionEvent): string {
  try {
    return describeEvent(event as EngineEvent);
  } catch {
    return event.type;
  }
}

/** A chain as one line, newest first, as `formatCauseChain` writes it: `started B (#2) <- starting B <- … <- stopped A (error: connection reset)`. */
export function describeChain(chain: CauseChain): string {
  const line = chain.events.map(describeAnyEvent).join(" <- ");
  return chain.complete ? line : `${line} <- … (${chain.cut ?? "cut"})`;
}
