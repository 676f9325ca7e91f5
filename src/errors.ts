/**
 * The errors the engine understands, and the helpers it uses to read them.
 *
 * Every class takes `(message?, options?)` like `Error`, sets `name` to its own
 * class name, and is recognised anywhere along a `cause` chain (see {@link errorIs}),
 * so that wrapping an error with context never changes how the engine treats it.
 */

/**
 * ESM and CommonJS builds of this package each define their own classes; a
 * process that loads both would otherwise see a `MissingError` from one as an
 * unknown error in the other. Each class brands its instances with a
 * registry-wide symbol, and `instanceof` (hence `errorIs`) also accepts the
 * brand of exactly that class. Other modules of this package (leases) brand
 * their own error classes the same way.
 * @internal
 */
export function brand<C extends abstract new (...args: never[]) => Error>(errorClass: C, name: string): void {
  const key = Symbol.for(`manifold-engine.${name}`);
  Object.defineProperty(errorClass.prototype, key, { value: true });
  Object.defineProperty(errorClass, Symbol.hasInstance, {
    value(this: unknown, value: unknown): boolean {
      if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
      // Only the class itself, not a user's subclass, accepts the brand of another copy.
      return this === errorClass && value !== null && typeof value === "object" && (value as Record<symbol, unknown>)[key] === true;
    },
  });
}

/**
 * Options accepted by every error class of this package.
 * @example
 * ```ts
 * throw new BounceError("lease lost; claiming it again", { cause: error });
 * ```
 */
export interface EngineErrorOptions {
  /** The error that caused this one; the engine looks through `cause` chains. */
  cause?: unknown;
}

/**
 * The old name of {@link EngineErrorOptions}, kept so that existing imports compile.
 * @deprecated Use `EngineErrorOptions`: this name shadows the built-in `ErrorOptions` of TypeScript's lib.
 */
export type ErrorOptions = EngineErrorOptions;

/**
 * "Dependency not available": a start function or worker could not do its job
 * because an input is missing. The engine does not restart it until one of its
 * inputs changes.
 */
export class MissingError extends Error {
  constructor(message = "dependency not available", options?: EngineErrorOptions) {
    super(message, options);
    this.name = "MissingError";
  }
}

/**
 * "Restart immediately": the engine restarts the worker after `bounceDelay`
 * (not `errorDelay`) and without backoff.
 */
export class BounceError extends Error {
  constructor(message = "restart requested", options?: EngineErrorOptions) {
    super(message, options);
    this.name = "BounceError";
  }
}

/**
 * "Resource permanently unavailable": the engine uninstalls the manifold whose
 * start function or worker returned it.
 */
export class UninstallError extends Error {
  constructor(message = "uninstall requested", options?: EngineErrorOptions) {
    super(message, options);
    this.name = "UninstallError";
  }
}

/** Options of {@link CycleError}. */
export interface CycleErrorOptions extends EngineErrorOptions {
  /** The names along the cycle, in "depends on" order; the first equals the last. */
  cycle?: readonly string[];
}

/**
 * The manifolds' inputs form a cycle. `cycle` lists the names along it in
 * "depends on" order, the first name repeated at the end: `["a", "b", "a"]`
 * means a depends on b and b depends on a.
 */
export class CycleError extends Error {
  /** The names along the cycle; the first equals the last. */
  readonly cycle: readonly string[];

  constructor(message?: string, options?: CycleErrorOptions) {
    const cycle = Object.freeze([...(options?.cycle ?? [])]);
    super(
      message ??
        (cycle.length > 0
          ? `dependency cycle: ${cycle.map(quote).join(" -> ")}`
          : "dependency cycle"),
      options,
    );
    this.name = "CycleError";
    this.cycle = cycle;
  }
}

/** Options of {@link AlreadyInstalledError}. */
export interface AlreadyInstalledErrorOptions extends EngineErrorOptions {
  /** The name that is already taken. */
  manifoldName?: string;
}

/** `install` or `installAll` was given a name that is already installed. */
export class AlreadyInstalledError extends Error {
  /** The name that is already installed. */
  readonly manifoldName: string;

  constructor(message?: string, options?: AlreadyInstalledErrorOptions) {
    const manifoldName = options?.manifoldName ?? "";
    super(
      message ??
        `manifold ${quote(manifoldName)} is already installed; uninstall it first or choose another name`,
      options,
    );
    this.name = "AlreadyInstalledError";
    this.manifoldName = manifoldName;
  }
}

