/**
 * The hand-written yardstick: the start-up a user writes instead of using an
 * engine, on the same graph and with the same start functions, so that
 * "engine / hand-written" says what the engine costs over doing it by hand.
 *
 * What it does, as a careful user would write it:
 * - puts the manifolds in a `Map` by name;
 * - computes topological layers from each manifold's `inputs`, by name
 *   (Kahn's algorithm: a count of unmet inputs per name, a list of
 *   dependents per name), refusing an unknown input or a cycle. This is part
 *   of their start-up, so it is timed;
 * - starts the layers in order, each with
 *   `await Promise.all(layer.map(async (name) => ...))`: a context per start
 *   (the name, one shared `getResource` and `hasResource` reading a `Map` of
 *   outputs, no-op `heartbeat` and `progress`), `await start(context)`, a
 *   `catch` handler on the worker's `wait()` so that a failure is never an
 *   unhandled rejection, and the worker and its output kept in `Map`s;
 * - resolves once every worker has started;
 * - stops in reverse layer order, each layer with
 *   `await Promise.all(layer.map((name) => { worker.kill(); return worker.wait(); }))`.
 *
 * What it leaves out, although the engine does it: checking manifolds and
 * refusing duplicates, rule 9 for starts that arrive in any order (it gets
 * the whole graph at once), starts that fail or are aborted, restarts and
 * backoff, bouncing dependents when an input stops, install and uninstall
 * while running, reports, events, heartbeats, stuck-worker timeouts, and a
 * stop that survives a worker whose `wait()` rejects (it rejects with the
 * first such error, and may leave later layers running). A failed worker is
 * only recorded in `failures`, never restarted.
 *
 * It is neither a strawman nor a floor: it pays what such code really pays
 * (a promise per start and per layer, an `await` per start, `Map`s by name),
 * and no more (the context's functions are shared, not closures per start).
 * The floor (workload.ts) is the least anything can do; the reference
 * (reference.ts) the least an engine keeping the contract must do.
 */
import type { Manifold, Manifolds, StartContext, Worker } from "../src/index.js";
import type { Graph } from "./graphs.js";

/** A hand-written start-up that has started every worker; `stopByHand` stops it. */
export interface HandStarted {
  /** Names by topological layer: layer 0 has no inputs, each later one only inputs from earlier layers. */
  readonly layers: readonly (readonly string[])[];
  readonly workers: ReadonlyMap<string, Worker>;
  readonly outputs: ReadonlyMap<string, unknown>;
  /** Workers whose `wait()` rejected, with the error; nothing restarts them. */
  readonly failures: { name: string; error: unknown }[];
}

/** The bench's manifolds name their inputs with plain strings (no `Resource` tokens). */
type NamedManifold = Manifold<Worker, unknown, string>;

const noop = (): void => undefined;

/**
 * Starts every manifold of `graph` (definitions from `manifolds`), layer by
 * layer; resolves once all have started. Rejects if an input names no
 * manifold, the inputs form a cycle, or a start throws.
 */
export async function startByHand(graph: Graph, manifolds: Manifolds): Promise<HandStarted> {
  const byName = new Map<string, NamedManifold>();
  for (const name of graph.names) byName.set(name, manifolds[name] as NamedManifold);
  const layers = topologicalLayers(byName);

  const outputs = new Map<string, unknown>();
  const workers = new Map<string, Worker>();
  const failures: { name: string; error: unknown }[] = [];
  const signal = new AbortController().signal;
  const getResource = ((input: string): unknown => outputs.get(input)) as StartContext<string>["getResource"];
  const hasResource = (input: string): boolean => outputs.has(input);

  for (const layer of layers) {
    await Promise.all(
      layer.map(async (name) => {
        const manifold = byName.get(name) as NamedManifold;
        const worker = await manifold.start({ name, signal, getResource, hasResource, heartbeat: noop, progress: noop });
        worker.wait().catch((error: unknown) => failures.push({ name, error }));
        workers.set(name, worker);
        outputs.set(name, manifold.output?.(worker));
      }),
    );
  }
  return { layers, workers, outputs, failures };
}

/** Kills the workers in reverse layer order, a layer at a time; resolves once every one has stopped. */
export async function stopByHand(started: HandStarted): Promise<void> {
  for (let i = started.layers.length - 1; i >= 0; i--) {
    await Promise.all(
      (started.layers[i] as readonly string[]).map((name) => {
        const worker = started.workers.get(name) as Worker;
        worker.kill();
        return worker.wait();
      }),
    );
  }
}

/** Kahn's algorithm by name, a layer at a time. */
function topologicalLayers(byName: ReadonlyMap<string, NamedManifold>): string[][] {
  const unmet = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  let layer: string[] = [];
  for (const [name, manifold] of byName) {
    unmet.set(name, manifold.inputs.length);
    if (manifold.inputs.length === 0) layer.push(name);
    for (const input of manifold.inputs) {
      if (!byName.has(input)) throw new Error(`hand-written start: ${name} uses ${input}, which is not defined`);
      const list = dependents.get(input);
      if (list === undefined) dependents.set(input, [name]);
      else list.push(name);
    }
  }
  const layers: string[][] = [];
  let placed = 0;
  while (layer.length > 0) {
    layers.push(layer);
    placed += layer.length;
    const next: string[] = [];
    for (const name of layer) {
      for (const dependent of dependents.get(name) ?? []) {
        const left = (unmet.get(dependent) as number) - 1;
        unmet.set(dependent, left);
        if (left === 0) next.push(dependent);
      }
    }
    layer = next;
  }
  if (placed !== byName.size) throw new Error(`hand-written start: ${byName.size - placed} manifolds are in or behind a cycle`);
  return layers;
}
