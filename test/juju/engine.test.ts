/**
 * Ports of Juju's `dependency/engine_test.go` (juju/worker) to our API. Each
 * test names the Juju test it ports. Where Juju's semantics differ from
 * SPEC.md, the test follows SPEC.md and says so.
 */
import { describe, expect, it, vi } from "vitest";
import {
  AlreadyInstalledError,
  BounceError,
  CycleError,
  Engine,
  EngineStoppedError,
  errorIs,
  MissingError,
  UninstallError,
  validate,
  type EngineConfig,
  type Manifold,
  type Manifolds,
  type StartContext,
  type Worker,
} from "../../src/index.js";
import { failOnUnhandledRejections, outcome, settle, TestClock, thrownBy } from "../fixtures.js";
import { alwaysFatal, BOUNCE_DELAY, ERROR_DELAY, EngineFixture, HarnessWorker, isFatalIf, ManifoldHarness, startMinimalWorker } from "./util.js";

failOnUnhandledRejections();

/** A start function that waits until its attempt is aborted, then fails (Juju's abort tests). */
function abortWaitingManifold(inputs: string[], signals: AbortSignal[]): Manifold {
  return {
    inputs,
    start: (context) =>
      new Promise<Worker>((_, reject) => {
        signals.push(context.signal);
        context.signal.addEventListener("abort", () => reject(new Error("whatever")));
      }),
  };
}

describe("install (Juju TestInstall*, TestDoubleInstall)", () => {
  it("installAll starts every manifold once (TestInstallConvenienceWrapper)", async () => {
    const fix = new EngineFixture();
    const harnesses = [new ManifoldHarness(), new ManifoldHarness(), new ManifoldHarness()];
    fix.engine.installAll({ mh1: harnesses[0]!.manifold(), mh2: harnesses[1]!.manifold(), mh3: harnesses[2]!.manifold() });
    await settle();
    await fix.shortWait();
    expect(harnesses.map((mh) => mh.takeStarts())).toEqual([1, 1, 1]);
    await fix.cleanKill();
  });

  it("starts a manifold without inputs at once and leaves other workers alone (TestInstallNoInputs)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness();
    fix.engine.install("some-task", mh1.manifold());
    await settle();
    // No timer: a fresh install starts with delay 0.
    expect(mh1.takeStarts()).toBe(1);
    expect(fix.clock.delays).toEqual([]);

    const mh2 = new ManifoldHarness();
    fix.engine.install("other-task", mh2.manifold());
    await settle();
    expect(mh2.takeStarts()).toBe(1);
    await fix.shortWait();
    expect(mh1.takeStarts()).toBe(0);
    expect(mh1.workers[0]?.killed).toBe(false);
    await fix.cleanKill();
  });

  it("tries a manifold whose input is not installed, and starts it once the input is installed (TestInstallUnknownInputs)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness(["later-task"]);
    fix.engine.install("some-task", mh1.manifold());
    await settle();
    // The start is called whether or not the inputs are there (rule 1); the
    // harness answers MissingError, so nothing runs and nothing is retried.
    expect(mh1.takeAttempts()).toBe(1);
    await fix.shortWait();
    expect(mh1.takeAttempts()).toBe(0);
    expect(mh1.takeStarts()).toBe(0);

    const mh2 = new ManifoldHarness();
    fix.engine.install("later-task", mh2.manifold());
    await settle();
    expect(mh2.takeStarts()).toBe(1);
    // The dependent is bounced by its input's start: restarted after bounceDelay.
    await fix.clock.advance(BOUNCE_DELAY - 1);
    expect(mh1.takeStarts()).toBe(0);
    await fix.clock.advance(1);
    expect(mh1.takeStarts()).toBe(1);
    await fix.shortWait();
    expect(mh1.takeStarts()).toBe(0);
    expect(mh2.takeStarts()).toBe(0);
    await fix.cleanKill();
  });

  it("refuses a second manifold of the same name and keeps the first running (TestDoubleInstall)", async () => {
    const fix = new EngineFixture();
    const mh = new ManifoldHarness();
    fix.engine.install("some-task", mh.manifold());
    await settle();
    expect(mh.takeStarts()).toBe(1);

    const thrown = thrownBy(() => fix.engine.install("some-task", mh.manifold()));
    expect(thrown).toBeInstanceOf(AlreadyInstalledError);
    expect((thrown as AlreadyInstalledError).manifoldName).toBe("some-task");
    expect(thrown.message).toContain("some-task");
    await fix.shortWait();
    expect(mh.takeStarts()).toBe(0);
    expect(mh.workers[0]?.killed).toBe(false);
    await fix.cleanKill();
  });

  it("refuses a manifold whose inputs close a cycle, and never starts it (TestInstallCycle)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness(["robin-hood"]);
    fix.engine.install("friar-tuck", mh1.manifold());
    await settle();
    expect(mh1.takeStarts()).toBe(0);

    const mh2 = new ManifoldHarness(["friar-tuck"]);
    const thrown = thrownBy(() => fix.engine.install("robin-hood", mh2.manifold()));
    expect(thrown).toBeInstanceOf(CycleError);
    expect(thrown.message).toContain("robin-hood");
    expect((thrown as CycleError).cycle).toEqual(["robin-hood", "friar-tuck", "robin-hood"]);
    await fix.shortWait();
    expect(mh2.takeAttempts()).toBe(0);
    expect(Object.keys(fix.engine.report().manifolds)).toEqual(["friar-tuck"]);
    await fix.cleanKill();
  });

  it("refuses installs once the engine has stopped, and starts nothing (TestInstallAlreadyStopped)", async () => {
    const fix = new EngineFixture();
    await fix.cleanKill();
    const mh = new ManifoldHarness();
    expect(() => fix.engine.install("some-task", mh.manifold())).toThrow(EngineStoppedError);
    expect(() => fix.engine.installAll({ "some-task": mh.manifold() })).toThrow(EngineStoppedError);
    await settle();
    expect(mh.takeAttempts()).toBe(0);
  });

  it("refuses installs as soon as kill() is called, before the engine has stopped (TestInstallAlreadyStopped)", async () => {
    const fix = new EngineFixture();
    const running = new ManifoldHarness([], { ignoreExternalKill: true });
    fix.engine.install("running", running.manifold());
    await settle();
    fix.engine.kill();
    await settle();
    expect(fix.engine.report().state).toBe("stopping");
    const mh = new ManifoldHarness();
    expect(() => fix.engine.install("some-task", mh.manifold())).toThrow(EngineStoppedError);
    await settle();
    expect(mh.takeAttempts()).toBe(0);
    await running.injectError(null);
    expect(await outcome(fix.engine.wait())).toEqual({ settled: true, ok: true, value: undefined });
  });
});

