/**
 * enotify's site generators, supervised: a `controller` hands out sites to
 * render and keeps the generation table (when each status message arrived);
 * three `generator-N` manifolds ask it for work, render, and report each
 * phase with `context.progress(...)` (GENERATION_START, the bug list
 * download, the page rendering, GENERATION_END) and each page with
 * `context.heartbeat()`.
 *
 *   controller ─► generator-1, generator-2, generator-3
 *
 * Two of them misbehave, as enotify's "rogue generators" do:
 * - generator-2 hangs on its second site (the bug list download never
 *   returns). It stops reporting, so after `heartbeatTimeout` the engine kills
 *   it as hung (a HeartbeatTimeoutError), the controller puts its site back
 *   in the queue, and the engine restarts it after `errorDelay`: the site is
 *   rendered again.
 * - generator-3 is broken (its templates are missing): its start fails at
 *   once, every time. After more than `restartLimit.count` failures within
 *   `restartLimit.within` the engine stops restarting it (quarantined) and
 *   says so. Once the templates are back, an operator calls
 *   `engine.restart("generator-3")`, which releases it.
 *
 * It prints the report's progress column each time it changes, and the
 * events that matter, then exits 0 once every site is rendered.
 *
 * Time is simulated with the testing kit's TestClock (the engine and the
 * generators' pauses both run on it), so the run is the same every time and
 * takes well under a second; without `clock` the same code runs in real time.
 *
 *   npx tsx examples/site-generator.ts
 */
import { createWorker, Engine, HeartbeatTimeoutError, manifold, resource, type EngineEvent, type StartContext } from "../src/index.js";
import { TestClock } from "../src/testing.js";

const clock = new TestClock();
const began = clock.now();
const stamp = (): string => `[${((clock.now() - began) / 1000).toFixed(1).padStart(5)}s]`;
const say = (line: string): void => console.log(`${stamp()} ${line}`);

/** Waits `ms` on `clock`; rejects with the signal's reason once it is aborted. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = clock.setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Never resolves: a download that hangs. Only an abort ends it. */
function hang(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
}

// ---------------------------------------------------------------- the controller

/** What generators get from the controller (enotify's ControllerCommunicator). */
interface Controller {
  /** The next site to render, or undefined when there is none left. */
  siteToGenerate(generator: string): string | undefined;
  /** Records a status message in the generation table. */
  status(generator: string, site: string, message: string): void;
  /** The generator finished `site`. */
  finished(generator: string, site: string): void;
  /** The generator stopped before finishing `site`: render it again. */
  abandoned(generator: string, site: string): void;
}

const SITES = ["bugs.alpha", "bugs.beta", "bugs.gamma", "bugs.delta", "bugs.epsilon", "bugs.zeta", "bugs.eta", "bugs.theta"];
const queue = [...SITES];
const rendered = new Map<string, string>(); // site -> generator
/** The generation table: one row per attempt, one column per status message (enotify's Generation object). */
const generations: { site: string; generator: string; columns: Record<string, number> }[] = [];

const controllerToken = resource<Controller>("controller");

const controller = manifold({
  inputs: [],
  start: () => {
    const api: Controller = {
      siteToGenerate: (generator) => {
        const site = queue.shift();
        if (site !== undefined) generations.push({ site, generator, columns: {} });
        return site;
      },
      status: (generator, site, message) => {
        // The latest attempt of this generator at this site (a site may be attempted again).
        for (let i = generations.length - 1; i >= 0; i--) {
          const row = generations[i];
          if (row?.site === site && row.generator === generator) {
            row.columns[message] = clock.now();
            return;
          }
        }
      },
      finished: (generator, site) => {
        rendered.set(site, generator);
      },
      abandoned: (generator, site) => {
        say(`controller: ${generator} abandoned ${site}; it goes back to the front of the queue`);
        queue.unshift(site);
      },
    };
    return Object.assign(createWorker((signal) => hang(signal).catch(() => undefined)), { api });
  },
  output: (worker) => worker.api,
});

// ---------------------------------------------------------------- the generators

/** Simulated failures: generator-2 hangs on its second site; generator-3's templates are missing until fixed. */
const faults = { hangOnSecondSite: new Set(["generator-2"]), templatesMissing: new Set(["generator-3"]) };
const sitesStarted = new Map<string, number>();
/** The HeartbeatTimeoutErrors the generators' filter saw. */
const hung: HeartbeatTimeoutError[] = [];

