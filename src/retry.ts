/**
 * `withRetry`: retries a flaky start function inside one start attempt, with
 * p-retry, so that a dial that fails twice and then works neither restarts the
 * manifold's dependents nor counts against its backoff.
 *
 * p-retry runs the loop: it counts attempts, calls `onFailedAttempt`, decides
 * which errors are worth another attempt and checks the signal. The pause
 * before each retry is taken here, on a {@link Clock}, with p-retry's own
 * formula: p-retry sleeps on the global timers, which a test (or an engine
 * driven by a fake clock) cannot move.
 */
// Named imports only: the CommonJS build (esbuild, Node interop mode) would
// turn p-retry's default export into its whole namespace object, so the
// retry loop is reached through the named `makeRetriable` instead of `pRetry`.
import { AbortError as StopRetrying, makeRetriable, type RetryContext } from "p-retry";
import { systemClock, type Clock } from "./config.js";
import { BounceError, describeValue, errorIs, MissingError, quote, toError, UninstallError } from "./errors.js";
import type { StartContext } from "./manifold.js";
import type { Worker } from "./workers.js";

/** What `onFailedAttempt` learns about a failed attempt. */
export interface FailedAttempt {
  /** The manifold whose start function failed (the start context's `name`). */
  readonly name: string;
  /** What the attempt threw; a thrown non-`Error` arrives wrapped in an `Error` whose `cause` is the value. */
  readonly error: Error;
  /** 1 for the first attempt, 2 for the first retry, and so on. */
  readonly attemptNumber: number;
  /**
   * Retries still allowed after this failure (`Infinity` with `retries: Infinity`).
   * 0 means this failure ends the start; so does a `TypeError` that is not a
   * network error, whatever this says (p-retry never retries those).
   */
  readonly retriesLeft: number;
  /** Retries made before this failure. */
  readonly retriesConsumed: number;
}

/**
 * Options of {@link withRetry}. Every field is optional; the defaults are
 * p-retry's. The pause before retry number `n` (1-based) is
 * `min(minTimeout * factor^(n-1), maxTimeout)` milliseconds.
 */
export interface WithRetryOptions {
  /** Retries after the first attempt: a whole number, 0 or more, or `Infinity`. Default 10. */
  retries?: number | undefined;
  /** Growth of the pause from one retry to the next: a finite number, at least 1 (1 = constant). Default 2. */
  factor?: number | undefined;
  /** Milliseconds before the first retry: finite, 0 or more (0 = retry at once). Default 1000. */
  minTimeout?: number | undefined;
  /** Cap on any pause in milliseconds: at least `minTimeout`; `Infinity` for none. Default `Infinity`. */
  maxTimeout?: number | undefined;
  /**
   * Called after each failed attempt that may be retried (not for the engine's
   * own errors or an abort), before the pause. May return a promise, which is
   * awaited. If it throws (or rejects), retrying stops and the start fails with
   * what it threw: throw `failure.error` to give up with the attempt's error,
   * or a `BounceError`/`UninstallError` to tell the engine what to do instead.
   */
  onFailedAttempt?: ((failure: FailedAttempt) => void | Promise<void>) | undefined;
  /**
   * Timers for the pauses between attempts (only `setTimeout` and
   * `clearTimeout` are used). Default: the global timers. Pass the engine's
   * clock to make retries follow it in tests.
   */
  clock?: Pick<Clock, "setTimeout" | "clearTimeout"> | undefined;
}

/** The options after defaults and checks. */
interface ResolvedOptions {
  readonly retries: number;
  readonly factor: number;
  readonly minTimeout: number;
  readonly maxTimeout: number;
  readonly onFailedAttempt: ((failure: FailedAttempt) => void | Promise<void>) | undefined;
  readonly clock: Pick<Clock, "setTimeout" | "clearTimeout">;
}

const OPTION_NAMES: readonly string[] = ["retries", "factor", "minTimeout", "maxTimeout", "onFailedAttempt", "clock"];

/** Hints for keys p-retry users are likely to bring along. */
const KEY_HINTS: Readonly<Record<string, string>> = {
  signal: "the start context's signal is always used",
  forever: "use retries: Infinity",
};

/** The longest delay Node's timers honour (a longer one fires after 1 ms). */
const MAX_TIMER_DELAY = 2 ** 31 - 1;

function optionError(option: string, rule: string, value: unknown): TypeError {
  return new TypeError(`withRetry: option ${option} must be ${rule} (got ${describeValue(value)})`);
}

/**
 * Checks and copies the options (a later change to the caller's object has no
 * effect). @throws TypeError naming the first bad option and what it takes.
 */
