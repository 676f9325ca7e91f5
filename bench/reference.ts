/**
 * The reference: the least any engine keeping this contract must do per
 * manifold, with everything else left out, so that the engine's figures
 * (cold start / floor, heap kept per manifold, bytes allocated per install
 * and per start) can be read against what is possible at all.
 *
 * What it does, because no engine can skip it:
 * - an entry per manifold, found by name (a `Map`);
 * - each input resolved to its entry, and the reverse edge kept, since an
 *   input that comes or goes must reach its dependents;
 * - a context per start whose `getResource` and `hasResource` are closures
 *   over the attempt (they must work unbound, `start: ({ getResource }) =>`,
 *   and expire when the start function returns); they read the inputs'
 *   workers and call their manifolds' `output`;
 * - a handler on every worker's `wait()` the moment it exists (a failure
 *   must never go unnoticed or unhandled): one `then(onFulfilled, onRejected)`;
 * - a message per start and per stop, handled in order by one loop;
 * - a shutdown (`stopReference`) in the order rule 7 and src/shutdown.ts
 *   require, dependents before their inputs, with no global layering (an
 *   engine learns its graph one install at a time, so it has no layers to
 *   walk): when killed it counts each entry's live dependents (one number
 *   per entry) and kills every worker whose count is 0; each worker's
 *   `wait()` settling posts its message (through the handler attached at
 *   start) and the loop marks it stopped and decrements its inputs' counts,
 *   killing each input whose count reaches 0; it resolves when every worker
 *   has stopped;
 * - a stop deadline per killed worker (the contract's `stopTimeout`: a
 *   worker that does not stop in time is reported stuck), in its cheapest
 *   honest form: one first-in-first-out queue of (entry, due time) pushed
 *   per kill (all with the same timeout, so in due order), one timer for the
 *   whole shutdown armed at the first kill, the queue popped lazily only
 *   when that timer fires (a head that has stopped is dropped, a head past
 *   due is stuck), and dropped whole with the timer once every worker has
 *   stopped. No timer per worker.
 *
 * And no more than that: nothing copied that can be shared (the manifold's
 * own `inputs`), no snapshot of the inputs (while a synchronous start
 * function runs no handler runs, so reading the inputs live gives what a
 * snapshot would; an engine needs one only for a start that returns a
 * promise, which the reference refuses), `signal`, `heartbeat` and
 * `progress` as getters on the prototype (an engine makes them when first
 * read; these start functions never read them), and the `wait()` handlers
 * made in a function of their own, so they hold the entry, the attempt and
 * the loop's `post` and nothing of the start.
 *
 * What it leaves out, although the engine must do it: checking manifolds,
 * refusing duplicates and cycles, rule 9 (it relies on being given a
 * topological order and synchronous starts), phases, restarts, reports,
 * events, uninstall, errors (a `kill()` that throws, a worker that fails
 * while stopping), and of stuck workers anything beyond recording their
 * deadlines (a stuck worker rejects the stop; an engine reports it, releases
 * its inputs and carries on). It is not an engine: it only starts and stops.
 *
 * For bench/stop-order.ts, which asks how much of that stop its order costs,
 * it also has variants of the stop that are not the reference: the kills
 * sorted in waves (`stopReference`'s `killOrder`), the order its stop kills
 * in (`releaseOrder`), and every worker killed at once (`killAllAtOnce`).
 */
import type { Manifold, Manifolds, StartContext, Worker } from "../src/index.js";
import type { Graph } from "./graphs.js";

export interface Entry {
  readonly name: string;
  /** Its `inputs` (the user's array, not a copy) give each input's position, for `getResource`. */
  readonly manifold: Manifold;
  /** The entry of each input, by position in `manifold.inputs`. */
  readonly inputEntries: Entry[];
  /** The reverse edges: the entries that have this one among their inputs, in the first `dependentCount` slots. */
  dependents: readonly (Entry | undefined)[];
  dependentCount: number;
  worker: Worker | undefined;
  /** The latest start attempt; messages of earlier ones are stale. */
  attempt: number;
  /** The attempt whose start function is running now, 0 when none: a context of any other attempt has expired. */
  starting: number;
  /** While stopping: its dependents whose workers have not stopped yet; it is killed when this reaches 0. */
  liveDependents: number;
}

/** What the loop is told: a worker started (`worker` set) or stopped (with `error` if it failed). */
interface Message {
  readonly entry: Entry;
  readonly attempt: number;
  readonly worker: Worker | undefined;
  readonly error: unknown;
}

