/**
 * Never two workers for one manifold (rule 8): a start is never called while
 * an earlier start or worker of that name has not settled, however often the
 * manifold is bounced meanwhile. (Stuck workers: stuck.test.ts.)
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BounceError } from "../src/index.js";
import { deferred, entry, failOnUnhandledRejections, makeEngine, settle, stop, TestWorker } from "./fixtures.js";

failOnUnhandledRejections();

describe("never two workers for one manifold (rule 8)", () => {
  it("does not start again while the previous worker ignores its kill, however often it is bounced", async () => {
    const { engine, clock } = makeEngine({ bounceDelay: 10 });
    let input = new TestWorker("a");
    engine.install("a", {
      inputs: [],
      start: () => (input = new TestWorker("a")),
      output: () => "A",
    });
    const workers: TestWorker[] = [];
    let outstanding = 0;
    let violations = 0;
    engine.install("b", {
      inputs: ["a"],
      start: () => {
        if (outstanding > 0) violations++;
        const worker = new TestWorker(`b${workers.length}`, { stopOnKill: false });
        outstanding++;
        const settled = (): void => void outstanding--;
        void worker.wait().then(settled, settled);
        workers.push(worker);
        return worker;
      },
    });
    await settle();
    expect(workers).toHaveLength(1);
    for (let i = 0; i < 3; i++) {
      input.fail(new BounceError());
      await settle();
      await clock.advance(10);
    }
    expect(workers[0]?.killed).toBe(true);
    expect(workers).toHaveLength(1);
    workers[0]?.complete();
    await settle();
    await clock.advance(10);
    expect(workers).toHaveLength(2);
    expect(violations).toBe(0);
    engine.kill();
    workers[1]?.complete();
    await engine.wait();
  });

  it("waits for the worker an aborted start still returned to stop before starting again", async () => {
    const { engine } = makeEngine();
    let input = new TestWorker("a");
    engine.install("a", { inputs: [], start: () => (input = new TestWorker("a")), output: () => "A" });
    const gates: { resolve: (w: TestWorker) => void }[] = [];
    engine.install("b", {
      inputs: ["a"],
      start: () => {
        const gate = deferred<TestWorker>();
        gates.push(gate);
        return gate.promise;
      },
    });
    await settle();
    expect(gates).toHaveLength(1);
    input.fail(new BounceError());
    await settle();
    // The first start is aborted but has not settled: no second start yet.
    expect(gates).toHaveLength(1);
    const late = new TestWorker("late", { stopOnKill: false });
    gates[0]?.resolve(late);
    await settle();
    expect(late.killed).toBe(true);
    expect(gates).toHaveLength(1);
    late.complete();
    await settle();
    expect(gates).toHaveLength(2);
    gates[1]?.resolve(new TestWorker("b2"));
    await settle();
    expect(entry(engine, "b").state).toBe("started");
    await stop(engine);
  });

  it("holds for any interleaving of input failures, bounces and slow stops (property)", async () => {
    type Action = "bounceA" | "failA" | "completeA" | "releaseB" | "failB" | "tick";
    const action = fc.constantFrom<Action>("bounceA", "failA", "completeA", "releaseB", "failB", "tick");
    await fc.assert(
      fc.asyncProperty(fc.array(action, { maxLength: 40 }), async (actions) => {
        // stopTimeout 0: slow workers are never declared stuck, so wait() resolves once they are released.
        const { engine, clock } = makeEngine({ errorDelay: 30, bounceDelay: 10, stopTimeout: 0 });
        let input: TestWorker | undefined;
        engine.install("a", {
          inputs: [],
          start: () => (input = new TestWorker("a")),
          output: () => "A",
        });
        const live: TestWorker[] = [];
        let violations = 0;
        engine.install("b", {
          inputs: ["a"],
          start: () => {
            if (live.length > 0) violations++;
            const worker = new TestWorker("b", { stopOnKill: false });
            live.push(worker);
            const settled = (): void => void live.splice(live.indexOf(worker), 1);
            void worker.wait().then(settled, settled);
            return worker;
          },
        });
        await settle();
        for (const step of actions) {
          switch (step) {
            case "bounceA":
              input?.fail(new BounceError());
              break;
            case "failA":
              input?.fail(new Error("a failed"));
              break;
            case "completeA":
              input?.complete();
              break;
            case "releaseB":
              live.find((worker) => worker.killed)?.complete();
              break;
            case "failB":
              live[0]?.fail(new Error("b failed"));
              break;
            case "tick":
              if (clock.pending.length > 0) await clock.fireNext();
              break;
          }
          await settle();
        }
        engine.kill();
        await settle();
        for (const worker of [...live]) worker.complete();
        await engine.wait();
        expect(violations).toBe(0);
        expect(clock.pending).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });
});