/** `install`, `installAll` or `uninstall` was called on an engine that is stopping or stopped. */
export class EngineStoppedError extends Error {
  constructor(message = "the engine is stopping or stopped: it accepts no more changes", options?: EngineErrorOptions) {
    super(message, options);
    this.name = "EngineStoppedError";
  }
}

/** Options of {@link ShutdownTimeoutError}. */
export interface ShutdownTimeoutErrorOptions extends EngineErrorOptions {
  /** The manifolds whose workers (or start functions) did not stop in time. */
  manifolds?: readonly string[];
}

/**
 * `engine.wait()` rejects with this when the engine stopped every worker it
 * could, but some did not settle within their `stopTimeout` after being killed.
 * `cause` holds the worst fatal error, if there was one.
 */
export class ShutdownTimeoutError extends Error {
  /** The stuck manifolds, sorted by name. */
  readonly manifolds: readonly string[];

  constructor(message?: string, options?: ShutdownTimeoutErrorOptions) {
    const manifolds = Object.freeze([...(options?.manifolds ?? [])]);
    const shown = manifolds.slice(0, 10).map(quote);
    if (manifolds.length > 10) shown.push(`and ${manifolds.length - 10} more`);
    super(message ?? `shutdown timed out: ${shown.join(", ") || "some workers"} did not stop within stopTimeout`, options);
    this.name = "ShutdownTimeoutError";
    this.manifolds = manifolds;
  }
}

/** Options of {@link ConditionSyntaxError}. */
export interface ConditionSyntaxErrorOptions extends EngineErrorOptions {
  /** The manifold whose `when` holds the expression; absent when `parseCondition` was called directly. */
  manifoldName?: string | undefined;
  /** The whole expression, as written. */
  expression?: string | undefined;
  /** Where the fault is: an index into `expression` (0 = its first character; its length = the end). */
  position?: number | undefined;
}

/**
 * A manifold's `when` (or the text given to `parseCondition`) is not a valid
 * condition. The message names the manifold, quotes the expression and says
 * what was expected at `position`, e.g.
 * `manifold "x": condition "a & | b": expected a name or "(" at position 4, found "|"`.
 */
export class ConditionSyntaxError extends Error {
  /** The manifold whose `when` is malformed, or `undefined` for a direct `parseCondition` call. */
  readonly manifoldName: string | undefined;
  /** The expression as written. */
  readonly expression: string;
  /** Index into `expression` of the fault (its length when the expression ended too early). */
  readonly position: number;

  constructor(message?: string, options?: ConditionSyntaxErrorOptions) {
    const expression = options?.expression ?? "";
    const position = options?.position ?? 0;
    const manifoldName = options?.manifoldName;
    super(
      message ??
        `${manifoldName === undefined ? "" : `manifold ${quote(manifoldName)}: `}condition ${JSON.stringify(expression)}: syntax error at position ${position}`,
      options,
    );
    this.name = "ConditionSyntaxError";
    this.manifoldName = manifoldName;
    this.expression = expression;
    this.position = position;
  }
}

/** Options of {@link StalePlanError}. */
export interface StalePlanErrorOptions extends EngineErrorOptions {
  /** The generation the plan was computed against (`plan.generation`, the `ifGeneration` given). */
  expected?: number | undefined;
  /** The generation of the installed set when the plan was to be applied. */
  actual?: number | undefined;
}

/**
 * `apply(desired, { ifGeneration })` was asked to carry out a plan computed
 * against an installed set that has changed since (make-magic's
 * compare-and-set token): nothing was changed. Compute a new plan and apply that.
 */
export class StalePlanError extends Error {
  /** The generation the plan was computed against. */
  readonly expected: number;
  /** The generation the installed set had moved on to. */
  readonly actual: number;

  constructor(message?: string, options?: StalePlanErrorOptions) {
    const expected = options?.expected ?? Number.NaN;
    const actual = options?.actual ?? Number.NaN;
    super(
      message ??
        `stale plan: it was computed against generation ${expected} of the installed set, which is now at generation ${actual}; ` +
          "nothing was changed: compute a new plan with engine.plan() and apply that",
      options,
    );
    this.name = "StalePlanError";
    this.expected = expected;
    this.actual = actual;
  }
}