/** What the reference keeps once every manifold has started: the heap run holds it until it has measured. */
export interface ReferenceState {
  /** Every entry, by name. */
  readonly entries: Map<string, Entry>;
  /** Workers started. */
  readonly started: number;
  /** The loop that handles its messages, for `stopReference`. */
  readonly loop: Loop;
}

const signal = new AbortController().signal;
const noop = (): void => undefined;

/**
 * The context of one start attempt. `name`, `getResource` and `hasResource`
 * are own properties (closures over the entry and the attempt); the rest is
 * on the prototype and costs nothing per start.
 */
class ReferenceContext {
  readonly name: string;
  readonly getResource: StartContext["getResource"];
  readonly hasResource: StartContext["hasResource"];

  constructor(entry: Entry, attempt: number) {
    this.name = entry.name;
    this.getResource = ((input: string): unknown => {
      const from = inputEntry(entry, attempt, input, "getResource");
      if (from.worker === undefined) throw new Error(`reference: ${entry.name}'s input ${input} is not running`);
      return from.manifold.output?.(from.worker);
    }) as StartContext["getResource"];
    this.hasResource = (input) => inputEntry(entry, attempt, input as string, "hasResource").worker !== undefined;
  }

  get signal(): AbortSignal {
    return signal;
  }

  get heartbeat(): () => void {
    return noop;
  }

  get progress(): (message: string, details?: unknown) => void {
    return noop;
  }
}

/** The entry of `entry`'s input `input`, read live; throws once the attempt's start function has returned. */
function inputEntry(entry: Entry, attempt: number, input: string, method: string): Entry {
  if (entry.starting !== attempt) throw new Error(`reference: ${entry.name} called ${method}(${input}) after its start function returned`);
  const index = (entry.manifold.inputs as readonly string[]).indexOf(input);
  if (index < 0) throw new Error(`reference: ${entry.name} asked for ${input}, which is not in its inputs`);
  return entry.inputEntries[index] as Entry;
}

/**
 * Installs every manifold in index (topological) order, then, in a
 * microtask (as the engine does), starts them all; resolves with its state
 * once each has started.
 */
export function runReference(graph: Graph, manifolds: Manifolds): Promise<ReferenceState> {
  const entries = new Map<string, Entry>();
  const queue: Entry[] = [];
  for (const name of graph.names) {
    const manifold = manifolds[name] as Manifold;
    const inputs = manifold.inputs as readonly string[];
    const inputEntries = new Array<Entry>(inputs.length);
    const entry: Entry = { name, manifold, inputEntries, dependents: NO_DEPENDENTS, dependentCount: 0, worker: undefined, attempt: 0, starting: 0, liveDependents: 0 };
    entries.set(name, entry);
    for (let i = 0; i < inputs.length; i++) {
      const input = entries.get(inputs[i] as string) as Entry;
      addDependent(input, entry);
      inputEntries[i] = input;
    }
    queue.push(entry);
  }
  return new Promise<ReferenceState>((resolve, reject) =>
    queueMicrotask(() => {
      try {
        const loop = new Loop();
        const started = startAll(queue, loop);
        if (started === queue.length) resolve({ entries, started, loop });
        else reject(new Error(`reference: ${started} of ${queue.length} started`));
      } catch (error) {
        reject(error);
      }
    }),
  );
}

const NO_DEPENDENTS: readonly Entry[] = Object.freeze([]);

/**
 * Adds a reverse edge, doubling the array by hand when it is full: `push`
 * grows a full array by half plus 16 slots, which left 150 B of empty slots
 * on nearly every manifold of the chain (measured), and copying it exactly on
 * every add would cost O(dependents²) (the fan-out's root has N - 1).
 */
function addDependent(input: Entry, dependent: Entry): void {
  const count = input.dependentCount;
  let dependents = input.dependents as (Entry | undefined)[];
  if (count === dependents.length) {
    const grown = new Array<Entry | undefined>(count === 0 ? 1 : 2 * count);
    for (let i = 0; i < count; i++) grown[i] = dependents[i];
    input.dependents = dependents = grown;
  }
  dependents[count] = dependent;
  input.dependentCount = count + 1;
}

/**
 * The one loop: messages are handled in the order they are posted, one at a
 * time; a message posted while one is handled (by code the handler calls) waits its turn.
 */
