/**
 * Desired state at the engine (issue 12): `apply`, `plan`, `onIdle`,
 * `ifGeneration`, the report's `blockedBy`, `skipped` and `generation`, and
 * every bad input the issue lists. The plan's arithmetic on its own is in
 * plan.test.ts, conditions in when.test.ts; here a real engine on a fake clock
 * carries the plans out, and each test checks who started, how often, in
 * which order, and who was stopped before whom.
 */
import { describe, expect, it } from "vitest";
import {
  BounceError,
  ConditionSyntaxError,
  CycleError,
  EngineStoppedError,
  MissingError,
  StalePlanError,
  valueWorker,
  type Engine,
  type Manifold,
  type Manifolds,
  type Plan,
  type StartContext,
  type Worker,
} from "../src/index.js";
import {
  deferred,
  entry,
  expectStillWorking,
  failOnUnhandledRejections,
  failureOf,
  hasEntry,
  makeEngine,
  outcome,
  recording,
  settle,
  stop,
  TestWorker,
  thrownBy,
  track,
} from "./fixtures.js";

failOnUnhandledRejections();

// ------------------------------------------------------------------ helpers about this file's subject

/** One entry of a desired-state document: what a daemon reads from its configuration file. */
interface Entry {
  readonly inputs?: readonly string[];
  /** Stands for the rest of the entry: a different version is a changed configuration. */
  readonly version?: number;
  readonly when?: string;
}
type Document = Record<string, Entry>;

/**
 * The document as manifolds, rebuilt from scratch on every call as a daemon
 * does on reload: new objects and new closures each time, the entry as
 * `config`. Each start is logged as `name(inputs running)` (see `recording`).
 */
function manifoldsFrom(document: Document, log: string[]): Manifolds {
  const manifolds: Manifolds = {};
  for (const [name, item] of Object.entries(document)) {
    const inputs = [...(item.inputs ?? [])];
    const manifold: Manifold = { ...recording(log, name, inputs), config: { version: item.version ?? 1, inputs } };
    manifolds[name] = item.when === undefined ? manifold : { ...manifold, when: item.when };
  }
  return manifolds;
}

/** The start calls of one manifold in `log` (entries `name(...)`). */
function startsOf(log: readonly string[], name: string): number {
  return log.filter((line) => line.startsWith(`${name}(`)).length;
}

/** The names and start counts of everything installed: what "nothing changed" compares. */
function snapshot(engine: Engine): Record<string, number> {
  const result: Record<string, number> = {};
  for (const [name, report] of Object.entries(engine.report().manifolds)) result[name] = report.startCount;
  return result;
}

/** A plan as plain lists, for toEqual. */
function lists(plan: Plan): Record<string, readonly string[]> {
  const { install, uninstall, replace, keep, skip, restart } = plan;
  return { install, uninstall, replace, keep, skip, restart };
}

/**
 * Workers that stop only when the test says (or at once, if asked), each
 * recording its kill in `kills`: to see who was stopped before whom, and
 * that nothing was killed early.
 */
class Workers {
  readonly kills: string[] = [];
  readonly byName = new Map<string, TestWorker[]>();

  constructor(readonly stopOnKill: boolean) {}

  /** A manifold whose every start makes a new such worker, offered as output. */
  manifold(name: string, inputs: string[] = [], config: unknown = 1): Manifold<TestWorker, string> {
    return {
      inputs,
      config,
      start: () => {
        const kills = this.kills;
        const worker = new (class extends TestWorker {
          override kill(): void {
            if (!this.killed) kills.push(name);
            super.kill();
          }
        })(name, { stopOnKill: this.stopOnKill });
        const list = this.byName.get(name) ?? [];
        list.push(worker);
        this.byName.set(name, list);
        return worker;
      },
      output: () => name,
    };
  }

  /** The latest worker of `name`. */
  latest(name: string): TestWorker {
    const list = this.byName.get(name);
    const worker = list?.[list.length - 1];
    if (worker === undefined) throw new Error(`no worker of ${JSON.stringify(name)} was started`);
    return worker;
  }

  starts(name: string): number {
    return this.byName.get(name)?.length ?? 0;
  }

  /** Stops the engine, letting every worker stop when it is killed (the end of a test). */
  async stop(engine: Engine): Promise<void> {
    engine.kill();
    for (const list of this.byName.values()) for (const worker of list) worker.complete();
    await engine.wait();
  }
}

// ------------------------------------------------------------------ the common case

