/**
 * One test per bug a review of the engine found; each fails on the code
 * before its fix.
 */
import { describe, expect, it } from "vitest";
import { Graph, type GraphNode } from "../src/graph.js";
import fc from "fast-check";
import { Chunked } from "../src/chunked.js";
import { Deadlines } from "../src/deadlines.js";
import { Queue } from "../src/mailbox.js";
import { checkManifold } from "../src/manifold.js";
import { ManifoldNode } from "../src/node.js";
import {
  BounceError,
  createWorker,
  Engine,
  EngineStoppedError,
  errorIs,
  MissingError,
  ShutdownTimeoutError,
  valueWorker,
  type Clock,
  type Manifold,
} from "../src/index.js";
import { entry, failOnUnhandledRejections, idleWorker, makeEngine, settle, TestClock, TestWorker } from "./fixtures.js";

failOnUnhandledRejections();

describe("restarts with no delay never starve the event loop", () => {
  it("a start that throws at once, with errorDelay 0, still lets kill() stop the engine", async () => {
    const engine = new Engine({ errorDelay: 0, backoffFactor: 0, jitter: 0 });
    let calls = 0;
    engine.install("flaky", {
      inputs: [],
      start: () => {
        calls++;
        throw new Error("no");
      },
    });
    // A macrotask must get a turn while the manifold fails again and again.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(calls).toBeGreaterThan(0);
    engine.kill();
    await engine.wait();
    const after = calls;
    await settle();
    expect(calls).toBe(after);
  });

  it("a worker that bounces at once, with bounceDelay 0, restarts once per event-loop turn", async () => {
    const engine = new Engine({ bounceDelay: 0, jitter: 0 });
    let starts = 0;
    engine.install("bouncy", {
      inputs: [],
      start: () => {
        starts++;
        return createWorker(() => {
          throw new BounceError();
        });
      },
    });
    await new Promise<void>((resolve) => setImmediate(resolve));
    const early = starts;
    await new Promise<void>((resolve) => setImmediate(resolve));
    // Bounded progress per turn, not an unbounded spin inside one turn.
    expect(early).toBeLessThan(5);
    expect(starts).toBeGreaterThan(early - 1);
    engine.kill();
    await engine.wait();
  });
});

describe("re-entrant calls from user code", () => {
  it("after kill() from inside a start function, install throws and uninstall rejects at once", async () => {
    const { engine } = makeEngine();
    const outcomes: unknown[] = [];
    engine.install("killer", {
      inputs: [],
      start: () => {
        engine.kill();
        try {
          engine.install("late", { inputs: [], start: () => valueWorker(1) });
          outcomes.push("installed");
        } catch (error) {
          outcomes.push(error);
        }
        outcomes.push(engine.report().state);
        return valueWorker(0);
      },
    });
    await settle();
    expect(outcomes[0]).toBeInstanceOf(EngineStoppedError);
    expect(outcomes[1]).toBe("stopping");
    await engine.wait();
    expect(engine.report().manifolds.late).toBeUndefined();
  });

  it("a filter that uninstalls its own manifold while its worker stops still bounces the dependents", async () => {
    const { engine } = makeEngine();
    const db = new TestWorker("db");
    const apiStarts: boolean[] = [];
    engine.install("db", {
      inputs: [],
      start: () => db,
      output: () => "conn",
      filter: (error) => {
        void engine.uninstall("db");
        return error;
      },
    });
    engine.install("api", {
      inputs: ["db"],
      start: (context) => {
        apiStarts.push(context.hasResource("db"));
        return idleWorker();
      },
    });
    await settle();
    expect(apiStarts).toEqual([true]);
    db.fail(new Error("db down"));
    await settle();
    // The dependent must not keep running with the dead db's output.
    expect(apiStarts).toEqual([true, false]);
    engine.kill();
    await engine.wait();
  });

  it("uninstall() does not run start functions synchronously inside it", async () => {
    const { engine } = makeEngine();
    const calls: string[] = [];
    engine.install("x", { inputs: [], start: () => valueWorker(0) });
    await settle();
    engine.install("b", {
      inputs: ["a"],
      start: (context) => {
        calls.push(`b(${context.hasResource("a")})`);
        return valueWorker(0);
      },
    });
    void engine.uninstall("x");
    engine.install("a", { inputs: [], start: () => valueWorker(0) });
    await settle();
    expect(calls).toEqual(["b(true)"]);
    engine.kill();
    await engine.wait();
  });
});

describe("user values the engine cannot read", () => {
  it("a throwing random() falls back to no spread instead of wedging the manifold", async () => {
    const clock = new TestClock();
    const engine = new Engine({
      clock,
      errorDelay: 100,
      jitter: 0.5,
      random: () => {
        throw new Error("entropy exhausted");
      },
    });
    engine.install("failing", {
      inputs: [],
      start: () => {
        throw new Error("no");
      },
    });
    await settle();
    expect(clock.delays).toEqual([100]);
    expect(engine.report().state).toBe("started");
    engine.kill();
    await engine.wait();
    expect(clock.pending).toEqual([]);
  });

  it("a clock whose setTimeout throws falls back to a real timer and the manifold still restarts", async () => {
    const engine = new Engine({
      errorDelay: 1,
      jitter: 0,
      clock: {
        now: () => Date.now(),
        setTimeout: () => {
          throw new Error("broken clock");
        },
        clearTimeout: () => undefined,
      },
    });
    let calls = 0;
    engine.install("failing", {
      inputs: [],
      start: () => {
        calls++;
        if (calls === 1) throw new Error("first try fails");
        return valueWorker(0);
      },
    });
    await new Promise<void>((resolve) => setTimeout(resolve, 30));
    expect(engine.report().manifolds.failing?.state).toBe("started");
    engine.kill();
    await engine.wait();
  });
});