describe("getResource and hasResource (Juju TestStartGet*)", () => {
  it("hasResource tells a running input from a missing one even when the input has no output (TestStartGetExistenceOnly)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness();
    fix.engine.install("some-task", mh1.manifold());
    await settle();
    expect(mh1.takeStarts()).toBe(1);

    // The harness checks its inputs with hasResource (Juju's Get(name, nil)).
    const mh2 = new ManifoldHarness(["some-task"]);
    fix.engine.install("other-task", mh2.manifold());
    await settle();
    expect(mh2.seen).toEqual([["some-task"]]);
    expect(mh2.takeStarts()).toBe(1);
    await fix.shortWait();
    expect(mh2.takeStarts()).toBe(0);
    await fix.cleanKill();
  });

  it("getResource of a running input without output throws MissingError (TestStartGetExistenceOnly)", async () => {
    const fix = new EngineFixture();
    fix.engine.install("some-task", new ManifoldHarness().manifold());
    let thrown: unknown;
    fix.engine.install("other-task", {
      inputs: ["some-task"],
      start: (context) => {
        try {
          context.getResource("some-task");
        } catch (error) {
          thrown = error;
        }
        return startMinimalWorker();
      },
    });
    await settle();
    expect(errorIs(thrown, MissingError)).toBe(true);
    await fix.cleanKill();
  });

  it("getResource of an undeclared name throws MissingError, even when that manifold runs (TestStartGetUndeclaredName)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness();
    fix.engine.install("some-task", { ...mh1.manifold(), output: () => "secret" });
    await settle();
    expect(mh1.takeStarts()).toBe(1);

    let thrown: unknown;
    let exists: boolean | undefined;
    fix.engine.install("other-task", {
      inputs: [],
      start: (context) => {
        exists = context.hasResource("some-task");
        try {
          context.getResource("some-task");
        } catch (error) {
          thrown = error;
        }
        return startMinimalWorker();
      },
    });
    await settle();
    expect(errorIs(thrown, MissingError)).toBe(true);
    expect((thrown as Error).message).toContain("some-task");
    expect(exists).toBe(false);
    await fix.cleanKill();
  });

  it("getResource hands over what the input's output returns for its running worker (TestStartGetAccept)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness();
    const outputCalls: unknown[] = [];
    const value = { resource: "of some-task" };
    fix.engine.install("some-task", {
      ...mh1.manifold(),
      output: (worker: HarnessWorker) => {
        outputCalls.push(worker);
        return value;
      },
    });
    await settle();
    expect(mh1.takeStarts()).toBe(1);

    let got: unknown;
    fix.engine.install("other-task", {
      inputs: ["some-task"],
      start: (context) => {
        got = context.getResource("some-task");
        return startMinimalWorker();
      },
    });
    await settle();
    expect(got).toBe(value);
    expect(outputCalls).toEqual([mh1.workers[0]]);
    expect(outputCalls[0]).toBe(mh1.workers[0]);
    await fix.cleanKill();
  });

  it("getResource rethrows what the input's output throws (TestStartGetReject)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness();
    const rejection = new Error("not good enough");
    fix.engine.install("some-task", {
      ...mh1.manifold(),
      output: () => {
        throw rejection;
      },
    });
    await settle();
    expect(mh1.takeStarts()).toBe(1);

    let thrown: unknown;
    fix.engine.install("other-task", {
      inputs: ["some-task"],
      start: (context) => {
        try {
          context.getResource("some-task");
        } catch (error) {
          thrown = error;
        }
        return startMinimalWorker();
      },
    });
    await settle();
    expect(thrown).toBe(rejection);
    await fix.cleanKill();
  });
});

