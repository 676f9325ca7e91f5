/**
 * Leases in one process: the in-memory provider, and lease flags gating a
 * worker across several engines, all on one fake clock (deterministic: time
 * moves only when a test says so).
 */
import { describe, expect, it } from "vitest";
import {
  BounceError,
  createWorker,
  Engine,
  errorIs,
  gated,
  leaseFlag,
  LeaseLostError,
  manifold,
  MemoryLeaseProvider,
  resource,
  type Lease,
  type LeaseClaim,
  type LeaseFlag,
  type LeaseProvider,
  type LeaseRequest,
  type Manifold,
} from "../src/index.js";
import { deferred, FakeClock, failOnUnhandledRejections, settle } from "./fixtures.js";

failOnUnhandledRejections();

const TTL = 3000;
const RENEW = TTL / 3;
const DEADLINE = (TTL * 3) / 4;
const BOUNCE = 10;

/** A worker that runs until killed. */
const idle = (): ReturnType<typeof createWorker> => createWorker((signal) => new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve())));

/** A promise that never settles: a call into a partition. */
const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

async function claim(provider: LeaseProvider, holder: string, key = "k", ttl = TTL): Promise<LeaseClaim> {
  return provider.acquire({ key, holder, ttl });
}

async function acquired(provider: LeaseProvider, holder: string, key = "k", ttl = TTL): Promise<Lease> {
  const result = await claim(provider, holder, key, ttl);
  if (!result.acquired) throw new Error(`expected ${holder} to acquire ${key}, but ${result.holder} holds it`);
  return result.lease;
}

describe("MemoryLeaseProvider", () => {
  it("grants one holder at a time, with a larger token for every grant", async () => {
    const provider = new MemoryLeaseProvider({ clock: new FakeClock() });
    const a = await acquired(provider, "a");
    expect(a).toMatchObject({ key: "k", holder: "a", token: 1, ttl: TTL });
    expect(await claim(provider, "b")).toEqual({ acquired: false, holder: "a", token: 1 });
    expect(await claim(provider, "a")).toEqual({ acquired: false, holder: "a", token: 1 }); // not even its holder twice
    await a.release();
    const b = await acquired(provider, "b");
    expect(b.token).toBe(2);
    await b.release();
    const again = await acquired(provider, "a");
    expect(again.token).toBe(3);
    const other = await acquired(provider, "x", "other-key");
    expect(other.token).toBe(4);
  });

  it("expires a lease exactly ttl after its last renewal, telling its listeners once", async () => {
    const clock = new FakeClock();
    const provider = new MemoryLeaseProvider({ clock });
    const lease = await acquired(provider, "a");
    const losses: LeaseLostError[] = [];
    lease.onLost((error) => losses.push(error));
    await clock.advance(TTL - 1);
    await lease.renew();
    expect(provider.holderOf("k")).toEqual({ holder: "a", token: 1, expiresAt: clock.now() + TTL });
    await clock.advance(TTL - 1);
    expect(losses).toEqual([]);
    await clock.advance(1);
    expect(losses).toHaveLength(1);
    expect(losses[0]).toBeInstanceOf(LeaseLostError);
    expect(losses[0]?.message).toBe('lease "k" of "a" expired: not renewed within its 3000 ms TTL');
    expect(provider.holderOf("k")).toBeUndefined();
    await expect(lease.renew()).rejects.toThrow(/lease "k" of "a" \(token 1\) is gone/);
    await expect(lease.renew()).rejects.toBeInstanceOf(LeaseLostError);
    expect(losses).toHaveLength(1);
    expect((await acquired(provider, "b")).token).toBe(2);
  });

  it("revoke ends the lease as a server would; release ends it quietly", async () => {
    const provider = new MemoryLeaseProvider({ clock: new FakeClock() });
    const lease = await acquired(provider, "a");
    const told: string[] = [];
    lease.onLost(() => {
      throw new Error("a broken listener");
    });
    lease.onLost((error) => told.push(error.message));
    const removed = lease.onLost(() => told.push("removed listener called"));
    removed();
    expect(provider.revoke("k")).toBe(true);
    expect(provider.revoke("k")).toBe(false);
    expect(told).toEqual(['lease "k" of "a" was revoked']);
    // A listener added after the loss hears of it at once, in a microtask.
    lease.onLost((error) => told.push(`late: ${error.message}`));
    expect(told).toHaveLength(1);
    await settle(1);
    expect(told).toEqual(['lease "k" of "a" was revoked', 'late: lease "k" of "a" was revoked']);

    const quiet = await acquired(provider, "b");
    let lost = false;
    quiet.onLost(() => (lost = true));
    await quiet.release();
    await quiet.release(); // idempotent
    expect(lost).toBe(false);
    expect(provider.holderOf("k")).toBeUndefined();
    await expect(quiet.renew()).rejects.toThrow(/lease "k" of "b" was released/);
  });

  it("a stale lease's release never frees its successor's", async () => {
    const clock = new FakeClock();
    const provider = new MemoryLeaseProvider({ clock });
    const old = await acquired(provider, "a");
    await clock.advance(TTL);
    const next = await acquired(provider, "b");
    await old.release();
    expect(provider.holderOf("k")).toMatchObject({ holder: "b", token: next.token });
  });

  it("rejects malformed requests with a TypeError naming the field", async () => {
    const provider = new MemoryLeaseProvider();
    const bad = (request: unknown): Promise<LeaseClaim> => provider.acquire(request as LeaseRequest);
    await expect(bad(null)).rejects.toThrow(/MemoryLeaseProvider.acquire: the request must be an object with key, holder and ttl \(got null\)/);
    await expect(bad({ holder: "a", ttl: 1 })).rejects.toThrow(/key must be a non-empty string \(got undefined\)/);
    await expect(bad({ key: "k", holder: "", ttl: 1 })).rejects.toThrow(/holder must be a non-empty string naming who asks \(got ""\)/);
    await expect(bad({ key: "k", holder: "a", ttl: 0 })).rejects.toThrow(/ttl must be a finite number of milliseconds > 0 \(got number 0\)/);
    await expect(bad({ key: "k", holder: "a", ttl: Infinity })).rejects.toThrow(TypeError);
    await expect(bad({ key: "k", holder: "a", ttl: 5, timeout: -1 })).rejects.toThrow(/timeout must be a finite number of milliseconds > 0 when present/);
    expect(() => new MemoryLeaseProvider({ clock: { now: () => 0 } as never })).toThrow(/MemoryLeaseProvider: clock must have now\(\), setTimeout\(fn, ms\) and clearTimeout\(handle\)/);
    const lease = await acquired(provider, "a");
    expect(() => lease.onLost("x" as never)).toThrow(/listener must be a function/);
    await lease.release();
  });
});

