/**
 * Shutdown order: dependents stop before their inputs (as systemd, OTP and
 * systemic do; Juju stops everything at once).
 *
 * When the engine is killed, each installed node counts its live dependents
 * (those with a start or worker not yet settled). A running worker is killed
 * when that count is zero; each dependent that settles, or is stuck past its
 * stopTimeout, decrements the count of each of its inputs. Every node and edge
 * is touched a constant number of times: O(N + E) for the whole shutdown.
 */
import { ShutdownTimeoutError, toError } from "./errors.js";
import { Chunked } from "./chunked.js";
import type { ManifoldNode } from "./node.js";
import { keepShape } from "./shapes.js";

/**
 * The order of one shutdown (or one apply's stops): for each node, how many
 * live dependents must stop before its worker is killed. Made when the
 * engine is killed, so that no node carries shutdown fields for the rest of
 * its life; each node is counted by the pass over the nodes that readies
 * them for it (a pass of its own cost a 100,000-manifold shutdown 10 to
 * 20 ms: a node is a cache miss, measured). Counts live in typed arrays
 * indexed by `node.id`: a Map keyed by node cost a 100,000-manifold
 * shutdown about 40% more (measured).
 * @internal
 */
export class ShutdownOrder {
  /** Per input (by id): its live dependents among the counted nodes, not yet settled (or stuck). */
  readonly #liveDependents: Int32Array;
  /** Per node (by id): 1 while it is counted in its inputs' `#liveDependents`, until it releases them. */
  readonly #counted: Uint8Array;
  #countedTotal = 0;
  /**
   * The inputs each counted node counted, as they were then (an apply
   * removes nodes and installs others under their names, so the slots may
   * no longer lead to them): node `id`'s are the nodes in `#inputs` from
   * `#firstInput[id]`, `#inputCount[id]` of them. Read in order when the
   * node releases them, rather than through each input's slot and node:
   * one scattered read per edge instead of three (a 100,000-manifold
   * shutdown spent 40 ms in release before). In chunks: a fan-out's 100,000
   * edges in one array cost page faults (see chunked.ts).
   */
  readonly #firstInput: Int32Array;
  readonly #inputCount: Int32Array;
  readonly #inputs = new Chunked<ManifoldNode>();
  /** The inputs that take part (an apply's); undefined: all (a shutdown). */
  readonly #within: ReadonlySet<ManifoldNode> | undefined;

  /**
   * An order for nodes with ids below `ids` (one more than the largest),
   * counted one by one with {@link ShutdownOrder.count}: the whole installed
   * graph at shutdown, or what an apply removes and restarts (`within` then
   * says which inputs take part; the others are never stopped).
   */
  constructor(ids: number, within?: ReadonlySet<ManifoldNode>) {
    this.#liveDependents = new Int32Array(ids);
    this.#counted = new Uint8Array(ids);
    this.#firstInput = new Int32Array(ids);
    this.#inputCount = new Int32Array(ids);
    this.#within = within;
  }

  /** Counts `node`, if live, as a dependent its inputs wait for. Each node once, all before the first release. */
  count(node: ManifoldNode): void {
    // A stuck node holds nobody up: its stuck timer has fired and will not fire again.
    if (!node.live || node.stuck) return;
    this.#counted[node.id] = 1;
    this.#countedTotal++;
    const first = this.#inputs.length;
    for (const slot of node.inputSlots) {
      const input = slot.node;
      if (input === undefined || (this.#within !== undefined && !this.#within.has(input))) continue;
      (this.#liveDependents[input.id] as number)++;
      this.#inputs.push(input);
    }
    this.#firstInput[node.id] = first;
    this.#inputCount[node.id] = this.#inputs.length - first;
  }

  /** Whether every dependency it counted has been released. */
  get done(): boolean {
    return this.#countedTotal === 0;
  }

  /** Whether `node`'s worker may be killed now: none of its dependents is still live. */
  mayStop(node: ManifoldNode): boolean {
    // A node installed after the order was made (its id past the arrays) waits for nothing in it.
    return (this.#liveDependents[node.id] ?? 0) === 0;
  }

  /**
   * `node` no longer holds its inputs up (it settled, or is stuck): each input
   * whose last live dependent it was, and whose worker runs, is passed to `stop`.
   */
  release(node: ManifoldNode, stop: (input: ManifoldNode) => void): void {
    if (this.#counted[node.id] !== 1) return;
    this.#counted[node.id] = 0;
    this.#countedTotal--;
    const first = this.#firstInput[node.id] as number;
    const end = first + (this.#inputCount[node.id] as number);
    for (let at = first; at < end; at++) this.#releaseInput(this.#inputs.at(at), stop);
  }

  #releaseInput(input: ManifoldNode, stop: (input: ManifoldNode) => void): void {
    const left = this.#liveDependents[input.id] as number;
    if (left === 0) return;
    this.#liveDependents[input.id] = left - 1;
    if (left !== 1) return;
    if (input.phase === "running") stop(input);
  }
}

/**
 * What `wait()` settles with (rule 7): ShutdownTimeoutError naming the stuck
 * manifolds (cause: the worst fatal error) if any; else the worst fatal error
 * after the config filter (whose `undefined`/`null` result, like no fatal
 * error at all, means success: `undefined` is returned).
 * @internal
 */
export function shutdownOutcome(stuck: string[], worst: Error | undefined, filter: ((error: Error) => unknown) | undefined): Error | undefined {
  if (stuck.length > 0) return new ShutdownTimeoutError(undefined, { manifolds: [...stuck].sort(), cause: worst });
  if (worst === undefined) return undefined;
  let error: unknown = worst;
  if (filter !== undefined) {
    try {
      error = filter(worst);
    } catch (thrown) {
      error = thrown;
    }
  }
  return error === undefined || error === null ? undefined : toError(error, "EngineConfig.filter");
}

// A shutdown order exists only while the engine (or an apply) stops workers (shapes.ts).
keepShape(new ShutdownOrder(0));
