/**
 * One start attempt, from calling the start function to telling the loop how
 * it went. This code runs partly outside the loop (when the start function's
 * promise settles), so it changes no manifold state: it expires the context,
 * checks the result, attaches to the worker's `wait()` at once (so a failure is
 * never unhandled), and posts a message.
 */
import { describeValue, quote, toError } from "./errors.js";
import type { ManifoldNode } from "./node.js";
import { expireAttempt, freezeAttempt, type StartAttempt } from "./start-context.js";
import { notAWorker, type Worker } from "./workers.js";

/**
 * What a start attempt tells the loop. `stopped`, posted by the worker's
 * watch, carries no generation: a node starts again only after its worker's
 * stop has reached the loop, so it is always about the node's current worker.
 * @internal
 */
export type AttemptMessage =
  | { kind: "started"; node: ManifoldNode; generation: number; worker: Worker }
  | { kind: "startFailed"; node: ManifoldNode; generation: number; error: Error }
  | { kind: "stopped"; node: ManifoldNode; error: Error | undefined };

function isThenable(value: unknown): value is PromiseLike<unknown> {
  try {
    return (
      value !== null && (typeof value === "object" || typeof value === "function") && typeof (value as { then?: unknown }).then === "function"
    );
  } catch {
    return false;
  }
}

/**
 * Calls the node's start function with the attempt's context, and posts how
 * it went to `node.post`. `self` is the engine, whose own wait() is never
 * watched (rule 11).
 * @internal
 */
export function runStartAttempt(node: ManifoldNode, generation: number, startAttempt: StartAttempt, self: Worker): void {
  let result: unknown;
  try {
    result = node.manifold.start(startAttempt);
  } catch (error) {
    return node.post(settledMessage(node, generation, startAttempt, self, false, error));
  }
  if (isThenable(result)) {
    // Its inputs may change before it settles: from now on it reads them from a snapshot.
    freezeAttempt(startAttempt);
    // Closures only for a start that returns a promise: a synchronous one makes none.
    let settling: Promise<unknown>;
    try {
      settling = Promise.resolve(result);
    } catch (error) {
      // A promise whose `constructor` getter throws: Promise.resolve reads it (rule 10: never the loop's problem).
      return node.post(settledMessage(node, generation, startAttempt, self, false, error));
    }
    settling.then(
      (worker) => node.post(settledMessage(node, generation, startAttempt, self, true, worker)),
      (error: unknown) => node.post(settledMessage(node, generation, startAttempt, self, false, error)),
    );
  } else {
    node.post(settledMessage(node, generation, startAttempt, self, true, result));
  }
}

/** The start function settled (`ok`: with `value`; else threw or rejected with it): expires the context and says how it went. */
function settledMessage(
  node: ManifoldNode,
  generation: number,
  startAttempt: StartAttempt,
  self: Worker,
  ok: boolean,
  value: unknown,
): AttemptMessage {
  expireAttempt(startAttempt);
  try {
    return readResult(node, generation, ok, value, self);
  } catch (error) {
    // A result the engine cannot even inspect (a throwing getter, a revoked proxy).
    const message = `manifold ${quote(node.name)}: the start function's result could not be read: ${toError(error, "reading it").message}`;
    return { kind: "startFailed", node, generation, error: new TypeError(message, { cause: error }) };
  }
}

/** Turns what a start function settled with into a message; watches a valid worker's wait() at once. */
function readResult(node: ManifoldNode, generation: number, ok: boolean, value: unknown, self: Worker): AttemptMessage {
  if (!ok) return { kind: "startFailed", node, generation, error: toError(value, `the start function of manifold ${quote(node.name)}`) };
  const problem = notAWorker(value);
  if (problem !== undefined) {
    const error = new TypeError(`manifold ${quote(node.name)}: start returned ${problem}; it must return a Worker (an object with kill() and wait())`);
    return { kind: "startFailed", node, generation, error };
  }
  const worker = value as Worker;
  if (worker !== self) watchWorker(node, worker);
  return { kind: "started", node, generation, worker };
}

/**
 * The intrinsic `then`, taken when this module loads: a wait() promise's own
 * `then` (or a patched `Promise.prototype.then`) could call a handler twice,
 * and the watch relies on each being called at most once (see watchWorker).
 */
const promiseThen = Promise.prototype.then;

/**
 * Attaches to the worker's wait() at once, so its failure is never unhandled.
 * The handlers are bound to the node, not closures over it: two closures and
 * their context cost 168 B per running worker, two bound functions 96 B
 * (measured, layered 100k). The intrinsic `then` calls each at most once, so
 * a worker's stop reaches the loop once (see AttemptMessage).
 */
function watchWorker(node: ManifoldNode, worker: Worker): void {
  let waiting: unknown;
  try {
    waiting = worker.wait();
  } catch (error) {
    waiting = Promise.reject(error);
  }
  if (!isThenable(waiting)) {
    waiting = Promise.reject(new TypeError(`manifold ${quote(node.name)}: worker.wait() returned ${describeValue(waiting)}; it must return a promise`));
  }
  const stopped = workerStopped.bind(node);
  const failed = workerFailed.bind(node);
  try {
    promiseThen.call(Promise.resolve(waiting), stopped, failed);
  } catch (error) {
    // A promise whose `constructor` getter throws (both read it; neither attached anything then): the worker
    // counts as failed, not as a start that failed while its worker runs on unwatched.
    promiseThen.call(Promise.reject(error), stopped, failed);
  }
}

/** The watched worker's wait() resolved (`this` is its node). */
function workerStopped(this: ManifoldNode): void {
  this.post({ kind: "stopped", node: this, error: undefined });
}

/** The watched worker's wait() rejected (`this` is its node). */
function workerFailed(this: ManifoldNode, error: unknown): void {
  this.post({ kind: "stopped", node: this, error: toError(error, `the worker of manifold ${quote(this.name)}`) });
}
