/**
 * Rule 9's bookkeeping: which nodes hold their dependents' starts back, and
 * for every blocked node how many of its inputs do. It keeps these counters
 * right and decides nothing: the loop asks it whether a node may start, and
 * it tells the loop when a blocked node might start now.
 *
 * Costs. A node *holds* while its start is in flight or imminent (ready,
 * blocked, starting, or stopped by the engine to be started again after
 * `bounceDelay`). Only blocked nodes keep a count of their holding inputs, so
 * an input walks its dependents only when one of them is blocked
 * (`Slot.blockedDependents`); a node that is not blocked looks at its inputs
 * when its turn in the ready queue comes, as its snapshot is about to anyway.
 * And a start or stop walks no dependents while every dependent still waits
 * for its own start (`Slot.waitingDependents`): they will see the change.
 * A cold start in dependency order therefore walks no dependents list.
 *
 * Rule 8 lives here too: a node installed under the name of an uninstalled
 * one that has not settled yet (it is *retiring*) waits for it.
 */
import type { ManifoldNode, Phase } from "./node.js";
import { waitsForStart } from "./node.js";

/** @internal */
export class Readiness {
  /** Uninstalled nodes whose start or worker has not settled yet, by name (rule 8). */
  readonly retiring = new Map<string, ManifoldNode>();
  /** Told when a blocked node's last holding input let go: it may start now. */
  readonly #mayStart: (node: ManifoldNode) => void;
  /** Shutting down: nothing holds anything back any more. */
  #dying = false;

  constructor(mayStart: (node: ManifoldNode) => void) {
    this.#mayStart = mayStart;
  }

  /** From now on no node holds another back (the engine is shutting down); each node's refresh applies it. */
  stopHolding(): void {
    this.#dying = true;
  }

  /**
   * Recomputes whether `node` holds its dependents back, after anything that
   * decides it changed (its phase, restart reason, stuck flag, or its
   * namesake's). O(dependents) when the answer flips and some dependent is
   * blocked; O(1) otherwise.
   */
  refresh(node: ManifoldNode): void {
    const holding = this.#computeHolding(node);
    if (holding === node.holding) return;
    node.holding = holding;
    const slot = node.slot;
    if (slot === undefined || slot.blockedDependents === 0) return;
    const change = holding ? 1 : -1;
    for (const dependent of slot.dependents) {
      if (dependent.phase !== "blocked") continue;
      dependent.holdingInputs += change;
      if (!holding && this.mayUnblock(dependent)) this.#mayStart(dependent);
    }
  }

  /**
   * Whether dependents' starts should wait for `node`: it is about to start or
   * starting, or the engine stops (or is about to stop) it to start it again
   * after `bounceDelay`.
   * A node waiting out an error delay, stuck, stopped for good, uninstalled or
   * behind a stuck namesake never holds anyone back.
   */
  #computeHolding(node: ManifoldNode): boolean {
    if (this.#dying || !node.installed) return false;
    switch (node.phase) {
      case "ready":
        return true;
      case "blocked":
        return !this.#behindStuck(node);
      case "starting":
        return !node.stuck;
      case "running":
        // To be restarted (an apply stops it once its own dependents have stopped): its new worker is what dependents want.
        return node.restart === "bounce" || node.restart === "input-changed";
      case "stopping":
        return (node.restart === "bounce" || node.restart === "input-changed") && !node.stuck;
      case "delayed":
        return node.restart === "bounce" || node.restart === "input-changed";
      default:
        return false;
    }
  }

  /**
   * Whether `node` waits for an uninstalled namesake that is stuck (rule 8):
   * its start is then no more imminent than a stuck worker's restart, so like
   * a stuck node it holds nobody back.
   */
  #behindStuck(node: ManifoldNode): boolean {
    return this.retiring.size > 0 && this.retiring.get(node.name)?.stuck === true;
  }

  /**
   * Keeps its input slots' counts true as a node enters or leaves `ready` and
   * `blocked` (waiting for its start to be called), and `blocked` itself.
   */
  phaseChanged(node: ManifoldNode, from: Phase, to: Phase): void {
    const wasWaiting = waitsForStart(from);
    if (node.installed && wasWaiting !== waitsForStart(to)) {
      const change = wasWaiting ? -1 : 1;
      for (const slot of node.inputSlots) slot.waitingDependents += change;
    }
    if (from === "blocked") this.#unwatchInputs(node);
    else if (to === "blocked") this.#watchInputs(node);
  }

  /** `node` has just left the graph: it no longer counts as a dependent that waits. */
  removed(node: ManifoldNode): void {
    if (waitsForStart(node.phase)) for (const slot of node.inputSlots) slot.waitingDependents--;
  }

  /** A node entering `blocked` counts its holding inputs, and has their slots keep the count up to date. */
  #watchInputs(node: ManifoldNode): void {
    let holding = 0;
    for (const slot of node.inputSlots) {
      slot.blockedDependents++;
      if (slot.node?.holding === true) holding++;
    }
    node.holdingInputs = holding;
  }

  #unwatchInputs(node: ManifoldNode): void {
    for (const slot of node.inputSlots) slot.blockedDependents--;
    node.holdingInputs = 0;
  }

  /** Rule 9 and rule 8, for a node whose turn in the ready queue came: no installed input holds it back and no namesake is retiring. */
  mayStart(node: ManifoldNode): boolean {
    for (const slot of node.inputSlots) if (slot.node?.holding === true) return false;
    return !this.retiring.has(node.name);
  }

  /** Whether a blocked node may start now: no input holds it back, no namesake is retiring, and the engine is not shutting down. */
  mayUnblock(node: ManifoldNode): boolean {
    return node.phase === "blocked" && node.holdingInputs === 0 && !this.retiring.has(node.name) && !this.#dying;
  }

  /**
   * Whether some dependent of `node` has had its start called, so a change of
   * `node`'s worker must bounce it (the others will see the change by themselves).
   */
  hasCalledDependents(node: ManifoldNode): boolean {
    const slot = node.slot;
    return slot !== undefined && slot.waitingDependents < slot.dependentCount;
  }
}
