/**
 * `manifold-engine/etcd`: a `LeaseProvider` on etcd v3, through the
 * `etcd3` npm client (an optional peer dependency: only this entry point
 * loads it).
 *
 * How a lease maps onto etcd:
 * - Acquire: read the key; if it is absent, grant an etcd lease with the TTL
 *   (rounded up to whole seconds, as etcd counts them) and, in one
 *   transaction, create the key bound to that lease if it still does not
 *   exist. The value is the holder's name. Losing the race revokes the
 *   granted lease again.
 * - Fencing token: the key's create revision. etcd's revision grows with
 *   every write to the cluster and is assigned by the very transaction that
 *   makes the holder, so each new holder (or the same one after a loss) gets
 *   a larger token, with no counter to keep and nothing to go wrong between
 *   two writes. Revisions are persistent: they survive restarts, but not a
 *   restore from an older backup or a new cluster (tokens then start lower,
 *   and a resource fenced with the old ones refuses the new holder until
 *   reset).
 * - Renew: one keep-alive on the etcd lease (a remaining TTL of 0 means it is
 *   gone), then a read checking that the key still carries the same create
 *   revision (somebody may have deleted it by hand).
 * - Release: revoke the etcd lease, which deletes the key with it.
 *
 * Every call carries a gRPC deadline (the caller's `timeout`, or the
 * provider's default), so a partition shows up as failed calls, not a hang.
 * The etcd3 client's own `lost` event is not used: it fires only after about
 * twice the TTL, long after another member may have taken over; the
 * `leaseFlag` keeps its own, shorter, deadline.
 */
import { castGrpcError, EtcdLeaseInvalidError, type IKeyValue, type Namespace } from "etcd3";
import { describeValue, quote } from "./errors.js";
import { checkLeaseRequest, checkTimeout, LeaseLostError, type Lease, type LeaseCallOptions, type LeaseClaim, type LeaseProvider, type LeaseRequest } from "./lease.js";

// The types this entry's API is made of, so that its users need not import
// them from the main entry too (they are the same types).
export type { Lease, LeaseCallOptions, LeaseClaim, LeaseLostError, LeaseLostErrorOptions, LeaseProvider, LeaseRequest } from "./lease.js";

/** Options of {@link EtcdLeaseProvider}. */
export interface EtcdLeaseProviderOptions {
  /**
   * An etcd3 client (`new Etcd3({ hosts })`) or a namespace of one
   * (`client.namespace("app/")`). The provider never closes it. etcd3's
   * default fault handling opens a circuit for 5 s after three failed calls,
   * which can delay recovery after an outage by that much.
   */
  readonly client: Namespace;
  /** Prefix of the keys the leases live under; default `"manifold-engine/leases/"`. */
  readonly prefix?: string | undefined;
  /** Deadline in milliseconds for a call whose caller gives no `timeout`; default 5000. */
  readonly timeout?: number | undefined;
}

/**
 * A {@link LeaseProvider} on etcd v3, for `leaseFlag`. A lease is the key
 * `prefix + key`, holding the holder's name, bound to an etcd lease and
 * created only if absent (one transaction); releasing revokes the etcd lease,
 * which deletes the key. The fencing token is the key's create revision:
 * etcd's revision grows with every write to the cluster and is assigned by
 * the transaction that makes the holder, so every new holder gets a larger
 * one with no counter to keep. A renewal is a keep-alive plus a read checking
 * that the key still has that create revision. Every call carries a gRPC
 * deadline, so a partition shows up as failed calls, not hangs.
 *
 * Guarantees (given etcd's own): at most one holder per key; a lease lasts at
 * least its TTL after etcd received its grant or last keep-alive; tokens grow
 * with every new holder for as long as the cluster keeps its data (not across
 * a restore from an older backup, or a new cluster). TTLs are
 * rounded up to whole seconds (etcd may also raise a TTL to its minimum,
 * about 1.5x the election timeout); `lease.ttl` is what etcd granted.
 */
