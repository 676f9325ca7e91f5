/**
 * engine.events: the order and causes of events on every path, the stream's
 * semantics (hot, synchronous, completes, survives a throwing subscriber),
 * and the chain of causes rendered as text.
 */
import { config as rxConfig, type Subscription } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import {
  BounceError,
  causeChain,
  describeEvent,
  formatCauseChain,
  MissingError,
  UninstallError,
  valueWorker,
  type Engine,
  type EngineEvent,
} from "../src/index.js";
import { expectStillWorking, failOnUnhandledRejections, makeEngine, settle, stop, TestWorker, valueManifold, controlled } from "./fixtures.js";

failOnUnhandledRejections();

/** Every event of `engine` from now on, kept in order. */
function record(engine: Engine): { events: EngineEvent[]; subscription: Subscription; completed: () => boolean } {
  const events: EngineEvent[] = [];
  let completed = false;
  const subscription = engine.events.subscribe({ next: (event) => events.push(event), complete: () => (completed = true) });
  return { events, subscription, completed: () => completed };
}

/** Events as short text, for order checks. */
function brief(events: readonly EngineEvent[]): string[] {
  return events.map(describeEvent);
}

/** The last event matching `type` and `name`. */
function last(events: readonly EngineEvent[], type: EngineEvent["type"], name?: string): EngineEvent {
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i] as EngineEvent;
    if (event.type === type && (name === undefined || ("name" in event && event.name === name))) return event;
  }
  throw new Error(`no ${type} event${name === undefined ? "" : ` for ${name}`} among ${events.length}`);
}


function expectCausesValid(events: readonly EngineEvent[]): void {
  const ids = new Set<number>();
  for (const event of events) {
    if (event.cause !== undefined) expect(ids.has(event.cause), `cause of ${describeEvent(event)} is an earlier event`).toBe(true);
    ids.add(event.id);
  }
}

