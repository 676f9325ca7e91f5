import { describe, expect, it } from "vitest";
import { Engine, resource, valueWorker, type Manifold } from "../src/index.js";
import { FakeClock, settle } from "./helpers.js";

function recording(calls: string[], name: string, inputs: string[]): Manifold {
  return {
    inputs,
    start: (context) => {
      calls.push(`${name}(${inputs.filter((input) => context.hasResource(input)).join(",")})`);
      return valueWorker(name);
    },
    output: (worker) => (worker as ReturnType<typeof valueWorker<string>>).value,
  };
}

describe("start order (rule 9)", () => {
  it("calls each start function once, inputs first, whatever the install order", async () => {
    const clock = new FakeClock();
    const engine = new Engine({ clock, bounceDelay: 0 });
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
    const clock = new FakeClock();
    const engine = new Engine({ clock, bounceDelay: 0 });
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
});
