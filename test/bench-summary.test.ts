/**
 * When `npm run bench` fails (bench/summary.ts `runFailures`, run.ts's exit
 * code): CI runs it briefly on small graphs and counts on a misbehaving
 * engine, or allocation figures asked for and missing, failing the run,
 * while a missed speed or memory target does not.
 */
import { describe, expect, it } from "vitest";
import { runFailures, type AllocReport, type Result } from "../bench/summary.js";

type Row = Pick<Result, "shape" | "size" | "stopTimeout" | "problems">;

const quiet: Row = { shape: "chain", size: 1000, stopTimeout: 30_000, problems: [] };
const allocation: AllocReport = { size: 1000, newSpaceMb: 512, results: [] };

describe("runFailures (what makes run.ts exit 1)", () => {
  it("nothing when every row ended quiet and the allocation figures came (or were not asked for)", () => {
    expect(runFailures([quiet, { ...quiet, shape: "layered" }], true, allocation)).toEqual([]);
    expect(runFailures([quiet], false, undefined)).toEqual([]);
  });

  it("each row with problems, named with its first three problems", () => {
    const troubled: Row = { shape: "fanout", size: 10_000, stopTimeout: 0, problems: ["a", "b", "c", "d"] };
    expect(runFailures([quiet, troubled], false, undefined)).toEqual(["fanout 10k stopTimeout=0 had problems: a, b, c"]);
  });

  it("allocation figures asked for and not given", () => {
    expect(runFailures([quiet], true, undefined)).toEqual(["allocation figures were asked for (--alloc-runs) but bench/alloc.ts gave none"]);
  });
});
