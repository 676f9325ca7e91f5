/**
 * Hostile input and user code that misbehaves (rule 10): malformed calls,
 * broken workers, failing start, output, filter, isFatal, worstError, logger
 * and metrics, and awkward names. Every refusal must be the documented error
 * class with a message that names the manifold and what is wrong; every
 * failure of user code becomes that manifold's error or a log line; and the
 * engine must keep working afterwards.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  AlreadyInstalledError,
  createWorker,
  CycleError,
  Engine,
  EngineStoppedError,
  MissingError,
  resource,
  selfManifold,
  validate,
  valueWorker,
  type ErrorClass,
  type EngineReport,
  type Manifold,
  type ManifoldReport,
  type Manifolds,
  type StartContext,
  type Worker,
} from "../src/index.js";
import {
  entry,
  expectStillWorking,
  failOnUnhandledRejections,
  failureOf,
  fieldThatChanges,
  hasEntry,
  makeEngine,
  settle,
  stop,
  TestWorker,
  valueManifold,
} from "./fixtures.js";

// ------------------------------------------------------------------ helpers

// Rule 10: nothing here may surface as an unhandled rejection.
failOnUnhandledRejections();

/** Lets the type system through: these calls are malformed on purpose. */
const any = (value: unknown): never => value as never;


/** Runs `use` inside the start function of a new manifold `name` (inputs `inputs`) and returns what it throws. */
function throwInsideStart(engine: Engine, name: string, inputs: string[], use: (context: StartContext) => unknown): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    engine.install(name, {
      inputs,
      start: (context) => {
        try {
          use(context);
          resolve();
        } catch (error) {
          reject(error);
        }
        return valueWorker(0);
      },
    });
  });
}

/** Captures a start context, then uses it after the start has settled. */
async function useAfterStart(engine: Engine, name: string, use: (context: StartContext) => unknown): Promise<void> {
  let captured: StartContext | undefined;
  engine.install(name, {
    inputs: ["x"],
    start: (context) => {
      captured = context;
      return valueWorker(0);
    },
  });
  await settle();
  use(captured as StartContext);
}

const LONG = "n".repeat(10_000);
const LONG_PREFIX = JSON.stringify(LONG.slice(0, 120)).slice(0, -1); // `"nnn…` as messages quote it

// ------------------------------------------------------------------ calls that throw

type Row = {
  title: string;
  call: (engine: Engine) => unknown;
  error: ErrorClass;
  message: RegExp;
  check?: (error: Error, engine: Engine) => void;
};

