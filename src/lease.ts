/**
 * Leases: run a worker on exactly one member of a fleet (Juju's `singular`).
 *
 * A {@link LeaseProvider} grants a named lease to one holder at a time, for a
 * TTL the holder must keep renewing. {@link leaseFlag} turns that into a
 * {@link Flag}: its worker campaigns for the lease and reports `true` while it
 * holds it, so that manifolds {@link gated} on it run on the holder only.
 *
 * Why the flag keeps its own deadline: a holder cut off from the provider
 * cannot learn that its lease has expired, and the provider hands the lease to
 * someone else as soon as the TTL has passed since the last renewal it saw.
 * So the holder stops by itself at a local deadline shorter than the TTL,
 * counted from when it *sent* its last successful renewal (which the provider
 * received later, so its TTL ends later still). The difference pays for clock
 * drift and for the dependents' time to stop. What the deadline cannot cover
 * (a process paused for longer than the margin) the fencing token does: every
 * new holder gets a larger token, and a resource that remembers the largest
 * token it has seen can refuse a stale holder's late writes.
 */
import createDebug from "debug";
import { systemClock, type Clock } from "./config.js";
import { BounceError, brand, describeValue, errorIs, quote, type EngineErrorOptions } from "./errors.js";
import { flagManifold, type Flag } from "./flag.js";
import type { Manifold } from "./manifold.js";
import type { Reporter, Worker } from "./workers.js";

const log = createDebug("manifold-engine:lease");

/** Options every {@link LeaseProvider} call takes. */
export interface LeaseCallOptions {
  /**
   * Milliseconds after which the caller stops waiting for the call. A provider
   * should give up by then (the etcd provider sets a gRPC deadline), so that
   * calls to an unreachable server do not pile up.
   */
  readonly timeout?: number | undefined;
}

/** What {@link LeaseProvider.acquire} asks for. */
export interface LeaseRequest extends LeaseCallOptions {
  /** The lease's name: one holder at a time per key. */
  readonly key: string;
  /** Who asks: a name unique in the fleet (a machine or agent id), for reports. */
  readonly holder: string;
  /** Milliseconds the lease lasts after each renewal. A provider may grant more, never less. */
  readonly ttl: number;
}

/**
 * A lease held by one holder. Providers make these; `leaseFlag` uses them.
 */
export interface Lease {
  /** The lease's name. */
  readonly key: string;
  /** The holder it was granted to. */
  readonly holder: string;
  /**
   * The fencing token: a safe integer that is larger for every new grant of
   * this key than for any earlier one (whoever the holders), and that stays
   * the same across renewals.
   */
  readonly token: number;
  /** Milliseconds the provider keeps the lease after each renewal: at least the TTL asked for. */
  readonly ttl: number;
  /**
   * Extends the lease by its TTL from the provider's receipt of the call.
   * Rejects with {@link LeaseLostError} when the lease is gone (expired,
   * revoked, released or taken over): it will never be renewed again. Any
   * other rejection is a failed attempt that may succeed when retried.
   */
  renew(options?: LeaseCallOptions): Promise<void>;
  /** Gives the lease up so another holder may take it at once. Idempotent; a lease already gone resolves. */
  release(options?: LeaseCallOptions): Promise<void>;
  /**
   * Calls `listener` once when the provider learns that the lease ended other
   * than by `release()` (expired, revoked, taken over, found gone by a
   * renewal); at once (in a microtask) if that has already happened. Returns a
   * function that removes the listener. A listener that throws is ignored.
   */
  onLost(listener: (error: LeaseLostError) => void): () => void;
}

/** What {@link LeaseProvider.acquire} resolves with. */
export type LeaseClaim =
  | {
      /** The lease is yours. */
      readonly acquired: true;
      readonly lease: Lease;
    }
  | {
      /** Someone holds it. */
      readonly acquired: false;
      /** The current holder, when the provider knows it. */
      readonly holder: string | undefined;
      /** The current holder's fencing token, when the provider knows it. */
      readonly token: number | undefined;
    };

/**
 * A coordination service that grants named leases, one holder at a time. The
 * package has two: `MemoryLeaseProvider` (one process) and
 * `EtcdLeaseProvider` (`manifold-engine/etcd`).
 *
 * A provider must guarantee: at most one unexpired lease per key; a lease
 * lasts at least its TTL after the provider received its latest successful
 * renewal (or its grant); and every grant of a key carries a larger fencing
 * token than the grants before it.
 */
export interface LeaseProvider {
  /**
   * Tries once to take the lease `request.key` for `request.holder`. Resolves
   * with the lease, or with who holds it; rejects when the provider cannot
   * tell (unreachable, or a bad request: a `TypeError` naming the field).
   * Acquiring never waits for the current holder.
   */
  acquire(request: LeaseRequest): Promise<LeaseClaim>;
}

