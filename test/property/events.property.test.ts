/**
 * Property of `engine.events` under fast-check's scheduler: random graphs,
 * random start outcomes, worker failures and completions, uninstalls,
 * reinstalls, kills and fatal errors (the model-based commands of
 * commands.ts, on the harness of model.ts, whose invariants keep running).
 * A subscriber attached before the first install keeps every event, and
 * after every step the harness also checks that:
 *
 * 1. causes: every `cause` is the id of an earlier event of the same engine;
 *    a `bounced` event's cause is an event of its `input`; an `uninstalled`
 *    is caused by the manifold's own `stopped (uninstall)` when its
 *    UninstallError removed it, and has no cause after an `uninstall()`
 *    call; each `started` is caused by its own `starting`, and the chain from every `started`
 *    reaches an event with no cause, which is a root the engine documents
 *    (an install, an uninstall, or a start or worker that ended by itself);
 * 2. order: per name, never a `starting` while an earlier start or worker
 *    (of any installation of that name) has not had its `stopped` (rule 8,
 *    as the events tell it); `started` only after `starting`; `killed` only
 *    after something asked for a kill; each event's `time` is the clock's;
 * 3. replay: the events alone reproduce the report: which manifolds are
 *    installed, each one's `state` (from its last event), `startCount`,
 *    `restartCount`, `failureCount`, `lastFailures`, `lastStart`, `error`,
 *    `uptimeMs`; the engine's `state`, `error`, `totals` and `counts`;
 * 4. the stream ends with `engine-stopped` and completes.
 *
 * A failure prints the replay line (seed, path, replayPath) as the other
 * property file does; see CONTRIBUTING.md ("Property tests").
 * Environment: FC_NUM_RUNS (default 1,000), FC_SEED, FC_PATH, FC_REPLAY_PATH, FC_VERBOSE.
 */
import fc from "fast-check";
import { describe, it } from "vitest";
import { describeEvent, type EngineEvent, type ManifoldReport, type StopOutcome } from "../../src/index.js";
import { failOnUnhandledRejections, iso, settle } from "../fixtures.js";
import { commandsArb, initialArb, schedulerArb, type SchedulerSource } from "./commands.js";
import { Harness, unhandledRejections, universeArb, type Universe } from "./model.js";

const env = process.env;

// ------------------------------------------------------------------ the replay

/**
 * One installation of a name as its events tell it. `phase`:
 * `pending` (a start is owed but not called: installed, scheduled, blocked),
 * `calling` (start function called, not settled), `running` (worker
 * accepted), `stopping` (running worker killed for a bounce), `idle`.
 */
interface Life {
  phase: "pending" | "calling" | "running" | "stopping" | "idle";
  /** Something asked the engine to stop its start or worker (a bounce, an uninstall, shutdown). */
  killAsked: boolean;
  startCount: number;
  /** Failures (stopped with outcome error or fatal), oldest first. */
  readonly failures: { error: string; time: string }[];
  lastStart: string | undefined;
  error: string | undefined;
  /** The id of its `stopped` with outcome uninstall (its own UninstallError), while it is installed. */
  uninstallStop?: number | undefined;
}

/** Whether a start or worker of this life has not had its `stopped` event yet. */
function awaitingStop(life: Life | undefined): boolean {
  return life !== undefined && (life.phase === "calling" || life.phase === "running" || life.phase === "stopping");
}

/** Outcomes the bookkeeping counts as failures. */
const FAILURE_OUTCOMES: ReadonlySet<StopOutcome> = new Set<StopOutcome>(["error", "fatal"]);

/** Roots a `started` event's chain may end at: something that happened from outside, or ended by itself. */
function isDocumentedRoot(event: EngineEvent): boolean {
  if (event.type === "installed" || event.type === "uninstalled") return true;
  return event.type === "stopped" && event.outcome !== "killed" && event.outcome !== "fatal";
}

/**
 * The report states a life may show. Two changes have no event of their own:
 * shutdown kills running workers (dependents first) after `engine-stopping`,
 * and an aborted start that still returns a worker has that worker killed
 * (its `stopped` comes when the worker has stopped).
 */
function expectedStates(life: Life, shuttingDown: boolean): readonly ManifoldReport["state"][] {
  switch (life.phase) {
    case "pending":
      return ["starting"];
    case "calling":
      return life.killAsked ? ["starting", "stopping"] : ["starting"];
    case "running":
      return shuttingDown ? ["started", "stopping"] : ["started"];
    case "stopping":
      return ["stopping"];
    case "idle":
      return ["stopped"];
  }
}

