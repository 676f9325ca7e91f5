import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { closest, didYouMean, editDistance } from "../src/suggest.js";

/** The textbook optimal-string-alignment recurrence over the full table: the reference for editDistance. */
function referenceDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[];
      const up = d[i - 1] as number[];
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
      }
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

describe("editDistance (optimal string alignment)", () => {
  it.each([
    ["", "", 0],
    ["", "abc", 3],
    ["config", "config", 0],
    ["confg", "config", 1], // a letter dropped
    ["configg", "config", 1], // a letter doubled
    ["cnofig", "config", 1], // two neighbours swapped
    ["confog", "config", 1], // a letter replaced
    ["ca", "abc", 3], // OSA, not unrestricted Damerau (which says 2)
    ["kitten", "sitting", 3],
  ])("%j to %j is %d", (a, b, expected) => {
    expect(editDistance(a, b)).toBe(expected);
    expect(editDistance(b, a)).toBe(expected);
  });

  it("agrees with the full-table recurrence on random strings", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom("a", "b", "c", "d"), maxLength: 9 }), fc.string({ unit: fc.constantFrom("a", "b", "c", "d"), maxLength: 9 }), (a, b) => {
        expect(editDistance(a, b)).toBe(referenceDistance(a, b));
      }),
      { numRuns: 2000 },
    );
  });

  it("with a limit, is exact up to the limit and limit + 1 beyond it", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom("a", "b", "c"), maxLength: 10 }),
        fc.string({ unit: fc.constantFrom("a", "b", "c"), maxLength: 10 }),
        fc.nat(6),
        (a, b, limit) => {
          const exact = referenceDistance(a, b);
          expect(editDistance(a, b, limit)).toBe(exact <= limit ? exact : limit + 1);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("closest", () => {
  const options = ["isFatal", "worstError", "filter", "errorDelay", "bounceDelay", "backoffFactor", "backoffResetTime", "maxDelay", "jitter"];

  it.each([
    ["ErrorDelay", "errorDelay"], // wrong case only: the likeliest typo
    ["ERRORDELAY", "errorDelay"],
    ["errorDelya", "errorDelay"],
    ["bounceDely", "bounceDelay"],
    ["jiter", "jitter"],
    ["filters", "filter"],
    ["backofFactor", "backoffFactor"],
    ["maxdelay", "maxDelay"],
    ["bounce", "bounceDelay"], // the only option starting with it
  ])("suggests %s -> %s", (name, expected) => {
    expect(closest(name, options)).toBe(expected);
  });

  it.each([["verbose"], ["timeout"], ["x"], ["backoff"] /* two options start with it: no guess */, ["delay"]])("suggests nothing for %s", (name) => {
    expect(closest(name, options)).toBeUndefined();
  });

  it("never suggests the name itself, nor from an empty list", () => {
    expect(closest("jitter", ["jitter"])).toBeUndefined();
    expect(closest("jitter", [])).toBeUndefined();
  });

  it("never corrects a short name into an unrelated short name", () => {
    expect(closest("a", ["b", "c"])).toBeUndefined();
    expect(closest("ab", ["cd", "xy"])).toBeUndefined();
    expect(closest("db", ["bd"])).toBe("bd"); // a swap keeps a letter in place: still plausible
    expect(closest("A", ["a", "b"])).toBe("a"); // case only
  });

  it("breaks ties by the case-sensitive distance, then by candidate order", () => {
    expect(closest("Config", ["CONFIG", "config"])).toBe("config"); // 5 and 1 case changes
    expect(closest("ab", ["abc", "abd"])).toBe("abc");
    expect(closest("ab", ["abd", "abc"])).toBe("abd");
  });

  it("takes any iterable, a one-shot generator too", () => {
    function* names(): Generator<string> {
      yield "config";
      yield "stopTimeout";
    }
    expect(closest("confg", names())).toBe("config");
    expect(closest("stop", names())).toBe("stopTimeout");
  });

  it("suggests among many names, picking the nearest", () => {
    const many = Array.from({ length: 10_000 }, (_, i) => `worker-${i}`);
    expect(closest("worker-12345", many)).toBe("worker-1234");
    expect(closest("wroker-77", many)).toBe("worker-77");
  });
});

describe("didYouMean", () => {
  it("is a sentence tail with the quoted suggestion, or empty", () => {
    expect(didYouMean("confg", ["config"])).toBe('; did you mean "config"?');
    expect(didYouMean("zzz", ["config"])).toBe("");
  });
});
