/**
 * The self manifold: `selfManifold(engine)` is a manifold whose worker is the
 * engine itself and whose output is `{ install, installAll, uninstall, report }`
 * bound to it. Manifolds that declare it as an input can change the engine
 * they run in: here a plugin loader installs and removes plugins at run time.
 *
 *   npx tsx examples/self-manifold.ts
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createWorker, Engine, manifold, resource, selfManifold, type EngineControls } from "../src/index.js";

const self = resource<EngineControls>("engine");

const engine = new Engine();
engine.install(self, selfManifold(engine));

/** A plugin: a worker that says hello, then idles until killed. */
const plugin = (name: string) =>
  manifold({
    inputs: [],
    start: () =>
      createWorker(async (signal) => {
        console.log(`  ${name}: started`);
        await sleep(60_000, undefined, { signal });
      }),
  });

/** What a "plugin directory" holds over time. */
const discoveries: { at: number; plugins: string[] }[] = [
  { at: 50, plugins: ["plugin-a", "plugin-b"] },
  { at: 150, plugins: ["plugin-b", "plugin-c"] }, // plugin-a removed, plugin-c added
];

engine.install(
  "plugin-loader",
  manifold({
    inputs: [self],
    start: (context) => {
      // The output outlives the start context: keep it, and use it from the worker.
      const controls = context.getResource(self);
      return createWorker(async (signal) => {
        let installed = new Set<string>();
        let elapsed = 0;
        for (const { at, plugins } of discoveries) {
          await sleep(at - elapsed, undefined, { signal });
          elapsed = at;
          const wanted = new Set(plugins);
          for (const name of installed) {
            if (!wanted.has(name)) {
              console.log(`plugin-loader: uninstalling ${name}`);
              await controls.uninstall(name); // resolves once its worker has stopped
            }
          }
          for (const name of wanted) {
            if (!installed.has(name)) {
              console.log(`plugin-loader: installing ${name}`);
              controls.install(name, plugin(name));
            }
          }
          installed = wanted;
        }
        await sleep(60_000, undefined, { signal });
      });
    },
  }),
);

await sleep(300);
const report = engine.report();
console.log("installed now:");
for (const [name, entry] of Object.entries(report.manifolds)) {
  console.log(`  ${name.padEnd(13)} ${entry.state}`);
}
// The engine never kills or waits for itself (and omits the self manifold's report).
engine.kill();
await engine.wait();
console.log(`engine ${engine.report().state}`);