describe("aborted starts (Juju TestStartAbort*)", () => {
  it("kill() aborts a start in flight and the engine stops cleanly without starting it again (TestStartAbortOnEngineKill)", async () => {
    const fix = new EngineFixture();
    const signals: AbortSignal[] = [];
    fix.engine.install("task", abortWaitingManifold([], signals));
    await settle();
    expect(signals).toHaveLength(1);
    expect(signals[0]?.aborted).toBe(false);

    await fix.cleanKill();
    expect(signals[0]?.aborted).toBe(true);
    await fix.shortWait();
    expect(signals).toHaveLength(1);
  });

  it("an input's start aborts a dependent's start in flight, which is then called again (TestStartAbortOnDependencyChange)", async () => {
    const fix = new EngineFixture();
    const signals: AbortSignal[] = [];
    fix.engine.install("child", abortWaitingManifold(["parent"], signals));
    await settle();
    expect(signals).toHaveLength(1);

    const mh = new ManifoldHarness();
    fix.engine.install("parent", mh.manifold());
    await settle();
    expect(mh.takeStarts()).toBe(1);
    expect(signals[0]?.aborted).toBe(true);
    await fix.shortWait();
    expect(signals).toHaveLength(2);
    expect(signals[1]?.aborted).toBe(false);

    await fix.cleanKill();
    expect(signals[1]?.aborted).toBe(true);
    await fix.shortWait();
    expect(signals).toHaveLength(2);
  });
});

describe("restarts (Juju TestError*, TestCompletedWorker*, TestRestartRestartsDependents)", () => {
  it("an input's error restarts it and its dependent, each exactly once (TestErrorRestartsDependents)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness();
    fix.engine.install("error-task", mh1.manifold());
    const mh2 = new ManifoldHarness(["error-task"]);
    fix.engine.install("some-task", mh2.manifold());
    await settle();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([1, 1]);

    await mh1.injectError(new Error("ZAP"));
    // The dependent loses its input: its worker is killed.
    expect(mh2.workers[0]?.killed).toBe(true);
    await fix.shortWait();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([1, 1]);
    await fix.shortWait();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([0, 0]);
    await fix.cleanKill();
  });

  it("a dependent's error restarts only the dependent, after errorDelay (TestErrorPreservesDependencies)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness();
    fix.engine.install("some-task", mh1.manifold());
    const mh2 = new ManifoldHarness(["some-task"]);
    fix.engine.install("error-task", mh2.manifold());
    await settle();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([1, 1]);

    await mh2.injectError(new Error("BLAM"));
    await fix.clock.advance(ERROR_DELAY - 1);
    expect(mh2.takeStarts()).toBe(0);
    await fix.clock.advance(1);
    expect(mh2.takeStarts()).toBe(1);
    await fix.shortWait();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([0, 0]);
    expect(mh1.workers[0]?.killed).toBe(false);
    await fix.cleanKill();
  });

  it("a worker that completes cleanly is not restarted (TestCompletedWorkerNotRestartedOnExit)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness();
    fix.engine.install("stop-task", mh1.manifold());
    await settle();
    expect(mh1.takeStarts()).toBe(1);

    await mh1.injectError(null);
    expect(fix.clock.pending).toEqual([]);
    await fix.shortWait();
    expect(mh1.takeAttempts()).toBe(1); // the first attempt only
    expect(mh1.takeStarts()).toBe(0);
    expect(fix.engine.report().manifolds["stop-task"]?.state).toBe("stopped");
    await fix.cleanKill();
  });

  it("a completed worker is started again when its input restarts (TestCompletedWorkerRestartedByDependencyChange)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness();
    fix.engine.install("some-task", mh1.manifold());
    const mh2 = new ManifoldHarness(["some-task"]);
    fix.engine.install("stop-task", mh2.manifold());
    await settle();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([1, 1]);

    await mh2.injectError(null);
    await fix.shortWait();
    expect(mh2.takeStarts()).toBe(0);

    await mh1.injectError(new Error("CLUNK"));
    await fix.shortWait();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([1, 1]);
    await fix.shortWait();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([0, 0]);
    await fix.cleanKill();
  });

  it("an error at the top of a chain restarts every worker in it exactly once (TestRestartRestartsDependents)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness();
    fix.engine.install("error-task", mh1.manifold());
    const mh2 = new ManifoldHarness(["error-task"]);
    fix.engine.install("restart-task", mh2.manifold());
    const mh3 = new ManifoldHarness(["restart-task"]);
    fix.engine.install("consequent-restart-task", mh3.manifold());
    await settle();
    expect([mh1.takeStarts(), mh2.takeStarts(), mh3.takeStarts()]).toEqual([1, 1, 1]);

    // The middle worker is killed cleanly, yet its dependent bounces too.
    await mh1.injectError(new Error("ZAP"));
    expect(mh2.workers[0]?.killed).toBe(true);
    expect(mh3.workers[0]?.killed).toBe(true);
    await fix.shortWait();
    expect([mh1.takeStarts(), mh2.takeStarts(), mh3.takeStarts()]).toEqual([1, 1, 1]);
    await fix.shortWait();
    expect([mh1.takeStarts(), mh2.takeStarts(), mh3.takeStarts()]).toEqual([0, 0, 0]);
    await fix.cleanKill();
  });
});

