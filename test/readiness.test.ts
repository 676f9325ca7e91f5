/**
 * Readiness (rule 9): a start waits while an installed input's start is in
 * flight, or about to be called, so that a cold start calls each start
 * function once, inputs first, whatever the install order; and the
 * bookkeeping behind it (src/readiness.ts: ManifoldNode.holdingInputs,
 * Slot.blockedDependents, Slot.waitingDependents, Slot.dependentCount) keeps
 * rule 9 and rule 3 right under every interleaving.
 *
 * The engine does not keep an exact count of holding inputs on every node:
 * only blocked nodes keep one, and a start or stop walks its dependents only
 * when some of them are blocked (for holding) or have had their start called
 * (for bouncing). Each test of the counters drives one interleaving where a
 * wrong count would show as a behaviour bug:
 * - a dependent that should be bounced (rule 3) but is not: it keeps running
 *   with a stale view of its inputs;
 * - a blocked node that never unblocks (a hang);
 * - a start called while an installed input has a start in flight (rule 9).
 *
 * There, every start records what it saw (`name(input=worker,...)`, `-` for
 * not running), and the world flags any start called while an installed input
 * of it has a start in flight.
 */
import { describe, expect, it } from "vitest";
import {
  AlreadyInstalledError,
  BounceError,
  MissingError,
  resource,
  UninstallError,
  valueWorker,
  type Engine,
  type EngineConfig,
  type Manifold,
  type StartContext,
  type Worker,
} from "../src/index.js";
import {
  deferred,
  entry,
  failOnUnhandledRejections,
  makeEngine,
  recording,
  settle,
  stop,
  TestWorker,
  track,
  type TestClock,
} from "./fixtures.js";

failOnUnhandledRejections();

// ------------------------------------------------------------------ start order

describe("start order (rule 9)", () => {
  it("calls each start function once, inputs first, whatever the install order", async () => {
    const { engine, clock } = makeEngine();
    const calls: string[] = [];
    engine.install("c", recording(calls, "c", ["b", "a"]));
    engine.install("b", recording(calls, "b", ["a"]));
    engine.install("a", recording(calls, "a", []));
    await settle();
    expect(calls).toEqual(["a()", "b(a)", "c(b,a)"]);
    expect(clock.delays).toEqual([]);
    engine.kill();
    await engine.wait();
    expect(clock.pending).toEqual([]);
  });

  it("waits for an asynchronous input start before calling the dependent", async () => {
    const { engine } = makeEngine();
    const token = resource<string>("token");
    let release!: () => void;
    const seen: unknown[] = [];
    engine.install("user", {
      inputs: [token],
      start: (context) => {
        seen.push(context.getResource(token));
        return valueWorker(0);
      },
    });
    engine.install(token, {
      inputs: [],
      start: () => new Promise((resolve) => (release = () => resolve(valueWorker("t")))),
      output: (worker) => worker.value,
    });
    await settle();
    expect(seen).toEqual([]);
    expect(engine.report().manifolds.user?.state).toBe("starting");
    release();
    await settle();
    expect(seen).toEqual(["t"]);
    engine.kill();
    await engine.wait();
  });

  it("a cold start calls each start function once, in dependency order, even with asynchronous starts", async () => {
    const { engine, clock } = makeEngine({ bounceDelay: 10 });
    const log: string[] = [];
    const slow = (name: string, inputs: string[], ticks: number): Manifold<Worker & { readonly value: string }, string> => ({
      inputs,
      start: async (context) => {
        log.push(`${name}(${inputs.filter((input) => context.hasResource(input)).join(",")})`);
        for (let i = 0; i < ticks; i++) await Promise.resolve();
        return valueWorker(name);
      },
      output: (worker) => worker.value,
    });
    // Installed dependents first; the inputs' starts take different times.
    engine.install("top", slow("top", ["left", "right"], 1));
    engine.install("left", slow("left", ["root"], 5));
    engine.install("right", slow("right", ["root"], 1));
    engine.install("root", slow("root", [], 3));
    await settle();
    expect(log[0]).toBe("root()");
    expect(log.slice(1, 3).sort()).toEqual(["left(root)", "right(root)"]);
    expect(log[3]).toBe("top(left,right)");
    expect(log).toHaveLength(4);
    // Nothing was bounced, so no bounce timer was ever set.
    expect(clock.delays).toEqual([]);
    await stop(engine);
  });

  it("an input waiting out an error delay does not hold back its dependent", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 500 });
    const log: string[] = [];
    let inputCalls = 0;
    engine.install("a", {
      inputs: [],
      start: () => {
        if (++inputCalls === 1) throw new Error("first start fails");
        return valueWorker("A");
      },
      output: (worker) => worker.value,
    });
    engine.install("b", recording(log, "b", ["a"]));
    await settle();
    expect(log).toEqual(["b()"]);
    expect(entry(engine, "b").state).toBe("started");
    await clock.advance(500);
    // When the input comes up, the dependent is restarted once, now with it.
    expect(log).toEqual(["b()", "b(a)"]);
    await stop(engine);
  });

  it("an input waiting out a bounce delay holds back a dependent whose own delay ends first", async () => {
    // jitter 0.5 with these random draws makes a's bounce delay 15 ms and b's 5 ms.
    const draws = [0.99, 0];
    const { engine, clock } = makeEngine({ bounceDelay: 10, jitter: 0.5, random: () => draws.shift() ?? 0.5 });
    let input = new TestWorker("a");
    engine.install("a", { inputs: [], start: () => (input = new TestWorker("a")), output: () => "A" });
    const log: string[] = [];
    engine.install("b", recording(log, "b", ["a"]));
    await settle();
    input.fail(new BounceError());
    await settle();
    expect(clock.pending.map((timer) => timer.delay)).toEqual([5, 15]);
    await clock.advance(5);
    expect(log).toEqual(["b(a)"]);
    expect(entry(engine, "b").state).toBe("starting");
    await clock.advance(10);
    expect(log).toEqual(["b(a)", "b(a)"]);
    await stop(engine);
  });

  it("inputs that are not installed, completed or missing never hold a start back", async () => {
    const { engine } = makeEngine();
    const done = new TestWorker("done");
    engine.install("done", { inputs: [], start: () => done, output: () => "D" });
    engine.install("missing", {
      inputs: [],
      start: () => {
        throw new MissingError();
      },
    });
    await settle();
    done.complete();
    await settle();
    const log: string[] = [];
    engine.install("user", recording(log, "user", ["done", "missing", "absent"]));
    await settle();
    expect(log).toEqual(["user()"]);
    expect(entry(engine, "user").state).toBe("started");
    await stop(engine);
  });
});

