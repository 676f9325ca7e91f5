/**
 * Reading causes: from any event back to its root, as a list or as one line
 * of text ("started B <- starting B <- scheduled B (input-changed) <- …").
 * Pure functions over events the caller kept; no rxjs needed.
 */
import type { EngineEvent } from "./event-types.js";

/**
 * One event as a few words: its type, the manifold, and what matters about
 * it, e.g. `stopped A (error: connection reset)`,
 * `scheduled B (input-changed, 10 ms)`, `bounced B (input A)`.
 */
export function describeEvent(event: EngineEvent): string {
  switch (event.type) {
    case "engine-stopping":
      return "engine stopping";
    case "engine-stopped":
      return event.error === undefined ? "engine stopped" : `engine stopped (${event.error})`;
    case "stopped":
      return `stopped ${event.name} (${event.outcome}${event.error === undefined ? "" : `: ${event.error}`})`;
    case "scheduled":
      return `scheduled ${event.name} (${event.reason}, ${event.delay} ms)`;
    case "bounced":
      return `bounced ${event.name} (input ${event.input})`;
    case "fatal":
      return `fatal ${event.name} (${event.error})`;
    case "started":
      return `started ${event.name} (#${event.startCount})`;
    case "heartbeat-missed":
      return `heartbeat missed ${event.name} (silent ${event.silentFor} ms, ${event.action})`;
    case "progress":
      return `progress ${event.name} (${event.message})`;
    case "quarantined":
      return `quarantined ${event.name} (${event.failures} failures${event.until === undefined ? "" : `, until ${event.until}`})`;
    case "released":
      return `released ${event.name} (by ${event.by})`;
    case "stall":
      return `event loop stalled (${event.lateMs} ms late)`;
    default:
      return `${event.type} ${event.name}`;
  }
}

/**
 * The chain of causes of event `id`: that event first, then its cause, and so
 * on back to the root (an event with no cause, or whose cause is not among
 * `events`, for instance because it happened before you subscribed).
 * `events` may be any iterable of events of one engine, or a map by id.
 * @throws RangeError when `id` is not among `events`.
 */
export function causeChain(events: Iterable<EngineEvent> | ReadonlyMap<number, EngineEvent>, id: number): EngineEvent[] {
  const byId = isMap(events) ? events : new Map([...events].map((event) => [event.id, event] as const));
  let event = byId.get(id);
  if (event === undefined) throw new RangeError(`causeChain: no event with id ${id} among the ${byId.size} given; keep the events you want to explain`);
  const chain: EngineEvent[] = [];
  const seen = new Set<number>();
  while (event !== undefined && !seen.has(event.id)) {
    chain.push(event);
    seen.add(event.id);
    event = event.cause === undefined ? undefined : byId.get(event.cause);
  }
  return chain;
}

/**
 * The chain of causes of event `id` as one line, newest first:
 * `started B (#2) <- starting B <- scheduled B (input-changed, 10 ms) <- bounced B (input A) <- started A (#2) <- … <- stopped A (error: connection reset)`.
 * @throws RangeError when `id` is not among `events`.
 */
export function formatCauseChain(events: Iterable<EngineEvent> | ReadonlyMap<number, EngineEvent>, id: number): string {
  return causeChain(events, id).map(describeEvent).join(" <- ");
}

function isMap(events: Iterable<EngineEvent> | ReadonlyMap<number, EngineEvent>): events is ReadonlyMap<number, EngineEvent> {
  return events instanceof Map;
}