class Loop {
  /** Workers started. */
  started = 0;
  /** The shutdown under way, once `stopReference` has been called. */
  shutdown: Shutdown | undefined = undefined;
  readonly #queue: Message[] = [];
  #draining = false;

  /** Posts a message and, unless the loop is already handling one, handles it (and any posted meanwhile) now. */
  readonly post = (message: Message): void => {
    if (this.#draining) {
      this.#queue.push(message);
      return;
    }
    this.#draining = true;
    try {
      // The usual message is handled without touching the queue: `length = 0` drops an array's
      // backing store, and pushing again allocates one: 158 B more per start (measured, alloc.ts).
      this.#handle(message);
      for (let i = 0; i < this.#queue.length; i++) this.#handle(this.#queue[i] as Message);
    } finally {
      if (this.#queue.length > 0) this.#queue.length = 0;
      this.#draining = false;
    }
  };

  #handle(message: Message): void {
    const entry = message.entry;
    if (entry.attempt !== message.attempt) return; // of an earlier attempt: stale
    if (message.worker !== undefined) {
      entry.worker = message.worker;
      this.started++;
      return;
    }
    entry.worker = undefined;
    this.shutdown?.stopped(entry);
  }
}

/** Calls each start function in queue order, its message handled as it comes; returns how many workers started. */
function startAll(queue: readonly Entry[], loop: Loop): number {
  for (const entry of queue) start(entry, loop.post);
  return loop.started;
}

function start(entry: Entry, post: (message: Message) => void): void {
  const attempt = ++entry.attempt;
  entry.starting = attempt;
  let worker: Worker;
  try {
    worker = entry.manifold.start(new ReferenceContext(entry, attempt) as StartContext) as Worker;
  } finally {
    entry.starting = 0;
  }
  if (typeof (worker as { then?: unknown }).then === "function") {
    throw new Error(`reference: ${entry.name}'s start function returned a promise; the reference takes synchronous starts only`);
  }
  watch(entry, attempt, worker, post);
  post({ entry, attempt, worker, error: undefined });
}

/** The handler on the worker's wait(), in a function of its own so that its closures hold only what they use. */
function watch(entry: Entry, attempt: number, worker: Worker, post: (message: Message) => void): void {
  worker.wait().then(
    () => post({ entry, attempt, worker: undefined, error: undefined }),
    (error: unknown) => post({ entry, attempt, worker: undefined, error }),
  );
}

/**
 * Stops every worker of a started reference, dependents before their inputs
 * (see the top of this file); resolves once every worker has stopped, rejects
 * if one is still running `stopTimeout` ms after it was killed (0: no
 * deadlines, as the engine's `stopTimeout: 0`).
 *
 * With `killOrder` (from {@link allocationOrder}), the inputs freed while
 * workers settle are not killed each at once but together, a microtask
 * later, sorted by it: each wave of kills then walks the heap in allocation
 * order, as a layer of the hand-written stop does (an experiment of
 * bench/stop-order.ts; the engine kills each at once).
 */
export function stopReference(state: ReferenceState, stopTimeout: number, killOrder?: KillOrder | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const shutdown = new Shutdown(state.entries, stopTimeout, resolve, reject, killOrder);
    state.loop.shutdown = shutdown;
    shutdown.begin(state.entries);
  });
}

/** The entries in allocation (index) order, and each one's place in it: {@link stopReference}'s `killOrder`. */
export interface KillOrder {
  readonly entries: readonly Entry[];
  readonly position: ReadonlyMap<Entry, number>;
}

/** The reference's allocation order, made before a stop is timed (as an engine's node ids are made at install). */
export function allocationOrder(state: ReferenceState): KillOrder {
  const entries = [...state.entries.values()];
  return { entries, position: new Map(entries.map((entry, at) => [entry, at])) };
}

/**
 * The order the reference's stop kills a started graph in when every worker
 * settles in the order it was killed (as the workload's do): first each
 * entry with no dependent, in index order, then each input as the last of
 * its dependents goes (for bench/stop-order.ts).
 */
export function releaseOrder(state: ReferenceState): Entry[] {
  const entries = [...state.entries.values()];
  const left = new Map<Entry, number>(entries.map((entry) => [entry, entry.dependentCount]));
  const order = entries.filter((entry) => entry.dependentCount === 0);
  for (let at = 0; at < order.length; at++) {
    for (const input of (order[at] as Entry).inputEntries) {
      const count = (left.get(input) as number) - 1;
      left.set(input, count);
      if (count === 0) order.push(input);
    }
  }
  if (order.length !== entries.length) throw new Error(`release order: ${entries.length - order.length} of ${entries.length} entries are never freed (a cycle?)`);
  return order;
}