// ------------------------------------------------------------------ the counters: a world of recording manifolds

/** A TestWorker that runs `onKill` (user code, re-entrant into the engine) when killed. */
class HookWorker extends TestWorker {
  constructor(
    label: string,
    stopOnKill: boolean,
    readonly onKill: (() => void) | undefined,
  ) {
    super(label, { stopOnKill });
  }
  override kill(): void {
    const first = !this.killed;
    super.kill();
    if (first) this.onKill?.();
  }
}

interface Options {
  /** The start returns a promise the test settles with `world.resolve(name)` / `world.reject(name, error)`. */
  async?: boolean;
  /** Its workers stop when killed (default true); false: the test completes them. */
  stopOnKill?: boolean;
  /** Runs inside the start function, after the snapshot is recorded. */
  onStart?: (context: StartContext) => void;
  /** Runs inside worker.kill(). */
  onKill?: () => void;
  /** Thrown by the start function (after recording) when it returns a truthy error. */
  failWith?: (context: StartContext) => unknown;
}

type Instance = { readonly id: number; readonly name: string };

/** An engine on a fake clock and the manifolds the test installs in it, with what their starts saw. */
class World {
  readonly clock: TestClock;
  readonly engine: Engine;
  /** Every start call, in order: `name(input=worker,...)`. */
  readonly log: string[] = [];
  readonly violations: string[] = [];
  readonly workers = new Map<string, HookWorker[]>();
  /** The instance installed under each name (as far as the test knows). */
  readonly #installed = new Map<string, Instance>();
  /** Start attempts in flight (called, not yet settled), by instance. */
  readonly #inFlight = new Map<Instance, { resolve: () => void; reject: (error: unknown) => void }>();
  #serial = 0;
  #workerSerial = new Map<string, number>();

  constructor(config: Omit<EngineConfig, "clock"> = {}) {
    const fixture = makeEngine({ bounceDelay: 10, errorDelay: 100, backoffFactor: 0, ...config });
    this.engine = fixture.engine;
    this.clock = fixture.clock;
  }