describe("apply: installs, keeps, replaces, restarts", () => {
  // db <- api <- web; db <- jobs; cache and metrics stand alone.
  const base: Document = {
    web: { inputs: ["api"] },
    api: { inputs: ["db", "cache"] },
    jobs: { inputs: ["db"] },
    db: {},
    cache: {},
    metrics: {},
  };

  it("the first apply installs everything and starts each manifold once, in dependency order", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    // Dependents come first in the record: rule 9 still starts inputs first.
    const plan = await engine.apply(manifoldsFrom(base, log));
    expect(lists(plan)).toEqual({
      install: ["api", "cache", "db", "jobs", "metrics", "web"],
      uninstall: [],
      replace: [],
      keep: [],
      skip: [],
      restart: [],
    });
    expect(plan.generation).toBe(0);
    await engine.onIdle();
    expect([...log].sort()).toEqual(["api(db,cache)", "cache()", "db()", "jobs(db)", "metrics()", "web(api)"]);
    expect(log.indexOf("db()")).toBeLessThan(log.indexOf("api(db,cache)"));
    expect(log.indexOf("cache()")).toBeLessThan(log.indexOf("api(db,cache)"));
    expect(log.indexOf("api(db,cache)")).toBeLessThan(log.indexOf("web(api)"));
    expect(log.indexOf("db()")).toBeLessThan(log.indexOf("jobs(db)"));
    expect(engine.report().generation).toBeGreaterThan(plan.generation);
    await stop(engine);
  });

  it("a reload with new closures but an equal config restarts nothing", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    await engine.apply(manifoldsFrom(base, log));
    await engine.onIdle();
    const before = snapshot(engine);

    const reload = manifoldsFrom(base, log); // every object and closure is new
    const predicted = engine.plan(reload);
    expect(lists(predicted)).toEqual({
      install: [],
      uninstall: [],
      replace: [],
      keep: ["api", "cache", "db", "jobs", "metrics", "web"],
      skip: [],
      restart: [],
    });
    const applied = await engine.apply(reload);
    expect(applied).toEqual(predicted);
    await engine.onIdle();
    expect(snapshot(engine)).toEqual(before);
    expect(Object.values(snapshot(engine))).toEqual([1, 1, 1, 1, 1, 1]);
    expect(log).toHaveLength(6);
    await stop(engine);
  });

  it("a changed config replaces it and restarts its kept dependents transitively, each once and after its inputs; the rest never restart", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    await engine.apply(manifoldsFrom(base, log));
    await engine.onIdle();
    log.length = 0;

    const changed = manifoldsFrom({ ...base, db: { version: 2 } }, log);
    const predicted = engine.plan(changed);
    expect(lists(predicted)).toEqual({
      install: [],
      uninstall: [],
      replace: ["db"],
      keep: ["api", "cache", "jobs", "metrics", "web"],
      skip: [],
      restart: ["api", "jobs", "web"],
    });
    expect({ ...predicted.reasons }).toEqual({
      db: "config changed",
      api: 'input "db" replaced',
      jobs: 'input "db" replaced',
      web: 'input "api" restarted',
    });

    const applied = await engine.apply(changed);
    expect(applied).toEqual(predicted);
    await engine.onIdle();
    // Each affected manifold started exactly once, with its inputs running.
    expect([...log].sort()).toEqual(["api(db,cache)", "db()", "jobs(db)", "web(api)"]);
    expect(log.indexOf("db()")).toBeLessThan(log.indexOf("api(db,cache)"));
    expect(log.indexOf("api(db,cache)")).toBeLessThan(log.indexOf("web(api)"));
    expect(snapshot(engine)).toEqual({ web: 2, api: 2, jobs: 2, db: 1, cache: 1, metrics: 1 });
    // db is a new manifold (startCount 1 again); cache and metrics were never touched.
    expect(startsOf(log, "cache") + startsOf(log, "metrics")).toBe(0);
    await stop(engine);
  });

  it("installs the new and uninstalls the absent, restarting exactly the kept manifolds whose inputs change", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    await engine.apply(manifoldsFrom(base, log));
    await engine.onIdle();
    log.length = 0;

    // cache goes away; a new queue arrives and jobs uses it; web gains an input (replaced).
    const { cache: _cache, ...rest } = base;
    const next: Document = {
      ...rest,
      api: { inputs: ["db"] },
      queue: { inputs: ["db"] },
      jobs: { inputs: ["db", "queue"] },
      web: { inputs: ["api", "metrics"] },
    };
    const predicted = engine.plan(manifoldsFrom(next, []));
    expect(lists(predicted)).toEqual({
      install: ["queue"],
      uninstall: ["cache"],
      replace: ["api", "jobs", "web"],
      keep: ["db", "metrics"],
      skip: [],
      restart: [],
    });
    expect(predicted.reasons["api"]).toMatch(/^inputs changed: -cache; config changed$/);
    expect(predicted.reasons["jobs"]).toMatch(/^inputs changed: \+queue; config changed$/);

    const applied = await engine.apply(manifoldsFrom(next, log));
    expect(applied).toEqual(predicted);
    await engine.onIdle();
    expect([...log].sort()).toEqual(["api(db)", "jobs(db,queue)", "queue(db)", "web(api,metrics)"]);
    expect(log.indexOf("queue(db)")).toBeLessThan(log.indexOf("jobs(db,queue)"));
    expect(log.indexOf("api(db)")).toBeLessThan(log.indexOf("web(api,metrics)"));
    expect(hasEntry(engine, "cache")).toBe(false);
    expect(snapshot(engine)).toEqual({ web: 1, api: 1, jobs: 1, db: 1, metrics: 1, queue: 1 });
    await stop(engine);
  });

  it("a kept manifold whose input is uninstalled, or newly installed, restarts once and says why", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    // "reader" keeps the same config throughout, but its input "source" comes and goes.
    const doc: Document = { reader: { inputs: ["source"] }, source: {} };
    await engine.apply(manifoldsFrom(doc, log));
    await engine.onIdle();
    log.length = 0;

    const without = manifoldsFrom({ reader: { inputs: ["source"] } }, log);
    const removal = engine.plan(without);
    expect(lists(removal)).toMatchObject({ uninstall: ["source"], keep: ["reader"], restart: ["reader"] });
    expect(removal.reasons["reader"]).toBe('input "source" uninstalled');
    await engine.apply(without);
    await engine.onIdle();
    expect(log).toEqual(["reader()"]);

    log.length = 0;
    const back = manifoldsFrom(doc, log);
    const addition = engine.plan(back);
    expect(lists(addition)).toMatchObject({ install: ["source"], keep: ["reader"], restart: ["reader"] });
    expect(addition.reasons["reader"]).toBe('input "source" installed');
    await engine.apply(back);
    await engine.onIdle();
    expect(log).toEqual(["source()", "reader(source)"]);
    expect(entry(engine, "reader").startCount).toBe(3);
    await stop(engine);
  });

  it("keeps the installed manifold object itself without comparing anything, and replaces a new object without config", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    const a = recording(log, "a");
    const b = recording(log, "b", ["a"]);
    await engine.apply({ a, b });
    await engine.onIdle();
    log.length = 0;

    const plan = await engine.apply({ a, b: recording(log, "b", ["a"]) });
    expect(lists(plan)).toMatchObject({ keep: ["a"], replace: ["b"], restart: [] });
    expect(plan.reasons["b"]).toMatch(/without config/);
    await engine.onIdle();
    expect(log).toEqual(["b(a)"]);
    expect(entry(engine, "a").startCount).toBe(1);
    await stop(engine);
  });

  it("a per-manifold option (stopTimeout) counts as a change, functions do not", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    const make = (stopTimeout: number): Manifolds => ({
      a: { ...recording(log, "a"), config: { x: 1 }, stopTimeout, filter: (error: unknown) => error },
    });
    await engine.apply(make(100));
    await engine.onIdle();
    expect(lists(await engine.apply(make(100)))).toMatchObject({ keep: ["a"], replace: [] });
    const changed = await engine.apply(make(200));
    expect(changed.replace).toEqual(["a"]);
    expect(changed.reasons["a"]).toBe("stopTimeout changed: 100 -> 200");
    await engine.onIdle();
    expect(log).toEqual(["a()", "a()"]);
    await stop(engine);
  });

  it("apply resolves with the plan it carried out, and an empty desired set uninstalls everything", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    await engine.apply(manifoldsFrom(base, log));
    await engine.onIdle();
    const plan = await engine.apply({});
    expect(lists(plan)).toEqual({
      install: [],
      uninstall: ["api", "cache", "db", "jobs", "metrics", "web"],
      replace: [],
      keep: [],
      skip: [],
      restart: [],
    });
    expect(engine.report().manifolds).toEqual({});
    await engine.onIdle();
    expect(log).toHaveLength(6);
    await stop(engine);
  });
});

