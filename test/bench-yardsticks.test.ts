/**
 * The benchmark's yardsticks (bench/): the floor (workload.ts), the reference
 * (reference.ts) and the hand-written start and stop (handwritten.ts). Issue
 * 16 reports the engine's time as a ratio to theirs, so each must do the
 * same work as the engine on the same graph: call every start function
 * once, in an order where every input has started first, hand each start
 * its inputs' outputs (so every worker ends with the same value as the
 * engine's), and stop dependents before their inputs. A yardstick that
 * skipped work would flatter it, and the engine's ratio with it.
 */
import { describe, expect, it } from "vitest";
import { dependentsOf, makeGraph, SHAPES, type Graph, type Shape } from "../bench/graphs.js";
import { startByHand, stopByHand } from "../bench/handwritten.js";
import { allocationOrder, killAllAtOnce, releaseOrder, runReference, stopReference } from "../bench/reference.js";
import { makeManifolds, MODULUS, Probe, runFloor } from "../bench/workload.js";
import type { Manifold, Manifolds } from "../src/index.js";
import { idleWorker, makeEngine, stop } from "./fixtures.js";

/** Big enough for a layered graph (10 layers of 3 inputs), small enough to be quick. */
const SIZE = 120;

/** Each worker's value, by index: what a start computed from its inputs' outputs. */
function values(probe: Probe): number[] {
  return probe.workers.map((worker, index) => {
    if (worker === undefined) throw new Error(`m${index} has no worker`);
    return worker.value;
  });
}

/** The values a start-up that hands each start its inputs' outputs must give: 1 + the inputs' values, as workload.ts computes. */
function expectedValues(graph: Graph): number[] {
  const expected: number[] = [];
  graph.inputs.forEach((inputs, index) => {
    expected[index] = (1 + inputs.reduce((sum, input) => sum + (expected[input] as number), 0)) % MODULUS;
  });
  return expected;
}

/** What a stop did to worker `index`: `kill()` was called, or the worker actually stopped (its `wait()` settles now). */
type StopEvent = readonly ["killed" | "stopped", number];

/**
 * Records, in order, each `kill()` of the probe's workers and each worker's
 * actual stop. A wrapped worker stops a microtask after its `kill()`, not
 * during it, so a stop that kills an input without waiting for its
 * dependents to stop (no `await` between layers, say) kills it before they
 * have stopped, and the order shows it.
 */
function recordStops(probe: Probe): StopEvent[] {
  const events: StopEvent[] = [];
  probe.workers.forEach((worker, index) => {
    if (worker === undefined) return;
    const kill = worker.kill.bind(worker);
    worker.kill = () => {
      events.push(["killed", index]);
      queueMicrotask(() => {
        events.push(["stopped", index]);
        kill();
      });
    };
  });
  return events;
}

/** Every worker was killed once and stopped, and each only after every one of its dependents had stopped. */
function expectDependentsStoppedFirst(graph: Graph, events: readonly StopEvent[]): void {
  const killedAt = new Map<number, number>();
  const stoppedAt = new Map<number, number>();
  events.forEach(([what, index], position) => (what === "killed" ? killedAt : stoppedAt).set(index, position));
  const all = graph.names.map((_, index) => index);
  expect(events).toHaveLength(2 * graph.size);
  expect([...killedAt.keys()].sort((a, b) => a - b)).toEqual(all);
  expect([...stoppedAt.keys()].sort((a, b) => a - b)).toEqual(all);
  dependentsOf(graph).forEach((dependents, index) => {
    for (const dependent of dependents) {
      expect(stoppedAt.get(dependent) as number, `m${index} killed before its dependent m${dependent} stopped`).toBeLessThan(killedAt.get(index) as number);
    }
  });
}

