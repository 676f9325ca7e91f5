/**
 * The workers the package makes: createWorker (run with an abort signal; an
 * abort caused by kill() is a clean stop) and valueWorker.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createWorker, valueWorker, type Worker } from "../src/index.js";
import { deferred, failOnUnhandledRejections, settle, track } from "./fixtures.js";

// The package promises that a worker's failure reaches only those who call wait():
// every test fails on an unhandled rejection.
failOnUnhandledRejections();

describe("createWorker", () => {
  it("calls run at once with a live signal", () => {
    let signal: AbortSignal | undefined;
    createWorker((s) => {
      signal = s;
    });
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(signal?.aborted).toBe(false);
  });

  it("resolves wait() when run returns synchronously", async () => {
    const worker = createWorker(() => undefined);
    await expect(worker.wait()).resolves.toBeUndefined();
  });

  it("resolves wait() when run's promise resolves, not before", async () => {
    const gate = deferred();
    const worker = createWorker(() => gate.promise);
    const waiting = track(worker.wait());
    await settle();
    expect(waiting.settled).toBe(false);
    gate.resolve();
    await settle();
    expect(waiting.ok).toBe(true);
  });

  it("kill() aborts the signal with a reason", () => {
    let signal!: AbortSignal;
    const worker = createWorker(async (s) => {
      signal = s;
      await new Promise(() => undefined);
    });
    worker.kill();
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeDefined();
  });

  it("resolves wait() when run rejects with the signal's reason after kill()", async () => {
    const worker = createWorker(
      (signal) => new Promise<void>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
    );
    worker.kill();
    await expect(worker.wait()).resolves.toBeUndefined();
  });

  it("resolves wait() when run rejects with an error caused by the signal's reason after kill()", async () => {
    const worker = createWorker(
      (signal) =>
        new Promise<void>((_, reject) =>
          signal.addEventListener("abort", () => reject(new Error("wrapped abort", { cause: signal.reason }))),
        ),
    );
    worker.kill();
    await expect(worker.wait()).resolves.toBeUndefined();
  });

  it("resolves wait() when run rejects with an AbortError after kill() (timers/promises, fetch)", async () => {
    // timers/promises rejects with an AbortError at once when its signal aborts: no real waiting.
    const worker = createWorker((signal) => sleep(1e9, undefined, { signal }));
    worker.kill();
    await expect(worker.wait()).resolves.toBeUndefined();
  });

  it("rejects wait() with an AbortError thrown while nobody killed it", async () => {
    const abortError = new DOMException("someone else's abort", "AbortError");
    const worker = createWorker(() => Promise.reject(abortError));
    await expect(worker.wait()).rejects.toBe(abortError);
  });

  it("rejects wait() with an unrelated error even after kill()", async () => {
    const failure = new Error("cleanup failed");
    const worker = createWorker(
      (signal) => new Promise<void>((_, reject) => signal.addEventListener("abort", () => reject(failure))),
    );
    worker.kill();
    await expect(worker.wait()).rejects.toBe(failure);
  });

  it("rejects wait() with what run throws synchronously", async () => {
    const failure = new Error("sync boom");
    const worker = createWorker(() => {
      throw failure;
    });
    await expect(worker.wait()).rejects.toBe(failure);
  });

  it("rejects wait() with what run throws asynchronously", async () => {
    const failure = new Error("async boom");
    const worker = createWorker(async () => {
      await settle();
      throw failure;
    });
    await expect(worker.wait()).rejects.toBe(failure);
  });

  it("rejects wait() with a non-Error throwable as it is (the engine wraps it, not the worker)", async () => {
    const worker = createWorker(() => {
      throw "plain string";
    });
    await expect(worker.wait()).rejects.toBe("plain string");
  });

  it("returns the same promise from every wait()", () => {
    const worker = createWorker(() => undefined);
    expect(worker.wait()).toBe(worker.wait());
  });

  it("kill() is idempotent and never throws, before or after run has finished", async () => {
    const worker = createWorker(() => undefined);
    expect(() => worker.kill()).not.toThrow();
    await worker.wait();
    expect(() => {
      worker.kill();
      worker.kill();
    }).not.toThrow();
  });

  it("causes no unhandled rejection when it fails and nobody calls wait()", async () => {
    createWorker(() => {
      throw new Error("sync, unobserved");
    });
    createWorker(async () => {
      throw new Error("async, unobserved");
    });
    await settle();
  });

  it("still rejects for callers of wait() after the unobserved period", async () => {
    const failure = new Error("late observer");
    const worker = createWorker(() => Promise.reject(failure));
    await settle();
    await expect(worker.wait()).rejects.toBe(failure);
  });

  it("throws a TypeError when run is not a function", () => {
    expect(() => createWorker(42 as unknown as () => void)).toThrow(TypeError);
    expect(() => createWorker(null as unknown as () => void)).toThrow(/run must be a function/);
  });

  it("is a Worker usable through the interface", async () => {
    const worker: Worker = createWorker(() => undefined);
    await worker.wait();
  });
});

describe("valueWorker", () => {
  it("holds its value", () => {
    const value = { port: 5432 };
    expect(valueWorker(value).value).toBe(value);
  });

  it("keeps undefined and null values", () => {
    expect(valueWorker(undefined).value).toBeUndefined();
    expect(valueWorker(null).value).toBeNull();
  });

  it("does not stop until killed", async () => {
    const worker = valueWorker("v");
    const waiting = track(worker.wait());
    await settle();
    expect(waiting.settled).toBe(false);
    worker.kill();
    await settle();
    expect(waiting.ok).toBe(true);
  });

  it("kill() is idempotent and never throws", async () => {
    const worker = valueWorker(1);
    worker.kill();
    worker.kill();
    await expect(worker.wait()).resolves.toBeUndefined();
  });

  it("returns the same promise from every wait()", () => {
    const worker = valueWorker(1);
    expect(worker.wait()).toBe(worker.wait());
  });

  it("infers the value's type", () => {
    const worker = valueWorker({ host: "db" });
    const host: string = worker.value.host;
    expect(host).toBe("db");
  });
});