function resolveOptions(options: unknown): ResolvedOptions {
  if (options === undefined) options = {};
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError(`withRetry(start, options): options must be an object when given (got ${describeValue(options)})`);
  }
  const given = options as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!OPTION_NAMES.includes(key)) {
      const hint = KEY_HINTS[key];
      throw new TypeError(
        `withRetry: unknown option ${quote(key)}${hint === undefined ? "" : ` (${hint})`}; the options are ${OPTION_NAMES.join(", ")}`,
      );
    }
  }
  const { retries = 10, factor = 2, minTimeout = 1000, maxTimeout = Number.POSITIVE_INFINITY, onFailedAttempt, clock } = given;
  if (typeof retries !== "number" || !(retries === Number.POSITIVE_INFINITY || (Number.isInteger(retries) && retries >= 0))) {
    throw optionError("retries", "a whole number >= 0 or Infinity (0 = no retries)", retries);
  }
  if (typeof factor !== "number" || !(Number.isFinite(factor) && factor >= 1)) {
    throw optionError("factor", "a finite number >= 1 (1 keeps the pause constant)", factor);
  }
  if (typeof minTimeout !== "number" || !(Number.isFinite(minTimeout) && minTimeout >= 0)) {
    throw optionError("minTimeout", "a finite number of milliseconds >= 0", minTimeout);
  }
  if (typeof maxTimeout !== "number" || !(maxTimeout >= 0)) {
    throw optionError("maxTimeout", "a number of milliseconds >= 0, or Infinity for no cap", maxTimeout);
  }
  if (maxTimeout < minTimeout) {
    throw new TypeError(
      `withRetry: option maxTimeout (${maxTimeout}) is below minTimeout (${minTimeout}), so every pause would be maxTimeout; raise maxTimeout or lower minTimeout`,
    );
  }
  if (onFailedAttempt !== undefined && typeof onFailedAttempt !== "function") {
    throw optionError("onFailedAttempt", "a function when given", onFailedAttempt);
  }
  if (clock !== undefined) {
    if (clock === null || typeof clock !== "object") {
      throw optionError("clock", "an object with setTimeout and clearTimeout (an engine Clock)", clock);
    }
    for (const method of ["setTimeout", "clearTimeout"] as const) {
      if (typeof (clock as Record<string, unknown>)[method] !== "function") {
        throw new TypeError(`withRetry: option clock is missing method ${method}(); it needs setTimeout and clearTimeout (an engine Clock)`);
      }
    }
  }
  return {
    retries,
    factor,
    minTimeout,
    maxTimeout,
    onFailedAttempt: onFailedAttempt as ResolvedOptions["onFailedAttempt"],
    clock: (clock as ResolvedOptions["clock"] | undefined) ?? systemClock,
  };
}

/**
 * Errors that another attempt cannot fix, or that tell the engine to do
 * something else: the engine's own MissingError (the snapshot of inputs is the
 * attempt's, so a missing input stays missing), BounceError and
 * UninstallError, anywhere along the cause chain; and an error named
 * `AbortError` (the DOM convention for an operation its caller cancelled on
 * purpose; a timeout is a `TimeoutError` and is retried).
 */
function isFinal(error: Error): boolean {
  return (
    errorIs(error, MissingError) ||
    errorIs(error, BounceError) ||
    errorIs(error, UninstallError) ||
    error.name === "AbortError"
  );
}

/** Thrown out of an attempt when the pause before it could not be taken (the clock threw). */
class PauseFailed extends Error {}

/**
 * Waits `ms` on `clock`, or rejects as soon as `signal` aborts (with its
 * reason, clearing the timer). Takes no timer at all for 0.
 */
