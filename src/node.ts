/**
 * One manifold's state as the engine loop sees it. Only the loop changes it
 * (readiness.ts keeps the rule-9 counters on it, at the loop's request).
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
import type { CheckedManifold, Manifold } from "./manifold.js";
import type { AttemptMessage } from "./start-attempt.js";
import type { StartAttempt } from "./start-context.js";
import type { SupervisionRecord } from "./supervision.js";
import type { Worker } from "./workers.js";
import { keepShape } from "./shapes.js";

/** @internal */
export type Phase = "idle" | "delayed" | "ready" | "blocked" | "starting" | "running" | "stopping";

/**
 * Why the node will start again: after its worker (or start) settles while
 * `stopping`/`starting`, or when its timer fires while `delayed`.
 * - `none`: it will not (uninstalled, completed, shutting down);
 * - `bounce`: it asked for it (BounceError) or an operator did: after bounceDelay;
 * - `input-changed`: an input's worker came or went: after bounceDelay;
 * - `failed`: it failed, or the engine stopped it for its own reasons (a
 *   missed heartbeat): after errorDelay with backoff.
 * The two bounce reasons hold dependents back (rule 9); a failure does not.
 * @internal
 */
export type RestartReason = "none" | "bounce" | "input-changed" | "failed";

/** Ready or blocked: the node's start is due but has not been called, so it will see any input change by itself. @internal */
export function waitsForStart(phase: Phase): boolean {
  return phase === "ready" || phase === "blocked";
}

/** The layout of `ManifoldNode.#bits`. */
const BITS = {
  phase: 0b111,
  restart: 0b11 << 3,
  workerAccepted: 1 << 5,
  holding: 1 << 6,
  busy: 1 << 7,
  stuck: 1 << 8,
  logIsInputs: 1 << 9,
  logIsEmpty: 1 << 10,
  timerPending: 1 << 11,
  oneRecentError: 1 << 12,
} as const;
const RESTART_SHIFT = 3;

const PHASES: readonly Phase[] = ["idle", "delayed", "ready", "blocked", "starting", "running", "stopping"];
const REASONS: readonly RestartReason[] = ["none", "bounce", "input-changed", "failed"];
const NO_NAMES: readonly string[] = Object.freeze([]);
/** Until the graph links a node's inputs: shared, so a node allocates no empty array of its own (alloc.ts at 100k: 33 to 35 B per install). */
const NO_SLOTS: readonly never[] = Object.freeze([]);

/** What a start attempt's resource log says when it asked for every input, in order, without error (the usual log): no list is kept. @internal */
export const ALL_INPUTS: readonly string[] = Object.freeze(["(all inputs)"]);

/** `bits` with `bit` set to `value`. (A function, not a private method: a class with private methods brands every instance, 8 B per node.) */
function withBit(bits: number, bit: number, value: boolean): number {
  return value ? bits | bit : bits & ~bit;
}

function phaseCode(phase: Phase): number {
  switch (phase) {
    case "idle":
      return 0;
    case "delayed":
      return 1;
    case "ready":
      return 2;
    case "blocked":
      return 3;
    case "starting":
      return 4;
    case "running":
      return 5;
    case "stopping":
      return 6;
  }
}

function reasonCode(reason: RestartReason): number {
  switch (reason) {
    case "none":
      return 0;
    case "bounce":
      return 1;
    case "input-changed":
      return 2;
    case "failed":
      return 3;
  }
}

/**
 * The fields most manifolds never set, kept apart so that the hot record
 * stays small: seven fewer fields save 56 B per manifold (no pointer
 * compression in Node), and a node gets this record only when one is set.
 * @internal
 */