/**
 * The model harness plus a subscriber that keeps every event, replays it,
 * and checks the events against the report at every step.
 */
class EventHarness extends Harness {
  readonly events: EngineEvent[] = [];
  readonly #byId = new Map<number, EngineEvent>();
  /** The installed life of each name (from `installed` to `uninstalled`). */
  readonly #current = new Map<string, Life>();
  /** An uninstalled life of each name whose start or worker has not had its `stopped` yet (rule 8 allows one at a time). */
  readonly #retiring = new Map<string, Life>();
  readonly #totals = { starts: 0, failures: 0, bounces: 0 };
  #worst: string | undefined = undefined;
  #stopping = false;
  #stopped = false;
  #completed = false;
  /** How many `started` events have had their chain checked. */
  #chainsChecked = 0;
  #nowMs = Number.NaN;
  #nowIso = "";

  /** The clock's time as ISO 8601 (formatted once per clock reading: it is the costliest part of a check). */
  #now(): string {
    const ms = this.clock.now();
    if (ms !== this.#nowMs) {
      this.#nowMs = ms;
      this.#nowIso = iso(ms);
    }
    return this.#nowIso;
  }

  constructor(universe: Universe, s: fc.Scheduler) {
    super(universe, s);
    // Before the first install: every event of this engine is seen.
    this.engine.events.subscribe({
      next: (event) => this.#onEvent(event),
      error: (error: unknown) => this.violate(`events: the stream errored: ${String(error)}`),
      complete: () => (this.#completed = true),
    });
  }

  #onEvent(event: EngineEvent): void {
    const previous = this.events.at(-1);
    this.note(`event ${event.id}${event.cause === undefined ? "" : ` (cause ${event.cause})`}: ${describeEvent(event)}`);
    if (this.#completed) this.violate(`events: ${describeEvent(event)} after the stream completed`);
    if (this.#stopped) this.violate(`events: ${describeEvent(event)} after engine-stopped`);
    if (previous !== undefined && event.id <= previous.id) this.violate(`events: id ${event.id} after id ${previous.id}: ids must increase`);
    if (event.time !== this.#now()) this.violate(`events: ${describeEvent(event)} has time ${event.time}, the clock says ${this.#now()}`);
    if (event.cause !== undefined && !(event.cause < event.id && this.#byId.has(event.cause))) {
      this.violate(`events: cause ${event.cause} of event ${event.id} (${describeEvent(event)}) is not an earlier event of this engine`);
    }
    this.events.push(event);
    this.#byId.set(event.id, event);
    this.#replay(event);
  }

  /** Applies one event to the replayed state; violations where the events contradict themselves. */
  #replay(event: EngineEvent): void {
    switch (event.type) {
      case "installed": {
        if (this.#current.has(event.name)) this.violate(`events: installed ${event.name} twice without an uninstalled in between`);
        this.#current.set(event.name, { phase: "pending", killAsked: false, startCount: 0, failures: [], lastStart: undefined, error: undefined });
        this.#expectReportEntry(event.name, ["starting"], "installed");
        return;
      }
      case "uninstalled": {
        const life = this.#current.get(event.name);
        if (life === undefined) return this.violate(`events: uninstalled ${event.name}, which is not installed`);
        // Its own UninstallError (its stopped with outcome uninstall) causes it; an uninstall() call is a root.
        const itself = life.uninstallStop;
        if (event.cause !== itself) {
          this.violate(`events: uninstalled ${event.name} has cause ${String(event.cause)}; expected ${itself === undefined ? "none (an uninstall() call is a root)" : `its stopped (uninstall) event ${itself}`}`);
        }
        this.#current.delete(event.name);
        if (awaitingStop(life)) {
          if (this.#retiring.has(event.name)) this.violate(`events: two uninstalled ${event.name} with a start or worker each`);
          life.killAsked = true;
          this.#retiring.set(event.name, life);
        }
        if (Object.hasOwn(this.engine.report().manifolds, event.name)) this.violate(`events: report() inside the subscriber still lists ${event.name} at its uninstalled event`);
        return;
      }
      case "starting": {
        const life = this.#current.get(event.name);
        if (life === undefined) return this.violate(`events: starting ${event.name}, which is not installed`);
        if (awaitingStop(life) || this.#retiring.has(event.name)) this.violate(`rule 8 (events): starting ${event.name} before the stopped of its earlier start or worker`);
        const cause = event.cause === undefined ? undefined : this.#byId.get(event.cause);
        if (cause === undefined || !("name" in cause) || cause.name !== event.name || (cause.type !== "installed" && cause.type !== "scheduled")) {
          this.violate(`events: starting ${event.name} is caused by ${cause === undefined ? "nothing" : describeEvent(cause)}, not by its installed or scheduled event`);
        }
        life.phase = "calling";
        life.killAsked = false;
        return;
      }
      case "started": {
        const life = this.#current.get(event.name);
        if (life === undefined) return this.violate(`events: started ${event.name}, which is not installed`);
        if (life.phase !== "calling") this.violate(`events: started ${event.name} while it was ${life.phase}, not calling its start`);
        const cause = event.cause === undefined ? undefined : this.#byId.get(event.cause);
        if (cause?.type !== "starting" || cause.name !== event.name) this.violate(`events: started ${event.name} is not caused by its starting event`);
        life.phase = "running";
        life.startCount++;
        life.lastStart = event.time;
        life.error = undefined;
        this.#totals.starts++;
        if (event.startCount !== life.startCount) this.violate(`events: started ${event.name} says startCount ${event.startCount}, the events count ${life.startCount}`);
        this.#expectReportEntry(event.name, ["started"], "started");
        return;
      }
      case "stopped": {
        // A retiring life's start or worker is the only one of its name that can be live (rule 8).
        const retiring = this.#retiring.get(event.name);
        const life = retiring ?? this.#current.get(event.name);
        if (life === undefined || !awaitingStop(life)) return this.violate(`events: stopped ${event.name} without a start or worker in flight`);
        if (event.outcome === "killed" && !life.killAsked) this.violate(`events: stopped ${event.name} (killed), but nothing asked for a kill`);
        if ((event.outcome === "error" || event.outcome === "fatal") && event.error === undefined) this.violate(`events: stopped ${event.name} (${event.outcome}) has no error`);
        if (event.error !== undefined) life.error = event.error;
        if (FAILURE_OUTCOMES.has(event.outcome)) {
          life.failures.push({ error: event.error ?? "", time: event.time });
          this.#totals.failures++;
        }
        life.phase = "idle";
        if (retiring !== undefined) this.#retiring.delete(event.name);
        else if (event.outcome === "uninstall") life.uninstallStop = event.id;
        return;
      }
      case "scheduled": {
        const life = this.#current.get(event.name);
        if (life === undefined) return this.violate(`events: scheduled ${event.name}, which is not installed`);
        if (this.#stopping) this.violate(`events: scheduled ${event.name} after engine-stopping`);
        if (life.phase !== "idle" && life.phase !== "pending") this.violate(`events: scheduled ${event.name} while it was ${life.phase}`);
        life.phase = "pending";
        return;
      }
      case "bounced": {
        const life = this.#current.get(event.name);
        if (life === undefined) return this.violate(`events: bounced ${event.name}, which is not installed`);
        this.#totals.bounces++;
        if (!this.defs.get(event.name)?.inputs.includes(event.input)) this.violate(`events: bounced ${event.name} by ${event.input}, which is not one of its inputs`);
        const cause = event.cause === undefined ? undefined : this.#byId.get(event.cause);
        if (cause === undefined || !("name" in cause) || cause.name !== event.input) {
          this.violate(`events: bounced ${event.name} (input ${event.input}) is caused by ${cause === undefined ? "nothing" : describeEvent(cause)}, not by an event of ${event.input}`);
        }
        if (life.phase === "running") life.phase = "stopping";
        if (awaitingStop(life)) life.killAsked = true;
        return;
      }
      case "fatal": {
        const life = this.#retiring.get(event.name) ?? this.#current.get(event.name);
        if (!awaitingStop(life)) this.violate(`events: fatal ${event.name} without a start or worker in flight`);
        if (event.cause !== undefined) this.violate(`events: fatal ${event.name} has a cause; a fatal error is a root`);
        if (event.worst) this.#worst = event.error;
        else if (this.#worst === undefined) this.violate(`events: the first fatal error (${event.error}) is not the worst`);
        return;
      }
      case "engine-stopping": {
        if (this.#stopping) this.violate("events: engine-stopping twice");
        this.#stopping = true;
        // Starts owed are dropped; every start and worker is stopped.
        for (const life of this.#current.values()) {
          if (life.phase === "pending") life.phase = "idle";
          life.killAsked = true;
        }
        for (const life of this.#retiring.values()) life.killAsked = true;
        return;
      }
      case "engine-stopped": {
        if (!this.#stopping) this.violate("events: engine-stopped without engine-stopping");
        this.#stopped = true;
        for (const [name, life] of this.#current) if (life.phase !== "idle") this.violate(`events: engine-stopped while ${name} was ${life.phase}`);
        for (const name of this.#retiring.keys()) this.violate(`events: engine-stopped while the uninstalled ${name} had not stopped`);
        if (event.error !== this.#worst) this.violate(`events: engine-stopped says error ${String(event.error)}, the worst fatal event said ${String(this.#worst)}`);
        return;
      }
      default:
        // Stuck workers, heartbeats, quarantine and stalls are not configured here.
        this.violate(`events: unexpected ${event.type} event: ${describeEvent(event)}`);
    }
  }

  /** Inside the subscriber: report() already shows the change the event announces. */
  #expectReportEntry(name: string, states: readonly ManifoldReport["state"][], what: string): void {
    const entry = this.engine.report().manifolds[name];
    if (entry === undefined || !states.includes(entry.state)) {
      this.violate(`events: report() inside the subscriber shows ${name} as ${entry?.state ?? "absent"} at its ${what} event`);
    }
  }

  /** The chain of causes of every `started` event seen since the last check reaches a documented root. */
  #checkChains(): void {
    for (; this.#chainsChecked < this.events.length; this.#chainsChecked++) {
      const event = this.events[this.#chainsChecked] as EngineEvent;
      if (event.type !== "started") continue;
      let link: EngineEvent = event;
      const chain = [describeEvent(link)];
      while (link.cause !== undefined) {
        const next = this.#byId.get(link.cause);
        if (next === undefined) {
          this.violate(`events: the chain of ${describeEvent(event)} breaks at ${describeEvent(link)} (cause ${link.cause} unknown)`);
          break;
        }
        link = next;
        chain.push(describeEvent(link));
      }
      if (link.cause === undefined && !isDocumentedRoot(link)) this.violate(`events: the chain of ${describeEvent(event)} ends at ${describeEvent(link)}, which is not a root: ${chain.join(" <- ")}`);
    }
  }

  /** Replaying the events gives the report. */
  #checkReplay(): void {
    const report = this.engine.report();
    const expectedState = this.#stopped ? "stopped" : this.#stopping ? "stopping" : "started";
    if (report.state !== expectedState) this.violate(`events: report.state is ${report.state}, the events say ${expectedState}`);
    if (report.error !== this.#worst) this.violate(`events: report.error is ${String(report.error)}, the last worst fatal event says ${String(this.#worst)}`);
    const reported = Object.keys(report.manifolds).sort();
    const replayed = [...this.#current.keys()].sort();
    if (reported.join(",") !== replayed.join(",")) this.violate(`events: report lists [${reported.join(",")}], the events installed [${replayed.join(",")}]`);
    const counts = { starting: 0, started: 0, stopping: 0, stopped: 0 };
    const now = this.clock.now();
    for (const [name, life] of this.#current) {
      const entry = report.manifolds[name];
      if (entry === undefined) continue;
      counts[entry.state]++;
      const states = expectedStates(life, this.#stopping);
      if (!states.includes(entry.state)) this.violate(`events: ${name} is ${entry.state}, its last events say ${states.join(" or ")}`);
      if (entry.startCount !== life.startCount) this.violate(`events: ${name} startCount ${entry.startCount}, the started events count ${life.startCount}`);
      if (entry.restartCount !== Math.max(0, life.startCount - 1)) this.violate(`events: ${name} restartCount ${entry.restartCount} with ${life.startCount} starts`);
      if (entry.failureCount !== life.failures.length) this.violate(`events: ${name} failureCount ${entry.failureCount}, the stopped events count ${life.failures.length}`);
      const lastFailures = life.failures.slice(-5).reverse();
      if (JSON.stringify(entry.lastFailures) !== JSON.stringify(lastFailures)) {
        this.violate(`events: ${name} lastFailures ${JSON.stringify(entry.lastFailures)}, the events say ${JSON.stringify(lastFailures)}`);
      }
      if (entry.lastStart !== life.lastStart) this.violate(`events: ${name} lastStart ${String(entry.lastStart)}, the last started event says ${String(life.lastStart)}`);
      if (entry.error !== life.error) this.violate(`events: ${name} error ${JSON.stringify(entry.error)}, the events say ${JSON.stringify(life.error)}`);
      const uptime = entry.state === "started" && life.lastStart !== undefined ? now - Date.parse(life.lastStart) : undefined;
      if (entry.uptimeMs !== uptime) this.violate(`events: ${name} uptimeMs ${String(entry.uptimeMs)}, expected ${String(uptime)} from its started event`);
    }
    if (JSON.stringify(report.counts) !== JSON.stringify(counts)) this.violate(`events: report.counts ${JSON.stringify(report.counts)}, the manifolds' states give ${JSON.stringify(counts)}`);
    if (JSON.stringify(report.totals) !== JSON.stringify(this.#totals)) this.violate(`events: report.totals ${JSON.stringify(report.totals)}, the events give ${JSON.stringify(this.#totals)}`);
  }

  override check(where: string): void {
    this.#checkChains();
    this.#checkReplay();
    super.check(where);
  }

  /** After shutdown: the stream ended with engine-stopped, then completed. */
  checkEnded(): void {
    if (this.events.at(-1)?.type !== "engine-stopped") this.violate(`events: the last event is ${this.events.length === 0 ? "none" : describeEvent(this.events.at(-1) as EngineEvent)}, not engine-stopped`);
    if (!this.#completed) this.violate("events: the stream did not complete after engine-stopped");
    super.check("at the end of the stream");
  }
}

// ------------------------------------------------------------------ one run

async function runWithEvents(universe: Universe, initial: readonly number[], commands: Iterable<fc.AsyncCommand<Harness, Harness>>, scheduler: SchedulerSource): Promise<void> {
  unhandledRejections.clear();
  const harness = new EventHarness(universe, scheduler.make());
  if (initial.length > 0) {
    harness.installAll(initial, false);
    await settle(1);
    harness.check("after the initial installAll");
  }
  await fc.asyncModelRun(() => ({ model: harness, real: harness }), commands);
  await harness.quiesce();
  harness.check("at the end of the commands");
  await harness.shutdown();
  harness.checkEnded();
}

// ------------------------------------------------------------------ the property

function params(): fc.Parameters<unknown> {
  const p: fc.Parameters<unknown> = { numRuns: env["FC_NUM_RUNS"] ? Number(env["FC_NUM_RUNS"]) : 1000 };
  if (env["FC_SEED"]) p.seed = Number(env["FC_SEED"]);
  if (env["FC_PATH"]) p.path = env["FC_PATH"];
  if (env["FC_VERBOSE"]) p.verbose = Number(env["FC_VERBOSE"]) as fc.VerbosityLevel;
  return p;
}

failOnUnhandledRejections(unhandledRejections);

const NAME = "the events explain every start and replay to the report";

describe("engine.events (property, under fc.scheduler)", () => {
  it(`${NAME}: causes are earlier events, every started chain reaches a root, replaying gives the report's states and counters`, async () => {
    const property = fc.asyncProperty(
      // Smaller than the model-based property's (30 manifolds, 60 commands): the events add a replay to every step.
      universeArb(12),
      initialArb,
      commandsArb(30, env["FC_REPLAY_PATH"] || undefined),
      schedulerArb,
      (universe, initial, commands, scheduler) => runWithEvents(universe, initial, commands, scheduler),
    );
    const details = await fc.check(property, params());
    if (!details.failed) return;
    const replayPath = /replayPath="([^"]*)"/.exec(fc.stringify(details.counterexample))?.[1];
    const replay =
      `FC_SEED=${details.seed} FC_PATH="${details.counterexamplePath ?? ""}"` +
      (replayPath === undefined ? "" : ` FC_REPLAY_PATH="${replayPath}"`) +
      ` npx vitest run test/property/events.property.test.ts`;
    const error = details.errorInstance;
    const got = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new Error(`${fc.defaultReportMessage(details)}\n\nGot ${got}\n\nReplay this failure (see CONTRIBUTING.md):\n  ${replay}\n`);
  });
});