export class EtcdLeaseProvider implements LeaseProvider {
  readonly #client: Namespace;
  readonly #prefix: string;
  readonly #timeout: number;

  /** @throws TypeError naming the option when one is missing or malformed. */
  constructor(options: EtcdLeaseProviderOptions) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(`EtcdLeaseProvider(options): options must be an object with client (got ${describeValue(options)})`);
    }
    const client = options.client as Partial<Namespace> | null;
    if (client === null || typeof client !== "object" || typeof client.if !== "function" || typeof client.get !== "function" || client.leaseClient === undefined) {
      throw new TypeError(`EtcdLeaseProvider: client must be an etcd3 client or namespace (new Etcd3({ hosts })) (got ${describeValue(options.client)})`);
    }
    const prefix = options.prefix ?? "manifold-engine/leases/";
    if (typeof prefix !== "string") throw new TypeError(`EtcdLeaseProvider: prefix must be a string (got ${describeValue(prefix)})`);
    checkTimeout(options.timeout, "EtcdLeaseProvider");
    this.#client = options.client;
    this.#prefix = prefix;
    this.#timeout = options.timeout ?? 5000;
  }

  /**
   * Tries once to take the lease `request.key` for `request.holder`: resolves
   * with the lease, or with who holds it (from the key's value) and their
   * token. Rejects with what etcd3 threw when etcd cannot be reached within
   * `request.timeout` (default: the provider's `timeout`), and with a
   * `TypeError` naming the field for a malformed request.
   */
  async acquire(request: LeaseRequest): Promise<LeaseClaim> {
    checkLeaseRequest(request, "EtcdLeaseProvider.acquire");
    const client = this.#client;
    const key = this.#prefix + request.key;
    const timeout = request.timeout ?? this.#timeout;
    // One deadline for the whole attempt: the caller stops waiting then.
    const call = { deadline: Date.now() + timeout };
    const current = (await client.get(key).options(call).exec()).kvs[0];
    if (current !== undefined) return held(current);
    const granted = await client.leaseClient.leaseGrant({ TTL: Math.max(1, Math.ceil(request.ttl / 1000)), ID: 0 }, call);
    let handedOver = false;
    try {
      const txn = await client
        .if(key, "Create", "==", 0)
        .then(client.put(key).value(request.holder).lease(granted.ID))
        .else(client.get(key))
        .options(call)
        .commit();
      if (!txn.succeeded) {
        const kv = txn.responses[0]?.response_range?.kvs[0];
        return kv !== undefined ? held(kv) : { acquired: false, holder: undefined, token: undefined };
      }
      const token = Number(txn.header.revision);
      if (!Number.isSafeInteger(token)) throw new RangeError(`etcd revision ${txn.header.revision} of lease ${quote(request.key)} is not a safe integer`);
      const lease = new EtcdLease(client, request, key, granted.ID, Number(granted.TTL) * 1000, token, this.#timeout);
      handedOver = true;
      return { acquired: true, lease };
    } finally {
      // Lost the race, or the answer never came (the key may exist, bound to the lease): give the lease back.
      if (!handedOver) revokeQuietly(client, granted.ID, timeout);
    }
  }
}

/** The claim for a key somebody else holds. */
function held(kv: IKeyValue): LeaseClaim {
  const token = Number(kv.create_revision);
  return { acquired: false, holder: kv.value.toString(), token: Number.isSafeInteger(token) ? token : undefined };
}

function revokeQuietly(client: Namespace, id: string, timeout: number): void {
  client.leaseClient.leaseRevoke({ ID: id }, { deadline: Date.now() + timeout }).catch(() => {
    // Unreachable: the etcd lease expires by itself within its TTL.
  });
}

/** A lease held in etcd: the key `path` bound to etcd lease `#id`. */
class EtcdLease implements Lease {
  readonly key: string;
  readonly holder: string;
  readonly #client: Namespace;
  readonly #path: string;
  readonly #id: string;
  readonly #timeout: number;
  readonly #listeners = new Set<(error: LeaseLostError) => void>();
  #state: "held" | "lost" | "released" = "held";
  #lostWith: LeaseLostError | undefined;

