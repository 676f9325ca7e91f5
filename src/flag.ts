/**
 * Flags (Juju's `Flag` and `Housing`): a flag is a manifold whose output says
 * yes or no, and a gated manifold runs only while every one of its flags says
 * yes.
 *
 * A flag's value is fixed for the life of its worker. To change it, the flag's
 * worker stops and a new one starts; the engine restarts its dependents as it
 * does for any input, so a gated worker notices a change without ever polling
 * a flag. That is also why a gate is checked once, in the start function.
 */
import { describeValue, MissingError, quote } from "./errors.js";
import { MANIFOLD_KEYS, type Manifold, type StartContext } from "./manifold.js";
import { nameOf, type InputName } from "./resource.js";
import type { Worker } from "./workers.js";

/**
 * What a flag manifold gives its dependents. `check()` returns the same value
 * for the whole life of the flag's worker; a new value comes with a new worker.
 */
export interface Flag {
  /** The flag's value. Constant while the worker that produced it runs. */
  check(): boolean;
}

/** A worker that is also a {@link Flag}: what a flag manifold's start function returns. */
export interface FlagWorker extends Worker, Flag {}

/**
 * A worker that holds `value` as a flag until killed; `wait()` resolves after
 * `kill()`. The usual worker of a flag computed from its inputs.
 * @throws TypeError if `value` is not a boolean.
 */
export function flagWorker(value: boolean): FlagWorker & { readonly value: boolean } {
  if (typeof value !== "boolean") {
    throw new TypeError(`flagWorker(value): value must be true or false (got ${describeValue(value)})`);
  }
  let stop!: () => void;
  const done = new Promise<void>((resolve) => {
    stop = resolve;
  });
  return {
    value,
    check: () => value,
    kill: () => stop(),
    wait: () => done,
  };
}

/** What {@link flagManifold} takes: a manifold whose worker is a {@link Flag}. */
export interface FlagManifoldOptions<W extends FlagWorker, T extends Flag = Flag> {
  /** Names of the manifolds the flag's start function may use. */
  readonly inputs: readonly InputName[];
  /** Creates the flag's worker; its `check()` is read once, when it has started. */
  start(context: StartContext): W | Promise<W>;
  /**
   * What dependents get. Default: a frozen `{ check }` returning the value read
   * when the worker started (dependents never get the worker itself).
   */
  output?: ((worker: W) => T) | undefined;
  /** As a manifold's `filter`. */
  filter?: ((error: unknown) => unknown) | undefined;
  /** As a manifold's `stopTimeout`. */
  readonly stopTimeout?: number | undefined;
}

/**
 * A manifold whose output is a {@link Flag}.
 *
 * Guarantees: the start function's worker must have a `check()` returning a
 * boolean; it is read once, when the worker has started, and every dependent
 * sees that value for the life of the worker, even if the worker's `check()`
 * would later say otherwise (a flag changes by restarting). A worker without a
 * usable `check()` is killed and the start fails with a `TypeError` naming the
 * manifold.
 *
 * @example
 * ```ts
 * engine.install(isController, flagManifold({
 *   inputs: [config],
 *   start: ({ getResource }) => flagWorker(getResource(config).controller),
 * }));
 * ```
 * @throws TypeError if `options` lacks `inputs` (an array) or `start` (a function),
 *   or `output` or `filter` is present but not a function.
 */
export function flagManifold<W extends FlagWorker, T extends Flag = Flag>(options: FlagManifoldOptions<W, T>): Manifold<W, T> {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`flagManifold(options): options must be an object with inputs and start (got ${describeValue(options)})`);
  }
  if (!Array.isArray(options.inputs)) {
    throw new TypeError(`flagManifold: inputs must be an array of manifold names or resource tokens (got ${describeValue(options.inputs)}); use inputs: [] for none`);
  }
  if (typeof options.start !== "function") {
    throw new TypeError(`flagManifold: start must be a function returning a worker with check() (got ${describeValue(options.start)})`);
  }
  for (const field of ["output", "filter"] as const) {
    if (options[field] !== undefined && typeof options[field] !== "function") {
      throw new TypeError(`flagManifold: ${field} must be a function when present (got ${describeValue(options[field])})`);
    }
  }
  // The value each worker reported when it started, and the output made from it.
  const values = new WeakMap<W, boolean>();
  const outputs = new WeakMap<W, Flag>();
  const start = options.start;
  const custom = options.output;
  const m: Manifold<W, T> = {
    inputs: options.inputs,
    start: async (context) => {
      const worker = await start(context);
      values.set(worker, readFlag(worker, context.name));
      return worker;
    },
    output: (worker) => {
      if (custom !== undefined) return custom(worker);
      let flag = outputs.get(worker);
      if (flag === undefined) {
        const value = values.get(worker) ?? false;
        flag = Object.freeze({ check: () => value });
        outputs.set(worker, flag);
      }
      return flag as T;
    },
  };
  if (options.filter !== undefined) m.filter = options.filter;
  if (options.stopTimeout !== undefined) return { ...m, stopTimeout: options.stopTimeout };
  return m;
}