const rows: Row[] = [
  // Names.
  { title: "a number as name", call: (e) => e.install(any(42), valueManifold(0)), error: TypeError, message: /manifold name must be a non-empty string.*number 42/ },
  { title: "an empty name", call: (e) => e.install("", valueManifold(0)), error: TypeError, message: /manifold name must be a non-empty string.*""/ },
  { title: "null as name", call: (e) => e.install(any(null), valueManifold(0)), error: TypeError, message: /manifold name.*null/ },
  { title: "undefined as name", call: (e) => e.install(any(undefined), valueManifold(0)), error: TypeError, message: /manifold name.*undefined/ },
  { title: "a symbol as name", call: (e) => e.install(any(Symbol("s")), valueManifold(0)), error: TypeError, message: /manifold name.*symbol/ },
  { title: "an object without a name as name", call: (e) => e.install(any({}), valueManifold(0)), error: TypeError, message: /manifold name.*an object/ },
  { title: "a token with an empty name", call: (e) => e.install(any({ name: "" }), valueManifold(0)), error: TypeError, message: /manifold name/ },
  // The manifold itself.
  { title: "null as manifold", call: (e) => e.install("h-null", any(null)), error: TypeError, message: /manifold "h-null" must be an object.*null/ },
  { title: "a string as manifold", call: (e) => e.install("h-str", any("manifold")), error: TypeError, message: /manifold "h-str" must be an object/ },
  // inputs.
  { title: "a string as inputs", call: (e) => e.install("h-in-str", any({ inputs: "a", start: () => valueWorker(0) })), error: TypeError, message: /manifold "h-in-str": inputs must be an array.*"a"/ },
  { title: "missing inputs", call: (e) => e.install("h-in-none", any({ start: () => valueWorker(0) })), error: TypeError, message: /manifold "h-in-none": inputs must be an array.*undefined/ },
  { title: "an array-like object as inputs", call: (e) => e.install("h-in-like", any({ inputs: { length: 1, 0: "a" }, start: () => valueWorker(0) })), error: TypeError, message: /manifold "h-in-like": inputs must be an array/ },
  { title: "a number among inputs", call: (e) => e.install("h-in-num", { inputs: any([42]), start: () => valueWorker(0) }), error: TypeError, message: /manifold "h-in-num": inputs\[0\].*number 42/ },
  { title: "an empty string among inputs", call: (e) => e.install("h-in-empty", { inputs: ["ok", ""], start: () => valueWorker(0) }), error: TypeError, message: /manifold "h-in-empty": inputs\[1\].*""/ },
  { title: "null among inputs", call: (e) => e.install("h-in-null", { inputs: any(["ok", null]), start: () => valueWorker(0) }), error: TypeError, message: /manifold "h-in-null": inputs\[1\].*null/ },
  { title: "a nested array among inputs", call: (e) => e.install("h-in-nest", { inputs: any([["a"]]), start: () => valueWorker(0) }), error: TypeError, message: /manifold "h-in-nest": inputs\[0\].*array/ },
  { title: "a bad token among inputs", call: (e) => e.install("h-in-tok", { inputs: any([{ name: 5 }]), start: () => valueWorker(0) }), error: TypeError, message: /manifold "h-in-tok": inputs\[0\]/ },
  { title: "a duplicate input", call: (e) => e.install("h-dup", { inputs: ["a", "b", "a"], start: () => valueWorker(0) }), error: TypeError, message: /manifold "h-dup": inputs\[2\] repeats "a".*inputs\[0\]/ },
  { title: "a duplicate input given once as a token", call: (e) => e.install("h-dup-tok", { inputs: ["d", resource("d")], start: () => valueWorker(0) }), error: TypeError, message: /manifold "h-dup-tok": inputs\[1\] repeats "d"/ },
  {
    title: "the manifold as its own input",
    call: (e) => e.install("h-self", { inputs: ["h-self"], start: () => valueWorker(0) }),
    error: CycleError,
    message: /manifold "h-self".*itself.*inputs\[0\]/,
    check: (error) => expect((error as CycleError).cycle).toEqual(["h-self", "h-self"]),
  },
  {
    title: "the manifold as its own input through a token",
    call: (e) => e.install(resource("h-self-tok"), { inputs: ["x", resource("h-self-tok")], start: () => valueWorker(0) }),
    error: CycleError,
    message: /manifold "h-self-tok".*itself.*inputs\[1\]/,
    check: (error) => expect((error as CycleError).cycle).toEqual(["h-self-tok", "h-self-tok"]),
  },
  // start, output, filter, stopTimeout.
  { title: "a missing start", call: (e) => e.install("h-nostart", any({ inputs: [] })), error: TypeError, message: /manifold "h-nostart": start must be a function.*undefined/ },
  { title: "a string as start", call: (e) => e.install("h-strstart", any({ inputs: [], start: "go" })), error: TypeError, message: /manifold "h-strstart": start must be a function.*"go"/ },
  { title: "an object as start", call: (e) => e.install("h-objstart", any({ inputs: [], start: {} })), error: TypeError, message: /manifold "h-objstart": start must be a function/ },
  { title: "a string as output", call: (e) => e.install("h-out", any({ inputs: [], start: () => valueWorker(0), output: "value" })), error: TypeError, message: /manifold "h-out": output must be a function.*"value"/ },
  { title: "null as output", call: (e) => e.install("h-out-null", any({ inputs: [], start: () => valueWorker(0), output: null })), error: TypeError, message: /manifold "h-out-null": output must be a function.*null/ },
  { title: "a number as filter", call: (e) => e.install("h-filter", any({ inputs: [], start: () => valueWorker(0), filter: 42 })), error: TypeError, message: /manifold "h-filter": filter must be a function.*42/ },
  { title: "a negative stopTimeout", call: (e) => e.install("h-st-neg", { inputs: [], start: () => valueWorker(0), stopTimeout: -1 }), error: TypeError, message: /manifold "h-st-neg": stopTimeout.*-1/ },
  { title: "a NaN stopTimeout", call: (e) => e.install("h-st-nan", { inputs: [], start: () => valueWorker(0), stopTimeout: Number.NaN }), error: TypeError, message: /manifold "h-st-nan": stopTimeout.*NaN/ },
  { title: "an infinite stopTimeout", call: (e) => e.install("h-st-inf", { inputs: [], start: () => valueWorker(0), stopTimeout: Number.POSITIVE_INFINITY }), error: TypeError, message: /manifold "h-st-inf": stopTimeout.*Infinity/ },
  { title: "a string stopTimeout", call: (e) => e.install("h-st-str", any({ inputs: [], start: () => valueWorker(0), stopTimeout: "5" })), error: TypeError, message: /manifold "h-st-str": stopTimeout.*"5"/ },
  // Graph-level refusals.
  {
    title: "a name already installed",
    call: (e) => {
      e.install("h-taken", valueManifold(0));
      e.install("h-taken", valueManifold(0));
    },
    error: AlreadyInstalledError,
    message: /"h-taken" is already installed/,
    check: (error) => expect((error as AlreadyInstalledError).manifoldName).toBe("h-taken"),
  },
  {
    title: "inputs that close a cycle through installed manifolds",
    call: (e) => {
      e.install("h-cyc-a", { inputs: ["h-cyc-b"], start: () => valueWorker(0) });
      e.install("h-cyc-b", { inputs: ["h-cyc-c"], start: () => valueWorker(0) });
      e.install("h-cyc-c", { inputs: ["h-cyc-a"], start: () => valueWorker(0) });
    },
    error: CycleError,
    message: /manifold "h-cyc-c".*"h-cyc-c" -> "h-cyc-a" -> "h-cyc-b" -> "h-cyc-c"/,
    check: (error) => expect((error as CycleError).cycle).toEqual(["h-cyc-c", "h-cyc-a", "h-cyc-b", "h-cyc-c"]),
  },
  { title: "installAll(null)", call: (e) => e.installAll(any(null)), error: TypeError, message: /installAll\(manifolds\).*null/ },
  {
    title: "installAll with one malformed manifold",
    call: (e) => e.installAll({ "h-all-ok": valueManifold(0), "h-all-bad": any({ inputs: [], start: 1 }) }),
    error: TypeError,
    message: /manifold "h-all-bad": start must be a function/,
    check: (_error, e) => expect(hasEntry(e, "h-all-ok")).toBe(false),
  },
  {
    title: "installAll with a cycle",
    call: (e) => e.installAll({ "h-all-x": { inputs: ["h-all-y"], start: () => valueWorker(0) }, "h-all-y": { inputs: ["h-all-x"], start: () => valueWorker(0) } }),
    error: CycleError,
    message: /"h-all-x".*"h-all-y"|"h-all-y".*"h-all-x"/,
    check: (_error, e) => expect(hasEntry(e, "h-all-x")).toBe(false),
  },
  // uninstall rejects rather than throws.
  { title: "uninstall with a number", call: (e) => e.uninstall(any(42)), error: TypeError, message: /uninstall\(name\).*number 42/ },
  { title: "uninstall with an empty name", call: (e) => e.uninstall(""), error: TypeError, message: /uninstall\(name\).*""/ },
  { title: "uninstall with an object", call: (e) => e.uninstall(any({ nome: "x" })), error: TypeError, message: /uninstall\(name\)/ },
  // The start context.
  { title: "getResource with a number", call: (e) => throwInsideStart(e, "h-gr-num", ["x"], (c) => c.getResource(any(42))), error: TypeError, message: /manifold "h-gr-num": getResource\(input\).*number 42/ },
  { title: "hasResource with null", call: (e) => throwInsideStart(e, "h-hr-null", ["x"], (c) => c.hasResource(any(null))), error: TypeError, message: /manifold "h-hr-null": hasResource\(input\).*null/ },
  { title: "getResource of an undeclared input", call: (e) => throwInsideStart(e, "h-gr-undecl", ["x"], (c) => c.getResource("y")), error: MissingError, message: /manifold "h-gr-undecl" asked for "y", which is not in its inputs/ },
  { title: "getResource after the start settled", call: (e) => useAfterStart(e, "h-gr-late", (c) => c.getResource("x")), error: Error, message: /manifold "h-gr-late": getResource\("x"\).*expired/ },
  { title: "hasResource after the start settled", call: (e) => useAfterStart(e, "h-hr-late", (c) => c.hasResource("x")), error: Error, message: /manifold "h-hr-late": hasResource\("x"\).*expired/ },
  // Free functions.
  { title: "resource('')", call: () => resource(""), error: TypeError, message: /resource\(name\): name must be a non-empty string/ },
  { title: "resource(42)", call: () => resource(any(42)), error: TypeError, message: /resource\(name\).*42/ },
  { title: "validate with a cycle", call: () => validate({ p: { inputs: ["q"], start: () => valueWorker(0) }, q: { inputs: ["p"], start: () => valueWorker(0) } }), error: CycleError, message: /"p".*"q"|"q".*"p"/ },
  { title: "validate with a malformed manifold", call: () => validate({ v: any({ inputs: [] }) }), error: TypeError, message: /manifold "v": start must be a function/ },
  { title: "selfManifold of a non-engine", call: () => selfManifold(any({ install() {} })), error: TypeError, message: /selfManifold\(engine\): engine must be an Engine/ },
  { title: "createWorker of a non-function", call: () => createWorker(any("run")), error: TypeError, message: /createWorker\(run\): run must be a function/ },
  // Size.
  {
    title: "a 10,000-character name with a duplicate input",
    call: (e) => e.install(LONG, { inputs: ["a", "a"], start: () => valueWorker(0) }),
    error: TypeError,
    message: new RegExp(`manifold ${LONG_PREFIX}\\.\\.\\.": inputs\\[1\\] repeats "a"`),
    // Messages quote long names shortened, so that logs stay readable.
    check: (error) => expect(error.message.length).toBeLessThan(400),
  },
];

