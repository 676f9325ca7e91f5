/**
 * Plans (desired state, issue 12): installed vs desired -> install, uninstall,
 * replace, keep, skip, restart, with reasons. Pure: no engine involved; the
 * engine's apply carries these plans out.
 */
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import { CycleError, resource, valueWorker, type Manifold, type Manifolds, type Plan, type Worker } from "../src/index.js";
import { computePlan, type InstalledSet, type PlanEntry } from "../src/plan.js";
import { nameOf } from "../src/resource.js";
import { selectByConditions as selectList } from "../src/when.js";

/** selectByConditions, with what it kept also as a record by name (in its order). */
function selectByConditions(manifolds: Manifolds, requirements?: Iterable<string>): ReturnType<typeof selectList> & { manifolds: Manifolds } {
  const selection = selectList(manifolds, requirements);
  return { ...selection, manifolds: Object.fromEntries(selection.kept.map((kept) => [kept.name, kept.manifold])) };
}

/** A manifold with extra fields (`config`, `when`, options) that the Manifold type may not list. */
function m(inputs: Manifold["inputs"], extra: Record<string, unknown> = {}): Manifold {
  // A new closure every time, as a daemon rebuilding its manifolds makes.
  return Object.assign({ inputs, start: () => valueWorker(0) }, extra);
}

/** The entries a manifold record gives after conditions, as the engine checks them. */
function entries(manifolds: Manifolds): PlanEntry[] {
  return Object.keys(manifolds).map((name) => {
    const manifold = manifolds[name] as Manifold;
    return { name, manifold, inputs: manifold.inputs.map((input) => nameOf(input) as string) };
  });
}

/**
 * computePlan has two walks: over the whole desired graph (an installed set
 * without `dependents`, as a plain Map) and from the changes (with them, as
 * the engine gives). The example tests below run with each.
 */
let useDependents = false;

function installedOf(manifolds: Manifolds): Map<string, PlanEntry> {
  const map = new Map(entries(manifolds).map((entry) => [entry.name, entry]));
  return useDependents ? withDependents(map) : map;
}

/** The installed set with `dependents`, as the engine's graph answers it. */
function withDependents(map: Map<string, PlanEntry>): Map<string, PlanEntry> & InstalledSet {
  const dependents = new Map<string, PlanEntry[]>();
  for (const entry of map.values()) {
    for (const input of entry.inputs) dependents.set(input, [...(dependents.get(input) ?? []), entry]);
  }
  return Object.assign(map, { dependents: (name: string): Iterable<PlanEntry> => dependents.get(name) ?? [] });
}

/** What engine.plan does: conditions first, then the comparison. */
function plan(installed: Manifolds, desired: Manifolds, requirements: string[] = [], generation = 7): Plan {
  const selection = selectByConditions(desired, requirements);
  return computePlan(installedOf(installed), { entries: entries(selection.manifolds), skipped: selection.skipped }, generation);
}

function lists(p: Plan): Record<string, readonly string[]> {
  return { install: p.install, uninstall: p.uninstall, replace: p.replace, keep: p.keep, skip: p.skip, restart: p.restart };
}

