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
 * brand of exactly that class.
 */
function brand<C extends abstract new (...args: never[]) => Error>(errorClass: C, name: string): void {
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

/** Options accepted by every error class of this package. */
export interface ErrorOptions {
  /** The error that caused this one; the engine looks through `cause` chains. */
  cause?: unknown;
}

/**
 * "Dependency not available": a start function or worker could not do its job
 * because an input is missing. The engine does not restart it until one of its
 * inputs changes.
 */
export class MissingError extends Error {
  constructor(message = "dependency not available", options?: ErrorOptions) {
    super(message, options);
    this.name = "MissingError";
  }
}

/**
 * "Restart immediately": the engine restarts the worker after `bounceDelay`
 * (not `errorDelay`) and without backoff.
 */
export class BounceError extends Error {
  constructor(message = "restart requested", options?: ErrorOptions) {
    super(message, options);
    this.name = "BounceError";
  }
}

/**
 * "Resource permanently unavailable": the engine uninstalls the manifold whose
 * start function or worker returned it.
 */
export class UninstallError extends Error {
  constructor(message = "uninstall requested", options?: ErrorOptions) {
    super(message, options);
    this.name = "UninstallError";
  }
}

/** Options of {@link CycleError}. */
export interface CycleErrorOptions extends ErrorOptions {
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
export interface AlreadyInstalledErrorOptions extends ErrorOptions {
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
  constructor(message = "the engine is stopping or stopped: it accepts no more changes", options?: ErrorOptions) {
    super(message, options);
    this.name = "EngineStoppedError";
  }
}

/** Options of {@link ShutdownTimeoutError}. */
export interface ShutdownTimeoutErrorOptions extends ErrorOptions {
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

brand(MissingError, "MissingError");
brand(BounceError, "BounceError");
brand(UninstallError, "UninstallError");
brand(CycleError, "CycleError");
brand(AlreadyInstalledError, "AlreadyInstalledError");
brand(EngineStoppedError, "EngineStoppedError");
brand(ShutdownTimeoutError, "ShutdownTimeoutError");

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