class RareFields {
  /** Index of each input, built only for manifolds with many inputs. */
  inputIndex: Map<string, number> | undefined = undefined;
  /** Its restart timer while `delayed` with a delay. */
  timer: unknown = undefined;
  /** Generation of the pending timer; a firing of an older one is stale. */
  timerGeneration = 0;
  /** Most recent error (after filter), kept until the next successful start. */
  error: Error | undefined = undefined;
  /** Names asked of getResource by the last start, when neither `inputs` nor none (see `ManifoldNode.resourceNames`). */
  resourceNames: readonly string[] | undefined = undefined;
  /** Errors of the last start's getResource calls, by position; undefined when none failed. */
  resourceErrors: readonly (string | undefined)[] | undefined = undefined;
  /** Callers of `uninstall` waiting for this node to stop. */
  uninstallWaiters: (() => void)[] | undefined = undefined;
  /** Heartbeats, progress, restart limits, manual restarts (supervision.ts): made only for a manifold that uses them. */
  supervision: SupervisionRecord | undefined = undefined;
  /** Failures since the last reset of backoff (schedule.ts), when more than one (0 and 1 are a bit of the node). */
  recentErrors = 0;
  /** Its manifold's `stopTimeout`, as checked at install. */
  stopTimeout: number | undefined = undefined;
}

/** @internal */
export class ManifoldNode {
  /** Unique per engine, in install order: an index for per-node arrays (shutdown.ts). */
  readonly id: number;
  readonly name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly manifold: Manifold<any, any>;

  /** Its name's slot in the graph (set when installed; kept after uninstall). */
  slot: Slot<this> | undefined = undefined;
  /** Its inputs' slots, in the order of its manifold's `inputs` (the names are theirs: see `inputs`). */
  inputSlots: readonly Slot<this>[] = NO_SLOTS;
  /** Its place in the graph's list of installed nodes (graph.ts). */
  listIndex = -1;
  /**
   * How its start attempts and its worker's end reach the engine's loop (the
   * mailbox). Kept here so that watching a worker's `wait()` needs two bound
   * functions and no closure context (start-attempt.ts).
   */
  readonly post: (message: AttemptMessage) => void;

  /**
   * When the reported state last changed, in ms after the engine's epoch
   * (see `EngineLoop`'s #epoch). An offset from it is a small integer, which
   * V8 keeps in the field; a clock time is a 16 B HeapNumber per node
   * (`since` and `lastStart` as offsets: 15 to 16 B less per manifold at
   * 100k, measured). A fractional or large time (past 2^31 ms) costs its
   * node a HeapNumber, not every node: 100,000 nodes made after one such
   * store take the same room as before it (193 B each, measured).
   */
  since: number;

  /** Generation of the current start attempt; messages of older attempts are stale. */
  startGeneration = 0;
  /** The start in flight (while `starting`): its context, abort switch and resource log. */
  attempt: StartAttempt | undefined = undefined;
  worker: Worker | undefined;

  /** Rule 9 (kept by readiness.ts): while blocked, how many of its installed inputs are holding; 0 otherwise. */
  holdingInputs = 0;

  /** Its stuck-worker deadline's ticket while the engine waits for it to stop; 0 when none (kept by deadlines.ts). */
  stopTicket = 0;

  startCount = 0;
  /** When its latest worker was accepted, in ms after the engine's epoch (as `since`). */
  lastStart: number | undefined = undefined;

  /**
   * The phase, restart reason, flags and resource-log kind, packed in one
   * small integer (see BITS): seven fields in one saves 48 B per manifold.
   * Read and written through the accessors below, as plain fields.
   */
  #bits = 0;
  #rare: RareFields | undefined = undefined;