// ------------------------------------------------------------------ order of stops, rule 8

describe("apply: order and churn", () => {
  it("removals stop dependents before their inputs, each input only once all its removed dependents have stopped", async () => {
    const { engine } = makeEngine();
    const workers = new Workers(false);
    // a <- b <- c, a <- d; keep only "other".
    await engine.apply({
      a: workers.manifold("a"),
      b: workers.manifold("b", ["a"]),
      c: workers.manifold("c", ["b"]),
      d: workers.manifold("d", ["a"]),
      other: workers.manifold("other"),
    });
    await engine.onIdle();
    expect(engine.plan({ other: workers.manifold("other") }).uninstall).toEqual(["a", "b", "c", "d"]);

    const applied = track(engine.apply({ other: workers.manifold("other") }));
    await settle();
    // Only the leaves of the removed set are killed first.
    expect([...workers.kills].sort()).toEqual(["c", "d"]);
    expect(applied.settled).toBe(false);

    workers.latest("c").complete();
    await settle();
    expect([...workers.kills].sort()).toEqual(["b", "c", "d"]);
    workers.latest("b").complete();
    await settle();
    // a still has d, a live dependent.
    expect(workers.kills).not.toContain("a");
    workers.latest("d").complete();
    await settle();
    expect(workers.kills[workers.kills.length - 1]).toBe("a");
    expect(applied.settled).toBe(false); // a has not stopped yet
    workers.latest("a").complete();
    await settle();
    expect(applied).toMatchObject({ settled: true, ok: true });
    expect(Object.keys(engine.report().manifolds)).toEqual(["other"]);
    expect(workers.starts("other")).toBe(1);
    await workers.stop(engine);
  });

  it("a replaced input is stopped only after its restarted dependents have stopped", async () => {
    const { engine } = makeEngine();
    const workers = new Workers(false);
    const desired = (version: number): Manifolds => ({
      db: workers.manifold("db", [], { version }),
      api: workers.manifold("api", ["db"]),
      web: workers.manifold("web", ["api"]),
    });
    await engine.apply(desired(1));
    await engine.onIdle();

    const applied = track(engine.apply(desired(2)));
    await settle();
    expect(workers.kills).toEqual(["web"]);
    workers.latest("web").complete();
    await settle();
    expect(workers.kills).toEqual(["web", "api"]);
    workers.latest("api").complete();
    await settle();
    expect(workers.kills).toEqual(["web", "api", "db"]);
    // Nothing restarted while an old worker was still running.
    expect([workers.starts("db"), workers.starts("api"), workers.starts("web")]).toEqual([1, 1, 1]);
    workers.latest("db").complete();
    await settle();
    expect(applied).toMatchObject({ settled: true, ok: true });
    await engine.onIdle();
    expect([workers.starts("db"), workers.starts("api"), workers.starts("web")]).toEqual([2, 2, 2]);
    await workers.stop(engine);
  });

  it("a replaced manifold's new start waits for its old worker: never two workers for one name", async () => {
    const { engine } = makeEngine();
    const workers = new Workers(false);
    await engine.apply({ svc: workers.manifold("svc", [], { port: 1 }) });
    await engine.onIdle();
    const old = workers.latest("svc");

    const applied = track(engine.apply({ svc: workers.manifold("svc", [], { port: 2 }) }));
    const idle = track(engine.onIdle());
    await settle();
    expect(old.killed).toBe(true);
    expect(workers.starts("svc")).toBe(1); // no second worker while the first runs
    expect(entry(engine, "svc").state).not.toBe("started");
    expect(applied.settled).toBe(false);
    expect(idle.settled).toBe(false);

    old.complete();
    await settle();
    expect(workers.starts("svc")).toBe(2);
    expect(applied).toMatchObject({ settled: true, ok: true });
    expect(idle.settled).toBe(true);
    expect(entry(engine, "svc")).toMatchObject({ state: "started", startCount: 1 });
    await workers.stop(engine);
  });

  it("a new manifold that uses a kept manifold the apply restarts starts once, after that restart", async () => {
    const { engine } = makeEngine();
    const workers = new Workers(false);
    // mid stays (same config) but restarts, because its input src goes; it can stop only once leaf has.
    await engine.apply({ src: workers.manifold("src"), mid: workers.manifold("mid", ["src"]), leaf: workers.manifold("leaf", ["mid"]) });
    await engine.onIdle();

    const desired = { mid: workers.manifold("mid", ["src"]), fresh: workers.manifold("fresh", ["mid"]) };
    const plan = engine.plan(desired);
    expect(lists(plan)).toMatchObject({ install: ["fresh"], uninstall: ["leaf", "src"], keep: ["mid"], restart: ["mid"] });
    const applied = track(engine.apply(desired));
    await settle();
    expect(workers.kills).toEqual(["leaf"]);
    // mid's old worker still runs, but it is about to restart: fresh must wait for it, not start against it.
    expect(workers.starts("fresh")).toBe(0);
    expect(entry(engine, "fresh").blockedBy).toEqual(["mid"]);

    workers.latest("leaf").complete();
    await settle();
    workers.latest("mid").complete();
    await settle();
    workers.latest("src").complete();
    await settle();
    await engine.onIdle();
    expect(applied).toMatchObject({ settled: true, ok: true });
    expect([workers.starts("mid"), workers.starts("fresh")]).toEqual([2, 1]);
    expect(entry(engine, "fresh")).toMatchObject({ state: "started", startCount: 1 });
    await workers.stop(engine);
  });

  it("a restarted manifold whose input also restarts starts once, after it, even when that input waits for another dependent to stop", async () => {
    const { engine } = makeEngine();
    const workers = new Workers(false);
    const desired = (version: number): Manifolds => ({
      root: workers.manifold("root", [], { version }),
      x: workers.manifold("x", ["root"]),
      d: workers.manifold("d", ["x"]),
      e: workers.manifold("e", ["x"]),
    });
    await engine.apply(desired(1));
    await engine.onIdle();

    const plan = engine.plan(desired(2));
    expect(lists(plan)).toMatchObject({ replace: ["root"], restart: ["d", "e", "x"] });
    const applied = track(engine.apply(desired(2)));
    await settle();
    expect([...workers.kills].sort()).toEqual(["d", "e"]);
    // d stops at once; x cannot stop before e has, and d must not start against x's old worker meanwhile.
    workers.latest("d").complete();
    await settle();
    expect(workers.starts("d")).toBe(1);
    expect(entry(engine, "d").blockedBy).toEqual(["x"]);

    workers.latest("e").complete();
    await settle();
    workers.latest("x").complete();
    await settle();
    workers.latest("root").complete();
    await settle();
    await engine.onIdle();
    expect(applied).toMatchObject({ settled: true, ok: true });
    expect(["root", "x", "d", "e"].map((name) => workers.starts(name))).toEqual([2, 2, 2, 2]);
    expect(["x", "d", "e"].map((name) => entry(engine, name).startCount)).toEqual([2, 2, 2]);
    await workers.stop(engine);
  });

  it("a start in flight of a removed or restarted manifold is aborted, and started again once", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    const gate = deferred();
    const signals: AbortSignal[] = [];
    const slow: Manifold = {
      inputs: ["db"],
      config: 1,
      start: async (context: StartContext) => {
        log.push("slow");
        signals.push(context.signal);
        if (signals.length === 1) await gate.promise;
        return valueWorker(0);
      },
    };
    await engine.apply({ db: { ...recording(log, "db"), config: 1 }, slow });
    await settle();
    expect(log).toEqual(["db()", "slow"]);

    const applied = track(engine.apply({ db: { ...recording(log, "db"), config: 2 }, slow }));
    await settle();
    expect(signals[0]?.aborted).toBe(true);
    expect(log).toEqual(["db()", "slow"]); // db waits for slow's aborted start to settle
    gate.resolve();
    await settle();
    await engine.onIdle();
    expect(applied).toMatchObject({ settled: true, ok: true });
    expect(log).toEqual(["db()", "slow", "db()", "slow"]);
    expect(entry(engine, "slow")).toMatchObject({ state: "started", startCount: 1 });
    await stop(engine);
  });
});

