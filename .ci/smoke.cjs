// Loads the built CommonJS entry and runs a two-manifold engine to completion.
const { Engine, valueWorker, resource } = require("manifold-engine");

async function main() {
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
    console.error("CJS smoke test failed", { seen, report: engine.report() });
    process.exit(1);
  }
  console.log("CJS smoke test passed");
}
main().catch((error) => {
  console.error(error);
  process.exit(1);
});

// withRetry: p-retry is ESM-only, so this require()s it as an ES module (Node >= 20.19);
// a start that fails twice, then works, on the real timers.
async function retrySmoke() {
  const { withRetry } = require("manifold-engine");
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
    console.error("CJS smoke test of withRetry failed", { attempts, flaky });
    process.exit(1);
  }
  console.log("CJS smoke test of withRetry passed");
}
retrySmoke().catch((error) => {
  console.error(error);
  process.exit(1);
});

// Leases: the main entry must not load etcd3 (an optional peer); a lease flag on the
// in-memory provider gates a worker; manifold-engine/etcd loads etcd3, fails cleanly
// against a port nobody listens on, and its LeaseLostError is the main entry's kind.
async function leaseSmoke() {
  const { flagWorker, gated, leaseFlag, LeaseLostError, MemoryLeaseProvider, errorIs } = require("manifold-engine");
  const loadedEtcd3 = Object.keys(require.cache).some((file) => file.includes(`${require("node:path").sep}etcd3${require("node:path").sep}`));
  const leases = new Engine({ bounceDelay: 0 });
  const flag = resource("leader");
  leases.install(flag, leaseFlag({ provider: new MemoryLeaseProvider(), key: "smoke", holder: "me", ttl: 3000 }));
  let token;
  leases.install("job", gated({ inputs: [flag], start: (ctx) => ((token = ctx.getResource(flag).token), flagWorker(true)) }, { flags: [flag] }));
  for (let waited = 0; token === undefined && waited < 2000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  leases.kill();
  await leases.wait();
  const { EtcdLeaseProvider } = require("manifold-engine/etcd");
  const { Etcd3 } = require("etcd3");
  const client = new Etcd3({ hosts: "http://127.0.0.1:1" });
  const provider = new EtcdLeaseProvider({ client });
  const failure = await provider.acquire({ key: "k", holder: "me", ttl: 1000, timeout: 300 }).then(() => undefined, (error) => error);
  const wrongRequest = await provider.acquire({ key: "", holder: "me", ttl: 1000 }).then(() => undefined, (error) => error);
  client.close();
  if (loadedEtcd3 || token !== 1 || !(failure instanceof Error) || !(wrongRequest instanceof TypeError) || !errorIs(new LeaseLostError("x"), LeaseLostError)) {
    console.error("CJS smoke test of leases failed", { loadedEtcd3, token, failure, wrongRequest });
    process.exit(1);
  }
  console.log("CJS smoke test of leases and manifold-engine/etcd passed");
}
leaseSmoke().catch((error) => {
  console.error(error);
  process.exit(1);
});

// manifold-engine/testing: the kit's clock and waitForState drive an engine of this build.
async function testingSmoke() {
  const { TestClock, waitForState } = require("manifold-engine/testing");
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
    console.error("CJS smoke test of manifold-engine/testing failed", { attempts, entry, delays });
    process.exit(1);
  }
  console.log("CJS smoke test of manifold-engine/testing passed");
}
testingSmoke().catch((error) => {
  console.error(error);
  process.exit(1);
});

// manifold-engine/introspect from CommonJS: the report served on a Unix socket, read over HTTP.
async function introspectSmoke() {
  const { introspect } = require("manifold-engine/introspect");
  const { request } = require("node:http");
  const { tmpdir } = require("node:os");
  const { join } = require("node:path");
  const served = new Engine({ bounceDelay: 0 });
  served.install("served-worker", { inputs: [], start: () => valueWorker(1) });
  await new Promise((resolve) => setTimeout(resolve, 20));
  const server = await introspect(served, { path: join(tmpdir(), `manifold-engine-smoke-cjs-${process.pid}.sock`) });
  const { status, body } = await new Promise((resolve, reject) => {
    request({ socketPath: server.address, path: "/report?format=json", headers: { Host: "localhost" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode, body: text }));
    })
      .on("error", reject)
      .end();
  });
  await server.close();
  served.kill();
  await served.wait();
  if (status !== 200 || JSON.parse(body).manifolds["served-worker"].state !== "started") {
    console.error("CJS smoke test of manifold-engine/introspect failed", { status, body });
    process.exit(1);
  }
  console.log("CJS smoke test of manifold-engine/introspect passed");
}
introspectSmoke().catch((error) => {
  console.error(error);
  process.exit(1);
});

// engine.events with rxjs (an optional peer) installed: a real rxjs Observable (operators from the user's
// rxjs apply), events in order with their causes, and completion after engine-stopped.
async function eventsSmoke() {
  const { formatCauseChain } = require("manifold-engine");
  const { filter } = require("rxjs");
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
  const firstStart = events.find((event) => event.type === "started");
  const chain = formatCauseChain(events, firstStart === undefined ? -1 : firstStart.id);
  if (types !== "installed,starting,started,engine-stopping,stopped,engine-stopped" || chain !== "started a (#1) <- starting a <- installed a" || started.join() !== "a" || !completed) {
    console.error("CJS smoke test of engine.events failed", { types, chain, started, completed });
    process.exit(1);
  }
  console.log("CJS smoke test of engine.events (with rxjs) passed");
}
eventsSmoke().catch((error) => {
  console.error(error);
  process.exit(1);
});
