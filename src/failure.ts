/**
 * Reading errors: what a manifold's filter makes of them, what kind they are
 * (SPEC rule 4) and whether and how
 * badly they are fatal (rule 6). Nothing here changes engine state, and no
 * user function called here can throw past it.
 */
import type { ResolvedConfig } from "./config.js";
import { BounceError, errorIs, MissingError, quote, toError, UninstallError } from "./errors.js";
import type { Manifold } from "./manifold.js";

/** What an error (after the manifold's filter) asks of the engine. @internal */
export type Verdict = "completed" | "missing" | "bounce" | "uninstall" | "unknown";

/** Rule 4, checked in Juju's order. `undefined` is a clean completion. @internal */
export function classify(error: Error | undefined): Verdict {
  if (error === undefined) return "completed";
  if (errorIs(error, MissingError)) return "missing";
  if (errorIs(error, BounceError)) return "bounce";
  if (errorIs(error, UninstallError)) return "uninstall";
  return "unknown";
}

/**
 * Passes `raw` through the manifold's filter. A result of `undefined` or `null`
 * means a clean completion; a thrown error becomes the error (rule 10).
 * @internal
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function filterError(name: string, manifold: Manifold<any, any>, raw: Error, config: ResolvedConfig): Error | undefined {
  const filter = manifold.filter;
  if (filter === undefined) return raw;
  try {
    const filtered = filter.call(manifold, raw);
    return filtered === undefined || filtered === null ? undefined : toError(filtered, `the filter of manifold ${quote(name)}`);
  } catch (thrown) {
    const error = toError(thrown, `the filter of manifold ${quote(name)}`);
    config.logger.error(`the filter of manifold ${quote(name)} threw: ${error.message}`);
    return error;
  }
}

/** `config.isFatal(error)`; a throwing isFatal is logged and counts as "not fatal". @internal */
export function isFatal(config: ResolvedConfig, error: Error, name: string): boolean {
  try {
    return Boolean(config.isFatal(error));
  } catch (thrown) {
    config.logger.error(`EngineConfig.isFatal threw on ${quote(name)}'s error; treating it as not fatal: ${toError(thrown, "isFatal").message}`);
    return false;
  }
}

/**
 * Rule 6: the first fatal error is the worst; each later one is ranked by
 * `worstError(error, worst)`. A throwing or empty-handed worstError keeps the
 * previous worst.
 * @internal
 */
export function rankFatal(config: ResolvedConfig, worst: Error | undefined, error: Error): Error {
  if (worst === undefined) return error;
  if (config.worstError === undefined) return worst;
  try {
    const ranked = config.worstError(error, worst);
    return ranked === undefined || ranked === null ? worst : toError(ranked, "EngineConfig.worstError");
  } catch (thrown) {
    config.logger.error(`EngineConfig.worstError threw; keeping the previous worst error: ${toError(thrown, "worstError").message}`);
    return worst;
  }
}