// ------------------------------------------------------------------ stale plans and serialisation

describe("apply: ifGeneration and serialised calls", () => {
  it("a stale plan rejects with StalePlanError naming both generations, and nothing changes", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    await engine.apply(manifoldsFrom({ a: {}, b: { inputs: ["a"] } }, log));
    await engine.onIdle();

    const desired = manifoldsFrom({ a: { version: 2 }, b: { inputs: ["a"] } }, log);
    const plan = engine.plan(desired);
    expect(plan.generation).toBe(engine.report().generation);
    engine.install("intruder", recording(log, "intruder"));
    await settle();
    const moved = engine.report().generation as number;
    expect(moved).toBeGreaterThan(plan.generation);
    const before = snapshot(engine);

    const error = await failureOf(() => engine.apply(desired, { ifGeneration: plan.generation }));
    expect(error).toBeInstanceOf(StalePlanError);
    expect(error.name).toBe("StalePlanError");
    expect(error).toMatchObject({ expected: plan.generation, actual: moved });
    expect(error.message).toContain(`generation ${plan.generation}`);
    expect(error.message).toContain(`generation ${moved}`);
    await settle();
    expect(snapshot(engine)).toEqual(before);
    expect(engine.report().generation).toBe(moved);
    expect(hasEntry(engine, "intruder")).toBe(true);

    // A fresh plan applies, exactly as shown.
    const fresh = engine.plan(desired);
    expect(fresh.uninstall).toEqual(["intruder"]);
    expect(await engine.apply(desired, { ifGeneration: fresh.generation })).toEqual(fresh);
    await engine.onIdle();
    expect(snapshot(engine)).toEqual({ a: 1, b: 2 });
    await stop(engine);
  });

  it("every install, uninstall and apply moves the generation on", async () => {
    const { engine } = makeEngine();
    const generation = (): number => engine.report().generation as number;
    const g0 = generation();
    engine.install("a", recording([], "a"));
    const g1 = generation();
    expect(g1).toBeGreaterThan(g0);
    await engine.uninstall("a");
    const g2 = generation();
    expect(g2).toBeGreaterThan(g1);
    await engine.apply({ b: recording([], "b") });
    expect(generation()).toBeGreaterThan(g2);
    await stop(engine);
  });

  it("ifGeneration must be a whole number", async () => {
    const { engine } = makeEngine();
    for (const bad of [1.5, "3", Number.NaN, null]) {
      const error = await failureOf(() => engine.apply({}, { ifGeneration: bad as number }));
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toMatch(/ifGeneration must be a whole number/);
    }
    const typo = await failureOf(() => engine.apply({}, { ifGenration: 1 } as never));
    expect(typo.message).toMatch(/unknown option "ifGenration".*ifGeneration/);
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("a second apply made while the first is stopping workers is planned against the state the first leaves", async () => {
    const { engine } = makeEngine();
    const workers = new Workers(false);
    await engine.apply({ keep: workers.manifold("keep"), slow: workers.manifold("slow") });
    await engine.onIdle();

    const first = track(engine.apply({ keep: workers.manifold("keep") }));
    await settle();
    expect(workers.kills).toEqual(["slow"]);
    // Made now, while slow is still stopping: against the first's result, slow is absent.
    const secondPlan = engine.apply({ keep: workers.manifold("keep"), slow: workers.manifold("slow"), extra: workers.manifold("extra") });
    await settle();
    expect(first.settled).toBe(false);
    // Rule 8 whatever the second does meanwhile: the new slow waits for the old one.
    expect(workers.starts("slow")).toBe(1);

    workers.latest("slow").complete();
    const plan = await secondPlan;
    await settle();
    expect(first).toMatchObject({ settled: true, ok: true });
    expect(lists(plan)).toEqual({ install: ["extra", "slow"], uninstall: [], replace: [], keep: ["keep"], skip: [], restart: [] });
    expect(plan.generation).toBeGreaterThan((first.value as Plan).generation);
    await engine.onIdle();
    expect([workers.starts("keep"), workers.starts("slow"), workers.starts("extra")]).toEqual([1, 2, 1]);
    await workers.stop(engine);
  });

  it("a failed apply does not block the next one", async () => {
    const { engine } = makeEngine();
    const bad = engine.apply({ a: { inputs: "nope" } as unknown as Manifold });
    const good = engine.apply({ b: recording([], "b") });
    await expect(bad).rejects.toThrow(TypeError);
    expect((await good).install).toEqual(["b"]);
    await stop(engine);
  });
});

// ------------------------------------------------------------------ stopping, re-entry

describe("apply: after kill, and from inside the engine", () => {
  it("after kill() apply rejects with EngineStoppedError while plan still answers", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    await engine.apply(manifoldsFrom({ a: {} }, log));
    await engine.onIdle();
    engine.kill();
    const desired = manifoldsFrom({ a: { version: 2 }, b: {} }, log);
    const stopping = await failureOf(() => engine.apply(desired));
    expect(stopping).toBeInstanceOf(EngineStoppedError);
    expect(stopping.message).toMatch(/cannot apply/);
    expect(lists(engine.plan(desired))).toMatchObject({ install: ["b"], replace: ["a"] });
    await engine.wait();
    expect(await failureOf(() => engine.apply(desired))).toBeInstanceOf(EngineStoppedError);
    expect(engine.plan(desired).install).toEqual(["b"]);
    expect(log).toEqual(["a()"]);
  });

  it("an apply made after kill() while an earlier apply is still stopping workers rejects, and changes nothing", async () => {
    const { engine } = makeEngine();
    const workers = new Workers(false);
    await engine.apply({ slow: workers.manifold("slow") });
    await engine.onIdle();
    const first = track(engine.apply({}));
    await settle();
    engine.kill();
    const late = track(engine.apply({ late: workers.manifold("late") }));
    workers.latest("slow").complete();
    await settle();
    expect(first).toMatchObject({ settled: true, ok: true });
    expect(late.settled).toBe(true);
    expect(late.error).toBeInstanceOf(EngineStoppedError);
    expect(workers.starts("late")).toBe(0);
    expect(engine.report().manifolds).toEqual({});
    await engine.wait();
  });

  it("a worker stuck past its stopTimeout does not hold later applies, or onIdle, forever", async () => {
    const { engine, clock } = makeEngine({ stopTimeout: 100 });
    const workers = new Workers(false);
    await engine.apply({ stuck: workers.manifold("stuck"), other: workers.manifold("other") });
    await engine.onIdle();
    const first = track(engine.apply({ other: workers.manifold("other") }));
    await settle();
    await clock.advance(100);
    expect(entry(engine, "other").state).toBe("started");
    expect(first.settled).toBe(false); // as uninstall: it resolves once the worker does stop

    // The installed set is what the first apply left; the next apply and onIdle need not wait for a stuck worker.
    const second = track(engine.apply({ other: workers.manifold("other"), extra: workers.manifold("extra") }));
    const idle = track(engine.onIdle());
    await settle();
    expect(second).toMatchObject({ settled: true, ok: true });
    expect(idle.settled).toBe(true);
    expect(workers.starts("extra")).toBe(1);
    await workers.stop(engine).catch(() => undefined);
  });

  it("after an apply that waits for a stuck worker, kill() still makes apply reject and onIdle resolve, instead of hanging", async () => {
    const { engine, clock } = makeEngine({ stopTimeout: 100 });
    const workers = new Workers(false);
    await engine.apply({ stuck: workers.manifold("stuck") });
    await engine.onIdle();
    const first = track(engine.apply({}));
    await settle();
    engine.kill();
    const stopped = track(engine.wait());
    await clock.advance(100);
    await settle();
    expect(stopped.settled).toBe(true); // wait() rejects with ShutdownTimeoutError: "stuck" never stopped
    expect(first.settled).toBe(false); // as uninstall: it resolves once the worker does stop

    const late = track(engine.apply({ late: workers.manifold("late") }));
    const idle = track(engine.onIdle());
    await settle();
    expect(late.settled).toBe(true);
    expect(late.error).toBeInstanceOf(EngineStoppedError);
    expect(idle.settled).toBe(true);
    expect(workers.starts("late")).toBe(0);
    workers.latest("stuck").complete();
    await settle();
    expect(first).toMatchObject({ settled: true, ok: true });
  });

  it("apply called from inside a start function does not deadlock", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    let inner: Plan | undefined;
    const extra = recording(log, "extra");
    const admin: Manifold = {
      inputs: [],
      start: async () => {
        // The start waits for an apply that keeps this very manifold.
        inner = await engine.apply({ admin, extra });
        return valueWorker("admin");
      },
    };
    await engine.apply({ admin });
    await engine.onIdle();
    expect(inner && lists(inner)).toMatchObject({ install: ["extra"], keep: ["admin"] });
    expect(entry(engine, "admin")).toMatchObject({ state: "started", startCount: 1 });
    expect(log).toEqual(["extra()"]);
    await stop(engine);
  });

  it("apply called from inside a filter does not deadlock", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000 });
    const log: string[] = [];
    let applied: Promise<Plan> | undefined;
    const failing: Manifold = {
      inputs: [],
      start: () => {
        const worker = new TestWorker("failing", { stopOnKill: true });
        queueMicrotask(() => worker.fail(new Error("boom")));
        return worker;
      },
      filter: (error) => {
        // A filter cannot await; the apply must still complete, replacing the failing manifold.
        applied ??= engine.apply({ fixed: recording(log, "fixed") });
        return error;
      },
    };
    await engine.apply({ failing });
    await settle();
    expect(applied).toBeDefined();
    const plan = await (applied as Promise<Plan>);
    expect(lists(plan)).toMatchObject({ install: ["fixed"], uninstall: ["failing"] });
    await engine.onIdle();
    expect(clock.pending).toEqual([]);
    expect(Object.keys(engine.report().manifolds)).toEqual(["fixed"]);
    expect(log).toEqual(["fixed()"]);
    await stop(engine);
  });
});