describe("start contexts", () => {
  it("getResource and hasResource work when destructured", async () => {
    const { engine } = makeEngine();
    const seen: unknown[] = [];
    engine.install("a", { inputs: [], start: () => valueWorker("A"), output: (worker) => worker.value });
    engine.install("b", {
      inputs: ["a"],
      start: ({ getResource, hasResource }) => {
        seen.push(hasResource("a"), getResource("a"));
        return valueWorker(0);
      },
    });
    await settle();
    expect(seen).toEqual([true, "A"]);
    engine.kill();
    await engine.wait();
  });

  it("an aborted start's signal says why: input change, uninstall or engine stop", async () => {
    const { engine } = makeEngine();
    const reasons: string[] = [];
    const pending: Manifold = {
      inputs: ["a"],
      start: (context) =>
        new Promise((_, reject) => {
          context.signal.addEventListener("abort", () => {
            reasons.push((context.signal.reason as Error).message);
            reject(context.signal.reason);
          });
        }),
    };
    const aWorkers: TestWorker[] = [];
    engine.install("a", {
      inputs: [],
      start: () => {
        aWorkers.push(new TestWorker("a"));
        return aWorkers.at(-1) as TestWorker;
      },
    });
    engine.install("b", pending);
    await settle();
    aWorkers[0]?.fail(new BounceError());
    await settle();
    // Aborted once when a stopped; its restart then waits for a's (rule 9).
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/"b" aborted: an input changed/);
    await engine.uninstall("b");
    expect(reasons.at(-1)).toMatch(/"b" aborted: it was uninstalled/);
    engine.install("c", { ...pending, inputs: [] });
    await settle();
    engine.kill();
    await engine.wait();
    expect(reasons.at(-1)).toMatch(/"c" aborted: the engine is stopping/);
  });
});

describe("errors", () => {
  it("an error branded by another copy of the package counts as that class, but not as a subclass", () => {
    // What a MissingError from the CommonJS build looks like to the ESM build.
    const foreign = Object.assign(new Error("from the other bundle"), { [Symbol.for("manifold-engine.MissingError")]: true });
    class Mine extends MissingError {}
    expect(foreign instanceof MissingError).toBe(true);
    expect(errorIs(new Error("wrapped", { cause: foreign }), MissingError)).toBe(true);
    expect(foreign instanceof Mine).toBe(false);
    expect(foreign instanceof BounceError).toBe(false);
  });

  it("ShutdownTimeoutError names at most ten manifolds in its message", () => {
    const names = Array.from({ length: 25 }, (_, i) => `m${i}`);
    const error = new ShutdownTimeoutError(undefined, { manifolds: names });
    expect(error.message).toContain('"m9"');
    expect(error.message).not.toContain('"m10"');
    expect(error.message).toContain("and 15 more");
    expect(error.manifolds).toHaveLength(25);
  });
});

describe("cycle checks", () => {
  it("a chain added in reverse order installs, and a cycle closed through it is still found with its path", () => {
    const graph = new Graph<GraphNode>();
    for (let i = 500; i >= 1; i--) graph.add({ name: `m${i}`, slot: undefined, inputSlots: [], listIndex: -1 }, i > 1 ? [`m${i - 1}`] : []);
    expect(graph.size).toBe(500);
    expect(graph.findCycle("m1", ["m400"])).toEqual(["m1", "m400", ...Array.from({ length: 398 }, (_, i) => `m${399 - i}`), "m1"]);
    // An input that is not installed can never close a cycle.
    expect(graph.findCycle("m1", ["nowhere"])).toBeUndefined();
  });
});

describe("the installed list (graph.ts)", () => {
  it("keeps install order through removals, compactions and reinstalls, and removes the right node after a compaction", () => {
    const graph = new Graph<GraphNode>();
    const node = (name: string): GraphNode => ({ name, slot: undefined, inputSlots: [], listIndex: -1 });
    const nodes = Array.from({ length: 10 }, (_, i) => node(`m${i}`));
    for (const n of nodes) graph.add(n, []);
    // Removing 5 of 10 leaves holes enough to compact; each later removal must still find its node.
    for (const i of [1, 3, 5, 7, 9]) graph.remove(nodes[i] as GraphNode);
    expect(graph.nodes().map((n) => n.name)).toEqual(["m0", "m2", "m4", "m6", "m8"]);
    graph.remove(nodes[4] as GraphNode);
    graph.add(node("m4"), []);
    graph.remove(nodes[0] as GraphNode);
    expect(graph.nodes().map((n) => n.name)).toEqual(["m2", "m6", "m8", "m4"]);
    expect(graph.size).toBe(4);
    expect([...graph.names()]).toEqual(["m2", "m6", "m8", "m4"]);
  });
});

