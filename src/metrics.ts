/**
 * The `metrics` config hook as a transition observer: it tells the user's
 * metrics of starts (and, where the hook has them, stops and bounces). A hook
 * that throws is reported and ignored: metrics never break the engine.
 */
import type { Logger } from "./config.js";
import { quote, toError } from "./errors.js";
import type { ManifoldNode } from "./node.js";
import { IgnoringObserver, type StopOutcome } from "./transitions.js";

/** What `EngineConfig.metrics` may offer; every method is optional. */
export interface MetricsHook {
  /** A worker was accepted as started. */
  recordStart?(name: string): void;
  /** A start or worker settled: how (see `StopOutcome`), with the error's message if any. */
  recordStop?(name: string, outcome: StopOutcome, error?: string): void;
  /** `name` was restarted because its input `input` started or stopped. */
  recordBounce?(name: string, input: string): void;
}

/** @internal */
export class MetricsObserver extends IgnoringObserver {
  readonly #hook: MetricsHook;
  readonly #logger: Logger;

  constructor(hook: MetricsHook, logger: Logger) {
    super();
    this.#hook = hook;
    this.#logger = logger;
  }

  override started(node: ManifoldNode): void {
    if (this.#hook.recordStart === undefined) return;
    try {
      this.#hook.recordStart(node.name);
    } catch (error) {
      this.#reportThrow("recordStart", node.name, error);
    }
  }

  override stopped(node: ManifoldNode, outcome: StopOutcome, error: Error | undefined): void {
    if (this.#hook.recordStop === undefined) return;
    try {
      if (error === undefined) this.#hook.recordStop(node.name, outcome);
      else this.#hook.recordStop(node.name, outcome, error.message);
    } catch (thrown) {
      this.#reportThrow("recordStop", node.name, thrown);
    }
  }

  override bounced(node: ManifoldNode, cause: ManifoldNode): void {
    if (this.#hook.recordBounce === undefined) return;
    try {
      this.#hook.recordBounce(node.name, cause.name);
    } catch (error) {
      this.#reportThrow("recordBounce", node.name, error);
    }
  }

  #reportThrow(method: string, name: string, error: unknown): void {
    this.#logger.warn(`metrics.${method}(${quote(name)}) threw: ${toError(error, method).message}`);
  }

}
