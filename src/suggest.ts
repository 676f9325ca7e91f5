/**
 * "Did you mean …?": finds the known name closest to a misspelt one, so that
 * error messages can point at the fix (an unknown option, a manifold field,
 * an input that is not installed).
 *
 * Distance is the optimal-string-alignment form of Damerau-Levenshtein (one
 * insertion, deletion, substitution or swap of two neighbours costs 1), on
 * lower-cased names: a wrong case alone (`ErrorDelay`) is the likeliest typo
 * of all and counts as an exact match, with the case-sensitive distance
 * breaking ties.
 */

/**
 * The largest distance still worth suggesting: a third of the longer name
 * (at least 1), and always less than the shorter name's length, so that
 * nothing is "corrected" into an unrelated short word (`a` never suggests
 * `b`).
 */
function cutoff(a: string, b: string): number {
  const longer = Math.max(a.length, b.length);
  const shorter = Math.min(a.length, b.length);
  return Math.min(Math.max(1, Math.floor(longer / 3)), shorter - 1);
}

/**
 * The optimal-string-alignment distance between `a` and `b`, or `limit + 1`
 * as soon as it is known to exceed `limit` (so long unrelated names cost
 * little).
 * @internal
 */
export function editDistance(a: string, b: string, limit = Number.POSITIVE_INFINITY): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  // Three rows of the dynamic-programming table: the one two back is what a swap needs.
  let before = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1).fill(0);
  let previousMin = 0;
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(
        (previous[j] as number) + 1, // deletion
        (current[j - 1] as number) + 1, // insertion
        (previous[j - 1] as number) + cost, // substitution
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, (before[j - 2] as number) + 1); // swap of neighbours
      }
      current[j] = value;
      if (value < rowMin) rowMin = value;
    }
    // Every later cell builds on this row (+0 or more) or the one before it (+1 for a swap),
    // so once both are past the limit the distance is too.
    if (rowMin > limit && previousMin >= limit) return limit + 1;
    previousMin = rowMin;
    [before, previous, current] = [previous, current, before];
  }
  const distance = previous[b.length] as number;
  return distance > limit ? limit + 1 : distance;
}

/**
 * The candidate closest to `name`; failing that, the only candidate that
 * `name` is the start of (3 characters at least); `undefined` when none is
 * close enough to be a likely typo. `name` itself (exactly) is never
 * suggested. Ties go to the smaller case-sensitive distance, then to the
 * earlier candidate, so the answer is deterministic.
 *
 * @example
 * ```ts
 * closest("ErrorDelay", ["errorDelay", "bounceDelay"]); // "errorDelay"
 * closest("confg", ["config", "db"]);                  // "config"
 * closest("zzz", ["config", "db"]);                    // undefined
 * ```
 * @internal
 */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  // Read twice (distance, then prefix): a one-shot iterable becomes an array first.
  const list: readonly string[] = Array.isArray(candidates) ? candidates : [...candidates];
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  let bestExact = Number.POSITIVE_INFINITY;
  for (const candidate of list) {
    if (candidate === name) continue;
    const limit = cutoff(name, candidate);
    if (limit < 0) continue;
    const distance = editDistance(lower, candidate.toLowerCase(), limit);
    if (distance > limit || distance > bestDistance) continue;
    const exact = editDistance(name, candidate);
    if (distance < bestDistance || exact < bestExact) {
      best = candidate;
      bestDistance = distance;
      bestExact = exact;
    }
  }
  return best ?? uniquePrefixMatch(lower, list);
}

/**
 * The one candidate that starts with `lower` (a name cut short: `stop` for
 * `stopTimeout`), if exactly one does and `lower` has at least 3 characters;
 * an ambiguous prefix suggests nothing rather than a guess.
 */
function uniquePrefixMatch(lower: string, candidates: readonly string[]): string | undefined {
  if (lower.length < 3) return undefined;
  let found: string | undefined;
  for (const candidate of candidates) {
    if (candidate.length <= lower.length || !candidate.toLowerCase().startsWith(lower)) continue;
    if (found !== undefined && found !== candidate) return undefined;
    found = candidate;
  }
  return found;
}

/**
 * `; did you mean "x"?` for the closest candidate, or an empty string: for
 * the end of an error message.
 * @internal
 */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const suggestion = closest(name, candidates);
  return suggestion === undefined ? "" : `; did you mean ${JSON.stringify(suggestion)}?`;
}
