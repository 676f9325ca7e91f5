/**
 * Looking inside a running engine: the demo agent's graph (the one of
 * examples/agent.ts: a config, an API connection that drops every few seconds,
 * three workers that use it) with introspection on a Unix socket. It prints
 * how to look at it from another shell, reads its own report the way the
 * CLI does, and exits by itself after a few seconds unless asked to stay.
 *
 *   npx tsx examples/introspect.ts              # 6 s, then a clean stop
 *   npx tsx examples/introspect.ts --stay       # until Ctrl-C
 *   npx tsx examples/introspect.ts --port 8080  # the page too, on http://127.0.0.1:8080/
 *   npx tsx examples/introspect.ts --mermaid    # print the graph as Mermaid (the README's picture) and exit
 */
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createWorker, Engine, errorIs, manifold, MissingError, resource, toMermaid, valueWorker, type Worker } from "../src/index.js";
import { introspect } from "../src/introspect/index.js";

// ---------------------------------------------------------------- arguments

const args = process.argv.slice(2);
const stay = args.includes("--stay");
const mermaid = args.includes("--mermaid");
const portIndex = args.indexOf("--port");
const port = portIndex === -1 ? undefined : Number(args[portIndex + 1]);
const seconds = Number(process.env["INTROSPECT_SECONDS"] ?? 6);
if ((port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65_535)) || !(seconds >= 0)) {
  console.error("usage: tsx examples/introspect.ts [--stay] [--port <0-65535>] [--mermaid]   (INTROSPECT_SECONDS=6)");
  process.exit(2);
}

// ---------------------------------------------------------------- the demo agent's graph

/** mulberry32: seeded dice, so every run behaves the same. */
let seed = 7;
const random = (): number => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

class ConnectionLostError extends Error {
  override name = "ConnectionLostError";
}

interface Connection {
  readonly id: number;
  call(method: string): Promise<void>;
}

const config = resource<{ apiAddress: string }>("config");
const api = resource<Connection>("api-connection");
let connections = 0;

/** A connection that "the peer resets" after 1–3 s; its report shows up in the engine's report. */
function connect(address: string): Worker & { connection: Connection; report(): Record<string, unknown> } {
  const id = ++connections;
  let open = true;
  let calls = 0;
  const worker = createWorker(async (signal) => {
    try {
      await sleep(1000 + 2000 * random(), undefined, { signal });
      throw new Error(`${address}: connection #${id} reset by peer`);
    } finally {
      open = false;
    }
  });
  const connection: Connection = {
    id,
    async call(method) {
      if (!open) throw new ConnectionLostError(`${method}: connection #${id} is closed`);
      calls++;
    },
  };
  return Object.assign(worker, { connection, report: () => ({ id, calls }) });
}

/** A worker that calls `method` every `everyMs` over the connection. */
function apiWorker(method: string, everyMs: number) {
  return manifold({
    inputs: [config, api],
    start: (context) => {
      const connection = context.getResource(api);
      let done = 0;
      const worker = createWorker(async (signal) => {
        for (;;) {
          await sleep(everyMs, undefined, { signal });
          await connection.call(method);
          done++;
        }
      });
      return Object.assign(worker, { report: () => ({ [method]: done, via: connection.id }) });
    },
    // No connection: nothing to do until it is back (MissingError waits for an input to change).
    filter: (error) => (errorIs(error, ConnectionLostError) ? new MissingError(String((error as Error).message), { cause: error }) : error),
  });
}

const engine = new Engine({ errorDelay: 600, backoffFactor: 1.6, backoffResetTime: 1500, maxDelay: 3000, bounceDelay: 150, random });
engine.install(config, manifold({ inputs: [], start: () => valueWorker({ apiAddress: "api.example.net:17070" }), output: (worker) => worker.value }));
engine.install(
  api,
  manifold({
    inputs: [config],
    async start(context) {
      const { apiAddress } = context.getResource(config);
      await sleep(80 + 170 * random(), undefined, { signal: context.signal });
      if (random() < 0.3) throw new Error(`dial ${apiAddress}: connection refused`);
      return connect(apiAddress);
    },
    output: (worker) => worker.connection,
  }),
);
engine.installAll({
  uploader: apiWorker("upload", 200),
  "status-reporter": apiWorker("status", 300),
  "log-shipper": apiWorker("ship-logs", 250),
});

if (mermaid) {
  // The graph once every manifold has started: states are part of the picture.
  while (Object.values(engine.report().manifolds).some((entry) => entry.state !== "started")) await sleep(20);
  console.log(toMermaid(engine.report()));
  engine.kill();
  await engine.wait();
  process.exit(0);
}

// ---------------------------------------------------------------- introspection

const socket = join(tmpdir(), `manifold-engine-demo-${process.pid}.sock`);
const server = await introspect(engine, { path: socket });
const page = port === undefined ? undefined : await introspect(engine, { port });

console.log(`introspection on ${server.address} (mode 0600: only this user can connect)`);
console.log("look at it from another shell:");
console.log(`  npx manifold-engine report ${socket}            # the text report (in this repository: npx tsx src/cli.ts report …)`);
console.log(`  npx manifold-engine report ${socket} --watch    # follow it as it changes`);
console.log(`  npx manifold-engine report ${socket} --graph mmd`);
console.log(`  curl --unix-socket ${socket} http://localhost/report?format=json`);
console.log(`  curl --unix-socket ${socket} http://localhost/metrics`);
console.log(`  curl -N --unix-socket ${socket} http://localhost/events`);
if (page !== undefined) console.log(`  open ${page.address} in a browser for the live page`);
console.log(stay ? "running until Ctrl-C" : `running for ${seconds} s (--stay to keep it running)`);

/** GET `path` over the socket, as curl --unix-socket does. */
function get(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ socketPath: socket, path, headers: { Host: "localhost" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve(body));
    })
      .on("error", reject)
      .end();
  });
}

const stopped = new Promise<string>((resolve) => {
  process.once("SIGINT", () => resolve("SIGINT"));
  if (!stay) setTimeout(() => resolve(`${seconds} s are up`), seconds * 1000).unref();
});
console.log(`\n${await stopped}: the report as an operator sees it (GET /report):\n`);
console.log(await get("/report"));
const chain = JSON.parse(await get("/chain?name=uploader")) as { text?: string; message?: string };
console.log(`\nwhy the uploader last (re)started (GET /chain?name=uploader):\n  ${chain.text ?? chain.message}`);

await server.close();
await page?.close();
engine.kill();
await engine.wait();
console.log(`\nclean shutdown; ${connections} connections opened; ${socket} removed`);