function generator(name: string) {
  return manifold({
    inputs: [controllerToken],
    // Silent for 3 s (no page rendered, no phase reported): hung.
    heartbeatTimeout: 3000,
    // More than 3 failures within 20 s: stop restarting, and say so.
    restartLimit: { count: 3, within: 20_000 },
    filter: (error: unknown) => {
      if (error instanceof HeartbeatTimeoutError) hung.push(error);
      return error;
    },
    start: (context: StartContext<typeof controllerToken>) => {
      if (faults.templatesMissing.has(name)) throw new Error(`${name}: template directory /var/enotify/templates is missing`);
      const ctl = context.getResource(controllerToken);
      // heartbeat and progress stay valid for the worker's whole life (getResource does not).
      const { heartbeat, progress } = context;
      return createWorker(async (signal) => {
        for (let site = ctl.siteToGenerate(name); site !== undefined; site = ctl.siteToGenerate(name)) {
          const nth = (sitesStarted.get(name) ?? 0) + 1;
          sitesStarted.set(name, nth);
          // Each phase goes to the engine (the report's progress column) and to the controller's generation table.
          const status = (message: string): void => {
            progress(message, { site });
            ctl.status(name, site as string, message);
          };
          try {
            status("GENERATION_START");
            status("GENERATION_BUG_LIST_DOWNLOAD_START");
            if (nth === 2 && faults.hangOnSecondSite.delete(name)) await hang(signal); // the rogue download
            await pause(1500, signal);
            status("GENERATION_BUG_LIST_DOWNLOAD_END");
            status("GENERATION_RENDERING_PAGES_START");
            for (let page = 0; page < 10; page++) {
              await pause(400, signal);
              heartbeat(); // one page done
            }
            status("GENERATION_RENDERING_PAGES_END");
            status("GENERATION_END");
            ctl.finished(name, site);
          } catch (error) {
            ctl.abandoned(name, site);
            throw error;
          }
        }
        // No work left: idle (still beating) until stopped.
        while (!signal.aborted) {
          heartbeat();
          await pause(1000, signal).catch(() => undefined);
        }
      });
    },
  });
}

// ---------------------------------------------------------------- the engine

const engine = new Engine({ clock, jitter: 0, errorDelay: 1000, backoffFactor: 1.5, bounceDelay: 10 });
const GENERATORS = ["generator-1", "generator-2", "generator-3"];

engine.events.subscribe((event: EngineEvent) => {
  switch (event.type) {
    case "heartbeat-missed":
      say(`${event.name}: no heartbeat for ${event.silentFor} ms (heartbeatTimeout ${event.timeout} ms); action: ${event.action}`);
      break;
    case "stopped":
      if (event.error !== undefined && GENERATORS.includes(event.name)) say(`${event.name} stopped: ${event.error.split(";")[0]}`);
      break;
    case "quarantined":
      say(`${event.name} QUARANTINED after ${event.failures} failures within its restartLimit; no more automatic restarts`);
      break;
    case "released":
      say(`${event.name} released from quarantine (by ${event.by})`);
      break;
  }
});

engine.install(controllerToken, controller);
for (const name of GENERATORS) engine.install(name, generator(name));

/** The report's progress column, one cell per generator. */
function progressColumn(): string {
  const manifolds = engine.report().manifolds;
  return GENERATORS.map((name) => {
    const entry = manifolds[name];
    if (entry?.quarantined !== undefined) return `${name}: (quarantined)`;
    const progress = entry?.progress;
    if (progress === undefined || entry?.state !== "started") return `${name}: (${entry?.state ?? "absent"})`;
    const site = (progress.details as { site?: string } | undefined)?.site ?? "";
    return `${name}: ${progress.message.replace("GENERATION_", "")} ${site}`;
  }).join(" | ");
}

let shown = "";
const LIMIT = 10 * 60_000; // simulated; a run that needs more has gone wrong
let fixed = false;
while (rendered.size < SITES.length) {
  if (clock.now() - began > LIMIT) throw new Error(`not every site was rendered within ${LIMIT / 1000} simulated seconds`);
  await clock.advance(100);
  const column = progressColumn();
  if (column !== shown) say((shown = column));
  // The operator notices the quarantine, restores the templates and restarts the generator.
  if (!fixed && engine.report().manifolds["generator-3"]?.quarantined !== undefined && clock.now() - began >= 12_000) {
    fixed = true;
    faults.templatesMissing.delete("generator-3");
    say("operator: templates restored; engine.restart(\"generator-3\")");
    const restarted = engine.restart("generator-3");
    await clock.advance(10); // bounceDelay
    await restarted;
  }
}

// ---------------------------------------------------------------- the result

engine.kill();
await engine.wait();
const rerun = generations.filter((g) => g.columns["GENERATION_END"] === undefined);
console.log(`\nall ${SITES.length} sites rendered in ${((clock.now() - began) / 1000).toFixed(1)} simulated seconds:`);
for (const site of SITES) console.log(`  ${site.padEnd(13)} by ${rendered.get(site)}`);
for (const g of rerun) {
  const last = Object.entries(g.columns).sort((a, b) => a[1] - b[1]).at(-1)?.[0];
  console.log(`  abandoned attempt: ${g.site} by ${g.generator} (last status ${last}), rendered again by ${rendered.get(g.site)}`);
}
for (const error of hung) console.log(`\n${error.manifoldName} failed with ${error.name} (timeout ${error.timeout} ms, silent for ${error.silentFor} ms):\n  ${error.message}`);
