/**
 * The pictures: formatReport (text tree), toMermaid, toDot. Snapshots of a
 * fixed report and of a real engine on a fake clock; hostile names checked
 * by parsing the DOT output with a real DOT parser (dotparser) and the
 * Mermaid output with a structural validator (there is no Mermaid parser
 * that runs without a DOM); a property test over random graphs of hostile
 * names; and malformed data that must render without throwing.
 */
import parseDot from "dotparser";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Engine, formatReport, toDot, toMermaid, valueWorker, type EngineReport, type ManifoldReport } from "../src/index.js";
import { failOnUnhandledRejections, makeEngine, settle, stop, TestWorker } from "./fixtures.js";

failOnUnhandledRejections();

// ------------------------------------------------------------------ builders

function entry(state: ManifoldReport["state"], inputs: string[], extra: Partial<ManifoldReport> = {}): ManifoldReport {
  const startCount = extra.startCount ?? (state === "started" ? 1 : 0);
  return {
    state,
    since: "2026-01-01T00:00:01.000Z",
    inputs,
    startCount,
    restartCount: Math.max(0, startCount - 1),
    failureCount: 0,
    lastFailures: [],
    ...extra,
  };
}

function report(manifolds: Record<string, ManifoldReport>, extra: Partial<EngineReport> = {}): EngineReport {
  const counts = { starting: 0, started: 0, stopping: 0, stopped: 0 };
  for (const value of Object.values(manifolds)) counts[value.state]++;
  return {
    state: "started",
    manifolds,
    startedAt: "2026-01-01T00:00:00.000Z",
    totals: { starts: 7, failures: 2, bounces: 3 },
    counts,
    ...extra,
  };
}

/** The demo agent's graph, mid-restart: the connection failed and waits to retry. */
const demo = report({
  config: entry("started", []),
  "api-connection": entry("starting", ["config"], {
    startCount: 2,
    failureCount: 2,
    error: "dial api.example.net:17070: connection refused",
    lastFailures: [{ error: "dial api.example.net:17070: connection refused", time: "2026-01-01T00:00:05.000Z" }],
  }),
  uploader: entry("started", ["config", "api-connection"], { startCount: 2, uptimeMs: 3200, report: { upload: 3, via: 2 } }),
  "status-reporter": entry("stopped", ["config", "api-connection"], { startCount: 2 }),
  "log-shipper": entry("stopping", ["config", "api-connection", "disk"], { startCount: 2, stuck: true }),
});

// ------------------------------------------------------------------ validators

