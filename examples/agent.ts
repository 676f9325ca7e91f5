/**
 * The demo agent (`npm run demo`): a small daemon whose API connection drops
 * every few seconds. Watch the engine restart the connection (with backoff when
 * connecting fails), and restart the three workers that use it, in order, once
 * it is back.
 *
 *   manifolds:  config ─► api-connection ─► uploader
 *                    │                  ├─► status-reporter
 *                    └──────────────────┴─► log-shipper
 *
 * Runs for DEMO_SECONDS (default 10, or the first argument) or until Ctrl-C,
 * then shuts down cleanly and exits with code 0. DEMO_SEED changes the dice.
 * `--why` also follows `engine.events` and, at the end, prints why the last
 * restart happened: the chain of causes back to the first thing that went
 * wrong (formatCauseChain).
 *
 *   npm run demo
 *   DEMO_SECONDS=3 npm run demo
 *   npx tsx examples/agent.ts 20
 *   npm run demo -- --why
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  createWorker,
  Engine,
  errorIs,
  formatCauseChain,
  manifold,
  MissingError,
  resource,
  valueWorker,
  type EngineEvent,
  type EngineReport,
  type Reporter,
  type Worker,
} from "../src/index.js";

// ---------------------------------------------------------------- dice

/** mulberry32: a tiny seeded PRNG, so every run with the same seed rolls the same dice. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = seededRandom(Number(process.env["DEMO_SEED"] ?? 7));
const between = (low: number, high: number): number => Math.round(low + (high - low) * random());

// ---------------------------------------------------------------- the domain

interface AgentConfig {
  readonly apiAddress: string;
  readonly agentName: string;
}

/** What dependents get from the `api-connection` manifold. */
interface ApiConnection {
  readonly id: number;
  call(method: string, payload?: unknown): Promise<void>;
}

/** The connection went away under a caller. */
class ConnectionLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConnectionLostError";
  }
}

/** Typed resource tokens: getResource(apiConnection) is an ApiConnection, no casts. */
const config = resource<AgentConfig>("config");
const apiConnection = resource<ApiConnection>("api-connection");

let connectionIds = 0;

/** A fake network connection: it lives a few seconds, then "the peer resets it". */
function openConnection(address: string): Worker & Reporter & { readonly connection: ApiConnection } {
  const id = ++connectionIds;
  let closed = false;
  let calls = 0;
  const connection: ApiConnection = {
    id,
    async call(method) {
      if (closed) throw new ConnectionLostError(`${method}: connection #${id} is closed`);
      await sleep(between(5, 30));
      if (closed) throw new ConnectionLostError(`${method}: connection #${id} lost mid-call`);
      calls++;
    },
  };
  const lifetime = between(1200, 3500);
  const worker = createWorker(async (signal) => {
    try {
      await sleep(lifetime, undefined, { signal }); // AbortError on kill(): a clean stop
      throw new Error(`${address}: connection #${id} reset by peer`);
    } finally {
      closed = true;
    }
  });
  return Object.assign(worker, { connection, report: () => ({ id, calls }) });
}

/**
 * A worker that does `method` every `everyMs` over the connection and counts it.
 * Its `report()` shows up under the manifold in the engine's report.
 */
function periodic(conn: ApiConnection, method: string, everyMs: number): Worker & Reporter {
  let done = 0;
  const worker = createWorker(async (signal) => {
    for (;;) {
      await sleep(everyMs, undefined, { signal });
      await conn.call(method);
      done++;
    }
  });
  return Object.assign(worker, { report: () => ({ [method]: done, via: conn.id }) });
}

/**
 * A worker that loses its connection mid-call has nothing useful to do until
 * the connection comes back: say so with MissingError ("do not restart until an
 * input changes"). The engine restarts it when the new connection starts.
 */
function connectionLostIsMissing(error: unknown): unknown {
  return errorIs(error, ConnectionLostError) ? new MissingError((error as Error).message, { cause: error }) : error;
}

/** The three workers differ only in what they call and how often. */
function apiWorker(method: string, everyMs: number) {
  return manifold({
    inputs: [config, apiConnection],
    start: (context) => periodic(context.getResource(apiConnection), method, everyMs),
    filter: connectionLostIsMissing,
  });
}

// ---------------------------------------------------------------- the engine

const engine = new Engine({
  errorDelay: 600, // restart a failed connection quickly...
  backoffFactor: 1.6, // ...and back off when connecting keeps failing
  backoffResetTime: 1500,
  maxDelay: 3000,
  bounceDelay: 150, // dependents restart 150 ms after the connection is back
  stopTimeout: 2000,
  random, // jitter from the same seeded dice
});

engine.install(
  config,
  manifold({
    inputs: [],
    start: () => valueWorker<AgentConfig>({ apiAddress: "api.example.net:17070", agentName: "machine-0" }),
    output: (worker) => worker.value,
  }),
);

engine.install(
  apiConnection,
  manifold({
    inputs: [config],
    async start(context) {
      const { apiAddress } = context.getResource(config);
      await sleep(between(80, 250), undefined, { signal: context.signal }); // dialling...
      if (random() < 0.3) throw new Error(`dial ${apiAddress}: connection refused`);
      return openConnection(apiAddress);
    },
    output: (worker) => worker.connection,
  }),
);

