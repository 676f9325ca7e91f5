/**
 * The context a start function receives: its name, an abort signal, and
 * `getResource`/`hasResource` over a snapshot of its inputs' workers taken when
 * the start function is called (SPEC rule 2). The context expires when the start
 * function settles, so that nothing can reach a resource outside the engine's
 * view of its lifetime.
 */
import { describeValue, MissingError, quote } from "./errors.js";
import type { StartContext } from "./manifold.js";
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
  readonly inputs: readonly string[];
  readonly inputSlots: readonly { readonly node: InputState | undefined }[];
}

/** The part of an input's node a snapshot reads. @internal */
export interface InputState {
  readonly phase: string;
  readonly workerAccepted: boolean;
  readonly worker: Worker | undefined;
  readonly manifold: OutputOwner;
}

/**
 * The snapshot a start attempt works from (SPEC rule 2): the workers of its
 * inputs that are running now and were accepted as started.
 * @internal
 */
export function takeSnapshot(source: SnapshotSource): Snapshot {
  const count = source.inputs.length;
  if (count === 0) return EMPTY_SNAPSHOT;
  const snapshot = new Array<unknown>(2 * count);
  for (let i = 0; i < count; i++) {
    const input = source.inputSlots[i]?.node;
    if (input === undefined) {
      snapshot[2 * i + 1] = NOT_INSTALLED;
    } else if (input.phase === "running" && input.workerAccepted) {
      snapshot[2 * i] = input.worker;
      snapshot[2 * i + 1] = input.manifold;
    }
  }
  return snapshot;
}

/** The part of a manifold a snapshot needs. @internal */
interface OutputOwner {
  output?(worker: Worker): unknown;
}

/** @internal */
export interface SnapshotOwner {
  readonly name: string;
  readonly inputs: readonly string[];
  indexOfInput(name: string): number;
}

/**
 * A start attempt's abort switch. Most start functions never look at their
 * signal, so the AbortController (an EventTarget, costly to create) is made
 * only when someone asks for the signal; an abort before that is remembered
 * and applied to it.
 * @internal
 */
export class LazyAbort {
  #controller: AbortController | undefined;
  #reason: unknown;
  aborted = false;

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

const NO_CALLS: readonly string[] = Object.freeze([]);

const ATTEMPT = Symbol("attempt");

/**
 * What a start function receives. `name`, `getResource` and `hasResource` are
 * own properties that work unbound (`start: ({ getResource }) => ...`) and
 * survive spreading; `signal` is a getter on the prototype (the
 * AbortController is made only when it is read), which reaches the attempt
 * through a symbol-keyed field rather than a private one, so it works through
 * a Proxy too. (An object literal with a getter would be an own accessor, but
 * V8 creates those ten times slower, once per start.)
 */
class Context implements StartContext {
  readonly name: string;
  readonly getResource: StartContext["getResource"];
  readonly hasResource: (input: InputName) => boolean;
  readonly [ATTEMPT]: StartAttempt;

  constructor(name: string, attempt: StartAttempt) {
    this.name = name;
    this[ATTEMPT] = attempt;
    this.getResource = <T>(input: InputName): T => attempt.getResource<T>(input);
    this.hasResource = (input: InputName): boolean => attempt.hasResource(input);
  }

  get signal(): AbortSignal {
    return this[ATTEMPT].signal;
  }

  // Getters on the prototype, bound on first read: a start that never uses
  // them pays nothing, and `const { heartbeat } = context` still works.
  get heartbeat(): () => void {
    return this[ATTEMPT].heartbeat;
  }

  get progress(): (message: string, details?: unknown) => void {
    return this[ATTEMPT].progress;
  }
}

/**
 * What a start attempt asks of the loop. A worker's signs of life:
 * `heartbeat` records a time, `progress` a message. Both ignore a `generation` that is no longer the
 * node's current worker, so a replaced worker never touches its successor.
 * @internal
 */
export interface AttemptHost {
  heartbeat(owner: SnapshotOwner, generation: number): void;
  progress(owner: SnapshotOwner, generation: number, message: unknown, details: unknown): void;
  /** `; did you mean "x"?` naming the installed name closest to `name`, or "" when none is close. */
  suggest(name: string): string;
}

/**
 * One start attempt, as the engine sees it: the attempt's abort switch, the
 * snapshot of its inputs, its resource log and its expiry. What the start
 * function gets is `context`, which exposes none of that.
 * @internal
 */
export class StartAttempt extends LazyAbort {
  readonly context: StartContext;
  readonly #owner: SnapshotOwner;
  #snapshot: Snapshot | undefined;
  /**
   * The resource log: while calls follow `inputs` in order without error
   * (the usual case), only how many have; the names are kept only once a
   * call departs from that. Saves an array of ~146 B per start (measured).
   */
  #matched = 0;
  #names: string[] | undefined;
  #errors: (string | undefined)[] | undefined;
  readonly #generation: number;
  readonly #host: AttemptHost;
  #heartbeat: (() => void) | undefined;
  #progress: ((message: string, details?: unknown) => void) | undefined;