/** Options of {@link LeaseLostError}. */
export type LeaseLostErrorOptions = EngineErrorOptions;

/**
 * A lease has ended, or its holder can no longer be sure it still holds it
 * (renewals kept failing until the local deadline). Whoever did the work under
 * that lease must stop.
 */
export class LeaseLostError extends Error {
  constructor(message = "lease lost", options?: LeaseLostErrorOptions) {
    super(message, options);
    this.name = "LeaseLostError";
  }
}
brand(LeaseLostError, "LeaseLostError");

/**
 * Checks a lease request as every provider must.
 * @throws TypeError naming the field that is wrong, prefixed with `where`.
 * @internal
 */
export function checkLeaseRequest(request: unknown, where: string): void {
  if (request === null || typeof request !== "object") {
    throw new TypeError(`${where}: the request must be an object with key, holder and ttl (got ${describeValue(request)})`);
  }
  const { key, holder, ttl, timeout } = request as Partial<LeaseRequest>;
  if (typeof key !== "string" || key.length === 0) throw new TypeError(`${where}: key must be a non-empty string (got ${describeValue(key)})`);
  if (typeof holder !== "string" || holder.length === 0) {
    throw new TypeError(`${where}: holder must be a non-empty string naming who asks (got ${describeValue(holder)})`);
  }
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0) {
    throw new TypeError(`${where}: ttl must be a finite number of milliseconds > 0 (got ${describeValue(ttl)})`);
  }
  checkTimeout(timeout, where);
}

/**
 * Checks a call's `timeout` option.
 * @throws TypeError unless it is absent or a finite number of milliseconds > 0.
 * @internal
 */
export function checkTimeout(timeout: unknown, where: string): void {
  if (timeout !== undefined && !(typeof timeout === "number" && timeout > 0 && Number.isFinite(timeout))) {
    throw new TypeError(`${where}: timeout must be a finite number of milliseconds > 0 when present (got ${describeValue(timeout)})`);
  }
}

function checkClock(clock: unknown, where: string): Clock {
  if (clock === undefined) return systemClock;
  const c = clock as Partial<Clock> | null;
  if (c === null || typeof c !== "object" || typeof c.now !== "function" || typeof c.setTimeout !== "function" || typeof c.clearTimeout !== "function") {
    throw new TypeError(`${where}: clock must have now(), setTimeout(fn, ms) and clearTimeout(handle) (got ${describeValue(clock)})`);
  }
  return clock as Clock;
}

/** Calls every listener once with `error`, ignoring listeners that throw. */
function tell(listeners: Set<(error: LeaseLostError) => void>, error: LeaseLostError): void {
  for (const listener of [...listeners]) {
    try {
      listener(error);
    } catch {
      // A broken listener must not keep the others from hearing of the loss.
    }
  }
  listeners.clear();
}

// ---------------------------------------------------------------------------
// The in-memory provider

/** Options of {@link MemoryLeaseProvider}. */
export interface MemoryLeaseProviderOptions {
  /** Source of time and timers for expiry; default: `Date.now` and the global timers. */
  readonly clock?: Clock | undefined;
}

/** Who holds a key of a {@link MemoryLeaseProvider}, as {@link MemoryLeaseProvider.holderOf} reports it. */
export interface MemoryLeaseHolder {
  /** Who holds the lease. */
  readonly holder: string;
  /** The fencing token of its grant. */
  readonly token: number;
  /** The clock's time at which the lease expires unless renewed. */
  readonly expiresAt: number;
}

/** One granted lease and its expiry timer. */
interface MemoryEntry {
  readonly lease: MemoryLease;
  expiresAt: number;
  timer: unknown;
}

/**
 * A {@link LeaseProvider} inside one process: for tests, and for a process
 * whose workers should not run twice (several engines, or an engine and its
 * restarts). Expiry follows the injected clock exactly: a lease expires when
 * the clock reaches its grant or last renewal time plus its TTL, and its
 * `onLost` listeners are told then. Tokens count up from 1 across all keys.
 * Calls settle in a microtask; nothing here is ever unreachable.
 */
export class MemoryLeaseProvider implements LeaseProvider {
  readonly #clock: Clock;
  readonly #entries = new Map<string, MemoryEntry>();
  #lastToken = 0;

  /** @throws TypeError if `options.clock` lacks a method. */
  constructor(options: MemoryLeaseProviderOptions = {}) {
    this.#clock = checkClock(options?.clock, "MemoryLeaseProvider");
  }

