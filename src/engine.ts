/**
 * The public Engine: a thin shell that checks arguments and hands the work to
 * the loop (`loop.ts`), which owns all state.
 */
import { resolveConfig, type EngineConfig } from "./config.js";
import { describeValue } from "./errors.js";
import { EngineLoop } from "./loop.js";
import { MetricsObserver } from "./metrics.js";
import { checkManifold, type Manifold, type Manifolds } from "./manifold.js";
import type { EngineReport } from "./report.js";
import { nameOf, type InputName, type Resource } from "./resource.js";
import type { Reporter, Worker } from "./workers.js";

/**
 * Keeps one worker running per installed manifold for as long as it lives:
 * restarts workers that fail, restarts dependents when an input's worker comes
 * or goes, hands start functions their inputs' outputs, and stops when a fatal
 * error arrives. An Engine is itself a {@link Worker} and a {@link Reporter},
 * so engines nest.
 *
 * Guarantees:
 * - never more than one worker (or start in flight) per manifold name;
 * - a start function is called only when none of its installed inputs has a
 *   start in flight, so a cold start calls each start function once, in
 *   dependency order;
 * - `kill()` stops dependents before their inputs; `wait()` settles only after
 *   every worker's `wait()` has settled (or its `stopTimeout` passed) and every
 *   timer is cleared;
 * - nothing thrown by user code escapes as an exception or unhandled rejection.
 */
export class Engine implements Worker, Reporter {
  readonly #loop: EngineLoop;

  /**
   * @param config - see {@link EngineConfig}; every field is optional.
   * @throws TypeError naming the first invalid field.
   */
  constructor(config?: EngineConfig) {
    const resolved = resolveConfig(config);
    this.#loop = new EngineLoop(resolved, this);
    if (resolved.metrics !== undefined) this.#loop.observe(new MetricsObserver(resolved.metrics, resolved.logger));
  }

  /**
   * Installs a manifold and starts its worker at once (in the next microtask,
   * so that a batch of synchronous installs starts in dependency order),
   * whether or not its inputs are installed or running.
   * @throws TypeError for a malformed name or manifold (the message names both);
   * AlreadyInstalledError; CycleError if its inputs close a cycle;
   * EngineStoppedError after `kill()`.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  install<T>(name: string | Resource<T>, manifold: Manifold<any, T>): void {
    this.#loop.install(checkManifold(name, manifold));
  }

  /**
   * Installs several manifolds, all or nothing: every manifold is checked, and
   * the group for cycles (with what is installed), before any is installed.
   * @throws as {@link Engine.install}; nothing is installed then.
   */
  installAll(manifolds: Manifolds): void {
    if (manifolds === null || typeof manifolds !== "object") {
      throw new TypeError(`installAll(manifolds): manifolds must be an object of name -> manifold (got ${describeValue(manifolds)})`);
    }
    this.#loop.installBatch(Object.keys(manifolds).map((name) => checkManifold(name, manifolds[name])));
  }

  /**
   * Removes a manifold: its start is aborted or its worker killed, and its
   * dependents are restarted without it. The name is free at once; a manifold
   * installed under it again starts only after this one's worker has stopped.
   * Resolves once its worker has stopped; at once if it is not installed.
   * Rejects with EngineStoppedError after `kill()`, TypeError for a bad name.
   * (A worker stuck past its stopTimeout keeps it pending until it does stop;
   * `wait()` reports the stuck worker meanwhile.)
   */
  uninstall(name: InputName): Promise<void> {
    const resolved = nameOf(name);
    if (resolved === undefined) {
      return Promise.reject(new TypeError(`uninstall(name): name must be a non-empty string or a resource token (got ${describeValue(name)})`));
    }
    return this.#loop.uninstall(resolved);
  }

  /** Asks the engine to stop every worker and itself. Idempotent, never throws, does not wait. */
  kill(): void {
    this.#loop.kill();
  }

  /**
   * Settles once the engine has stopped: every worker's `wait()` has settled
   * and every timer is cleared. Rejects with the worst fatal error (after the
   * config `filter`), or with ShutdownTimeoutError if some worker did not stop
   * within its stopTimeout; resolves otherwise. Returns the same promise every
   * time; it never causes an unhandled rejection by itself.
   */
  wait(): Promise<void> {
    return this.#loop.done;
  }

  /** A JSON-serialisable snapshot of the engine and every installed manifold. */
  report(): EngineReport {
    return this.#loop.report();
  }

  /** `kill()` then `wait()`, swallowing nothing: `await using engine = new Engine()`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.kill();
    return this.wait();
  }
}