  constructor(owner: SnapshotOwner, snapshot: Snapshot, generation: number, host: AttemptHost) {
    super();
    this.#owner = owner;
    this.#snapshot = snapshot;
    this.#generation = generation;
    this.#host = host;
    this.context = new Context(owner.name, this);
  }

  /** The context's `heartbeat`: valid for the life of the worker this attempt returns (unlike getResource). */
  get heartbeat(): () => void {
    return (this.#heartbeat ??= () => this.#host.heartbeat(this.#owner, this.#generation));
  }

  /** The context's `progress`: likewise. */
  get progress(): (message: string, details?: unknown) => void {
    return (this.#progress ??= (message: string, details?: unknown) => this.#host.progress(this.#owner, this.#generation, message, details));
  }

  get name(): string {
    return this.#owner.name;
  }

  getResource<T>(input: InputName): T {
    const name = this.#resolve(input, "getResource");
    const snapshot = this.#snapshot;
    if (snapshot === undefined) throw this.#expired("getResource", name);
    const index = this.#owner.indexOfInput(name);
    let failure: Error | undefined;
    if (index < 0) {
      failure = new MissingError(
        `manifold ${quote(this.name)} asked for ${quote(name)}, which is not in its inputs; add it to inputs to use it`,
      );
    } else if (snapshot[2 * index + 1] === NOT_INSTALLED) {
      failure = new MissingError(
        `manifold ${quote(this.name)}: input ${quote(name)} is not installed${this.#host.suggest(name) || "; install it, or fix the name in inputs"}`,
      );
    } else if (snapshot[2 * index] === undefined) {
      failure = new MissingError(`manifold ${quote(this.name)}: input ${quote(name)} is not running`);
    } else if (typeof (snapshot[2 * index + 1] as OutputOwner).output !== "function") {
      failure = new MissingError(
        `manifold ${quote(this.name)}: input ${quote(name)} has no output; give its manifold an output function`,
      );
    }
    if (failure !== undefined) {
      this.#record(name, failure.message);
      throw failure;
    }
    const owner = snapshot[2 * index + 1] as Required<OutputOwner>;
    try {
      const value = owner.output(snapshot[2 * index] as Worker) as T;
      this.#record(name, undefined);
      return value;
    } catch (error) {
      this.#record(name, error instanceof Error ? error.message : describeValue(error));
      throw error;
    }
  }

  hasResource(input: InputName): boolean {
    const name = this.#resolve(input, "hasResource");
    const snapshot = this.#snapshot;
    if (snapshot === undefined) throw this.#expired("hasResource", name);
    const index = this.#owner.indexOfInput(name);
    return index >= 0 && snapshot[2 * index] !== undefined;
  }

  /**
   * Ends the context's life: getResource and hasResource throw from now on.
   * (The usual resource log, each input asked for once, in order, without
   * error, is then the manifold's own `inputs` array: nothing is kept.)
   */
  expire(): void {
    this.#snapshot = undefined;
  }

  /** The names asked of getResource (`inputs` itself when they are all of it, in order, without error). */
  get loggedNames(): readonly string[] {
    if (this.#names !== undefined) return this.#names;
    const inputs = this.#owner.inputs;
    if (this.#matched === inputs.length) return inputs.length === 0 ? NO_CALLS : inputs;
    return this.#matched === 0 ? NO_CALLS : inputs.slice(0, this.#matched);
  }

  /** The error of each logged call, by position; undefined when none failed. */
  get loggedErrors(): readonly (string | undefined)[] | undefined {
    return this.#errors;
  }

  #record(name: string, error: string | undefined): void {
    const inputs = this.#owner.inputs;
    if (this.#names === undefined) {
      if (error === undefined && inputs[this.#matched] === name) {
        this.#matched++;
        return;
      }
      this.#names = inputs.slice(0, this.#matched);
    }
    const names = this.#names;
    if (error !== undefined) (this.#errors ??= [])[names.length] = error;
    names.push(name);
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
