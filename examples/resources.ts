/**
 * Resources: a manifold's `output` is what its dependents get from
 * `getResource`. A typed token, `resource<Db>("db")`, carries the type with
 * the name, so `getResource(db)` is a `Db` without a cast, and a manifold
 * installed under the token must output a `Db`.
 *
 *   npx tsx examples/resources.ts
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createWorker, Engine, manifold, resource, valueWorker, type Worker } from "../src/index.js";

interface Db {
  query(sql: string): string[];
}
interface Users {
  names(): string[];
}

// Tokens: declare them once, next to the types, and share them.
const db = resource<Db>("db");
const users = resource<Users>("users");

/** A worker that owns a fake database handle. */
class DbWorker implements Worker {
  readonly handle: Db = { query: (sql) => (sql.includes("users") ? ["ada", "grace", "edsger"] : []) };
  #stop!: () => void;
  readonly #stopped = new Promise<void>((resolve) => (this.#stop = resolve));
  kill(): void {
    this.#stop();
  }
  wait(): Promise<void> {
    return this.#stopped;
  }
}

const engine = new Engine();

// `output` turns the worker into what dependents see. Expose a narrow
// interface, not the worker itself: the engine owns the worker's lifetime.
engine.install(
  db,
  manifold({
    inputs: [],
    start: () => new DbWorker(),
    output: (worker) => worker.handle, // must be a Db: the token says so
  }),
);

// A resource can be any value: valueWorker(value) holds it until killed.
engine.install(
  users,
  manifold({
    inputs: [db],
    start: (context) => {
      const handle = context.getResource(db); // typed: Db
      return valueWorker<Users>({ names: () => handle.query("select name from users") });
    },
    output: (worker) => worker.value,
  }),
);

engine.install(
  "greeter",
  manifold({
    inputs: [users, "metrics"], // "metrics" is optional: it is never installed here
    start: (context) => {
      // Take resources while start runs; the context expires when start settles.
      const names = context.getResource(users).names(); // typed: Users
      const withMetrics = context.hasResource("metrics"); // true only if its worker is running
      return createWorker(() => {
        console.log(`greeter: hello ${names.join(", ")} (metrics ${withMetrics ? "on" : "off"})`);
      });
    },
  }),
);

await sleep(100);

// Start order: db, then users, then greeter, each started once (inputs with a
// start in flight hold their dependents back).
for (const [name, entry] of Object.entries(engine.report().manifolds)) {
  console.log(`${name.padEnd(8)} ${entry.state.padEnd(8)} starts=${entry.startCount} resourceLog=${JSON.stringify(entry.resourceLog ?? [])}`);
}

// Restarting an input restarts its dependents: uninstall and reinstall db.
await engine.uninstall(db); // resolves once db's worker has stopped
await sleep(50);
const { state, error } = engine.report().manifolds["users"] ?? {};
console.log(`after uninstalling db: users is ${state} (${error})`);
engine.install(db, manifold({ inputs: [], start: () => new DbWorker(), output: (worker) => worker.handle }));
await sleep(100);
console.log(`after reinstalling db: users started ${engine.report().manifolds["users"]?.startCount} times`);

await engine[Symbol.asyncDispose](); // kill() then wait()