describe("fatal errors and filters (Juju TestIsFatal, TestConfigFilter, TestFilter*, TestWorstError)", () => {
  it("restarts a worker after a non-fatal error, and stops the engine with a fatal one (TestIsFatal)", async () => {
    const fatal = new Error("KABOOM");
    const fix = new EngineFixture({ isFatal: isFatalIf(fatal) });
    const mh1 = new ManifoldHarness();
    fix.engine.install("some-task", mh1.manifold());
    const mh2 = new ManifoldHarness();
    fix.engine.install("other-task", mh2.manifold());
    await settle();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([1, 1]);

    await mh1.injectError(new Error("splort"));
    await fix.shortWait();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([1, 0]);
    expect(fix.engine.report().state).toBe("started");

    await mh2.injectError(fatal);
    expect(mh1.workers[1]?.killed).toBe(true);
    expect(await outcome(fix.engine.wait())).toEqual({ settled: true, ok: false, error: fatal });
    await fix.shortWait();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([0, 0]);
    expect(await fix.dirtyKill()).toBe(fatal);
  });

  it("wait() rejects with the config filter's result; the report keeps the unfiltered error (TestConfigFilter)", async () => {
    const fatal = new Error("kerrang");
    const reported = new Error("meedly-meedly");
    const filter = vi.fn((_error: unknown) => reported);
    const fix = new EngineFixture({ isFatal: isFatalIf(fatal), filter });
    const mh1 = new ManifoldHarness();
    fix.engine.install("stop-task", mh1.manifold());
    await settle();
    expect(mh1.takeStarts()).toBe(1);

    await mh1.injectError(fatal);
    expect(await fix.dirtyKill()).toBe(reported);
    expect(filter).toHaveBeenCalledTimes(1);
    expect(filter.mock.calls[0]?.[0]).toBe(fatal);
    expect(fix.engine.report().error).toBe("kerrang");
  });

  it("a manifold's filter sees its start error first, and what it returns is what isFatal sees (TestFilterStartError)", async () => {
    const startError = new Error("grr crunch");
    const filtered = new Error("mew hiss");
    const filterInputs: unknown[] = [];
    const fix = new EngineFixture({ isFatal: alwaysFatal });
    fix.engine.install("task", {
      inputs: [],
      start: () => {
        throw startError;
      },
      filter: (error) => {
        filterInputs.push(error);
        return filtered;
      },
    });
    await settle();
    expect(filterInputs).toEqual([startError]);
    expect(filterInputs[0]).toBe(startError);
    expect(await fix.dirtyKill()).toBe(filtered);
  });

  it("a manifold's filter sees its worker's error first, and what it returns is what isFatal sees (TestFilterWorkerError)", async () => {
    const injected = new Error("arg squish");
    const filtered = new Error("blam dink");
    const filterInputs: unknown[] = [];
    const fix = new EngineFixture({ isFatal: alwaysFatal });
    const mh = new ManifoldHarness();
    fix.engine.install("task", {
      ...mh.manifold(),
      filter: (error) => {
        filterInputs.push(error);
        return filtered;
      },
    });
    await settle();
    expect(mh.takeStarts()).toBe(1);

    await mh.injectError(injected);
    expect(filterInputs).toHaveLength(1);
    expect(filterInputs[0]).toBe(injected);
    expect(await fix.dirtyKill()).toBe(filtered);
  });

  it("ranks a later fatal error against the worst so far with worstError (TestWorstError)", async () => {
    // Workers that ignore kill, so that the second fatal error arrives
    // after the engine has begun stopping, in an order the test chooses.
    const worst = new Error("awful error");
    const worstError = vi.fn((_a: unknown, _b: unknown) => worst);
    const fix = new EngineFixture({ isFatal: alwaysFatal, worstError });
    const mh1 = new ManifoldHarness([], { ignoreExternalKill: true });
    fix.engine.install("task", mh1.manifold());
    const mh2 = new ManifoldHarness([], { ignoreExternalKill: true });
    fix.engine.install("another task", mh2.manifold());
    await settle();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([1, 1]);

    const ping = new Error("ping");
    const pong = new Error("pong");
    await mh1.injectError(ping);
    expect(mh2.workers[0]?.killed).toBe(true);
    expect(await outcome(fix.engine.wait())).toEqual({ settled: false, ok: false });
    await mh2.injectError(pong);

    // SPEC rule 6: the first fatal error is the worst so far without asking
    // worstError (Juju calls it for the first one too, with nil: 2 calls).
    expect(worstError).toHaveBeenCalledTimes(1);
    expect(worstError.mock.calls[0]?.[0]).toBe(pong);
    expect(worstError.mock.calls[0]?.[1]).toBe(ping);
    expect(await fix.dirtyKill()).toBe(worst);
    expect(fix.engine.report().error).toBe("awful error");
  });
});

