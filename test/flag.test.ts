import { describe, expect, it } from "vitest";
import {
  BounceError,
  Engine,
  errorIs,
  flagManifold,
  flagWorker,
  gated,
  manifold,
  MissingError,
  resource,
  valueWorker,
  type Flag,
  type FlagWorker,
  type Manifold,
  type Worker,
} from "../src/index.js";
import { FakeClock, failOnUnhandledRejections, settle, TestWorker } from "./fixtures.js";

failOnUnhandledRejections();

function newEngine(clock = new FakeClock()): { engine: Engine; clock: FakeClock } {
  return { engine: new Engine({ clock, jitter: 0, bounceDelay: 10, errorDelay: 1000 }), clock };
}

/** A flag whose value the test sets: each set restarts its worker (a flag changes by restarting). */
function switchableFlag(initial: boolean): { manifold: Manifold<FlagWorker, Flag>; set(value: boolean): void; starts: () => number } {
  let value = initial;
  let current: (FlagWorker & { fail(): void }) | undefined;
  let starts = 0;
  return {
    manifold: flagManifold({
      inputs: [],
      start: () => {
        starts++;
        const base = flagWorker(value);
        let stopWith!: (error: Error) => void;
        const done = new Promise<void>((resolve, reject) => {
          stopWith = reject;
          void base.wait().then(resolve);
        });
        done.catch(() => undefined);
        current = { check: base.check, kill: base.kill, wait: () => done, fail: () => stopWith(new BounceError("flag value changed")) };
        return current;
      },
    }),
    set(next: boolean) {
      value = next;
      current?.fail();
    },
    starts: () => starts,
  };
}

describe("flagWorker and flagManifold", () => {
  it("flagWorker holds its value until killed", async () => {
    const worker = flagWorker(true);
    expect(worker.check()).toBe(true);
    expect(worker.value).toBe(true);
    let stopped = false;
    void worker.wait().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    worker.kill();
    await settle();
    expect(stopped).toBe(true);
  });

  it("flagWorker refuses a non-boolean", () => {
    expect(() => flagWorker("yes" as unknown as boolean)).toThrow(/flagWorker\(value\): value must be true or false \(got "yes"\)/);
  });

  it("hands dependents a frozen flag with the value read at start, never the worker", async () => {
    const { engine } = newEngine();
    const flagToken = resource<Flag>("is-controller");
    let seen: Flag | undefined;
    let changing = true;
    engine.install(
      flagToken,
      flagManifold({
        inputs: [],
        // A worker whose check() would change later: dependents still see the value of the start.
        start: () => Object.assign(new TestWorker("flag"), { check: () => changing }),
      }),
    );
    engine.install("reader", manifold({ inputs: [flagToken], start: ({ getResource }) => ((seen = getResource(flagToken)), valueWorker(0)) }));
    await settle();
    expect(seen?.check()).toBe(true);
    expect(Object.isFrozen(seen)).toBe(true);
    expect(seen).not.toHaveProperty("kill");
    changing = false;
    expect(seen?.check()).toBe(true);
    engine.kill();
    await engine.wait();
  });

  it("fails the start, naming the manifold, when the worker is not a flag, and kills that worker", async () => {
    const { engine } = newEngine();
    const worker = new TestWorker("not a flag");
    engine.install("broken-flag", flagManifold({ inputs: [], start: () => worker as unknown as FlagWorker }));
    const other = new TestWorker("bad value");
    engine.install("odd-flag", flagManifold({ inputs: [], start: () => Object.assign(other, { check: () => "yes" as unknown as boolean }) }));
    await settle();
    expect(engine.report().manifolds["broken-flag"]?.error).toMatch(/flag manifold "broken-flag": its worker has no check\(\) method/);
    expect(engine.report().manifolds["odd-flag"]?.error).toMatch(/flag manifold "odd-flag": its worker check\(\) returned "yes"/);
    expect(worker.killed).toBe(true);
    expect(other.killed).toBe(true);
    engine.kill();
    await engine.wait();
  });

  it("keeps filter and stopTimeout, and uses a custom output", async () => {
    const filter = (error: unknown): unknown => error;
    const m = flagManifold({ inputs: ["a"], start: () => flagWorker(true), filter, stopTimeout: 5, output: (w) => ({ check: () => w.check(), extra: 1 }) });
    expect(m.inputs).toEqual(["a"]);
    expect(m.filter).toBe(filter);
    expect(m.stopTimeout).toBe(5);
    expect(m.output?.(flagWorker(false))).toMatchObject({ extra: 1 });
  });

  it("rejects malformed options with the field named", () => {
    expect(() => flagManifold(null as never)).toThrow(/flagManifold\(options\): options must be an object/);
    expect(() => flagManifold({ start: () => flagWorker(true) } as never)).toThrow(/flagManifold: inputs must be an array/);
    expect(() => flagManifold({ inputs: [] } as never)).toThrow(/flagManifold: start must be a function/);
    expect(() => flagManifold({ inputs: [], start: () => flagWorker(true), output: 3 } as never)).toThrow(/flagManifold: output must be a function/);
    expect(() => flagManifold({ inputs: [], start: () => flagWorker(true), filter: "x" } as never)).toThrow(/flagManifold: filter must be a function/);
  });
});

