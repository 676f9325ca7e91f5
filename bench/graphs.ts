/**
 * The graph shapes the benchmark installs. A graph is only names and edges;
 * `workload.ts` turns it into manifolds.
 *
 * Node `i` is named `m${i}`, and every node's inputs come before it, so index
 * order is a topological order (the order the floor calls start functions in,
 * and the default install order).
 */

export const SHAPES = ["chain", "fanout", "layered"] as const;
export type Shape = (typeof SHAPES)[number];

export interface Graph {
  readonly shape: Shape;
  readonly size: number;
  readonly names: readonly string[];
  /** inputs[i]: indices of node i's inputs, all smaller than i. */
  readonly inputs: readonly (readonly number[])[];
}

/** Layered DAG: how many layers, and how many distinct inputs each node past layer 0 has. */
export const LAYERS = 10;
export const LAYERED_INPUTS = 3;
/** Fixed, so every run (and every machine) measures the same graph. */
export const LAYERED_SEED = 0x5eed;

/** A shape named on the command line (`option` names the option in the error). */
export function parseShape(text: string | undefined, option: string): Shape {
  if (!SHAPES.includes(text as Shape)) throw new RangeError(`${option}: unknown shape ${JSON.stringify(text)} (the shapes are ${SHAPES.join(", ")})`);
  return text as Shape;
}

export function makeGraph(shape: Shape, size: number): Graph {
  if (!Number.isInteger(size) || size < 2) throw new RangeError(`graph size must be an integer >= 2 (got ${size})`);
  const names = Array.from({ length: size }, (_, i) => `m${i}`);
  return { shape, size, names, inputs: INPUTS[shape](size) };
}

const INPUTS: Record<Shape, (size: number) => number[][]> = {
  /** Each node depends on the previous one: the deepest graph, one long bounce. */
  chain: (size) => Array.from({ length: size }, (_, i) => (i === 0 ? [] : [i - 1])),
  /** One root, every other node depends on it: the widest dependents list. */
  fanout: (size) => Array.from({ length: size }, (_, i) => (i === 0 ? [] : [0])),
  /**
   * 10 equal layers; each node past layer 0 has 3 distinct inputs drawn
   * uniformly from all earlier layers: something like a real agent's graph,
   * wide and shallow with shared inputs.
   */
  layered: (size) => {
    if (size < LAYERS * LAYERED_INPUTS) throw new RangeError(`a layered graph needs at least ${LAYERS * LAYERED_INPUTS} nodes`);
    const random = mulberry32(LAYERED_SEED);
    const perLayer = Math.ceil(size / LAYERS);
    const inputs: number[][] = [];
    for (let i = 0; i < size; i++) {
      const earlier = Math.floor(i / perLayer) * perLayer; // nodes in earlier layers: 0..earlier-1
      const chosen = new Set<number>();
      while (earlier > 0 && chosen.size < LAYERED_INPUTS) chosen.add(Math.floor(random() * earlier));
      inputs.push([...chosen]);
    }
    return inputs;
  },
};

/** For each node, the indices of the nodes that list it as an input. */
export function dependentsOf(graph: Graph): number[][] {
  const dependents: number[][] = graph.names.map(() => []);
  graph.inputs.forEach((inputs, i) => {
    for (const input of inputs) (dependents[input] as number[]).push(i);
  });
  return dependents;
}

/** Every node that depends on `root` directly or through others (not `root` itself). */
export function transitiveDependents(graph: Graph, root: number): Set<number> {
  const dependents = dependentsOf(graph);
  const found = new Set<number>();
  const stack = [root];
  while (stack.length > 0) {
    for (const dependent of dependents[stack.pop() as number] as number[]) {
      if (found.has(dependent)) continue;
      found.add(dependent);
      stack.push(dependent);
    }
  }
  return found;
}

/** A small, fast, seedable PRNG (mulberry32): the same graph everywhere. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
