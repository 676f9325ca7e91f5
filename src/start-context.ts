/**
 * The context a start function receives: its name, an abort signal, and
 * `getResource`/`hasResource` over a snapshot of its inputs' workers taken when
 * the start function is called (SPEC rule 2). The context expires when the start
 * function settles, so that nothing can reach a resource outside the engine's
 * view of its lifetime.
 *
 * The snapshot is taken only when it could differ from what the inputs are
 * now: while a start function runs synchronously no handler runs, so no
 * input's worker can come or go, and reading the inputs live gives the same
 * answers. It is taken when the start function returns a promise, or when it
 * installs or uninstalls something before returning (the loop asks). A
 * synchronous start, the usual kind, never copies its inputs (96 B saved
 * per start with 3 inputs, measured).
 */
import { describeValue, MissingError, quote } from "./errors.js";
import type { StartContext } from "./manifold.js";
import { ALL_INPUTS } from "./node.js";
import { nameOf, type InputName } from "./resource.js";
import type { Worker } from "./workers.js";

/**
 * For each declared input, in order: the running worker (or undefined) and its
 * manifold (whose `output` is called as a method), flattened into one array
 * (`[worker0, manifold0, worker1, manifold1, …]`: one allocation per start).
 * @internal
 */
export type Snapshot = readonly unknown[];

const EMPTY_SNAPSHOT: Snapshot = Object.freeze([]);

/** In a snapshot's manifold position: no manifold of that name is installed (so "not installed", not "not running"). */
const NOT_INSTALLED = Symbol("not installed");

/** What a snapshot is taken of: a node's inputs, as the graph links them. @internal */
export interface SnapshotSource {
  readonly inputSlots: readonly { readonly node: InputState | undefined }[];
}

/** The part of an input's node a snapshot reads. @internal */
export interface InputState {
  readonly phase: string;
  readonly workerAccepted: boolean;
  readonly worker: Worker | undefined;
  readonly manifold: OutputOwner;
}

/** What a start sees of an input (SPEC rule 2): its worker if it is running and was accepted as started. */
function runningWorker(input: InputState): Worker | undefined {
  return input.phase === "running" && input.workerAccepted ? input.worker : undefined;
}

/** The snapshot a start attempt works from once its inputs may change: what it sees of each input now. */
function takeSnapshot(source: SnapshotSource): Snapshot {
  const count = source.inputSlots.length;
  if (count === 0) return EMPTY_SNAPSHOT;
  const snapshot = new Array<unknown>(2 * count);
  for (let i = 0; i < count; i++) {
    const input = source.inputSlots[i]?.node;
    if (input === undefined) {
      snapshot[2 * i + 1] = NOT_INSTALLED;
    } else {
      const worker = runningWorker(input);
      if (worker !== undefined) {
        snapshot[2 * i] = worker;
        snapshot[2 * i + 1] = input.manifold;
      }
    }
  }
  return snapshot;
}

/** The part of a manifold a snapshot needs. @internal */
interface OutputOwner {
  output?(worker: Worker): unknown;
}

/** The node a start attempt belongs to, as the attempt sees it. @internal */
export interface AttemptOwner extends SnapshotSource {
  readonly name: string;
  indexOfInput(name: string): number;
  /** The name of input `index`, or undefined past the last. */
  inputName(index: number): string | undefined;
}

/**
 * What a start attempt asks of the loop. A worker's signs of life:
 * `heartbeat` records a time, `progress` a message. Both ignore a `generation` that is no longer the
 * node's current worker, so a replaced worker never touches its successor.
 * @internal
 */
export interface AttemptHost {
  heartbeat(owner: AttemptOwner, generation: number): void;
  progress(owner: AttemptOwner, generation: number, message: unknown, details: unknown): void;
  /** `; did you mean "x"?` naming the installed name closest to `name`, or "" when none is close. */
  suggest(name: string): string;
}

const NO_CALLS: readonly string[] = Object.freeze([]);

/** How an attempt reads its inputs: live (the start function is running synchronously), from a snapshot, or not at all (expired). */
const LIVE = 0;
const EXPIRED = 1;

/** The attempt itself, for the getters on the prototype: read through a symbol-keyed field, a getter also works when the context is wrapped in a Proxy (a #private field would not). */
const SELF = Symbol("attempt");

const NOT_ABORTED = Symbol("not aborted");

/** What the engine does with a start attempt; filled in by the class's static block (it alone reaches the private fields). */
interface EngineSide {
  freeze(attempt: StartAttempt): void;
  expire(attempt: StartAttempt): void;
  abort(attempt: StartAttempt, reason: unknown): void;
  aborted(attempt: StartAttempt): boolean;
  loggedNames(attempt: StartAttempt): readonly string[];
  loggedErrors(attempt: StartAttempt): readonly (string | undefined)[] | undefined;
}

let engineSide: EngineSide;