describe("leaseFlag options", () => {
  const provider = new MemoryLeaseProvider();
  const base = { provider, key: "k", holder: "a", ttl: TTL };
  it.each([
    [{ ...base, provider: {} }, /leaseFlag: provider must be a LeaseProvider, an object with acquire\(\)/],
    [{ ...base, key: "" }, /leaseFlag: key must be a non-empty string naming the lease \(got ""\)/],
    [{ ...base, holder: 7 }, /leaseFlag: holder must be a non-empty string naming this member of the fleet \(got number 7\)/],
    [{ ...base, ttl: -5 }, /leaseFlag "k": ttl must be a finite number of milliseconds > 0/],
    [{ ...base, renewInterval: 0 }, /leaseFlag "k": renewInterval must be a finite number of milliseconds > 0/],
    [{ ...base, deadline: TTL }, /leaseFlag "k": deadline must be a number of milliseconds > 0 and < ttl \(3000\)/],
    [{ ...base, deadline: 900 }, /leaseFlag "k": renewInterval \(1000\) must be less than deadline \(900\)/],
    [{ ...base, clock: { now: () => 1 } }, /leaseFlag "k": clock must have now\(\), setTimeout/],
    [null, /leaseFlag\(options\): options must be an object/],
  ])("refuses %j", (options, message) => {
    expect(() => leaseFlag(options as never)).toThrow(message);
  });
});

// ---------------------------------------------------------------------------
// A fleet of engines on one fake clock

/** Wraps a provider so a test can cut one member off: its calls then never settle, and it hears of no loss. */
class Partitionable implements LeaseProvider {
  cut = false;
  acquires = 0;
  constructor(readonly inner: LeaseProvider) {}

  async acquire(request: LeaseRequest): Promise<LeaseClaim> {
    this.acquires++;
    if (this.cut) return never();
    const result = await this.inner.acquire(request);
    if (this.cut) return never(); // the answer is lost on the way back
    return result.acquired ? { acquired: true, lease: this.#wrap(result.lease) } : result;
  }

  #wrap(lease: Lease): Lease {
    return {
      key: lease.key,
      holder: lease.holder,
      token: lease.token,
      ttl: lease.ttl,
      renew: (options) => (this.cut ? never() : lease.renew(options)),
      release: (options) => (this.cut ? never() : lease.release(options)),
      onLost: (listener) => lease.onLost((error) => this.cut || listener(error)),
    };
  }
}

