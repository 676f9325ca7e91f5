/**
 * One record of each kind the engine makes only now and then, kept for the
 * life of the process.
 *
 * V8 compiles the engine's hot functions for the hidden classes ("maps") of
 * the records they touch, and holds those maps weakly: once no record of a
 * kind is alive, a full GC frees its map and throws away every function
 * optimised for it. Some records exist only while something happens: a
 * shutdown's order and its stop deadlines, the rare fields of a node that
 * failed or waits on a restart timer or an uninstall. A long-running engine mostly has none of them,
 * so the first shutdown, bounce or failure after each full GC ran the code
 * that handles it unoptimised again, and its feedback had to be gathered
 * afresh. One record of each kind, made when the module loads, keeps their
 * maps and so that code: bench/README.md ("Kept shapes") has the figures.
 * @internal
 */
const kept: object[] = ((globalThis as Record<symbol, object[] | undefined>)[Symbol.for("manifold-engine.kept-shapes")] ??= []);

/**
 * Keeps `example`, a record of a kind the engine makes only now and then, alive for the life of the process (see above).
 * A new kind of record that a hot path makes only while something happens needs a call too, next to its class.
 * (The list hangs on `globalThis`, so that no bundler can drop these calls as having no effect: the package says
 * `"sideEffects": false`.)
 * @internal
 */
export function keepShape(example: object): void {
  kept.push(example);
}
