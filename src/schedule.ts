/**
 * How long to wait before a restart: backoff and jitter (SPEC rule 5).
 */
import type { ResolvedConfig } from "./config.js";

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
  return spread(config, delay);
}

/** `delay` spread by ±`jitter` (zero stays zero), rounded to whole milliseconds. */
export function spread(config: ResolvedConfig, delay: number): number {
  if (!(delay > 0)) return 0;
  if (config.jitter > 0) {
    delay *= 1 + config.jitter * (2 * config.random() - 1);
  }
  // A non-zero delay stays non-zero (at least 1 ms) whatever the spread.
  return Math.min(Math.max(Math.round(delay), 1), MAX_TIMER_DELAY);
}