// ------------------------------------------------------------------ onIdle and blockedBy

describe("onIdle and blockedBy", () => {
  it("onIdle resolves only once nothing is scheduled, starting or stopping", async () => {
    const { engine, clock } = makeEngine({ bounceDelay: 50 });
    const gate = deferred<Worker>();
    const workers = new Workers(false);
    const slowStart: Manifold = { inputs: [], start: () => gate.promise };
    const dependent: Manifold = { inputs: ["slowStart"], start: () => valueWorker(1) };
    await engine.apply({ slowStart, dependent, stopper: workers.manifold("stopper") });
    // Starting: slowStart's start is in flight, dependent waits for it.
    const whileStarting = track(engine.onIdle());
    await settle();
    expect(whileStarting.settled).toBe(false);
    gate.resolve(valueWorker(0));
    await settle();
    expect(whileStarting.settled).toBe(true);
    expect(entry(engine, "dependent")).toMatchObject({ state: "started", startCount: 1 });

    // Scheduled: a bounce waits out bounceDelay on the clock.
    workers.latest("stopper").fail(new BounceError("again"));
    await settle();
    expect(entry(engine, "stopper").state).toBe("starting");
    const whileScheduled = track(engine.onIdle());
    await settle();
    expect(whileScheduled.settled).toBe(false);
    await clock.advance(49);
    expect(whileScheduled.settled).toBe(false);
    await clock.advance(1);
    expect(whileScheduled.settled).toBe(true);
    expect(workers.starts("stopper")).toBe(2);

    // Stopping: an apply removes a worker that stops only when told.
    const applied = track(engine.apply({ slowStart, dependent }));
    await settle();
    expect(workers.latest("stopper").killed).toBe(true);
    const whileStopping = track(engine.onIdle());
    await settle();
    expect(applied.settled).toBe(false);
    expect(whileStopping.settled).toBe(false);
    workers.latest("stopper").complete();
    await settle();
    expect(applied).toMatchObject({ settled: true, ok: true });
    expect(whileStopping.settled).toBe(true);
    expect(clock.pending).toEqual([]);
    await workers.stop(engine);
  });

  it("onIdle waits for an apply in progress, and resolves at once when idle", async () => {
    const { engine } = makeEngine();
    expect(await outcome(engine.onIdle())).toMatchObject({ settled: true, ok: true });
    const gate = deferred<Worker>();
    const applied = track(engine.apply({ a: { inputs: [], start: () => gate.promise } }));
    const idle = track(engine.onIdle());
    await settle();
    expect(applied.settled).toBe(true);
    expect(idle.settled).toBe(false); // a's start is in flight
    gate.resolve(valueWorker(1));
    await settle();
    expect(idle.settled).toBe(true);
    await stop(engine);
  });

  it("onIdle does not wait out an error delay: a failing manifold may never converge", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000 });
    await engine.apply({ broken: { inputs: [], start: () => Promise.reject(new Error("no")) } });
    await engine.onIdle();
    expect(entry(engine, "broken")).toMatchObject({ state: "starting", error: expect.stringMatching(/no/) });
    expect(clock.pending.map((timer) => timer.delay)).toEqual([1000]);
    await stop(engine);
  });

  it("blockedBy lists the inputs whose start is in flight while a start waits for them", async () => {
    const { engine } = makeEngine();
    const gates = { a: deferred<Worker>(), b: deferred<Worker>() };
    await engine.apply({
      a: { inputs: [], start: () => gates.a.promise },
      b: { inputs: [], start: () => gates.b.promise },
      c: { inputs: ["a", "b", "absent"], start: () => valueWorker(0) },
    });
    await settle();
    expect(entry(engine, "c").blockedBy).toEqual(["a", "b"]);
    expect(entry(engine, "a").blockedBy).toBeUndefined();
    gates.a.resolve(valueWorker(1));
    await settle();
    expect(entry(engine, "c").blockedBy).toEqual(["b"]);
    gates.b.resolve(valueWorker(2));
    await settle();
    expect(entry(engine, "c")).toMatchObject({ state: "started", startCount: 1 });
    expect(entry(engine, "c").blockedBy).toBeUndefined();
    await stop(engine);
  });
});

