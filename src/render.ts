/**
 * Pictures of an engine report: a text tree for terminals, Mermaid for
 * markdown, DOT for Graphviz. Pure functions over report data.
 *
 * Why they read the report defensively: the report may come from another
 * process (the introspection CLI renders JSON it fetched), from an older or
 * newer version of this package, or from a worker's own `report()` nested in
 * it. Every field is checked before use; a field that is missing or of the
 * wrong type is left out of the picture, never a crash.
 *
 * Why node ids are generated (`m0`, `m1_2`) and names only ever appear inside
 * labels: a manifold name can be any non-empty string (spaces, quotes, `-`,
 * `<script>`, unicode, line breaks). Generated ids need no escaping at all, so
 * the only escaping rules in play are those of a quoted label, one per format.
 */
import type { EngineReport } from "./report.js";

// ------------------------------------------------------------------ reading the report

/** The states a manifold can be in, plus "unknown" for data that names none of them. */
type State = "starting" | "started" | "stopping" | "stopped" | "unknown";

/** One manifold, its fields checked. */
interface Row {
  readonly name: string;
  readonly state: State;
  readonly inputs: readonly string[];
  readonly startCount: number | undefined;
  readonly error: string | undefined;
  readonly failureCount: number | undefined;
  readonly restartCount: number | undefined;
  readonly uptimeMs: number | undefined;
  readonly blockedBy: readonly string[] | undefined;
  readonly flags: readonly string[];
  /** The worker's own report when it is not an engine's. */
  readonly workerReport: Record<string, unknown> | undefined;
  /** The worker's report when it is itself an engine report (nested engine). */
  readonly nested: Graph | undefined;
}

/** An engine report, checked, with its dependency tree worked out. */
interface Graph {
  readonly state: string;
  readonly error: string | undefined;
  readonly startedAt: string | undefined;
  readonly totals: { starts?: number; failures?: number; bounces?: number } | undefined;
  readonly rows: readonly Row[];
  readonly byName: ReadonlyMap<string, number>;
}

