/**
 * The dependency graph.
 *
 * Every name that is installed, or that some installed node lists as an
 * input, has a slot: the node installed under it (if any) and the installed
 * nodes that list it as an input. Nodes keep references to their own slot and
 * to their inputs' slots, so the loop follows edges by reference and never
 * looks a name up on a hot path.
 *
 * Cycle checks are incremental: adding node `n` with inputs `I` closes a cycle
 * only if `n` already reaches some installed input in `I` through installed
 * dependents, so the search starts at `n` and visits only what depends on it.
 * Installing in dependency order (or its reverse) costs O(inputs) per node,
 * never a whole-graph validation (Juju's engine re-validates everything on
 * each install).
 */
import { AlreadyInstalledError, CycleError, quote } from "./errors.js";
import { checkManifold, type Manifolds } from "./manifold.js";

/** A name in the graph: who is installed under it, and who lists it as an input. @internal */
export class Slot<N> {
  readonly name: string;
  node: N | undefined = undefined;
  /**
   * The installed nodes listing this name as an input: none, the one node
   * itself (a 1-element array costs 56 B, and in a chain every name has one
   * dependent), a small array replaced (never changed) on each edit, or a
   * Set once there are many. Most names have a handful of dependents, and a
   * Set costs ~200 bytes where a 3-element array costs ~70; replacing rather
   * than changing the array also keeps any iteration in progress valid.
   */
  #dependents: N | readonly N[] | Set<N> | undefined = undefined;
  /**
   * How many of those dependents are blocked (SPEC rule 9) and keep a count of
   * their holding inputs, which the node installed here updates when it starts
   * or stops holding them back. While it is 0 nobody needs telling, so a cold
   * start in dependency order never walks a dependents list.
   */
  blockedDependents = 0;
  /**
   * How many of those dependents are waiting for their start to be called
   * (ready or blocked). They need no bounce when this name's worker comes or
   * goes, since their start will see the change; while all of them are
   * waiting (as in a cold start), a start or stop here walks none of them.
   */
  waitingDependents = 0;

  constructor(name: string) {
    this.name = name;
  }

  /** The installed nodes listing this name as an input (a new 1-element array for a single one: a walk per bounce uses forEachDependent). */
  get dependents(): Iterable<N> {
    const dependents = this.#dependents;
    if (dependents === undefined) return NONE;
    return Array.isArray(dependents) || dependents instanceof Set ? (dependents as Iterable<N>) : [dependents as N];
  }

  /** Calls `visit` with each installed node listing this name as an input, as iterating `dependents` would, without making an array for a single one. */
  forEachDependent(visit: (dependent: N) => void): void {
    const dependents = this.#dependents;
    if (dependents === undefined) return;
    if (Array.isArray(dependents)) {
      for (const dependent of dependents as readonly N[]) visit(dependent);
    } else if (dependents instanceof Set) {
      for (const dependent of dependents as Set<N>) visit(dependent);
    } else {
      visit(dependents as N);
    }
  }

  /** How many installed nodes list this name as an input (read from the list: a field for it cost 8 B per name). */
  get dependentCount(): number {
    const dependents = this.#dependents;
    if (dependents === undefined) return 0;
    if (Array.isArray(dependents)) return dependents.length;
    return dependents instanceof Set ? (dependents as Set<N>).size : 1;
  }

  get hasDependents(): boolean {
    return this.#dependents !== undefined; // (an emptied Set is dropped)
  }

  addDependent(node: N): void {
    const dependents = this.#dependents;
    if (dependents === undefined) {
      this.#dependents = node;
    } else if (dependents instanceof Set) {
      (dependents as Set<N>).add(node);
    } else if (!Array.isArray(dependents)) {
      this.#dependents = [dependents as N, node];
    } else if (dependents.length < SMALL) {
      // An exact copy by index (spreading goes through the iterator protocol, several times slower).
      // Not push: V8 grows an array by 16 slots, so a 3-dependent list would keep 200 B, not 72 (measured).
      const count = dependents.length;
      const next = new Array<N>(count + 1);
      for (let i = 0; i < count; i++) next[i] = dependents[i] as N;
      next[count] = node;
      this.#dependents = next;
    } else {
      this.#dependents = new Set([...(dependents as readonly N[]), node]);
    }
  }

