/**
 * Manifolds: what a user installs. This file holds their types and the checks
 * `install` makes before anything is changed.
 */
import { CycleError, describeValue, quote } from "./errors.js";
import { nameOf, type InputName, type Resource } from "./resource.js";
import { didYouMean } from "./suggest.js";
import { checkSupervision, SUPERVISION_KEYS, type HeartbeatAction, type RestartLimit, type SupervisionOptions } from "./supervision.js";
import type { Worker } from "./workers.js";

/**
 * What `getResource(input)` returns for an input of type `R`: `T` for a
 * `Resource<T>` token, `unknown` for a plain string. A union of tokens gives
 * the union of their types.
 */
export type ResourceValue<R> = [R] extends [Resource<infer T>] ? T : unknown;

/**
 * What a start function receives.
 *
 * `I` is the type of the manifold's declared inputs. {@link manifold} infers
 * it from the `inputs` array, so that `getResource` and `hasResource` accept
 * only those: a token of another type, or a plain string when only tokens are
 * declared, is a compile error that lists what is declared. With the default
 * (`InputName`) any name is accepted and checked at run time only. Tokens are
 * told apart by their type, not their name: a second `Resource<Db>` token
 * passes the compile-time check, and the run-time check (a MissingError)
 * catches it.
 *
 * @example
 * ```ts
 * const db = resource<Db>("db");
 * manifold({
 *   inputs: [db, "config"],
 *   start: (context) => {
 *     const handle = context.getResource(db);          // Db
 *     const raw = context.getResource("config");       // unknown
 *     context.getResource("confg");                    // compile error: not assignable to 'Resource<Db> | "config"'
 *     return valueWorker(handle);
 *   },
 * });
 * ```
 */
export interface StartContext<I extends InputName = InputName> {
  /** This manifold's name. */
  readonly name: string;
  /** Aborted when this start attempt is no longer wanted (engine stopping, an input changed). */
  readonly signal: AbortSignal;
  /**
   * The output of a declared input's running worker: a `T` for a
   * `Resource<T>` token, `unknown` for a plain string.
   * Throws MissingError if `input` is not declared in `inputs`, its worker is not
   * running, or its manifold has no `output`; rethrows whatever `output` throws.
   * Throws Error("... expired ...") once the start function has settled.
   */
  getResource<R extends I>(input: R): ResourceValue<R>;
  /** True when the declared input's worker is running (Juju's Get(name, nil)). Never throws MissingError. */
  hasResource(input: I): boolean;
  /**
   * Tells the engine the worker is alive: pushes its heartbeat deadline out
   * (see `heartbeatTimeout`). O(1), allocates nothing. Unlike getResource it
   * stays valid for the whole life of the worker this start returns; once
   * that worker has stopped or been replaced it does nothing. A no-op for a
   * manifold without a heartbeat timeout.
   */
  readonly heartbeat: () => void;
  /**
   * Records what the worker is doing (shown in the report's `progress` and as
   * a `progress` event) and counts as a heartbeat. Valid as long as
   * `heartbeat`.
   * @throws TypeError when `message` is not a string (put data in `details`).
   */
  readonly progress: (message: string, details?: unknown) => void;
}

/**
 * One node of the dependency graph: what it uses, how to start it, what it offers.
 *
 * `W` is the worker type, `T` what dependents get, `I` the type of the
 * declared inputs (see {@link StartContext}); {@link manifold} infers all three.
 *
 * Treat a manifold as read-only once installed. The engine checks it at
 * install and takes `inputs`, `stopTimeout` and the supervision options
 * (`heartbeatTimeout`, `heartbeatAction`, `restartLimit`, `quarantineTime`)
 * then, each read once (Juju copies a manifold at install), so changing
 * those on the object later changes nothing for the engine. `engine.apply`
 * compares the objects it is given with the installed objects, so an
 * installed object changed in place can compare equal to a desired one
 * while the engine still runs with what it took at install.
 * To change a manifold, install a new object (`apply` replaces it).
 * `start`, `output` and `filter` are called as methods of the object
 * installed (`this` is that object).
 */
export interface Manifold<W extends Worker = Worker, T = unknown, I extends InputName = InputName> {
  /** Names of the manifolds this one may use. The worker is started whether or not they are running. */
  readonly inputs: readonly I[];
  /** Create the worker. May return it or a promise of it. */
  start(context: StartContext<I>): W | Promise<W>;
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
  /**
   * Milliseconds its running worker may stay silent (no `heartbeat()` or
   * `progress()` from its start context) before it counts as hung; overrides
   * the engine's. 0: off. See {@link SupervisionOptions}.
   */
  readonly heartbeatTimeout?: number | undefined;
  /** What a missed heartbeat does: "restart" (default; killed as failed with HeartbeatTimeoutError) or "report" (marked silent). */
  readonly heartbeatAction?: HeartbeatAction | undefined;
  /** More than `count` failures within `within` ms quarantine it: no automatic restart until released. */
  readonly restartLimit?: RestartLimit | undefined;
  /** Milliseconds of quarantine before one probe start; 0: until `engine.restart(name)`. */
  readonly quarantineTime?: number | undefined;
  /**
   * A condition over requirement names (`"(os.debian | os.rhel5) & !basic"`):
   * the manifold is installed only when it holds for the requirements given
   * to `installAll`, `plan` or `apply`, and is removed from the inputs of the
   * others otherwise. See {@link parseCondition} for the grammar.
   */
  readonly when?: string | undefined;
  /**
   * The data this manifold was built from. `apply` keeps a running manifold
   * whose `config` is deeply equal to the installed one's (with equal inputs,
   * `when` and options) instead of replacing it, even when its functions are
   * new closures: what keeps a configuration reload from restarting everything.
   */
  readonly config?: unknown;
}

