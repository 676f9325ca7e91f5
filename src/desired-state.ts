/**
 * The options of the desired-state calls (`installAll`, `plan`, `apply`) and
 * their checks. The work itself lives in `when.ts` (conditions), `plan.ts`
 * (what changes) and the loop (carrying it out).
 */
import { describeValue } from "./errors.js";
import { didYouMean } from "./suggest.js";

/** Options of `installAll`. */
export interface InstallOptions {
  /** The requirement names that are true for `when` conditions (any iterable of strings); absent: none. */
  requirements?: Iterable<string> | undefined;
}

/** Options of `plan`. */
export interface PlanOptions {
  /** The requirement names that are true for `when` conditions; absent: none. */
  requirements?: Iterable<string> | undefined;
}

/** Options of `apply`. */
export interface ApplyOptions {
  /** The requirement names that are true for `when` conditions; absent: none. */
  requirements?: Iterable<string> | undefined;
  /**
   * Apply only if the installed set is still at this generation (a plan's
   * `generation`): "show the plan, then apply exactly it". Otherwise rejects
   * with StalePlanError and changes nothing.
   */
  ifGeneration?: number | undefined;
}

type AnyOptions = InstallOptions & ApplyOptions;

/**
 * Checks a call's options object: absent, or a plain object with only `known` keys.
 * @throws TypeError naming the call and the key.
 * @internal
 */
export function checkOptions(call: string, options: unknown, known: readonly (keyof AnyOptions)[]): AnyOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError(`${call}(…, options): options must be an object like { ${known.join(", ")} } (got ${describeValue(options)})`);
  }
  for (const key of Object.keys(options)) {
    if (!(known as readonly string[]).includes(key)) {
      throw new TypeError(`${call}(…, options): unknown option ${JSON.stringify(key)}${didYouMean(key, known) || "; remove it"} (the options are ${known.join(", ")})`);
    }
  }
  return options as AnyOptions;
}