describe("a list in chunks (chunked.ts)", () => {
  it("reads back what an array would, across chunk boundaries, through push, set, fill and truncate", () => {
    // Lengths up to three chunks (4,096 items each), cut anywhere, so edits start and end on and off the boundaries.
    const length = fc.integer({ min: 0, max: 3 * 4096 + 7 });
    const command = fc.oneof(
      fc.record({ kind: fc.constant("push" as const), count: fc.integer({ min: 1, max: 5000 }) }),
      fc.record({ kind: fc.constant("set" as const), at: length }),
      fc.record({ kind: fc.constant("fill" as const), from: length, to: length }),
      fc.record({ kind: fc.constant("truncate" as const), to: length }),
    );
    fc.assert(
      fc.property(fc.array(command, { maxLength: 12 }), (commands) => {
        const list = new Chunked<number>();
        const model: number[] = [];
        let next = 1;
        for (const c of commands) {
          if (c.kind === "push") {
            for (let i = 0; i < c.count; i++) list.push(next), model.push(next++);
          } else if (c.kind === "set") {
            if (c.at < model.length) list.set(c.at, next), (model[c.at] = next++);
          } else if (c.kind === "fill") {
            const to = Math.min(c.to, model.length);
            list.fill(Math.min(c.from, to), to, next), model.fill(next++, Math.min(c.from, to), to);
          } else if (c.to <= model.length) {
            list.truncate(c.to), (model.length = c.to);
          }
          expect(list.length).toBe(model.length);
        }
        const read = Array.from({ length: list.length }, (_, i) => list.at(i));
        expect(read).toEqual(model);
      }),
      { numRuns: 200, seed: 16 },
    );
  });
});

describe("the mailbox's queue in chunks (mailbox.ts Queue)", () => {
  it("gives items back first in, first out, through bursts over several chunks, trims and steady trickles", () => {
    const command = fc.oneof(
      fc.record({ kind: fc.constant("push" as const), count: fc.integer({ min: 1, max: 9000 }) }),
      fc.record({ kind: fc.constant("shift" as const), count: fc.integer({ min: 1, max: 9000 }) }),
      fc.record({ kind: fc.constant("trickle" as const), count: fc.integer({ min: 1, max: 5000 }) }),
      fc.constant({ kind: "trim" as const }),
    );
    fc.assert(
      fc.property(fc.array(command, { maxLength: 14 }), (commands) => {
        const queue = new Queue<number>();
        const model: number[] = [];
        let next = 1;
        const take = (): void => {
          const expected = model.shift();
          if (queue.shift() !== expected) throw new Error(`expected ${expected}`);
        };
        for (const c of commands) {
          if (c.kind === "push") {
            for (let i = 0; i < c.count; i++) queue.push(next), model.push(next++);
          } else if (c.kind === "shift") {
            for (let i = 0; i < c.count && model.length > 0; i++) take();
          } else if (c.kind === "trickle") {
            // One in, one out, as a drain of one message at a time: across a chunk's end too.
            for (let i = 0; i < c.count; i++) queue.push(next), model.push(next++), take();
          } else {
            queue.trim();
          }
          expect(queue.size).toBe(model.length);
        }
        while (model.length > 0) take();
        expect(queue.size).toBe(0);
      }),
      { numRuns: 150, seed: 16 },
    );
  });
});

describe("a node's recent errors (node.ts: 0 and 1 a bit, more in the rare record)", () => {
  it("read back as written, through every kind of value and back to 0", () => {
    const node = new ManifoldNode(1, checkManifold("m", { inputs: [], start: () => valueWorker(1) }), 0, () => {});
    const seen: number[] = [];
    for (const count of [0, 1, 2, 5, 1, 3, 0, 1, 0]) {
      node.recentErrors = count;
      seen.push(node.recentErrors);
    }
    expect(seen).toEqual([0, 1, 2, 5, 1, 3, 0, 1, 0]);
  });
});