type Event = { type: "start" | "stop"; holder: string; token: number | undefined; at: number };

/** Asserts the history a fleet's gated workers left: never two running, tokens growing with every start. */
function expectNoOverlap(history: readonly Event[]): void {
  let running: Event | undefined;
  let lastToken = 0;
  for (const event of history) {
    if (event.type === "start") {
      expect(running, `${event.holder} started at ${event.at} while ${running?.holder} ran`).toBeUndefined();
      expect(event.token, `token of ${event.holder} at ${event.at}`).toBeGreaterThan(lastToken);
      lastToken = event.token ?? Number.NaN;
      running = event;
    } else {
      expect(running?.holder, `stop of ${event.holder} at ${event.at}`).toBe(event.holder);
      running = undefined;
    }
  }
}

const lease = resource<LeaseFlag>("lease");

interface Member {
  readonly name: string;
  readonly engine: Engine;
  readonly provider: Partitionable;
}

interface Fleet {
  readonly clock: FakeClock;
  readonly server: MemoryLeaseProvider;
  readonly members: Member[];
  readonly history: Event[];
  /** Names of the members whose gated worker runs now. */
  running(): string[];
  /** Tokens the gated workers were handed, in order. */
  tokens(): (number | undefined)[];
  /** Moves time on, checking after every step that at most one gated worker runs. */
  advance(ms: number, step?: number): Promise<void>;
  stop(): Promise<void>;
}

/** A gated worker that records its start (with the flag's token) and its stop. */
function singleton(clock: FakeClock, history: Event[]): Manifold {
  return gated(
    manifold({
      inputs: [lease],
      start: ({ getResource }) => {
        const flag = getResource(lease);
        history.push({ type: "start", holder: flag.holder, token: flag.token, at: clock.now() });
        return createWorker(
          (signal) =>
            new Promise<void>((resolve) =>
              signal.addEventListener("abort", () => {
                history.push({ type: "stop", holder: flag.holder, token: flag.token, at: clock.now() });
                resolve();
              }),
            ),
        );
      },
    }),
    { flags: [lease] },
  );
}

async function fleet(size: number): Promise<Fleet> {
  const clock = new FakeClock();
  const server = new MemoryLeaseProvider({ clock });
  const history: Event[] = [];
  const members: Member[] = [];
  for (let i = 1; i <= size; i++) {
    const name = `agent-${i}`;
    const provider = new Partitionable(server);
    const engine = new Engine({ clock, jitter: 0, bounceDelay: BOUNCE, errorDelay: 1000 });
    engine.install(lease, leaseFlag({ provider, key: "leader", holder: name, ttl: TTL, clock }));
    engine.install("singleton", singleton(clock, history));
    members.push({ name, engine, provider });
  }
  const running = (): string[] => members.filter((m) => m.engine.report().manifolds["singleton"]?.state === "started").map((m) => m.name);
  const f: Fleet = {
    clock,
    server,
    members,
    history,
    running,
    tokens: () => history.filter((e) => e.type === "start").map((e) => e.token),
    async advance(ms, step = 50) {
      for (let t = 0; t < ms; t += step) {
        await clock.advance(Math.min(step, ms - t));
        expect(running().length, `gated workers running at ${clock.now()}`).toBeLessThanOrEqual(1);
        expectNoOverlap(history);
      }
    },
    async stop() {
      for (const m of members) m.provider.cut = false;
      for (const m of members) m.engine.kill();
      // Holders release within one renew interval at most.
      await clock.advance(RENEW);
      for (const m of members) await m.engine.wait();
      expectNoOverlap(history);
      // Nothing left behind: no lease held, no timer pending.
      expect(server.holderOf("leader")).toBeUndefined();
      expect(clock.pending).toEqual([]);
    },
  };
  await f.advance(100);
  return f;
}

function holderOf(f: Fleet): Member {
  const names = f.running();
  expect(names).toHaveLength(1);
  return f.members.find((m) => m.name === names[0]) as Member;
}

function flagReport(member: Member): Record<string, unknown> {
  return member.engine.report().manifolds["lease"]?.report ?? {};
}

