/**
 * Nesting engines: an Engine is a Worker and a Reporter, so a manifold can
 * start a whole child engine. Its manifolds get the parent's resources through
 * the start function; its report appears inside the parent's; killing the
 * parent kills the child; a child that stops with a fatal error is, to the
 * parent, a failed worker to restart.
 *
 *   npx tsx examples/nesting.ts
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createWorker, Engine, errorIs, manifold, resource, valueWorker } from "../src/index.js";

interface ModelConfig {
  readonly model: string;
}
const config = resource<ModelConfig>("config");

class ModelRemoved extends Error {
  override name = "ModelRemoved";
}

const parent = new Engine({ errorDelay: 100 });
parent.install(config, manifold({ inputs: [], start: () => valueWorker({ model: "prod" }), output: (worker) => worker.value }));

let childEngines = 0;
let latestChild: Engine | undefined;
parent.install(
  "model-workers",
  manifold({
    inputs: [config],
    start: (context) => {
      const { model } = context.getResource(config); // the parent's resource, handed down
      const generation = ++childEngines;
      // The child stops (fatally) when its model is removed; the parent sees
      // that as this worker failing, and restarts a fresh child engine.
      const child = new Engine({ isFatal: (error) => errorIs(error, ModelRemoved) });
      child.installAll({
        firewaller: manifold({ inputs: [], start: () => createWorker((signal) => sleep(60_000, undefined, { signal })) }),
        undertaker: manifold({
          inputs: ["firewaller"],
          start: () =>
            createWorker(async (signal) => {
              await sleep(150, undefined, { signal });
              if (generation === 1) throw new ModelRemoved(`model ${model} was removed`);
              await sleep(60_000, undefined, { signal });
            }),
        }),
      });
      child.wait().catch((error: unknown) => console.log(`child engine #${generation} stopped: ${String(error)}`));
      latestChild = child;
      return child;
    },
  }),
);

await sleep(80);
console.log(`--- the parent's report entry for "model-workers" (the child engine's whole report is nested under its "report"):`);
console.log(JSON.stringify(parent.report().manifolds["model-workers"], null, 2));

await sleep(300);
const again = parent.report().manifolds["model-workers"];
console.log(`--- after the first child failed: ${childEngines} child engines started; model-workers is ${again?.state}, starts=${again?.startCount}`);

parent.kill(); // kills the child engine, which stops its own workers first
await parent.wait();
console.log(`--- parent ${parent.report().state}, latest child ${latestChild?.report().state}`);