describe("special errors (Juju TestErrMissing, TestErrBounce, TestErrUninstall)", () => {
  it("a dependent failing with MissingError is restarted on each change of its input and at no other time (TestErrMissing)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness();
    fix.engine.install("some-task", mh1.manifold());
    let attempts = 0;
    fix.engine.install("unmet-task", {
      inputs: ["some-task"],
      start: () => {
        attempts++;
        throw new MissingError("always missing");
      },
    });
    await settle();
    expect(mh1.takeStarts()).toBe(1);
    expect(attempts).toBe(1);
    await fix.shortWait();
    expect(attempts).toBe(1);

    // The input stops (one bounce) and starts again (another): Juju allows
    // one or two restarts; with a fake clock the count is exact. MissingError
    // itself never schedules a restart.
    await mh1.injectError(new Error("kerrang"));
    await fix.shortWait();
    expect(mh1.takeStarts()).toBe(1);
    expect(attempts).toBe(3);
    await fix.shortWait();
    expect(attempts).toBe(3);

    // The input completes for good: the dependent is restarted just once.
    await mh1.injectError(null);
    await fix.shortWait();
    expect(mh1.takeStarts()).toBe(0);
    expect(attempts).toBe(4);
    await fix.shortWait();
    expect(attempts).toBe(4);
    await fix.cleanKill();
  });

  it("BounceError restarts the worker after bounceDelay, not errorDelay, and restarts its dependent (TestErrBounce)", async () => {
    const fix = new EngineFixture({ errorDelay: 5000, maxDelay: 0 });
    const mh1 = new ManifoldHarness();
    fix.engine.install("some-task", mh1.manifold());
    const mh2 = new ManifoldHarness(["some-task"], { requireResources: false });
    fix.engine.install("another-task", mh2.manifold());
    await settle();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([1, 1]);

    await mh1.injectError(new BounceError("bounce me", { cause: new Error("for a reason") }));
    await fix.clock.advance(BOUNCE_DELAY - 1);
    expect(mh1.takeStarts()).toBe(0);
    await fix.clock.advance(1);
    expect(mh1.takeStarts()).toBe(1);
    await fix.shortWait();
    // Juju: "might restart more than once". Here the dependent's restart waits
    // while its input waits out a bounce delay (rule 9 as implemented), so it
    // restarts once, and sees the new input.
    expect(mh2.takeStarts()).toBe(1);
    expect(mh2.seen[mh2.seen.length - 1]).toEqual(["some-task"]);
    expect(mh1.takeStarts()).toBe(0);
    await fix.cleanKill();
  });

  it("UninstallError removes the manifold and restarts its dependent; a new manifold of that name restarts it again (TestErrUninstall)", async () => {
    const fix = new EngineFixture();
    const mh1 = new ManifoldHarness();
    fix.engine.install("some-task", mh1.manifold());
    const mh2 = new ManifoldHarness(["some-task"], { requireResources: false });
    fix.engine.install("another-task", mh2.manifold());
    await settle();
    expect([mh1.takeStarts(), mh2.takeStarts()]).toEqual([1, 1]);

    await mh1.injectError(new UninstallError("done here"));
    await fix.shortWait();
    expect(mh1.takeAttempts()).toBe(1); // the first attempt only
    expect(mh2.takeStarts()).toBe(1);
    expect(mh2.seen[mh2.seen.length - 1]).toEqual([]);
    expect(Object.keys(fix.engine.report().manifolds)).toEqual(["another-task"]);

    const mh3 = new ManifoldHarness();
    fix.engine.install("some-task", mh3.manifold());
    await settle();
    expect(mh3.takeStarts()).toBe(1);
    await fix.shortWait();
    expect(mh2.takeStarts()).toBe(1);
    expect(mh2.seen[mh2.seen.length - 1]).toEqual(["some-task"]);
    await fix.shortWait();
    expect([mh1.takeStarts(), mh2.takeStarts(), mh3.takeStarts()]).toEqual([0, 0, 0]);
    await fix.cleanKill();
  });
});

