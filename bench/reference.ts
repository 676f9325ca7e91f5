/**
 * The reference: the least any engine keeping this contract must do per
 * manifold, with everything else left out, so that the cold start's
 * engine/floor ratio can be read against what is possible at all.
 *
 * What it does, because no engine can skip it:
 * - a entry per manifold, found by name (a `Map`);
 * - each input resolved to its entry, and the reverse edge kept, since an
 *   input that comes or goes must reach its dependents;
 * - a context per start, whose `getResource` reads a snapshot of the inputs'
 *   workers and calls their manifolds' `output`;
 * - a handler on every worker's `wait()` the moment it exists (a failure
 *   must never go unnoticed or unhandled);
 * - a message per start and per stop, handled in order by one loop.
 *
 * What it leaves out, although the engine must do it: checking manifolds,
 * refusing duplicates and cycles, rule 9 (it relies on being given a
 * topological order and synchronous starts), phases, restarts, reports,
 * stop timeouts, uninstall, shutdown. It is not an engine: it only starts.
 */
import type { Manifold, Manifolds, StartContext, Worker } from "../src/index.js";
import type { Graph } from "./graphs.js";

interface Entry {
  readonly name: string;
  readonly manifold: Manifold;
  readonly inputs: readonly string[];
  inputEntries: Entry[];
  readonly dependents: Entry[];
  worker: Worker | undefined;
  attempt: number;
}

interface Message {
  entry: Entry;
  attempt: number;
  worker?: Worker | undefined;
  error?: unknown;
}

const signal = new AbortController().signal;

/** Installs every manifold in index (topological) order, then starts them all; resolves once each has started. */
export function runReference(graph: Graph, manifolds: Manifolds): Promise<void> {
  const entries = new Map<string, Entry>();
  const queue: Entry[] = [];
  for (const name of graph.names) {
    const manifold = manifolds[name] as Manifold;
    const entry: Entry = { name, manifold, inputs: manifold.inputs as string[], inputEntries: [], dependents: [], worker: undefined, attempt: 0 };
    entries.set(name, entry);
    const inputEntries = new Array<Entry>(entry.inputs.length);
    for (let i = 0; i < entry.inputs.length; i++) {
      const input = entries.get(entry.inputs[i] as string) as Entry;
      input.dependents.push(entry);
      inputEntries[i] = input;
    }
    entry.inputEntries = inputEntries;
    queue.push(entry);
  }
  // Starts run in a microtask, after the installs, as in the engine.
  return new Promise<void>((resolve, reject) =>
    queueMicrotask(() => {
      const started = startAll(queue);
      if (started === queue.length) resolve();
      else reject(new Error(`reference: ${started} of ${queue.length} started (its starts must be synchronous)`));
    }),
  );
}

/** Calls each start function in queue order; returns how many workers started. */
function startAll(queue: readonly Entry[]): number {
  const messages: Message[] = [];
  let started = 0;
  const post = (message: Message): void => {
    messages.push(message);
  };
  for (const entry of queue) {
    start(entry, post);
    for (let message = messages.pop(); message !== undefined; message = messages.pop()) {
      if (message.entry.attempt !== message.attempt) continue;
      if (message.worker !== undefined) {
        message.entry.worker = message.worker;
        started++;
      } else {
        message.entry.worker = undefined;
      }
    }
  }
  return started;
}

function start(entry: Entry, post: (message: Message) => void): void {
  const attempt = ++entry.attempt;
  const inputs = entry.inputEntries;
  const snapshot = new Array<unknown>(2 * inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i] as Entry;
    snapshot[2 * i] = input.worker;
    snapshot[2 * i + 1] = input.manifold;
  }
  const context: StartContext = {
    name: entry.name,
    signal,
    heartbeat: () => undefined,
    progress: () => undefined,
    getResource: ((input: string): unknown => {
      const index = entry.inputs.indexOf(input);
      return (snapshot[2 * index + 1] as Manifold).output?.(snapshot[2 * index] as Worker);
    }) as StartContext["getResource"],
    hasResource: (input) => snapshot[2 * entry.inputs.indexOf(input as string)] !== undefined,
  };
  const worker = entry.manifold.start(context) as Worker;
  worker.wait().then(
    () => post({ entry, attempt }),
    (error: unknown) => post({ entry, attempt, error }),
  );
  post({ entry, attempt, worker });
}
