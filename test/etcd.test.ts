/**
 * The etcd lease provider against a real etcd server, started here on
 * 127.0.0.1 with a temporary data directory and free ports, and stopped
 * afterwards. Three engines in this process play three machines; each talks to
 * etcd through its own TCP proxy, which the tests cut to simulate a partition.
 *
 * Every gated worker records its start and stop in this process (one thread:
 * the order of that log is the real order) and writes its fencing token to
 * etcd every 100 ms with a fenced write (refused if a larger token has been
 * written). The checks: never two gated workers at once, a larger token for
 * every new holder, tokens in etcd in non-decreasing revision order, no
 * fenced write ever refused.
 *
 * Real time, because etcd keeps real time: TTL 3 s. The bounds asserted come
 * from the design (TTL + one renew period for a takeover, the local deadline
 * for a stop), plus a stated slack for etcd's 500 ms expiry sweep and for a
 * busy machine. The measured times are printed; README "Running on many
 * machines" records them.
 *
 * Without the `etcd` binary (Debian: `apt-get install etcd-server`) the tests
 * are skipped with a warning, except under CI=true, where that is a failure.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdLeaseProvider } from "../src/etcd.js";
import { createWorker, Engine, gated, leaseFlag, LeaseLostError, manifold, resource, type LeaseFlag } from "../src/index.js";
import { failOnUnhandledRejections } from "./fixtures.js";

const TTL = 3000;
const RENEW = TTL / 3;
const DEADLINE = (TTL * 3) / 4;
/** etcd revokes expired leases in a sweep every 500 ms; the engine adds two bounces; a loaded machine adds delay. */
const SLACK = 1000;

