/**
 * Machination-style desired state: a JSON document says which services should
 * run and how; `manifoldsFrom` turns it into manifolds, each carrying the
 * entry it was built from as `config`. `engine.apply` makes the installed set
 * match. When the document changes (one service added, one removed, one
 * changed, the rest untouched) the second apply replaces only the changed
 * service and restarts only what depends on it: the untouched workers keep
 * running, although every manifold object (and every closure) is new.
 *
 *   npx tsx examples/reconcile.ts
 */
import { createWorker, Engine, type Manifold, type Manifolds, type Plan } from "../src/index.js";

interface Service {
  port: number;
  needs: string[];
}
interface Document {
  services: Record<string, Service>;
}

const before = `{
  "services": {
    "config":  { "port": 0,    "needs": [] },
    "db":      { "port": 5432, "needs": ["config"] },
    "cache":   { "port": 6379, "needs": ["config"] },
    "api":     { "port": 8080, "needs": ["db", "cache"] },
    "metrics": { "port": 9100, "needs": [] },
    "legacy":  { "port": 8000, "needs": ["db"] }
  }
}`;

/** A service worker: runs until the engine stops it. */
function serve(name: string, service: Service): ReturnType<typeof createWorker> {
  return createWorker(
    (signal) =>
      new Promise<void>((resolve) => {
        console.log(`  start ${name} on port ${service.port}`);
        signal.addEventListener("abort", () => resolve(), { once: true });
      }),
  );
}

/** The document as manifolds: new objects and closures on every call, with the entry as config. */
function manifoldsFrom(document: Document): Manifolds {
  const manifolds: Manifolds = {};
  for (const [name, service] of Object.entries(document.services)) {
    const built = { inputs: service.needs, config: service, start: () => serve(name, service) };
    manifolds[name] = built satisfies Manifold;
  }
  return manifolds;
}

function show(title: string, plan: Plan): void {
  console.log(`\n${title} (generation ${plan.generation})`);
  for (const field of ["install", "uninstall", "replace", "keep", "restart"] as const) {
    console.log(`  ${field.padEnd(9)} ${plan[field].join(", ") || "-"}`);
  }
  for (const [name, reason] of Object.entries(plan.reasons)) console.log(`  why ${name}: ${reason}`);
}

const engine = new Engine({ bounceDelay: 0 });

const first = manifoldsFrom(JSON.parse(before) as Document);
show("First apply: the plan", engine.plan(first));
await engine.apply(first);
await engine.onIdle();

// The document changes: "search" added, "legacy" removed, "cache" moved to
// another port; the rest is as it was (but parsed again into new objects).
const changed = JSON.parse(before) as Document;
changed.services.search = { port: 9200, needs: ["db"] };
delete changed.services.legacy;
(changed.services.cache as Service).port = 6380;

const second = manifoldsFrom(changed);
const plan = engine.plan(second);
show("Second apply: the plan", plan);
console.log("");
const done = await engine.apply(second, { ifGeneration: plan.generation });
await engine.onIdle();
console.log(`\napplied the plan of generation ${done.generation}; start counts now:`);
const report = engine.report();
for (const name of Object.keys(report.manifolds).sort()) {
  const { startCount } = report.manifolds[name] as { startCount: number };
  const note = done.install.includes(name)
    ? "new"
    : done.replace.includes(name)
      ? `replaced: ${done.reasons[name]}`
      : done.restart.includes(name)
        ? `restarted: ${done.reasons[name]}`
        : "untouched: its worker kept running";
  console.log(`  ${name.padEnd(8)} startCount ${startCount}  (${note})`);
}

engine.kill();
await engine.wait();
