/**
 * The dependency graph: installed nodes by name, and for every name (installed
 * or not) the installed nodes that declare it as an input.
 *
 * Cycle checks are incremental: adding node `n` with inputs `I` closes a cycle
 * only if `n` already reaches some input in `I` through installed dependents,
 * so the search starts at `n` and visits only what depends on it. Installing
 * in dependency order therefore costs O(inputs) per node, never a whole-graph
 * validation (Juju's engine re-validates everything on each install).
 */
import { CycleError } from "./errors.js";
import { checkManifold, type Manifolds } from "./manifold.js";

/** What the graph needs to know of a node. @internal */
export interface GraphNode {
  readonly name: string;
  readonly inputs: readonly string[];
}

/** @internal */
export class Graph<N extends GraphNode> {
  readonly #nodes = new Map<string, N>();
  /** For each name, the installed nodes listing it in their inputs. */
  readonly #dependents = new Map<string, Set<N>>();

  get size(): number {
    return this.#nodes.size;
  }

  get(name: string): N | undefined {
    return this.#nodes.get(name);
  }

  nodes(): IterableIterator<N> {
    return this.#nodes.values();
  }

  /** The installed nodes that declare `name` as an input (empty when none). */
  dependentsOf(name: string): ReadonlySet<N> {
    return this.#dependents.get(name) ?? EMPTY;
  }

  /**
   * The cycle that adding `name` with `inputs` would close, in "depends on"
   * order with the first name repeated last, or `undefined` if none.
   * Searches only the nodes that (transitively) depend on `name`.
   */
  findCycle(name: string, inputs: readonly string[]): string[] | undefined {
    if (inputs.includes(name)) return [name, name];
    if (!this.#dependents.has(name)) return undefined;
    // A cycle runs through installed nodes only: inputs not installed yet
    // cannot close one, so installing in any order of a chain stays O(inputs).
    const wanted = new Set(inputs.filter((input) => this.#nodes.has(input)));
    if (wanted.size === 0) return undefined;
    // parent.get(x) is the node x depends on along the path found from `name`.
    const parent = new Map<string, string>([[name, name]]);
    const stack = [name];
    while (stack.length > 0) {
      const current = stack.pop() as string;
      for (const dependent of this.dependentsOf(current)) {
        if (parent.has(dependent.name)) continue;
        parent.set(dependent.name, current);
        if (wanted.has(dependent.name)) return this.#cycleThrough(name, dependent.name, parent);
        stack.push(dependent.name);
      }
    }
    return undefined;
  }

  /** `name` depends on `input`, which depends (via `parent`) back on `name`. */
  #cycleThrough(name: string, input: string, parent: Map<string, string>): string[] {
    const cycle = [name];
    for (let at = input; at !== name; at = parent.get(at) as string) cycle.push(at);
    cycle.push(name);
    return cycle;
  }

  /**
   * Adds `node`.
   * @throws CycleError if its inputs close a cycle; nothing is changed then.
   */
  add(node: N): void {
    const cycle = this.findCycle(node.name, node.inputs);
    if (cycle !== undefined) {
      throw new CycleError(
        `cannot install manifold ${JSON.stringify(node.name)}: its inputs close a dependency cycle ${cycle.map((n) => JSON.stringify(n)).join(" -> ")}`,
        { cycle },
      );
    }
    this.#nodes.set(node.name, node);
    for (const input of node.inputs) {
      let set = this.#dependents.get(input);
      if (set === undefined) {
        set = new Set();
        this.#dependents.set(input, set);
      }
      set.add(node);
    }
  }

  /** Removes `node` and its edges: O(its inputs). Dependents of its name stay listed. */
  remove(node: N): void {
    if (this.#nodes.get(node.name) !== node) return;
    this.#nodes.delete(node.name);
    for (const input of node.inputs) {
      const set = this.#dependents.get(input);
      if (set === undefined) continue;
      set.delete(node);
      if (set.size === 0) this.#dependents.delete(input);
    }
  }
}

const EMPTY: ReadonlySet<never> = new Set<never>();

/**
 * Throws CycleError if the manifolds' inputs form a cycle; inputs outside the
 * set are ignored. Also throws the TypeError `install` would for a malformed
 * manifold, so a set that passes can be installed with `installAll`.
 */
export function validate(manifolds: Manifolds): void {
  if (manifolds === null || typeof manifolds !== "object") {
    throw new TypeError(`validate(manifolds): manifolds must be an object of name -> manifold (got ${String(manifolds)})`);
  }
  const graph = new Graph<GraphNode>();
  for (const name of Object.keys(manifolds)) {
    const checked = checkManifold(name, manifolds[name]);
    graph.add({ name: checked.name, inputs: checked.inputs });
  }
}