/** The etcd binary: $ETCD_BIN if set (and only it), else `etcd` on PATH. */
function findEtcd(): string | undefined {
  const chosen = process.env["ETCD_BIN"];
  const candidates = chosen !== undefined ? [chosen] : (process.env["PATH"] ?? "").split(delimiter).map((dir) => join(dir, "etcd"));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

const etcdBinary = findEtcd();
const underCI = process.env["CI"] === "true";
const howToInstall = "install it with `apt-get install etcd-server` (Debian/Ubuntu) or from https://github.com/etcd-io/etcd/releases, or set ETCD_BIN";

if (etcdBinary === undefined && !underCI) {
  console.warn(`\n${"!".repeat(78)}\n!! test/etcd.test.ts SKIPPED: no etcd binary on PATH; ${howToInstall}.\n${"!".repeat(78)}\n`);
}

describe.runIf(etcdBinary === undefined && underCI)("etcd integration under CI", () => {
  it("needs the etcd binary", () => {
    throw new Error(`CI=true but no etcd binary on PATH: ${howToInstall} (.ci/run does this before the tests)`);
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One etcd member on 127.0.0.1, its data in a temporary directory; restartable with its data. */
class EtcdServer {
  readonly url: string;
  #child: ChildProcess | undefined;
  #output = "";

  private constructor(
    readonly binary: string,
    readonly dataDir: string,
    readonly clientPort: number,
    readonly peerPort: number,
  ) {
    this.url = `http://127.0.0.1:${clientPort}`;
  }

  static async create(binary: string): Promise<EtcdServer> {
    const server = new EtcdServer(binary, mkdtempSync(join(tmpdir(), "manifold-etcd-")), await freePort(), await freePort());
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const child = spawn(
      this.binary,
      [
        "--name=test",
        `--data-dir=${this.dataDir}`,
        `--listen-client-urls=${this.url}`,
        `--advertise-client-urls=${this.url}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=test=${peer}`,
        "--logger=zap",
        "--log-level=error",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.on("data", (chunk: Buffer) => (this.#output += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (this.#output += chunk.toString()));
    this.#child = child;
    // Never leave an etcd behind, whatever happens to this test process.
    const reap = (): void => void child.kill("SIGKILL");
    process.once("exit", reap);
    child.once("exit", () => process.off("exit", reap));
    const until = Date.now() + 20_000;
    while (Date.now() < until) {
      if (child.exitCode !== null) throw new Error(`etcd exited with code ${child.exitCode}:\n${this.#output}`);
      try {
        const response = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(500) });
        if (response.ok && ((await response.json()) as { health?: string }).health === "true") return;
      } catch {
        // not up yet
      }
      await sleep(50);
    }
    throw new Error(`etcd did not become healthy within 20 s:\n${this.#output}`);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(killer);
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** A TCP proxy between one member and etcd; `cut()` makes it a black hole (a partition: silence, no errors). */
class Proxy {
  readonly #server: Server;
  readonly #pairs = new Set<{ client: Socket; upstream: Socket | undefined }>();
  #cut = false;
  port = 0;

  constructor(readonly targetPort: number) {
    this.#server = createServer((client) => this.#accept(client));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.#cut = true;
    for (const pair of this.#pairs) this.#blackHole(pair);
  }

  heal(): void {
    this.#cut = false;
    // Drop the black-holed connections: the client notices and dials again, through us.
    for (const pair of this.#pairs) pair.client.destroy();
    this.#pairs.clear();
  }

  async close(): Promise<void> {
    for (const pair of this.#pairs) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    this.#pairs.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const pair: { client: Socket; upstream: Socket | undefined } = { client, upstream: undefined };
    this.#pairs.add(pair);
    client.on("error", () => undefined);
    client.on("close", () => {
      pair.upstream?.destroy();
      this.#pairs.delete(pair);
    });
    if (this.#cut) {
      this.#blackHole(pair);
      return;
    }
    const upstream = connect(this.targetPort, "127.0.0.1");
    upstream.on("error", () => client.destroy());
    upstream.on("close", () => {
      if (!this.#cut) client.destroy();
    });
    pair.upstream = upstream;
    client.pipe(upstream);
    upstream.pipe(client);
  }

  #blackHole(pair: { client: Socket; upstream: Socket | undefined }): void {
    pair.client.unpipe();
    pair.upstream?.unpipe();
    pair.upstream?.destroy();
    pair.upstream = undefined;
    pair.client.on("data", () => undefined); // swallow everything the member sends
    pair.client.resume();
  }
}

type Event = { type: "start" | "stop"; holder: string; token: number; at: number };

const lease = resource<LeaseFlag>("lease");
const pad = (token: number): string => String(token).padStart(16, "0");

/** One member of the fleet: a proxy, an etcd3 client through it, an engine with a lease flag and a gated worker. */
interface Member {
  readonly name: string;
  readonly proxy: Proxy;
  readonly client: Etcd3;
  readonly engine: Engine;
  stopped: boolean;
}

/** The shared bookkeeping of one scenario. */
class Scenario {
  readonly events: Event[] = [];
  readonly overlaps: string[] = [];
  readonly refused: string[] = [];
  readonly members: Member[] = [];
  writes = 0;
  failedWrites = 0;
  readonly #running = new Map<string, Event>();
  readonly fence: string;
  readonly log: string;

  constructor(
    readonly name: string,
    readonly server: EtcdServer,
    readonly harness: Etcd3,
  ) {
    this.fence = `test/${name}/fence`;
    this.log = `test/${name}/writes/`;
  }

  async start(size: number): Promise<void> {
    await this.harness.put(this.fence).value(pad(0));
    for (let i = 1; i <= size; i++) {
      const name = `${this.name}-agent-${i}`;
      const proxy = new Proxy(this.server.clientPort);
      await proxy.listen();
      const client = new Etcd3({ hosts: proxy.url });
      const engine = new Engine({ bounceDelay: 10, errorDelay: 500, jitter: 0, stopTimeout: 10_000 });
      engine.install(lease, leaseFlag({ provider: new EtcdLeaseProvider({ client }), key: this.name, holder: name, ttl: TTL }));
      engine.install("singleton", this.#singleton());
      this.members.push({ name, proxy, client, engine, stopped: false });
    }
  }

  running(): Event[] {
    return [...this.#running.values()];
  }

  starts(): Event[] {
    return this.events.filter((event) => event.type === "start");
  }

  /** Waits (real time, polling) until `condition` holds; returns the milliseconds it took, or fails after `limit`. */
  async until(what: string, condition: () => boolean, limit: number): Promise<number> {
    const from = performance.now();
    while (!condition()) {
      if (performance.now() - from > limit) throw new Error(`${this.name}: not within ${limit} ms: ${what}\nevents: ${JSON.stringify(this.events)}`);
      await sleep(10);
    }
    return performance.now() - from;
  }

  member(name: string): Member {
    const member = this.members.find((m) => m.name === name);
    if (member === undefined) throw new Error(`no member ${name}`);
    return member;
  }

  flagReport(member: Member): Record<string, unknown> {
    return member.engine.report().manifolds["lease"]?.report ?? {};
  }

  /** Kills a member's engine and closes its client. */
  async stopMember(member: Member): Promise<void> {
    if (member.stopped) return;
    member.stopped = true;
    member.engine.kill();
    await member.engine.wait();
    member.client.close();
    await member.proxy.close();
  }

  async stopAll(): Promise<void> {
    for (const member of this.members) member.proxy.heal();
    await Promise.all(this.members.map((member) => this.stopMember(member)));
  }

  /** The safety checks every scenario ends with. */
  async expectSafe(): Promise<void> {
    expect(this.overlaps, "two gated workers at once").toEqual([]);
    let last = 0;
    let running: Event | undefined;
    for (const event of this.events) {
      if (event.type === "start") {
        expect(running, `${event.holder} started while ${running?.holder} ran`).toBeUndefined();
        expect(event.token, `token of ${event.holder}`).toBeGreaterThan(last);
        last = event.token;
        running = event;
      } else {
        expect(event.holder).toBe(running?.holder);
        running = undefined;
      }
    }
    expect(this.refused, "fenced writes refused: a stale holder wrote after a newer one").toEqual([]);
    const kvs = (await this.harness.getAll().prefix(this.log).exec()).kvs;
    const written = kvs
      .map((kv) => ({ revision: Number(kv.mod_revision), ...(JSON.parse(kv.value.toString()) as { token: number; holder: string }) }))
      .sort((a, b) => a.revision - b.revision);
    expect(written.length).toBe(this.writes);
    for (let i = 1; i < written.length; i++) {
      expect(written[i]!.token, `token of write ${i} (revision ${written[i]!.revision}) by ${written[i]!.holder}`).toBeGreaterThanOrEqual(written[i - 1]!.token);
    }
    // Every term that wrote at all shows up in etcd, in the order of the terms.
    const termsInEtcd = [...new Set(written.map((w) => w.token))];
    expect(termsInEtcd).toEqual([...termsInEtcd].sort((a, b) => a - b));
  }

  /** A gated worker: records its term here, and writes its token to etcd every 100 ms, fenced. */
  #singleton() {
    return gated(
      manifold({
        inputs: [lease],
        start: ({ getResource }) => {
          const flag = getResource(lease);
          const token = flag.token as number;
          const start: Event = { type: "start", holder: flag.holder, token, at: performance.now() };
          for (const other of this.#running.values()) this.overlaps.push(`${flag.holder} (token ${token}) started while ${other.holder} (token ${other.token}) ran`);
          this.#running.set(flag.holder, start);
          this.events.push(start);
          return createWorker(async (signal) => {
            try {
              while (!signal.aborted && !flag.signal.aborted) {
                await this.#fencedWrite(flag.holder, token);
                await sleep(100, undefined, { signal }).catch(() => undefined);
              }
            } finally {
              // Recorded only once the last write has settled: nothing of this term reaches etcd after this.
              this.#running.delete(flag.holder);
              this.events.push({ type: "stop", holder: flag.holder, token, at: performance.now() });
            }
          });
        },
      }),
      { flags: [lease] },
    );
  }

  /** Writes `token` to the log, only if no larger token has been written (the fence a real resource would keep). */
  async #fencedWrite(holder: string, token: number): Promise<void> {
    const seq = ++this.writes;
    try {
      const result = await this.harness
        .if(this.fence, "Value", "<", pad(token + 1))
        .then(this.harness.put(this.fence).value(pad(token)), this.harness.put(`${this.log}${String(seq).padStart(8, "0")}`).value(JSON.stringify({ token, holder })))
        .options({ deadline: Date.now() + 500 })
        .commit();
      if (!result.succeeded) this.refused.push(`${holder} token ${token} (write ${seq})`);
    } catch {
      // etcd unreachable (the restart scenario): the write did not happen, or did; count neither way.
      this.writes--;
      this.failedWrites++;
    }
  }
}

/** Time figures printed at the end (and recorded in the README). */
const figures: string[] = [];

describe.runIf(etcdBinary !== undefined)("EtcdLeaseProvider against a real etcd", () => {
  failOnUnhandledRejections();
  let server: EtcdServer;
  let harness: Etcd3;
  const scenarios: Scenario[] = [];

  beforeAll(async () => {
    server = await EtcdServer.create(etcdBinary as string);
    harness = new Etcd3({ hosts: server.url });
  }, 30_000);

  afterAll(async () => {
    for (const scenario of scenarios) await scenario.stopAll().catch(() => undefined);
    harness?.close();
    await server?.destroy();
    if (figures.length > 0) console.log(`\netcd lease figures (TTL ${TTL} ms, renew every ${RENEW} ms, local deadline ${DEADLINE} ms):\n  ${figures.join("\n  ")}\n`);
  }, 30_000);

  async function scenario(name: string, size = 3): Promise<Scenario> {
    const s = new Scenario(name, server, harness);
    scenarios.push(s);
    await s.start(size);
    await s.until("one member runs the gated worker", () => s.running().length === 1, 10_000);
    return s;
  }

  it("acquires, refuses a second holder, renews, releases, with growing tokens", async () => {
    const provider = new EtcdLeaseProvider({ client: harness, prefix: "test/basic/" });
    const first = await provider.acquire({ key: "k", holder: "a", ttl: 2000 });
    if (!first.acquired) throw new Error("the free lease was not acquired");
    expect(first.lease).toMatchObject({ key: "k", holder: "a", ttl: 2000 });
    expect(await provider.acquire({ key: "k", holder: "b", ttl: 2000 })).toEqual({ acquired: false, holder: "a", token: first.lease.token });
    expect(await harness.get("test/basic/k").string()).toBe("a");
    await first.lease.renew({ timeout: 1000 });
    await first.lease.release();
    await first.lease.release();
    expect(await harness.get("test/basic/k").string()).toBeNull();
    await expect(first.lease.renew()).rejects.toBeInstanceOf(LeaseLostError);
    const second = await provider.acquire({ key: "k", holder: "b", ttl: 1500 });
    if (!second.acquired) throw new Error("the released lease was not acquired");
    expect(second.lease.token).toBeGreaterThan(first.lease.token);
    expect(second.lease.ttl).toBe(2000); // etcd counts whole seconds: rounded up
    // Deleted by hand: the next renewal finds out, and the listeners hear of it.
    const lost: string[] = [];
    second.lease.onLost((error) => lost.push(error.message));
    await harness.delete().key("test/basic/k");
    await expect(second.lease.renew()).rejects.toThrow(/lease "k" of "b" \(token \d+\) is gone: its key was deleted from etcd/);
    expect(lost).toHaveLength(1);
    await second.lease.release();
    await expect(provider.acquire({ key: "", holder: "b", ttl: 1000 })).rejects.toThrow(/EtcdLeaseProvider.acquire: key must be a non-empty string/);
    expect(() => new EtcdLeaseProvider({ client: {} as never })).toThrow(/EtcdLeaseProvider: client must be an etcd3 client or namespace/);
  });

  it("lets an expired lease go: the key disappears and renewing fails", async () => {
    const provider = new EtcdLeaseProvider({ client: harness, prefix: "test/expiry/" });
    const claim = await provider.acquire({ key: "k", holder: "a", ttl: 2000 });
    if (!claim.acquired) throw new Error("not acquired");
    const from = performance.now();
    while ((await harness.get("test/expiry/k").string()) !== null) {
      if (performance.now() - from > 2000 + SLACK + 1000) throw new Error("the expired lease's key is still in etcd");
      await sleep(50);
    }
    const gone = performance.now() - from;
    expect(gone).toBeGreaterThanOrEqual(2000 - 100);
    await expect(claim.lease.renew()).rejects.toThrow(/expired on the etcd server/);
    figures.push(`a lease of TTL 2000 ms, never renewed, disappeared from etcd after ${gone.toFixed(0)} ms`);
  });

  it("runs the gated worker on exactly one of three engines, keeping it there while renewals succeed", async () => {
    const s = await scenario("steady");
    const [holder] = s.running();
    await sleep(2 * TTL);
    expect(s.running().map((e) => e.holder)).toEqual([holder!.holder]);
    expect(s.starts()).toHaveLength(1);
    const report = s.flagReport(s.member(holder!.holder));
    expect(report).toMatchObject({ held: true, token: holder!.token, failedRenewals: 0 });
    expect(report["renewals"] as number).toBeGreaterThanOrEqual(5);
    for (const m of s.members.filter((m) => m.name !== holder!.holder)) {
      expect(s.flagReport(m)).toMatchObject({ held: false, heldBy: holder!.holder, heldByToken: holder!.token });
    }
    expect(s.writes).toBeGreaterThan(10);
    await s.stopAll();
    await s.expectSafe();
  });

  it("takes over within TTL + one renew period when the holder's process dies", async () => {
    const s = await scenario("crash");
    await sleep(RENEW / 2);
    const [old] = s.running();
    const victim = s.member(old!.holder);
    const crashAt = performance.now();
    victim.proxy.cut(); // from now on etcd hears nothing from it, as from a dead process
    victim.engine.kill();
    const took = await s.until("another member takes over", () => s.running().some((e) => e.holder !== old!.holder), TTL + RENEW + SLACK + 2000);
    const fresh = s.running()[0]!;
    expect(fresh.token).toBeGreaterThan(old!.token);
    figures.push(`holder crashed: another took over after ${took.toFixed(0)} ms (bound: TTL + renew = ${TTL + RENEW} ms, + ${SLACK} ms slack)`);
    expect(performance.now() - crashAt).toBeLessThanOrEqual(TTL + RENEW + SLACK);
    await s.stopAll();
    await s.expectSafe();
  });

  it("a partitioned holder stops its gated worker before the TTL runs out; the new holder's token is greater", async () => {
    const s = await scenario("partition");
    await sleep(RENEW / 2);
    const [old] = s.running();
    const victim = s.member(old!.holder);
    const validFor = s.flagReport(victim)["validFor"] as number;
    const cutAt = performance.now();
    victim.proxy.cut();
    const stoppedAfter = await s.until("the partitioned holder stops", () => s.running().length === 0, DEADLINE + SLACK);
    // Its local deadline: DEADLINE after it sent its last successful renewal, which etcd received no earlier.
    const lastRenewal = cutAt + validFor - DEADLINE;
    const stoppedAt = cutAt + stoppedAfter;
    expect(stoppedAt - lastRenewal, "stopped before the TTL ran out on the server").toBeLessThan(TTL);
    figures.push(`holder partitioned: it stopped its worker ${(stoppedAt - lastRenewal).toFixed(0)} ms after its last successful renewal (deadline ${DEADLINE} ms, TTL ${TTL} ms)`);
    expect(victim.engine.report().manifolds["lease"]?.error).toMatch(/local deadline/);
    const took = await s.until("another member takes over", () => s.running().length === 1, TTL + RENEW + SLACK);
    const fresh = s.running()[0]!;
    expect(fresh.holder).not.toBe(old!.holder);
    expect(fresh.token).toBeGreaterThan(old!.token);
    figures.push(`holder partitioned: another took over ${(stoppedAfter + took).toFixed(0)} ms after the cut`);
    // Healed, the old holder finds the lease taken and stays a candidate.
    victim.proxy.heal();
    await s.until(
      "the healed member sees the new holder",
      () => s.flagReport(victim)["heldBy"] === fresh.holder,
      2 * RENEW + 6000, // etcd3 opens a 5 s circuit after three failed calls
    );
    expect(s.running().map((e) => e.holder)).toEqual([fresh.holder]);
    await s.stopAll();
    await s.expectSafe();
  });

  it("when etcd itself restarts, the holder stops, then one member resumes with a greater token", async () => {
    const s = await scenario("restart");
    const [old] = s.running();
    const downAt = performance.now();
    await server.stop();
    const stoppedAfter = await s.until("the holder stops while etcd is down", () => s.running().length === 0, DEADLINE + SLACK);
    figures.push(`etcd stopped: the holder stopped its worker ${stoppedAfter.toFixed(0)} ms later`);
    await sleep(TTL); // nobody may start while etcd is down
    expect(s.running()).toEqual([]);
    expect(s.starts()).toHaveLength(1);
    await server.start();
    const upAt = performance.now();
    // etcd extends every lease by its TTL when it comes back; clients may wait out a 5 s circuit breaker.
    const took = await s.until("one member resumes", () => s.running().length === 1, TTL + RENEW + 6000 + SLACK);
    const fresh = s.running()[0]!;
    expect(fresh.token).toBeGreaterThan(old!.token);
    figures.push(`etcd down for ${((upAt - downAt) / 1000).toFixed(1)} s: a holder resumed ${took.toFixed(0)} ms after it came back`);
    await sleep(RENEW);
    expect(s.running()).toHaveLength(1);
    await s.stopAll();
    await s.expectSafe();
  });
});