describe("a name's dependents (graph.ts Slot)", () => {
  it("go from none to one (kept without an array) to many and back, in order, counted, and visited alike by dependents and forEachDependent", () => {
    const graph = new Graph<GraphNode>();
    const node = (name: string): GraphNode => ({ name, slot: undefined, inputSlots: [], listIndex: -1 });
    const seen = (): string[][] => {
      const visited: string[] = [];
      graph.get("in")?.slot?.forEachDependent((dependent) => visited.push(dependent.name));
      return [[...graph.dependentsOf("in")].map((dependent) => dependent.name), visited];
    };
    graph.add(node("in"), []);
    expect(seen()).toEqual([[], []]);
    const a = node("a");
    const b = node("b");
    graph.add(a, ["in"]);
    expect(seen()).toEqual([["a"], ["a"]]);
    graph.add(b, ["in"]);
    expect(seen()).toEqual([["a", "b"], ["a", "b"]]);
    graph.remove(a);
    expect(seen()).toEqual([["b"], ["b"]]);
    expect(graph.get("in")?.slot?.dependentCount).toBe(1);
    graph.remove(b);
    expect(seen()).toEqual([[], []]);
    expect(graph.get("in")?.slot?.hasDependents).toBe(false);
    // Past the small-array limit the dependents are a Set, still in order.
    const many = Array.from({ length: 20 }, (_, i) => node(`d${i}`));
    for (const dependent of many) graph.add(dependent, ["in"]);
    expect(seen()[0]).toEqual(many.map((dependent) => dependent.name));
    expect(seen()[1]).toEqual(many.map((dependent) => dependent.name));
    expect(graph.get("in")?.slot?.dependentCount).toBe(20);
    // The count is read from the list: it follows removals from the Set down to none.
    for (const dependent of many.slice(0, 19)) graph.remove(dependent);
    expect(graph.get("in")?.slot?.dependentCount).toBe(1);
    expect(graph.get("in")?.slot?.hasDependents).toBe(true);
    graph.remove(many[19] as GraphNode);
    expect(graph.get("in")?.slot?.dependentCount).toBe(0);
    expect(graph.get("in")?.slot?.hasDependents).toBe(false);
    expect(seen()).toEqual([[], []]);
    // An emptied name keeps none of them: a new dependent is counted alone.
    graph.add(node("again"), ["in"]);
    expect(seen()).toEqual([["again"], ["again"]]);
    expect(graph.get("in")?.slot?.dependentCount).toBe(1);
  });
  it("are counted and listed right at every size up to 17 and through removals, and a small list (an array) handed out, or a walk of one in progress, never sees a later add", () => {
    const graph = new Graph<GraphNode>();
    const node = (name: string): GraphNode => ({ name, slot: undefined, inputSlots: [], listIndex: -1 });
    graph.add(node("in"), []);
    const slot = graph.get("in")?.slot;
    const names = (): string[] => [...graph.dependentsOf("in")].map((dependent) => dependent.name);
    const walked = (): string[] => {
      const visited: string[] = [];
      slot?.forEachDependent((dependent) => visited.push(dependent.name));
      return visited;
    };
    const added: GraphNode[] = [];
    for (let i = 0; i < 17; i++) {
      const before = graph.dependentsOf("in");
      const listedBefore = [...before].map((dependent) => dependent.name);
      const dependent = node(`d${i}`);
      graph.add(dependent, ["in"]);
      added.push(dependent);
      const expected = added.map((d) => d.name);
      expect(slot?.dependentCount).toBe(added.length);
      expect(names()).toEqual(expected);
      expect(walked()).toEqual(expected);
      // What was handed out before the add still lists what it listed then.
      expect([...before].map((d) => d.name)).toEqual(listedBefore);
    }
    // Removals: 17 (a Set) down to 4, the first 12 and then one from the middle (it stays a Set), then adds again.
    for (const dependent of added.splice(0, 12)) graph.remove(dependent);
    expect(names()).toEqual(added.map((d) => d.name));
    graph.remove(added.splice(2, 1)[0] as GraphNode); // one from the middle
    for (let i = 0; i < 6; i++) {
      const dependent = node(`e${i}`);
      graph.add(dependent, ["in"]);
      added.push(dependent);
      expect(slot?.dependentCount).toBe(added.length);
      expect(names()).toEqual(added.map((d) => d.name));
      expect(walked()).toEqual(added.map((d) => d.name));
    }
    // A dependent added while a walk of an array of them is under way is not visited by it.
    graph.add(node("small"), []);
    const few = Array.from({ length: 5 }, (_, i) => node(`f${i}`));
    for (const dependent of few) graph.add(dependent, ["small"]);
    const visited: string[] = [];
    graph.get("small")?.slot?.forEachDependent((dependent) => {
      visited.push(dependent.name);
      if (visited.length === 1) graph.add(node("late"), ["small"]);
    });
    expect(visited).toEqual(few.map((d) => d.name));
    expect([...graph.dependentsOf("small")].map((d) => d.name)).toEqual([...few.map((d) => d.name), "late"]);
    expect(graph.get("small")?.slot?.dependentCount).toBe(6);
  });
});

describe("input slot arrays shared between consecutive nodes (graph.ts #linkInputs)", () => {
  it("a node with the same inputs as the last one shares its array; a slot released meanwhile is never shared", () => {
    const graph = new Graph<GraphNode>();
    const node = (name: string): GraphNode => ({ name, slot: undefined, inputSlots: [], listIndex: -1 });
    graph.add(node("x"), []);
    const a = node("a");
    const b = node("b");
    const c = node("c");
    graph.add(a, ["x"]);
    graph.add(b, ["x"]);
    expect(b.inputSlots).toBe(a.inputSlots);
    graph.add(c, ["x", "y"]); // differs in length: its own array
    expect(c.inputSlots).not.toBe(a.inputSlots);
    expect(c.inputSlots.map((slot) => slot.name)).toEqual(["x", "y"]);
    // Release the slot of "y" (nobody lists it once c is gone), then list "y" again: a new slot, not the one c's array holds.
    graph.remove(c);
    const stale = c.inputSlots[1];
    const d = node("d");
    graph.add(d, ["x", "y"]);
    expect(d.inputSlots[1]).not.toBe(stale);
    expect([...graph.dependentsOf("y")]).toEqual([d]);
    // Differs in its second input only: the first is copied, the second is its own.
    const e = node("e");
    graph.add(e, ["x", "z"]);
    expect(e.inputSlots.map((slot) => slot.name)).toEqual(["x", "z"]);
    expect(e.inputSlots[0]).toBe(d.inputSlots[0]);
    expect(d.inputSlots.map((slot) => slot.name)).toEqual(["x", "y"]);
  });
});