/** Engines nested deeper than this are summarised, not drawn (a report is data and could be built to recurse). */
const MAX_NESTING = 12;
const STATES: readonly string[] = ["starting", "started", "stopping", "stopped"];

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function ownValue(record: Record<string, unknown>, key: string): unknown {
  // Own properties only: a manifold called "constructor" or "__proto__" is data, not a prototype member.
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function count(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function strings(value: unknown): string[] | undefined {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : undefined;
}

/** True when `value` looks like an engine report: it has a `manifolds` record. */
function isEngineReport(value: unknown): value is Record<string, unknown> & { manifolds: Record<string, unknown> } {
  return isRecord(value) && isRecord(ownValue(value, "manifolds"));
}

function readRow(name: string, raw: unknown, depth: number): Row {
  const entry = isRecord(raw) ? raw : {};
  const state = text(ownValue(entry, "state"));
  const report = ownValue(entry, "report");
  const flags: string[] = [];
  for (const flag of ["stuck", "quarantined", "silent"]) if (ownValue(entry, flag) === true) flags.push(flag);
  const nested = isEngineReport(report) && depth < MAX_NESTING ? readGraph(report, depth + 1) : undefined;
  return {
    name,
    state: state !== undefined && STATES.includes(state) ? (state as State) : "unknown",
    inputs: strings(ownValue(entry, "inputs")) ?? [],
    startCount: count(ownValue(entry, "startCount")),
    error: text(ownValue(entry, "error")),
    failureCount: count(ownValue(entry, "failureCount")),
    restartCount: count(ownValue(entry, "restartCount")),
    uptimeMs: count(ownValue(entry, "uptimeMs")),
    blockedBy: strings(ownValue(entry, "blockedBy")),
    flags,
    workerReport: nested === undefined && isRecord(report) ? report : undefined,
    nested,
  };
}

function readGraph(report: unknown, depth = 0): Graph {
  const engine = isRecord(report) ? report : {};
  const manifolds = ownValue(engine, "manifolds");
  const rows: Row[] = [];
  const byName = new Map<string, number>();
  if (isRecord(manifolds)) {
    for (const name of Object.keys(manifolds)) {
      byName.set(name, rows.length);
      rows.push(readRow(name, ownValue(manifolds, name), depth));
    }
  }
  const totals = ownValue(engine, "totals");
  return {
    state: text(ownValue(engine, "state")) ?? "unknown",
    error: text(ownValue(engine, "error")),
    startedAt: text(ownValue(engine, "startedAt")),
    totals: isRecord(totals)
      ? {
          ...(count(totals["starts"]) === undefined ? {} : { starts: count(totals["starts"]) as number }),
          ...(count(totals["failures"]) === undefined ? {} : { failures: count(totals["failures"]) as number }),
          ...(count(totals["bounces"]) === undefined ? {} : { bounces: count(totals["bounces"]) as number }),
        }
      : undefined,
    rows,
    byName,
  };
}

// ------------------------------------------------------------------ shared wording

/**
 * Characters that would break "one line per manifold" or mislead a reader of
 * a terminal: control characters, line and paragraph separators, bidi
 * overrides and isolates.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

const UNSAFE_ALL = new RegExp(UNSAFE.source, "g");

/** `\u202e` for one unsafe character. */
function escapeChar(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/**
 * A name as people read it: as is, or JSON-quoted when it has unsafe
 * characters or outer spaces (JSON.stringify leaves bidi controls raw, so
 * those are escaped too).
 */
function displayName(name: string): string {
  if (!UNSAFE.test(name) && name.trim() === name && name !== "") return name;
  return JSON.stringify(name).replace(UNSAFE_ALL, escapeChar);
}

/** The first line of a message, control characters escaped, at most `width` characters. */
function oneLine(message: string, width: number): string {
  const first = message.split(/\r?\n/, 1)[0] ?? "";
  const safe = first.replace(UNSAFE_ALL, escapeChar);
  const clipped = safe.length > width ? `${safe.slice(0, width - 1)}…` : safe;
  return first.length < message.length && clipped === safe ? `${clipped} …` : clipped;
}

/** 850ms, 12.3s, 5m03s, 2h05m, 3d04h. */
function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const two = (n: number): string => String(Math.floor(n)).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${two((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d${two((s % 86_400) / 3600)}h`;
}

function stateCounts(graph: Graph): string {
  const counts = new Map<string, number>();
  for (const row of graph.rows) counts.set(row.state, (counts.get(row.state) ?? 0) + 1);
  return [...counts].map(([state, n]) => `${n} ${state}`).join(", ");
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** "engine started · 5 manifolds (4 started, 1 starting) · starts 9, failures 2, bounces 3 · since …". */
function engineSummary(graph: Graph): string {
  const parts = [`engine ${graph.state}${graph.error === undefined ? "" : ` (error: ${oneLine(graph.error, 160)})`}`];
  parts.push(graph.rows.length === 0 ? "no manifolds" : `${plural(graph.rows.length, "manifold")} (${stateCounts(graph)})`);
  const totals = graph.totals;
  if (totals !== undefined) {
    const figures = (["starts", "failures", "bounces"] as const).filter((key) => totals[key] !== undefined).map((key) => `${key} ${totals[key]}`);
    if (figures.length > 0) parts.push(figures.join(", "));
  }
  if (graph.startedAt !== undefined) parts.push(`since ${oneLine(graph.startedAt, 40)}`);
  return parts.join(" · ");
}

// ------------------------------------------------------------------ the tree

/**
 * Each manifold's place in the text tree: under the installed input that
 * starts last (the deepest one), so that every line comes after all the
 * inputs it waits for. Worked out without recursion (a chain can be 100,000
 * long) and without trusting the data to be acyclic.
 */
function treeOf(graph: Graph): { roots: number[]; children: number[][]; parent: number[]; depth: number[] } {
  const n = graph.rows.length;
  const depth = new Array<number>(n).fill(-1);
  const parent = new Array<number>(n).fill(-1);
  const onStack = new Uint8Array(n);
  for (let start = 0; start < n; start++) {
    if (depth[start] !== -1) continue;
    const stack: number[] = [start];
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as number;
      if (depth[top] !== -1) {
        stack.pop();
        continue;
      }
      onStack[top] = 1;
      let pending = false;
      for (const input of (graph.rows[top] as Row).inputs) {
        const i = graph.byName.get(input);
        if (i !== undefined && depth[i] === -1 && onStack[i] === 0) {
          stack.push(i);
          pending = true;
        }
      }
      if (pending) continue;
      // Every installed input has its depth (or closes a cycle in malformed data: ignored).
      let best = -1;
      let bestDepth = -1;
      for (const input of (graph.rows[top] as Row).inputs) {
        const i = graph.byName.get(input);
        if (i === undefined || i === top || depth[i] === -1) continue;
        if ((depth[i] as number) > bestDepth) {
          best = i;
          bestDepth = depth[i] as number;
        }
      }
      depth[top] = bestDepth + 1;
      parent[top] = best;
      onStack[top] = 0;
      stack.pop();
    }
  }
  const roots: number[] = [];
  const children: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++) {
    const p = parent[i] as number;
    if (p === -1) roots.push(i);
    else (children[p] as number[]).push(i);
  }
  return { roots, children, parent, depth };
}

/** Indentation stops growing here: a 100,000-long chain must not print 100,000² spaces. */
const MAX_INDENT = 24;
/** Names are padded to a common width, up to this. */
const MAX_NAME_COLUMN = 40;

function rowDetails(row: Row, graph: Graph, parentIndex: number): string[] {
  const details: string[] = [];
  if (row.startCount !== undefined) details.push(`starts ${row.startCount}`);
  if (row.restartCount !== undefined && row.restartCount > 0) details.push(`restarts ${row.restartCount}`);
  if (row.failureCount !== undefined && row.failureCount > 0) details.push(`failures ${row.failureCount}`);
  if (row.state === "started" && row.uptimeMs !== undefined) details.push(`up ${duration(row.uptimeMs)}`);
  details.push(...row.flags);
  const parentName = parentIndex === -1 ? undefined : (graph.rows[parentIndex] as Row).name;
  const others = row.inputs.filter((input) => input !== parentName);
  if (others.length > 0) {
    const shown = others.slice(0, 8).map((input) => (graph.byName.has(input) ? displayName(input) : `${displayName(input)} (not installed)`));
    details.push(`${parentName === undefined ? "inputs" : "also"}: ${shown.join(", ")}${others.length > 8 ? `, … ${others.length - 8} more` : ""}`);
  }
  if (row.blockedBy !== undefined && row.blockedBy.length > 0) details.push(`blocked by ${row.blockedBy.slice(0, 8).map(displayName).join(", ")}`);
  if (row.error !== undefined) details.push(`error: ${oneLine(row.error, 160)}`);
  if (row.workerReport !== undefined) {
    let json: string;
    try {
      json = JSON.stringify(row.workerReport) ?? "";
    } catch {
      json = "[unserialisable]";
    }
    details.push(`report ${oneLine(json, 100)}`);
  }
  return details;
}

function treeLines(graph: Graph, indent: string, lines: string[], nesting: number): void {
  lines.push(`${indent}${engineSummary(graph)}`);
  const { roots, children, parent, depth } = treeOf(graph);
  const names = graph.rows.map((row) => displayName(row.name));
  // Prefix of each line ("│  ├─ ") and of its children's lines ("│  │  "), built as the walk goes.
  type Item = { index: number; prefix: string; childPrefix: string };
  const items: Item[] = [];
  const stack: Item[] = [];
  const pushSiblings = (list: readonly number[], prefix: string, topLevel: boolean): void => {
    for (let k = list.length - 1; k >= 0; k--) {
      const index = list[k] as number;
      const last = k === list.length - 1;
      if (topLevel) stack.push({ index, prefix: "", childPrefix: "" });
      else if ((depth[index] as number) > MAX_INDENT) stack.push({ index, prefix: `${prefix}· `, childPrefix: prefix });
      else stack.push({ index, prefix: `${prefix}${last ? "└─ " : "├─ "}`, childPrefix: `${prefix}${last ? "   " : "│  "}` });
    }
  };
  pushSiblings(roots, "", true);
  while (stack.length > 0) {
    const item = stack.pop() as Item;
    items.push(item);
    pushSiblings(children[item.index] as number[], item.childPrefix, false);
  }
  let width = 0;
  for (const item of items) width = Math.max(width, item.prefix.length + (names[item.index] as string).length);
  width = Math.min(width, MAX_NAME_COLUMN);
  for (const item of items) {
    const row = graph.rows[item.index] as Row;
    const d = depth[item.index] as number;
    const label = `${item.prefix}${names[item.index]}${d > MAX_INDENT ? ` (depth ${d})` : ""}`;
    const details = rowDetails(row, graph, parent[item.index] as number);
    lines.push(`${indent}${label.padEnd(width)}  ${row.state.padEnd(8)}${details.length > 0 ? `  ${details.join("  ")}` : ""}`.trimEnd());
    if (row.nested !== undefined) {
      const nestedIndent = `${indent}${item.childPrefix}╎ `;
      if (nesting + 1 >= MAX_NESTING) lines.push(`${nestedIndent}(nested engines deeper than ${MAX_NESTING} levels are not shown)`);
      else treeLines(row.nested, nestedIndent, lines, nesting + 1);
    }
  }
}

/**
 * The report as a text tree, one line per manifold: each manifold under the
 * input it waits for last (its other inputs named after `also:`), with its
 * state, start count, restarts, failures, uptime, last error and the worker's
 * own report; a nested engine's manifolds indented under the manifold that
 * runs it. The first line sums up the engine.
 *
 * Guarantees: never throws, whatever the data (fields of the wrong type are
 * skipped, so it also renders reports fetched from another process); one line
 * per manifold plus one per engine (names and errors with line breaks or
 * control characters are escaped); indentation stops growing after 24 levels;
 * nested engines deeper than 12 levels are summarised. Ends without a newline.
 */
export function formatReport(report: EngineReport): string {
  const lines: string[] = [];
  treeLines(readGraph(report), "", lines, 0);
  return lines.join("\n");
}

// ------------------------------------------------------------------ colours shared by Mermaid and DOT

const FILL: Record<State, { fill: string; stroke: string }> = {
  started: { fill: "#d8f3dc", stroke: "#2d6a4f" },
  starting: { fill: "#fff3bf", stroke: "#a07c00" },
  stopping: { fill: "#ffe8cc", stroke: "#c2590a" },
  stopped: { fill: "#e9ecef", stroke: "#6c757d" },
  unknown: { fill: "#ffffff", stroke: "#6c757d" },
};
const FAILED_STROKE = "#c92a2a";

/** The second line of a node's label: "started · starts 2". */
function nodeSummary(row: Row): string {
  const parts: string[] = [row.state];
  if (row.startCount !== undefined) parts.push(`starts ${row.startCount}`);
  if (row.failureCount !== undefined && row.failureCount > 0) parts.push(`failures ${row.failureCount}`);
  parts.push(...row.flags);
  return parts.join(" · ");
}

/** Ids: `m<i>` for manifolds and `x<i>` for inputs that are not installed, prefixed by the nesting path. */
function nodeId(scope: string, index: number): string {
  return `${scope}m${index}`;
}

// ------------------------------------------------------------------ Mermaid

/**
 * A label for Mermaid's `["…"]`: every character that means something to
 * Mermaid or to HTML (`"`, `#`, `&`, `<`, `>`, `;`, `` ` ``, brackets, braces,
 * `|`, `\`) becomes a numeric entity code (`#34;`), which Mermaid turns back into
 * the character on screen; line breaks are escaped first by `displayName`.
 */
function mermaidText(value: string): string {
  return value.replace(/["#&<>;`[\]{}|\\]/g, (c) => `#${c.charCodeAt(0)};`);
}

function mermaidLabel(row: Row): string {
  const lines = [mermaidText(displayName(row.name)), mermaidText(nodeSummary(row))];
  if (row.error !== undefined) lines.push(`✖ ${mermaidText(oneLine(row.error, 48))}`);
  return lines.join("<br/>");
}

function mermaidLines(graph: Graph, scope: string, indent: string, lines: string[], nesting: number): void {
  graph.rows.forEach((row, index) => {
    const id = nodeId(scope, index);
    const cls = `${row.state}${row.error === undefined ? "" : "Failed"}`;
    if (row.nested === undefined) {
      lines.push(`${indent}${id}["${mermaidLabel(row)}"]:::${cls}`);
      return;
    }
    // A nested engine: a subgraph holding the manifold's own node and the child engine's graph.
    lines.push(`${indent}subgraph ${id}g["${mermaidText(displayName(row.name))}: engine ${mermaidText(row.nested.state)}"]`);
    lines.push(`${indent}  direction LR`);
    lines.push(`${indent}  ${id}["${mermaidLabel(row)}"]:::${cls}`);
    if (nesting + 1 < MAX_NESTING) mermaidLines(row.nested, `${id}_`, `${indent}  `, lines, nesting + 1);
    lines.push(`${indent}end`);
  });
  forEachEdge(graph, scope, (from, to, missingName) => {
    if (missingName !== undefined) lines.push(`${indent}${from}["${mermaidText(displayName(missingName))}<br/>not installed"]:::missing`);
    lines.push(`${indent}${from} --> ${to}`);
  });
}

/**
 * The graph as a Mermaid flowchart (renders in GitHub markdown): inputs point
 * to their dependents; each node shows the name, state and start count and is
 * coloured by state; failed ones (with an `error`) get a red border and their
 * error; inputs that are not installed appear dashed; a nested engine is a
 * subgraph around the manifold that runs it.
 *
 * Guarantees: never throws; node ids are generated (`m0`, `m3_m1`), so names
 * appear only inside quoted labels, where every character Mermaid or HTML
 * would read (quotes, `#`, `<`, `>`, `&`, brackets, `;`) is written as an
 * entity code: any name is shown as written and none can inject syntax or markup.
 */
export function toMermaid(report: EngineReport): string {
  const graph = readGraph(report);
  const body: string[] = [];
  if (graph.rows.length === 0) body.push(`  empty["engine ${mermaidText(graph.state)}: no manifolds"]`);
  mermaidLines(graph, "", "  ", body, 0);
  // Only the classes the graph uses, so the source stays short enough to read in a README.
  const used = new Set<string>();
  for (const line of body) {
    const match = /:::(\w+)$/.exec(line);
    if (match !== null) used.add(match[1] as string);
  }
  const lines = ["flowchart LR"];
  for (const state of Object.keys(FILL) as State[]) {
    const { fill, stroke } = FILL[state];
    if (used.has(state)) lines.push(`  classDef ${state} fill:${fill},stroke:${stroke},color:#212529`);
    if (used.has(`${state}Failed`)) lines.push(`  classDef ${state}Failed fill:${fill},stroke:${FAILED_STROKE},stroke-width:3px,color:#212529`);
  }
  if (used.has("missing")) lines.push("  classDef missing fill:#ffffff,stroke:#adb5bd,stroke-dasharray:4 3,color:#6c757d");
  return [...lines, ...body].join("\n");
}

// ------------------------------------------------------------------ DOT

/** A DOT double-quoted string: backslash and quote escaped, so Graphviz's `\N`, `\l` escapes cannot be triggered either. */
function dotString(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** A multi-line DOT label: each line escaped on its own, then joined with DOT's `\n`. */
function dotLabel(lines: readonly string[]): string {
  return `"${lines.map((line) => dotString(line).slice(1, -1)).join("\\n")}"`;
}

function dotNode(row: Row, id: string, indent: string): string {
  const colours = FILL[row.state];
  const label = [displayName(row.name), nodeSummary(row)];
  if (row.error !== undefined) label.push(`✖ ${oneLine(row.error, 48)}`);
  const attributes = [
    `label=${dotLabel(label)}`,
    `fillcolor=${dotString(colours.fill)}`,
    `color=${dotString(row.error === undefined ? colours.stroke : FAILED_STROKE)}`,
  ];
  if (row.error !== undefined) attributes.push("penwidth=2.5");
  return `${indent}${id} [${attributes.join(", ")}];`;
}

function dotLines(graph: Graph, scope: string, indent: string, lines: string[], nesting: number): void {
  graph.rows.forEach((row, index) => {
    const id = nodeId(scope, index);
    if (row.nested === undefined) {
      lines.push(dotNode(row, id, indent));
      return;
    }
    lines.push(`${indent}subgraph cluster_${id} {`);
    lines.push(`${indent}  label=${dotString(`${displayName(row.name)}: engine ${row.nested.state}`)};`);
    lines.push(`${indent}  style="rounded,dashed"; color="#868e96";`);
    lines.push(dotNode(row, id, `${indent}  `));
    if (nesting + 1 < MAX_NESTING) dotLines(row.nested, `${id}_`, `${indent}  `, lines, nesting + 1);
    lines.push(`${indent}}`);
  });
  forEachEdge(graph, scope, (from, to, missingName) => {
    if (missingName !== undefined) {
      lines.push(`${indent}${from} [label=${dotLabel([displayName(missingName), "not installed"])}, style="rounded,dashed", fillcolor="#ffffff", color="#adb5bd", fontcolor="#6c757d"];`);
    }
    lines.push(`${indent}${from} -> ${to};`);
  });
}

/**
 * Calls `edge(from, to)` for every input edge of `graph`, with node ids in
 * `scope`. An input that is not installed gets one id of its own, and its
 * first edge passes its name as `missingName`, so that the caller draws it once.
 */
function forEachEdge(graph: Graph, scope: string, edge: (from: string, to: string, missingName: string | undefined) => void): void {
  const missing = new Map<string, string>();
  graph.rows.forEach((row, index) => {
    for (const input of row.inputs) {
      const i = graph.byName.get(input);
      if (i !== undefined) {
        edge(nodeId(scope, i), nodeId(scope, index), undefined);
      } else if (missing.has(input)) {
        edge(missing.get(input) as string, nodeId(scope, index), undefined);
      } else {
        const from = `${scope}x${missing.size}`;
        missing.set(input, from);
        edge(from, nodeId(scope, index), input);
      }
    }
  });
}

/**
 * The graph in Graphviz DOT: inputs point to their dependents (left to
 * right); each node is labelled with its name, state and start count and
 * filled by state; failed ones (with an `error`) get a thick red border and
 * their error; inputs that are not installed are dashed; a nested engine is
 * a dashed cluster around the manifold that runs it.
 *
 * Guarantees: never throws; the output is one `digraph` that Graphviz (and
 * any DOT parser) accepts for every name: node ids are generated, and names
 * appear only in double-quoted labels with `\` and `"` escaped.
 */
export function toDot(report: EngineReport): string {
  const graph = readGraph(report);
  const lines = [
    "digraph manifolds {",
    `  graph [rankdir=LR, compound=true, fontname="Helvetica", fontsize=12, labelloc=t, label=${dotString(engineSummary(graph))}];`,
    '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
    '  edge [color="#495057", arrowsize=0.7];',
  ];
  dotLines(graph, "", "  ", lines, 0);
  lines.push("}");
  return lines.join("\n");
}
