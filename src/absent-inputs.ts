/**
 * Inputs that name nothing installed (a typo, or a manifold not installed
 * yet): "did you mean" suggestions for the start context's error, and one
 * warning per name once the engine is idle with the input still absent.
 */
import type { Logger } from "./config.js";
import { quote } from "./errors.js";
import type { Graph } from "./graph.js";
import type { ManifoldNode } from "./node.js";
import { didYouMean } from "./suggest.js";

/** The largest installed set whose names are searched for a "did you mean" (measured: ~110 ms for 100,000 names, ~5 ms for 5,000). */
const SUGGEST_UP_TO = 5000;

/** @internal */
export class AbsentInputs {
  readonly #graph: Graph<ManifoldNode>;
  readonly #logger: Logger;
  /** The installed set's generation: suggestions are kept for one. */
  readonly #generation: () => number;
  /** Suggestions for names that are not installed, valid for one generation of the installed set. */
  #suggestions: { generation: number; byName: Map<string, string> } = { generation: -1, byName: new Map() };
  /** Absent inputs already warned about. */
  readonly #warned = new Set<string>();
  /** The generation of the installed set last looked at: absent inputs change only with it. */
  #lookedAt = -1;

  constructor(graph: Graph<ManifoldNode>, logger: Logger, generation: () => number) {
    this.#graph = graph;
    this.#logger = logger;
    this.#generation = generation;
  }

  /** `; did you mean "x"?` for a name that is not installed (computed once per name and installed set). */
  suggest(name: string): string {
    // A suggestion compares the name with every installed one (about 1 µs each):
    // past this many it would cost a start or an uninstall more than it is worth.
    if (this.#graph.size > SUGGEST_UP_TO) return "";
    if (this.#suggestions.generation !== this.#generation()) this.#suggestions = { generation: this.#generation(), byName: new Map() };
    let suggestion = this.#suggestions.byName.get(name);
    if (suggestion === undefined) {
      suggestion = didYouMean(name, this.#graph.names());
      this.#suggestions.byName.set(name, suggestion);
    }
    return suggestion;
  }

  /** Once idle: a warning, once per name, for each input some manifold lists that is still not installed. */
  warnOnce(): void {
    const generation = this.#generation();
    if (generation === this.#lookedAt) return;
    this.#lookedAt = generation;
    for (const slot of this.#graph.absentInputs()) {
      if (this.#warned.has(slot.name)) continue;
      this.#warned.add(slot.name);
      const [first] = slot.dependents;
      const who = first === undefined ? "a manifold" : `manifold ${quote(first.name)}${slot.dependentCount > 1 ? ` (and ${slot.dependentCount - 1} more)` : ""}`;
      this.#logger.warn(`${who} lists input ${quote(slot.name)}, which is not installed${this.suggest(slot.name) || "; install it, or fix the name in inputs"}`);
    }
  }
}