describe.each(SHAPES.map((shape) => [shape]))("the yardsticks on the %s graph", (shape: Shape) => {
  const graph = makeGraph(shape, SIZE);
  const expected = expectedValues(graph);

  it("the engine starts every manifold once, and each worker's value comes from its inputs' outputs", async () => {
    const probe = new Probe(SIZE);
    const manifolds = makeManifolds(graph, probe);
    const { engine } = makeEngine({ errorDelay: 0 });
    try {
      for (const name of graph.names) engine.install(name, manifolds[name] as Manifold);
      await engine.onIdle();
      expect([...probe.calls]).toEqual(graph.names.map(() => 1));
      expect(values(probe)).toEqual(expected);
    } finally {
      await stop(engine);
    }
  });

  it("the floor calls every start once, in an order where inputs come first, with the same values", () => {
    const probe = new Probe(SIZE);
    runFloor(graph, makeManifolds(graph, probe));
    expect([...probe.calls]).toEqual(graph.names.map(() => 1));
    expect(values(probe)).toEqual(expected);
  });

  it("the reference starts every manifold once with the same values, and stops dependents before their inputs", async () => {
    const probe = new Probe(SIZE);
    const state = await runReference(graph, makeManifolds(graph, probe));
    expect([...probe.calls]).toEqual(graph.names.map(() => 1));
    expect(values(probe)).toEqual(expected);
    const events = recordStops(probe);
    await stopReference(state, 0);
    expectDependentsStoppedFirst(graph, events);
  });

  it("the reference's stop with its waves sorted still stops dependents first, and makes each wave's kills in allocation order", async () => {
    const probe = new Probe(SIZE);
    const state = await runReference(graph, makeManifolds(graph, probe));
    const events = recordStops(probe);
    await stopReference(state, 0, allocationOrder(state));
    expectDependentsStoppedFirst(graph, events);
    // Kills made together (no worker stopped between them) are a wave, or the first kills: each in index order.
    let wave: number[] = [];
    for (const [what, index] of [...events, ["stopped", -1] as const]) {
      if (what === "killed") {
        wave.push(index);
        continue;
      }
      expect(wave, "a wave of kills out of allocation order").toEqual([...wave].sort((a, b) => a - b));
      wave = [];
    }
  });

  it("the reference's release order (stop-order.ts) is the order its stop kills in, each entry once, after all of its dependents", async () => {
    const probe = new Probe(SIZE);
    const state = await runReference(graph, makeManifolds(graph, probe));
    const order = releaseOrder(state).map((entry) => graph.names.indexOf(entry.name));
    expect([...order].sort((a, b) => a - b)).toEqual(graph.names.map((_, index) => index));
    const position = new Map(order.map((index, at) => [index, at]));
    dependentsOf(graph).forEach((dependents, index) => {
      for (const dependent of dependents) expect(position.get(dependent) as number, `m${index} released before its dependent m${dependent}`).toBeLessThan(position.get(index) as number);
    });
    const events = recordStops(probe);
    await stopReference(state, 0);
    expect(events.filter(([what]) => what === "killed").map(([, index]) => index)).toEqual(order);
  });

  it("killing the reference's workers all at once (stop-order.ts) kills every worker in the order given, and resolves once all have stopped", async () => {
    const probe = new Probe(SIZE);
    const state = await runReference(graph, makeManifolds(graph, probe));
    const order = releaseOrder(state);
    const events = recordStops(probe);
    await killAllAtOnce(order);
    expect([...state.entries.values()].filter((entry) => entry.worker !== undefined)).toEqual([]);
    expect(events.filter(([what]) => what === "killed").map(([, index]) => index)).toEqual(order.map((entry) => graph.names.indexOf(entry.name)));
    expect(events.filter(([what]) => what === "stopped")).toHaveLength(SIZE);
  });

  it("the hand-written start starts every manifold once, layer by layer, with the same values, and its stop goes in reverse layers", async () => {
    const probe = new Probe(SIZE);
    const started = await startByHand(graph, makeManifolds(graph, probe));
    expect([...probe.calls]).toEqual(graph.names.map(() => 1));
    expect(values(probe)).toEqual(expected);
    // Every name in exactly one layer (no name twice, none left out), each of its inputs in an earlier one.
    expect(started.layers.flat()).toHaveLength(SIZE);
    const layerOf = new Map<string, number>();
    started.layers.forEach((layer, at) => {
      for (const name of layer) layerOf.set(name, at);
    });
    expect([...layerOf.keys()].sort()).toEqual([...graph.names].sort());
    graph.inputs.forEach((inputs, index) => {
      for (const input of inputs) {
        expect(layerOf.get(graph.names[input] as string) as number).toBeLessThan(layerOf.get(graph.names[index] as string) as number);
      }
    });
    const events = recordStops(probe);
    await stopByHand(started);
    expectDependentsStoppedFirst(graph, events);
  });
});

/**
 * Manifolds with the given inputs by name (each starting an idle worker),
 * and a bench Graph that lists their names: the hand-written start and the
 * reference read only `names` from it, and each manifold's `inputs`.
 */
function namedGraph(inputs: Record<string, string[]>): { graph: Graph; manifolds: Manifolds } {
  const names = Object.keys(inputs);
  const manifolds: Manifolds = {};
  for (const name of names) manifolds[name] = { inputs: inputs[name] as string[], start: () => idleWorker() };
  const graph: Graph = { shape: "chain", size: names.length, names, inputs: names.map(() => []) };
  return { graph, manifolds };
}

describe("the hand-written start refuses what a careful user's code would refuse", () => {
  it("an input that names no manifold", async () => {
    const { graph, manifolds } = namedGraph({ a: [], b: ["a", "nope"] });
    await expect(startByHand(graph, manifolds)).rejects.toThrow("hand-written start: b uses nope, which is not defined");
  });

  it("a cycle, counting the manifolds in or behind it", async () => {
    const { graph, manifolds } = namedGraph({ a: [], b: ["a", "d"], c: ["b"], d: ["c"], e: ["d"] });
    await expect(startByHand(graph, manifolds)).rejects.toThrow("hand-written start: 4 manifolds are in or behind a cycle");
  });
});

describe("the reference refuses what it does not handle", () => {
  it("a start function that returns a promise", async () => {
    const { graph, manifolds } = namedGraph({ a: [] });
    (manifolds.a as { start: unknown }).start = () => Promise.resolve(idleWorker());
    await expect(runReference(graph, manifolds)).rejects.toThrow("reference: a's start function returned a promise");
  });
});