  removeDependent(node: N): void {
    const dependents = this.#dependents;
    if (dependents === undefined) return;
    if (Array.isArray(dependents)) {
      const rest = (dependents as readonly N[]).filter((dependent) => dependent !== node);
      this.#dependents = rest.length > 1 ? rest : rest[0];
    } else if (dependents instanceof Set) {
      if ((dependents as Set<N>).delete(node) && (dependents as Set<N>).size === 0) this.#dependents = undefined;
    } else if (dependents === node) {
      this.#dependents = undefined;
    }
  }
}

/** The first `count` of `items` in a new array of exactly `length` (slice, then growing it, would reserve 16 more slots: 136 B). */
function copyOf<T>(items: readonly T[], count: number, length: number): T[] {
  const copy = new Array<T>(length);
  for (let i = 0; i < count; i++) copy[i] = items[i] as T;
  return copy;
}

/** Up to this many dependents are kept in an array; more in a Set. */
const SMALL = 16;
const NONE: readonly never[] = Object.freeze([]);

/** What the graph needs of a node; it fills in the slots. @internal */
export interface GraphNode {
  readonly name: string;
  slot: Slot<this> | undefined;
  inputSlots: readonly Slot<this>[];
  /** Its place in the graph's list of installed nodes (kept by the graph). */
  listIndex: number;
}

/** @internal */
export class Graph<N extends GraphNode> {
  readonly #slots = new Map<string, Slot<N>>();
  /**
   * Installed nodes in installation order (what reports list), with a hole
   * where one was removed until enough holes pile up to compact. An array
   * costs 8 B per node where a Set cost about 30, and no hashing.
   */
  #installed: (N | undefined)[] = [];
  #holes = 0;
  /** The input slots of the node added last (see #linkInputs). */
  #lastInputSlots: readonly Slot<N>[] = [];
  /** Names some installed node lists as an input but nobody installed (a typo, or not yet installed). */
  readonly #absent = new Set<Slot<N>>();

  get size(): number {
    return this.#installed.length - this.#holes;
  }

  get(name: string): N | undefined {
    return this.#slots.get(name)?.node;
  }

