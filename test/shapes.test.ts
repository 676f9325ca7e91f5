/**
 * The kept shapes (src/shapes.ts): once the package is loaded, one record of
 * each kind the engine makes only now and then stays alive, so that a full
 * GC never frees their hidden classes (bench/README.md, "Kept shapes").
 */
import { describe, expect, it } from "vitest";
import "../src/index.js";

describe("kept shapes", () => {
  it("hold a stop-deadline queue, a shutdown order and a node's rare fields, reachable from globalThis", () => {
    const kept = (globalThis as Record<symbol, object[] | undefined>)[Symbol.for("manifold-engine.kept-shapes")] ?? [];
    expect(new Set(kept.map((record) => record.constructor.name))).toEqual(new Set(["RareFields", "ShutdownOrder", "StopQueue"]));
  });
});
