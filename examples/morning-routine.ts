/**
 * make-magic's sample task (getting out of bed and going to work) as work
 * units: each step is a manifold whose start does the step and returns
 * `valueWorker(result)`, so its dependents wait until it is done (rule 9) and
 * get its result. The coffee steps carry `when: "coffee"`: they are there only
 * when the requirements include "coffee", and without them `go_to_work` does
 * not list `drink_coffee` among its inputs at all.
 *
 * Morning 1 applies the routine with coffee; morning 2, on the same engine,
 * without: its plan uninstalls the coffee steps and replaces only the step
 * whose inputs changed. Both plans are printed, then the order the steps ran in,
 * and where two independent steps (breakfast and coffee) ran at the same time.
 *
 *   npx tsx examples/morning-routine.ts
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Engine, valueWorker, type Manifold, type Manifolds, type Plan, type StartContext, type Worker } from "../src/index.js";

const began = Date.now();
const at = (): string => `${String(Date.now() - began).padStart(4)} ms`;
const ran: string[] = [];
const busy = new Set<string>();
const overlaps: string[] = [];

/**
 * One step of the routine: does its work (here: waits `ms`), then holds its
 * result as a value worker until uninstalled. A step that fails would be
 * retried with the engine's backoff; its dependents wait meanwhile.
 */
function step(name: string, inputs: string[], ms: number, when?: string): Manifold<Worker & { readonly value: string }, string> {
  const unit = {
    inputs,
    ...(when === undefined ? {} : { when }),
    async start(context: StartContext) {
      busy.add(name);
      if (busy.size > 1) overlaps.push(`${[...busy].join(" and ")} at ${at()}`);
      console.log(`${at()}  start ${name}`);
      try {
        await sleep(ms, undefined, { signal: context.signal });
      } finally {
        busy.delete(name);
      }
      ran.push(name);
      return valueWorker(`${name} done`);
    },
    output: (worker: { readonly value: string }) => worker.value,
  };
  return unit;
}

// make-magic's doc/sample_items.json, as its QUICKSTART describes it.
const routine: Manifolds = {
  wake_up: step("wake_up", [], 20),
  get_up: step("get_up", ["wake_up"], 20),
  make_breakfast: step("make_breakfast", ["get_up"], 60),
  eat_breakfast: step("eat_breakfast", ["make_breakfast"], 20),
  make_coffee: step("make_coffee", ["get_up"], 40, "coffee"),
  drink_coffee: step("drink_coffee", ["make_coffee"], 20, "coffee"),
  go_to_work: step("go_to_work", ["eat_breakfast", "drink_coffee"], 10),
};

function show(title: string, plan: Plan): void {
  console.log(`\n${title} (generation ${plan.generation})`);
  for (const field of ["install", "uninstall", "replace", "keep", "restart", "skip"] as const) {
    if (plan[field].length > 0) console.log(`  ${field.padEnd(9)} ${plan[field].join(", ")}`);
  }
  for (const [name, reason] of Object.entries(plan.reasons)) console.log(`  why ${name}: ${reason}`);
}

const engine = new Engine({ bounceDelay: 0 });

for (const [title, requirements] of [
  ["Morning 1, with coffee", ["coffee"]],
  ["Morning 2, no coffee", []],
] as const) {
  ran.length = 0;
  overlaps.length = 0;
  show(`${title}: the plan`, engine.plan(routine, { requirements }));
  console.log("");
  await engine.apply(routine, { requirements });
  await engine.onIdle();
  console.log(`${title}: the steps finished in this order: ${ran.join(" -> ")}`);
  if (overlaps.length > 0) console.log(`  at the same time: ${overlaps.join("; ")}`);
  const report = engine.report();
  console.log(`  installed: ${Object.keys(report.manifolds).sort().join(", ")}`);
}

engine.kill();
await engine.wait();
