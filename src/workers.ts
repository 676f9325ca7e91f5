/**
 * The worker contract and the two workers the package ships.
 */

/** Something the engine keeps running. */
export interface Worker {
  /** Ask the worker to stop. Idempotent, never throws, does not wait. */
  kill(): void;
  /** Resolves when the worker has stopped cleanly; rejects with the error that stopped it. */
  wait(): Promise<void>;
}

/** Something that can describe its own state. */
export interface Reporter {
  /** A JSON-serialisable description of the receiver's state. */
  report(): Record<string, unknown>;
}

/**
 * True when the error that rejected a killed worker's run is the abort itself:
 * the signal's reason, an error caused by it, or an `AbortError` (what
 * `fetch`, `timers/promises` and `events.once` throw when aborted).
 */
function isAbortOf(signal: AbortSignal, error: unknown): boolean {
  if (!signal.aborted) return false;
  if (error === signal.reason) return true;
  if (error !== null && typeof error === "object") {
    if ((error as { cause?: unknown }).cause === signal.reason) return true;
    if ((error as { name?: unknown }).name === "AbortError") return true;
  }
  return false;
}

/**
 * A worker that runs `run` until it returns or throws; `kill()` aborts `signal`.
 *
 * `run` is called at once. `wait()` resolves when `run` returns, or when it
 * rejects because of the abort after `kill()` (with the signal's reason, an
 * error whose `cause` is that reason, or an `AbortError`); it rejects with
 * whatever else `run` threw, a synchronous throw included. `wait()` returns the
 * same promise every time, and that promise never causes an unhandled rejection
 * by itself.
 *
 * @throws TypeError if `run` is not a function.
 */
export function createWorker(run: (signal: AbortSignal) => Promise<void> | void): Worker {
  if (typeof run !== "function") {
    throw new TypeError(`createWorker(run): run must be a function (got ${run === null ? "null" : typeof run})`);
  }
  const controller = new AbortController();
  let running: Promise<void> | void;
  try {
    running = run(controller.signal);
  } catch (error) {
    running = Promise.reject(error);
  }
  const done = Promise.resolve(running).then(
    () => undefined,
    (error: unknown) => {
      if (isAbortOf(controller.signal, error)) return undefined;
      throw error;
    },
  );
  // wait() callers see the failure; nobody else should.
  done.catch(() => undefined);
  return {
    kill: () => controller.abort(),
    wait: () => done,
  };
}

/**
 * A worker that holds `value` and does nothing until killed (Juju's value
 * worker): handy for manifolds whose output is a plain value.
 * `wait()` resolves after `kill()`.
 */
export function valueWorker<T>(value: T): Worker & { readonly value: T } {
  let stop!: () => void;
  const done = new Promise<void>((resolve) => {
    stop = resolve;
  });
  return {
    value,
    kill: () => stop(),
    wait: () => done,
  };
}

/**
 * Why `value` is not a usable worker, or `undefined` if it is one.
 * @internal
 */
export function notAWorker(value: unknown): string | undefined {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) {
    return `${value === null ? "null" : typeof value}`;
  }
  const candidate = value as { kill?: unknown; wait?: unknown };
  if (typeof candidate.kill !== "function") return "an object whose kill is not a function";
  if (typeof candidate.wait !== "function") return "an object whose wait is not a function";
  return undefined;
}

/** True when `value` has a callable `report()`. @internal */
export function isReporter(value: unknown): value is Reporter {
  return value !== null && typeof value === "object" && typeof (value as { report?: unknown }).report === "function";
}