// ------------------------------------------------------------------ conditions through the engine

describe("conditions through apply, plan and installAll", () => {
  const withCoffee: Document = {
    wake: {},
    coffee: { inputs: ["wake"], when: "coffee & !decaf" },
    work: { inputs: ["wake", "coffee"] },
  };

  it("leaves out manifolds whose when is false, drops them from the others' inputs, and lists them in skip and report.skipped", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    const errors: unknown[] = [];
    const desired = manifoldsFrom(withCoffee, log);
    desired["work"] = {
      ...(desired["work"] as Manifold),
      start: (context: StartContext) => {
        try {
          context.getResource("coffee");
        } catch (error) {
          errors.push(error);
        }
        return valueWorker("work");
      },
    };
    const plan = await engine.apply(desired, { requirements: ["decaf", "coffee"] });
    expect(lists(plan)).toMatchObject({ install: ["wake", "work"], skip: ["coffee"] });
    await engine.onIdle();
    expect(engine.report().skipped).toEqual([{ name: "coffee", when: "coffee & !decaf" }]);
    expect(entry(engine, "work").inputs).toEqual(["wake"]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(MissingError);
    expect(String((errors[0] as Error).message)).toMatch(/not in its inputs/);

    // The requirement changes: coffee comes in, and work (whose inputs change) is replaced.
    const next = await engine.apply(manifoldsFrom(withCoffee, log), { requirements: new Set(["coffee"]) });
    expect(lists(next)).toMatchObject({ install: ["coffee"], replace: ["work"], keep: ["wake"], skip: [], restart: [] });
    expect(next.reasons["work"]).toMatch(/inputs changed: \+coffee/);
    await engine.onIdle();
    expect(engine.report().skipped).toEqual([]);
    expect(entry(engine, "work").inputs).toEqual(["wake", "coffee"]);
    await stop(engine);
  });

  it("installAll takes requirements too and sets report.skipped; install refuses a manifold with when", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    engine.installAll(manifoldsFrom(withCoffee, log), { requirements: [] });
    await settle();
    expect(engine.report().skipped).toEqual([{ name: "coffee", when: "coffee & !decaf" }]);
    expect([...log].sort()).toEqual(["wake()", "work(wake)"]);
    const error = thrownBy(() => engine.install("x", { inputs: [], when: "coffee", start: () => valueWorker(0) }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/manifold "x" has a when condition.*installAll\(manifolds, \{ requirements \}\)/);
    expect(hasEntry(engine, "x")).toBe(false);
    await stop(engine);
  });

  it("a manifold left out by its when that was installed is uninstalled", async () => {
    const { engine } = makeEngine();
    const log: string[] = [];
    await engine.apply(manifoldsFrom(withCoffee, log), { requirements: ["coffee"] });
    await engine.onIdle();
    const plan = engine.plan(manifoldsFrom(withCoffee, log), { requirements: ["coffee", "decaf"] });
    expect(lists(plan)).toMatchObject({ uninstall: ["coffee"], skip: ["coffee"], replace: ["work"], keep: ["wake"] });
    await engine.apply(manifoldsFrom(withCoffee, log), { requirements: ["coffee", "decaf"] });
    await engine.onIdle();
    expect(Object.keys(engine.report().manifolds).sort()).toEqual(["wake", "work"]);
    await stop(engine);
  });
});

