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
import { runReference, stopReference } from "../bench/reference.js";
import { makeManifolds, Probe, runFloor } from "../bench/workload.js";
import type { Manifold, Manifolds, Worker } from "../src/index.js";
import { makeEngine, stop } from "./fixtures.js";

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
    expected[index] = (1 + inputs.reduce((sum, input) => sum + (expected[input] as number), 0)) % 1_000_003;
  });
  return expected;
}

/** Records the order the probe's workers are killed in (by index), wrapping each worker's `kill`. */
function recordKills(probe: Probe): number[] {
  const killed: number[] = [];
  probe.workers.forEach((worker, index) => {
    if (worker === undefined) return;
    const kill = worker.kill.bind(worker);
    worker.kill = () => {
      killed.push(index);
      kill();
    };
  });
  return killed;
}

/** Every node is killed only after each of its dependents was. */
function expectDependentsKilledFirst(graph: Graph, killed: readonly number[]): void {
  expect([...killed].sort((a, b) => a - b)).toEqual(graph.names.map((_, index) => index));
  const at = new Map(killed.map((index, position) => [index, position]));
  dependentsOf(graph).forEach((dependents, index) => {
    for (const dependent of dependents) {
      expect(at.get(dependent) as number, `m${dependent} (a dependent of m${index}) killed before it`).toBeLessThan(at.get(index) as number);
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
    for (const name of graph.names) engine.install(name, manifolds[name] as Manifold);
    await engine.onIdle();
    expect([...probe.calls]).toEqual(graph.names.map(() => 1));
    expect(values(probe)).toEqual(expected);
    await stop(engine);
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
    expect(state.started).toBe(SIZE);
    expect([...probe.calls]).toEqual(graph.names.map(() => 1));
    expect(values(probe)).toEqual(expected);
    const killed = recordKills(probe);
    await stopReference(state, 0);
    expectDependentsKilledFirst(graph, killed);
  });

  it("the hand-written start starts every manifold once, layer by layer, with the same values, and its stop goes in reverse layers", async () => {
    const probe = new Probe(SIZE);
    const started = await startByHand(graph, makeManifolds(graph, probe));
    expect([...probe.calls]).toEqual(graph.names.map(() => 1));
    expect(values(probe)).toEqual(expected);
    // Every name in exactly one layer, each of its inputs in an earlier one.
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
    expect(started.workers.size).toBe(SIZE);
    expect(started.failures).toEqual([]);
    const killed = recordKills(probe);
    await stopByHand(started);
    expectDependentsKilledFirst(graph, killed);
  });
});

/** A graph of the given inputs by name, in the bench's Graph form, and manifolds of the workload for it. */
function namedGraph(inputs: Record<string, string[]>): { graph: Graph; manifolds: Manifolds } {
  const names = Object.keys(inputs);
  const manifolds: Manifolds = {};
  for (const name of names) {
    manifolds[name] = {
      inputs: inputs[name] as string[],
      start: (): Worker => ({ kill: () => undefined, wait: () => Promise.resolve() }),
    };
  }
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
    (manifolds.a as { start: unknown }).start = () => Promise.resolve({ kill: () => undefined, wait: () => Promise.resolve() });
    await expect(runReference(graph, manifolds)).rejects.toThrow("reference: a's start function returned a promise");
  });
});