describe("config validation (Juju TestConfigValidate)", () => {
  const noop = (): void => undefined;
  const clockWithout = (missing: string): Record<string, unknown> => {
    const clock: Record<string, unknown> = { now: () => 0, setTimeout: () => 0, clearTimeout: noop };
    delete clock[missing];
    return clock;
  };
  const loggerWithout = (missing: string): Record<string, unknown> => {
    const logger: Record<string, unknown> = { debug: noop, info: noop, warn: noop, error: noop };
    delete logger[missing];
    return logger;
  };
  // Juju requires IsFatal, WorstError, Clock, Metrics and Logger; ours has
  // defaults for each, so what is invalid is a value of the wrong shape.
  const cases: [string, Record<string, unknown>][] = [
    ["isFatal", { isFatal: "yes" }],
    ["worstError", { worstError: 42 }],
    ["filter", { filter: {} }],
    ["errorDelay", { errorDelay: -1000 }],
    ["errorDelay", { errorDelay: Number.NaN }],
    ["bounceDelay", { bounceDelay: -1000 }],
    ["bounceDelay", { bounceDelay: Number.POSITIVE_INFINITY }],
    ["backoffFactor", { backoffFactor: 0.9 }],
    ["backoffFactor", { backoffFactor: -1 }],
    ["backoffFactor", { backoffFactor: Number.POSITIVE_INFINITY }],
    ["backoffResetTime", { backoffResetTime: -60_000 }],
    ["maxDelay", { maxDelay: -1000 }],
    ["jitter", { jitter: 1.5 }],
    ["jitter", { jitter: -0.1 }],
    ["clock", { clock: clockWithout("now") }],
    ["clock", { clock: clockWithout("setTimeout") }],
    ["clock", { clock: clockWithout("clearTimeout") }],
    ["logger", { logger: loggerWithout("warn") }],
    ["metrics", { metrics: {} }],
  ];

  it.each(cases)("rejects a bad %s with a TypeError naming it: %o", (field, config) => {
    const thrown = thrownBy(() => new Engine(config as EngineConfig));
    expect(thrown).toBeInstanceOf(TypeError);
    expect(thrown.message).toContain(field);
  });

  it("accepts the edge values of every numeric field", async () => {
    const engine = new Engine({
      errorDelay: 0,
      bounceDelay: 0,
      backoffFactor: 0,
      backoffResetTime: 0,
      maxDelay: 0,
      jitter: 1,
      clock: new TestClock(),
    });
    engine.kill();
    expect(await outcome(engine.wait())).toEqual({ settled: true, ok: true, value: undefined });
    const other = new Engine({ backoffFactor: 1, jitter: 0, clock: new TestClock() });
    other.kill();
    expect(await outcome(other.wait())).toEqual({ settled: true, ok: true, value: undefined });
  });
});

describe("validate (Juju TestValidate*)", () => {
  const stub = (inputs: string[]): Manifold => ({ inputs, start: () => startMinimalWorker() });

  it("accepts an empty set (TestValidateEmptyManifolds)", () => {
    expect(() => validate({})).not.toThrow();
  });

  it("rejects a manifold that is its own input (TestValidateTrivialCycle)", () => {
    const thrown = thrownBy(() => validate({ a: stub(["a"]) }));
    expect(thrown).toBeInstanceOf(CycleError);
    expect((thrown as CycleError).cycle).toEqual(["a", "a"]);
  });

  it("accepts a tangled acyclic set and rejects it once a cycle is introduced (TestValidateComplexManifolds)", () => {
    const manifolds: Manifolds = {
      root1: stub([]),
      root2: stub([]),
      mid1: stub(["root1"]),
      mid2: stub(["root1", "root2"]),
      leaf1: stub(["root2", "mid1"]),
      leaf2: stub(["root1", "mid2"]),
      leaf3: stub(["root1", "root2", "mid1", "mid2"]),
    };
    expect(() => validate(manifolds)).not.toThrow();

    manifolds.root1 = stub(["leaf1"]);
    const thrown = thrownBy(() => validate(manifolds));
    expect(thrown).toBeInstanceOf(CycleError);
    // The cycle root1 -> leaf1 -> mid1 -> root1 (in one direction or the other),
    // first name = last, each step an input edge.
    const cycle = (thrown as CycleError).cycle;
    expect(cycle[0]).toBe(cycle[cycle.length - 1]);
    expect([...new Set(cycle)].sort()).toEqual(["leaf1", "mid1", "root1"]);
    const inputsOf = (name: string): readonly unknown[] => manifolds[name]?.inputs ?? [];
    const steps = cycle.slice(1).map((to, i) => [cycle[i] as string, to] as const);
    const forward = steps.every(([from, to]) => inputsOf(from).includes(to));
    const backward = steps.every(([from, to]) => inputsOf(to).includes(from));
    expect(forward || backward).toBe(true);
  });

  it("ignores inputs outside the set", () => {
    expect(() => validate({ a: stub(["elsewhere"]), b: stub(["a", "nowhere"]) })).not.toThrow();
  });
});