/** `getResource` and `hasResource` for `this` attempt, bound to it in the constructor; filled in by the class's static block. */
let contextSide: {
  getResource<T>(this: StartAttempt, input: InputName): T;
  hasResource(this: StartAttempt, input: InputName): boolean;
};

/**
 * One start attempt, and the context its start function receives: one
 * object for both (a separate context object cost 56 B per start). The
 * start function sees only the {@link StartContext}: `name`, `getResource`
 * and `hasResource` are own properties that work unbound (`start: ({
 * getResource }) => ...`) and survive spreading; `signal`, `heartbeat` and
 * `progress` are getters on the prototype (made when first read: most start
 * functions never read them). Everything the engine keeps of the attempt
 * is private, and the loop reaches it through this module's functions
 * (`freezeAttempt`, `expireAttempt`, ...), so the context offers nothing else.
 * @internal
 */
export class StartAttempt implements StartContext {
  readonly name: string;
  readonly getResource: StartContext["getResource"];
  readonly hasResource: (input: InputName) => boolean;
  readonly [SELF]: StartAttempt;
  readonly #owner: AttemptOwner;
  readonly #generation: number;
  readonly #host: AttemptHost;
  /** LIVE, a snapshot, or EXPIRED: see the top of this file. */
  #inputs: Snapshot | typeof LIVE | typeof EXPIRED = LIVE;
  /**
   * The resource log: while calls follow `inputs` in order without error
   * (the usual case), only how many have; the names are kept only once a
   * call departs from that. Saves an array of ~146 B per start (measured).
   */
  #matched = 0;
  #names: string[] | undefined = undefined;
  #errors: (string | undefined)[] | undefined = undefined;
  /** Made only when someone reads `signal` (an AbortController is an EventTarget, costly to create). */
  #controller: AbortController | undefined = undefined;
  /** Why it was aborted; NOT_ABORTED until it is (one field, not a flag and a reason: 8 B per start). */
  #abortReason: unknown = NOT_ABORTED;
  #heartbeat: (() => void) | undefined = undefined;
  #progress: ((message: string, details?: unknown) => void) | undefined = undefined;

  constructor(owner: AttemptOwner, generation: number, host: AttemptHost) {
    this.name = owner.name;
    this.#owner = owner;
    this.#generation = generation;
    this.#host = host;
    this[SELF] = this;
    // Bound functions, not closures over `this`: 96 B per start instead of 152 B (two closures and their context).
    this.getResource = contextSide.getResource.bind(this) as StartContext["getResource"];
    this.hasResource = contextSide.hasResource.bind(this);
  }