/** Options of {@link HeartbeatTimeoutError}. */
export interface HeartbeatTimeoutErrorOptions extends EngineErrorOptions {
  /** The manifold whose worker went silent. */
  manifoldName?: string | undefined;
  /** Its heartbeatTimeout, in ms. */
  timeout?: number | undefined;
  /** How long it had been silent when the engine gave up on it, in ms. */
  silentFor?: number | undefined;
}

/**
 * A running worker called neither `heartbeat()` nor `progress()` for longer
 * than its manifold's `heartbeatTimeout`: the engine killed it, and treats it
 * as having failed with this error (through the manifold's `filter` and the
 * engine's `isFatal`, then restarted after `errorDelay` with backoff).
 */
export class HeartbeatTimeoutError extends Error {
  /** The manifold whose worker went silent. */
  readonly manifoldName: string;
  /** Its heartbeatTimeout, in ms. */
  readonly timeout: number;
  /** How long it had been silent, in ms. */
  readonly silentFor: number;

  constructor(message?: string, options?: HeartbeatTimeoutErrorOptions) {
    const manifoldName = options?.manifoldName ?? "";
    const timeout = options?.timeout ?? Number.NaN;
    const silentFor = options?.silentFor ?? Number.NaN;
    super(
      message ??
        `manifold ${quote(manifoldName)}: its worker sent no heartbeat for ${silentFor} ms (heartbeatTimeout ${timeout} ms); ` +
          "killed as hung: call context.heartbeat() or context.progress() more often than that, or raise heartbeatTimeout",
      options,
    );
    this.name = "HeartbeatTimeoutError";
    this.manifoldName = manifoldName;
    this.timeout = timeout;
    this.silentFor = silentFor;
  }
}

brand(MissingError, "MissingError");
brand(BounceError, "BounceError");
brand(UninstallError, "UninstallError");
brand(CycleError, "CycleError");
brand(AlreadyInstalledError, "AlreadyInstalledError");
brand(EngineStoppedError, "EngineStoppedError");
brand(ShutdownTimeoutError, "ShutdownTimeoutError");
brand(ConditionSyntaxError, "ConditionSyntaxError");
brand(StalePlanError, "StalePlanError");
brand(HeartbeatTimeoutError, "HeartbeatTimeoutError");

/** Any class of error: what {@link errorIs} looks for. */
export type ErrorClass<E extends Error = Error> = abstract new (...args: never[]) => E;

/**
 * True when `error`, or any error along its `cause` chain, is an instance of
 * `errorClass` (Go's `errors.Is`). Safe on cyclic cause chains.
 */
export function errorIs(error: unknown, errorClass: ErrorClass): boolean {
  const seen = new Set<unknown>();
  let current = error;
  try {
    while (current !== null && typeof current === "object" && !seen.has(current)) {
      if (current instanceof errorClass) return true;
      seen.add(current);
      current = (current as { cause?: unknown }).cause;
    }
  } catch {
    // A revoked proxy or a throwing `cause` getter ends the chain.
  }
  return false;
}

/** A manifold name for a message: JSON-quoted, and cut short if very long. */
export function quote(name: string): string {
  return JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}...` : name);
}

/** A short, readable rendering of any thrown value, for messages. */
export function describeValue(value: unknown): string {
  try {
    return describeUnsafely(value);
  } catch {
    // A revoked proxy or a throwing getter: nothing more can be said safely.
    return "an unreadable value";
  }
}

function describeUnsafely(value: unknown): string {
  if (value === undefined) return "undefined";
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}...` : value);
  if (typeof value === "function") return `a function${value.name ? ` (${value.name})` : ""}`;
  if (typeof value === "symbol" || typeof value === "bigint" || typeof value === "number" || typeof value === "boolean") {
    return `${typeof value} ${String(value)}`;
  }
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  try {
    const json = JSON.stringify(value);
    if (json !== undefined) return `an object ${json.length > 200 ? `${json.slice(0, 200)}...` : json}`;
  } catch {
    // A cyclic or exotic object: fall through to a generic description.
  }
  return "an object";
}

/**
 * Returns `thrown` if it is an `Error`; otherwise wraps it in an `Error` whose
 * message says where it came from and whose `cause` is the original value, so
 * that filters, `isFatal`, `worstError`, reports and `wait()` only see `Error`s.
 */
export function toError(thrown: unknown, where: string): Error {
  try {
    if (thrown instanceof Error) return thrown;
  } catch {
    // `instanceof` throws on a revoked proxy: wrap it like any other non-Error.
  }
  return new Error(`${where} threw a non-Error value: ${describeValue(thrown)}`, { cause: thrown });
}