  /** Installed nodes, in installation order: a new array, which later changes leave alone. */
  nodes(): N[] {
    if (this.#holes === 0) return this.#installed.slice() as N[];
    const nodes = new Array<N>(this.size);
    let at = 0;
    for (const node of this.#installed) if (node !== undefined) nodes[at++] = node;
    return nodes;
  }

  /**
   * The installed list itself, in installation order, with `undefined`
   * where a node was removed: for a pass that neither adds nor removes
   * nodes. (nodes() copies it: a fresh 800 KB array at 100,000 nodes, 4 to
   * 6 ms of a shutdown in page faults, measured.)
   */
  installedView(): readonly (N | undefined)[] {
    return this.#installed;
  }

  /** Names listed as an input by some installed node but not installed, with who lists them. */
  absentInputs(): Iterable<Slot<N>> {
    return this.#absent;
  }

  /** The installed nodes listing `name` as an input, whether or not `name` is installed. */
  dependentsOf(name: string): Iterable<N> {
    return this.#slots.get(name)?.dependents ?? NONE;
  }

  /** Every installed name. */
  *names(): IterableIterator<string> {
    for (const node of this.#installed) if (node !== undefined) yield node.name;
  }

  /**
   * The cycle that adding `name` with `inputs` would close, in "depends on"
   * order with the first name repeated last, or `undefined` if none.
   * Searches only the nodes that (transitively) depend on `name`.
   */
  findCycle(name: string, inputs: readonly string[]): string[] | undefined {
    return this.#findCycle(name, inputs, this.#slots.get(name));
  }

  #findCycle(name: string, inputs: readonly string[], start: Slot<N> | undefined): string[] | undefined {
    if (inputs.includes(name)) return [name, name];
    if (start === undefined || !start.hasDependents) return undefined;
    // A cycle runs through installed nodes only: inputs not installed yet
    // cannot close one, so installing a chain in either order stays O(inputs).
    const wanted = new Set(inputs.filter((input) => this.get(input) !== undefined));
    if (wanted.size === 0) return undefined;
    // parent.get(x) is the node x depends on along the path found from `name`.
    const parent = new Map<string, string>([[name, name]]);
    const stack: Slot<N>[] = [start];
    while (stack.length > 0) {
      const current = stack.pop() as Slot<N>;
      for (const dependent of current.dependents) {
        if (parent.has(dependent.name)) continue;
        parent.set(dependent.name, current.name);
        if (wanted.has(dependent.name)) return this.#cycleThrough(name, dependent.name, parent);
        if (dependent.slot !== undefined) stack.push(dependent.slot);
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
   * Adds `node`, whose inputs are named `inputs`, and fills in its slots.
   * @throws AlreadyInstalledError if its name is taken, CycleError if its
   * inputs close a cycle; nothing is changed then.
   */
  add(node: N, inputs: readonly string[]): void {
    // One lookup of the name serves the duplicate check, the cycle search and the slot.
    let slot = this.#slots.get(node.name);
    if (slot?.node !== undefined) throw new AlreadyInstalledError(undefined, { manifoldName: node.name });
    const cycle = this.#findCycle(node.name, inputs, slot);
    if (cycle !== undefined) {
      throw new CycleError(
        // Worded for both install and validate (which installs nothing).
        `manifold ${quote(node.name)}: its inputs close a dependency cycle ${cycle.map(quote).join(" -> ")}; remove one of these inputs`,
        { cycle },
      );
    }
    if (slot === undefined) {
      slot = new Slot<N>(node.name);
      this.#slots.set(node.name, slot);
    }
    slot.node = node;
    node.slot = slot;
    this.#absent.delete(slot);
    node.inputSlots = this.#linkInputs(node, inputs);
    node.listIndex = this.#installed.length;
    this.#installed.push(node);
  }

  /**
   * Lists `node` as a dependent of each of `inputs`' slots, and returns the
   * slots. Arrays of slots are never changed, so a node whose inputs are the
   * same slots as the last added node's shares its array: many workers of one
   * input (a fan-out) keep one array, not one each (56 B per manifold).
   */
  #linkInputs(node: N, inputs: readonly string[]): readonly Slot<N>[] {
    const last = this.#lastInputSlots;
    let inputSlots: Slot<N>[] | undefined = last.length === inputs.length ? undefined : new Array<Slot<N>>(inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      const inputSlot = this.#slot(inputs[i] as string);
      inputSlot.addDependent(node);
      if (inputSlot.node === undefined) this.#absent.add(inputSlot);
      if (inputSlots === undefined && inputSlot !== last[i]) inputSlots = copyOf(last, i, inputs.length);
      if (inputSlots !== undefined) inputSlots[i] = inputSlot;
    }
    if (inputSlots === undefined) return last;
    this.#lastInputSlots = inputSlots;
    return inputSlots;
  }

  /**
   * Removes `node` and its edges: O(its inputs). Dependents of its name stay
   * listed (in the slot the node keeps a reference to).
   */
  remove(node: N): void {
    const slot = node.slot;
    if (slot === undefined || slot.node !== node) return;
    slot.node = undefined;
    this.#unlist(node);
    if (slot.hasDependents) this.#absent.add(slot);
    this.#release(slot);
    for (const inputSlot of node.inputSlots) {
      inputSlot.removeDependent(node);
      this.#release(inputSlot);
    }
  }

  /** Leaves a hole in the list; compacts it once holes are half of it, so removals stay O(1) amortised. */
  #unlist(node: N): void {
    this.#installed[node.listIndex] = undefined;
    if (++this.#holes * 2 < this.#installed.length) return;
    const kept: N[] = [];
    for (const installed of this.#installed) {
      if (installed === undefined) continue;
      installed.listIndex = kept.length;
      kept.push(installed);
    }
    this.#installed = kept;
    this.#holes = 0;
  }

  #slot(name: string): Slot<N> {
    let slot = this.#slots.get(name);
    if (slot === undefined) {
      slot = new Slot<N>(name);
      this.#slots.set(name, slot);
    }
    return slot;
  }

  /** Forgets a slot nobody uses any more (a later install of the name makes a new one). */
  #release(slot: Slot<N>): void {
    if (slot.node !== undefined || slot.hasDependents) return;
    this.#absent.delete(slot);
    if (this.#slots.get(slot.name) === slot) this.#slots.delete(slot.name);
  }
}

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
    graph.add({ name: checked.name, slot: undefined, inputSlots: [], listIndex: -1 }, checked.inputs);
  }
}