describe("malformed calls are refused with a precise error, and the same engine keeps working", () => {
  let engine: Engine;
  beforeAll(() => {
    ({ engine } = makeEngine());
  });
  afterAll(async () => {
    engine.kill();
    await engine.wait();
  });

  it("has at least 30 rows", () => {
    expect(rows.length).toBeGreaterThanOrEqual(30);
  });

  it.each(rows.map((row) => [row.title, row] as const))("%s", async (_title, { call, error: errorClass, message, check }) => {
    const error = await failureOf(() => call(engine));
    expect(error).toBeInstanceOf(errorClass);
    expect(error.message).toMatch(message);
    check?.(error, engine);
    await expectStillWorking(engine);
  });

  it("installed nothing for any refused call", () => {
    const names = Object.keys(engine.report().manifolds).filter((name) => !name.startsWith("probe-"));
    // Only the manifolds rows installed on purpose (set-up halves, start-context hosts) are there.
    expect(names.sort()).toEqual(
      [
        "h-taken",
        "h-cyc-a",
        "h-cyc-b",
        "h-gr-num",
        "h-hr-null",
        "h-gr-undecl",
        "h-gr-late",
        "h-hr-late",
      ].sort(),
    );
  });
});

// ------------------------------------------------------------------ calls on a stopped engine