  /** {@inheritDoc LeaseProvider.acquire} */
  acquire(request: LeaseRequest): Promise<LeaseClaim> {
    try {
      checkLeaseRequest(request, "MemoryLeaseProvider.acquire");
    } catch (error) {
      return Promise.reject(error);
    }
    const current = this.#live(request.key);
    if (current !== undefined) {
      return Promise.resolve({ acquired: false, holder: current.lease.holder, token: current.lease.token });
    }
    const lease = new MemoryLease(this.#hooks, request.key, request.holder, ++this.#lastToken, request.ttl);
    const entry: MemoryEntry = { lease, expiresAt: 0, timer: undefined };
    this.#entries.set(request.key, entry);
    this.#extend(entry);
    return Promise.resolve({ acquired: true, lease });
  }

  /** The current holder of `key`, or `undefined` when the lease is free. */
  holderOf(key: string): MemoryLeaseHolder | undefined {
    const entry = this.#live(key);
    return entry === undefined ? undefined : { holder: entry.lease.holder, token: entry.lease.token, expiresAt: entry.expiresAt };
  }

  /**
   * Ends the lease on `key` as a server would revoke it (an operator's
   * action): its holder's `onLost` listeners are told and its renewals fail.
   * Returns whether there was a lease to revoke.
   */
  revoke(key: string): boolean {
    const entry = this.#live(key);
    if (entry === undefined) return false;
    this.#end(entry, new LeaseLostError(`lease ${quote(key)} of ${quote(entry.lease.holder)} was revoked`));
    return true;
  }

  /** What this provider's leases call back into; private to the provider and its leases. */
  readonly #hooks: LeaseHooks = {
    renew: (lease) => {
      const entry = this.#live(lease.key);
      if (entry?.lease !== lease) {
        throw new LeaseLostError(`lease ${quote(lease.key)} of ${quote(lease.holder)} (token ${lease.token}) is gone: it expired, was revoked or released`);
      }
      this.#extend(entry);
    },
    release: (lease) => {
      const entry = this.#entries.get(lease.key);
      if (entry?.lease !== lease) return;
      this.#clock.clearTimeout(entry.timer);
      this.#entries.delete(lease.key);
    },
  };

  /** The unexpired entry for `key`; ends an expired one first (a timer may run late). */
  #live(key: string): MemoryEntry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (this.#clock.now() < entry.expiresAt) return entry;
    this.#end(entry, new LeaseLostError(`lease ${quote(key)} of ${quote(entry.lease.holder)} expired: not renewed within its ${entry.lease.ttl} ms TTL`));
    return undefined;
  }

  #extend(entry: MemoryEntry): void {
    this.#clock.clearTimeout(entry.timer);
    entry.expiresAt = this.#clock.now() + entry.lease.ttl;
    entry.timer = this.#clock.setTimeout(() => {
      // #live ends it if the time has come; a renewal since has moved expiresAt on.
      this.#live(entry.lease.key);
    }, entry.lease.ttl);
  }

  #end(entry: MemoryEntry, error: LeaseLostError): void {
    if (this.#entries.get(entry.lease.key) !== entry) return;
    this.#clock.clearTimeout(entry.timer);
    this.#entries.delete(entry.lease.key);
    entry.lease.lost(error);
  }
}

/** How a {@link MemoryLease} reaches its provider's state. */
interface LeaseHooks {
  /** Renews `lease` if it is still the current one; throws LeaseLostError otherwise. */
  renew(lease: MemoryLease): void;
  /** Frees the key if `lease` still holds it. */
  release(lease: MemoryLease): void;
}

/** A lease of a {@link MemoryLeaseProvider}. */
class MemoryLease implements Lease {
  readonly #hooks: LeaseHooks;
  readonly #listeners = new Set<(error: LeaseLostError) => void>();
  #lostWith: LeaseLostError | undefined;
  #released = false;

  constructor(
    hooks: LeaseHooks,
    readonly key: string,
    readonly holder: string,
    readonly token: number,
    readonly ttl: number,
  ) {
    this.#hooks = hooks;
  }

