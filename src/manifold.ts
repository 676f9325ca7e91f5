/**
 * Manifolds: what a user installs. This file holds their types and the checks
 * `install` makes before anything is changed.
 */
import { CycleError, describeValue, quote } from "./errors.js";
import { nameOf, type InputName, type Resource } from "./resource.js";
import type { Worker } from "./workers.js";

/** What a start function receives. */
export interface StartContext {
  /** This manifold's name. */
  readonly name: string;
  /** Aborted when this start attempt is no longer wanted (engine stopping, an input changed). */
  readonly signal: AbortSignal;
  /**
   * The output of a declared input's running worker.
   * Throws MissingError if `input` is not declared in `inputs`, its worker is not
   * running, or its manifold has no `output`; rethrows whatever `output` throws.
   * Throws Error("... expired ...") once the start function has settled.
   */
  getResource<T>(input: Resource<T>): T;
  /** {@inheritDoc StartContext.(getResource:1)} */
  getResource(input: string): unknown;
  /** True when the declared input's worker is running (Juju's Get(name, nil)). Never throws MissingError. */
  hasResource(input: InputName): boolean;
}

/** One node of the dependency graph: what it uses, how to start it, what it offers. */
export interface Manifold<W extends Worker = Worker, T = unknown> {
  /** Names of the manifolds this one may use. The worker is started whether or not they are running. */
  readonly inputs: readonly InputName[];
  /** Create the worker. May return it or a promise of it. */
  start(context: StartContext): W | Promise<W>;
  /** What dependents get from getResource; omitted for leaf manifolds. */
  output?(worker: W): T;
  /** Convert errors from start or the worker (e.g. a domain error into BounceError) before the engine reads them. */
  filter?(error: unknown): unknown;
  /**
   * Milliseconds this manifold's worker (or aborted start) may take to settle
   * after the engine stops it before it is reported `stuck`; overrides the
   * engine's `stopTimeout`. 0 waits forever.
   */
  readonly stopTimeout?: number | undefined;
}

/** Identity function that infers W and T: `manifold({ inputs: [], start, output })`. */
export function manifold<W extends Worker, T = unknown>(m: Manifold<W, T>): Manifold<W, T> {
  return m;
}

/** Several manifolds by name, as `installAll` and `validate` take them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Manifolds = Record<string, Manifold<any, any>>;

/** A manifold whose name and inputs have been checked and normalised. @internal */
export interface CheckedManifold {
  readonly name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly manifold: Manifold<any, any>;
  readonly inputs: readonly string[];
}

/** How messages name a manifold; built only when there is an error to report (checks run once per install). */
function label(name: string): string {
  return `manifold ${quote(name)}`;
}

function indexBefore(names: readonly string[], name: string, end: number): number | undefined {
  for (let i = 0; i < end; i++) if (names[i] === name) return i;
  return undefined;
}

/**
 * Checks a manifold's name and shape as `install` requires (SPEC rule 1): a
 * non-empty name, `inputs` an array of distinct non-empty names or tokens none
 * of which is the manifold itself, `start` a function, `output` and `filter`
 * functions when present, `stopTimeout` a non-negative number when present.
 * @throws TypeError naming the manifold and the field; CycleError for a self-input.
 * @internal
 */
export function checkManifold(nameOrToken: unknown, candidate: unknown): CheckedManifold {
  const name = nameOf(nameOrToken);
  if (name === undefined) {
    throw new TypeError(`install: a manifold name must be a non-empty string or a resource token (got ${describeValue(nameOrToken)})`);
  }
  if (candidate === null || typeof candidate !== "object") {
    throw new TypeError(`${label(name)} must be an object with inputs and start (got ${describeValue(candidate)})`);
  }
  const m = candidate as Partial<Manifold> & Record<string, unknown>;
  if (!Array.isArray(m.inputs)) {
    throw new TypeError(`${label(name)}: inputs must be an array of manifold names or resource tokens (got ${describeValue(m.inputs)}); use inputs: [] for none`);
  }
  const inputs: string[] = new Array<string>(m.inputs.length);
  // Duplicates: a scan for the usual handful of inputs, a map only for many.
  const seen = m.inputs.length > 16 ? new Map<string, number>() : undefined;
  for (let i = 0; i < m.inputs.length; i++) {
    const input = nameOf(m.inputs[i]);
    if (input === undefined) {
      throw new TypeError(`${label(name)}: inputs[${i}] must be a non-empty string or a resource token (got ${describeValue(m.inputs[i])})`);
    }
    const earlier = seen !== undefined ? seen.get(input) : indexBefore(inputs, input, i);
    if (earlier !== undefined) {
      throw new TypeError(`${label(name)}: inputs[${i}] repeats ${quote(input)} (already inputs[${earlier}]); list each input once`);
    }
    if (input === name) {
      throw new CycleError(`${label(name)} lists itself in its inputs (inputs[${i}]); a manifold cannot depend on itself`, { cycle: [name, name] });
    }
    seen?.set(input, i);
    inputs[i] = input;
  }
  if (typeof m.start !== "function") {
    throw new TypeError(`${label(name)}: start must be a function returning a Worker (got ${describeValue(m.start)})`);
  }
  if (m.output !== undefined && typeof m.output !== "function") {
    throw new TypeError(`${label(name)}: output must be a function when present (got ${describeValue(m.output)})`);
  }
  if (m.filter !== undefined && typeof m.filter !== "function") {
    throw new TypeError(`${label(name)}: filter must be a function when present (got ${describeValue(m.filter)})`);
  }
  if (m.stopTimeout !== undefined && !(typeof m.stopTimeout === "number" && m.stopTimeout >= 0 && Number.isFinite(m.stopTimeout))) {
    throw new TypeError(`${label(name)}: stopTimeout must be a finite number of milliseconds >= 0 (got ${describeValue(m.stopTimeout)})`);
  }
  return { name, manifold: m as Manifold, inputs };
}