  /**
   * The node of `checked` (as checkManifold checked it), with id `id`, state
   * changed `since` (ms after the engine's epoch), its messages sent with `post`.
   */
  constructor(id: number, checked: CheckedManifold, since: number, post: (message: AttemptMessage) => void) {
    const { inputs, stopTimeout } = checked;
    this.id = id;
    this.name = checked.name;
    this.manifold = checked.manifold;
    this.post = post;
    this.since = since;
    if (inputs.length > 16) (this.#rare ??= new RareFields()).inputIndex = new Map(inputs.map((input, i) => [input, i]));
    // The value checkManifold read and checked, so a later change to the manifold (even to an invalid
    // value, or a getter's next answer) changes nothing. In the rare record: a node without one pays no field for it (8 B).
    if (stopTimeout !== undefined) (this.#rare ??= new RareFields()).stopTimeout = stopTimeout;
  }

  /** Its manifold's `stopTimeout` as it was at install; undefined: the engine's. */
  get stopTimeout(): number | undefined {
    return this.#rare?.stopTimeout;
  }

  // The packed fields (#bits).

  get phase(): Phase {
    return PHASES[this.#bits & BITS.phase] as Phase;
  }
  set phase(phase: Phase) {
    this.#bits = (this.#bits & ~BITS.phase) | phaseCode(phase);
  }

  /** What follows when the current start, worker or timer is done: see {@link RestartReason}. */
  get restart(): RestartReason {
    return REASONS[(this.#bits & BITS.restart) >> RESTART_SHIFT] as RestartReason;
  }
  set restart(reason: RestartReason) {
    this.#bits = (this.#bits & ~BITS.restart) | (reasonCode(reason) << RESTART_SHIFT);
  }

  /** The current worker was accepted as started (not refused as unwanted), so its stop bounces dependents. */
  get workerAccepted(): boolean {
    return (this.#bits & BITS.workerAccepted) !== 0;
  }
  set workerAccepted(value: boolean) {
    this.#bits = withBit(this.#bits, BITS.workerAccepted, value);
  }

  /** Rule 9 (kept by readiness.ts): this node has a start in flight or imminent, so dependents' starts wait. */
  get holding(): boolean {
    return (this.#bits & BITS.holding) !== 0;
  }
  set holding(value: boolean) {
    this.#bits = withBit(this.#bits, BITS.holding, value);
  }

  /** Counted in the loop's busy count (see loop.ts `isBusy`): kept so that a change is O(1). */
  get busy(): boolean {
    return (this.#bits & BITS.busy) !== 0;
  }
  set busy(value: boolean) {
    this.#bits = withBit(this.#bits, BITS.busy, value);
  }

  /** Past its stopTimeout while the engine waits for it to stop. */
  get stuck(): boolean {
    return (this.#bits & BITS.stuck) !== 0;
  }
  set stuck(value: boolean) {
    this.#bits = withBit(this.#bits, BITS.stuck, value);
  }

  /**
   * A restart timer was armed and has neither fired (its `due` handled) nor
   * been cleared. Kept apart from `timer`: a clock may hand out no handle.
   */
  get timerPending(): boolean {
    return (this.#bits & BITS.timerPending) !== 0;
  }
  set timerPending(value: boolean) {
    this.#bits = withBit(this.#bits, BITS.timerPending, value);
  }

  /**
   * Names asked of getResource by the last start attempt; undefined before
   * the first. Usually `inputs` itself, or none: those two are a bit each,
   * and only another list takes the rare record.
   */
  get resourceNames(): readonly string[] | undefined {
    if ((this.#bits & BITS.logIsInputs) !== 0) return this.inputs;
    if ((this.#bits & BITS.logIsEmpty) !== 0) return NO_NAMES;
    return this.#rare?.resourceNames;
  }
  set resourceNames(names: readonly string[] | undefined) {
    this.#bits &= ~(BITS.logIsInputs | BITS.logIsEmpty);
    if (names === ALL_INPUTS) this.#bits |= BITS.logIsInputs;
    else if (names !== undefined && names.length === 0) this.#bits |= BITS.logIsEmpty;
    if ((this.#bits & (BITS.logIsInputs | BITS.logIsEmpty)) !== 0) names = undefined;
    if (names !== undefined || this.#rare !== undefined) (this.#rare ??= new RareFields()).resourceNames = names;
  }

  // The rare fields read as plain fields; setting one to its default makes no record.

  get timer(): unknown {
    return this.#rare?.timer;
  }
  set timer(timer: unknown) {
    if (timer !== undefined || this.#rare !== undefined) (this.#rare ??= new RareFields()).timer = timer;
  }

  get timerGeneration(): number {
    return this.#rare?.timerGeneration ?? 0;
  }
  set timerGeneration(generation: number) {
    (this.#rare ??= new RareFields()).timerGeneration = generation;
  }

  /** Most recent error (after filter), kept until the next successful start. */
  get error(): Error | undefined {
    return this.#rare?.error;
  }
  set error(error: Error | undefined) {
    if (error !== undefined || this.#rare !== undefined) (this.#rare ??= new RareFields()).error = error;
  }

  /** Errors of the last start's getResource calls, by position; undefined when none failed. */
  get resourceErrors(): readonly (string | undefined)[] | undefined {
    return this.#rare?.resourceErrors;
  }
  set resourceErrors(errors: readonly (string | undefined)[] | undefined) {
    if (errors !== undefined || this.#rare !== undefined) (this.#rare ??= new RareFields()).resourceErrors = errors;
  }

  /** Callers of `uninstall` waiting for this node to stop. */
  get uninstallWaiters(): (() => void)[] | undefined {
    return this.#rare?.uninstallWaiters;
  }
  set uninstallWaiters(waiters: (() => void)[] | undefined) {
    if (waiters !== undefined || this.#rare !== undefined) (this.#rare ??= new RareFields()).uninstallWaiters = waiters;
  }

  /**
   * Failures since the last reset of backoff (schedule.ts). 0 and 1 (a
   * MissingError, an aborted start, an input change cutting a delay short
   * all set 1) are a bit; only a repeated failure takes the rare record.
   */
  get recentErrors(): number {
    if ((this.#bits & BITS.oneRecentError) !== 0) return 1;
    return this.#rare?.recentErrors ?? 0;
  }
  set recentErrors(count: number) {
    this.#bits = withBit(this.#bits, BITS.oneRecentError, count === 1);
    const rare = count > 1 ? count : 0;
    if (rare !== 0 || this.#rare !== undefined) (this.#rare ??= new RareFields()).recentErrors = rare;
  }

  /** Heartbeats, progress, restart limits, manual restarts (supervision.ts): made only for a manifold that uses them. */
  get supervision(): SupervisionRecord | undefined {
    return this.#rare?.supervision;
  }
  set supervision(record: SupervisionRecord | undefined) {
    if (record !== undefined || this.#rare !== undefined) (this.#rare ??= new RareFields()).supervision = record;
  }

  /**
   * The names of its inputs, in order: a new array, made from the input slots
   * (a copy of the names kept on every node cost 72 B per manifold).
   */
  get inputs(): string[] {
    const slots = this.inputSlots;
    const names = new Array<string>(slots.length);
    for (let i = 0; i < slots.length; i++) names[i] = (slots[i] as Slot<this>).name;
    return names;
  }

  /** The name of input `index`. */
  inputName(index: number): string | undefined {
    return this.inputSlots[index]?.name;
  }

  /** Position of `name` in `inputs`, or -1. */
  indexOfInput(name: string): number {
    const index = this.#rare?.inputIndex;
    if (index !== undefined) return index.get(name) ?? -1;
    const slots = this.inputSlots;
    for (let i = 0; i < slots.length; i++) if ((slots[i] as Slot<this>).name === name) return i;
    return -1;
  }

  /** Whether this node is the one installed under its name (false once uninstalled, while its worker may live on). */
  get installed(): boolean {
    return this.slot !== undefined && this.slot.node === this;
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
}

// Rare fields exist only on nodes that failed, wait on a restart timer or an uninstall, or use a rare feature (shapes.ts).
keepShape(new RareFields());