engine.installAll({
  uploader: apiWorker("upload", 200),
  "status-reporter": apiWorker("status", 300),
  "log-shipper": apiWorker("ship-logs", 250),
});

// ---------------------------------------------------------------- the view

const started = Date.now();
const seconds = (): string => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s`;

function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 3)}...`;
}

function detail(report: Record<string, unknown> | undefined): string {
  if (report === undefined) return "";
  return Object.entries(report)
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(" ");
}

/** One line per manifold: state, start count, the worker's own report, the last error. */
function view(report: EngineReport): string[] {
  const rows = [["manifold", "state", "starts", "worker report", "error"]];
  for (const [name, entry] of Object.entries(report.manifolds)) {
    // The row already names the manifold: drop the "manifold "x": " prefix of the engine's messages.
    const error = (entry.error ?? "").replace(`manifold ${JSON.stringify(name)}: `, "");
    rows.push([name, entry.state, String(entry.startCount), detail(entry.report), clip(error, 56)]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row
      .map((cell, column) => (column === 2 ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join("  ")
      .trimEnd(),
  );
}

/** What changed matters, not the counters ticking: compare states, starts and errors only. */
function fingerprint(report: EngineReport): string {
  return Object.entries(report.manifolds)
    .map(([name, entry]) => `${name}:${entry.state}:${entry.startCount}:${entry.error ?? ""}`)
    .join("|");
}

let last = "";
let lastPrinted = Date.now();

/** Prints the table when a state, start count or error changed; otherwise, once a second, a one-line pulse. */
function show(force = false): void {
  const report = engine.report();
  const print = fingerprint(report);
  if (print !== last || force) {
    last = print;
    lastPrinted = Date.now();
    console.log(`\n[${seconds()}] engine ${report.state}${report.error === undefined ? "" : ` (${report.error})`}`);
    for (const line of view(report)) console.log(`   ${line}`);
  } else if (Date.now() - lastPrinted >= 1000) {
    lastPrinted = Date.now();
    const pulse = Object.entries(report.manifolds)
      .filter(([, entry]) => entry.state === "started" && entry.report !== undefined)
      .map(([name, entry]) => `${name}: ${detail(entry.report)}`);
    const waiting = Object.entries(report.manifolds)
      .filter(([, entry]) => entry.state !== "started")
      .map(([name, entry]) => `${name} ${entry.state}`);
    console.log(`[${seconds()}] ${pulse.length > 0 ? `running: ${pulse.join(", ")}` : `waiting: ${waiting.join(", ")}`}`);
  }
}

// ---------------------------------------------------------------- why (--why)

/**
 * Keeps the engine's recent events, so that the chain of causes of a restart
 * can be told at the end. Bounded: a chain that reaches past the oldest kept
 * event simply ends there.
 */
function followEvents(keep: number): () => string {
  const events = new Map<number, EngineEvent>();
  let lastRestart: EngineEvent | undefined;
  engine.events.subscribe((event) => {
    events.set(event.id, event);
    if (events.size > keep) events.delete(events.keys().next().value as number);
    if (event.type === "started" && event.startCount > 1) lastRestart = event;
  });
  return () => {
    if (lastRestart === undefined) return "no manifold restarted (run it longer: DEMO_SECONDS=20)";
    // One line from formatCauseChain, newest first; broken at each "<-" to read as a list.
    return formatCauseChain(events, lastRestart.id).split(" <- ").join("\n     <- ");
  };
}

// ---------------------------------------------------------------- run, then stop

const args = process.argv.slice(2);
const why = args.includes("--why");
const unknown = args.filter((arg) => arg.startsWith("-") && arg !== "--why");
const argument = args.find((arg) => !arg.startsWith("-"));
const duration = Number(argument ?? process.env["DEMO_SECONDS"] ?? 10);
if (!Number.isFinite(duration) || duration < 0 || unknown.length > 0) {
  const got = unknown.length > 0 ? `unknown option ${unknown.join(" ")}` : `got ${JSON.stringify(argument ?? process.env["DEMO_SECONDS"])}`;
  console.error(`usage: tsx examples/agent.ts [seconds] [--why]  (${got})`);
  process.exit(2);
}
const explainLastRestart = why ? followEvents(10_000) : undefined;

console.log(`demo agent: 5 manifolds, running for ${duration} s (Ctrl-C to stop sooner)`);
console.log("the API connection drops every few seconds, and connecting fails now and then");

const stop = (why: string) => () => {
  console.log(`\n[${seconds()}] ${why}: stopping the engine`);
  engine.kill();
};
const onSigint = stop("SIGINT (press Ctrl-C again to force)");
process.once("SIGINT", onSigint);
const deadline = setTimeout(stop(`${duration} s are up`), duration * 1000);
const ticker = setInterval(() => show(), 100);

try {
  await engine.wait(); // resolves after kill(): no worker failed fatally
  show(true);
  console.log(`\nclean shutdown after ${seconds().trim()}; ${connectionIds} connection${connectionIds === 1 ? "" : "s"} opened`);
  if (explainLastRestart !== undefined) console.log(`\nwhy the last restart happened (--why):\n        ${explainLastRestart()}`);
} catch (error) {
  // Only a ShutdownTimeoutError (a worker ignoring kill()) can land here: nothing is fatal in this agent.
  show(true);
  console.error(`\nshutdown failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  clearInterval(ticker);
  clearTimeout(deadline);
  process.off("SIGINT", onSigint);
}
