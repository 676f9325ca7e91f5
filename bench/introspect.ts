/**
 * Introspection figures (issue 14), never timed assertions:
 *
 * 1. `/report` (text, JSON, JSON gzipped), `/metrics` and the page's HTML on
 *    a 10,000- and a 100,000-manifold engine: time to the last byte and
 *    bytes, each request taking a fresh snapshot (reportMaxAge 0), beside
 *    `engine.report()` alone.
 * 2. The page's first load in Chromium (when /usr/bin/chromium is there):
 *    navigation to the page showing every manifold's data, and the bytes it
 *    transferred.
 * 3. The engine's cold start with introspection off, on with no client, with
 *    10 `/events` clients that read, and with one that never reads. The
 *    clients run in another process (as operators' tools do), so their own
 *    parsing does not compete with the engine for this process's time.
 *
 *   npm run bench:introspect                    # after npm run build (the script builds)
 *   npm run bench:introspect -- --sizes=10000   # smaller run
 *   npm run bench:introspect -- --parts=cold    # only some parts: routes, page, cold
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Engine, target } from "./engine.js";
import { makeGraph } from "./graphs.js";
import { collect, deadline, machine, median, now, settle, settledHeap } from "./measure.js";
import { makeManifolds, Probe } from "./workload.js";
import type * as IntrospectApi from "../src/introspect/index.js";

const { introspect } = (await import(target === "src" ? "../src/introspect/index.js" : "../dist/introspect.js")) as typeof IntrospectApi;

const option = (name: string, fallback: string): string => process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const sizes = option("sizes", "10000,100000").split(",").map(Number);
const parts = new Set(option("parts", "routes,page,cold").split(","));
const log = (message: string): void => void process.stderr.write(`${message}\n`);
const socketPath = join(tmpdir(), `manifold-engine-bench-${process.pid}.sock`);

/** An engine with the layered graph of `size`, every manifold started. */
async function startedEngine(size: number, introspected = false): Promise<{ engine: Engine; server?: IntrospectApi.IntrospectionServer }> {
  const graph = makeGraph("layered", size);
  const probe = new Probe(size);
  const engine = new Engine({ errorDelay: 0, bounceDelay: 0, jitter: 0, metrics: probe.metrics });
  const server = introspected ? await introspect(engine, { path: socketPath, reportMaxAge: 0 }) : undefined;
  engine.installAll(makeManifolds(graph, probe));
  await deadline(
    (async () => {
      while (probe.started.count < size) await settle(1);
    })(),
    `cold start of ${size}`,
  );
  return server === undefined ? { engine } : { engine, server };
}

/** GET `path` over the socket; time to the last byte and the body's size. */
function get(path: string, headers: Record<string, string> = {}): Promise<{ ms: number; bytes: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const started = now();
    request({ socketPath, path, headers: { Host: "localhost", ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({ ms: now() - started, bytes: body.length, body });
      });
    })
      .on("error", reject)
      .end();
  });
}