describe.each([
  ["walking the whole desired graph", false],
  ["walking from the changes (the installed set gives dependents)", true],
])("%s", (_, flag) => {
  beforeEach(() => {
    useDependents = flag;
  });

  describe("computePlan: categories", () => {
    it("an empty engine installs everything; an empty desired set uninstalls everything", () => {
      const set = { a: m([]), b: m(["a"]) };
      expect(lists(plan({}, set))).toEqual({ install: ["a", "b"], uninstall: [], replace: [], keep: [], skip: [], restart: [] });
      expect(lists(plan(set, {}))).toEqual({ install: [], uninstall: ["a", "b"], replace: [], keep: [], skip: [], restart: [] });
    });

    it("the installed objects themselves are kept, and nothing restarts", () => {
      const set = { a: m([]), b: m(["a"]), c: m(["a", "b"]) };
      const p = plan(set, { ...set });
      expect(lists(p)).toEqual({ install: [], uninstall: [], replace: [], keep: ["a", "b", "c"], skip: [], restart: [] });
      expect(Object.keys(p.reasons)).toEqual([]);
    });

    it("sorts every list and carries the generation; the plan and its lists are frozen", () => {
      const installed = { zeta: m([]), alpha: m([]), mid: m([]) };
      const p = plan(installed, { beta: m([]), omega: m([]), Alpha: m([]), mid: installed.mid }, [], 42);
      expect(p.install).toEqual(["Alpha", "beta", "omega"]);
      expect(p.uninstall).toEqual(["alpha", "zeta"]);
      expect(p.generation).toBe(42);
      expect(Object.isFrozen(p)).toBe(true);
      expect(Object.isFrozen(p.install)).toBe(true);
      expect(Object.isFrozen(p.reasons)).toBe(true);
      expect(Object.getPrototypeOf(p.reasons)).toBe(null);
    });

    it("splits desired into install, replace and keep, and installed into uninstall, replace and keep", () => {
      const installed = { keep: m([], { config: 1 }), change: m([], { config: 1 }), gone: m([]) };
      const p = plan(installed, { keep: m([], { config: 1 }), change: m([], { config: 2 }), fresh: m([]) });
      expect(lists(p)).toEqual({ install: ["fresh"], uninstall: ["gone"], replace: ["change"], keep: ["keep"], skip: [], restart: [] });
      expect(p.reasons).toEqual({ change: "config changed" });
    });

    it("skip lists the manifolds left out by their when; an installed one of them is also uninstalled", () => {
      const installed = { coffee: m([]), toast: m([]) };
      const p = plan(installed, { coffee: m([], { when: "coffee" }), tea: m([], { when: "tea" }), toast: installed.toast }, ["nothing"]);
      expect(p.skip).toEqual(["coffee", "tea"]);
      expect(p.uninstall).toEqual(["coffee"]);
      expect(p.keep).toEqual(["toast"]);
    });
  });

  describe("computePlan: same or changed", () => {
    it("keeps a new object whose config is deeply equal (a daemon rebuilding from the same file)", () => {
      const config = { url: "postgres://db", pool: { size: 4, tags: ["a", "b"] } };
      const p = plan({ db: m([], { config, stopTimeout: 100 }) }, { db: m([], { config: structuredClone(config), stopTimeout: 100 }) });
      expect(p.keep).toEqual(["db"]);
      expect(p.replace).toEqual([]);
    });

    it("compares configs as util.isDeepStrictEqual does: cycles, Maps, Dates, NaN", () => {
      const config = (): Record<string, unknown> => {
        const value: Record<string, unknown> = { when: new Date(0), peers: new Map([["a", { port: 1 }]]), ratio: Number.NaN };
        value.self = value;
        return value;
      };
      expect(plan({ a: m([], { config: config() }) }, { a: m([], { config: config() }) }).keep).toEqual(["a"]);
      const other = config();
      (other.peers as Map<string, unknown>).set("b", {});
      expect(plan({ a: m([], { config: config() }) }, { a: m([], { config: other }) }).reasons.a).toBe("config changed");
    });

    it("replaces a new object without config (there is nothing to compare it by)", () => {
      const p = plan({ db: m([]) }, { db: m([]) });
      expect(p.replace).toEqual(["db"]);
      expect(p.reasons.db).toBe("a different manifold object without config (give both a config to compare them by)");
    });

    it.each([
      ["config changed", { config: { size: 4 } }, { config: { size: 5 } }],
      ["config changed", { config: { size: 4 } }, { config: { size: "4" } }], // strict: no type coercion
      ["config added", {}, { config: 1 }],
      ["config removed", { config: 1 }, {}],
      ['when changed: "a" -> "a & b"', { config: 1, when: "a" }, { config: 1, when: "a & b" }],
      ['when changed: (none) -> "a"', { config: 1 }, { config: 1, when: "a" }],
      ["stopTimeout changed: 100 -> 200", { config: 1, stopTimeout: 100 }, { config: 1, stopTimeout: 200 }],
      ["stopTimeout changed: 100 -> (none)", { config: 1, stopTimeout: 100 }, { config: 1 }],
      ["heartbeatTimeout changed: (none) -> 5000", { config: 1 }, { config: 1, heartbeatTimeout: 5000 }],
      ['heartbeatAction changed: "restart" -> "kill"', { config: 1, heartbeatAction: "restart" }, { config: 1, heartbeatAction: "kill" }],
      ["restartLimit changed: a new value -> a new value", { config: 1, restartLimit: { count: 3 } }, { config: 1, restartLimit: { count: 4 } }],
      ["config changed; stopTimeout changed: 1 -> 2", { config: 1, stopTimeout: 1 }, { config: 2, stopTimeout: 2 }],
      ["output changed: (none) -> a function", { config: 1 }, { config: 1, output: () => 1 }],
      ["quarantineTime changed: 0 -> 1000", { config: 1, quarantineTime: 0 }, { config: 1, quarantineTime: 1000 }],
    ])("replaces, saying %j", (reason, before, after) => {
      const p = plan({ a: m(["x"], before) }, { a: m(["x"], after) }, ["a", "b"]);
      expect(p.replace).toEqual(["a"]);
      expect(p.reasons.a).toBe(reason);
    });

    it("reads options through getters, as the engine does (a class-based manifold)", () => {
      class Service {
        readonly inputs: string[] = [];
        readonly config = { port: 1 };
        constructor(readonly timeout: number) {}
        get stopTimeout(): number {
          return this.timeout;
        }
        start(): Worker {
          return valueWorker(0);
        }
      }
      expect(plan({ a: new Service(5) as unknown as Manifold }, { a: new Service(5) as unknown as Manifold }).keep).toEqual(["a"]);
      expect(plan({ a: new Service(5) as unknown as Manifold }, { a: new Service(6) as unknown as Manifold }).reasons.a).toBe("stopTimeout changed: 5 -> 6");
    });

    it("compares when in normal form: a&b and ( a & b ) are the same", () => {
      expect(plan({ a: m([], { config: 1, when: "a&b" }) }, { a: m([], { config: 1, when: "( a & b )" }) }, ["a", "b"]).keep).toEqual(["a"]);
    });

    it("does not compare functions: new closures for start, output, filter or any other function are fine", () => {
      const before = m([], { config: 1, output: () => 1, filter: (e: unknown) => e, onEvent: () => undefined });
      const after = m([], { config: 1, output: () => 2, filter: () => null, onEvent: () => "other" });
      expect(plan({ a: before }, { a: after }).keep).toEqual(["a"]);
    });

    it("says which inputs were added and removed; order alone is no change", () => {
      const db = resource("db");
      const p = plan({ app: m(["db", "log"], { config: 1 }), other: m(["a", "b"], { config: 1 }) }, { app: m(["cache", db], { config: 1 }), other: m(["b", "a"], { config: 1 }) });
      expect(p.replace).toEqual(["app"]);
      expect(p.reasons.app).toBe("inputs changed: +cache -log");
      expect(p.keep).toEqual(["other"]);
    });

    it("quotes input names that could be misread", () => {
      const p = plan({ app: m(["a b"], { config: 1 }) }, { app: m(["x"], { config: 1 }) });
      expect(p.reasons.app).toBe('inputs changed: +x -"a b"');
    });

    it("replaces the installed object itself when its inputs after conditions differ", () => {
      const app = m(["coffee", "db"]);
      const installed = selectByConditions({ app, coffee: m([], { when: "coffee" }) }, ["coffee"]).manifolds;
      const p = plan(installed, { app, coffee: m([], { when: "coffee" }) }, []);
      expect(p.replace).toEqual(["app"]);
      expect(p.reasons.app).toBe("inputs changed: -coffee");
      expect(p.uninstall).toEqual(["coffee"]);
      expect(p.skip).toEqual(["coffee"]);
    });

    it("sees through the objects conditions derive: the same manifold stripped the same way twice is kept", () => {
      const app = m(["coffee", "db"]);
      const desired = { app, coffee: m([], { when: "coffee" }), db: m([]) };
      const first = selectByConditions(desired, []).manifolds;
      const second = selectByConditions(desired, []).manifolds;
      expect(first.app).not.toBe(second.app);
      const p = computePlan(installedOf(first), { entries: entries(second) }, 0);
      expect(p.keep).toEqual(["app", "db"]);
      expect(p.replace).toEqual([]);
    });

    it("counts a config that cannot be read as changed, saying why, instead of throwing", () => {
      const unreadable = { get url(): string {
        throw new Error("vault locked");
      } };
      const p = plan({ a: m([], { config: { url: "x" } }) }, { a: m([], { config: unreadable }) });
      expect(p.replace).toEqual(["a"]);
      expect(p.reasons.a).toBe("config could not be compared (vault locked), so it counts as changed");
    });

    it("replaces a manifold whose fields cannot be read, saying why, instead of throwing", () => {
      const { proxy, revoke } = Proxy.revocable(m([], { config: 1 }), {});
      const installed = installedOf({ a: m([], { config: 1 }) });
      const desired = { entries: [{ name: "a", manifold: proxy, inputs: [] }] };
      revoke();
      const p = computePlan(installed, desired, 0);
      expect(p.replace).toEqual(["a"]);
      expect(p.reasons.a).toMatch(/^could not be compared \(.*revoked.*\), so it counts as changed$/);
    });

    it("refuses a desired name given twice", () => {
      const a = { name: "a", manifold: m([]), inputs: [] };
      expect(() => computePlan(new Map(), { entries: [a, a] }, 0)).toThrow(TypeError);
      expect(() => computePlan(new Map(), { entries: [a, a] }, 0)).toThrow(/manifold "a" is desired twice/);
    });
  });

  describe("computePlan: restarts", () => {
    it("restarts kept dependents of a replaced manifold, transitively, saying why", () => {
      const installed = { a: m([], { config: 1 }), b: m(["a"]), c: m(["b"]), d: m(["c"]), side: m([]) };
      const p = plan(installed, { ...installed, a: m([], { config: 2 }) });
      expect(p.replace).toEqual(["a"]);
      expect(p.keep).toEqual(["b", "c", "d", "side"]);
      expect(p.restart).toEqual(["b", "c", "d"]);
      expect(p.reasons).toEqual({ a: "config changed", b: 'input "a" replaced', c: 'input "b" restarted', d: 'input "c" restarted' });
    });

    it("restarts a kept manifold whose input is installed or uninstalled", () => {
      const installed = { old: m([]), usesOld: m(["old"]), usesNew: m(["new"]) };
      const p = plan(installed, { usesOld: installed.usesOld, usesNew: installed.usesNew, new: m([]) });
      expect(p.install).toEqual(["new"]);
      expect(p.uninstall).toEqual(["old"]);
      expect(p.restart).toEqual(["usesNew", "usesOld"]);
      expect(p.reasons).toEqual({ usesNew: 'input "new" installed', usesOld: 'input "old" uninstalled' });
    });

    it("lists every cause, in the order of the inputs", () => {
      const installed = { a: m([], { config: 1 }), b: m([]), c: m([]), x: m(["b", "a", "c", "quiet", "absent"]), quiet: m([]) };
      const p = plan(installed, { a: m([], { config: 2 }), c: installed.c, x: installed.x, quiet: installed.quiet, b2: m([]) });
      expect(p.reasons.x).toBe('input "b" uninstalled; input "a" replaced');
    });

    it("does not restart what an input change does not reach, nor what is replaced or installed anyway", () => {
      const installed = { a: m([], { config: 1 }), b: m(["a"], { config: 1 }), c: m([]), d: m(["c"]) };
      const p = plan(installed, { a: m([], { config: 2 }), b: m(["a"], { config: 2 }), c: installed.c, d: installed.d, e: m(["a"]) });
      expect(p.replace).toEqual(["a", "b"]);
      expect(p.install).toEqual(["e"]);
      expect(p.restart).toEqual([]);
    });

    it("walks a 50,000-long chain without overflowing the stack", () => {
      const installed: Manifolds = {};
      for (let i = 0; i < 50_000; i++) installed[`n${i}`] = m(i === 0 ? [] : [`n${i - 1}`], { config: i });
      const p = plan(installed, { ...installed, n0: m([], { config: -1 }) });
      expect(p.replace).toEqual(["n0"]);
      expect(p.restart).toHaveLength(49_999);
      expect(p.reasons.n49999).toBe('input "n49998" restarted');
    });
  });

  describe("computePlan: cycles in the desired graph", () => {
    it("throws CycleError for a cycle among new manifolds", () => {
      expect(() => plan({}, { a: m(["b"]), b: m(["a"]) })).toThrow(CycleError);
      try {
        plan({}, { a: m(["b"]), b: m(["c"]), c: m(["a"]) });
      } catch (error) {
        expect((error as CycleError).cycle).toEqual(["a", "b", "c", "a"]);
        expect((error as Error).message).toBe('cannot install manifold "a": its inputs close a dependency cycle "a" -> "b" -> "c" -> "a"');
      }
    });

    it("finds a cycle closed through manifolds that stay, and names the changed manifold that closes it", () => {
      const installed = { a: m(["b"]), b: m([], { config: 1 }), c: m(["a"]) };
      let caught: unknown;
      try {
        plan(installed, { a: installed.a, c: installed.c, b: m(["c"], { config: 1 }) });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(CycleError);
      expect((caught as CycleError).cycle).toEqual(["b", "c", "a", "b"]);
      expect((caught as Error).message).toMatch(/^cannot install manifold "b": its inputs close a dependency cycle "b" -> "c" -> "a" -> "b"$/);
    });

    it("ignores inputs that are neither desired nor installed, as install does", () => {
      expect(plan({}, { a: m(["nowhere"]) }).install).toEqual(["a"]);
    });
  });
});

// ---------------------------------------------------------------------------
// Property: random current and desired graphs

const POOL = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"];

/** How a desired manifold relates to the installed one under its name. */
type Fate = "absent" | "same" | "equal-config" | "other-config" | "no-config" | "new-inputs";

interface Scenario {
  installed: Manifolds;
  desired: Manifolds;
  requirements: string[];
}

/** Inputs only from earlier names, so both graphs are acyclic; cycles are tested above. */
const inputsFor = (index: number): fc.Arbitrary<string[]> => fc.subarray(POOL.slice(0, index));

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    present: fc.array(fc.boolean(), { minLength: POOL.length, maxLength: POOL.length }),
    inputs: fc.tuple(...POOL.map((_, i) => inputsFor(i))),
    newInputs: fc.tuple(...POOL.map((_, i) => inputsFor(i))),
    configs: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: POOL.length, maxLength: POOL.length }),
    fates: fc.array(fc.constantFrom<Fate>("absent", "same", "same", "equal-config", "equal-config", "other-config", "no-config", "new-inputs"), {
      minLength: POOL.length,
      maxLength: POOL.length,
    }),
    whens: fc.array(fc.option(fc.constantFrom("r1", "!r1", "r1 & r2", "r2 | !r1"), { nil: undefined }), { minLength: POOL.length, maxLength: POOL.length }),
    requirements: fc.subarray(["r1", "r2"]),
  })
  .map(({ present, inputs, newInputs, configs, fates, whens, requirements }) => {
    const installed: Manifolds = {};
    const desired: Manifolds = {};
    POOL.forEach((name, i) => {
      const config = { value: configs[i] };
      if (present[i]) installed[name] = m(inputs[i] as string[], { config });
      const fate = fates[i] as Fate;
      const when = whens[i] === undefined ? {} : { when: whens[i] };
      const existing = installed[name];
      if (fate === "absent") return;
      if (fate === "same" && existing !== undefined && whens[i] === undefined) desired[name] = existing;
      else if (fate === "equal-config" || (fate === "same" && existing !== undefined)) desired[name] = m(inputs[i] as string[], { config: { ...config }, ...when });
      else if (fate === "other-config") desired[name] = m(inputs[i] as string[], { config: { value: 9 }, ...when });
      else if (fate === "no-config") desired[name] = m(inputs[i] as string[], when);
      else desired[name] = m(newInputs[i] as string[], { config: { ...config }, ...when });
    });
    return { installed, desired, requirements };
  });