describe("backoff (Juju TestBackoffFactor*, TestRestartDependentWhenAborted)", () => {
  const backoffConfig: EngineConfig = { errorDelay: 1000, backoffFactor: 2, backoffResetTime: 60_000, maxDelay: 3000 };

  /** Checks that the next start attempt comes exactly `delay` ms from now. */
  async function expectNextAttemptAfter(fix: EngineFixture, mh: ManifoldHarness, delay: number): Promise<void> {
    await fix.clock.advance(delay - 1);
    expect(mh.takeAttempts()).toBe(0);
    await fix.clock.advance(1);
    expect(mh.takeAttempts()).toBe(1);
  }

  it("backs off start errors by backoffFactor, capped at maxDelay (TestBackoffFactor)", async () => {
    const fix = new EngineFixture(backoffConfig);
    const mh = new ManifoldHarness();
    mh.startError = new Error("boom");
    fix.engine.install("task", mh.manifold());
    await settle();
    expect(mh.takeAttempts()).toBe(1);
    await expectNextAttemptAfter(fix, mh, 1000);
    await expectNextAttemptAfter(fix, mh, 2000);
    await expectNextAttemptAfter(fix, mh, 3000); // 4000, capped
    await expectNextAttemptAfter(fix, mh, 3000);
    expect(fix.clock.delays).toEqual([1000, 2000, 3000, 3000, 3000]);
    await fix.cleanKill();
  });

  it("spreads each backed-off delay by at most ±jitter (TestBackoffFactor's fuzz)", async () => {
    for (const [random, expected] of [
      [0, [900, 1800, 2700]],
      [0.999_999, [1100, 2200, 3300]],
    ] as const) {
      const fix = new EngineFixture({ ...backoffConfig, jitter: 0.1, random: () => random });
      const mh = new ManifoldHarness();
      mh.startError = new Error("boom");
      fix.engine.install("task", mh.manifold());
      await settle();
      expect(mh.takeAttempts()).toBe(1);
      for (const delay of expected) await expectNextAttemptAfter(fix, mh, delay);
      await fix.cleanKill();
    }
  });

  it("backs off worker errors, timed from the failure, and starts afresh after a long run (TestBackoffFactorOnError)", async () => {
    const fix = new EngineFixture(backoffConfig);
    const mh = new ManifoldHarness();
    fix.engine.install("task", mh.manifold());
    await settle();
    expect(mh.takeStarts()).toBe(1);
    expect(mh.takeAttempts()).toBe(1);

    await mh.injectError(new Error("initial boom"));
    await expectNextAttemptAfter(fix, mh, 1000);
    expect(mh.takeStarts()).toBe(1);

    // Ran for less than backoffResetTime: the next delay doubles.
    await fix.clock.advance(1000);
    await mh.injectError(new Error("later boom"));
    await expectNextAttemptAfter(fix, mh, 2000);

    // The delay is counted from when the worker died, not when it started.
    await fix.clock.advance(5000);
    await mh.injectError(new Error("last boom"));
    await expectNextAttemptAfter(fix, mh, 3000);

    // Ran for longer than backoffResetTime: the failure counts as fresh.
    await fix.clock.advance(2 * 60_000);
    await mh.injectError(new Error("after successful run"));
    await expectNextAttemptAfter(fix, mh, 1000);
    await fix.cleanKill();
  });

  it("keeps the delay at maxDelay through hundreds of failures without overflowing (TestBackoffFactorOverflow)", async () => {
    const fix = new EngineFixture({ errorDelay: 1000, backoffFactor: 100, backoffResetTime: 60_000, maxDelay: 60_000 });
    const mh = new ManifoldHarness();
    mh.startError = new Error("boom");
    fix.engine.install("task", mh.manifold());
    await settle();
    const delays: number[] = [];
    for (let i = 0; i < 200; i++) delays.push(await fix.clock.fireNext());
    expect(mh.takeAttempts()).toBe(201);
    expect(delays[0]).toBe(1000);
    expect(delays.slice(1)).toEqual(new Array<number>(199).fill(60_000));
    await fix.cleanKill();
  });

  it("with no maxDelay, hundreds of failures still give finite, growing delays a timer can honour", async () => {
    // 1000 * 100^199 is Infinity in floating point; Node fires a timer of
    // more than 2^31-1 ms (or Infinity) after 1 ms, which would turn the
    // backoff into a busy loop.
    const fix = new EngineFixture({ errorDelay: 1000, backoffFactor: 100, maxDelay: 0 });
    const mh = new ManifoldHarness();
    mh.startError = new Error("boom");
    fix.engine.install("task", mh.manifold());
    await settle();
    const delays: number[] = [];
    for (let i = 0; i < 200; i++) delays.push(await fix.clock.fireNext());
    expect(delays.slice(0, 3)).toEqual([1000, 100_000, 10_000_000]);
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThanOrEqual(delays[i - 1] as number);
    for (const delay of delays) {
      expect(Number.isFinite(delay)).toBe(true);
      expect(delay).toBeGreaterThan(0);
      expect(delay).toBeLessThanOrEqual(2 ** 31 - 1);
    }
    await fix.cleanKill();
  });

  it("never backs off a restart after BounceError, and BounceError leaves the error count alone", async () => {
    // SPEC rule 5: backoff multiplies only errorDelay.
    const fix = new EngineFixture({ errorDelay: 1000, backoffFactor: 2, maxDelay: 0 });
    const mh = new ManifoldHarness();
    mh.startError = new Error("boom");
    fix.engine.install("task", mh.manifold());
    await settle();
    expect(mh.takeAttempts()).toBe(1);
    await expectNextAttemptAfter(fix, mh, 1000);
    await expectNextAttemptAfter(fix, mh, 2000);
    mh.startError = new BounceError("again");
    await expectNextAttemptAfter(fix, mh, 4000);
    await expectNextAttemptAfter(fix, mh, BOUNCE_DELAY);
    mh.startError = new Error("boom");
    await expectNextAttemptAfter(fix, mh, BOUNCE_DELAY);
    await expectNextAttemptAfter(fix, mh, 8000);
    await fix.cleanKill();
  });

  it("a dependent waiting to restart starts once after a second input arrives (TestRestartDependentWhenAborted)", async () => {
    const fix = new EngineFixture({ bounceDelay: 1000, backoffFactor: 2 });
    const mh1 = new ManifoldHarness(["task2", "task3"]);
    fix.engine.install("task1", mh1.manifold());
    await settle();
    expect(mh1.takeStarts()).toBe(0);

    // task2 starts: task1 is to restart after bounceDelay.
    const mh2 = new ManifoldHarness([], { requireResources: false });
    fix.engine.install("task2", mh2.manifold());
    await settle();
    expect(mh2.takeStarts()).toBe(1);
    await fix.clock.advance(500);
    expect(mh1.takeStarts()).toBe(0);

    // task3 starts while task1 waits: task1 must still end up started.
    const mh3 = new ManifoldHarness([], { requireResources: false });
    fix.engine.install("task3", mh3.manifold());
    await settle();
    expect(mh3.takeStarts()).toBe(1);
    await fix.clock.advance(1200);
    expect(mh1.takeStarts()).toBe(1);
    expect(mh1.seen[mh1.seen.length - 1]).toEqual(["task2", "task3"]);
    await fix.shortWait();
    expect(mh1.takeStarts()).toBe(0);
    await fix.cleanKill();
  });

  it("a start aborted in flight by an input change is restarted after bounceDelay, not a backed-off errorDelay (TestRestartDependentWhenAborted)", async () => {
    const fix = new EngineFixture({ errorDelay: 5000, bounceDelay: 1000, backoffFactor: 2, maxDelay: 0 });
    const mh2 = new ManifoldHarness();
    fix.engine.install("task2", mh2.manifold());
    const seen: string[][] = [];
    let workers = 0;
    fix.engine.install("task1", {
      inputs: ["task2", "task3"],
      start: (context: StartContext) => {
        seen.push(["task2", "task3"].filter((input) => context.hasResource(input)));
        if (context.hasResource("task3")) {
          workers++;
          return startMinimalWorker();
        }
        // Without task3 the start hangs until it is aborted.
        return new Promise<Worker>((_, reject) => context.signal.addEventListener("abort", () => reject(context.signal.reason)));
      },
    });
    await settle();
    expect(seen).toEqual([["task2"]]);

    fix.engine.install("task3", new ManifoldHarness().manifold());
    await settle();
    expect(fix.clock.pending.map((timer) => timer.delay)).toEqual([1000]);
    await fix.clock.advance(999);
    expect(seen).toHaveLength(1);
    await fix.clock.advance(1);
    expect(seen).toEqual([["task2"], ["task2", "task3"]]);
    expect(workers).toBe(1);
    await fix.cleanKill();
  });
});