describe("engine.events: order and causes", () => {
  it("a cold start: installed, then each manifold starting and started in dependency order, each caused by the one before", async () => {
    const { engine } = makeEngine();
    const { events } = record(engine);
    engine.installAll({ a: valueManifold(1), b: valueManifold(2, ["a"]) });
    await settle();
    expect(brief(events)).toEqual(["installed a", "installed b", "starting a", "started a (#1)", "starting b", "started b (#1)"]);
    const ids = events.map((event) => event.id);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(new Set(ids).size).toBe(ids.length);
    expect(formatCauseChain(events, last(events, "started", "b").id)).toBe("started b (#1) <- starting b <- installed b");
    for (const event of events) expect(event.time).toBe("2026-01-01T00:00:00.000Z");
    await stop(engine);
  });

  it("a failure and its restart with backoff: stopped (error) is the root, scheduled (error) carries the delay", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000, backoffFactor: 2 });
    const { events } = record(engine);
    const a = controlled();
    engine.install("a", a.manifold);
    await settle();
    a.workers[0]?.fail(new Error("connection reset"));
    await settle();
    expect(brief(events.slice(-2))).toEqual(["stopped a (error: connection reset)", "scheduled a (error, 1000 ms)"]);
    expect(last(events, "stopped", "a").cause).toBeUndefined();
    await clock.advance(1000);
    a.workers[1]?.fail(new Error("connection reset"));
    await settle();
    expect(last(events, "scheduled", "a")).toMatchObject({ delay: 2000, reason: "error" });
    await clock.advance(2000);
    expect(formatCauseChain(events, last(events, "started", "a").id)).toBe(
      "started a (#3) <- starting a <- scheduled a (error, 2000 ms) <- stopped a (error: connection reset)",
    );
    expectCausesValid(events);
    await stop(engine);
  });

  it("a bounce through a chain: B restarted because A started again after A failed (the issue's example)", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 50, bounceDelay: 10 });
    const { events } = record(engine);
    const a = controlled();
    const b = controlled(["a"]);
    const c = controlled(["b"]);
    engine.installAll({ A: a.manifold, B: { ...b.manifold, inputs: ["A"] }, C: { ...c.manifold, inputs: ["B"] } });
    await settle();
    a.workers[0]?.fail(new Error("connection reset"));
    await settle();
    await clock.advance(50);
    await clock.advance(10);
    await settle();
    const startedB = last(events, "started", "B");
    expect(formatCauseChain(events, startedB.id)).toBe(
      "started B (#3) <- starting B <- scheduled B (input-changed, 10 ms) <- stopped B (killed) <- bounced B (input A) <- started A (#2) <- starting A <- scheduled A (error, 50 ms) <- stopped A (error: connection reset)",
    );
    // B and C restarted when A stopped (an input waiting out an error delay holds nobody back), and again when it started.
    expect(causeChain(events, last(events, "started", "C").id).at(-1)).toMatchObject({ type: "stopped", name: "A", outcome: "error" });
    expect(formatCauseChain(events, last(events, "bounced", "C").id)).toMatch(/^bounced C \(input B\) <- bounced B \(input A\) <- started A \(#2\)/);
    expect(b.workers.length).toBe(3);
    expect(c.workers.length).toBe(3);
    expectCausesValid(events);
    await stop(engine);
  });

  it("a diamond: both arms and the join are bounced by the root's restart, and the join starts exactly once more", async () => {
    const { engine } = makeEngine();
    const { events } = record(engine);
    const root = controlled();
    const join = controlled(["l", "r"]);
    engine.installAll({ root: root.manifold, l: valueManifold("l", ["root"]), r: valueManifold("r", ["root"]), join: join.manifold });
    await settle();
    const before = events.length;
    root.workers[0]?.fail(new BounceError("again"));
    await settle();
    const after = events.slice(before);
    const bounced = after.filter((event) => event.type === "bounced").map(describeEvent);
    expect(bounced.slice(0, 2).sort()).toEqual(["bounced l (input root)", "bounced r (input root)"]);
    // The join is bounced once, by whichever arm reached it first; the other arm finds it already restarting.
    expect(bounced.slice(2)).toHaveLength(1);
    expect(bounced[2]).toMatch(/^bounced join \(input [lr]\)$/);
    expect(after.filter((event) => event.type === "starting" && event.name === "join")).toHaveLength(1);
    expect(join.workers.length).toBe(2);
    expect(last(after, "stopped", "root")).toMatchObject({ outcome: "bounce" });
    expect(last(after, "scheduled", "root")).toMatchObject({ reason: "bounce" });
    expectCausesValid(events);
    await stop(engine);
  });

  it("MissingError, BounceError and UninstallError each give their outcome; an uninstall call gives uninstalled then a killed stop", async () => {
    const { engine } = makeEngine();
    const { events } = record(engine);
    const errors: Record<string, Error> = { m: new MissingError("no db"), b: new BounceError("again"), u: new UninstallError("done") };
    for (const name of Object.keys(errors)) {
      let calls = 0;
      engine.install(name, { inputs: [], start: () => (++calls === 1 ? Promise.reject(errors[name]) : valueWorker(name)) });
    }
    engine.install("gone", valueManifold(0));
    await settle();
    expect(last(events, "stopped", "m")).toMatchObject({ outcome: "missing", error: "no db" });
    expect(last(events, "stopped", "b")).toMatchObject({ outcome: "bounce" });
    expect(last(events, "stopped", "u")).toMatchObject({ outcome: "uninstall" });
    expect(last(events, "uninstalled", "u")).toBeDefined();
    await engine.uninstall("gone");
    const tail = brief(events.slice(-2));
    expect(tail).toEqual(["uninstalled gone", "stopped gone (killed)"]);
    expect(last(events, "stopped", "gone").cause).toBe(last(events, "uninstalled", "gone").id);
    await stop(engine);
  });

  it("a fatal error: fatal (worst), engine-stopping caused by it, every kill caused by engine-stopping, engine-stopped, then complete", async () => {
    const boom = new Error("disk on fire");
    const { engine } = makeEngine({ isFatal: (error) => error === boom });
    const { events, completed } = record(engine);
    const a = controlled();
    engine.installAll({ a: a.manifold, b: valueManifold(1, ["a"]) });
    await settle();
    a.workers[0]?.fail(boom);
    await expect(engine.wait()).rejects.toBe(boom);
    const fatal = last(events, "fatal", "a");
    expect(fatal).toMatchObject({ error: "disk on fire", worst: true });
    expect(fatal.cause).toBeUndefined();
    expect(last(events, "stopped", "a")).toMatchObject({ outcome: "fatal", cause: fatal.id });
    const stopping = last(events, "engine-stopping");
    expect(stopping.cause).toBe(fatal.id);
    expect(last(events, "stopped", "b")).toMatchObject({ outcome: "killed", cause: stopping.id });
    expect(events.at(-1)).toMatchObject({ type: "engine-stopped", error: "disk on fire", cause: stopping.id });
    expect(completed()).toBe(true);
    expectCausesValid(events);
  });

  it("shutdown: engine-stopping, dependents stopped before their inputs, engine-stopped last", async () => {
    const { engine } = makeEngine();
    const { events } = record(engine);
    engine.installAll({ a: valueManifold(1), b: valueManifold(2, ["a"]) });
    await settle();
    await stop(engine);
    expect(brief(events.slice(-4))).toEqual(["engine stopping", "stopped b (killed)", "stopped a (killed)", "engine stopped"]);
  });
});