/** The rule, written out independently: may `next` keep `old` running? */
function unchanged(old: PlanEntry, next: PlanEntry, original: Manifold): boolean {
  const sameInputs = old.inputs.length === next.inputs.length && old.inputs.every((input) => next.inputs.includes(input));
  if (!sameInputs) return false;
  if (old.manifold === original) return true;
  const a = old.manifold as unknown as Record<string, unknown>;
  const b = original as unknown as Record<string, unknown>;
  return a.config !== undefined && b.config !== undefined && JSON.stringify(a.config) === JSON.stringify(b.config) && a.when === b.when;
}

describe("property: applying the plan by hand gives the desired set", () => {
  it("holds for random current and desired graphs", () => {
    fc.assert(
      fc.property(scenario, ({ installed, desired, requirements }) => {
        const selection = selectByConditions(desired, requirements);
        const wanted = entries(selection.manifolds);
        useDependents = false;
        const current = installedOf(installed);
        const p = computePlan(current, { entries: wanted, skipped: selection.skipped }, 3);
        // Walking from the changes finds the same plan.
        expect(computePlan(withDependents(new Map(current)), { entries: wanted, skipped: selection.skipped }, 3)).toEqual(p);
        const wantedNames = wanted.map((entry) => entry.name).sort();

        // Carry it out: remove uninstall and replace, add install and replace, keep the rest.
        const after = new Map(current);
        for (const name of [...p.uninstall, ...p.replace]) after.delete(name);
        const byName = new Map(wanted.map((entry) => [entry.name, entry]));
        for (const name of [...p.install, ...p.replace]) after.set(name, byName.get(name) as PlanEntry);
        expect([...after.keys()].sort()).toEqual(wantedNames);

        // The lists partition both sets.
        expect([...p.install, ...p.replace, ...p.keep].sort()).toEqual(wantedNames);
        expect([...p.uninstall, ...p.replace, ...p.keep].sort()).toEqual([...current.keys()].sort());
        expect(p.skip).toEqual(selection.skipped.map((s) => s.name));

        // Keep and replace follow the rule.
        for (const name of p.keep) expect(unchanged(current.get(name) as PlanEntry, byName.get(name) as PlanEntry, desired[name] as Manifold), name).toBe(true);
        for (const name of p.replace) expect(unchanged(current.get(name) as PlanEntry, byName.get(name) as PlanEntry, desired[name] as Manifold), name).toBe(false);

        // Restarts: exactly the kept manifolds an input change reaches (a fixpoint, computed naively).
        const changed = new Set([...p.install, ...p.replace, ...p.uninstall]);
        const restarting = new Set<string>();
        for (let grew = true; grew; ) {
          grew = false;
          for (const name of p.keep) {
            if (restarting.has(name)) continue;
            if ((byName.get(name) as PlanEntry).inputs.some((input) => changed.has(input) || restarting.has(input))) {
              restarting.add(name);
              grew = true;
            }
          }
        }
        expect(p.restart).toEqual([...restarting].sort());
        expect(Object.keys(p.reasons).sort()).toEqual([...p.replace, ...p.restart].sort());

        // Once carried out, planning again changes nothing.
        const again = computePlan(after, { entries: wanted }, 4);
        expect(lists(again)).toEqual({ install: [], uninstall: [], replace: [], keep: wantedNames, skip: [], restart: [] });
        expect(computePlan(withDependents(new Map(after)), { entries: wanted }, 4)).toEqual(again);
      }),
      { numRuns: 1000 },
    );
  });
});

