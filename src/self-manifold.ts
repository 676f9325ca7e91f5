/**
 * Juju's SelfManifold: lets manifolds of an engine install, uninstall and
 * report on manifolds of that same engine.
 */
import { describeValue } from "./errors.js";
import { Engine } from "./engine.js";
import type { Manifold } from "./manifold.js";

/** What the self manifold offers to its dependents. */
export type EngineControls = Pick<Engine, "install" | "installAll" | "uninstall" | "report">;

/**
 * A manifold whose worker is `engine` itself and whose output offers
 * `{ install, installAll, uninstall, report }` bound to it. Install it into the
 * same engine; the engine never kills or waits for itself (SPEC rule 11) and
 * omits this manifold's `report`.
 * @throws TypeError if `engine` is not an Engine.
 */
export function selfManifold(engine: Engine): Manifold<Engine, EngineControls> {
  if (!(engine instanceof Engine)) {
    throw new TypeError(`selfManifold(engine): engine must be an Engine (got ${describeValue(engine)})`);
  }
  return {
    inputs: [],
    start: () => engine,
    output: (worker) => {
      // Controls are bound to `engine` only: a self manifold must never hand
      // one engine's controls out for another.
      if (worker !== engine) {
        throw new TypeError("selfManifold: output was given a worker that is not this manifold's engine; install selfManifold(engine) into that same engine");
      }
      return {
        install: engine.install.bind(engine),
        installAll: engine.installAll.bind(engine),
        uninstall: engine.uninstall.bind(engine),
        report: engine.report.bind(engine),
      };
    },
  };
}