describe("leaseFlag across engines", () => {
  it("runs the gated worker on exactly one member, which holds the lease and its token", async () => {
    const f = await fleet(3);
    const leader = holderOf(f);
    expect(f.server.holderOf("leader")).toMatchObject({ holder: leader.name, token: 1 });
    expect(f.tokens()).toEqual([1]);
    for (const m of f.members) {
      const report = flagReport(m);
      if (m === leader) expect(report).toMatchObject({ key: "leader", holder: m.name, held: true, token: 1 });
      else expect(report).toMatchObject({ key: "leader", holder: m.name, held: false, heldBy: leader.name, heldByToken: 1 });
    }
    // Renewals keep it there: ten TTLs later, still one start.
    await f.advance(10 * TTL, 250);
    expect(f.running()).toEqual([leader.name]);
    expect(f.tokens()).toEqual([1]);
    expect(flagReport(leader)).toMatchObject({ renewals: 30, failedRenewals: 0 });
    await f.stop();
  });

  it("hands over within one renew period when the holder's engine stops cleanly (it releases the lease)", async () => {
    const f = await fleet(3);
    const leader = holderOf(f);
    const stoppedAt = f.clock.now();
    leader.engine.kill();
    await leader.engine.wait();
    let takeover: number | undefined;
    for (let t = 0; t < TTL && takeover === undefined; t += 10) {
      await f.advance(10, 10);
      if (f.running().length === 1) takeover = f.clock.now() - stoppedAt;
    }
    expect(takeover).toBeDefined();
    expect(takeover).toBeLessThanOrEqual(RENEW + 2 * BOUNCE);
    expect(f.tokens()).toEqual([1, 2]);
    await f.stop();
  });

  it("takes over within TTL + one renew period when the holder dies without a word", async () => {
    const f = await fleet(3);
    await f.advance(RENEW / 2); // somewhere between two renewals
    const leader = holderOf(f);
    const lastRenewal = f.clock.now() + (flagReport(leader)["validFor"] as number) - DEADLINE;
    const crashAt = f.clock.now();
    leader.provider.cut = true; // nothing it sends arrives any more
    leader.engine.kill();
    let takeover: number | undefined;
    for (let t = 0; t < 2 * TTL && takeover === undefined; t += 10) {
      await f.advance(10, 10);
      if (f.running().some((name) => name !== leader.name)) takeover = f.clock.now();
    }
    expect(takeover).toBeDefined();
    const after = (takeover as number) - crashAt;
    // Not before the server let the lease go, and no later than a renew period (plus the engine's two bounces) after that.
    expect(takeover).toBeGreaterThanOrEqual(lastRenewal + TTL);
    expect(after).toBeLessThanOrEqual(TTL + RENEW + 2 * BOUNCE);
    expect(f.tokens()).toEqual([1, 2]);
    await f.stop();
  });

  it("a cut-off holder stops its gated worker at its local deadline, before the TTL; the next holder's token is greater", async () => {
    const f = await fleet(3);
    await f.advance(RENEW); // a renewal has happened
    const leader = holderOf(f);
    const lastRenewal = f.clock.now() + (flagReport(leader)["validFor"] as number) - DEADLINE;
    expect(flagReport(leader)["renewals"]).toBe(1);
    leader.provider.cut = true;
    await f.advance(lastRenewal + DEADLINE - 1 - f.clock.now(), 10);
    expect(f.running()).toEqual([leader.name]);
    await f.advance(1, 1);
    // The deadline passed: the gated worker has stopped, well before the server would let the lease go.
    expect(f.running()).toEqual([]);
    const stop = f.history.at(-1) as Event;
    expect(stop).toMatchObject({ type: "stop", holder: leader.name, at: lastRenewal + DEADLINE });
    expect(stop.at).toBeLessThan(lastRenewal + TTL);
    expect(leader.engine.report().manifolds["lease"]?.error).toMatch(/no renewal of lease "leader" succeeded within the 2250 ms local deadline .*stopped before its 3000 ms TTL could run out; campaigning again/);
    expect(f.server.holderOf("leader")?.holder).toBe(leader.name); // the server still thinks it holds it
    await f.advance(TTL + RENEW, 10);
    const next = holderOf(f);
    expect(next).not.toBe(leader);
    expect(f.tokens()).toEqual([1, 2]);
    // The cut-off member keeps campaigning, and reports why it cannot.
    expect(flagReport(leader)).toMatchObject({ held: false, lastError: "no answer from the provider within 1000 ms" });
    // Healed, it finds the lease taken and stays a candidate.
    leader.provider.cut = false;
    await f.advance(2 * RENEW);
    expect(flagReport(leader)).toMatchObject({ held: false, heldBy: next.name, heldByToken: 2 });
    expect(f.running()).toEqual([next.name]);
    await f.stop();
  });

  it("keeps the holder when renewals fail for less than the deadline", async () => {
    const f = await fleet(2);
    const leader = holderOf(f);
    const renewedAt = Date.UTC(2026, 0, 1) + RENEW;
    await f.advance(renewedAt - f.clock.now()); // the first renewal has just succeeded
    expect(flagReport(leader)["renewals"]).toBe(1);
    leader.provider.cut = true;
    await f.advance(RENEW + RENEW / 4, 10); // the next renewal hangs, and times out after RENEW/2
    leader.provider.cut = false; // the retry, sent at RENEW/2 after it, succeeds, before the deadline
    await f.advance(3 * TTL, 50);
    expect(f.running()).toEqual([leader.name]);
    expect(f.tokens()).toEqual([1]);
    expect(flagReport(leader)).toMatchObject({ held: true, failedRenewals: 1, lastError: "no answer within 500 ms" });
    await f.stop();
  });

  it("scales its deadline down when the provider grants a shorter TTL than asked for", async () => {
    const clock = new FakeClock();
    const server = new MemoryLeaseProvider({ clock });
    const stingy = new Partitionable({ acquire: (request) => server.acquire({ ...request, ttl: request.ttl / 2 }) });
    const history: Event[] = [];
    const engine = new Engine({ clock, jitter: 0, bounceDelay: BOUNCE });
    engine.install(lease, leaseFlag({ provider: stingy, key: "leader", holder: "me", ttl: TTL, clock }));
    engine.install("singleton", singleton(clock, history));
    await clock.advance(10);
    expect(history.map((e) => e.type)).toEqual(["start"]);
    const acquiredAt = history[0]!.at;
    await clock.advance(RENEW / 2 - 10); // renewals now come every RENEW / 2
    expect(engine.report().manifolds["lease"]?.report).toMatchObject({ renewals: 1 });
    stingy.cut = true;
    const renewedAt = acquiredAt + RENEW / 2;
    await clock.advance(renewedAt + DEADLINE / 2 - 1 - clock.now());
    expect(history.map((e) => e.type)).toEqual(["start"]);
    await clock.advance(1);
    expect(history.map((e) => e.type)).toEqual(["start", "stop"]);
    expect(history[1]!.at).toBe(renewedAt + DEADLINE / 2);
    expect(history[1]!.at).toBeLessThan(renewedAt + TTL / 2); // before the granted TTL ran out
    stingy.cut = false;
    engine.kill();
    await clock.advance(RENEW);
    await engine.wait();
  });

  it("stops at once when the provider reports the lease lost, then campaigns again with a new token", async () => {
    const f = await fleet(2);
    const leader = holderOf(f);
    const flag = await outputOf(leader);
    expect(flag).toMatchObject({ key: "leader", holder: leader.name, token: 1 });
    expect(flag.check()).toBe(true);
    expect(flag.signal.aborted).toBe(false);
    f.server.revoke("leader");
    // The term ends before the engine even restarts anything: dependents can check the signal.
    expect(flag.signal.aborted).toBe(true);
    expect(errorIs(flag.signal.reason, LeaseLostError)).toBe(true);
    expect(flag.check()).toBe(true); // constant for the life of its worker
    await f.advance(RENEW + 4 * BOUNCE, 10);
    expect(f.running()).toHaveLength(1);
    expect(f.tokens()).toEqual([1, 2]);
    await f.stop();
  });

  it("a candidate killed with an acquisition in flight waits for it and releases what it won", async () => {
    const clock = new FakeClock();
    const server = new MemoryLeaseProvider({ clock });
    const other = await acquired(server, "other", "leader");
    const answer = deferred<void>();
    let calls = 0;
    const slow: LeaseProvider = {
      acquire: async (request) => {
        if (++calls === 2) await answer.promise;
        return server.acquire(request);
      },
    };
    const engine = new Engine({ clock, jitter: 0, bounceDelay: BOUNCE });
    engine.install(lease, leaseFlag({ provider: slow, key: "leader", holder: "me", ttl: TTL, clock }));
    await clock.advance(10);
    expect(engine.report().manifolds["lease"]?.report).toMatchObject({ held: false, heldBy: "other" });
    await other.release();
    await clock.advance(RENEW); // the second attempt is now in flight
    expect(calls).toBe(2);
    engine.kill();
    let stopped = false;
    void engine.wait().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false); // waits for the attempt...
    answer.resolve();
    await settle();
    expect(stopped).toBe(true);
    expect(server.holderOf("leader")).toBeUndefined(); // ...and gives back the lease it won
  });

  it("releases a lease won just before the engine stopped, at the latest by its deadline", async () => {
    const clock = new FakeClock();
    const server = new MemoryLeaseProvider({ clock });
    const other = await acquired(server, "other", "leader");
    const engine = new Engine({ clock, jitter: 0, bounceDelay: 1000 });
    engine.install(lease, leaseFlag({ provider: server, key: "leader", holder: "me", ttl: TTL, clock }));
    await clock.advance(10);
    await other.release();
    await clock.advance(RENEW); // won: the candidate stops, its successor would take the lease after bounceDelay
    expect(server.holderOf("leader")?.holder).toBe("me");
    engine.kill();
    await engine.wait();
    await clock.advance(DEADLINE);
    expect(server.holderOf("leader")).toBeUndefined();
  });

  it("survives a broken provider, reporting what is wrong", async () => {
    const clock = new FakeClock();
    const answers: unknown[] = [{ acquired: "yes" }, { acquired: true, lease: { renew: 1 } }, { acquired: true, lease: { renew() {}, release() {}, onLost() {}, token: 1.5, ttl: 1 } }];
    let call = 0;
    const broken: LeaseProvider = {
      acquire: () => {
        const answer = answers[call++];
        if (answer === undefined) throw new Error("synchronous failure");
        return Promise.resolve(answer as LeaseClaim);
      },
    };
    const engine = new Engine({ clock, jitter: 0 });
    engine.install(lease, leaseFlag({ provider: broken, key: "leader", holder: "me", ttl: TTL, clock }));
    const errors: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      await clock.advance(i === 0 ? 0 : RENEW);
      errors.push(engine.report().manifolds["lease"]?.report?.["lastError"]);
    }
    expect(errors).toEqual([
      'lease "leader": provider.acquire resolved with an object {"acquired":"yes"}; expected { acquired: true, lease } or { acquired: false, holder, token }',
      'lease "leader": the provider\'s lease has no renew() method',
      'lease "leader": the provider\'s lease has token number 1.5; a fencing token must be a safe integer',
      "synchronous failure",
    ]);
    expect(engine.report().manifolds["lease"]?.state).toBe("started");
    engine.kill();
    await engine.wait();
  });

  it("stops with a BounceError caused by a LeaseLostError, so it campaigns again without backoff", async () => {
    const clock = new FakeClock();
    const server = new MemoryLeaseProvider({ clock });
    const seen: unknown[] = [];
    const engine = new Engine({ clock, jitter: 0, bounceDelay: BOUNCE, errorDelay: 60_000 });
    const flag = leaseFlag({ provider: server, key: "leader", holder: "me", ttl: TTL, clock });
    engine.install(lease, { ...flag, filter: (error: unknown) => (seen.push(error), error) });
    await clock.advance(10);
    server.revoke("leader");
    await settle();
    expect(seen).toHaveLength(1);
    expect(errorIs(seen[0], BounceError)).toBe(true);
    expect(errorIs(seen[0], LeaseLostError)).toBe(true);
    expect(engine.report().manifolds["lease"]?.error).toBe('lease "leader" (token 1) lost by "me": lease "leader" of "me" was revoked; campaigning again');
    await clock.advance(BOUNCE);
    expect(server.holderOf("leader")).toMatchObject({ holder: "me", token: 2 });
    expect(engine.report().manifolds["lease"]?.report).toMatchObject({ held: true, token: 2 });
    engine.kill();
    await engine.wait();
    expect(server.holderOf("leader")).toBeUndefined();
  });
});

/** The flag output the member's engine hands its dependents now. */
async function outputOf(member: Member): Promise<LeaseFlag> {
  let flag: LeaseFlag | undefined;
  member.engine.install("probe", manifold({ inputs: [lease], start: ({ getResource }) => ((flag = getResource(lease)), idle()) }));
  await settle();
  await member.engine.uninstall("probe").catch(() => undefined);
  if (flag === undefined) throw new Error(`${member.name}: no flag output`);
  return flag;
}