describe("found by the property tests", () => {
  it("after a fatal worker error, an input is not killed before its dependent's start in flight has settled", async () => {
    // m0 -> m1 -> m2: m1 runs, m2's start is in flight, m0 fails fatally.
    const { engine } = makeEngine({ isFatal: (error) => errorIs(error, Fatal) });
    class Fatal extends Error {}
    const m0 = new TestWorker("m0");
    const m1 = new TestWorker("m1");
    const events: string[] = [];
    let finishM2!: () => void;
    engine.install("m0", { inputs: [], start: () => m0 });
    engine.install("m1", {
      inputs: ["m0"],
      start: () => ({ kill: () => (events.push("kill m1"), m1.kill()), wait: () => m1.wait() }),
    });
    await settle();
    engine.install("m2", {
      inputs: ["m1"],
      start: (context) =>
        new Promise((resolve) => {
          context.signal.addEventListener("abort", () => events.push("abort m2"));
          finishM2 = () => {
            events.push("m2 settled");
            resolve(valueWorker(2));
          };
        }),
    });
    await settle();
    m0.fail(new Fatal("fatal"));
    await settle();
    expect(events).toEqual(["abort m2"]);
    finishM2();
    await settle();
    expect(events).toEqual(["abort m2", "m2 settled", "kill m1"]);
    await expect(engine.wait()).rejects.toThrow("fatal");
  });
});

describe("a handler is one instant (loop.ts #now)", () => {
  it("a kill stopping many workers gives each the same `since`, from one clock read", async () => {
    const inner = new TestClock(0);
    let reads = 0;
    // Every read of this clock is a millisecond later than the one before.
    const ticking: Clock = {
      now: () => inner.now() + reads++,
      setTimeout: (fn, ms) => inner.setTimeout(fn, ms),
      clearTimeout: (handle) => inner.clearTimeout(handle),
    };
    const engine = new Engine({ clock: ticking, stopTimeout: 0 });
    const workers = ["a", "b", "c"].map((name) => new TestWorker(name, { stopOnKill: false }));
    workers.forEach((worker, i) => engine.install(worker.label, { inputs: [], start: () => workers[i] as TestWorker }));
    await settle();
    engine.kill();
    await settle();
    const entries = Object.values(engine.report().manifolds);
    expect(entries.map((entry) => entry.state)).toEqual(["stopping", "stopping", "stopping"]);
    expect(new Set(entries.map((entry) => entry.since)).size).toBe(1);
    for (const worker of workers) worker.complete();
    await engine.wait();
  });
});

describe("the stuck-worker watchdog", () => {
  it("arms one timer for many stopped workers, and drops it once they have all stopped", async () => {
    const { engine, clock } = makeEngine({ stopTimeout: 5000 });
    const root: TestWorker[] = [];
    engine.install("root", { inputs: [], start: () => (root.push(new TestWorker("root")), root.at(-1) as TestWorker) });
    const slow: TestWorker[] = [];
    for (let i = 0; i < 200; i++) {
      engine.install(`d${i}`, { inputs: ["root"], start: () => (slow.push(new TestWorker(`d${i}`, { stopOnKill: false })), slow.at(-1) as TestWorker) });
    }
    await settle();
    root[0]?.fail(new BounceError());
    await settle();
    // 200 dependents are stopping: one watchdog timer, not 200.
    expect(clock.pending.map((timer) => timer.delay)).toEqual([5000]);
    for (const worker of slow.slice(0, 200)) worker.complete();
    await settle();
    expect(clock.pending).toEqual([]);
    expect(Object.values(engine.report().manifolds).every((entry) => entry.state === "started")).toBe(true);
    engine.kill();
    for (const worker of slow.slice(200)) worker.complete();
    await engine.wait();
    expect(clock.pending).toEqual([]);
  });
});

