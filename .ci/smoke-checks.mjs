// The smoke checks of the built package, shared by smoke.mjs and smoke.cjs: each entry passes
// `load(specifier)`, which imports (ESM) or requires (CJS) a module, so that every check loads
// the package, its sub-path exports and its optional peers through that module system.
// `loadedPackage(name)` says whether a package was loaded so far (CJS can tell; ESM passes undefined).
import { execFile } from "node:child_process";
import { statSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

export async function runSmokeChecks(kind, load, loadedPackage) {
  const pass = (what) => console.log(`${kind} smoke test of ${what} passed`);
  const fail = (what, details) => {
    console.error(`${kind} smoke test of ${what} failed`, details);
    process.exit(1);
  };
  const tick = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const { Engine, valueWorker, resource } = await load("manifold-engine");

  // A two-manifold engine runs to completion, a resource token passing a value.
  {
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
    await tick(50);
    const report = engine.report();
    engine.kill();
    await engine.wait();
    if (seen !== "hello" || report.manifolds.reader.state !== "started" || engine.report().state !== "stopped") fail("an engine", { seen, report: engine.report() });
    pass("an engine");
  }

  // withRetry: p-retry is ESM-only, reached from this build (from CJS too: Node >= 20.19);
  // a start that fails twice, then works, on the real timers.
  {
    const { withRetry } = await load("manifold-engine");
    let attempts = 0;
    const retrying = new Engine();
    retrying.install("flaky", {
      inputs: [],
      start: withRetry(() => {
        if (++attempts < 3) throw new Error(`attempt ${attempts} failed`);
        return valueWorker(attempts);
      }, { minTimeout: 1 }),
    });
    for (let waited = 0; retrying.report().manifolds.flaky.state !== "started" && waited < 2000; waited += 10) await tick(10);
    const flaky = retrying.report().manifolds.flaky;
    retrying.kill();
    await retrying.wait();
    if (attempts !== 3 || flaky.state !== "started" || flaky.startCount !== 1) fail("withRetry", { attempts, flaky });
    pass("withRetry");
  }

  // Leases: the main entry does not load etcd3 (an optional peer); a lease flag on the in-memory
  // provider gates a worker; manifold-engine/etcd loads etcd3, fails cleanly against a port
  // nobody listens on, and its LeaseLostError is the main entry's kind.
  {
    const { flagWorker, gated, leaseFlag, LeaseLostError, MemoryLeaseProvider, errorIs } = await load("manifold-engine");
    const loadedEtcd3 = loadedPackage?.("etcd3") ?? false;
    const leases = new Engine({ bounceDelay: 0 });
    const flag = resource("leader");
    leases.install(flag, leaseFlag({ provider: new MemoryLeaseProvider(), key: "smoke", holder: "me", ttl: 3000 }));
    let token;
    leases.install("job", gated({ inputs: [flag], start: (ctx) => ((token = ctx.getResource(flag).token), flagWorker(true)) }, { flags: [flag] }));
    for (let waited = 0; token === undefined && waited < 2000; waited += 10) await tick(10);
    leases.kill();
    await leases.wait();
    const { EtcdLeaseProvider } = await load("manifold-engine/etcd");
    const { Etcd3 } = await load("etcd3");
    const client = new Etcd3({ hosts: "http://127.0.0.1:1" });
    const provider = new EtcdLeaseProvider({ client });
    const failure = await provider.acquire({ key: "k", holder: "me", ttl: 1000, timeout: 300 }).then(() => undefined, (error) => error);
    const wrongRequest = await provider.acquire({ key: "", holder: "me", ttl: 1000 }).then(() => undefined, (error) => error);
    client.close();
    if (loadedEtcd3 || token !== 1 || !(failure instanceof Error) || !(wrongRequest instanceof TypeError) || !errorIs(new LeaseLostError("x"), LeaseLostError)) {
      fail("leases", { loadedEtcd3, token, failure, wrongRequest });
    }
    pass("leases and manifold-engine/etcd");
  }

  // manifold-engine/testing: the kit's clock and waitForState drive an engine of this build.
  {
    const { TestClock, waitForState } = await load("manifold-engine/testing");
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
    if (attempts !== 3 || entry.startCount !== 1 || delays !== "1000,1000") fail("manifold-engine/testing", { attempts, entry, delays });
    pass("manifold-engine/testing");
  }

  // engine.events with rxjs (an optional peer) installed: a real rxjs Observable (operators from the
  // user's rxjs apply), events in order with their causes, and completion after engine-stopped.
  {
    const { formatCauseChain } = await load("manifold-engine");
    const { filter } = await load("rxjs");
    const watched = new Engine({ bounceDelay: 0 });
    const events = [];
    const started = [];
    let completed = false;
    watched.events.subscribe({ next: (event) => events.push(event), complete: () => (completed = true) });
    watched.events.pipe(filter((event) => event.type === "started")).subscribe((event) => started.push(event.name));
    watched.install("a", { inputs: [], start: () => valueWorker(1) });
    for (let waited = 0; watched.report().manifolds.a.state !== "started" && waited < 2000; waited += 10) await tick(10);
    watched.kill();
    await watched.wait();
    const types = events.map((event) => event.type).join();
    const chain = formatCauseChain(events, events.find((event) => event.type === "started")?.id ?? -1);
    if (types !== "installed,starting,started,engine-stopping,stopped,engine-stopped" || chain !== "started a (#1) <- starting a <- installed a" || started.join() !== "a" || !completed) {
      fail("engine.events", { types, chain, started, completed });
    }
    pass("engine.events (with rxjs)");
  }

  // manifold-engine/introspect: the report served on a Unix socket (mode 0600), read over HTTP
  // (text, JSON and metrics) and by the CLI (dist/cli.js).
  {
    const { introspect } = await load("manifold-engine/introspect");
    const served = new Engine({ bounceDelay: 0 });
    served.install("served-worker", { inputs: [], start: () => valueWorker(1) });
    await tick(20);
    const server = await introspect(served, { path: join(tmpdir(), `manifold-engine-smoke-${kind}-${process.pid}.sock`) });
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
    const json = await get("/report?format=json");
    const metrics = await get("/metrics");
    const mode = statSync(server.address).mode & 0o777;
    // Asynchronously: this process serves the socket the command reads.
    const { stdout: cli } = await promisify(execFile)(process.execPath, ["dist/cli.js", "report", server.address, "--json"], { encoding: "utf8", timeout: 30_000 });
    await server.close();
    served.kill();
    await served.wait();
    const started = (body) => JSON.parse(body).manifolds["served-worker"].state === "started";
    if (text.status !== 200 || !text.body.includes("served-worker") || !started(json.body) || !metrics.body.includes("manifold_engine_up") || mode !== 0o600 || !started(cli)) {
      fail("manifold-engine/introspect", { text, json, metrics: metrics.body.slice(0, 200), mode: mode.toString(8), cli });
    }
    pass("manifold-engine/introspect and the manifold-engine command");
  }
}