/**
 * Kills every worker in `order`, in one loop, and resolves on the next
 * event-loop turn: by then each of the workload's workers, which settle a
 * microtask after their kill, has gone through the reference's handler and
 * loop. The caller checks that every worker stopped (after its clock stops).
 */
export async function killAllAtOnce(order: readonly Entry[]): Promise<void> {
  for (const entry of order) entry.worker?.kill();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/** One shutdown: the live-dependent counts, the stop deadlines, and how many workers are still to stop. */
class Shutdown {
  readonly #stopTimeout: number;
  readonly #resolve: () => void;
  readonly #reject: (error: Error) => void;
  /** Workers not yet stopped. */
  #live = 0;
  /** The stop deadlines, (entry, due time) at the same index, in the order of the kills and so of the due times. */
  readonly #stopping: Entry[] = [];
  readonly #dues: number[] = [];
  /** The first deadline not yet popped: only the timer pops (lazily). */
  #head = 0;
  /** The one timer of the whole shutdown: armed at the first kill, for the head's due time. */
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** When given, freed inputs wait in `#freed` and are killed together, in this order (see stopReference). */
  readonly #killOrder: KillOrder | undefined;
  #freed: Entry[] = [];

  /** Counts each entry's live dependents (the whole graph stands still while the engine shuts down). */
  constructor(entries: Map<string, Entry>, stopTimeout: number, resolve: () => void, reject: (error: Error) => void, killOrder: KillOrder | undefined) {
    this.#stopTimeout = stopTimeout;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#killOrder = killOrder;
    for (const entry of entries.values()) {
      if (entry.worker === undefined) continue;
      this.#live++;
      const inputs = entry.inputEntries;
      for (let i = 0; i < inputs.length; i++) (inputs[i] as Entry).liveDependents++;
    }
  }

  /** Kills every worker no live dependent holds up. */
  begin(entries: Map<string, Entry>): void {
    if (this.#live === 0) return this.#resolve();
    for (const entry of entries.values()) if (entry.worker !== undefined && entry.liveDependents === 0) this.#kill(entry);
  }

  /** The loop saw `entry`'s worker stop: its inputs are held up by one dependent fewer. */
  stopped(entry: Entry): void {
    const inputs = entry.inputEntries;
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i] as Entry;
      if (--input.liveDependents === 0 && input.worker !== undefined) this.#free(input);
    }
    if (--this.#live > 0) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stopping.length = this.#dues.length = this.#head = 0;
    this.#resolve();
  }

  /** `entry`'s last live dependent has stopped: kill it now, or with the wave (see stopReference). */
  #free(entry: Entry): void {
    if (this.#killOrder === undefined) return this.#kill(entry);
    this.#freed.push(entry);
    // Queued behind the reactions already queued: with workers that settle a microtask after
    // their kill (the workload's), those are the rest of this wave's stops, so it holds what they free.
    if (this.#freed.length === 1) queueMicrotask(this.#killFreed);
  }

  readonly #killFreed = (): void => {
    const { entries, position } = this.#killOrder as KillOrder;
    // Sorted as numbers (one lookup per entry), not by a comparator that looks both up at every step.
    const wave = Int32Array.from(this.#freed, (entry) => position.get(entry) as number).sort();
    this.#freed = [];
    for (const at of wave) {
      const entry = entries[at] as Entry;
      if (entry.worker !== undefined) this.#kill(entry);
    }
  };

  #kill(entry: Entry): void {
    if (this.#stopTimeout > 0) {
      this.#stopping.push(entry);
      this.#dues.push(performance.now() + this.#stopTimeout);
      this.#timer ??= setTimeout(this.#expire, this.#stopTimeout);
    }
    (entry.worker as Worker).kill();
  }

  /** The timer fired: drops the heads that have stopped; a head past due is stuck; else waits for the head's due time. */
  readonly #expire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    for (; this.#head < this.#stopping.length; this.#head++) {
      const entry = this.#stopping[this.#head] as Entry;
      if (entry.worker === undefined) continue;
      const due = this.#dues[this.#head] as number;
      if (due > now) {
        this.#timer = setTimeout(this.#expire, due - now);
        return;
      }
      this.#reject(new Error(`reference: ${entry.name} did not stop within ${this.#stopTimeout} ms (stuck; the reference handles no stuck worker)`));
      return;
    }
  };
}