describe("found by the second review", () => {
  it("the start context's functions survive spreading, every member works through a Proxy, and nothing internal is reachable", async () => {
    const { engine } = makeEngine();
    engine.install("a", { inputs: [], start: () => valueWorker(42), output: (worker) => worker.value });
    const seen: unknown[] = [];
    engine.install("b", {
      inputs: ["a"],
      start: (context) => {
        const copy = { ...context };
        const wrapped = new Proxy(context, {});
        // signal is a getter on the prototype (cheap to create): spread copies own members only.
        seen.push(copy.name, copy.getResource("a"), copy.hasResource("a"), context.signal instanceof AbortSignal);
        seen.push(wrapped.getResource("a"), wrapped.signal.aborted);
        seen.push("abort" in context, "aborted" in context);
        return valueWorker(0);
      },
    });
    await settle();
    expect(seen).toEqual(["b", 42, true, true, 42, false, false, false]);
    engine.kill();
    await engine.wait();
  });

  it("the watchdog drops cancelled deadlines even while an earlier one stays pending", () => {
    const clock = new TestClock();
    const watchdog = new Deadlines<Ticketed>(clock, () => clock.now(), () => undefined);
    watchdog.addStop(ticketed("slow"), 60_000); // stays pending at the head of its queue
    for (let i = 0; i < 10_000; i++) {
      const quick = ticketed(`quick${i}`);
      watchdog.addStop(quick, 60_000);
      watchdog.cancelStop(quick);
    }
    expect(watchdog.stored).toBeLessThan(1100);
    watchdog.tidy();
    expect(clock.pending).toHaveLength(1);
    watchdog.clear();
    expect(clock.pending).toEqual([]);
  });

  it("the watchdog measures deadlines on its own time base, so a wall-clock step does not move them", () => {
    let wall = 1_000_000;
    let monotonic = 0;
    const timers: (() => void)[] = [];
    const clock = { now: () => wall, setTimeout: (fn: () => void) => timers.push(fn), clearTimeout: () => undefined };
    let token = -1;
    const watchdog = new Deadlines<Ticketed>(clock, () => monotonic, (t) => (token = t));
    watchdog.addStop(ticketed("x"), 100);
    watchdog.stamp(); // as the loop does when its drain ends
    // 100 ms pass, but the wall clock was stepped back an hour meanwhile.
    monotonic += 100;
    wall -= 3_600_000;
    timers.shift()?.();
    expect(names(watchdog.expired(token).stops)).toEqual(["x"]);
  });

  it("a stop deadline counts from the end of the drain that added it (one clock read for all of them), never from before", () => {
    let monotonic = 0;
    const delays: number[] = [];
    const clock = { now: () => monotonic, setTimeout: (_fn: () => void, ms: number) => delays.push(ms), clearTimeout: () => undefined };
    let token = -1;
    const watchdog = new Deadlines<Ticketed>(clock, () => monotonic, (t) => (token = t));
    const first = ticketed("first");
    watchdog.addStop(first, 100);
    monotonic += 40; // the drain goes on
    watchdog.addStop(ticketed("second"), 100);
    expect(delays).toEqual([]); // no timer until the drain ends
    watchdog.tidy(); // the drain ends at 40
    expect(delays).toEqual([100]);
    monotonic = 139;
    expect(watchdog.expired(token).stops).toEqual([]); // 100 ms after addStop of "first" passed, but not 100 ms after the drain
    monotonic = 140;
    expect(names(watchdog.expired(token).stops)).toEqual(["first", "second"]);
    expect(watchdog.hasStop(first)).toBe(false); // it fired: the item forgot its ticket
    expect(watchdog.stored).toBe(0);
  });

  it("a stop deadline cancelled and added again fires once, at its new time; clear() makes every item forget its ticket", () => {
    const { watchdog, time } = manualWatchdog();
    const again = ticketed("again");
    watchdog.addStop(again, 100);
    watchdog.addStop(ticketed("other"), 100);
    watchdog.tidy();
    watchdog.cancelStop(again);
    expect(watchdog.hasStop(again)).toBe(false);
    time.now = 50;
    watchdog.addStop(again, 100);
    watchdog.tidy();
    time.now = 100;
    // The old entry of "again" (due at 100) was cancelled: only "other" passes now.
    expect(names(watchdog.expired(0).stops)).toEqual(["other"]);
    time.now = 150;
    expect(names(watchdog.expired(0).stops)).toEqual(["again"]);
    // A drain's entries that were all cancelled leave the drain's due time to those added after them in it.
    const lone = ticketed("lone");
    watchdog.addStop(lone, 100);
    watchdog.cancelStop(lone);
    watchdog.addStop(ticketed("late"), 100);
    watchdog.tidy();
    time.now = 250;
    expect(names(watchdog.expired(0).stops)).toEqual(["late"]);
    const left = ticketed("left");
    watchdog.addStop(left, 100);
    watchdog.clear();
    expect(watchdog.hasStop(left)).toBe(false);
    watchdog.cancelStop(left); // nothing to cancel: the counts stay true
    watchdog.addStop(left, 100);
    watchdog.tidy();
    time.now = 1_000;
    expect(names(watchdog.expired(0).stops)).toEqual(["left"]);
  });

  it("deadlines cancelled drain after drain do not pile up behind one that stays pending", () => {
    const { watchdog, time } = manualWatchdog();
    watchdog.addStop(ticketed("slow"), 60_000); // pending at the head for its whole timeout
    watchdog.tidy();
    let previous: Ticketed | undefined;
    for (let i = 0; i < 10_000; i++) {
      const quick = ticketed(`quick${i}`);
      watchdog.addStop(quick, 60_000); // a drain stops one worker...
      watchdog.tidy();
      if (previous !== undefined) watchdog.cancelStop(previous); // ...and the one before it settles
      watchdog.tidy();
      previous = quick;
    }
    // Held: the pending two, and cancelled entries until they are over 1,024.
    expect(watchdog.stored).toBeLessThan(1100);
    time.now = 60_000 + 1;
    expect(names(watchdog.expired(0).stops)).toEqual(["slow", "quick9999"]);
    expect(watchdog.stored).toBe(0);
  });

  it("a drain that cancels every stop deadline it added arms no timer", () => {
    let monotonic = 0;
    let armed = 0;
    const clock = { now: () => monotonic, setTimeout: () => ++armed, clearTimeout: () => undefined };
    const watchdog = new Deadlines<Ticketed>(clock, () => monotonic, () => undefined);
    watchdog.addStop(ticketed("slow"), 60_000); // pending meanwhile, so nothing is cleared
    watchdog.tidy();
    expect(armed).toBe(1);
    for (let i = 0; i < 1000; i++) {
      const self = ticketed(`self${i}`); // as the engine's own manifold: stopped and settled in one drain
      watchdog.addStop(self, 100);
      watchdog.cancelStop(self);
      monotonic += 1;
      watchdog.tidy();
    }
    expect(armed).toBe(1);
    // One that stays pending still arms its timer, even behind cancelled ones in its drain.
    watchdog.addStop(ticketed("kept"), 100);
    const gone = ticketed("gone");
    watchdog.addStop(gone, 100);
    watchdog.cancelStop(gone);
    watchdog.tidy();
    expect(armed).toBe(2);
  });

  it("cancelled stop deadlines are dropped once other pending deadlines go too, not only when a stop is cancelled", () => {
    const { watchdog, time } = manualWatchdog();
    const beats = Array.from({ length: 3000 }, (_, i) => watchdog.addAt(ticketed(`beat${i}`), "heartbeat", 60_000));
    watchdog.addStop(ticketed("slow"), 60_000);
    watchdog.tidy();
    const quick = Array.from({ length: 5000 }, (_, i) => ticketed(`quick${i}`));
    for (const item of quick) watchdog.addStop(item, 60_000);
    watchdog.tidy();
    for (const item of quick) watchdog.cancelStop(item); // 5,000 cancelled, not over twice the 3,001 pending
    watchdog.tidy();
    for (const beat of beats) watchdog.cancel(beat);
    watchdog.tidy(); // one deadline pending now: the 5,000 cancelled entries go
    expect(watchdog.stored).toBeLessThan(1100);
    time.now = 60_000;
    expect(names(watchdog.expired(0).stops)).toEqual(["slow"]);
  });

  it("a heap deadline cancelled after clear() changes no count: a stop deadline added later still fires", () => {
    const { watchdog, time } = manualWatchdog();
    const beat = watchdog.addAt(ticketed("beat"), "heartbeat", 1_000); // a stuck worker's heartbeat deadline
    watchdog.clear(); // the engine stopped
    watchdog.cancel(beat); // the worker stops after all
    const late = ticketed("late");
    watchdog.addStop(late, 100);
    watchdog.tidy();
    expect(watchdog.hasStop(late)).toBe(true);
    time.now = 100;
    expect(names(watchdog.expired(0).stops)).toEqual(["late"]);
  });

  it("dropping cancelled entries keeps each drain's due time, the running drain's included", () => {
    const { watchdog, time } = manualWatchdog();
    const drains: Ticketed[][] = [];
    const addDrain = (d: number): Ticketed[] => {
      const items = Array.from({ length: 600 }, (_, i) => ticketed(`d${d}-${i}`));
      for (const item of items) watchdog.addStop(item, 100);
      drains.push(items);
      return items;
    };
    // Five drains 10 ms apart, then a sixth still running when most entries are cancelled.
    for (let d = 0; d < 5; d++) {
      addDrain(d);
      watchdog.tidy();
      time.now += 10;
    }
    addDrain(5);
    for (const items of drains) for (const item of items.slice(2)) watchdog.cancelStop(item);
    expect(watchdog.stored).toBeLessThan(1100); // dropped while the sixth drain runs
    watchdog.tidy(); // the sixth drain ends at 50
    for (let d = 0; d < 6; d++) {
      time.now = 100 + 10 * d - 1;
      expect(names(watchdog.expired(0).stops)).toEqual([]);
      time.now = 100 + 10 * d;
      expect(names(watchdog.expired(0).stops)).toEqual([`d${d}-0`, `d${d}-1`]);
    }
    expect(watchdog.stored).toBe(0);
  });

  it("entries taken off the head in thousands leave the later ones their due times", () => {
    const { watchdog, time } = manualWatchdog();
    // 3,000 drains 1 ms apart, one stop each.
    for (let i = 0; i < 3000; i++) {
      watchdog.addStop(ticketed(`w${i}`), 100);
      watchdog.tidy();
      time.now += 1;
    }
    time.now = 100 + 1999;
    expect(watchdog.expired(0).stops).toHaveLength(2000);
    expect(watchdog.stored).toBe(1000);
    time.now = 100 + 2499;
    expect(names(watchdog.expired(0).stops)).toEqual(Array.from({ length: 500 }, (_, i) => `w${2000 + i}`));
    time.now = 100 + 3000;
    expect(watchdog.expired(0).stops).toHaveLength(500);
    expect(watchdog.stored).toBe(0);
  });

  it("deadlines of many different timeouts added in one drain each fire at their own time", () => {
    const { watchdog, time } = manualWatchdog();
    const items = Array.from({ length: 50 }, (_, i) => ticketed(`w${i}`));
    // Interleaved timeouts: 100, 150, 100, 150, ... and one of 125.
    items.forEach((item, i) => watchdog.addStop(item, i % 2 === 0 ? 100 : 150));
    const middle = ticketed("middle");
    watchdog.addStop(middle, 125);
    watchdog.tidy();
    time.now = 100;
    expect(names(watchdog.expired(0).stops)).toEqual(items.filter((_, i) => i % 2 === 0).map((item) => item.name));
    time.now = 125;
    expect(names(watchdog.expired(0).stops)).toEqual(["middle"]);
    time.now = 150;
    expect(names(watchdog.expired(0).stops)).toEqual(items.filter((_, i) => i % 2 === 1).map((item) => item.name));
  });
});