describe("gated", () => {
  it("adds the flags to the inputs once and keeps every other field", () => {
    const filter = (error: unknown): unknown => error;
    const output = (w: Worker & { readonly value: number }): number => w.value;
    const base = manifold({ inputs: ["db", "f1"], start: () => valueWorker(1), output, filter, stopTimeout: 7 });
    const m = gated(base, { flags: [resource<Flag>("f1"), "f2"] });
    expect(m.inputs).toEqual(["db", "f1", "f2"]);
    expect(m.output?.(valueWorker(3))).toBe(3);
    const error = new Error("x");
    expect(m.filter?.(error)).toBe(error);
    expect(m.stopTimeout).toBe(7);
    expect(base.inputs).toEqual(["db", "f1"]); // the original is untouched
  });

  it("starts only while every flag is installed, running and true", async () => {
    const { engine, clock } = newEngine();
    const a = switchableFlag(true);
    const b = switchableFlag(false);
    let starts = 0;
    const worker = (): TestWorker => (starts++, new TestWorker("gated"));
    engine.install("a", a.manifold);
    engine.install("job", gated(manifold({ inputs: [], start: worker }), { flags: ["a", "b"] }));
    await settle();
    // b is not installed: MissingError, and the start function was not called.
    expect(starts).toBe(0);
    expect(engine.report().manifolds["job"]?.error).toBe('manifold "job": flag "b" is not running; it starts when the flag is true');

    engine.install("b", b.manifold);
    await clock.advance(10);
    expect(starts).toBe(0);
    expect(engine.report().manifolds["job"]?.error).toBe('manifold "job": flag "b" is false; it starts when the flag is true');
    expect(engine.report().manifolds["job"]?.state).toBe("stopped"); // MissingError: waits for an input to change

    b.set(true); // b's worker restarts with the new value; job is restarted by the change
    await clock.advance(100);
    expect(starts).toBe(1);
    expect(engine.report().manifolds["job"]?.state).toBe("started");

    a.set(false); // a flag turning false stops the gated worker
    await clock.advance(100);
    expect(engine.report().manifolds["job"]?.state).toBe("stopped");
    expect(engine.report().manifolds["job"]?.error).toMatch(/flag "a" is false/);
    expect(starts).toBe(1);

    a.set(true);
    await clock.advance(100);
    expect(starts).toBe(2);
    expect(engine.report().manifolds["job"]?.state).toBe("started");
    engine.kill();
    await engine.wait();
  });

  it("throws MissingError (recognised by errorIs) from the start, so the engine waits without backoff", async () => {
    const b = switchableFlag(false);
    const m = gated(manifold({ inputs: [], start: () => valueWorker(0) }), { flags: ["b"] });
    const { engine } = newEngine();
    engine.install("b", b.manifold);
    let caught: unknown;
    engine.install("probe", {
      inputs: ["b"],
      start: async (context) => {
        try {
          await m.start(context);
        } catch (error) {
          caught = error;
        }
        return valueWorker(0);
      },
    });
    await settle();
    expect(errorIs(caught, MissingError)).toBe(true);
    engine.kill();
    await engine.wait();
  });

  it("keeps a class instance's methods, bound to the original", async () => {
    const { engine } = newEngine();
    const f = switchableFlag(true);
    class Job implements Manifold<Worker & { value: number }, number> {
      readonly inputs = [];
      readonly #base = 40;
      start(): Worker & { value: number } {
        return valueWorker(this.#base + 1);
      }
      output(worker: Worker & { value: number }): number {
        return worker.value + this.#base;
      }
    }
    let seen: unknown;
    engine.install("f", f.manifold);
    engine.install("job", gated(new Job(), { flags: ["f"] }));
    engine.install("reader", manifold({ inputs: ["job"], start: ({ getResource }) => ((seen = getResource("job")), valueWorker(0)) }));
    await settle();
    expect(engine.report().manifolds["job"]?.state).toBe("started");
    expect(seen).toBe(81);
    engine.kill();
    await engine.wait();
  });

  it("fails with a clear error when a flag input is not a flag", async () => {
    const { engine } = newEngine();
    engine.install("not-a-flag", manifold({ inputs: [], start: () => valueWorker(5), output: (w) => w.value }));
    engine.install("throws", manifold({ inputs: [], start: () => valueWorker(0), output: () => ({ check: () => { throw new Error("boom"); } }) }));
    engine.install("odd", manifold({ inputs: [], start: () => valueWorker(0), output: () => ({ check: () => 1 }) }));
    let called = 0;
    const job = (flag: string): Manifold => gated(manifold({ inputs: [], start: () => (called++, valueWorker(0)) }), { flags: [flag] });
    engine.install("job1", job("not-a-flag"));
    engine.install("job2", job("throws"));
    engine.install("job3", job("odd"));
    await settle();
    const report = engine.report().manifolds;
    expect(report["job1"]?.error).toMatch(/manifold "job1": input "not-a-flag" is listed as a flag but its output number 5 has no check\(\); make it a flagManifold/);
    expect(report["job2"]?.error).toMatch(/manifold "job2": flag "throws": check\(\) threw/);
    expect(report["job3"]?.error).toMatch(/manifold "job3": flag "odd": check\(\) returned number 1; it must return true or false/);
    expect(called).toBe(0);
    engine.kill();
    await engine.wait();
  });

  it("rejects malformed arguments with what is wrong", () => {
    const m = manifold({ inputs: [], start: () => valueWorker(0) });
    expect(() => gated(null as never, { flags: ["f"] })).toThrow(/gated\(manifold, options\): manifold must be a manifold/);
    expect(() => gated({ inputs: [] } as never, { flags: ["f"] })).toThrow(/manifold must be a manifold with an inputs array and a start function/);
    expect(() => gated(m, { flags: [] })).toThrow(/options.flags must be a non-empty array/);
    expect(() => gated(m, {} as never)).toThrow(/options.flags must be a non-empty array .* \(got undefined\)/);
    expect(() => gated(m, null as never)).toThrow(/options.flags must be a non-empty array/);
    expect(() => gated(m, { flags: ["f", ""] })).toThrow(/gated: flags\[1\] must be a non-empty string or a resource token \(got ""\)/);
    expect(() => gated(m, { flags: ["f", resource("f")] })).toThrow(/gated: flags\[1\] repeats "f"; list each flag once/);
  });
});