describe("a stopped engine refuses changes", () => {
  it.each([
    ["install", (e: Engine) => e.install("late", valueManifold(0)), /cannot install manifold "late": the engine is stopping or stopped/],
    ["installAll", (e: Engine) => e.installAll({ late: valueManifold(0) }), /cannot install manifold "late": the engine is stopping or stopped/],
    ["uninstall of an installed name", (e: Engine) => e.uninstall("early"), /cannot uninstall manifold "early": the engine is stopping or stopped/],
    ["uninstall of an unknown name", (e: Engine) => e.uninstall("ghost"), /cannot uninstall manifold "ghost"/],
  ] as const)("%s throws or rejects EngineStoppedError, while stopping and once stopped", async (_label, call, message) => {
    const { engine } = makeEngine();
    const slow = new TestWorker("early", { stopOnKill: false });
    engine.install("early", { inputs: [], start: () => slow });
    await settle();
    engine.kill();
    expect(engine.report().state).toBe("stopping");
    const whileStopping = await failureOf(() => call(engine));
    expect(whileStopping).toBeInstanceOf(EngineStoppedError);
    expect(whileStopping.message).toMatch(message);
    slow.complete();
    await engine.wait();
    const onceStopped = await failureOf(() => call(engine));
    expect(onceStopped).toBeInstanceOf(EngineStoppedError);
    expect(onceStopped.message).toMatch(message);
    // Nothing changed: the report still lists what was installed.
    expect(Object.keys(engine.report().manifolds)).toEqual(["early"]);
  });

  it("kill() stays harmless after the engine stopped", async () => {
    const { engine } = makeEngine();
    engine.kill();
    await engine.wait();
    expect(() => engine.kill()).not.toThrow();
    await expect(engine.wait()).resolves.toBeUndefined();
  });
});

// ------------------------------------------------------------------ bad workers and failing user code

type RecordedRow = {
  title: string;
  manifold: Manifold<Worker, unknown>;
  /** Installed before the row's manifold (as its inputs). */
  inputs?: Manifolds;
  /** What the report's `error` of manifold "bad" must say. */
  error: RegExp;
};

const revokedProxy = (): object => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
};

