/**
 * What runs in every manifold: a start function that gets each input's output
 * (as real start functions do) and returns a trivial worker whose output is a
 * number. The work is deliberately tiny, so what is measured is the engine.
 *
 * A `Probe` counts start calls per manifold and keeps each manifold's latest
 * worker, so that a benchmark can make one fail and check who restarted.
 */
import type { EngineConfig, Manifold, Manifolds, StartContext, Worker } from "../src/index.js";
import type { Graph } from "./graphs.js";
import { Tally, type CountingClock } from "./measure.js";

/** A worker that holds a number and runs until killed, or until `fail` makes it exit by itself. */
export class BenchWorker implements Worker {
  readonly value: number;
  readonly #done: Promise<void>;
  #stop!: () => void;
  #fail!: (error: Error) => void;

  constructor(value: number) {
    this.value = value;
    this.#done = new Promise<void>((resolve, reject) => {
      this.#stop = resolve;
      this.#fail = reject;
    });
  }

  kill(): void {
    this.#stop();
  }

  wait(): Promise<void> {
    return this.#done;
  }

  /** Exit with `error`, as a worker that hits a problem does. */
  fail(error: Error): void {
    this.#fail(error);
  }
}

export class Probe {
  /** Start calls per manifold, by index; zero it to count one phase. */
  readonly calls: Int32Array;
  /** Start calls in all. */
  readonly startCalls = new Tally();
  /** Successful starts, as the engine reports them through `metrics.recordStart`. */
  readonly started = new Tally();
  /** Each manifold's most recent worker. */
  readonly workers: (BenchWorker | undefined)[];

  constructor(size: number) {
    this.calls = new Int32Array(size);
    this.workers = new Array<BenchWorker | undefined>(size).fill(undefined);
  }

  /** The `metrics` option of EngineConfig. */
  readonly metrics = { recordStart: (): void => this.started.hit() };

  /** Counts a start call of manifold `index`. */
  called(index: number): void {
    this.calls[index] = (this.calls[index] as number) + 1;
    this.startCalls.hit();
  }

  /** Indices whose call count is not `expected(index)`; at most `limit` of them. */
  mismatches(expected: (index: number) => number, limit = 5): number[] {
    const wrong: number[] = [];
    for (let i = 0; i < this.calls.length && wrong.length < limit; i++) {
      if (this.calls[i] !== expected(i)) wrong.push(i);
    }
    return wrong;
  }
}

/**
 * The config every measured engine runs with: no restart delay or jitter
 * (restarts go through the ready queue), `clock` counting its timers (its
 * `stopTimeout` is the engine's), `probe` counting successful starts.
 */
export function measuredConfig(probe: Probe, clock: CountingClock): EngineConfig {
  return { errorDelay: 0, bounceDelay: 0, jitter: 0, stopTimeout: clock.stopTimeout, clock, metrics: probe.metrics };
}

/** The engine's default stopTimeout, which the measured engines (and the reference's stop) keep: run.ts's first. */
export const STOP_TIMEOUT = 30_000;

/** Keeps values small and finite however deep the graph (a sum would overflow to Infinity). */
export const MODULUS = 1_000_003;

/** The graph's manifolds, by name, in index order; each reports to `probe`. */
export function makeManifolds(graph: Graph, probe: Probe): Manifolds {
  const manifolds: Manifolds = {};
  graph.names.forEach((name, index) => {
    const inputs = (graph.inputs[index] as readonly number[]).map((input) => graph.names[input] as string);
    const m: Manifold<BenchWorker, number> = {
      inputs,
      start(context: StartContext): BenchWorker {
        probe.called(index);
        let value = 1;
        for (const input of inputs) value += context.getResource(input) as number;
        const worker = new BenchWorker(value % MODULUS);
        probe.workers[index] = worker;
        return worker;
      },
      output: (worker) => worker.value,
    };
    manifolds[name] = m;
  });
  return manifolds;
}

/**
 * The floor: the same start functions called once each in index (topological)
 * order, with a context that is a map lookup and nothing else. No engine can
 * start a graph faster than this; the benchmark reports engine / floor.
 */
export function runFloor(graph: Graph, manifolds: Manifolds): void {
  const outputs = new Map<string, unknown>();
  const signal = new AbortController().signal;
  const getResource = (input: unknown): unknown => outputs.get(input as string);
  const hasResource = (input: unknown): boolean => outputs.has(input as string);
  for (const name of graph.names) {
    const m = manifolds[name] as Manifold<BenchWorker, number>;
    const context = { name, signal, getResource, hasResource } as StartContext;
    const worker = m.start(context) as BenchWorker;
    outputs.set(name, m.output?.(worker));
  }
}
