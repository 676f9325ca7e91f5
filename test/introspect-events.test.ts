/**
 * /events (Server-Sent Events of engine.events) and /chain: delivery with ids,
 * replay from Last-Event-ID and ?since, gaps, the end of the stream, engines
 * without a stream, listening only while needed, the slow-client policy (a
 * client that never reads costs the engine nothing and loses the oldest
 * messages, counted), and cause chains of real restarts.
 */
import { ServerResponse } from "node:http";
import { Subject } from "rxjs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { formatCauseChain, type EngineEvent } from "../src/index.js";
import { introspect, type IntrospectionEvent, type IntrospectionServer } from "../src/introspect/index.js";
import { failOnUnhandledRejections, makeEngine, settle, stop, TestWorker, valueManifold } from "./fixtures.js";
import { EventStreamReader, http, socketDir } from "./introspect-helpers.js";

failOnUnhandledRejections();
const nextSocket = socketDir();

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const task of cleanup.splice(0).reverse()) await task();
});

type Introspected = Parameters<typeof introspect>[0];

async function serve(engine: Introspected, options: Parameters<typeof introspect>[1] = {}): Promise<IntrospectionServer & { where: { socketPath: string } }> {
  const server = await introspect(engine, { path: nextSocket(), reportMaxAge: 0, ...options });
  cleanup.push(() => server.close());
  return Object.assign(server, { where: { socketPath: server.address } });
}

function open(where: { socketPath: string }, path = "/events", headers: Record<string, string> = {}): EventStreamReader {
  const reader = new EventStreamReader(where, path, headers);
  cleanup.push(() => reader.close());
  return reader;
}

/** A stand-in for engine.events the test drives by hand. */
function fakeEngine(): { engine: Introspected; subject: Subject<IntrospectionEvent>; emit: (event: Partial<IntrospectionEvent> & Record<string, unknown>) => IntrospectionEvent } {
  const subject = new Subject<IntrospectionEvent>();
  let id = 0;
  const engine = { report: () => ({ state: "started", manifolds: {} }) as never, events: subject };
  const emit = (fields: Partial<IntrospectionEvent> & Record<string, unknown>): IntrospectionEvent => {
    const event = { type: "started", id: ++id, time: new Date(Date.UTC(2026, 0, 1, 0, 0, id)).toISOString(), name: "a", ...fields };
    subject.next(event);
    return event;
  };
  return { engine, subject, emit };
}