/** Reads a new flag worker's value once; kills the worker if it is not a usable flag. */
function readFlag(worker: FlagWorker, name: string): boolean {
  let value: unknown;
  let problem: string | undefined;
  try {
    if (worker === null || typeof worker !== "object" || typeof worker.check !== "function") {
      problem = "has no check() method";
    } else {
      value = worker.check();
      if (typeof value !== "boolean") problem = `check() returned ${describeValue(value)}`;
    }
  } catch (error) {
    problem = `check() threw ${describeValue(error instanceof Error ? error.message : error)}`;
  }
  if (problem === undefined) return value as boolean;
  try {
    worker?.kill?.();
  } catch {
    // The start fails either way; a worker that cannot even be killed adds nothing to say.
  }
  throw new TypeError(`flag manifold ${quote(name)}: its worker ${problem}; a flag's worker must have check() returning true or false`);
}

/** Options of {@link gated}. */
export interface GatedOptions {
  /** The flag manifolds (names, or `Resource<Flag>` tokens) that must all be true for the manifold to start. At least one. */
  readonly flags: readonly InputName[];
}

/**
 * Juju's `Housing`: returns a copy of `manifold` that also lists `flags` among
 * its inputs and whose start throws `MissingError` unless every flag is
 * running and its `check()` is true. The copy is a plain object with every
 * manifold field of the original (`output`, `filter`, `stopTimeout`, ...; own
 * or inherited, methods bound to the original), and calls the original start
 * function, as a method of the original manifold, once the gate is open.
 *
 * Guarantees: the manifold's start function is never called while a flag is
 * not installed, not running, or false; since a flag changes value only by
 * restarting, and a restarting input restarts its dependents, a gated worker
 * runs only while all its flags are true. A flag whose output has no
 * `check()`, or whose `check()` throws or returns a non-boolean, makes the
 * start fail with an error naming both manifolds.
 *
 * @throws TypeError if `manifold` has no `inputs` array or `start` function,
 *   or `flags` is not a non-empty array of distinct names or resource tokens.
 */
export function gated<W extends Worker, T, I extends InputName = InputName>(manifold: Manifold<W, T, I>, options: GatedOptions): Manifold<W, T> {
  if (manifold === null || typeof manifold !== "object" || !Array.isArray(manifold.inputs) || typeof manifold.start !== "function") {
    throw new TypeError(`gated(manifold, options): manifold must be a manifold with an inputs array and a start function (got ${describeValue(manifold)})`);
  }
  if (options === null || typeof options !== "object" || !Array.isArray(options.flags) || options.flags.length === 0) {
    throw new TypeError(`gated(manifold, options): options.flags must be a non-empty array of flag manifold names or resource tokens (got ${describeValue(options?.flags)})`);
  }
  const flags: string[] = [];
  options.flags.forEach((flag, i) => {
    const name = nameOf(flag);
    if (name === undefined) {
      throw new TypeError(`gated: flags[${i}] must be a non-empty string or a resource token (got ${describeValue(flag)})`);
    }
    if (flags.includes(name)) throw new TypeError(`gated: flags[${i}] repeats ${quote(name)}; list each flag once`);
    flags.push(name);
  });
  const known = new Set(manifold.inputs.map((input) => nameOf(input)));
  const copy: Record<string, unknown> = {};
  // Every manifold field the engine knows, own or inherited (a class instance's
  // methods live on its prototype); methods stay bound to the original.
  for (const field of MANIFOLD_KEYS) {
    const value: unknown = (manifold as unknown as Record<string, unknown>)[field];
    if (value !== undefined) copy[field] = typeof value === "function" ? value.bind(manifold) : value;
  }
  copy["inputs"] = [...manifold.inputs, ...flags.filter((flag) => !known.has(flag))];
  copy["start"] = (context: StartContext): W | Promise<W> => {
    for (const flag of flags) checkGate(context, flag);
    // The context accepts any name, the manifold's own inputs among them.
    return manifold.start(context as StartContext<I>);
  };
  return copy as unknown as Manifold<W, T>;
}

/** Throws MissingError unless `flag` is running and true. */
function checkGate(context: StartContext, flag: string): void {
  if (!context.hasResource(flag)) {
    throw new MissingError(`manifold ${quote(context.name)}: flag ${quote(flag)} is not running; it starts when the flag is true`);
  }
  const output = context.getResource(flag);
  let value: unknown;
  if (output === null || typeof output !== "object" || typeof (output as Partial<Flag>).check !== "function") {
    throw new TypeError(`manifold ${quote(context.name)}: input ${quote(flag)} is listed as a flag but its output ${describeValue(output)} has no check(); make it a flagManifold`);
  }
  try {
    value = (output as Flag).check();
  } catch (error) {
    throw new Error(`manifold ${quote(context.name)}: flag ${quote(flag)}: check() threw`, { cause: error });
  }
  if (typeof value !== "boolean") {
    throw new TypeError(`manifold ${quote(context.name)}: flag ${quote(flag)}: check() returned ${describeValue(value)}; it must return true or false`);
  }
  if (!value) throw new MissingError(`manifold ${quote(context.name)}: flag ${quote(flag)} is false; it starts when the flag is true`);
}
