/**
 * How long to wait before a restart: backoff, how errors count towards it,
 * and jitter (SPEC rule 5).
 */
import type { ResolvedConfig } from "./config.js";
import type { Verdict } from "./failure.js";

/** The longest delay a Node.js timer honours; longer ones fire at once. */
export const MAX_TIMER_DELAY = 2 ** 31 - 1;

/**
 * The delay before restarting after an unknown error:
 * `errorDelay * backoffFactor^(recentErrors-1)`, capped at `maxDelay` (when
 * non-zero) and at the longest timer Node.js honours, then spread by
 * ±`jitter`. Computed in floating point, so hundreds of failures never
 * overflow into a negative or NaN delay.
 */
export function errorRestartDelay(config: ResolvedConfig, recentErrors: number): number {
  let delay = config.errorDelay;
  if (delay > 0 && config.backoffFactor > 1 && recentErrors > 1) {
    delay *= config.backoffFactor ** (recentErrors - 1);
  }
  if (config.maxDelay > 0 && delay > config.maxDelay) delay = config.maxDelay;
  return withJitter(config, delay);
}

/** The delay before restarting after a bounce or an input change: `bounceDelay` with jitter. */
export function bounceRestartDelay(config: ResolvedConfig): number {
  return withJitter(config, config.bounceDelay);
}

/**
 * Rule 5: a node's count of recent errors after an error of kind `verdict`.
 * `ranFor` is how long the worker ran, or undefined for a start function's
 * error. A worker that ran for `backoffResetTime` starts the count afresh.
 */
export function nextRecentErrors(recentErrors: number, verdict: Verdict, ranFor: number | undefined, config: ResolvedConfig): number {
  switch (verdict) {
    case "missing":
      return 1;
    case "unknown":
      return ranFor !== undefined && ranFor >= config.backoffResetTime ? 1 : recentErrors + 1;
    default:
      return recentErrors;
  }
}

/** `delay` spread by ±`jitter` (zero stays zero), rounded to whole milliseconds. */
export function withJitter(config: ResolvedConfig, delay: number): number {
  if (!(delay > 0)) return 0;
  if (config.jitter > 0) {
    delay *= 1 + config.jitter * (2 * config.random() - 1);
  }
  // A non-zero delay stays non-zero (at least 1 ms) whatever the spread.
  return Math.min(Math.max(Math.round(delay), 1), MAX_TIMER_DELAY);
}