describe("stop deadlines cancelled in the order they were added (deadlines.ts cancelStop, StopQueue.headHas)", () => {
  it("a deadline cancelled at the head of its queue goes at once, even in the drain that added it, and the later ones keep their due times", () => {
    const { watchdog, time } = manualWatchdog();
    const [first, second, third] = [ticketed("first"), ticketed("second"), ticketed("third")];
    for (const item of [first, second, third]) watchdog.addStop(item, 100);
    watchdog.cancelStop(first); // settles in the drain that stopped it, before any due time is stamped
    expect(watchdog.stored).toBe(2);
    watchdog.tidy();
    time.now = 99;
    expect(watchdog.expired(0).stops).toEqual([]);
    time.now = 100;
    expect(names(watchdog.expired(0).stops)).toEqual(["second", "third"]);
  });

  it("workers that stop in the order they were stopped leave no cancelled entry behind", () => {
    const { watchdog, time } = manualWatchdog();
    const items = Array.from({ length: 10_000 }, (_, i) => ticketed(`w${i}`));
    for (const item of items) watchdog.addStop(item, 100); // a shutdown's first drain, across several chunks
    watchdog.tidy();
    for (let i = 0; i < 9_999; i++) {
      watchdog.cancelStop(items[i] as Ticketed);
      watchdog.tidy();
      if (watchdog.stored !== 9_999 - i) throw new Error(`after ${i + 1} stops, ${watchdog.stored} entries are held`);
    }
    time.now = 100;
    expect(names(watchdog.expired(0).stops)).toEqual(["w9999"]);
    expect(watchdog.stored).toBe(0);
  });
});

