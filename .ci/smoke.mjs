// Loads the built ESM entry and runs a two-manifold engine to completion.
import { Engine, valueWorker, resource } from "manifold-engine";
import { withRetry } from "manifold-engine";

const greeting = resource("greeting");
const engine = new Engine({ bounceDelay: 0 });
let seen;
engine.install(greeting, { inputs: [], start: () => valueWorker("hello"), output: (w) => w.value });
engine.install("reader", {
  inputs: [greeting],
  start: (ctx) => {
    seen = ctx.getResource(greeting);
    return valueWorker(seen);
  },
});
await new Promise((resolve) => setTimeout(resolve, 50));
const report = engine.report();
engine.kill();
await engine.wait();
if (seen !== "hello" || report.manifolds.reader.state !== "started" || engine.report().state !== "stopped") {
  console.error("ESM smoke test failed", { seen, report: engine.report() });
  process.exit(1);
}
console.log("ESM smoke test passed");

// withRetry: p-retry (ESM-only) reached from this build; a start that fails twice, then works, on the real timers.
{
  let attempts = 0;
  const retrying = new Engine();
  retrying.install("flaky", {
    inputs: [],
    start: withRetry(() => {
      if (++attempts < 3) throw new Error(`attempt ${attempts} failed`);
      return valueWorker(attempts);
    }, { minTimeout: 1 }),
  });
  for (let waited = 0; retrying.report().manifolds.flaky.state !== "started" && waited < 2000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const flaky = retrying.report().manifolds.flaky;
  retrying.kill();
  await retrying.wait();
  if (attempts !== 3 || flaky.state !== "started" || flaky.startCount !== 1) {
    console.error("ESM smoke test of withRetry failed", { attempts, flaky });
    process.exit(1);
  }
  console.log("ESM smoke test of withRetry passed");
}

// Leases: a lease flag on the in-memory provider gates a worker (main entry, no etcd3);
// manifold-engine/etcd loads etcd3 and fails cleanly against a port nobody listens on.
{
  const { flagWorker, gated, leaseFlag, LeaseLostError, MemoryLeaseProvider, errorIs } = await import("manifold-engine");
  const leases = new Engine({ bounceDelay: 0 });
  const flag = resource("leader");
  leases.install(flag, leaseFlag({ provider: new MemoryLeaseProvider(), key: "smoke", holder: "me", ttl: 3000 }));
  let token;
  leases.install("job", gated({ inputs: [flag], start: (ctx) => ((token = ctx.getResource(flag).token), flagWorker(true)) }, { flags: [flag] }));
  for (let waited = 0; token === undefined && waited < 2000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  leases.kill();
  await leases.wait();
  const { EtcdLeaseProvider } = await import("manifold-engine/etcd");
  const { Etcd3 } = await import("etcd3");
  const client = new Etcd3({ hosts: "http://127.0.0.1:1" });
  const failure = await new EtcdLeaseProvider({ client }).acquire({ key: "k", holder: "me", ttl: 1000, timeout: 300 }).then(() => undefined, (error) => error);
  client.close();
  if (token !== 1 || !(failure instanceof Error) || !errorIs(new LeaseLostError("x"), LeaseLostError)) {
    console.error("ESM smoke test of leases failed", { token, failure });
    process.exit(1);
  }
  console.log("ESM smoke test of leases and manifold-engine/etcd passed");
}

// manifold-engine/testing: the kit's clock and waitForState drive an engine of this build.
{
  const { TestClock, waitForState } = await import("manifold-engine/testing");
  const clock = new TestClock();
  let attempts = 0;
  const tested = new Engine({ clock, errorDelay: 1000, jitter: 0, backoffFactor: 0 });
  tested.install("flaky", {
    inputs: [],
    start: () => {
      if (++attempts < 3) throw new Error(`attempt ${attempts} failed`);
      return valueWorker(attempts);
    },
  });
  const entry = await waitForState(tested, "flaky", "started", { clock });
  const delays = clock.delays.join(); // before kill(), which sets a stopTimeout timer
  tested.kill();
  await tested.wait();
  if (attempts !== 3 || entry.startCount !== 1 || delays !== "1000,1000") {
    console.error("ESM smoke test of manifold-engine/testing failed", { attempts, entry, delays });
    process.exit(1);
  }
  console.log("ESM smoke test of manifold-engine/testing passed");
}

// engine.events with rxjs (an optional peer) installed: a real rxjs Observable (operators from the user's
// rxjs apply), events in order with their causes, and completion after engine-stopped.
{
  const { formatCauseChain } = await import("manifold-engine");
  const { filter } = await import("rxjs");
  const watched = new Engine({ bounceDelay: 0 });
  const events = [];
  const started = [];
  let completed = false;
  watched.events.subscribe({ next: (event) => events.push(event), complete: () => (completed = true) });
  watched.events.pipe(filter((event) => event.type === "started")).subscribe((event) => started.push(event.name));
  watched.install("a", { inputs: [], start: () => valueWorker(1) });
  for (let waited = 0; watched.report().manifolds.a.state !== "started" && waited < 2000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  watched.kill();
  await watched.wait();
  const types = events.map((event) => event.type).join();
  const chain = formatCauseChain(events, events.find((event) => event.type === "started")?.id ?? -1);
  if (types !== "installed,starting,started,engine-stopping,stopped,engine-stopped" || chain !== "started a (#1) <- starting a <- installed a" || started.join() !== "a" || !completed) {
    console.error("ESM smoke test of engine.events failed", { types, chain, started, completed });
    process.exit(1);
  }
  console.log("ESM smoke test of engine.events (with rxjs) passed");
}

// manifold-engine/introspect: the report served on a Unix socket (mode 0600), read over HTTP and by the CLI (dist/cli.js).
{
  const { introspect } = await import("manifold-engine/introspect");
  const { request } = await import("node:http");
  const { statSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { execFile } = await import("node:child_process");
  const { promisify } = await import("node:util");
  const served = new Engine({ bounceDelay: 0 });
  served.install("served-worker", { inputs: [], start: () => valueWorker(1) });
  await new Promise((resolve) => setTimeout(resolve, 20));
  const server = await introspect(served, { path: join(tmpdir(), `manifold-engine-smoke-${process.pid}.sock`) });
  const get = (path) =>
    new Promise((resolve, reject) => {
      request({ socketPath: server.address, path, headers: { Host: "localhost" } }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      })
        .on("error", reject)
        .end();
    });
  const text = await get("/report");
  const metrics = await get("/metrics");
  const mode = statSync(server.address).mode & 0o777;
  // Asynchronously: this process serves the socket the command reads.
  const { stdout: cli } = await promisify(execFile)(process.execPath, ["dist/cli.js", "report", server.address, "--json"], { encoding: "utf8", timeout: 30_000 });
  await server.close();
  served.kill();
  await served.wait();
  if (text.status !== 200 || !text.body.includes("served-worker") || !metrics.body.includes("manifold_engine_up") || mode !== 0o600 || JSON.parse(cli).manifolds["served-worker"].state !== "started") {
    console.error("ESM smoke test of manifold-engine/introspect failed", { text, metrics: metrics.body.slice(0, 200), mode: mode.toString(8), cli });
    process.exit(1);
  }
  console.log("ESM smoke test of manifold-engine/introspect and the manifold-engine command passed");
}