  manifold(name: string, inputs: string[], options: Options = {}): Manifold {
    const instance: Instance = { id: ++this.#serial, name };
    const manifold: Manifold = {
      inputs,
      output: (worker) => (worker as HookWorker).label,
      start: (context) => this.#start(instance, inputs, options, context),
    };
    this.#manifolds.set(manifold, instance);
    return manifold;
  }

  readonly #manifolds = new Map<Manifold, Instance>();

  install(name: string, manifold: Manifold): void {
    this.engine.install(name, manifold);
    this.#installed.set(name, this.#manifolds.get(manifold) as Instance);
  }

  installAll(manifolds: Record<string, Manifold>): void {
    this.engine.installAll(manifolds);
    for (const [name, manifold] of Object.entries(manifolds)) this.#installed.set(name, this.#manifolds.get(manifold) as Instance);
  }

  uninstall(name: string): Promise<void> {
    this.#installed.delete(name);
    return this.engine.uninstall(name);
  }

  /** Settles the start in flight of `name`'s installed instance (or of the only one in flight under that name). */
  resolve(name: string): void {
    this.#settle(name).resolve();
  }

  reject(name: string, error: unknown): void {
    this.#settle(name).reject(error);
  }

  inFlight(name: string): boolean {
    return [...this.#inFlight.keys()].some((instance) => instance.name === name);
  }

  last(name: string): HookWorker {
    const list = this.workers.get(name) ?? [];
    const worker = list[list.length - 1];
    if (worker === undefined) throw new Error(`no worker of ${name}`);
    return worker;
  }

  state(name: string): string | undefined {
    return this.engine.report().manifolds[name]?.state;
  }

  async stop(): Promise<void> {
    this.engine.kill();
    const outcome = track(this.engine.wait());
    await settle();
    for (const [, settle] of this.#inFlight) settle.reject(new Error("test over"));
    for (const list of this.workers.values()) for (const worker of list) if (worker.killed) worker.complete();
    await settle();
    expect(outcome.settled, "engine.wait() settled").toBe(true);
    expect(this.violations).toEqual([]);
  }

  #settle(name: string): { resolve: () => void; reject: (error: unknown) => void } {
    const installed = this.#installed.get(name);
    const entry = [...this.#inFlight.entries()].find(([instance]) => instance === installed) ?? [...this.#inFlight.entries()].find(([instance]) => instance.name === name);
    if (entry === undefined) throw new Error(`no start of ${name} in flight`);
    this.#inFlight.delete(entry[0]);
    return entry[1];
  }

  #start(instance: Instance, inputs: string[], options: Options, context: StartContext): Worker | Promise<Worker> {
    const name = instance.name;
    const seen = inputs.map((input) => `${input}=${context.hasResource(input) ? String(context.getResource(input)) : "-"}`);
    this.log.push(`${name}(${seen.join(",")})`);
    // Rule 9: no installed input of ours has a start in flight.
    for (const input of inputs) {
      const holder = this.#installed.get(input);
      if (holder !== undefined && this.#inFlight.has(holder)) this.violations.push(`rule 9: ${name} started while ${input}'s start was in flight`);
    }
    options.onStart?.(context);
    const failure = options.failWith?.(context);
    if (failure !== undefined) throw failure;
    const make = (): HookWorker => {
      const n = (this.#workerSerial.get(name) ?? 0) + 1;
      this.#workerSerial.set(name, n);
      const worker = new HookWorker(`${name}${n}`, options.stopOnKill ?? true, options.onKill);
      const list = this.workers.get(name) ?? [];
      list.push(worker);
      this.workers.set(name, list);
      return worker;
    };
    if (options.async !== true) return make();
    const result = deferred<Worker>();
    this.#inFlight.set(instance, { resolve: () => result.resolve(make()), reject: (error) => result.reject(error) });
    return result.promise;
  }
}

/**
 * Puts `e` (a dependent of "a") in the running state, having seen no "a", and
 * "a" in the middle of a start: "a"'s first start fails, `e` starts during
 * "a"'s error delay (which holds nobody back), then "a" starts again and its
 * start is left in flight.
 */
async function runningSiblingWhileInputStarts(world: World, e: Options = {}): Promise<void> {
  world.install("a", world.manifold("a", [], { async: true }));
  await settle();
  world.reject("a", new Error("first start fails"));
  await settle();
  world.install("e", world.manifold("e", ["a"], e));
  await settle();
  expect(world.state("e")).toBe("started");
  await world.clock.advance(100);
  expect(world.inFlight("a")).toBe(true);
  expect(world.log).toEqual(["a()", "e(a=-)", "a()"]);
}

// ------------------------------------------------------------------ waitingDependents (rule 3)

describe("an input's worker coming or going still bounces its running dependents (waitingDependents, dependentCount)", () => {
  it.each(["blocked", "ready"] as const)("after a %s dependent of it is uninstalled", async (phase) => {
    const world = new World();
    await runningSiblingWhileInputStarts(world);
    world.install("d", world.manifold("d", ["a"]));
    if (phase === "blocked") {
      await settle();
      expect(world.state("d")).toBe("starting"); // blocked behind a's start (rule 9)
    }
    // Uninstalled while still waiting for its start to be called: no longer one of a's dependents.
    await world.uninstall("d");
    world.resolve("a");
    await settle();
    await world.clock.advance(10);
    // e ran without a: a's worker coming up must restart it (rule 3), even though
    // the only other dependent a ever had was waiting when it went away.
    expect(world.log).toEqual(["a()", "e(a=-)", "a()", "e(a=a1)"]);
    await world.stop();
  });

  it("with more than 16 dependents (kept in a Set), all waiting but one running", async () => {
    const world = new World();
    await runningSiblingWhileInputStarts(world);
    const names = Array.from({ length: 20 }, (_, i) => `d${i}`);
    for (const name of names) world.install(name, world.manifold(name, ["a"]));
    await settle();
    for (const name of names) expect(world.state(name)).toBe("starting");
    for (const name of names.slice(0, 5)) await world.uninstall(name);
    world.resolve("a");
    await settle();
    await world.clock.advance(10);
    expect(world.log.filter((line) => line.startsWith("e("))).toEqual(["e(a=-)", "e(a=a1)"]);
    expect(world.log.filter((line) => line.startsWith("d")).sort()).toEqual(names.slice(5).map((name) => `${name}(a=a1)`).sort());
    await world.stop();
  });

  it("when a dependent that was blocked is uninstalled and reinstalled from a sibling's worker.kill() during the bounce", async () => {
    const world = new World();
    const reinstalled = world.manifold("d", ["a"]);
    let reentered = false;
    await runningSiblingWhileInputStarts(world, {
      onKill: () => {
        if (reentered) return;
        reentered = true;
        void world.uninstall("d");
        world.install("d", reinstalled);
      },
    });
    world.install("d", world.manifold("d", ["a"]));
    await settle();
    expect(world.state("d")).toBe("starting");
    // a comes up: d is unblocked (waiting), e is running and gets killed, and
    // its kill() swaps d for a new instance in the middle of the walk.
    world.resolve("a");
    await settle();
    expect(reentered).toBe(true);
    await world.clock.advance(10);
    // The new d starts once, with a; the old one never starts; e restarts with a.
    expect(world.log).toEqual(["a()", "e(a=-)", "a()", "d(a=a1)", "e(a=a1)"]);
    expect(world.state("d")).toBe("started");
    expect(world.state("e")).toBe("started");
    await world.clock.advance(1000);
    expect(world.log).toHaveLength(5);
    await world.stop();
  });

  it("after a running dependent of it asked to be uninstalled (UninstallError)", async () => {
    const world = new World();
    world.install("a", world.manifold("a", []));
    world.install("x", world.manifold("x", ["a"]));
    world.install("e", world.manifold("e", ["a"]));
    await settle();
    expect(world.log).toEqual(["a()", "x(a=a1)", "e(a=a1)"]);
    world.last("x").fail(new UninstallError("x is gone for good"));
    await settle();
    expect(world.engine.report().manifolds.x).toBeUndefined();
    // a's worker goes and comes back: e, its only dependent now, follows it.
    world.last("a").fail(new BounceError("a restarts"));
    await settle();
    await world.clock.advance(10);
    await world.clock.advance(10);
    expect(world.log).toEqual(["a()", "x(a=a1)", "e(a=a1)", "a()", "e(a=a2)"]);
    await world.stop();
  });

  it("an input installed late restarts its idle (MissingError) dependent, and its blocked dependent sees it with a single start", async () => {
    const world = new World();
    world.install("c", world.manifold("c", [], { async: true }));
    world.install("m", world.manifold("m", ["a"], { failWith: (context) => (context.hasResource("a") ? undefined : new MissingError("no a")) }));
    world.install("d", world.manifold("d", ["a", "c"]));
    await settle();
    expect(world.log).toEqual(["c()", "m(a=-)"]); // d is blocked behind c
    expect(world.state("m")).toBe("stopped");
    // a is installed now: m must be restarted (rule 3); d, still waiting, will see it.
    world.install("a", world.manifold("a", []));
    await settle();
    await world.clock.advance(10);
    expect(world.log).toEqual(["c()", "m(a=-)", "a()", "m(a=a1)"]);
    world.resolve("c");
    await settle();
    expect(world.log).toEqual(["c()", "m(a=-)", "a()", "m(a=a1)", "d(a=a1,c=c1)"]);
    await world.clock.advance(1000);
    expect(world.log).toHaveLength(5);
    await world.stop();
  });
});

// ------------------------------------------------------------------ blockedDependents / holdingInputs (rule 9, liveness)

describe("blocked dependents are released exactly when their inputs stop holding", () => {
  it("a blocked dependent starts when its input's start asks to be uninstalled, and restarts when the input is installed again", async () => {
    const world = new World();
    world.install("a", world.manifold("a", [], { async: true }));
    world.install("d", world.manifold("d", ["a"]));
    await settle();
    expect(world.log).toEqual(["a()"]);
    world.reject("a", new UninstallError("gone for good"));
    await settle();
    expect(world.engine.report().manifolds.a).toBeUndefined();
    expect(world.log).toEqual(["a()", "d(a=-)"]);
    world.install("a", world.manifold("a", []));
    await settle();
    await world.clock.advance(10);
    expect(world.log).toEqual(["a()", "d(a=-)", "a()", "d(a=a1)"]);
    await world.stop();
  });

  it("a blocked dependent sees an input installed while it was blocked, with a single start and no bounce", async () => {
    const world = new World();
    world.install("b", world.manifold("b", [], { async: true }));
    world.install("d", world.manifold("d", ["a", "b"]));
    await settle();
    world.install("a", world.manifold("a", []));
    await settle();
    expect(world.log).toEqual(["b()", "a()"]);
    expect(world.state("d")).toBe("starting");
    world.resolve("b");
    await settle();
    expect(world.log).toEqual(["b()", "a()", "d(a=a1,b=b1)"]);
    expect(world.clock.delays).toEqual([]); // nothing was bounced
    await world.stop();
  });

  it("a dependent blocked while its input is uninstalled and reinstalled waits for the successor, which waits for the old worker (rule 8)", async () => {
    const world = new World();
    world.install("a", world.manifold("a", [], { stopOnKill: false }));
    world.install("d", world.manifold("d", ["a"]));
    await settle();
    expect(world.log).toEqual(["a()", "d(a=a1)"]);
    const gone = track(world.uninstall("a"));
    world.install("a", world.manifold("a", [], { async: true }));
    await settle();
    await world.clock.advance(1000);
    // d was bounced by the uninstall; its restart waits for the new a, which waits for the old worker.
    expect(world.log).toEqual(["a()", "d(a=a1)"]);
    expect(world.state("a")).toBe("starting");
    expect(world.state("d")).toBe("starting");
    expect(gone.settled).toBe(false);
    world.last("a").complete();
    await settle();
    expect(gone.ok).toBe(true);
    expect(world.log).toEqual(["a()", "d(a=a1)", "a()"]); // d still waits: a's start is in flight
    world.resolve("a");
    await settle();
    expect(world.log).toEqual(["a()", "d(a=a1)", "a()", "d(a=a2)"]);
    await world.clock.advance(1000);
    expect(world.log).toHaveLength(4);
    await world.stop();
  });

  it("a blocked dependent, uninstalled and installed again under its name, waits for its input and starts once", async () => {
    const world = new World();
    world.install("a", world.manifold("a", [], { async: true }));
    world.install("d", world.manifold("d", ["a", "ghost"]));
    await settle();
    expect(world.state("d")).toBe("starting");
    await world.uninstall("d"); // "ghost" (never installed) has no dependent left
    world.install("d", world.manifold("d", ["a", "ghost"]));
    await settle();
    expect(world.log).toEqual(["a()"]);
    world.resolve("a");
    await settle();
    expect(world.log).toEqual(["a()", "d(a=a1,ghost=-)"]);
    world.install("ghost", world.manifold("ghost", []));
    await settle();
    await world.clock.advance(10);
    expect(world.log).toEqual(["a()", "d(a=a1,ghost=-)", "ghost()", "d(a=a1,ghost=ghost1)"]);
    await world.stop();
  });

  it("installAll that fails half way while a dependent is blocked leaves no trace: the dependent starts, and a later install of the rolled-back name restarts it", async () => {
    const world = new World();
    world.install("a", world.manifold("a", [], { async: true }));
    world.install("d", world.manifold("d", ["a", "b"]));
    await settle();
    expect(world.state("d")).toBe("starting");
    // b is added first (into d's input slot), then "a" is a duplicate: b is rolled back.
    expect(() => world.engine.installAll({ b: world.manifold("b", []), a: world.manifold("a", []) })).toThrow(AlreadyInstalledError);
    expect(world.engine.report().manifolds.b).toBeUndefined();
    world.resolve("a");
    await settle();
    expect(world.log).toEqual(["a()", "d(a=a1,b=-)"]);
    world.install("b", world.manifold("b", []));
    await settle();
    await world.clock.advance(10);
    expect(world.log).toEqual(["a()", "d(a=a1,b=-)", "b()", "d(a=a1,b=b1)"]);
    await world.stop();
  });

  it("a start function that installs a dependent of its own manifold: the dependent waits for that start and starts once", async () => {
    const world = new World();
    world.install(
      "a",
      world.manifold("a", [], {
        async: true,
        onStart: () => world.install("d", world.manifold("d", ["a"])),
      }),
    );
    await settle();
    expect(world.log).toEqual(["a()"]);
    expect(world.state("d")).toBe("starting");
    world.resolve("a");
    await settle();
    expect(world.log).toEqual(["a()", "d(a=a1)"]);
    expect(world.clock.delays).toEqual([]);
    await world.stop();
  });

  it("an input whose restart is stuck stops holding its dependent back; when it finally stops and starts again, the dependent restarts with it", async () => {
    const world = new World({ stopTimeout: 1000 });
    world.install("x", world.manifold("x", []));
    let aStarts = 0;
    world.install(
      "a",
      world.manifold("a", ["x"], {
        onStart: () => aStarts++,
        stopOnKill: false, // a's workers ignore kill(): the test stops them
      }),
    );
    world.install("d", world.manifold("d", ["a"]));
    await settle();
    expect(world.log).toEqual(["x()", "a(x=x1)", "d(a=a1)"]);
    world.last("x").fail(new BounceError("again"));
    await settle();
    await world.clock.advance(10);
    // x is back; a is still stopping (restart wanted), so d's restart waits.
    expect(world.log).toEqual(["x()", "a(x=x1)", "d(a=a1)", "x()"]);
    expect(world.state("d")).toBe("starting");
    await world.clock.advance(990);
    // a is stuck now: it holds nobody back, and d starts without it.
    expect(world.engine.report().manifolds.a?.stuck).toBe(true);
    expect(world.log).toEqual(["x()", "a(x=x1)", "d(a=a1)", "x()", "d(a=-)"]);
    world.last("a").complete();
    await settle();
    await world.clock.advance(10);
    await world.clock.advance(10);
    // a's old worker went (d was running, so it is bounced) and its new one came: d ends up with it.
    expect(aStarts).toBe(2);
    expect(world.log.slice(5)).toEqual(["a(x=x2)", "d(a=a2)"]);
    expect(world.state("d")).toBe("started");
    await world.clock.advance(1000);
    expect(world.log).toHaveLength(7);
    await world.stop();
  });

  it("kill() while one dependent is blocked behind an input's start and a reinstalled input waits for its old worker: nothing more starts, and wait() settles", async () => {
    const world = new World();
    world.install("x", world.manifold("x", [], { stopOnKill: false }));
    world.install("a", world.manifold("a", [], { async: true }));
    world.install("d", world.manifold("d", ["a", "x"]));
    await settle();
    expect(world.log).toEqual(["x()", "a()"]);
    const oldX = world.last("x");
    void world.uninstall("x");
    world.install("x", world.manifold("x", []));
    await settle();
    expect(world.state("x")).toBe("starting");
    expect(world.state("d")).toBe("starting");
    world.engine.kill();
    const outcome = track(world.engine.wait());
    await settle();
    expect(outcome.settled).toBe(false); // a's start and the old x worker have not settled
    world.resolve("a"); // too late: its worker is killed at once
    oldX.complete();
    await settle();
    expect(outcome.settled).toBe(true);
    expect(outcome.ok).toBe(true);
    expect(world.log).toEqual(["x()", "a()"]);
    expect(world.last("a").killed).toBe(true);
    for (const entry of Object.values(world.engine.report().manifolds)) expect(entry.state).toBe("stopped");
    expect(world.violations).toEqual([]);
  });
});