describe("property: cycles", () => {
  /** Installed: acyclic (inputs from earlier names). Desired: any inputs, so cycles happen, often through kept manifolds. */
  const cyclic = fc
    .record({
      installedInputs: fc.tuple(...POOL.map((_, i) => inputsFor(i))),
      present: fc.array(fc.boolean(), { minLength: POOL.length, maxLength: POOL.length }),
      desiredInputs: fc.array(fc.option(fc.subarray(POOL, { maxLength: 2 }), { nil: undefined, freq: 3 }), { minLength: POOL.length, maxLength: POOL.length }),
      wanted: fc.array(fc.boolean(), { minLength: POOL.length, maxLength: POOL.length }),
    })
    .map(({ installedInputs, present, desiredInputs, wanted }) => {
      const installed: Manifolds = {};
      const desired: Manifolds = {};
      POOL.forEach((name, i) => {
        if (present[i]) installed[name] = m(installedInputs[i] as string[]);
        if (!wanted[i]) return;
        const inputs = (desiredInputs[i] ?? installedInputs[i]) as string[];
        // Unchanged inputs keep the installed object (kept); new ones replace it.
        desired[name] = desiredInputs[i] === undefined && installed[name] !== undefined ? (installed[name] as Manifold) : m(inputs.filter((input) => input !== name));
      });
      return { installed, desired };
    });

  /** Whether the desired graph has a cycle, by repeatedly removing manifolds with no desired inputs left. */
  function hasCycle(desired: Manifolds): boolean {
    const left = new Map(Object.entries(desired).map(([name, manifold]) => [name, manifold.inputs.map((input) => nameOf(input) as string)]));
    for (let removed = true; removed; ) {
      removed = false;
      for (const [name, inputs] of left) {
        if (inputs.every((input) => !left.has(input))) {
          left.delete(name);
          removed = true;
        }
      }
    }
    return left.size > 0;
  }

  it("both walks throw a CycleError exactly when the desired graph has a cycle, and name a real one", () => {
    fc.assert(
      fc.property(cyclic, ({ installed, desired }) => {
        useDependents = false;
        const wanted = entries(desired);
        const outcomes = [installedOf(installed), withDependents(installedOf(installed))].map((set) => {
          try {
            return computePlan(set, { entries: wanted }, 0);
          } catch (error) {
            return error;
          }
        });
        const cycle = hasCycle(desired);
        for (const outcome of outcomes) {
          if (!cycle) {
            expect(outcome).not.toBeInstanceOf(Error);
            continue;
          }
          expect(outcome).toBeInstanceOf(CycleError);
          const names = (outcome as CycleError).cycle;
          expect(names[0]).toBe(names[names.length - 1]);
          for (let k = 0; k + 1 < names.length; k++) {
            expect(desired[names[k] as string]?.inputs, `${names[k]} -> ${names[k + 1]}`).toContain(names[k + 1]);
          }
          // Told from a manifold the plan installs or replaces (the kept ones had no cycle).
          expect(desired[names[0] as string]).not.toBe(installed[names[0] as string]);
        }
        if (!cycle) expect(outcomes[1]).toEqual(outcomes[0]);
      }),
      { numRuns: 1500 },
    );
  });
});