  /** Aborted when this start attempt is no longer wanted. */
  get signal(): AbortSignal {
    const self = this[SELF];
    if (self.#controller === undefined) {
      self.#controller = new AbortController();
      if (self.#abortReason !== NOT_ABORTED) self.#controller.abort(self.#abortReason);
    }
    return self.#controller.signal;
  }

  /** Valid for the life of the worker this attempt returns (unlike getResource). */
  get heartbeat(): () => void {
    const self = this[SELF];
    return (self.#heartbeat ??= () => self.#host.heartbeat(self.#owner, self.#generation));
  }

  /** Likewise. */
  get progress(): (message: string, details?: unknown) => void {
    const self = this[SELF];
    return (self.#progress ??= (message: string, details?: unknown) => self.#host.progress(self.#owner, self.#generation, message, details));
  }

  // ------------------------------------------------------------ the engine's side

  // A static block can reach the private fields and hand functions to this module only: the engine's
  // side of an attempt is not on the class either, so `context.constructor` offers nothing of it.
  static {
    engineSide = {
      freeze(attempt) {
        if (attempt.#inputs === LIVE) attempt.#inputs = takeSnapshot(attempt.#owner);
      },
      expire(attempt) {
        attempt.#inputs = EXPIRED;
      },
      abort(attempt, reason) {
        if (attempt.#abortReason !== NOT_ABORTED) return;
        attempt.#abortReason = reason;
        attempt.#controller?.abort(reason);
      },
      aborted(attempt) {
        return attempt.#abortReason !== NOT_ABORTED;
      },
      loggedNames(attempt) {
        if (attempt.#names !== undefined) return attempt.#names;
        const matched = attempt.#matched;
        if (matched === 0) return NO_CALLS;
        return attempt.#owner.inputName(matched) === undefined ? ALL_INPUTS : attempt.#firstInputs(matched);
      },
      loggedErrors(attempt) {
        return attempt.#errors;
      },
    };
    contextSide = {
      getResource<T>(this: StartAttempt, input: InputName): T {
        return this.#getResource<T>(input);
      },
      hasResource(this: StartAttempt, input: InputName): boolean {
        return this.#hasResource(input);
      },
    };
  }

  // ------------------------------------------------------------ the context's side

  #getResource<T>(input: InputName): T {
    const name = this.#resolve(input, "getResource");
    const inputs = this.#inputs;
    if (inputs === EXPIRED) throw this.#expired("getResource", name);
    const index = this.#owner.indexOfInput(name);
    const worker = index < 0 ? undefined : this.#workerOf(index, inputs);
    const owner = worker === undefined ? undefined : this.#ownerOf(index, inputs);
    let failure: Error | undefined;
    if (index < 0) {
      failure = new MissingError(
        `manifold ${quote(this.name)} asked for ${quote(name)}, which is not in its inputs; add it to inputs to use it`,
      );
    } else if (this.#notInstalled(index, inputs)) {
      failure = new MissingError(
        `manifold ${quote(this.name)}: input ${quote(name)} is not installed${this.#host.suggest(name) || "; install it, or fix the name in inputs"}`,
      );
    } else if (worker === undefined) {
      failure = new MissingError(`manifold ${quote(this.name)}: input ${quote(name)} is not running`);
    } else if (typeof owner?.output !== "function") {
      failure = new MissingError(
        `manifold ${quote(this.name)}: input ${quote(name)} has no output; give its manifold an output function`,
      );
    }
    if (failure !== undefined) {
      this.#record(name, failure.message);
      throw failure;
    }
    try {
      const value = (owner as Required<OutputOwner>).output(worker as Worker) as T;
      this.#record(name, undefined);
      return value;
    } catch (error) {
      this.#record(name, error instanceof Error ? error.message : describeValue(error));
      throw error;
    }
  }

  #hasResource(input: InputName): boolean {
    const name = this.#resolve(input, "hasResource");
    const inputs = this.#inputs;
    if (inputs === EXPIRED) throw this.#expired("hasResource", name);
    const index = this.#owner.indexOfInput(name);
    return index >= 0 && this.#workerOf(index, inputs) !== undefined;
  }

  // What the attempt sees of input `index`: live while the start function runs synchronously, else its snapshot.

  #workerOf(index: number, inputs: Snapshot | typeof LIVE): Worker | undefined {
    if (inputs !== LIVE) return inputs[2 * index] as Worker | undefined;
    const node = this.#owner.inputSlots[index]?.node;
    return node === undefined ? undefined : runningWorker(node);
  }

  /** The manifold of a running input (the only kind whose output is asked for). */
  #ownerOf(index: number, inputs: Snapshot | typeof LIVE): OutputOwner {
    return (inputs !== LIVE ? inputs[2 * index + 1] : this.#owner.inputSlots[index]?.node?.manifold) as OutputOwner;
  }

  #notInstalled(index: number, inputs: Snapshot | typeof LIVE): boolean {
    return inputs !== LIVE ? inputs[2 * index + 1] === NOT_INSTALLED : this.#owner.inputSlots[index]?.node === undefined;
  }

  #record(name: string, error: string | undefined): void {
    if (this.#names === undefined) {
      if (error === undefined && this.#owner.inputName(this.#matched) === name) {
        this.#matched++;
        return;
      }
      this.#names = this.#firstInputs(this.#matched);
    }
    const names = this.#names;
    if (error !== undefined) (this.#errors ??= [])[names.length] = error;
    names.push(name);
  }

  /** The names of the first `count` inputs. */
  #firstInputs(count: number): string[] {
    const names = new Array<string>(count);
    for (let i = 0; i < count; i++) names[i] = this.#owner.inputName(i) as string;
    return names;
  }

  #resolve(input: InputName, method: string): string {
    const name = nameOf(input);
    if (name === undefined) {
      throw new TypeError(
        `manifold ${quote(this.name)}: ${method}(input) takes an input name or a resource token (got ${describeValue(input)})`,
      );
    }
    return name;
  }

  #expired(method: string, name: string): Error {
    return new Error(
      `manifold ${quote(this.name)}: ${method}(${quote(name)}) was called after its start function settled; ` +
        "the start context has expired. Get resources while start runs and pass them to the worker.",
    );
  }
}

/** Takes the snapshot now, if the attempt still reads its inputs live: its inputs are about to change, or it returned a promise. @internal */
export function freezeAttempt(attempt: StartAttempt): void {
  engineSide.freeze(attempt);
}

/** Ends the context's life: getResource and hasResource throw from now on. @internal */
export function expireAttempt(attempt: StartAttempt): void {
  engineSide.expire(attempt);
}

/** Aborts the attempt's signal (made now or when first read) with `reason`; once. @internal */
export function abortAttempt(attempt: StartAttempt, reason: unknown): void {
  engineSide.abort(attempt, reason);
}

/** @internal */
export function attemptAborted(attempt: StartAttempt): boolean {
  return engineSide.aborted(attempt);
}

/** The names asked of getResource: ALL_INPUTS (node.ts) when they were all the inputs, in order, without error. @internal */
export function loggedNames(attempt: StartAttempt): readonly string[] {
  return engineSide.loggedNames(attempt);
}

/** The error of each logged call, by position; undefined when none failed. @internal */
export function loggedErrors(attempt: StartAttempt): readonly (string | undefined)[] | undefined {
  return engineSide.loggedErrors(attempt);
}
