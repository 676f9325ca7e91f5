/**
 * Model-based property tests of the engine (see model.ts for the model and
 * the invariants it checks after every step).
 *
 * A failure prints fast-check's report (seed, path, shrunk counterexample:
 * the manifolds, the commands and the order in which the scheduler released
 * tasks), the violations with a trace of what the engine did, and a command
 * line that replays it. See CONTRIBUTING.md ("Property tests").
 *
 * Environment: FC_NUM_RUNS (runs per property), FC_SEED, FC_PATH and
 * FC_REPLAY_PATH (replay one failure), FC_VERBOSE (1 or 2).
 */
import fc from "fast-check";
import { describe, it } from "vitest";
import { failOnUnhandledRejections } from "../fixtures.js";
import { assertProperty, commandsArb, initialArb, runColdStart, runCommands, schedulerArb } from "./commands.js";
import { universeArb, unhandledRejections } from "./model.js";

const env = process.env;

// The harness reads this log after every step (each run clears it first); a
// rejection that arrives after the last step of the last run fails the test too.
failOnUnhandledRejections(unhandledRejections);

const COMMANDS = "random commands over random DAGs keep every invariant";
const COLD_START = "a cold start calls each start once, in dependency order";

describe("engine properties (model-based, under fc.scheduler)", () => {
  it(`${COMMANDS}, at every step and at the end`, async () => {
    await assertProperty(
      COMMANDS,
      fc.asyncProperty(
        universeArb(30),
        initialArb,
        // Commands shrink according to what ran; replaying a shrunk failure needs the replayPath printed with it.
        commandsArb(60, env["FC_REPLAY_PATH"] || undefined),
        schedulerArb,
        (universe, initial, commands, scheduler) => runCommands(universe, initial, commands, scheduler),
      ),
      1000,
    );
  });

  it(`${COLD_START}; shutdown stops dependents first`, async () => {
    await assertProperty(
      COLD_START,
      fc.asyncProperty(
        universeArb(30),
        fc.array(fc.nat({ max: 29 }), { maxLength: 30 }),
        fc.nat({ max: 30 }),
        fc.nat({ max: 2 ** 30 - 1 }),
        schedulerArb,
        (universe, order, split, syncMask, scheduler) => runColdStart(universe, order, split, syncMask, scheduler),
      ),
      1000,
    );
  });
});
