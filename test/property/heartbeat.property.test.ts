/**
 * Property test of heartbeat supervision (issue 11), under fc.scheduler and a
 * TestClock: random manifolds whose workers beat (heartbeat() or progress()),
 * hang, or beat for a while and then hang; random clock advances, releases of
 * scheduled promises (start results, the end of a killed worker's wait()),
 * advances to exactly the next timer (a deadline, a beat), and stray beats
 * from any worker, current or long replaced, at any moment. After every
 * step:
 *
 * - no hung worker survives its deadline plus the one shared timer's slack:
 *   a running worker of a `restart` manifold silent for `heartbeatTimeout`
 *   or more has been killed. The deadline timer of a TestClock fires exactly
 *   when due (no lateness, so no stall), so the slack is 0 ms here; with the
 *   real clock it is however late the timer fires, below the stall threshold;
 * - a worker is never killed before its deadline: when the engine kills one
 *   (before `kill()`), it has been silent for at least `heartbeatTimeout`,
 *   and its manifold's action is `restart`; so a worker that keeps beating
 *   inside its timeout is never killed;
 * - a `report` manifold's running worker is marked `silent` in the report
 *   exactly while it has been silent for `heartbeatTimeout` or more;
 * - a stale beat (from a worker that was killed or replaced) never counts
 *   for the current worker: the model ignores it, and the first two checks
 *   fail if the engine did not;
 * - the report's `progress` is the last progress() of the manifold's current
 *   worker (a stale one's never shows).
 *
 * The model is separate from the engine model of engine.property.test.ts:
 * that one checks every kill against the SPEC's reasons (input change,
 * uninstall, kill) and every timer delay against rule 5, and a heartbeat
 * kill is neither; these manifolds have no inputs, so a heartbeat is the
 * only reason the engine may kill a worker before `kill()`.
 *
 * Replay a failure as CONTRIBUTING.md ("Property tests") says: the failure
 * prints a command line with FC_SEED, FC_PATH and FC_REPLAY_PATH.
 */
import fc from "fast-check";
import { describe, it } from "vitest";
import { Engine, type StartContext, type Worker } from "../../src/index.js";
import { failOnUnhandledRejections, RejectionLog, settle, TestClock } from "../fixtures.js";
import { assertProperty, schedulerArb, type SchedulerSource } from "./commands.js";

const env = process.env;

/** The deadline timer's slack on a TestClock: it fires exactly when due. */
const SLACK = 0;
const ERROR_DELAY = 200;

// ------------------------------------------------------------------ the universe

/** What one worker does: beat every `period` ms forever, never, or `beats` times and then never again. */
interface Behaviour {
  readonly kind: "beat" | "hang" | "beatThenHang";
  /** ms between beats (always less than the manifold's heartbeatTimeout). */
  readonly period: number;
  readonly beats: number;
  /** Beat with progress() rather than heartbeat(). */
  readonly progress: boolean;
  /** The start returns the worker through a scheduled promise (else synchronously). */
  readonly asyncStart: boolean;
}

interface Def {
  readonly timeout: number;
  readonly action: "restart" | "report";
  /** One per start call, in turn (cycled). */
  readonly behaviours: readonly Behaviour[];
}

