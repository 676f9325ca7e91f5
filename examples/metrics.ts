/**
 * Metrics: the engine's `metrics` hook wired to Prometheus with prom-client
 * (a dependency of your application, not of manifold-engine). Counters of
 * starts, stops by outcome and bounces, a histogram of how long workers ran,
 * and a gauge of manifolds per state read from `engine.report()` at scrape
 * time. It serves `/metrics` on 127.0.0.1 (a free port), scrapes itself
 * once, prints what Prometheus would read, and exits.
 *
 *   npx tsx examples/metrics.ts
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { createWorker, Engine, manifold, valueWorker, type MetricsHook, type StopOutcome } from "../src/index.js";

// ---------------------------------------------------------------- the metrics

// A registry of our own: nothing else in the process (default metrics, other libraries) is mixed in.
const registry = new Registry();

const starts = new Counter({
  name: "manifold_starts_total",
  help: "Workers the engine accepted as started, by manifold.",
  labelNames: ["manifold"] as const,
  registers: [registry],
});
const stops = new Counter({
  name: "manifold_stops_total",
  help: "Starts and workers that ended, by manifold and outcome (completed, missing, bounce, uninstall, error, killed, fatal).",
  labelNames: ["manifold", "outcome"] as const,
  registers: [registry],
});
const bounces = new Counter({
  name: "manifold_bounces_total",
  help: "Restarts of a manifold because one of its inputs started or stopped, by manifold and input.",
  labelNames: ["manifold", "input"] as const,
  registers: [registry],
});
const runTime = new Histogram({
  name: "manifold_worker_run_seconds",
  help: "How long each worker ran, from started to stopped, by manifold.",
  labelNames: ["manifold"] as const,
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300],
  registers: [registry],
});

/**
 * The hook. Every method is optional and called synchronously by the engine
 * as the change happens; one that throws is logged and ignored, so a metrics
 * bug never stops a worker. Keep them cheap: they run inside the engine's loop.
 */
const runningSince = new Map<string, number>();
const metrics: MetricsHook = {
  recordStart(name) {
    starts.inc({ manifold: name });
    runningSince.set(name, performance.now());
  },
  recordStop(name: string, outcome: StopOutcome) {
    stops.inc({ manifold: name, outcome });
    // A start that failed never ran; only a worker that started has a run time.
    const since = runningSince.get(name);
    if (since === undefined) return;
    runningSince.delete(name);
    runTime.observe({ manifold: name }, (performance.now() - since) / 1000);
  },
  recordBounce(name, input) {
    bounces.inc({ manifold: name, input });
  },
};

// ---------------------------------------------------------------- an engine to watch

const engine = new Engine({ metrics, errorDelay: 20, bounceDelay: 5, backoffFactor: 0, jitter: 0 });

// A gauge read at scrape time from the report's counts (manifolds per state).
new Gauge({
  name: "manifold_engine_manifolds",
  help: "Installed manifolds, by state.",
  labelNames: ["state"] as const,
  registers: [registry],
  collect() {
    for (const [state, count] of Object.entries(engine.report().counts)) this.set({ state }, count);
  },
});

// A connection that drops three times (after 30 ms each), then stays up; and a worker that uses it.
let dials = 0;
engine.install(
  "connection",
  manifold({
    inputs: [],
    start: () => {
      const dial = ++dials;
      return createWorker(async (signal) => {
        if (dial > 3) return sleep(60_000, undefined, { signal }).catch(() => undefined); // up until killed
        await sleep(30, undefined, { signal });
        throw new Error(`connection ${dial} reset by peer`);
      });
    },
    output: () => dials,
  }),
);
engine.install(
  "uploader",
  manifold({ inputs: ["connection"], start: (context) => valueWorker(context.getResource("connection")) }),
);

// Until the connection has failed three times and both manifolds run again.
for (let waited = 0; !(dials > 3 && engine.report().counts.started === 2); waited += 10) {
  if (waited > 5_000) throw new Error(`the connection did not settle: ${JSON.stringify(engine.report().counts)}`);
  await sleep(10);
}

// ---------------------------------------------------------------- serve /metrics, scrape it once

const server = createServer((request, response) => {
  if (request.url !== "/metrics") {
    response.writeHead(404).end("try /metrics\n");
    return;
  }
  registry.metrics().then(
    (text) => response.writeHead(200, { "Content-Type": registry.contentType }).end(text),
    (error: unknown) => response.writeHead(500).end(`metrics failed: ${String(error)}\n`),
  );
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;

const scrape = await fetch(`http://127.0.0.1:${port}/metrics`);
const body = await scrape.text();
console.log(`GET http://127.0.0.1:${port}/metrics -> ${scrape.status} ${scrape.headers.get("content-type")}\n`);
// Samples only (no HELP/TYPE comments), and no empty histogram buckets, to keep the print short.
for (const line of body.split("\n")) {
  if (line === "" || line.startsWith("#")) continue;
  if (line.includes("_bucket{") && line.endsWith(" 0")) continue;
  console.log(line);
}

await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
engine.kill();
await engine.wait();
