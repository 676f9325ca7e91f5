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
import type { ManifoldNode } from "./node.js";

/**
 * The order of one shutdown: for each node, how many live dependents must
 * stop before its worker is killed. Made when the engine is killed, so that
 * no node carries shutdown fields for the rest of its life.
 * @internal
 */
export class ShutdownOrder {
  /** Per input: its live installed dependents not yet settled (or stuck). */
  readonly #liveDependents = new Map<ManifoldNode, number>();
  /** The nodes counted in their inputs' `#liveDependents`, until they release them. */
  readonly #counted = new Set<ManifoldNode>();
  /**
   * For an apply: the inputs each node counted, as they were then (an apply
   * removes nodes from the graph and installs others under their names, so
   * the slots no longer lead to them). At shutdown the graph stands still.
   */
  readonly #inputsOf: Map<ManifoldNode, ManifoldNode[]> | undefined;

  /**
   * Counts, for every node of `nodes`, its live dependents among them: the
   * whole installed graph at shutdown, or what an apply removes and restarts
   * (`within` then says which inputs take part; the others are never stopped).
   */
  constructor(nodes: Iterable<ManifoldNode>, within?: ReadonlySet<ManifoldNode>) {
    if (within !== undefined) this.#inputsOf = new Map();
    for (const node of nodes) {
      // A stuck node holds nobody up: its stuck timer has fired and will not fire again.
      if (!node.live || node.stuck) continue;
      this.#counted.add(node);
      const counted: ManifoldNode[] = [];
      for (const slot of node.inputSlots) {
        const input = slot.node;
        if (input === undefined || (within !== undefined && !within.has(input))) continue;
        this.#liveDependents.set(input, (this.#liveDependents.get(input) ?? 0) + 1);
        counted.push(input);
      }
      this.#inputsOf?.set(node, counted);
    }
  }

  /** Whether every dependency it counted has been released. */
  get done(): boolean {
    return this.#counted.size === 0;
  }

  /** Whether `node`'s worker may be killed now: none of its dependents is still live. */
  mayStop(node: ManifoldNode): boolean {
    return !this.#liveDependents.has(node);
  }

  /**
   * `node` no longer holds its inputs up (it settled, or is stuck): each input
   * whose last live dependent it was, and whose worker runs, is passed to `stop`.
   */
  release(node: ManifoldNode, stop: (input: ManifoldNode) => void): void {
    if (!this.#counted.delete(node)) return;
    const inputs = this.#inputsOf?.get(node);
    if (inputs !== undefined) {
      this.#inputsOf?.delete(node);
      for (const input of inputs) this.#releaseInput(input, stop);
    } else {
      for (const slot of node.inputSlots) if (slot.node !== undefined) this.#releaseInput(slot.node, stop);
    }
  }

  #releaseInput(input: ManifoldNode, stop: (input: ManifoldNode) => void): void {
    const left = this.#liveDependents.get(input);
    if (left === undefined) return;
    if (left > 1) {
      this.#liveDependents.set(input, left - 1);
    } else {
      this.#liveDependents.delete(input);
      if (input.phase === "running") stop(input);
    }
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