const fmt = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
const kb = (bytes: number): string => (bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`);

// ------------------------------------------------------------------ 1. routes

async function routes(size: number, runs: number): Promise<string[]> {
  log(`routes at ${size}`);
  const { engine, server } = await startedEngine(size, true);
  const rows: string[] = [];
  const reportMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    collect();
    const t = now();
    engine.report();
    reportMs.push(now() - t);
  }
  rows.push(`| ${size} | engine.report() alone | ${fmt(median(reportMs))} | - |`);
  const cases: [string, string, Record<string, string>][] = [
    ["/report (text)", "/report", {}],
    ["/report?format=json", "/report?format=json", {}],
    ["/report?format=json, gzip", "/report?format=json", { "Accept-Encoding": "gzip" }],
    ["/metrics", "/metrics", {}],
    ["/ (the page's HTML)", "/", {}],
  ];
  for (const [label, path, headers] of cases) {
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < runs; i++) {
      collect();
      const answer = await get(path, headers);
      times.push(answer.ms);
      bytes = answer.bytes;
      if (headers["Accept-Encoding"] === "gzip" && i === 0) gunzipSync(answer.body); // it is gzip
    }
    rows.push(`| ${size} | ${label} | ${fmt(median(times))} | ${kb(bytes)} |`);
  }
  await server?.close();
  engine.kill();
  await engine.wait();
  return rows;
}

// ------------------------------------------------------------------ 2. the page in Chromium

async function pageLoad(size: number): Promise<string | undefined> {
  const chromium = "/usr/bin/chromium";
  if (!existsSync(chromium)) return undefined;
  log(`page load at ${size}`);
  const { chromium: browserType } = await import("playwright-core");
  const { engine } = await startedEngine(size);
  const tcp = await introspect(engine, { port: 0 });
  const browser = await browserType.launch({
    executablePath: chromium,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < 3; i++) {
      const page = await browser.newPage();
      let transferred = 0;
      page.on("requestfinished", (req) => {
        void req.sizes().then((sizes) => (transferred += sizes.responseBodySize + sizes.responseHeadersSize));
      });
      const started = now();
      await page.goto(tcp.address);
      await page.waitForSelector("body[data-ready=true]", { timeout: 300_000 });
      times.push(now() - started);
      await page.close();
      bytes = transferred;
    }
    return `| ${size} | ${fmt(median(times))} | ${kb(bytes)} |`;
  } finally {
    await browser.close();
    await tcp.close();
    engine.kill();
    await engine.wait();
  }
}

// ------------------------------------------------------------------ 3. cold start with /events clients

/** A child process holding `count` /events connections; `stuck` ones never read. */
function clients(count: number, stuck: boolean): Promise<{ child: ChildProcess; done: () => Promise<string> }> {
  const code = `
    const { request } = require("node:http");
    let bytes = 0, ready = 0;
    for (let i = 0; i < ${count}; i++) {
      request({ socketPath: ${JSON.stringify(socketPath)}, path: "/events", headers: { Host: "localhost" } }, (res) => {
        if (res.statusCode !== 200) {
          res.setEncoding("utf8");
          res.on("data", (text) => process.stderr.write("/events answered " + res.statusCode + ": " + text));
          res.on("end", () => process.exit(1));
          return;
        }
        if (${stuck}) res.socket.pause(); else res.on("data", (chunk) => (bytes += chunk.length));
        if (++ready === ${count}) process.stdout.write("ready\\n");
      }).end();
    }
    process.on("SIGTERM", () => { process.stdout.write(String(bytes) + "\\n"); process.exit(0); });
    setInterval(() => {}, 1 << 30); // a paused socket does not keep a process alive
  `;
  const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout?.setEncoding("utf8");
  return new Promise((resolve, reject) => {
    child.stdout?.on("data", (chunk: string) => {
      out += chunk;
      if (out.startsWith("ready\n") && out.length === 6) {
        resolve({
          child,
          done: () =>
            new Promise((finish) => {
              if (child.exitCode !== null || child.signalCode !== null) return finish(out.slice(6).trim());
              child.once("exit", () => finish(out.slice(6).trim()));
              child.kill("SIGTERM");
            }),
        });
      }
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`bench: the /events clients exited (code ${code}) before they were all connected`)));
  });
}

type Mode = "off" | "on" | "10 reading" | "1 never reading";
const MODES: readonly Mode[] = ["off", "on", "10 reading", "1 never reading"];

/** One cold start in `mode`: wall and CPU time of this process, and the heap it retains afterwards (after a full GC). */
async function coldStart(size: number, mode: Mode): Promise<{ ms: number; cpuMs: number; heap: number }> {
  const graph = makeGraph("layered", size);
  const probe = new Probe(size);
  const manifolds = makeManifolds(graph, probe);
  const engine = new Engine({ errorDelay: 0, bounceDelay: 0, jitter: 0, metrics: probe.metrics });
  const server = mode === "off" ? undefined : await introspect(engine, { path: socketPath });
  const attached = mode === "10 reading" ? await clients(10, false) : mode === "1 never reading" ? await clients(1, true) : undefined;
  const heapBefore = settledHeap();
  const cpuBefore = process.cpuUsage();
  const started = now();
  engine.installAll(manifolds);
  while (probe.started.count < size) await settle(1);
  const ms = now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  // Let the event batches of the start be written (or queued, or dropped) before looking at the heap.
  await settle(20);
  const heap = settledHeap() - heapBefore;
  await attached?.done();
  await server?.close();
  engine.kill();
  await engine.wait();
  // Closed sockets let go of the server (and so of the engine) only once their close callbacks have run.
  await settle(5);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, heap };
}

// ------------------------------------------------------------------ run

const m = machine();
console.log(`# Introspection benchmark\n\n${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, Node ${m.node}, load average ${m.loadAverage} at start; target ${target}.\n`);

if (parts.has("routes")) {
  console.log("## Routes (one request at a time, a fresh snapshot each; medians)\n");
  console.log("| manifolds | route | ms to the last byte | bytes |\n| --- | --- | --- | --- |");
  for (const size of sizes) for (const row of await routes(size, size >= 100_000 ? 3 : 7)) console.log(row);
}

const pageRows: string[] = [];
for (const size of parts.has("page") ? sizes : []) {
  const row = await pageLoad(size);
  if (row !== undefined) pageRows.push(row);
}
if (!parts.has("page")) {
  // not asked for
} else if (pageRows.length > 0) {
  console.log("\n## The page's first load in Chromium (navigation until every manifold's data is shown; median of 3)\n");
  console.log("| manifolds | ms | bytes transferred |\n| --- | --- | --- |");
  for (const row of pageRows) console.log(row);
} else {
  console.log("\n(no /usr/bin/chromium: the page's load in a browser was not measured)");
}

if (parts.has("cold")) {
  console.log("\n## Cold start of the layered graph with /events clients (median)\n");
  console.log("| manifolds | introspection | wall ms | vs off | CPU ms (this process) | vs off | heap kept vs off |\n| --- | --- | --- | --- | --- | --- | --- |");
}
for (const size of parts.has("cold") ? sizes : []) {
  const rounds = size >= 100_000 ? 3 : 7;
  log(`cold start at ${size}: ${rounds} rounds of ${MODES.length} modes, interleaved`);
  const figures = new Map<Mode, { ms: number[]; cpuMs: number[]; heap: number[] }>(MODES.map((mode) => [mode, { ms: [], cpuMs: [], heap: [] }]));
  for (let round = 0; round < rounds; round++) {
    // Rotate the order, so that a drift in the machine's load does not favour one mode.
    for (let k = 0; k < MODES.length; k++) {
      const mode = MODES[(round + k) % MODES.length] as Mode;
      const result = await coldStart(size, mode);
      const f = figures.get(mode) as { ms: number[]; cpuMs: number[]; heap: number[] };
      f.ms.push(result.ms);
      f.cpuMs.push(result.cpuMs);
      f.heap.push(result.heap);
    }
  }
  const off = figures.get("off") as { ms: number[]; cpuMs: number[]; heap: number[] };
  for (const mode of MODES) {
    const f = figures.get(mode) as { ms: number[]; cpuMs: number[]; heap: number[] };
    const label = mode === "off" ? "off" : mode === "on" ? "on, no client" : `on, ${mode}`;
    console.log(
      `| ${size} | ${label} | ${fmt(median(f.ms))} | ${(median(f.ms) / median(off.ms)).toFixed(2)}x | ${fmt(median(f.cpuMs))} | ${(median(f.cpuMs) / median(off.cpuMs)).toFixed(2)}x | ${kb(median(f.heap) - median(off.heap))} |`,
    );
  }
}
rmSync(socketPath, { force: true });