describe("/events", () => {
  it("streams the engine's events, one JSON event per message with its id as the SSE id", async () => {
    const { engine } = makeEngine();
    cleanup.push(() => stop(engine));
    const { where } = await serve(engine);
    const reader = open(where);
    await reader.until(() => reader.status === 200, "the response");
    expect(reader.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    expect(reader.headers["cache-control"]).toBe("no-store");
    engine.install("a", valueManifold(1));
    engine.install("b", valueManifold(2, ["a"]));
    await settle();
    await reader.until(() => reader.events.some((event) => event.type === "started" && event.name === "b"));
    const events = reader.events;
    expect(events.map((event) => `${event.type} ${event.name}`)).toEqual(["installed a", "installed b", "starting a", "started a", "starting b", "started b"]);
    for (const [i, message] of reader.messages.filter((m) => m.event === "message").entries()) {
      expect(message.id).toBe(String(events[i]?.id));
      expect(events[i]?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
  });

  it("replays the kept events after Last-Event-ID (a reconnecting EventSource) or ?since", async () => {
    const { engine } = makeEngine();
    cleanup.push(() => stop(engine));
    const { where } = await serve(engine);
    engine.install("a", valueManifold(1));
    engine.install("b", valueManifold(2, ["a"]));
    await settle();
    const all = open(where, "/events?since=0");
    await all.until(() => all.events.length === 6);
    const third = all.events[2]?.id as number;
    const resumed = open(where, "/events", { "Last-Event-ID": String(third) });
    await resumed.until(() => resumed.events.length === 3);
    expect(resumed.events.map((event) => event.id)).toEqual(all.events.slice(3).map((event) => event.id));
    // Live events follow the replay, once each.
    engine.install("c", valueManifold(3));
    await settle();
    await resumed.until(() => resumed.events.some((event) => event.name === "c" && event.type === "started"));
    const ids = resumed.events.map((event) => event.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
  });

  it("says so (event: gap) when events after the asked id are no longer kept", async () => {
    const { engine, emit } = fakeEngine();
    const { where } = await serve(engine, { eventHistory: 5 });
    for (let i = 0; i < 20; i++) emit({});
    const reader = open(where, "/events?since=3");
    await reader.until(() => reader.events.length === 5);
    expect(reader.messages[0]).toEqual({ event: "gap", id: undefined, data: JSON.stringify({ since: 3, oldestKept: 16 }) });
    expect(reader.events.map((event) => event.id)).toEqual([16, 17, 18, 19, 20]);
  });

  it("ends every stream (event: end) when the engine stops, and answers later requests with the replay and the end", async () => {
    const { engine, clock } = makeEngine();
    const { where } = await serve(engine);
    engine.install("a", valueManifold(1));
    await settle();
    const reader = open(where);
    await reader.until(() => reader.status === 200);
    engine.kill();
    await clock.runAll();
    await engine.wait();
    await reader.until(() => reader.ended, "the end of the stream");
    expect(reader.events.map((event) => event.type)).toEqual(["engine-stopping", "stopped", "engine-stopped"]);
    expect(reader.messages.at(-1)).toEqual({ event: "end", id: undefined, data: "{}" });
    const late = open(where, "/events?since=0");
    await late.until(() => late.ended, "the end of the late stream");
    expect(late.events.at(-1)?.type).toBe("engine-stopped");
    expect(late.messages.at(-1)?.event).toBe("end");
  });

  it("501 with the reason when the engine has no event stream, or reading it throws (rxjs missing)", async () => {
    const { engine } = makeEngine();
    cleanup.push(() => stop(engine));
    const none = await serve({ report: () => engine.report() });
    const missing = await http(none.where, "/events");
    expect(missing.status).toBe(501);
    expect(missing.body).toMatch(/this engine has no event stream \(engine\.events is missing\)/);
    expect((await http(none.where, "/chain?name=a")).status).toBe(501);
    const throwing = await serve({
      report: () => engine.report(),
      get events(): never {
        throw new Error("engine.events needs the optional package rxjs: npm install rxjs");
      },
    });
    const res = await http(throwing.where, "/events");
    expect(res.status).toBe(501);
    expect(res.body).toBe("engine.events needs the optional package rxjs: npm install rxjs\n");
    // Everything else still works.
    expect((await http(throwing.where, "/report")).status).toBe(200);
  });

  it("with eventHistory 0, listens to the engine only while a client is connected", async () => {
    const { engine, subject } = fakeEngine();
    const { where, handler } = await serve(engine, { eventHistory: 0 });
    expect(subject.observed).toBe(false);
    expect((await http(where, "/")).status).toBe(200);
    expect((await http(where, "/events", { method: "HEAD" })).status).toBe(200);
    expect(subject.observed).toBe(false);
    const reader = open(where);
    await reader.until(() => reader.status === 200);
    expect(subject.observed).toBe(true);
    expect(handler.eventClients).toBe(1);
    await reader.close();
    await new Promise<void>((resolve) => {
      const check = (): void => (handler.eventClients === 0 ? resolve() : void setImmediate(check));
      check();
    });
    expect(subject.observed).toBe(false);
  });

  it("by default keeps listening from the start, so late clients get chains of what happened before", async () => {
    const { engine, subject } = fakeEngine();
    await serve(engine);
    expect(subject.observed).toBe(true);
  });

  it("a client that goes away mid-stream does not disturb the others", async () => {
    const { engine, emit } = fakeEngine();
    const { where, handler } = await serve(engine);
    const leaving = open(where);
    const staying = open(where);
    await leaving.until(() => leaving.status === 200);
    await staying.until(() => staying.status === 200);
    emit({ name: "first" });
    await leaving.until(() => leaving.events.length === 1);
    await leaving.close();
    emit({ name: "second" });
    await staying.until(() => staying.events.length === 2);
    expect(staying.events.map((event) => event.name)).toEqual(["first", "second"]);
    expect(handler.eventClients).toBe(1);
  });

  it("sends keep-alive comments to idle clients", async () => {
    const { engine } = fakeEngine();
    const { where } = await serve(engine, { keepAliveInterval: 20 });
    const reader = open(where);
    await reader.until(() => reader.raw.includes(": keep-alive\n\n"), "a keep-alive comment");
  });

  it("close() ends the streams, telling clients not to come back", async () => {
    const { engine } = fakeEngine();
    const server = await serve(engine);
    const reader = open(server.where);
    await reader.until(() => reader.status === 200);
    await server.close();
    await reader.until(() => reader.ended, "the end");
    expect(reader.messages.at(-1)).toEqual({ event: "end", id: undefined, data: JSON.stringify({ reason: "introspection closed" }) });
  });
});

describe("a client that never reads", () => {
  it("costs the engine no I/O per event, keeps a bounded queue, and is told how many messages it lost", async () => {
    const { engine, emit } = fakeEngine();
    const { where } = await serve(engine, { clientBuffer: 100 });
    const reader = open(where);
    await reader.until(() => reader.status === 200);
    await reader.pause();
    const write = vi.spyOn(ServerResponse.prototype, "write");
    const payload = "x".repeat(4096);
    const total = 5000;
    let last: IntrospectionEvent | undefined;
    try {
      for (let i = 0; i < total; i++) {
        const before = write.mock.calls.length;
        last = emit({ payload });
        // The engine's emit returns having written nothing: serialising and writing happen later, once per batch.
        expect(write.mock.calls.length).toBe(before);
      }
    } finally {
      write.mockRestore();
    }
    // Let the batches be written (and the queue fill, and drop) while the client still does not read.
    for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    await reader.resume();
    await reader.until(() => reader.events.at(-1)?.id === last?.id, "the newest event");
    const dropped = reader.messages.filter((m) => m.event === "dropped").reduce((sum, m) => sum + (JSON.parse(m.data) as { dropped: number }).dropped, 0);
    expect(dropped).toBeGreaterThan(0);
    expect(reader.events.length + dropped).toBe(total);
    // What arrived is in order, the newest last: the oldest were dropped.
    const ids = reader.events.map((event) => event.id);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
  });
});

describe("/chain", () => {
  it("gives the chain of causes of a manifold's last start, back to the failure that began it", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000, backoffFactor: 0 });
    cleanup.push(() => stop(engine));
    const events: EngineEvent[] = [];
    const subscription = engine.events.subscribe((event) => events.push(event));
    cleanup.push(async () => subscription.unsubscribe());
    const { where } = await serve(engine);
    const connections: TestWorker[] = [];
    engine.install("api", {
      inputs: [],
      start: () => {
        const worker = new TestWorker("api");
        connections.push(worker);
        return worker;
      },
    });
    engine.install("uploader", valueManifold(1, ["api"]));
    await settle();
    connections[0]?.fail(new Error("connection reset"));
    await settle();
    await clock.advance(1000);
    const body = JSON.parse((await http(where, "/chain?name=uploader")).body) as { name: string; complete: boolean; text: string; lines: string[]; events: { id: number; type: string }[] };
    expect(body.name).toBe("uploader");
    expect(body.complete).toBe(true);
    const lastStart = events.filter((event) => event.type === "started" && event.name === "uploader").at(-1) as EngineEvent;
    expect(body.text).toBe(formatCauseChain(events, lastStart.id));
    expect(body.text).toMatch(/^started uploader \(#3\) <- .*bounced uploader \(input api\) <- started api \(#2\) <- .*<- stopped api \(error: connection reset\)$/);
    expect(body.events[0]?.id).toBe(lastStart.id);
    expect(body.lines).toEqual(body.text.split(" <- "));
  });

  it("says when it has nothing on a name, and asks for one when none is given", async () => {
    const { engine } = fakeEngine();
    const { where } = await serve(engine);
    const unknown = await http(where, `/chain?name=${encodeURIComponent("no such <name>")}`);
    expect(unknown.status).toBe(200);
    expect(JSON.parse(unknown.body)).toEqual({ name: "no such <name>", events: [], message: 'no event about "no such <name>" among the 0 kept (options.eventHistory)' });
    const none = await http(where, "/chain");
    expect(none.status).toBe(400);
    expect(none.body).toMatch(/needs \?name=/);
  });

  it("marks a chain cut short when its root is older than the kept history", async () => {
    const { engine, emit } = fakeEngine();
    const { where } = await serve(engine, { eventHistory: 3 });
    const root = emit({ type: "stopped", name: "a", outcome: "error", error: "boom" });
    emit({ type: "scheduled", name: "a", cause: root.id, delay: 10, reason: "error" });
    for (let i = 0; i < 3; i++) emit({ type: "installed", name: `other${i}` });
    emit({ type: "started", name: "a", cause: 2, startCount: 2 });
    const body = JSON.parse((await http(where, "/chain?name=a")).body) as { complete: boolean; cut: string; text: string };
    expect(body.complete).toBe(false);
    expect(body.cut).toBe("event #2 is older than the kept history");
    expect(body.text).toBe("started a (#2) <- … (event #2 is older than the kept history)");
  });
});
