/**
 * A fleet of three agents sharing one etcd: a lease flag on each, and a
 * `janitor` gated on it, so that the janitor runs on exactly one agent at a
 * time. The leader dies without a word (its connection to etcd goes first, so
 * it cannot release the lease); another agent takes over once the lease's TTL
 * has run out on the server, with a larger fencing token.
 *
 *   agent-N:  leader (leaseFlag, etcd) ─► janitor (gated on leader)
 *
 * Needs the `etcd` binary (Debian: `apt-get install etcd-server`), which it
 * starts on 127.0.0.1 with a temporary data directory and free ports; without
 * it, says how to install it and exits 0. Runs about 12 seconds, then stops
 * everything, etcd included, and exits 0.
 *
 *   npx tsx examples/fleet.ts
 */
import { spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Etcd3 } from "etcd3";
import { EtcdLeaseProvider } from "../src/etcd.js";
import { createWorker, Engine, gated, leaseFlag, manifold, resource, type LeaseFlag } from "../src/index.js";

const TTL = 3000; // ms; renewals every TTL/3, the local deadline at 3/4 TTL
const started = Date.now();
const say = (line: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}`);

// ---------------------------------------------------------------- etcd

function findEtcd(): string | undefined {
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    try {
      accessSync(join(dir, "etcd"), constants.X_OK);
      return join(dir, "etcd");
    } catch {
      // not here
    }
  }
  return undefined;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts etcd and waits until it is healthy; returns its URL and how to stop it. */
async function startEtcd(binary: string): Promise<{ url: string; stop(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), "fleet-etcd-"));
  const url = `http://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const child = spawn(
    binary,
    [`--data-dir=${dataDir}`, `--listen-client-urls=${url}`, `--advertise-client-urls=${url}`, `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=default=${peer}`, "--logger=zap", "--log-level=error"],
    { stdio: "ignore" },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) child.kill("SIGTERM");
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  };
  for (let tries = 0; tries < 200; tries++) {
    if (child.exitCode !== null) break;
    const healthy = await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (healthy) return { url, stop };
    await sleep(50);
  }
  await stop();
  throw new Error("etcd did not start; run it by hand to see why");
}

// ---------------------------------------------------------------- the fleet

const leader = resource<LeaseFlag>("leader");

interface Agent {
  readonly name: string;
  readonly client: Etcd3;
  readonly engine: Engine;
}

function startAgent(name: string, url: string): Agent {
  const client = new Etcd3({ hosts: url });
  const engine = new Engine({ bounceDelay: 10 });
  engine.install(leader, leaseFlag({ provider: new EtcdLeaseProvider({ client }), key: "janitor", holder: name, ttl: TTL }));
  engine.install(
    "janitor",
    gated(
      manifold({
        inputs: [leader],
        start: ({ getResource }) => {
          const { token, signal: term } = getResource(leader);
          say(`${name}: janitor starts, fencing token ${token}`);
          return createWorker(async (signal) => {
            let sweeps = 0;
            // Stop at once when the term ends, even before the engine stops us.
            while (!signal.aborted && !term.aborted) {
              await sleep(1000, undefined, { signal }).catch(() => undefined);
              if (!signal.aborted && !term.aborted) say(`${name}: sweep ${++sweeps} under token ${token}`);
            }
            say(`${name}: janitor stops`);
          });
        },
      }),
      { flags: [leader] },
    ),
  );
  return { name, client, engine };
}

function leaderOf(agents: Agent[]): Agent | undefined {
  return agents.find((agent) => agent.engine.report().manifolds["janitor"]?.state === "started");
}

async function main(): Promise<void> {
  const binary = findEtcd();
  if (binary === undefined) {
    console.log("This example needs the etcd binary on PATH. Install it with:");
    console.log("  sudo apt-get install etcd-server        # Debian, Ubuntu");
    console.log("  brew install etcd                       # macOS");
    console.log("or download a release from https://github.com/etcd-io/etcd/releases, then run it again.");
    return;
  }
  const etcd = await startEtcd(binary);
  say(`etcd is up at ${etcd.url}`);
  const agents = ["agent-1", "agent-2", "agent-3"].map((name) => startAgent(name, etcd.url));
  try {
    await sleep(3500);
    const first = leaderOf(agents);
    if (first === undefined) throw new Error("nobody took the lease");
    for (const agent of agents) {
      const report = agent.engine.report().manifolds["leader"]?.report ?? {};
      say(`${agent.name}: ${report["held"] ? `holds the lease (token ${report["token"]})` : `waits (held by ${report["heldBy"]})`}`);
    }

    say(`killing ${first.name} without a word: its etcd connection goes first, so it cannot release the lease`);
    const killedAt = Date.now();
    first.client.close();
    first.engine.kill();
    await first.engine.wait().catch(() => undefined);
    while (leaderOf(agents.filter((a) => a !== first)) === undefined) {
      if (Date.now() - killedAt > 3 * TTL) throw new Error("nobody took over");
      await sleep(20);
    }
    const next = leaderOf(agents) as Agent;
    say(`${next.name} took over ${Date.now() - killedAt} ms after ${first.name} died (TTL ${TTL} ms, renewals every ${TTL / 3} ms)`);
    await sleep(2500);
  } finally {
    say("stopping the fleet and etcd");
    for (const agent of agents) agent.engine.kill();
    for (const agent of agents) await agent.engine.wait().catch((error: unknown) => say(`${agent.name}: ${String(error)}`));
    for (const agent of agents) agent.client.close();
    await etcd.stop();
    say("done");
  }
}

// Nothing is left running afterwards (engines, clients, etcd, timers), so the process ends by itself.
main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