// ------------------------------------------------------------------ bad input

describe("bad input: a specific error, nothing installed or removed, the engine still working", () => {
  /** An engine with a small graph running, and a check that a failing call left it exactly so. */
  async function running(): Promise<{ engine: Engine; log: string[]; unchanged: () => Promise<void> }> {
    const { engine } = makeEngine();
    const log: string[] = [];
    await engine.apply(manifoldsFrom({ a: {}, b: { inputs: ["a"] }, c: {} }, log));
    await engine.onIdle();
    const before = snapshot(engine);
    const generation = engine.report().generation;
    const count = log.length;
    return {
      engine,
      log,
      unchanged: async () => {
        await settle();
        expect(snapshot(engine), "installed set and start counts").toEqual(before);
        expect(engine.report().generation, "generation").toBe(generation);
        expect(log.length, "start calls").toBe(count);
        expect(engine.report().skipped).toBeUndefined();
        await expectStillWorking(engine);
      },
    };
  }

  /** Runs one bad call through apply (rejects), plan and installAll (throw), returning the three errors. */
  async function everyCall(engine: Engine, desired: Manifolds, options?: { requirements?: unknown }): Promise<Error[]> {
    const applied = await failureOf(() => engine.apply(desired, options as never));
    const planned = thrownBy(() => engine.plan(desired, options as never));
    const installed = thrownBy(() => engine.installAll(desired, options as never));
    return [applied, planned, installed];
  }

  const malformed: [string, string, number, RegExp][] = [
    ["empty", "", 0, /expected a name or "\(" at position 0.*empty condition/],
    ["only spaces", "   ", 3, /expected a name or "\(" at position 3/],
    ["an unclosed parenthesis", "(a & b", 6, /expected "\)" at position 6.*"\(" at position 0 is not closed/],
    ["an unopened parenthesis", "a & b)", 5, /unexpected "\)" at position 5: no "\(" is open/],
    ["a dangling operator at the end", "a &", 3, /expected a name or "\(" at position 3, found the end/],
    ["a dangling operator at the start", "| a", 0, /expected a name or "\(" at position 0, found "\|"/],
    ["two operators in a row", "a & | b", 4, /expected a name or "\(" at position 4, found "\|"/],
    ["a dangling not", "a & !", 5, /expected a name or "\(" at position 5/],
    ["a character outside the grammar", "a $ b", 2, /unexpected character "\$" at position 2/],
    ["two names in a row", "a b", 2, /expected "&" or "\|" at position 2, found "b"/],
  ];
  for (const [what, when, position, message] of malformed) {
    it(`a when with ${what} (${JSON.stringify(when)}): ConditionSyntaxError naming the manifold, the expression and the position`, async () => {
      const { engine, log, unchanged } = await running();
      // The bad manifold sits among changes that would otherwise install, replace and uninstall.
      const desired = manifoldsFrom({ a: { version: 2 }, b: { inputs: ["a"] }, fresh: {} }, log);
      desired["faulty"] = { ...recording(log, "faulty"), when };
      for (const error of await everyCall(engine, desired, { requirements: ["a"] })) {
        expect(error).toBeInstanceOf(ConditionSyntaxError);
        expect(error.name).toBe("ConditionSyntaxError");
        expect(error).toMatchObject({ manifoldName: "faulty", expression: when, position });
        expect(error.message).toMatch(/^manifold "faulty": condition /);
        expect(error.message).toContain(JSON.stringify(when));
        expect(error.message).toMatch(message);
      }
      await unchanged();
      await stop(engine);
    });
  }

  it("a when that is not a string: TypeError naming the manifold", async () => {
    const { engine, log, unchanged } = await running();
    for (const when of [42, null, ["a"], { a: true }]) {
      const desired = { ...manifoldsFrom({ fresh: {} }, log), odd: { ...recording(log, "odd"), when } as unknown as Manifold };
      for (const error of await everyCall(engine, desired)) {
        expect(error).toBeInstanceOf(TypeError);
        expect(error.message).toMatch(/^manifold "odd": when must be a string condition/);
      }
    }
    await unchanged();
    await stop(engine);
  });

  it("requirements that are not iterable: TypeError saying what to pass", async () => {
    const { engine, log, unchanged } = await running();
    const desired = manifoldsFrom({ a: {}, b: { inputs: ["a"] }, c: {}, fresh: {} }, log);
    for (const requirements of [42, { coffee: true }, null, true]) {
      for (const error of await everyCall(engine, desired, { requirements })) {
        expect(error).toBeInstanceOf(TypeError);
        expect(error.message).toMatch(/requirements must be an iterable of names/);
      }
    }
    const bare = await everyCall(engine, desired, { requirements: "coffee" });
    for (const error of bare) expect(error.message).toMatch(/not a string.*each character/);
    await unchanged();
    await stop(engine);
  });

  it("requirements holding non-strings: TypeError naming the item", async () => {
    const { engine, log, unchanged } = await running();
    const desired = manifoldsFrom({ a: {}, b: { inputs: ["a"] }, fresh: {} }, log);
    for (const error of await everyCall(engine, desired, { requirements: ["coffee", 7] })) {
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toMatch(/requirements must hold only strings, but item 1 is number 7/);
    }
    const map = new Map([["coffee", true]]);
    for (const error of await everyCall(engine, desired, { requirements: map })) {
      expect(error.message).toMatch(/item 0 .*pass map\.keys\(\)/);
    }
    await unchanged();
    await stop(engine);
  });

  it("desired that is not a plain object: TypeError saying what to pass", async () => {
    const { engine, unchanged } = await running();
    const cases: [unknown, RegExp][] = [
      [null, /manifolds must be a plain object of name -> manifold/],
      [42, /manifolds must be a plain object/],
      ["a", /manifolds must be a plain object/],
      [[{ inputs: [], start: () => valueWorker(0) }], /key each manifold by its name/],
      [new Map([["a", { inputs: [], start: () => valueWorker(0) }]]), /pass Object\.fromEntries\(map\)/],
    ];
    for (const [desired, message] of cases) {
      const applied = await failureOf(() => engine.apply(desired as Manifolds));
      const planned = thrownBy(() => engine.plan(desired as Manifolds));
      for (const error of [applied, planned]) {
        expect(error).toBeInstanceOf(TypeError);
        expect(error.message).toMatch(message);
      }
    }
    await unchanged();
    await stop(engine);
  });

  it("a bad manifold among good ones: the error install gives, naming it; the others are neither installed nor removed", async () => {
    const { engine, log, unchanged } = await running();
    const good = manifoldsFrom({ a: { version: 2 }, fresh: {} }, log); // would replace a, install fresh, remove b and c
    const cases: [Manifolds, RegExp][] = [
      [{ ...good, bad: { inputs: "a" } as unknown as Manifold }, /^manifold "bad": inputs must be an array .*; use inputs: \[\] for none/],
      [{ ...good, bad: { inputs: [] } as unknown as Manifold }, /^manifold "bad": start must be a function/],
      [{ ...good, bad: { inputs: [], start: () => valueWorker(0), stratTimeout: 5 } as unknown as Manifold }, /^manifold "bad": unknown field "stratTimeout"; did you mean "stopTimeout"/],
      [{ ...good, bad: 42 as unknown as Manifold }, /^manifold "bad" must be an object with inputs and start \(got number 42\)/],
      [{ ...good, "": recording(log, "") }, /a manifold name must be a non-empty string .*\(got ""\)/],
      [{ ...good, bad: { inputs: [""], start: () => valueWorker(0) } }, /^manifold "bad": inputs\[0\] must be a non-empty string/],
    ];
    for (const [desired, message] of cases) {
      for (const error of await everyCall(engine, desired)) {
        expect(error).toBeInstanceOf(TypeError);
        expect(error.message).toMatch(message);
      }
    }
    await unchanged();
    await stop(engine);
  });

  it("a self-input: CycleError naming the manifold", async () => {
    const { engine, log, unchanged } = await running();
    const desired = { ...manifoldsFrom({ a: {}, b: { inputs: ["a"] }, c: {} }, log), loop: { ...recording(log, "loop"), inputs: ["loop"] } };
    for (const error of await everyCall(engine, desired)) {
      expect(error).toBeInstanceOf(CycleError);
      expect((error as CycleError).cycle).toEqual(["loop", "loop"]);
      expect(error.message).toMatch(/manifold "loop"/);
    }
    await unchanged();
    await stop(engine);
  });

  it("a cycle closed with a manifold that stays: CycleError naming the changed manifold and the cycle", async () => {
    const { engine, log, unchanged } = await running();
    // b (kept, unchanged: it uses a) stays; a is replaced by one that uses b.
    const desired = manifoldsFrom({ a: { inputs: ["b"], version: 2 }, b: { inputs: ["a"] }, c: {} }, log);
    const applied = await failureOf(() => engine.apply(desired));
    const planned = thrownBy(() => engine.plan(desired));
    for (const error of [applied, planned]) {
      expect(error).toBeInstanceOf(CycleError);
      expect((error as CycleError).cycle).toEqual(["a", "b", "a"]);
      expect(error.message).toMatch(/^cannot install manifold "a": its inputs close a dependency cycle "a" -> "b" -> "a"/);
    }
    await unchanged();
    await stop(engine);
  });

  it("bad options: TypeError naming the call and the option", async () => {
    const { engine, unchanged } = await running();
    const applied = await failureOf(() => engine.apply({}, { requirement: ["a"] } as never));
    expect(applied.message).toMatch(/^apply\(…, options\): unknown option "requirement"; did you mean "requirements"/);
    const planned = thrownBy(() => engine.plan({}, { ifGeneration: 1 } as never));
    expect(planned.message).toMatch(/^plan\(…, options\): unknown option "ifGeneration"/);
    const notObject = await failureOf(() => engine.apply({}, 5 as never));
    expect(notObject.message).toMatch(/options must be an object like \{ requirements, ifGeneration \}/);
    await unchanged();
    await stop(engine);
  });
});
