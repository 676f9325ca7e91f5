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
import type { Graph } from "./graph.js";
import type { ManifoldNode } from "./node.js";

/** Counts, for every installed node, its live installed dependents. @internal */
export function countLiveDependents(graph: Graph<ManifoldNode>): void {
  for (const node of graph.nodes()) {
    // A stuck node holds nobody up: its stuck timer has fired and will not fire again.
    if (!node.live || node.stuck) continue;
    node.countedForShutdown = true;
    for (const slot of node.inputSlots) {
      const input = slot.node;
      if (input !== undefined) input.liveDependents++;
    }
  }
}

/**
 * `node` no longer holds its inputs up (it settled, or is stuck): each input
 * whose last live dependent it was, and whose worker runs, is passed to `stop`.
 * @internal
 */
export function releaseInputs(node: ManifoldNode, stop: (input: ManifoldNode) => void): void {
  if (!node.countedForShutdown) return;
  node.countedForShutdown = false;
  for (const slot of node.inputSlots) {
    const input = slot.node;
    if (input === undefined || input.liveDependents === 0) continue;
    if (--input.liveDependents === 0 && input.phase === "running") stop(input);
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
