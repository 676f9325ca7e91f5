/**
 * The context a start function receives: its name, an abort signal, and
 * `getResource`/`hasResource` over a snapshot of its inputs' workers taken when
 * the start function is called (SPEC rule 2). The context expires when the start
 * function settles, so that nothing can reach a resource outside the engine's
 * view of its lifetime.
 */
import { describeValue, MissingError } from "./errors.js";
import type { StartContext } from "./manifold.js";
import type { ResourceLogEntry } from "./node.js";
import { nameOf, type InputName } from "./resource.js";
import type { Worker } from "./workers.js";

/**
 * For each declared input, in order: the running worker (or undefined) and its
 * manifold (whose `output` is called as a method), flattened into one array.
 * @internal
 */
export type Snapshot = readonly unknown[];

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

/** @internal */
export class StartContextImpl implements StartContext {
  readonly name: string;
  readonly signal: AbortSignal;
  readonly #owner: SnapshotOwner;
  #snapshot: Snapshot | undefined;
  #log: ResourceLogEntry[] = [];

  constructor(owner: SnapshotOwner, snapshot: Snapshot, signal: AbortSignal) {
    this.name = owner.name;
    this.signal = signal;
    this.#owner = owner;
    this.#snapshot = snapshot;
    // `start: ({ getResource }) => ...` is idiomatic: the methods work unbound.
    this.getResource = this.getResource.bind(this);
    this.hasResource = this.hasResource.bind(this);
  }

  getResource<T>(input: InputName): T {
    const name = this.#resolve(input, "getResource");
    const snapshot = this.#snapshot;
    if (snapshot === undefined) throw this.#expired("getResource", name);
    const index = this.#owner.indexOfInput(name);
    let failure: Error | undefined;
    if (index < 0) {
      failure = new MissingError(
        `manifold ${JSON.stringify(this.name)} asked for ${JSON.stringify(name)}, which is not in its inputs; add it to inputs to use it`,
      );
    } else if (snapshot[2 * index] === undefined) {
      failure = new MissingError(`manifold ${JSON.stringify(this.name)}: input ${JSON.stringify(name)} is not running`);
    } else if (typeof (snapshot[2 * index + 1] as OutputOwner).output !== "function") {
      failure = new MissingError(
        `manifold ${JSON.stringify(this.name)}: input ${JSON.stringify(name)} has no output; give its manifold an output function`,
      );
    }
    if (failure !== undefined) {
      this.#log.push({ name, error: failure.message });
      throw failure;
    }
    const owner = snapshot[2 * index + 1] as Required<OutputOwner>;
    try {
      const value = owner.output(snapshot[2 * index] as Worker) as T;
      this.#log.push({ name });
      return value;
    } catch (error) {
      this.#log.push({ name, error: error instanceof Error ? error.message : describeValue(error) });
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

  /** Ends the context's life and hands back the resource log of this attempt. */
  expire(): ResourceLogEntry[] {
    this.#snapshot = undefined;
    return this.#log;
  }

  #resolve(input: InputName, method: string): string {
    const name = nameOf(input);
    if (name === undefined) {
      throw new TypeError(
        `manifold ${JSON.stringify(this.name)}: ${method}(input) takes an input name or a resource token (got ${describeValue(input)})`,
      );
    }
    return name;
  }

  #expired(method: string, name: string): Error {
    return new Error(
      `manifold ${JSON.stringify(this.name)}: ${method}(${JSON.stringify(name)}) was called after its start function settled; ` +
        "the start context has expired. Get resources while start runs and pass them to the worker.",
    );
  }
}