const defArb: fc.Arbitrary<Def> = fc
  .record({ timeout: fc.integer({ min: 20, max: 300 }), action: fc.constantFrom<"restart" | "report">("restart", "restart", "report") })
  .chain(({ timeout, action }) =>
    fc.record({
      timeout: fc.constant(timeout),
      action: fc.constant(action),
      behaviours: fc.array(
        fc.record({
          kind: fc.constantFrom<Behaviour["kind"]>("beat", "beat", "hang", "beatThenHang"),
          // Often just inside the deadline, where an off-by-one would show.
          period: fc.oneof(fc.integer({ min: 1, max: timeout - 1 }), fc.constant(timeout - 1)),
          beats: fc.integer({ min: 1, max: 5 }),
          progress: fc.boolean(),
          asyncStart: fc.boolean(),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    }),
  );

const universeArb: fc.Arbitrary<Def[]> = fc.array(defArb, { minLength: 1, maxLength: 5 });

// ------------------------------------------------------------------ the harness

/** One worker as the model sees it. */
class BeatingWorker implements Worker {
  /** Clock time the engine accepted it as running (metrics.recordStart); the first deadline counts from here. */
  acceptedAt: number | undefined = undefined;
  /** Clock time of its last beat that counts (accepted, not killed); acceptedAt at first. */
  lastBeat = 0;
  killedAt: number | undefined = undefined;
  stopped = false;
  #beats = 0;
  #staleBeats = 0;
  #resolve!: () => void;
  readonly #done = new Promise<void>((resolve) => (this.#resolve = resolve));

  constructor(
    readonly h: Harness,
    readonly index: number,
    readonly serial: number,
    readonly def: Def,
    readonly behaviour: Behaviour,
    readonly context: StartContext,
  ) {
    if (behaviour.kind !== "hang") h.clock.setTimeout(() => this.#tick(), behaviour.period);
  }

  get id(): string {
    return `m${this.index}#${this.serial}`;
  }

  /** Running as far as the engine is concerned: accepted, not yet killed. */
  get running(): boolean {
    return this.acceptedAt !== undefined && this.killedAt === undefined;
  }

  /** Its own beat loop; after it stopped, a few stale beats more. */
  #tick(): void {
    if (this.behaviour.kind === "beatThenHang" && this.#beats >= this.behaviour.beats) return;
    if (this.stopped && ++this.#staleBeats > 3) return;
    this.#beats++;
    this.beat();
    this.h.clock.setTimeout(() => this.#tick(), this.behaviour.period);
  }

  /** A beat through its context; the model counts it only while the worker is running. */
  beat(): void {
    if (this.behaviour.progress) {
      const message = `${this.id} beat ${this.#beats}`;
      this.context.progress(message);
      // Recorded while it is its manifold's current worker (not stopped, not replaced), running or not.
      if (!this.stopped && this.h.byIndex[this.index]?.at(-1) === this) this.h.progress[this.index] = message;
    } else {
      this.context.heartbeat();
    }
    if (this.running) this.lastBeat = this.h.clock.now();
  }

  kill(): void {
    if (this.killedAt !== undefined) return;
    const now = this.h.clock.now();
    this.killedAt = now;
    if (!this.h.killed) {
      if (this.acceptedAt === undefined) this.h.violate(`${this.id} was killed before it was accepted as running, with no kill() or input to explain it`);
      else if (this.def.action === "report") this.h.violate(`${this.id} was killed although its heartbeatAction is "report"`);
      else if (now - this.lastBeat < this.def.timeout) {
        this.h.violate(`${this.id} was killed after ${now - this.lastBeat} ms of silence, before its deadline (heartbeatTimeout ${this.def.timeout} ms)`);
      }
      if (this.behaviour.kind === "beat") this.h.violate(`${this.id} beats every ${this.behaviour.period} ms (timeout ${this.def.timeout}) and was killed anyway`);
    }
    this.h.note(`kill ${this.id} at +${now - this.h.t0}`);
    // The worker stops when fast-check says so.
    this.h.later(`stop ${this.id}`, () => {
      this.stopped = true;
      this.#resolve();
    });
  }

  wait(): Promise<void> {
    return this.#done;
  }
}

class Harness {
  readonly clock = new TestClock();
  readonly t0 = this.clock.now();
  readonly engine: Engine;
  readonly workers: BeatingWorker[] = [];
  /** Per manifold: its workers, oldest first. */
  readonly byIndex: BeatingWorker[][];
  /** Per manifold: the progress message the report must show. */
  readonly progress: (string | undefined)[] = [];
  readonly violations: string[] = [];
  readonly trace: string[] = [];
  killed = false;

  constructor(
    readonly defs: readonly Def[],
    readonly s: fc.Scheduler,
  ) {
    this.byIndex = defs.map(() => []);
    const ignore = (): void => undefined;
    this.engine = new Engine({
      clock: this.clock,
      jitter: 0,
      bounceDelay: 10,
      errorDelay: ERROR_DELAY,
      backoffFactor: 0,
      stopTimeout: 0, // a kill waits for fast-check to release the worker, however long
      logger: { debug: ignore, info: ignore, warn: ignore, error: ignore },
      metrics: { recordStart: (name) => this.#accepted(name) },
    });
    const manifolds: Record<string, Parameters<Engine["install"]>[1]> = {};
    defs.forEach((def, index) => {
      manifolds[`m${index}`] = {
        inputs: [],
        heartbeatTimeout: def.timeout,
        heartbeatAction: def.action,
        start: (context: StartContext) => this.#start(index, context),
      };
    });
    this.engine.installAll(manifolds);
  }

  #start(index: number, context: StartContext): Worker | Promise<Worker> {
    const def = this.defs[index] as Def;
    const mine = this.byIndex[index] as BeatingWorker[];
    const behaviour = def.behaviours[mine.length % def.behaviours.length] as Behaviour;
    const worker = new BeatingWorker(this, index, mine.length, def, behaviour, context);
    mine.push(worker);
    this.workers.push(worker);
    this.note(`start ${worker.id} (${behaviour.kind}${behaviour.kind === "hang" ? "" : ` every ${behaviour.period} ms`}) at +${this.clock.now() - this.t0}`);
    return behaviour.asyncStart ? this.s.schedule(Promise.resolve<Worker>(worker), `start ${worker.id}`) : worker;
  }

  #accepted(name: string): void {
    const worker = this.byIndex[Number(name.slice(1))]?.at(-1);
    if (worker === undefined) return this.violate(`recordStart(${name}) with no start called`);
    worker.acceptedAt = worker.lastBeat = this.clock.now();
    this.note(`accepted ${worker.id}`);
  }

  violate(message: string): void {
    this.violations.push(message);
    this.note(`VIOLATION: ${message}`);
  }

  note(line: string): void {
    if (this.trace.length < 300) this.trace.push(line);
  }

  later(label: string, fn: () => void): void {
    void this.s.schedule(Promise.resolve(label), label).then(fn);
  }

  /** The checks of every step (see the file's comment). */
  check(when: string): void {
    const now = this.clock.now();
    if (!this.killed) {
      const report = this.engine.report();
      this.defs.forEach((_def, index) => {
        const shown = report.manifolds[`m${index}`]?.progress?.message;
        if (shown !== this.progress[index]) this.violate(`m${index}: report shows progress ${String(shown)}, expected ${String(this.progress[index])}`);
      });
      for (const worker of this.workers) {
        if (!worker.running) continue;
        const silentFor = now - worker.lastBeat;
        if (worker.def.action === "restart" && silentFor >= worker.def.timeout + SLACK) {
          this.violate(`${worker.id} has been silent for ${silentFor} ms and still runs (heartbeatTimeout ${worker.def.timeout} ms, slack ${SLACK} ms)`);
        }
        if (worker.def.action === "report") {
          const silent = report.manifolds[`m${worker.index}`]?.silent === true;
          if (silent !== silentFor >= worker.def.timeout) {
            this.violate(`${worker.id}: report says silent=${silent} after ${silentFor} ms of silence (heartbeatTimeout ${worker.def.timeout} ms)`);
          }
        }
      }
    }
    if (this.violations.length > 0) {
      throw new Error(`${when}: ${this.violations.join("\n")}\n\ntrace:\n  ${this.trace.slice(-60).join("\n  ")}`);
    }
  }

  /**
   * Moves the clock by `ms`, stopping at every model deadline on the way (a
   * running worker's last beat plus its timeout) to check there: a worker
   * killed even 1 ms late, or kept alive by a beat that should not count,
   * shows only at that very millisecond.
   */
  async advance(ms: number): Promise<void> {
    const target = this.clock.now() + ms;
    for (;;) {
      const now = this.clock.now();
      let due = target;
      for (const worker of this.workers) {
        if (worker.running && worker.lastBeat + worker.def.timeout > now) due = Math.min(due, worker.lastBeat + worker.def.timeout);
      }
      await this.clock.advance(due - now);
      await settle(1);
      if (due === target) return;
      this.check(`at a deadline of the model, +${due - this.t0} ms`);
    }
  }

  /** Releases every scheduled task and lets the engine stop; wait() must settle. */
  async shutdown(): Promise<void> {
    this.killed = true;
    this.engine.kill();
    let stopped = false;
    void this.engine.wait().then(() => (stopped = true));
    for (let steps = 0; steps < 1000 && !stopped; steps++) {
      if (this.s.count() > 0) await this.s.waitNext(1);
      await settle(1);
    }
    if (!stopped) this.violate("wait() did not settle after kill() once every worker was released");
    this.check("after shutdown");
  }
}

// ------------------------------------------------------------------ commands

type HeartbeatCommand = fc.AsyncCommand<Harness, Harness>;

abstract class Step implements HeartbeatCommand {
  check(): boolean {
    return true;
  }
  abstract act(h: Harness): Promise<void> | void;
  async run(_model: Harness, h: Harness): Promise<void> {
    await this.act(h);
    await settle(1);
    h.check(`after ${this.toString()}`);
  }
  abstract toString(): string;
}

class Advance extends Step {
  constructor(readonly ms: number) {
    super();
  }
  act(h: Harness): Promise<void> {
    h.note(`advance ${this.ms}`);
    return h.advance(this.ms);
  }
  toString(): string {
    return `advance(${this.ms})`;
  }
}

/** Up to the earliest pending timer, exactly: a deadline, a beat, a restart, whichever is first. */
class AdvanceToNext extends Step {
  async act(h: Harness): Promise<void> {
    const next = h.clock.pending[0];
    if (next === undefined) return;
    h.note(`advance to the next timer (${next.due - h.clock.now()} ms)`);
    await h.advance(next.due - h.clock.now());
  }
  toString(): string {
    return "advanceToNext()";
  }
}

class Release extends Step {
  constructor(readonly count: number) {
    super();
  }
  async act(h: Harness): Promise<void> {
    for (let i = 0; i < this.count && h.s.count() > 0; i++) {
      await h.s.waitNext(1);
      await settle(1);
    }
  }
  toString(): string {
    return `release(${this.count})`;
  }
}

/** A beat now from some worker, current or stale (its context outlives it). */
class StrayBeat extends Step {
  constructor(readonly pick: number) {
    super();
  }
  act(h: Harness): void {
    if (h.workers.length === 0) return;
    const worker = h.workers[this.pick % h.workers.length] as BeatingWorker;
    h.note(`stray beat from ${worker.id}`);
    worker.beat();
  }
  toString(): string {
    return `strayBeat(${this.pick})`;
  }
}

function commandsArb(): fc.Arbitrary<Iterable<HeartbeatCommand>> {
  const advance = fc.oneof(fc.integer({ min: 1, max: 400 }), fc.constantFrom(1, 19, 20, 99, 100, 299, 300)).map((ms): HeartbeatCommand => new Advance(ms));
  const toNext = fc.constant<HeartbeatCommand>(new AdvanceToNext());
  const release = fc.integer({ min: 1, max: 4 }).map((n): HeartbeatCommand => new Release(n));
  const stray = fc.nat({ max: 100 }).map((pick): HeartbeatCommand => new StrayBeat(pick));
  const replayPath = env["FC_REPLAY_PATH"] || undefined;
  return fc.commands([advance, advance, toNext, toNext, release, release, stray, stray], replayPath === undefined ? { maxCommands: 40, size: "max" } : { maxCommands: 40, size: "max", replayPath });
}

async function runOne(defs: Def[], commands: Iterable<HeartbeatCommand>, scheduler: SchedulerSource): Promise<void> {
  rejections.clear();
  const harness = new Harness(defs, scheduler.make());
  await settle(1);
  harness.check("after installing");
  await fc.asyncModelRun(() => ({ model: harness, real: harness }), commands);
  await harness.shutdown();
  if (rejections.reasons.length > 0) throw new Error(`unhandled rejection: ${String(rejections.reasons[0])}`);
}

const rejections = failOnUnhandledRejections(new RejectionLog());

const PROPERTY = "no hung worker survives its deadline plus the shared timer's slack; no beating worker is killed";

describe("heartbeat supervision (property, under fc.scheduler and a TestClock)", () => {
  it(PROPERTY, async () => {
    await assertProperty(PROPERTY, fc.asyncProperty(universeArb, commandsArb(), schedulerArb, runOne), 300);
  });
});