function pause(ms: number, signal: AbortSignal, clock: ResolvedOptions["clock"]): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    let handle: unknown;
    let fired = false;
    const onAbort = (): void => {
      try {
        clock.clearTimeout(handle);
      } catch {
        // The pause is over either way; a timer that still fires finds the promise settled.
      }
      reject(signal.reason);
    };
    try {
      handle = clock.setTimeout(() => {
        fired = true;
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
    } catch (error) {
      reject(new PauseFailed(`withRetry: clock.setTimeout(fn, ${ms}) threw, so the pause before the next attempt could not be taken: ${toError(error, "clock.setTimeout").message}`, { cause: error }));
      return;
    }
    // A clock that fires at once (inside setTimeout) needs no listener.
    if (!fired) signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The pause before attempt `attemptNumber` (>= 2): p-retry's formula, capped to what a timer can hold. */
function delayBefore(attemptNumber: number, options: ResolvedOptions): number {
  const delay = Math.min(Math.round(options.minTimeout * options.factor ** (attemptNumber - 2)), options.maxTimeout);
  return Math.min(delay, MAX_TIMER_DELAY);
}

/**
 * Wraps a start function so that a failure it throws is retried within the
 * same start attempt, with p-retry and exponential backoff, instead of failing
 * the start: the engine sees one start that took longer, so the manifold's
 * dependents are not restarted and its backoff does not grow. The wrapped
 * function gets the attempt's own context every time, so `getResource` and
 * `hasResource` work on every retry (the engine expires the context when the
 * wrapped start settles, as for any start).
 *
 * Guarantees:
 * - Resolves with the worker of the first attempt that succeeds; after the
 *   last retry, rejects with the last attempt's error (the same object).
 * - Never retries `MissingError`, `BounceError`, `UninstallError` (anywhere
 *   along the cause chain, from either build of this package), an error named
 *   `AbortError`, or anything once the start's `signal` has aborted: these
 *   reject at once with that error. As in p-retry, a `TypeError` that is not a
 *   network error (a programming mistake) is not retried either; throwing
 *   p-retry's own `AbortError` stops retrying with its `originalError`.
 * - When the start's `signal` aborts, no further attempt is made and a pause
 *   in progress ends at once: the promise rejects with the signal's reason. An
 *   attempt already running is awaited first (it has the same signal); if it
 *   still returns a worker, that worker is returned, so that the engine stops
 *   it and waits for it like any worker of an aborted start, instead of it
 *   running on unseen.
 * - A non-`Error` thrown by the start function is wrapped in an `Error` (the
 *   original as `cause`) and retried like any other failure.
 * - Pauses use `options.clock` (default: the global timers); a pause of 0 takes
 *   no timer. `this` is passed through to `start`.
 *
 * @param start - The start function to retry; called with the attempt's context.
 * @param options - Retry count, backoff and `onFailedAttempt`; see {@link WithRetryOptions}.
 * @returns A start function to use as a manifold's `start`; it always returns a promise.
 * @throws TypeError at wrap time if `start` is not a function or an option is
 * unknown or invalid (the message names the option and what it takes).
 */
export function withRetry<W extends Worker>(
  start: (context: StartContext) => W | Promise<W>,
  options?: WithRetryOptions,
): (context: StartContext) => Promise<W> {
  if (typeof start !== "function") {
    throw new TypeError(`withRetry(start, options): start must be a start function, (context) => Worker (got ${describeValue(start)})`);
  }
  const resolved = resolveOptions(options);
  const userCallback = resolved.onFailedAttempt;

  return async function retryingStart(this: unknown, context: StartContext): Promise<W> {
    const self = this;
    // Reading it makes the attempt's AbortController (lazy in the engine); p-retry needs it anyway.
    const signal = context.signal;
    const where = `the start function of manifold ${quote(context.name)}`;
    // Set when an attempt returns: p-retry still rejects if the signal aborted
    // meanwhile, but that worker exists and must reach the engine (see above).
    let returned: { worker: W } | undefined;

    // p-retry counts the same way, but makeRetriable does not pass the count on.
    let attempts = 0;
    const attempt = async (): Promise<W> => {
      attempts++;
      if (attempts > 1) {
        try {
          await pause(delayBefore(attempts, resolved), signal, resolved.clock);
        } catch (error) {
          // Aborted (the caller below rejects with the signal's reason) or the clock threw.
          throw new StopRetrying(error instanceof PauseFailed ? error : "aborted during the pause before a retry");
        }
      }
      let worker: W;
      try {
        worker = await start.call(self, context);
      } catch (thrown) {
        if (thrown instanceof StopRetrying) throw thrown; // p-retry's own way to give up
        const error = toError(thrown, where);
        // A final error goes out as is: p-retry rethrows the AbortError's originalError without calling onFailedAttempt.
        if (signal.aborted || isFinal(error)) throw new StopRetrying(error);
        throw error;
      }
      returned = { worker };
      return worker;
    };

    const onFailedAttempt =
      userCallback === undefined
        ? undefined
        : async (failure: RetryContext): Promise<void> => {
            const { error, attemptNumber, retriesLeft, retriesConsumed } = failure;
            try {
              await userCallback({ name: context.name, error, attemptNumber, retriesLeft, retriesConsumed });
            } catch (thrown) {
              throw toError(thrown, `withRetry's onFailedAttempt for manifold ${quote(context.name)}`);
            }
          };

    try {
      // minTimeout 0: p-retry never sleeps itself; `attempt` pauses on the clock.
      return await makeRetriable(attempt, { retries: resolved.retries, minTimeout: 0, signal, ...(onFailedAttempt && { onFailedAttempt }) })();
    } catch (error) {
      if (returned !== undefined) return returned.worker;
      if (signal.aborted) throw signal.reason;
      throw error;
    }
  };
}