const recordedRows: RecordedRow[] = [
  { title: "start returns null", manifold: { inputs: [], start: () => any(null) }, error: /manifold "bad": start returned null; it must return a Worker/ },
  { title: "start returns undefined", manifold: { inputs: [], start: () => any(undefined) }, error: /manifold "bad": start returned undefined/ },
  { title: "start returns a number", manifold: { inputs: [], start: () => any(7) }, error: /manifold "bad": start returned number/ },
  { title: "start returns a plain object", manifold: { inputs: [], start: () => any({ port: 1 }) }, error: /manifold "bad": start returned an object whose kill is not a function/ },
  { title: "start returns a promise of nothing", manifold: { inputs: [], start: async () => any(undefined) }, error: /manifold "bad": start returned undefined/ },
  { title: "start returns a worker whose wait is not a function", manifold: { inputs: [], start: () => any({ kill() {}, wait: 5 }) }, error: /manifold "bad": start returned an object whose wait is not a function/ },
  { title: "start returns a worker without kill", manifold: { inputs: [], start: () => any({ wait: () => Promise.resolve() }) }, error: /manifold "bad": start returned an object whose kill is not a function/ },
  { title: "start returns a worker whose wait returns a non-promise", manifold: { inputs: [], start: () => any({ kill() {}, wait: () => 42 }) }, error: /manifold "bad": worker\.wait\(\) returned number 42; it must return a promise/ },
  {
    title: "start returns a worker whose wait getter throws",
    manifold: {
      inputs: [],
      start: () =>
        any({
          kill() {},
          get wait(): never {
            throw new Error("wait getter exploded");
          },
        }),
    },
    error: /"bad".*wait getter exploded|wait getter exploded.*"bad"/,
  },
  {
    title: "an asynchronous start resolves to a worker whose kill getter throws",
    manifold: {
      inputs: [],
      start: async () =>
        any({
          get kill(): never {
            throw new Error("kill getter exploded");
          },
          wait: () => new Promise(() => undefined),
        }),
    },
    error: /"bad".*kill getter exploded|kill getter exploded.*"bad"/,
  },
  { title: "start returns a revoked proxy", manifold: { inputs: [], start: () => any(revokedProxy()) }, error: /"bad".*(revoked|proxy)/i },
  { title: "start throws a revoked proxy", manifold: { inputs: [], start: () => { throw revokedProxy(); } }, error: /"bad"/ },
  { title: "start throws an Error", manifold: { inputs: [], start: () => { throw new Error("no disk"); } }, error: /^no disk$/ },
  { title: "start throws a string", manifold: { inputs: [], start: () => { throw "no disk"; } }, error: /the start function of manifold "bad" threw a non-Error value: "no disk"/ },
  { title: "start rejects with an object", manifold: { inputs: [], start: () => Promise.reject(any({ errno: 28 })) }, error: /manifold "bad".*"errno":28/ },
  { title: "start throws a cyclic object", manifold: { inputs: [], start: () => { const o: Record<string, unknown> = {}; o.self = o; throw o; } }, error: /manifold "bad" threw a non-Error value: an object/ },
  {
    title: "an input's output throws",
    inputs: { source: { inputs: [], start: () => valueWorker(0), output: () => { throw new Error("output exploded"); } } },
    manifold: { inputs: ["source"], start: (c) => (c.getResource("source"), valueWorker(0)) },
    error: /^output exploded$/,
  },
  { title: "the filter throws", manifold: { inputs: [], start: () => { throw new Error("original"); }, filter: () => { throw new Error("filter exploded"); } }, error: /^filter exploded$/ },
  { title: "the filter returns a string", manifold: { inputs: [], start: () => { throw new Error("original"); }, filter: () => "converted" }, error: /filter of manifold "bad".*"converted"/ },
];

describe("broken workers and failing user code are recorded as the manifold's error; the engine keeps running", () => {
  it.each(recordedRows.map((row) => [row.title, row] as const))("%s", async (_title, { manifold, inputs, error }) => {
    const { engine } = makeEngine({ errorDelay: 1000 });
    if (inputs !== undefined) engine.installAll(inputs);
    expect(() => engine.install("bad", manifold)).not.toThrow();
    await settle();
    expect(engine.report().state).toBe("started");
    const bad = entry(engine, "bad");
    expect(bad.error).toMatch(error);
    // Retried after errorDelay like any failure, not dropped or wedged.
    expect(bad.state).toBe("starting");
    await expectStillWorking(engine);
    expect(() => JSON.stringify(engine.report())).not.toThrow();
    engine.kill();
    await expect(engine.wait()).resolves.toBeUndefined();
  });
});

/** The engine of the running report test, for a report() that calls back into it. */
let reentrant: Engine | undefined;

