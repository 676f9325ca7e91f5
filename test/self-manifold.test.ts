/**
 * An engine installed in itself (rule 11): selfManifold offers install,
 * uninstall and report to the engine's own manifolds, and the engine never
 * kills or waits for itself. (The ports of Juju's SelfSuite: juju/self.test.ts.)
 */
import { describe, expect, expectTypeOf, it } from "vitest";
import { resource, selfManifold, valueWorker, type Engine, type EngineControls } from "../src/index.js";
import { entry, expectStillWorking, failOnUnhandledRejections, makeEngine, settle, stop, valueManifold } from "./fixtures.js";

failOnUnhandledRejections();

describe("an engine installed in itself (rule 11)", () => {
  const self = resource<EngineControls>("self");

  it("offers install/uninstall/report to its dependents and never kills or waits for itself", async () => {
    const { engine } = makeEngine();
    engine.install(self, selfManifold(engine));
    engine.install("installer", {
      inputs: [self],
      start: (context) => {
        const controls = context.getResource(self);
        expectTypeOf(controls.install).toBeFunction();
        controls.install("child", valueManifold("c"));
        expect(controls.report().state).toBe("started");
        return valueWorker(0);
      },
    });
    await settle();
    const report = engine.report();
    expect(Object.keys(report.manifolds).sort()).toEqual(["child", "installer", "self"]);
    expect(entry(engine, "child").state).toBe("started");
    expect(entry(engine, "self").state).toBe("started");
    // Its own report is never nested in itself.
    expect(entry(engine, "self")).not.toHaveProperty("report");
    expect(() => JSON.stringify(report)).not.toThrow();
    await expect(stop(engine)).resolves.toBeUndefined();
    expect(engine.report().state).toBe("stopped");
  });

  it("can be uninstalled without stopping the engine", async () => {
    const { engine } = makeEngine();
    engine.install("self", selfManifold(engine));
    await settle();
    await engine.uninstall("self");
    expect(engine.report().state).toBe("started");
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("refuses a non-engine", () => {
    expect(() => selfManifold({} as Engine)).toThrow(TypeError);
  });
});