/** An item that keeps its stop deadline's ticket, as a node does. */
interface Ticketed {
  readonly name: string;
  stopTicket: number;
}
const ticketed = (name: string): Ticketed => ({ name, stopTicket: 0 });
const names = (items: readonly Ticketed[]): string[] => items.map((item) => item.name);

/** A watchdog on a time the test sets (`time.now`), whose timer never fires: the test calls `expired` itself. */
function manualWatchdog(): { watchdog: Deadlines<Ticketed>; time: { now: number } } {
  const time = { now: 0 };
  const clock = { now: () => time.now, setTimeout: () => undefined, clearTimeout: () => undefined };
  return { watchdog: new Deadlines<Ticketed>(clock, () => time.now, () => undefined), time };
}

describe("watching a worker's wait() (start-attempt.ts watchWorker)", () => {
  it("a wait() promise whose own then() calls a handler again later does not end the next worker (rule 8)", async () => {
    const { engine } = makeEngine();
    const workers: TestWorker[] = [];
    let running = 0;
    let overlaps = 0;
    let callAgain: (() => void) | undefined;
    engine.install("a", {
      inputs: [],
      start: () => {
        if (running > 0) overlaps++;
        const worker = new TestWorker(`a${workers.length}`);
        workers.push(worker);
        running++;
        const settled = (): void => void running--;
        void worker.wait().then(settled, settled);
        if (workers.length > 1) return worker;
        return {
          kill: () => worker.kill(),
          wait: () => {
            const waiting = new Promise<void>((resolve, reject) => void worker.wait().then(resolve, reject));
            const then = waiting.then.bind(waiting);
            // Keeps the fulfilment handler, to call it once more after this worker has been replaced.
            Object.defineProperty(waiting, "then", {
              value: (onStopped: () => void, onFailed: (error: unknown) => void) => {
                callAgain = () => onStopped();
                return then(onStopped, onFailed);
              },
            });
            return waiting;
          },
        };
      },
    });
    await settle();
    (workers[0] as TestWorker).fail(new BounceError("again"));
    await settle();
    expect(entry(engine, "a").state).toBe("started");
    callAgain?.();
    await settle();
    expect(entry(engine, "a").state).toBe("started");
    await engine.restart("a");
    await settle();
    expect(overlaps).toBe(0);
    engine.kill();
    for (const worker of workers) worker.complete();
    await engine.wait();
  });

  it("a wait() promise whose constructor getter throws makes its worker fail, not its start (the worker is not left running unwatched)", async () => {
    const { engine } = makeEngine({ errorDelay: 1_000 });
    const worker = new TestWorker("a");
    engine.install("a", {
      inputs: [],
      start: () => ({
        kill: () => worker.kill(),
        wait: () => {
          const waiting = worker.wait();
          Object.defineProperty(waiting, "constructor", {
            get() {
              throw new Error("no constructor here");
            },
          });
          return waiting;
        },
      }),
    });
    await settle();
    const report = entry(engine, "a");
    expect(report.startCount).toBe(1);
    expect(report.error).toMatch(/no constructor here/);
    expect(report.error).not.toMatch(/could not be read/);
    engine.kill();
    worker.complete();
    await engine.wait().catch(() => undefined);
  });
});