describe("engine.events: the stream", () => {
  afterEach(() => {
    rxConfig.onUnhandledError = null;
  });

  it("is hot: a late subscriber gets only what happens after it subscribed", async () => {
    const { engine } = makeEngine();
    engine.install("a", valueManifold(1));
    await settle();
    const { events } = record(engine);
    engine.install("b", valueManifold(2));
    await settle();
    expect(brief(events)).toEqual(["installed b", "starting b", "started b (#1)"]);
    await stop(engine);
  });

  it("emits after the change is complete: report() inside a subscriber already shows it", async () => {
    const { engine } = makeEngine();
    const seen: string[] = [];
    engine.events.subscribe((event) => {
      if (event.type === "started") seen.push(engine.report().manifolds[event.name]?.state ?? "absent");
      if (event.type === "installed") seen.push(engine.report().manifolds[event.name]?.state ?? "absent");
    });
    engine.install("a", valueManifold(1));
    await settle();
    expect(seen).toEqual(["starting", "started"]);
    await stop(engine);
  });

  it("completes after engine-stopped, and at once for a subscriber that comes after the engine stopped", async () => {
    const { engine } = makeEngine();
    await stop(engine);
    let completed = false;
    const events: EngineEvent[] = [];
    engine.events.subscribe({ next: (event) => events.push(event), complete: () => (completed = true) });
    expect(completed).toBe(true);
    expect(events).toEqual([]);
  });

  it("a subscriber that throws breaks neither the engine nor the other subscribers; rxjs reports the error", async () => {
    const reported: unknown[] = [];
    rxConfig.onUnhandledError = (error) => reported.push(error);
    const { engine } = makeEngine();
    const throwing = engine.events.subscribe(() => {
      throw new Error("subscriber bug");
    });
    const { events } = record(engine);
    engine.install("a", valueManifold(1));
    await settle();
    expect(brief(events)).toEqual(["installed a", "starting a", "started a (#1)"]);
    await expectStillWorking(engine);
    await new Promise((resolve) => setTimeout(resolve, 0)); // rxjs reports from a timer of its own
    expect(reported.length).toBeGreaterThanOrEqual(3);
    expect((reported[0] as Error).message).toBe("subscriber bug");
    throwing.unsubscribe();
    await stop(engine);
  });

  it("subscribing and unsubscribing from inside a subscriber works; the last unsubscribe detaches the stream", async () => {
    const { engine } = makeEngine();
    const inner: EngineEvent[] = [];
    const outer: EngineEvent[] = [];
    let innerSubscription: Subscription | undefined;
    const subscription = engine.events.subscribe((event) => {
      outer.push(event);
      if (event.type === "installed" && innerSubscription === undefined) innerSubscription = engine.events.subscribe((e) => inner.push(e));
      if (event.type === "started") subscription.unsubscribe();
    });
    engine.install("a", valueManifold(1));
    await settle();
    expect(brief(outer)).toEqual(["installed a", "starting a", "started a (#1)"]);
    expect(brief(inner)).toEqual(["starting a", "started a (#1)"]);
    innerSubscription?.unsubscribe();
    engine.install("b", valueManifold(2));
    await settle();
    expect(outer).toHaveLength(3);
    // Nobody listens: the next subscriber's ids still increase.
    const { events } = record(engine);
    engine.install("c", valueManifold(3));
    await settle();
    expect(events[0]?.id).toBeGreaterThan(outer.at(-1)?.id ?? 0);
    await stop(engine);
  });

  it("causeChain refuses an id it was not given, and stops at a cause it does not have", () => {
    const events: EngineEvent[] = [
      { id: 5, time: "t", type: "starting", name: "a", cause: 4 },
      { id: 6, time: "t", type: "started", name: "a", startCount: 1, cause: 5 },
    ];
    expect(formatCauseChain(events, 6)).toBe("started a (#1) <- starting a");
    expect(() => causeChain(events, 7)).toThrow(/no event with id 7 among the 2 given/);
    expect(causeChain(new Map(events.map((event) => [event.id, event])), 5)).toEqual([events[0]]);
  });
});