  constructor(
    client: Namespace,
    request: LeaseRequest,
    path: string,
    id: string,
    readonly ttl: number,
    readonly token: number,
    timeout: number,
  ) {
    this.#client = client;
    this.key = request.key;
    this.holder = request.holder;
    this.#path = path;
    this.#id = id;
    this.#timeout = timeout;
  }

  async renew(options?: LeaseCallOptions): Promise<void> {
    checkTimeout(options?.timeout, "lease.renew");
    if (this.#state !== "held") throw new LeaseLostError(`lease ${quote(this.key)} of ${quote(this.holder)} was ${this.#state}; acquire it again`);
    const call = { deadline: Date.now() + (options?.timeout ?? this.#timeout) };
    const remaining = await keepAliveOnce(this.#client, this.#id, call);
    if (this.#state !== "held") throw new LeaseLostError(`lease ${quote(this.key)} of ${quote(this.holder)} was ${this.#state}`);
    if (!(remaining > 0)) throw this.#lose(`expired on the etcd server (its ${this.ttl} ms TTL passed without a keep-alive)`);
    const kv = (await this.#client.get(this.#path).options(call).exec()).kvs[0];
    if (this.#state !== "held") throw new LeaseLostError(`lease ${quote(this.key)} of ${quote(this.holder)} was ${this.#state}`);
    if (kv === undefined || Number(kv.create_revision) !== this.token) {
      throw this.#lose(kv === undefined ? "its key was deleted from etcd" : `its key was re-created (revision ${kv.create_revision}) by ${quote(kv.value.toString())}`);
    }
  }

  async release(options?: LeaseCallOptions): Promise<void> {
    checkTimeout(options?.timeout, "lease.release");
    if (this.#state === "released") return;
    this.#state = "released";
    this.#listeners.clear();
    try {
      await this.#client.leaseClient.leaseRevoke({ ID: this.#id }, { deadline: Date.now() + (options?.timeout ?? this.#timeout) });
    } catch (error) {
      // Already expired or revoked: released all the same.
      if (!(error instanceof EtcdLeaseInvalidError)) throw error;
    }
  }

  onLost(listener: (error: LeaseLostError) => void): () => void {
    if (typeof listener !== "function") throw new TypeError(`lease.onLost(listener): listener must be a function (got ${describeValue(listener)})`);
    const lostWith = this.#lostWith;
    if (lostWith !== undefined) {
      queueMicrotask(() => {
        try {
          listener(lostWith);
        } catch {
          // Ignored, as the contract says.
        }
      });
      return () => undefined;
    }
    if (this.#state === "released") return () => undefined;
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Marks the lease lost, tells the listeners once, and returns the error for the renewal to reject with. */
  #lose(why: string): LeaseLostError {
    const error = new LeaseLostError(`lease ${quote(this.key)} of ${quote(this.holder)} (token ${this.token}) is gone: ${why}`);
    this.#state = "lost";
    this.#lostWith = error;
    for (const listener of [...this.#listeners]) {
      try {
        listener(error);
      } catch {
        // A broken listener must not keep the others from hearing of the loss.
      }
    }
    this.#listeners.clear();
    return error;
  }
}

/** One keep-alive over a short-lived stream (etcd has no unary keep-alive); resolves with the remaining TTL in seconds. */
async function keepAliveOnce(client: Namespace, id: string, call: { deadline: number }): Promise<number> {
  const stream = await client.leaseClient.leaseKeepAlive(call);
  return new Promise<number>((resolve, reject) => {
    // The listener stays: a late error on a stream we have finished with must not go unhandled.
    stream.on("error", (error: Error) => reject(castGrpcError(error)));
    stream.on("data", (response) => {
      resolve(Number(response.TTL));
      stream.end();
    });
    stream.write({ ID: id });
  });
}