describe("a worker's report is made safe", () => {
  const reporting = (report: () => unknown): Manifold => ({
    inputs: [],
    start: () => Object.assign(valueWorker(0), { report }),
  });

  const reportRows: [string, () => unknown, (report: unknown) => void][] = [
    ["throws", () => { throw new Error("report exploded"); }, (r: unknown) => expect(r).toEqual({ error: "report exploded" })],
    ["throws a string", () => { throw "report string"; }, (r: unknown) => expect(JSON.stringify(r)).toContain("report string")],
    ["returns a number", () => 42, (r: unknown) => expect((r as { error: string }).error).toMatch(/non-object/)],
    ["returns nothing", () => undefined, (r: unknown) => expect((r as { error: string }).error).toMatch(/nothing/)],
    [
      "returns a cyclic object",
      () => {
        const o: Record<string, unknown> = { ok: 1 };
        o.me = o;
        o.list = [o];
        return o;
      },
      (r: unknown) => expect(r).toEqual({ ok: 1, me: "[Circular]", list: ["[Circular]"] }),
    ],
    [
      "returns functions, symbols, bigints, NaN and errors",
      () => ({ f: () => 1, s: Symbol("s"), b: 10n, n: Number.NaN, e: new Error("inner"), d: new Date(0) }),
      (r: unknown) => expect(r).toEqual({ b: "10", n: "NaN", e: "inner", d: "1970-01-01T00:00:00.000Z" }),
    ],
    [
      "returns an object with a throwing getter",
      () => ({
        ok: 1,
        get bad(): never {
          throw new Error("getter exploded");
        },
      }),
      // The readable part is kept; the unreadable property says why.
      (r: unknown) => {
        expect(r).toHaveProperty("ok", 1);
        expect(JSON.stringify(r)).toContain("getter exploded");
      },
    ],
    [
      "returns a very deep object",
      () => {
        let deep: Record<string, unknown> = {};
        const root = deep;
        for (let i = 0; i < 1000; i++) {
          const next: Record<string, unknown> = {};
          deep.next = next;
          deep = next;
        }
        return root;
      },
      (r: unknown) => expect(JSON.stringify(r)).toContain("Too deep"),
    ],
    [
      "calls engine.report() itself",
      () => ({ again: reentrant?.report() }),
      (r: unknown) => expect(JSON.stringify(r)).toContain("again"),
    ],
  ];
  it.each(reportRows)("when report() %s, the engine report stays JSON-serialisable", async (_label, report, check) => {
    const { engine } = makeEngine();
    reentrant = engine;
    engine.install("w", reporting(report));
    await settle();
    let json = "";
    expect(() => (json = JSON.stringify(engine.report()))).not.toThrow();
    const parsed = JSON.parse(json) as { manifolds: Record<string, ManifoldReport> };
    check(parsed.manifolds.w?.report);
    await expectStillWorking(engine);
    engine.kill();
    await engine.wait();
    reentrant = undefined;
  });
});

// ------------------------------------------------------------------ configuration of the wrong type