  renew(options?: LeaseCallOptions): Promise<void> {
    try {
      checkTimeout(options?.timeout, "lease.renew");
      if (this.#released) throw new LeaseLostError(`lease ${quote(this.key)} of ${quote(this.holder)} was released`);
      this.#hooks.renew(this);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  release(): Promise<void> {
    this.#released = true;
    this.#listeners.clear();
    this.#hooks.release(this);
    return Promise.resolve();
  }

  onLost(listener: (error: LeaseLostError) => void): () => void {
    if (typeof listener !== "function") throw new TypeError(`lease.onLost(listener): listener must be a function (got ${describeValue(listener)})`);
    const lostWith = this.#lostWith;
    if (lostWith !== undefined) {
      queueMicrotask(() => tell(new Set([listener]), lostWith));
      return () => undefined;
    }
    if (this.#released) return () => undefined;
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** @internal Called by the provider when the lease ends other than by release. */
  lost(error: LeaseLostError): void {
    if (this.#lostWith !== undefined || this.#released) return;
    this.#lostWith = error;
    tell(this.#listeners, error);
  }
}

// ---------------------------------------------------------------------------
// The lease flag

/** Options of {@link leaseFlag}. */
export interface LeaseFlagOptions {
  /** Where the lease lives. */
  readonly provider: LeaseProvider;
  /** The lease's name: the flag is true on one holder per key. */
  readonly key: string;
  /** This member's name, unique in the fleet (two members with one name would look like one holder in reports). */
  readonly holder: string;
  /** Milliseconds the provider keeps the lease after each renewal. */
  readonly ttl: number;
  /** Milliseconds between renewals, and between campaign attempts while another holds the lease. Default `ttl / 3`. */
  readonly renewInterval?: number | undefined;
  /**
   * The local deadline: milliseconds after sending its last successful
   * renewal (or acquisition) at which a holder whose renewals keep failing
   * stops its worker. Must be more than `renewInterval` and less than `ttl`;
   * `ttl - deadline` must cover clock drift and the time dependents take to
   * stop. Default `ttl * 3 / 4`.
   */
  readonly deadline?: number | undefined;
  /** Source of time and timers; default: `Date.now` and the global timers. */
  readonly clock?: Clock | undefined;
}

/** What a {@link leaseFlag} gives its dependents. */
export interface LeaseFlag extends Flag {
  /** True on the holder of the lease; constant for the life of the flag's worker. */
  check(): boolean;
  /** The lease's name. */
  readonly key: string;
  /** This member's name. */
  readonly holder: string;
  /**
   * The fencing token of the held lease (larger for every new holder); pass it
   * with every write to a resource that can refuse writes carrying a token
   * smaller than the largest it has seen. `undefined` when `check()` is false.
   */
  readonly token: number | undefined;
  /**
   * Aborted the moment this holder's term ends (lease lost, local deadline
   * passed, or the flag's worker stopped), before the engine gets round to
   * stopping the dependents: check it, or pass it on, before each step that
   * must not happen twice.
   */
  readonly signal: AbortSignal;
}

/** The worker of a {@link leaseFlag}: a flag, its output, and a report. */
export interface LeaseFlagWorker extends Worker, Flag, Reporter {
  /** What dependents get. */
  readonly flag: LeaseFlag;
}

/** The options after defaults and checks. */
interface Settings {
  readonly provider: LeaseProvider;
  readonly key: string;
  readonly holder: string;
  readonly ttl: number;
  readonly renewInterval: number;
  readonly deadline: number;
  readonly clock: Clock;
  /**
   * How long to wait for one acquire or release: a renew interval, but at
   * most 10 s, so that a killed flag stops well within the engine's default
   * `stopTimeout` (30 s) even with long TTLs.
   */
  readonly callTimeout: number;
}

/**
 * A flag manifold (Juju's singular flag) whose worker campaigns for the lease
 * `key` and reports `true` while it holds it; its output (a {@link LeaseFlag})
 * hands dependents the fencing token. Call it once per engine (the manifold
 * it returns keeps state shared by its successive workers), and
 * {@link gated} manifolds on it run on one member of the fleet at a time.
 *
 * - Not holding: the worker reports `false` and tries to acquire the lease
 *   every `renewInterval`. When it succeeds, it stops (a `BounceError`) and
 *   its successor reports `true`, taking over the lease just acquired.
 * - Holding: the worker renews every `renewInterval`. It stops with a
 *   `BounceError` caused by a {@link LeaseLostError} when the provider reports
 *   the lease gone, or when no renewal has succeeded for `deadline` ms since
 *   the last successful one was sent; the engine then stops its dependents and
 *   restarts the flag, which campaigns again. Killed, it releases the lease
 *   (waiting at most `renewInterval`, and 10 s) so another member takes
 *   over at once.
 *
 * Guarantee: a holder's worker stops `deadline` ms (on its own clock) after it
 * sent its last successful renewal, at the latest; the provider keeps the
 * lease at least `ttl` after receiving it. So as long as the holder's clock
 * runs no slower than the provider's by more than `ttl - deadline` in every
 * `deadline` (a drift bound of 25% with the defaults; real clocks drift by
 * parts per million), and its dependents stop within the rest, no two
 * holders' dependents run at once. A provider that grants a TTL shorter than
 * asked for scales `deadline` and `renewInterval` down with it.
 *
 * @throws TypeError naming the field when an option is missing or malformed.
 */
export function leaseFlag(options: LeaseFlagOptions): Manifold<LeaseFlagWorker, LeaseFlag> {
  const campaign = new Campaign(checkLeaseFlagOptions(options));
  return flagManifold<LeaseFlagWorker, LeaseFlag>({
    inputs: [],
    start: () => campaign.start(),
    output: (worker) => worker.flag,
  });
}

function checkLeaseFlagOptions(options: LeaseFlagOptions): Settings {
  const where = "leaseFlag";
  if (options === null || typeof options !== "object") {
    throw new TypeError(`${where}(options): options must be an object with provider, key, holder and ttl (got ${describeValue(options)})`);
  }
  const { provider, key, holder, ttl } = options;
  if (provider === null || typeof provider !== "object" || typeof provider.acquire !== "function") {
    throw new TypeError(`${where}: provider must be a LeaseProvider, an object with acquire() (got ${describeValue(provider)}); use new MemoryLeaseProvider() or an EtcdLeaseProvider`);
  }
  if (typeof key !== "string" || key.length === 0) throw new TypeError(`${where}: key must be a non-empty string naming the lease (got ${describeValue(key)})`);
  if (typeof holder !== "string" || holder.length === 0) {
    throw new TypeError(`${where}: holder must be a non-empty string naming this member of the fleet (got ${describeValue(holder)})`);
  }
  const positive = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value) && value > 0;
  if (!positive(ttl)) throw new TypeError(`${where} ${quote(key)}: ttl must be a finite number of milliseconds > 0 (got ${describeValue(ttl)})`);
  const renewInterval = options.renewInterval ?? ttl / 3;
  const deadline = options.deadline ?? (ttl * 3) / 4;
  if (!positive(renewInterval)) {
    throw new TypeError(`${where} ${quote(key)}: renewInterval must be a finite number of milliseconds > 0 (got ${describeValue(options.renewInterval)})`);
  }
  if (!positive(deadline) || deadline >= ttl) {
    throw new TypeError(`${where} ${quote(key)}: deadline must be a number of milliseconds > 0 and < ttl (${ttl}) (got ${describeValue(options.deadline)}); the holder must stop before the provider hands the lease on`);
  }
  if (renewInterval >= deadline) {
    throw new TypeError(`${where} ${quote(key)}: renewInterval (${renewInterval}) must be less than deadline (${deadline}), or a single late renewal would stop the holder; the defaults are ttl/3 and 3*ttl/4`);
  }
  const clock = checkClock(options.clock, `${where} ${quote(key)}`);
  return { provider, key, holder, ttl, renewInterval, deadline, clock, callTimeout: Math.min(renewInterval, 10_000) };
}

/** The outcome of one acquisition attempt. */
type Attempt =
  | { readonly kind: "claim"; readonly claim: LeaseClaim }
  | { readonly kind: "error"; readonly error: unknown }
  | { readonly kind: "timeout" };

/** A lease the campaign just won, with the local times that bound it. */
interface Won {
  readonly lease: Lease;
  /** When the acquisition (or last successful renewal) was sent. */
  readonly sentAt: number;
}

/**
 * The state one leaseFlag manifold shares between its workers: the options,
 * and a lease won by a campaigning worker for its successor to hold.
 */
class Campaign {
  readonly settings: Settings;
  #won: (Won & { timer: unknown }) | undefined;

  constructor(settings: Settings) {
    this.settings = settings;
  }

  /** The flag's start: hold a lease just won, or try once to win one. Never rejects. */
  async start(): Promise<LeaseFlagWorker> {
    const { clock } = this.settings;
    const won = this.#takeWon();
    if (won !== undefined) {
      if (clock.now() < won.sentAt + this.deadlineFor(won.lease)) return new Holder(this, won);
      releaseQuietly(won.lease, this.settings.callTimeout);
    }
    const sentAt = clock.now();
    const attempt = await this.attempt();
    if (attempt.kind === "claim" && attempt.claim.acquired) return new Holder(this, { lease: attempt.claim.lease, sentAt });
    return new Candidate(this, attempt);
  }

  /**
   * Keeps a lease won by a campaigning worker until the next start takes it;
   * releases it if no start does before its deadline (the engine stopped).
   */
  keepWon(won: Won): void {
    const previous = this.#takeWon();
    if (previous !== undefined) releaseQuietly(previous.lease, this.settings.callTimeout);
    const { clock } = this.settings;
    const timer = clock.setTimeout(
      () => {
        if (this.#won?.lease !== won.lease) return;
        this.#won = undefined;
        releaseQuietly(won.lease, this.settings.callTimeout);
      },
      Math.max(0, won.sentAt + this.deadlineFor(won.lease) - clock.now()),
    );
    this.#won = { ...won, timer };
  }

  #takeWon(): Won | undefined {
    const won = this.#won;
    if (won === undefined) return undefined;
    this.#won = undefined;
    this.settings.clock.clearTimeout(won.timer);
    return won;
  }

  /** The local deadline for `lease`: scaled down if the provider granted less than the TTL asked for. */
  deadlineFor(lease: Lease): number {
    return this.settings.deadline * Math.min(1, lease.ttl / this.settings.ttl);
  }

  /** The renew interval for `lease`, scaled like its deadline. */
  renewIntervalFor(lease: Lease): number {
    return this.settings.renewInterval * Math.min(1, lease.ttl / this.settings.ttl);
  }

  /**
   * One acquisition attempt, given up after `callTimeout`. A lease that
   * arrives after that is released: nobody is renewing it.
   */
  attempt(): Promise<Attempt> {
    const { provider, key, holder, ttl, callTimeout, clock } = this.settings;
    return new Promise<Attempt>((resolve) => {
      let done = false;
      const timer = clock.setTimeout(() => {
        if (done) return;
        done = true;
        resolve({ kind: "timeout" });
      }, callTimeout);
      let call: Promise<LeaseClaim>;
      try {
        call = Promise.resolve(provider.acquire({ key, holder, ttl, timeout: callTimeout }));
      } catch (error) {
        call = Promise.reject(error);
      }
      call.then(
        (value) => {
          let claim: LeaseClaim | undefined;
          let problem: Error | undefined;
          try {
            claim = checkClaim(value, key, ttl);
          } catch (error) {
            problem = error as Error;
          }
          if (done) {
            if (claim?.acquired) releaseQuietly(claim.lease, callTimeout);
            return;
          }
          done = true;
          clock.clearTimeout(timer);
          resolve(claim !== undefined ? { kind: "claim", claim } : { kind: "error", error: problem });
        },
        (error: unknown) => {
          if (done) return;
          done = true;
          clock.clearTimeout(timer);
          resolve({ kind: "error", error });
        },
      );
    });
  }
}

/** Checks what a provider's acquire resolved with, so that a broken provider fails with a message, not a crash. */
function checkClaim(value: unknown, key: string, ttl: number): LeaseClaim {
  const claim = value as Partial<{ acquired: unknown; lease: Partial<Lease> }> | null;
  const expected = "expected { acquired: true, lease } or { acquired: false, holder, token }";
  if (claim === null || typeof claim !== "object" || typeof claim.acquired !== "boolean") {
    throw new TypeError(`lease ${quote(key)}: provider.acquire resolved with ${describeValue(value)}; ${expected}`);
  }
  if (!claim.acquired) return value as LeaseClaim;
  const lease = claim.lease;
  if (lease === null || typeof lease !== "object") throw new TypeError(`lease ${quote(key)}: provider.acquire resolved with acquired: true but lease ${describeValue(lease)}; ${expected}`);
  for (const method of ["renew", "release", "onLost"] as const) {
    if (typeof lease[method] !== "function") throw new TypeError(`lease ${quote(key)}: the provider's lease has no ${method}() method`);
  }
  if (!Number.isSafeInteger(lease.token)) throw new TypeError(`lease ${quote(key)}: the provider's lease has token ${describeValue(lease.token)}; a fencing token must be a safe integer`);
  if (typeof lease.ttl !== "number" || !(lease.ttl > 0)) throw new TypeError(`lease ${quote(key)}: the provider's lease has ttl ${describeValue(lease.ttl)}; expected the granted TTL in ms (asked for ${ttl})`);
  return value as LeaseClaim;
}

/** Releases `lease` in the background; a failure only delays the next holder until the TTL runs out. */
function releaseQuietly(lease: Lease, timeout: number): Promise<void> {
  try {
    return Promise.resolve(lease.release({ timeout })).catch((error: unknown) => {
      log("release of lease %s (token %d) failed: %s", lease.key, lease.token, describeValue(error instanceof Error ? error.message : error));
    });
  } catch (error) {
    log("release of lease %s threw: %s", lease.key, describeValue(error instanceof Error ? error.message : error));
    return Promise.resolve();
  }
}

/** How one worker of the flag ends: `wait()` resolves, or rejects with `error`. */
class Ending {
  readonly done: Promise<void>;
  #settle!: (error: unknown) => void;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.#settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    // wait() callers see the failure; nobody else should.
    this.done.catch(() => undefined);
  }

  settle(error?: unknown): void {
    this.#settle(error);
  }
}

/** The flag's worker while another member holds the lease (or the provider cannot be reached): `false`, campaigning. */
class Candidate implements LeaseFlagWorker {
  readonly flag: LeaseFlag;
  readonly #campaign: Campaign;
  readonly #ending = new Ending();
  readonly #controller = new AbortController();
  #timer: unknown;
  #trying = false;
  #killed = false;
  #attempts = 1;
  #last: Attempt;

  constructor(campaign: Campaign, first: Attempt) {
    this.#campaign = campaign;
    this.#last = first;
    const { key, holder } = campaign.settings;
    this.flag = Object.freeze({ check: () => false, key, holder, token: undefined, signal: this.#controller.signal });
    this.#schedule();
  }

  check(): boolean {
    return false;
  }

  kill(): void {
    if (this.#killed) return;
    this.#killed = true;
    this.#controller.abort(new LeaseLostError(`lease flag ${quote(this.flag.key)} stopped`));
    this.#campaign.settings.clock.clearTimeout(this.#timer);
    // An attempt in flight ends the worker when it settles (within callTimeout), so that two campaigns never overlap.
    if (!this.#trying) this.#ending.settle();
  }

  wait(): Promise<void> {
    return this.#ending.done;
  }

  report(): Record<string, unknown> {
    const { key, holder } = this.#campaign.settings;
    const report: Record<string, unknown> = { key, holder, held: false, attempts: this.#attempts };
    const last = this.#last;
    if (last.kind === "claim" && !last.claim.acquired) {
      if (last.claim.holder !== undefined) report["heldBy"] = last.claim.holder;
      if (last.claim.token !== undefined) report["heldByToken"] = last.claim.token;
    } else if (last.kind === "error") {
      report["lastError"] = last.error instanceof Error ? last.error.message : describeValue(last.error);
    } else if (last.kind === "timeout") {
      report["lastError"] = `no answer from the provider within ${this.#campaign.settings.callTimeout} ms`;
    }
    return report;
  }

  #schedule(): void {
    const { clock, renewInterval } = this.#campaign.settings;
    this.#timer = clock.setTimeout(() => void this.#try(), renewInterval);
  }

  async #try(): Promise<void> {
    if (this.#killed) return;
    const sentAt = this.#campaign.settings.clock.now();
    this.#trying = true;
    const attempt = await this.#campaign.attempt();
    this.#trying = false;
    this.#attempts++;
    const lease = attempt.kind === "claim" && attempt.claim.acquired ? attempt.claim.lease : undefined;
    if (this.#killed) {
      if (lease !== undefined) await releaseQuietly(lease, this.#campaign.settings.callTimeout);
      this.#ending.settle();
      return;
    }
    if (lease !== undefined) {
      this.#campaign.keepWon({ lease, sentAt });
      this.#controller.abort(new LeaseLostError(`lease flag ${quote(this.flag.key)} restarting as the holder`));
      log("%s acquired lease %s (token %d)", this.flag.holder, this.flag.key, lease.token);
      this.#ending.settle(new BounceError(`${quote(this.flag.holder)} acquired lease ${quote(this.flag.key)} (token ${lease.token}); restarting the flag as its holder`));
      return;
    }
    this.#last = attempt;
    this.#schedule();
  }
}

/** The flag's worker while this member holds the lease: `true`, renewing. */
class Holder implements LeaseFlagWorker {
  readonly flag: LeaseFlag;
  readonly #campaign: Campaign;
  readonly #lease: Lease;
  readonly #ending = new Ending();
  readonly #controller = new AbortController();
  readonly #deadline: number;
  readonly #renewInterval: number;
  readonly #since: number;
  readonly #unsubscribe: () => void;
  /** When the last successful renewal (or the acquisition) was sent. */
  #sentAt: number;
  #renewTimer: unknown;
  #deadlineTimer: unknown;
  #ended = false;
  #renewals = 0;
  #failures = 0;
  #lastError: string | undefined;

  constructor(campaign: Campaign, won: Won) {
    this.#campaign = campaign;
    this.#lease = won.lease;
    this.#sentAt = won.sentAt;
    this.#deadline = campaign.deadlineFor(won.lease);
    this.#renewInterval = campaign.renewIntervalFor(won.lease);
    const { key, holder, clock } = campaign.settings;
    this.#since = clock.now();
    this.flag = Object.freeze({ check: () => true, key, holder, token: won.lease.token, signal: this.#controller.signal });
    let unsubscribe: () => void = () => undefined;
    try {
      const result = won.lease.onLost((error) => this.#end(lostError(error, key)));
      if (typeof result === "function") unsubscribe = result;
    } catch (error) {
      log("lease %s: onLost threw: %s", key, describeValue(error instanceof Error ? error.message : error));
    }
    this.#unsubscribe = unsubscribe;
    // A provider may report a loss synchronously: then the term is already over.
    if (this.#ended) return;
    log("%s holds lease %s (token %d)", holder, key, won.lease.token);
    this.#armDeadline();
    this.#scheduleRenewal(this.#sentAt + this.#renewInterval);
  }

  check(): boolean {
    return true;
  }

  kill(): void {
    this.#end(undefined);
  }

  wait(): Promise<void> {
    return this.#ending.done;
  }

  report(): Record<string, unknown> {
    const { key, holder, clock } = this.#campaign.settings;
    const report: Record<string, unknown> = {
      key,
      holder,
      held: !this.#ended,
      token: this.#lease.token,
      heldFor: clock.now() - this.#since,
      renewals: this.#renewals,
      failedRenewals: this.#failures,
      validFor: Math.max(0, this.#sentAt + this.#deadline - clock.now()),
    };
    if (this.#lastError !== undefined) report["lastError"] = this.#lastError;
    return report;
  }

  #scheduleRenewal(at: number): void {
    const { clock } = this.#campaign.settings;
    clock.clearTimeout(this.#renewTimer);
    this.#renewTimer = clock.setTimeout(() => void this.#renew(), Math.max(0, at - clock.now()));
  }

  #armDeadline(): void {
    const { clock, key, ttl } = this.#campaign.settings;
    clock.clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = clock.setTimeout(
      () => {
        const why = this.#lastError !== undefined ? ` (last error: ${this.#lastError})` : "";
        this.#end(new LeaseLostError(`no renewal of lease ${quote(key)} succeeded within the ${this.#deadline} ms local deadline${why}; stopped before its ${ttl} ms TTL could run out`));
      },
      Math.max(0, this.#sentAt + this.#deadline - clock.now()),
    );
  }

  async #renew(): Promise<void> {
    if (this.#ended) return;
    const { clock, key } = this.#campaign.settings;
    const sentAt = clock.now();
    // A call that hangs must not use up the time left for retries: give each
    // attempt half a renew interval (and never wait past the deadline, when
    // the holder stops anyway). With the defaults that leaves three attempts.
    const timeout = Math.max(1, Math.min(this.#renewInterval / 2, this.#campaign.settings.callTimeout, this.#sentAt + this.#deadline - sentAt));
    const outcome = await settleWithin(clock, timeout, () => this.#lease.renew({ timeout }));
    if (this.#ended) return;
    if (outcome.ok) {
      this.#renewals++;
      this.#sentAt = sentAt;
      this.#armDeadline();
      this.#scheduleRenewal(sentAt + this.#renewInterval);
      return;
    }
    if (errorIs(outcome.error, LeaseLostError)) {
      this.#end(lostError(outcome.error, key));
      return;
    }
    this.#failures++;
    this.#lastError = outcome.error === undefined ? `no answer within ${timeout} ms` : outcome.error instanceof Error ? outcome.error.message : describeValue(outcome.error);
    log("renewal of lease %s failed: %s", key, this.#lastError);
    // Retry sooner than the regular interval, as the deadline is getting
    // closer; at once after a timeout, whose wait was the pause already.
    this.#scheduleRenewal(outcome.error === undefined ? clock.now() : clock.now() + this.#renewInterval / 4);
  }

  /** Ends the term: lost (`error`) or killed (`undefined`). */
  #end(error: LeaseLostError | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    const { clock, key, holder, callTimeout } = this.#campaign.settings;
    clock.clearTimeout(this.#renewTimer);
    clock.clearTimeout(this.#deadlineTimer);
    try {
      this.#unsubscribe();
    } catch {
      // The provider's problem; the term is over either way.
    }
    this.#controller.abort(error ?? new LeaseLostError(`lease flag ${quote(key)} stopped`));
    if (error === undefined) {
      // Killed: hand the lease over now rather than make the next holder wait out the TTL.
      void settleWithin(clock, callTimeout, () => releaseQuietly(this.#lease, callTimeout)).then(() => this.#ending.settle());
      return;
    }
    log("%s lost lease %s (token %d): %s", holder, key, this.#lease.token, error.message);
    // Stop the dependents first; a release that reaches the provider frees the lease sooner.
    void releaseQuietly(this.#lease, callTimeout);
    this.#ending.settle(new BounceError(`lease ${quote(key)} (token ${this.#lease.token}) lost by ${quote(holder)}: ${error.message}; campaigning again`, { cause: error }));
  }
}

/** Makes sure a loss reported by a provider is a LeaseLostError naming the lease. */
function lostError(error: unknown, key: string): LeaseLostError {
  if (error instanceof LeaseLostError) return error;
  return new LeaseLostError(`lease ${quote(key)} lost`, { cause: error });
}

/** Runs `call`, giving up after `ms` on `clock`: `{ ok: false, error: undefined }` then. Never rejects. */
function settleWithin(clock: Clock, ms: number, call: () => Promise<void>): Promise<{ ok: true } | { ok: false; error: unknown }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (result: { ok: true } | { ok: false; error: unknown }): void => {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      resolve(result);
    };
    const timer = clock.setTimeout(() => finish({ ok: false, error: undefined }), ms);
    let running: Promise<void>;
    try {
      running = Promise.resolve(call());
    } catch (error) {
      running = Promise.reject(error);
    }
    running.then(
      () => finish({ ok: true }),
      (error: unknown) => finish({ ok: false, error: error ?? new Error("the call rejected with no reason") }),
    );
  });
}