describe("engine.events: costs nothing while nobody listens", () => {
  it("no event is built before the first subscription or between subscriptions: ids run on from the last one seen", async () => {
    const { engine, clock } = makeEngine();
    void engine.events; // read, but nobody subscribes: rxjs loaded, the stream not attached
    engine.install("early", valueManifold(0));
    await settle();
    const first = record(engine);
    engine.install("a", valueManifold(1));
    await settle();
    // Had an event been built for "early" (installed, starting, started), this would be 4.
    expect(first.events.map((event) => event.id)).toEqual([1, 2, 3]);
    first.subscription.unsubscribe();
    // A gap with nobody listening: changes, but no events built, so no ids used.
    engine.install("b", valueManifold(2, ["a"]));
    await clock.advance(100);
    await settle();
    const second = record(engine);
    engine.install("c", valueManifold(3));
    await settle();
    expect(second.events.map((event) => event.id)).toEqual([4, 5, 6]);
    expect(brief(second.events)).toEqual(["installed c", "starting c", "started c (#1)"]);
    await stop(engine);
  });

  it("each event's time is the engine clock's, as ISO 8601 UTC", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1500, backoffFactor: 0 });
    const { events } = record(engine);
    const a = controlled();
    engine.install("a", a.manifold);
    await settle();
    await clock.advance(250);
    a.workers[0]?.fail(new Error("down"));
    await settle();
    await clock.advance(1500);
    const times = events.map((event) => `${describeEvent(event)} @ ${event.time}`);
    expect(times).toEqual([
      "installed a @ 2026-01-01T00:00:00.000Z",
      "starting a @ 2026-01-01T00:00:00.000Z",
      "started a (#1) @ 2026-01-01T00:00:00.000Z",
      "stopped a (error: down) @ 2026-01-01T00:00:00.250Z",
      "scheduled a (error, 1500 ms) @ 2026-01-01T00:00:00.250Z",
      "starting a @ 2026-01-01T00:00:01.750Z",
      "started a (#2) @ 2026-01-01T00:00:01.750Z",
    ]);
    await stop(engine);
  });

  it("a subscriber may unsubscribe another in the middle of an event: the engine and the rest carry on", async () => {
    const { engine } = makeEngine();
    const kept: EngineEvent[] = [];
    let victim: Subscription | undefined;
    engine.events.subscribe((event) => {
      if (event.type === "starting") victim?.unsubscribe();
    });
    const dropped: EngineEvent[] = [];
    victim = engine.events.subscribe((event) => dropped.push(event));
    engine.events.subscribe((event) => kept.push(event));
    engine.install("a", valueManifold(1));
    await settle();
    expect(brief(dropped)).toEqual(["installed a"]);
    expect(brief(kept)).toEqual(["installed a", "starting a", "started a (#1)"]);
    await stop(engine);
  });
});

describe("engine.events: an UninstallError, in the order it happens", () => {
  it("the stopped (uninstall) event comes first, and causes the uninstalled event", async () => {
    const { engine } = makeEngine();
    const { events } = record(engine);
    engine.install("u", { inputs: [], start: () => Promise.reject(new UninstallError("done")) });
    await settle();
    expect(brief(events)).toEqual(["installed u", "starting u", "stopped u (uninstall: done)", "uninstalled u"]);
    expect(last(events, "uninstalled", "u").cause).toBe(last(events, "stopped", "u").id);
    expectCausesValid(events);
    await stop(engine);
  });
});