/** Names as the pictures show them: as is, or JSON-quoted when they have control characters or outer spaces. */
function shown(name: string): string {
  // eslint-disable-next-line no-control-regex
  const unsafe = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
  if (!unsafe.test(name) && name.trim() === name) return name;
  return JSON.stringify(name).replace(unsafe, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const MERMAID_RESERVED = new Set(["end", "graph", "subgraph", "flowchart", "style", "class", "classDef", "click", "direction", "linkStyle"]);

/**
 * Checks Mermaid flowchart structure line by line and returns the labels by
 * node id, decoded. Every line must be one of the statements toMermaid
 * writes; labels may hold no character Mermaid or HTML would read.
 */
function validateMermaid(text: string): Map<string, string[]> {
  const lines = text.split("\n");
  expect(lines[0]).toBe("flowchart LR");
  const labels = new Map<string, string[]>();
  const classes = new Set<string>();
  const edges: [string, string][] = [];
  let depth = 0;
  const label = (raw: string): string[] => {
    const parts = raw.split("<br/>");
    for (const part of parts) {
      const bare = part.replace(/#\d+;/g, "");
      expect(bare, `label part ${JSON.stringify(part)}`).not.toMatch(/["<>&#;[\]{}|\\`\n]/);
    }
    return parts.map((part) => part.replace(/#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code))));
  };
  const id = (value: string): string => {
    expect(value).toMatch(/^[A-Za-z][A-Za-z0-9_]*$/);
    expect(MERMAID_RESERVED.has(value), `reserved id ${value}`).toBe(false);
    return value;
  };
  for (const line of lines.slice(1)) {
    const statement = line.trim();
    let match: RegExpExecArray | null;
    if ((match = /^classDef (\w+) [\w:#,.\- ]+$/.exec(statement))) classes.add(match[1] as string);
    else if ((match = /^(\w+)\["([^"]*)"\](?::::(\w+))?$/.exec(statement))) {
      expect(labels.has(match[1] as string), `duplicate node ${match[1]}`).toBe(false);
      labels.set(id(match[1] as string), label(match[2] as string));
      if (match[3] !== undefined) expect(classes.has(match[3]), `class ${match[3]} defined`).toBe(true);
    } else if ((match = /^(\w+) --> (\w+)$/.exec(statement))) edges.push([id(match[1] as string), id(match[2] as string)]);
    else if ((match = /^subgraph (\w+)\["([^"]*)"\]$/.exec(statement))) {
      id(match[1] as string);
      label(match[2] as string);
      depth++;
    } else if (statement === "end") {
      depth--;
      expect(depth).toBeGreaterThanOrEqual(0);
    } else if (statement === "direction LR") expect(depth).toBeGreaterThan(0);
    else throw new Error(`not a statement toMermaid writes: ${JSON.stringify(line)}`);
  }
  expect(depth, "every subgraph ends").toBe(0);
  for (const [from, to] of edges) {
    expect(labels.has(from), `edge from undefined node ${from}`).toBe(true);
    expect(labels.has(to), `edge to undefined node ${to}`).toBe(true);
  }
  return labels;
}

type DotStatement = { type: string; id?: string | number; node_id?: { id: string | number }; attr_list?: { id: string | number; eq: unknown }[]; children?: DotStatement[]; edge_list?: { id: string | number }[] };

/** Parses DOT with dotparser and returns each node's label lines, decoded, by id; edges as id pairs. */
function parseDotGraph(text: string): { labels: Map<string, string[]>; edges: [string, string][] } {
  const graphs = parseDot(text) as unknown as DotStatement[];
  expect(graphs).toHaveLength(1);
  const labels = new Map<string, string[]>();
  const edges: [string, string][] = [];
  const walk = (statements: DotStatement[]): void => {
    for (const statement of statements) {
      if (statement.type === "node_stmt") {
        const raw = statement.attr_list?.find((attribute) => attribute.id === "label")?.eq;
        expect(typeof raw).toBe("string");
        // dotparser has turned \" into "; the other escapes are ours to read: \\ is a backslash, \n a line break.
        const decoded = (raw as string).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
        labels.set(String(statement.node_id?.id), decoded.split("\n"));
      } else if (statement.type === "edge_stmt") {
        const [from, to] = statement.edge_list ?? [];
        edges.push([String(from?.id), String(to?.id)]);
      } else if (statement.type === "subgraph") {
        walk(statement.children ?? []);
      }
    }
  };
  walk((graphs[0] as DotStatement).children ?? []);
  return { labels, edges };
}

const HOSTILE = [
  "with space",
  'double"quote',
  "single'quote",
  "dash-ed",
  "-",
  "--> arrow",
  "<script>alert(1)</script>",
  "&amp; entity",
  "#35; mermaid entity",
  "back\\slash",
  '\\"escaped quote',
  "\\N graphviz escape",
  "semi;colon",
  "{braces} [brackets] (parens) |pipe|",
  "`backtick`",
  "end",
  "subgraph",
  "graph",
  "node",
  "digraph",
  "%% comment",
  "ünïcødé ✓ 日本語 🚀",
  "line\nbreak",
  "tab\tand\rreturn",
  "\u202eevil bidi",
  " outer spaces ",
  "__proto__",
  "constructor",
];

/** A chain of the hostile names: each depends on the one before, plus an input that is not installed. */
function hostileReport(): EngineReport {
  const manifolds: Record<string, ManifoldReport> = {};
  HOSTILE.forEach((name, i) => {
    const value = entry(i % 3 === 0 ? "started" : "starting", i === 0 ? ['missing "input" <b>'] : [HOSTILE[i - 1] as string], i % 4 === 1 ? { error: `failed: ${name}` } : {});
    Object.defineProperty(manifolds, name, { value, enumerable: true, writable: true, configurable: true });
  });
  return report(manifolds);
}

// ------------------------------------------------------------------ snapshots

describe("formatReport", () => {
  it("draws the tree: each manifold under the input it waits for last, its other inputs after also:", () => {
    expect(formatReport(demo)).toMatchInlineSnapshot(`
      "engine started · 5 manifolds (2 started, 1 starting, 1 stopped, 1 stopping) · starts 7, failures 2, bounces 3 · since 2026-01-01T00:00:00.000Z
      config                 started   starts 1
      └─ api-connection      starting  starts 2  restarts 1  failures 2  error: dial api.example.net:17070: connection refused
         ├─ uploader         started   starts 2  restarts 1  up 3.2s  also: config  report {"upload":3,"via":2}
         ├─ status-reporter  stopped   starts 2  restarts 1  also: config
         └─ log-shipper      stopping  starts 2  restarts 1  stuck  also: config, disk (not installed)"
    `);
  });

  it("renders a real engine's report, nested engines indented under the manifold that runs them", async () => {
    const { engine, clock } = makeEngine({ errorDelay: 1000 });
    const child = new Engine({ clock, jitter: 0, bounceDelay: 0 });
    child.install("firewaller", { inputs: [], start: () => valueWorker(0) });
    child.install("undertaker", { inputs: ["firewaller"], start: () => Promise.reject(new Error("model gone")) });
    engine.install("config", { inputs: [], start: () => valueWorker({}) });
    engine.install("model-workers", { inputs: ["config"], start: () => child });
    const flaky = new TestWorker("flaky");
    engine.install("flaky", { inputs: ["config"], start: () => flaky });
    await settle();
    await clock.advance(2500);
    flaky.fail(new Error("connection reset\nby peer"));
    await settle();
    expect(formatReport(engine.report())).toMatchInlineSnapshot(`
      "engine started · 3 manifolds (2 started, 1 starting) · starts 3, failures 1, bounces 0 · since 2026-01-01T00:00:00.000Z
      config            started   starts 1  up 2.5s
      ├─ model-workers  started   starts 1  up 2.5s
      │  ╎ engine started · 2 manifolds (1 started, 1 starting) · starts 1, failures 1, bounces 0 · since 2026-01-01T00:00:00.000Z
      │  ╎ firewaller     started   starts 1  up 2.5s
      │  ╎ └─ undertaker  starting  starts 0  failures 1  error: model gone
      └─ flaky          starting  starts 1  failures 1  error: connection reset …"
    `);
    await stop(engine);
  });

  it("prints one line per manifold and engine whatever the names, escaping line breaks and control characters", () => {
    const text = formatReport(hostileReport());
    const lines = text.split("\n");
    expect(lines).toHaveLength(HOSTILE.length + 1);
    for (const name of HOSTILE) expect(text).toContain(shown(name));
    expect(text).toContain('"line\\nbreak"');
    expect(text).toContain('"\\u202eevil bidi"');
    expect(text).toContain('inputs: missing "input" <b> (not installed)');
  });

  it("keeps a 20,000-long chain readable: indentation stops growing, lines stay short", () => {
    const manifolds: Record<string, ManifoldReport> = {};
    for (let i = 0; i < 20_000; i++) manifolds[`m${i}`] = entry("started", i === 0 ? [] : [`m${i - 1}`]);
    const lines = formatReport(report(manifolds)).split("\n");
    expect(lines).toHaveLength(20_001);
    expect(Math.max(...lines.map((line) => line.length))).toBeLessThan(140);
    expect(lines[20_000]).toContain("m19999 (depth 19999)");
  });

  it("never throws on malformed data, and says what it could read", () => {
    const cyclic = { state: "started", manifolds: { a: { state: "started", inputs: ["b"] }, b: { state: "weird", inputs: ["a"] } } };
    let deep: Record<string, unknown> = { state: "started", manifolds: {} };
    for (let i = 0; i < 100; i++) deep = { state: "started", manifolds: { [`level${i}`]: { state: "started", inputs: [], report: deep } } };
    const bad: unknown[] = [
      null,
      undefined,
      42,
      "report",
      [],
      {},
      { manifolds: null },
      { manifolds: [] },
      { state: 7, manifolds: { a: null, b: 5, c: { inputs: "x", startCount: "1", error: 5 }, d: { inputs: [1, null, "a"] } } },
      cyclic,
      deep,
    ];
    for (const value of bad) {
      const data = value as EngineReport;
      expect(() => formatReport(data)).not.toThrow();
      expect(() => toMermaid(data)).not.toThrow();
      expect(() => toDot(data)).not.toThrow();
      expect(() => parseDot(toDot(data))).not.toThrow();
      validateMermaid(toMermaid(data));
    }
    expect(formatReport(null as unknown as EngineReport)).toBe("engine unknown · no manifolds");
    expect(formatReport(cyclic as unknown as EngineReport).split("\n")).toHaveLength(3);
    expect(formatReport(deep as unknown as EngineReport)).toContain("nested engines deeper than 12 levels are not shown");
  });
});

describe("toMermaid", () => {
  it("draws inputs pointing to dependents, coloured by state, failed ones marked", () => {
    expect(toMermaid(demo)).toMatchInlineSnapshot(`
      "flowchart LR
        classDef started fill:#d8f3dc,stroke:#2d6a4f,color:#212529
        classDef startingFailed fill:#fff3bf,stroke:#c92a2a,stroke-width:3px,color:#212529
        classDef stopping fill:#ffe8cc,stroke:#c2590a,color:#212529
        classDef stopped fill:#e9ecef,stroke:#6c757d,color:#212529
        classDef missing fill:#ffffff,stroke:#adb5bd,stroke-dasharray:4 3,color:#6c757d
        m0["config<br/>started · starts 1"]:::started
        m1["api-connection<br/>starting · starts 2 · failures 2<br/>✖ dial api.example.net:17070: connection refused"]:::startingFailed
        m2["uploader<br/>started · starts 2"]:::started
        m3["status-reporter<br/>stopped · starts 2"]:::stopped
        m4["log-shipper<br/>stopping · starts 2 · stuck"]:::stopping
        m0 --> m1
        m0 --> m2
        m1 --> m2
        m0 --> m3
        m1 --> m3
        m0 --> m4
        m1 --> m4
        x0["disk<br/>not installed"]:::missing
        x0 --> m4"
    `);
    validateMermaid(toMermaid(demo));
  });

  it("escapes hostile names so that each label reads back as the name", () => {
    const labels = validateMermaid(toMermaid(hostileReport()));
    HOSTILE.forEach((name, i) => expect(labels.get(`m${i}`)?.[0]).toBe(shown(name)));
    expect(labels.get("x0")?.[0]).toBe('missing "input" <b>');
  });

  it("draws a nested engine as a subgraph around the manifold that runs it", async () => {
    const { engine, clock } = makeEngine();
    const child = new Engine({ clock });
    child.install("inner a", { inputs: [], start: () => valueWorker(0) });
    child.install("inner-b", { inputs: ["inner a"], start: () => valueWorker(0) });
    engine.install("outer", { inputs: [], start: () => child });
    await settle();
    const text = toMermaid(engine.report());
    const labels = validateMermaid(text);
    expect(text).toContain('subgraph m0g["outer: engine started"]');
    expect(labels.get("m0_m0")?.[0]).toBe("inner a");
    expect(labels.get("m0_m1")?.[0]).toBe("inner-b");
    expect(text).toContain("m0_m0 --> m0_m1");
    await stop(engine);
  });
});

describe("toDot", () => {
  it("writes a digraph Graphviz reads, coloured by state, failed ones with a red border", () => {
    expect(toDot(demo)).toMatchInlineSnapshot(`
      "digraph manifolds {
        graph [rankdir=LR, compound=true, fontname="Helvetica", fontsize=12, labelloc=t, label="engine started · 5 manifolds (2 started, 1 starting, 1 stopped, 1 stopping) · starts 7, failures 2, bounces 3 · since 2026-01-01T00:00:00.000Z"];
        node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];
        edge [color="#495057", arrowsize=0.7];
        m0 [label="config\\nstarted · starts 1", fillcolor="#d8f3dc", color="#2d6a4f"];
        m1 [label="api-connection\\nstarting · starts 2 · failures 2\\n✖ dial api.example.net:17070: connection refused", fillcolor="#fff3bf", color="#c92a2a", penwidth=2.5];
        m2 [label="uploader\\nstarted · starts 2", fillcolor="#d8f3dc", color="#2d6a4f"];
        m3 [label="status-reporter\\nstopped · starts 2", fillcolor="#e9ecef", color="#6c757d"];
        m4 [label="log-shipper\\nstopping · starts 2 · stuck", fillcolor="#ffe8cc", color="#c2590a"];
        m0 -> m1;
        m0 -> m2;
        m1 -> m2;
        m0 -> m3;
        m1 -> m3;
        m0 -> m4;
        m1 -> m4;
        x0 [label="disk\\nnot installed", style="rounded,dashed", fillcolor="#ffffff", color="#adb5bd", fontcolor="#6c757d"];
        x0 -> m4;
      }"
    `);
  });

  it("parses with a DOT parser for hostile names, each label reading back as the name", () => {
    const { labels, edges } = parseDotGraph(toDot(hostileReport()));
    HOSTILE.forEach((name, i) => expect(labels.get(`m${i}`)?.[0]).toBe(shown(name)));
    expect(labels.get("x0")?.[0]).toBe('missing "input" <b>');
    expect(edges).toContainEqual(["m0", "m1"]);
    expect(edges).toContainEqual(["x0", "m0"]);
  });

  it("draws a nested engine as a cluster", async () => {
    const { engine, clock } = makeEngine();
    const child = new Engine({ clock });
    child.install('in"ner', { inputs: [], start: () => valueWorker(0) });
    engine.install("outer", { inputs: [], start: () => child });
    await settle();
    const text = toDot(engine.report());
    expect(text).toContain("subgraph cluster_m0 {");
    expect(parseDotGraph(text).labels.get("m0_m0")?.[0]).toBe('in"ner');
    await stop(engine);
  });
});

describe("all three pictures, over random graphs of hostile names", () => {
  const fragment = fc.constantFrom('"', "'", "<", ">", "</script>", "&", "#", ";", "-", "-->", " ", "\\", "\\n", "\n", "{", "}", "[", "]", "|", "`", "%%", "end", "ü", "🚀", "\u202e", "a", "b", "1");
  const name = fc.oneof(fc.array(fragment, { minLength: 1, maxLength: 6 }).map((parts) => parts.join("")), fc.string({ minLength: 1, maxLength: 8 }));
  const graph = fc.uniqueArray(name, { minLength: 1, maxLength: 12 }).chain((names) =>
    fc.tuple(
      fc.constant(names),
      fc.array(fc.subarray(names), { minLength: names.length, maxLength: names.length }),
      fc.array(fc.constantFrom<ManifoldReport["state"]>("starting", "started", "stopping", "stopped"), { minLength: names.length, maxLength: names.length }),
    ),
  );

  it("DOT parses, Mermaid validates, labels read back, and the text has one line per manifold", () => {
    fc.assert(
      fc.property(graph, fc.boolean(), ([names, inputs, states], failing) => {
        const manifolds: Record<string, ManifoldReport> = {};
        names.forEach((n, i) => {
          // Inputs only from earlier names: engines never hold a cycle.
          const value = entry(states[i] as ManifoldReport["state"], (inputs[i] as string[]).filter((input) => names.indexOf(input) < i), failing ? { error: `${n} failed` } : {});
          Object.defineProperty(manifolds, n, { value, enumerable: true, writable: true, configurable: true });
        });
        const data = report(manifolds);
        const { labels } = parseDotGraph(toDot(data));
        const mermaid = validateMermaid(toMermaid(data));
        // Node ids follow the report's key order (integer-like names come first in a JS object).
        Object.keys(manifolds).forEach((n, i) => {
          expect(labels.get(`m${i}`)?.[0]).toBe(shown(n));
          expect(mermaid.get(`m${i}`)?.[0]).toBe(shown(n));
        });
        expect(formatReport(data).split("\n")).toHaveLength(names.length + 1);
      }),
      { numRuns: 300 },
    );
  });
});