/**
 * Identity function that infers a manifold's types: the worker `W` from
 * `start`, the output `T` from `output`, and the inputs `I` from the `inputs`
 * array (no `as const` needed), so that the start context accepts only the
 * declared inputs.
 *
 * @example
 * ```ts
 * engine.install("users", manifold({
 *   inputs: [db],
 *   start: (context) => valueWorker(new UserService(context.getResource(db))), // Db, checked
 *   output: (worker) => worker.value,                                          // UserService
 * }));
 * ```
 */
export function manifold<W extends Worker, T = unknown, const I extends InputName = InputName>(m: Manifold<W, T, I>): Manifold<W, T, I> {
  return m;
}

/**
 * Every field of {@link Manifold}. `install`, `installAll` and `validate`
 * refuse any other key (a misspelt field would otherwise be ignored in
 * silence). A feature that adds a field adds it here too; the type check
 * below fails until it does.
 * @internal
 */
export const MANIFOLD_KEYS = Object.freeze(["inputs", "start", "output", "filter", "stopTimeout", ...SUPERVISION_KEYS, "when", "config"] as const satisfies readonly (keyof Manifold)[]);

/** Fails to compile, naming the field, when Manifold gains a field that MANIFOLD_KEYS lacks. */
type UnlistedManifoldKeys = Exclude<keyof Manifold, (typeof MANIFOLD_KEYS)[number]>;
const everyManifoldKeyListed: [UnlistedManifoldKeys] extends [never] ? true : UnlistedManifoldKeys = true;
void everyManifoldKeyListed;

const knownManifoldKeys: ReadonlySet<string> = new Set(MANIFOLD_KEYS);

/** Several manifolds by name, as `installAll` and `validate` take them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Manifolds = Record<string, Manifold<any, any>>;

/** A manifold whose name and inputs have been checked and normalised. @internal */
export interface CheckedManifold {
  readonly name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly manifold: Manifold<any, any>;
  readonly inputs: readonly string[];
  /** The manifold's `stopTimeout` as the check read it: read once, so a getter cannot hand the engine an unchecked value. */
  readonly stopTimeout: number | undefined;
  /** Its supervision options as the check read them (see checkSupervision); undefined when it sets none. */
  readonly supervision: SupervisionOptions | undefined;
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
 * Refuses keys that are not manifold fields, naming the key and the likeliest
 * field meant. Only own enumerable string keys count (a class instance's
 * methods live on its prototype), and they are checked first: `input` for
 * `inputs` is better reported as a typo than as missing inputs.
 */
function checkKeys(name: string, candidate: object): void {
  let unknown: string | undefined;
  try {
    // for-in rather than Object.keys: it walks V8's enum cache and allocates no array per install.
    for (const key in candidate) {
      if (knownManifoldKeys.has(key) || !Object.prototype.hasOwnProperty.call(candidate, key)) continue;
      unknown = key;
      break;
    }
  } catch (error) {
    throw new TypeError(`${label(name)}: its fields cannot be read (${String(error)}); pass a plain object with inputs and start`);
  }
  if (unknown === undefined) return;
  throw new TypeError(
    `${label(name)}: unknown field ${JSON.stringify(unknown)}${didYouMean(unknown, MANIFOLD_KEYS) || "; remove it"} ` +
      `(the fields are ${MANIFOLD_KEYS.join(", ")})`,
  );
}

/**
 * Checks a manifold's name and shape as `install` requires (SPEC rule 1): a
 * non-empty name, `inputs` an array of distinct non-empty names or tokens none
 * of which is the manifold itself, `start` a function, `output` and `filter`
 * functions when present, `stopTimeout` a non-negative number when present,
 * and no key outside {@link MANIFOLD_KEYS}.
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
  checkKeys(name, candidate);
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
  const stopTimeout = m.stopTimeout;
  if (stopTimeout !== undefined && !(typeof stopTimeout === "number" && stopTimeout >= 0 && Number.isFinite(stopTimeout))) {
    throw new TypeError(`${label(name)}: stopTimeout must be a finite number of milliseconds >= 0 (got ${describeValue(stopTimeout)})`);
  }
  // Each read once (a getter's next answer is never used). Most manifolds set none: no label is built for them.
  const { heartbeatTimeout, heartbeatAction, restartLimit, quarantineTime } = m;
  const supervision =
    heartbeatTimeout !== undefined || heartbeatAction !== undefined || restartLimit !== undefined || quarantineTime !== undefined
      ? checkSupervision(label(name), { heartbeatTimeout, heartbeatAction, restartLimit, quarantineTime })
      : undefined;
  return { name, manifold: m as Manifold, inputs, stopTimeout, supervision };
}