describe("configuration of the wrong type is a TypeError naming the field", () => {
  it.each([
    ["errorDelay", "100"],
    ["bounceDelay", null],
    ["backoffResetTime", Number.NaN],
    ["maxDelay", -5],
    ["stopTimeout", -1],
    ["backoffFactor", true],
    ["backoffFactor", 0.5],
    ["jitter", "0.1"],
    ["jitter", 1.5],
    ["isFatal", "always"],
    ["worstError", {}],
    ["filter", 1],
    ["random", 0.3],
    ["clock", {}],
    ["clock", { now: Date.now, setTimeout }],
    ["logger", { debug() {} }],
    ["logger", "console"],
    ["metrics", { record() {} }],
  ] as const)("%s = %s", (field, value) => {
    const error = (() => {
      try {
        new Engine(any({ [field]: value }));
      } catch (thrown) {
        return thrown as Error;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(TypeError);
    expect(error?.message).toMatch(new RegExp(`\\b${field}\\b`));
  });
});

// ------------------------------------------------------------------ fields read once

describe("a manifold's stopTimeout is read once, by the install's check", () => {
  it("a getter that answers a valid value first and NaN afterwards: the stuck-worker deadline uses the value checked", async () => {
    const { engine, clock } = makeEngine({ stopTimeout: 60_000 });
    const worker = new TestWorker("g", { stopOnKill: false });
    const manifold: Manifold = { inputs: [], start: () => worker };
    const reads = fieldThatChanges(manifold, "stopTimeout", 10, Number.NaN);
    engine.install("g", manifold);
    await settle();
    expect(entry(engine, "g").state).toBe("started");
    engine.kill();
    const stopped = engine.wait().then(
      () => undefined,
      (error: unknown) => error,
    );
    await settle();
    await clock.advance(9);
    expect(entry(engine, "g").stuck).toBeUndefined();
    await clock.advance(1);
    expect(entry(engine, "g").stuck).toBe(true);
    expect(await stopped).toMatchObject({ name: "ShutdownTimeoutError", message: expect.stringMatching(/"g" did not stop within stopTimeout/) });
    expect(reads()).toBe(1);
    worker.complete();
  });
});

// ------------------------------------------------------------------ awkward names

describe("names that are Object.prototype keys", () => {
  const names = ["__proto__", "constructor", "hasOwnProperty", "toString", "valueOf", "isPrototypeOf"];

  afterEach(() => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty("state");
  });

  it("install, start, appear as own report keys, and serve as inputs", async () => {
    const { engine } = makeEngine();
    for (const name of names) {
      engine.install(name, { inputs: [], start: () => valueWorker({ polluted: true, name }), output: (w) => w.value });
    }
    const seen: unknown[] = [];
    engine.install("user", {
      inputs: names,
      start: (context) => {
        for (const name of names) seen.push((context.getResource(name) as { name: string }).name);
        return valueWorker(0);
      },
    });
    await settle();
    expect(seen).toEqual(names);
    const { manifolds } = engine.report();
    for (const name of names) {
      expect(Object.hasOwn(manifolds, name), name).toBe(true);
      expect((Object.getOwnPropertyDescriptor(manifolds, name)?.value as ManifoldReport).state).toBe("started");
    }
    expect(Object.getPrototypeOf(manifolds)).toBe(Object.prototype);
    expect(Object.keys(JSON.parse(JSON.stringify(engine.report())).manifolds as object).sort()).toEqual([...names, "user"].sort());
    await engine.uninstall("__proto__");
    expect(Object.hasOwn(engine.report().manifolds, "__proto__")).toBe(false);
    engine.kill();
    await engine.wait();
  });

  it("installAll with an own __proto__ key installs it as a manifold", async () => {
    const { engine } = makeEngine();
    const group: Manifolds = {};
    // Own keys, as JSON.parse or a computed key would make them.
    Object.defineProperty(group, "__proto__", { value: valueManifold(0), enumerable: true });
    Object.defineProperty(group, "constructor", { value: valueManifold(0), enumerable: true });
    engine.installAll(group);
    await settle();
    expect(Object.keys(engine.report().manifolds).sort()).toEqual(["__proto__", "constructor"]);
    engine.kill();
    await engine.wait();
  });

  it("a worker report with a __proto__ key pollutes nothing", async () => {
    const { engine } = makeEngine();
    engine.install("w", {
      inputs: [],
      start: () => Object.assign(valueWorker(0), { report: () => JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as Record<string, unknown> }),
    });
    await settle();
    const report = entry(engine, "w").report as Record<string, unknown>;
    expect(Object.hasOwn(report, "__proto__")).toBe(true);
    expect(report.ok).toBe(1);
    expect(Object.getPrototypeOf(report)).toBe(Object.prototype);
    engine.kill();
    await engine.wait();
  });
});

describe("size", () => {
  it("a 10,000-character name installs, starts and is reported in full", async () => {
    const { engine } = makeEngine();
    engine.install(LONG, { inputs: [], start: () => valueWorker("long"), output: (w) => w.value });
    let got: unknown;
    engine.install("user", {
      inputs: [LONG],
      start: (context) => {
        got = context.getResource(LONG);
        return valueWorker(0);
      },
    });
    await settle();
    expect(entry(engine, LONG).state).toBe("started");
    expect(got).toBe("long");
    expect(entry(engine, "user").inputs).toEqual([LONG]);
    // Errors about it quote a shortened name.
    const error = await failureOf(() => engine.install(LONG, valueManifold(0)));
    expect(error).toBeInstanceOf(AlreadyInstalledError);
    expect((error as AlreadyInstalledError).manifoldName).toBe(LONG);
    engine.kill();
    await engine.wait();
  });

  it("a manifold with 10,000 inputs installs, starts once after all of them, and gets each", async () => {
    const { engine } = makeEngine();
    const names = Array.from({ length: 10_000 }, (_, i) => `input-${i}`);
    const group: Manifolds = {};
    for (const [i, name] of names.entries()) group[name] = { inputs: [], start: () => valueWorker(i), output: (w: { value: number }) => w.value };
    let starts = 0;
    let sum = 0;
    let available = 0;
    group.wide = {
      inputs: names,
      start: (context: StartContext) => {
        starts++;
        for (const name of names) {
          if (context.hasResource(name)) available++;
          sum += context.getResource(name) as number;
        }
        return valueWorker(0);
      },
    };
    engine.installAll(group);
    await settle();
    expect(starts).toBe(1);
    expect(available).toBe(10_000);
    expect(sum).toBe((9_999 * 10_000) / 2);
    const wide = entry(engine, "wide");
    expect(wide.state).toBe("started");
    expect(wide.inputs).toHaveLength(10_000);
    expect(wide.resourceLog).toHaveLength(10_000);
    engine.kill();
    await engine.wait();
  });
});

// ------------------------------------------------------------------ rule 10, one kind of user code at a time

describe("user code never crashes the engine (rule 10)", () => {
  it("a start function that throws or rejects", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 100 });
    engine.install("sync", {
      inputs: [],
      start: () => {
        throw new Error("sync");
      },
    });
    engine.install("async", { inputs: [], start: async () => Promise.reject(new Error("async")) });
    await settle();
    expect(entry(engine, "sync").error).toBe("sync");
    expect(entry(engine, "async").error).toBe("async");
    expect(clock.pending).toHaveLength(2);
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("an output function that throws", async () => {
    const { engine } = makeEngine();
    engine.install("a", {
      inputs: [],
      start: () => valueWorker(0),
      output: () => {
        throw new Error("output");
      },
    });
    engine.install("b", {
      inputs: ["a"],
      start: (context) => {
        context.getResource("a");
        return valueWorker(0);
      },
    });
    await settle();
    expect(entry(engine, "b").error).toBe("output");
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("a filter that throws", async () => {
    const { engine } = makeEngine();
    const worker = new TestWorker("a");
    engine.install("a", {
      inputs: [],
      start: () => worker,
      filter: () => {
        throw new Error("filter");
      },
    });
    await settle();
    worker.fail(new Error("worker"));
    await settle();
    expect(entry(engine, "a").error).toBe("filter");
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("a worker whose report() throws", async () => {
    const { engine } = makeEngine();
    engine.install("a", {
      inputs: [],
      start: () =>
        Object.assign(valueWorker(0), {
          report: (): Record<string, unknown> => {
            throw new Error("report");
          },
        }),
    });
    await settle();
    let report: EngineReport | undefined;
    expect(() => (report = engine.report())).not.toThrow();
    expect(report?.manifolds.a?.report).toEqual({ error: "report" });
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("a worker whose kill() throws", async () => {
    const { engine } = makeEngine();
    const worker = new TestWorker("a");
    engine.install("a", {
      inputs: [],
      start: () => ({
        kill: () => {
          worker.kill();
          throw new Error("kill");
        },
        wait: () => worker.wait(),
      }),
    });
    await settle();
    await expect(engine.uninstall("a")).resolves.toBeUndefined();
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("a worker whose wait() throws synchronously", async () => {
    const { engine } = makeEngine({ errorDelay: 100 });
    engine.install("a", {
      inputs: [],
      start: () => ({
        kill: () => undefined,
        wait: () => {
          throw new Error("wait");
        },
      }),
    });
    await settle();
    expect(entry(engine, "a").error).toBe("wait");
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("an isFatal that throws counts the error as not fatal", async () => {
    const { engine, clock } = makeEngine({
      errorDelay: 100,
      isFatal: () => {
        throw new Error("isFatal");
      },
    });
    engine.install("a", {
      inputs: [],
      start: () => {
        throw new Error("start");
      },
    });
    await settle();
    expect(engine.report().state).toBe("started");
    expect(clock.delays).toEqual([100]);
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("a worstError that throws keeps the previous worst error", async () => {
    const first = new Error("first fatal");
    const { engine } = makeEngine({
      isFatal: () => true,
      worstError: () => {
        throw new Error("worstError");
      },
    });
    const slow = new TestWorker("slow", { stopOnKill: false });
    engine.install("slow", { inputs: [], start: () => slow });
    engine.install("fatal", {
      inputs: [],
      start: () => {
        throw first;
      },
    });
    await settle();
    slow.fail(new Error("second fatal"));
    await expect(engine.wait()).rejects.toBe(first);
    expect(engine.report().error).toBe("first fatal");
  });

  it("a config filter that throws makes wait() reject with what it threw, not an unhandled rejection", async () => {
    const filterError = new Error("config filter");
    const { engine } = makeEngine({
      isFatal: () => true,
      filter: () => {
        throw filterError;
      },
    });
    engine.install("a", {
      inputs: [],
      start: () => {
        throw new Error("fatal");
      },
    });
    await expect(engine.wait()).rejects.toBe(filterError);
  });

  it("metrics.recordStart that throws", async () => {
    const { engine } = makeEngine({
      metrics: {
        recordStart: () => {
          throw new Error("metrics");
        },
      },
    });
    await expectStillWorking(engine);
    await stop(engine);
  });

  it("a logger whose every method throws", async () => {
    const boom = (): void => {
      throw new Error("logger");
    };
    const { engine, clock } = makeEngine({
      errorDelay: 100,
      isFatal: (error) => error instanceof Error && error.message === "fatal",
      logger: { debug: boom, info: boom, warn: boom, error: boom },
    });
    engine.install("failing", {
      inputs: [],
      start: () => {
        throw new Error("ordinary");
      },
    });
    await settle();
    await clock.advance(100);
    await expectStillWorking(engine);
    engine.install("fatal", {
      inputs: [],
      start: () => {
        throw new Error("fatal");
      },
    });
    await expect(engine.wait()).rejects.toThrow("fatal");
  });
});
