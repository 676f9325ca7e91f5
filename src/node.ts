/**
 * One manifold's state as the engine loop sees it. Only the loop changes it.
 *
 * Phases (what the node is doing now):
 *
 *     idle ──► delayed ──► ready ──► blocked ──► starting ──► running ──► stopping ──► idle …
 *                  (timer)    (ready queue) (rule 9)   (start called)  (worker up)   (killed)
 *
 * `idle` covers never started, completed, MissingError and shut down.
 * A node is *live* while it has a start function or a worker that has not
 * settled (starting, running, stopping): that is what rule 8 ("never two
 * workers") and shutdown wait for.
 */
import type { Slot } from "./graph.js";
import type { Manifold } from "./manifold.js";
import type { LazyAbort } from "./start-context.js";
import type { Deadline } from "./watchdog.js";
import type { Worker } from "./workers.js";

/** @internal */
export type Phase = "idle" | "delayed" | "ready" | "blocked" | "starting" | "running" | "stopping";

/** Ready or blocked: the node's start is due but has not been called, so it will see any input change by itself. @internal */
export function waitsForStart(phase: Phase): boolean {
  return phase === "ready" || phase === "blocked";
}

/** One entry of a manifold's resource log: a `getResource` call of its last start attempt. */
export type ResourceLogEntry = { name: string; error?: string };

/** @internal */
export class ManifoldNode {
  readonly name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly manifold: Manifold<any, any>;
  readonly inputs: readonly string[];
  /** Index of each input, built only for manifolds with many inputs. */
  readonly #inputIndex: Map<string, number> | undefined;

  /** Its name's slot in the graph (set when installed; kept after uninstall). */
  slot: Slot<this> | undefined = undefined;
  /** Its inputs' slots, in the order of `inputs`. */
  inputSlots: readonly Slot<this>[] = [];

  /** False once uninstalled (the node may live on until its worker stops). */
  installed = true;
  phase: Phase = "idle";
  /** Clock time at which the reported state last changed. */
  since: number;

  /** Generation of the current start attempt; messages of older attempts are stale. */
  attempt = 0;
  abort: LazyAbort | undefined;
  worker: Worker | undefined;
  /** The current worker was accepted as started, so its stop bounces dependents. */
  workerRan = false;
  /** After the current start or worker settles, start again (after bounceDelay). */
  restartWanted = false;

  /** This node has a start in flight or imminent: dependents' starts wait for it (rule 9). */
  holding = false;
  /** While blocked: how many of its installed inputs are holding (kept exact by the loop); 0 otherwise. */
  holdingInputs = 0;

  timer: unknown = undefined;
  timerToken = 0;
  /** The pending timer is a bounce (so it holds dependents back); false for an error delay. */
  timerIsBounce = false;

  /** Its stuck-worker deadline while the engine waits for it to stop. */
  deadline: Deadline<ManifoldNode> | undefined = undefined;
  stuck = false;

  /** Most recent error (after filter), kept until the next successful start. */
  error: Error | undefined = undefined;
  startCount = 0;
  lastStart: number | undefined = undefined;
  recentErrors = 0;
  /** Names asked of getResource by the last start attempt (often `inputs` itself). */
  resourceNames: readonly string[] | undefined = undefined;
  /** Errors of those calls, by position; undefined when none failed. */
  resourceErrors: readonly (string | undefined)[] | undefined = undefined;

  /** Callers of `uninstall` waiting for this node to stop. */
  uninstallWaiters: (() => void)[] | undefined = undefined;

  /** During shutdown: live dependents that must stop before this worker is killed. */
  liveDependents = 0;
  /** During shutdown: this node was counted in its inputs' `liveDependents`. */
  countedForShutdown = false;

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  constructor(name: string, manifold: Manifold<any, any>, inputs: readonly string[], now: number) {
    this.name = name;
    this.manifold = manifold;
    this.inputs = inputs;
    this.since = now;
    this.#inputIndex = inputs.length > 16 ? new Map(inputs.map((input, i) => [input, i])) : undefined;
  }

  /** Position of `name` in `inputs`, or -1. */
  indexOfInput(name: string): number {
    return this.#inputIndex !== undefined ? (this.#inputIndex.get(name) ?? -1) : this.inputs.indexOf(name);
  }

  get live(): boolean {
    return this.phase === "starting" || this.phase === "running" || this.phase === "stopping";
  }

  /** The state shown in reports. */
  get reportState(): "starting" | "started" | "stopping" | "stopped" {
    switch (this.phase) {
      case "delayed":
      case "ready":
      case "blocked":
      case "starting":
        return "starting";
      case "running":
        return "started";
      case "stopping":
        return "stopping";
      default:
        return "stopped";
    }
  }

  /**
   * Whether dependents' starts should wait for this node (SPEC rule 9): it is
   * about to start or starting, or it was stopped by the engine and will be
   * started again after `bounceDelay`. A node waiting out an error delay, stuck,
   * stopped for good or uninstalled never holds anyone back.
   */
  computeHolding(dying: boolean): boolean {
    if (dying || !this.installed) return false;
    switch (this.phase) {
      case "ready":
      case "blocked":
        return true;
      case "starting":
        return !this.stuck;
      case "stopping":
        return this.restartWanted && !this.stuck;
      case "delayed":
        return this.timerIsBounce;
      default:
        return false;
    }
  }
}
