/**
 * The script of the introspection page, as the text the browser runs.
 *
 * Why a string of plain JavaScript and not a bundle: the page must be one
 * self-contained response with no build step and nothing fetched from
 * elsewhere, and its Content-Security-Policy allows exactly this script by
 * its SHA-256 hash. It never builds HTML from data: every name, error and
 * report goes into the page through `textContent` or `setAttribute`, so a
 * manifold called `<script>…` is shown as text.
 *
 * What it does: fetches `report?format=json` (relative URLs, so the handler
 * can be mounted under a prefix ending in "/"), draws the graph (layered left
 * to right: each manifold one column right of its deepest input) and a table,
 * follows `events` (Server-Sent Events) and refetches the report shortly
 * after each burst of events, or polls once a second when the server has no
 * event stream. Clicking a manifold shows its report and fetches the chain of
 * causes of its last restart from `chain?name=`.
 */
export const PAGE_SCRIPT = String.raw`"use strict";
(() => {
  const GRAPH_LIMIT = 1500;
  const TABLE_LIMIT = 500;
  const LOG_LIMIT = 200;
  const NODE_W = 190, NODE_H = 48, GAP_X = 70, GAP_Y = 16, PAD = 12;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const el = (tag, attributes, text) => {
    const node = document.createElement(tag);
    if (attributes) for (const key of Object.keys(attributes)) node.setAttribute(key, attributes[key]);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const svg = (tag, attributes) => {
    const node = document.createElementNS(SVG_NS, tag);
    if (attributes) for (const key of Object.keys(attributes)) node.setAttribute(key, String(attributes[key]));
    return node;
  };
  const own = (object, key) => (object !== null && typeof object === "object" && Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined);
  const isRecord = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
  const clip = (text, width) => (text.length > width ? text.slice(0, width - 1) + "\u2026" : text);
  const firstLine = (text) => String(text).split("\n", 1)[0];
  const STATES = ["starting", "started", "stopping", "stopped"];

  let report = null;
  let selected = null;
  let filter = "";
  let lastFetchMs = 50;
  let refreshTimer = null;
  let refreshing = false;
  let refreshAgain = false;
  let pollTimer = null;
  let source = null;
  let replayed = false;
  const log = [];

  function setLive(text, kind) {
    const live = $("live");
    live.textContent = text;
    live.className = "live " + kind;
  }

  function showProblem(text) {
    const problem = $("problem");
    problem.textContent = text;
    problem.hidden = text === "";
  }

  function rows() {
    const manifolds = report && own(report, "manifolds");
    if (!isRecord(manifolds)) return [];
    return Object.keys(manifolds).map((name) => {
      const entry = isRecord(manifolds[name]) ? manifolds[name] : {};
      const state = STATES.includes(own(entry, "state")) ? own(entry, "state") : "unknown";
      const inputs = Array.isArray(own(entry, "inputs")) ? own(entry, "inputs").filter((x) => typeof x === "string") : [];
      return { name, entry, state, inputs, error: typeof own(entry, "error") === "string" ? own(entry, "error") : undefined };
    });
  }

  function matches(row) {
    if (filter === "") return true;
    const needle = filter.toLowerCase();
    return row.name.toLowerCase().includes(needle) || row.state.includes(needle) || (row.error !== undefined && row.error.toLowerCase().includes(needle));
  }

  function count(entry, key) {
    const value = own(entry, key);
    return typeof value === "number" && Number.isFinite(value) ? value : undefined;
  }

  function duration(ms) {
    if (ms < 1000) return Math.round(ms) + "ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }

  // ------------------------------------------------------------ summary

  function renderSummary(all) {
    const state = typeof own(report, "state") === "string" ? own(report, "state") : "unknown";
    const badge = $("engine-state");
    badge.textContent = "engine " + state;
    badge.className = "badge state-" + (STATES.includes(state) ? state : "unknown");
    const counts = {};
    for (const row of all) counts[row.state] = (counts[row.state] || 0) + 1;
    const parts = [all.length + (all.length === 1 ? " manifold" : " manifolds")];
    for (const key of Object.keys(counts)) parts.push(counts[key] + " " + key);
    const totals = own(report, "totals");
    if (isRecord(totals)) for (const key of ["starts", "failures", "bounces"]) if (count(totals, key) !== undefined) parts.push(key + " " + count(totals, key));
    const startedAt = own(report, "startedAt");
    if (typeof startedAt === "string") parts.push("since " + startedAt);
    $("summary").textContent = parts.join(" \u00b7 ");
    const error = own(report, "error");
    $("engine-error").textContent = typeof error === "string" ? "fatal: " + firstLine(error) : "";
  }

  // ------------------------------------------------------------ graph

  function layout(visible) {
    const index = new Map(visible.map((row, i) => [row.name, i]));
    const depth = new Array(visible.length).fill(-1);
    const onStack = new Uint8Array(visible.length);
    for (let start = 0; start < visible.length; start++) {
      if (depth[start] !== -1) continue;
      const stack = [start];
      while (stack.length > 0) {
        const top = stack[stack.length - 1];
        if (depth[top] !== -1) { stack.pop(); continue; }
        onStack[top] = 1;
        let pending = false;
        for (const input of visible[top].inputs) {
          const i = index.get(input);
          if (i !== undefined && depth[i] === -1 && !onStack[i]) { stack.push(i); pending = true; }
        }
        if (pending) continue;
        let d = 0;
        for (const input of visible[top].inputs) {
          const i = index.get(input);
          if (i !== undefined && i !== top && depth[i] >= 0) d = Math.max(d, depth[i] + 1);
        }
        depth[top] = d;
        onStack[top] = 0;
        stack.pop();
      }
    }
    const columns = [];
    visible.forEach((row, i) => { (columns[depth[i]] = columns[depth[i]] || []).push(i); });
    const y = new Array(visible.length).fill(0);
    columns.forEach((column, c) => {
      if (c > 0) {
        // Order each column by the mean position of its inputs: fewer crossings, cheaply.
        const key = new Map(column.map((i) => {
          let sum = 0, n = 0;
          for (const input of visible[i].inputs) { const j = index.get(input); if (j !== undefined && depth[j] < c) { sum += y[j]; n++; } }
          return [i, n === 0 ? Infinity : sum / n];
        }));
        column.sort((a, b) => key.get(a) - key.get(b) || a - b);
      }
      column.forEach((i, k) => { y[i] = k; });
    });
    return { index, depth, y, columns: columns.length, rows: Math.max(0, ...columns.map((column) => (column ? column.length : 0))) };
  }

  function renderGraph(visible) {
    const holder = $("graph");
    holder.replaceChildren();
    if (visible.length === 0) { holder.append(el("p", { class: "note" }, report ? "No manifold matches." : "Loading\u2026")); return; }
    if (visible.length > GRAPH_LIMIT) {
      holder.append(el("p", { class: "note" }, visible.length + " manifolds match: the graph is drawn for " + GRAPH_LIMIT + " or fewer. Narrow the filter, or fetch graph.dot."));
      return;
    }
    const { index, depth, y, columns, rows: height } = layout(visible);
    const width = PAD * 2 + columns * NODE_W + Math.max(0, columns - 1) * GAP_X;
    const h = PAD * 2 + height * NODE_H + Math.max(0, height - 1) * GAP_Y;
    const root = svg("svg", { width, height: h, viewBox: "0 0 " + width + " " + h, role: "img", "aria-label": "manifold graph" });
    const defs = svg("defs");
    const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
    defs.append(marker);
    root.append(defs);
    const at = (i) => ({ x: PAD + depth[i] * (NODE_W + GAP_X), y: PAD + y[i] * (NODE_H + GAP_Y) });
    const edges = svg("g", { class: "edges" });
    visible.forEach((row, i) => {
      for (const input of row.inputs) {
        const j = index.get(input);
        if (j === undefined) continue;
        const a = at(j), b = at(i);
        const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2, mid = (x1 + x2) / 2;
        edges.append(svg("path", { d: "M " + x1 + " " + y1 + " C " + mid + " " + y1 + ", " + mid + " " + y2 + ", " + x2 + " " + y2, class: "edge", "marker-end": "url(#arrow)" }));
      }
    });
    root.append(edges);
    visible.forEach((row, i) => {
      const p = at(i);
      const g = svg("g", { class: "node state-" + row.state + (row.error !== undefined ? " failed" : "") + (row.name === selected ? " selected" : ""), transform: "translate(" + p.x + " " + p.y + ")", tabindex: 0 });
      g.setAttribute("data-name", row.name);
      g.setAttribute("data-state", row.state);
      const title = svg("title");
      title.textContent = row.name + (row.error !== undefined ? "\n" + row.error : "");
      g.append(title);
      g.append(svg("rect", { width: NODE_W, height: NODE_H, rx: 6 }));
      const name = svg("text", { x: 8, y: 19, class: "name" });
      name.textContent = clip(row.name, 26);
      const starts = count(row.entry, "startCount");
      const nested = isRecord(own(row.entry, "report")) && isRecord(own(own(row.entry, "report"), "manifolds"));
      const line = [row.state];
      if (starts !== undefined) line.push(starts + (starts === 1 ? " start" : " starts"));
      if (row.error !== undefined) line.push("\u2716 failed");
      if (nested) line.push("engine");
      const info = svg("text", { x: 8, y: 37, class: "info" });
      info.textContent = line.join(" \u00b7 ");
      g.append(name, info);
      g.addEventListener("click", () => select(row.name));
      g.addEventListener("keydown", (event) => { if (event.key === "Enter") select(row.name); });
      root.append(g);
    });
    holder.append(root);
  }

  // ------------------------------------------------------------ table

  function renderTable(visible) {
    const body = $("rows");
    body.replaceChildren();
    for (const row of visible.slice(0, TABLE_LIMIT)) {
      const tr = el("tr", { class: "state-" + row.state + (row.error !== undefined ? " failed" : "") + (row.name === selected ? " selected" : "") });
      tr.setAttribute("data-name", row.name);
      tr.append(el("td", { class: "name" }, row.name));
      tr.append(el("td", {}, row.state));
      tr.append(el("td", { class: "num" }, String(count(row.entry, "startCount") ?? "")));
      tr.append(el("td", { class: "num" }, String(count(row.entry, "failureCount") ?? "")));
      tr.append(el("td", { class: "error" }, row.error === undefined ? "" : clip(firstLine(row.error), 140)));
      tr.addEventListener("click", () => select(row.name));
      body.append(tr);
    }
    $("table-note").textContent = visible.length > TABLE_LIMIT ? "Showing " + TABLE_LIMIT + " of " + visible.length + " matching manifolds: narrow the filter." : "";
  }

  // ------------------------------------------------------------ detail

  function field(list, label, value) {
    if (value === undefined || value === "") return;
    list.append(el("dt", {}, label), el("dd", {}, String(value)));
  }

  function renderDetail() {
    const panel = $("detail");
    const all = rows();
    const row = all.find((r) => r.name === selected);
    $("detail-name").textContent = selected === null ? "Click a manifold" : selected;
    const list = $("detail-fields");
    list.replaceChildren();
    const failures = $("detail-failures");
    failures.replaceChildren();
    $("detail-report").textContent = "";
    panel.dataset.state = row ? row.state : "";
    if (selected === null) return;
    if (!row) { field(list, "state", "no longer installed"); return; }
    const entry = row.entry;
    field(list, "state", row.state + (typeof own(entry, "since") === "string" ? " since " + own(entry, "since") : ""));
    const installed = new Set(all.map((r) => r.name));
    field(list, "inputs", row.inputs.length === 0 ? "none" : row.inputs.map((input) => (installed.has(input) ? input : input + " (not installed)")).join(", "));
    field(list, "starts", count(entry, "startCount"));
    field(list, "restarts", count(entry, "restartCount"));
    field(list, "failures", count(entry, "failureCount"));
    if (row.state === "started" && count(entry, "uptimeMs") !== undefined) field(list, "up", duration(count(entry, "uptimeMs")));
    field(list, "last start", typeof own(entry, "lastStart") === "string" ? own(entry, "lastStart") : undefined);
    const blocked = own(entry, "blockedBy");
    if (Array.isArray(blocked) && blocked.length > 0) field(list, "blocked by", blocked.join(", "));
    for (const flag of ["stuck", "quarantined", "silent"]) if (own(entry, flag) === true) field(list, flag, "yes");
    field(list, "error", row.error);
    const recent = own(entry, "lastFailures");
    if (Array.isArray(recent)) {
      for (const failure of recent) {
        if (!isRecord(failure)) continue;
        failures.append(el("li", {}, String(own(failure, "time") ?? "") + "  " + firstLine(String(own(failure, "error") ?? ""))));
      }
    }
    const workerReport = own(entry, "report");
    $("detail-report").textContent = workerReport === undefined ? "none (no running worker with a report())" : JSON.stringify(workerReport, null, 2);
  }

  async function loadChain(name) {
    const target = $("chain");
    target.replaceChildren();
    target.dataset.name = name;
    if (!eventsAvailable) { target.append(el("p", { class: "note" }, "No event stream: " + eventsProblem)); return; }
    let body;
    try {
      const res = await fetch("chain?name=" + encodeURIComponent(name), { cache: "no-store" });
      body = await res.json();
    } catch (error) {
      target.append(el("p", { class: "note" }, "Could not load the chain: " + error));
      return;
    }
    if (selected !== name) return;
    if (!body || !Array.isArray(body.events) || body.events.length === 0) {
      target.append(el("p", { class: "note" }, (body && body.message) || "No restart of this manifold in the kept events."));
      return;
    }
    target.append(el("p", { class: "chain-line" }, body.text));
    const list = el("ol", { class: "chain-events" });
    body.events.forEach((event, i) => {
      const line = Array.isArray(body.lines) && typeof body.lines[i] === "string" ? body.lines[i] : String(event.type);
      list.append(el("li", {}, "#" + event.id + "  " + String(event.time) + "  " + line));
    });
    target.append(list);
  }

  function select(name) {
    selected = name;
    render();
    loadChain(name);
  }

  // ------------------------------------------------------------ event log

  function renderLog() {
    const list = $("log");
    list.replaceChildren();
    for (const event of log.slice(-50).reverse()) {
      const text = "#" + event.id + " " + String(event.time).slice(11, 23) + " " + event.type + (typeof event.name === "string" ? " " + event.name : "") + (typeof event.error === "string" ? " \u2014 " + firstLine(event.error) : "");
      list.append(el("li", { class: typeof event.error === "string" ? "failed" : "" }, text));
    }
  }

  // ------------------------------------------------------------ refresh

  function render() {
    const all = rows();
    const visible = all.filter(matches);
    renderSummary(all);
    renderGraph(visible);
    renderTable(visible);
    renderDetail();
    renderLog();
    document.body.dataset.ready = "true";
  }

  async function refresh() {
    if (refreshing) { refreshAgain = true; return; }
    refreshing = true;
    const started = performance.now();
    try {
      const res = await fetch("report?format=json", { cache: "no-store" });
      if (!res.ok) throw new Error("report: HTTP " + res.status + " " + (await res.text()));
      report = await res.json();
      showProblem("");
      lastFetchMs = performance.now() - started;
      render();
    } catch (error) {
      showProblem(String(error && error.message ? error.message : error));
    } finally {
      refreshing = false;
      if (refreshAgain) { refreshAgain = false; requestRefresh(); }
    }
  }

  /**
   * What an event says about its manifold, applied at once so the page
   * follows the engine without waiting for the refetch (which then brings
   * everything else: counters, reports, new manifolds' inputs).
   */
  function applyEvent(event) {
    const manifolds = report && own(report, "manifolds");
    if (!isRecord(manifolds) || typeof event.name !== "string") return false;
    const entry = own(manifolds, event.name);
    if (event.type === "uninstalled") return delete manifolds[event.name];
    if (!isRecord(entry)) return false;
    switch (event.type) {
      case "starting":
      case "scheduled":
        entry.state = "starting";
        break;
      case "started":
        entry.state = "started";
        delete entry.error;
        if (typeof event.startCount === "number") entry.startCount = event.startCount;
        break;
      case "stopped":
        entry.state = "stopped";
        if (typeof event.error === "string") entry.error = event.error;
        if (event.outcome === "error" || event.outcome === "fatal") entry.failureCount = (count(entry, "failureCount") || 0) + 1;
        break;
      default:
        return false;
    }
    if (typeof event.time === "string") entry.since = event.time;
    return true;
  }

  let renderTimer = null;
  function scheduleRender() {
    if (renderTimer !== null) return;
    renderTimer = setTimeout(() => { renderTimer = null; render(); }, 16);
  }

  /** Coalesces bursts of events: one refetch shortly after, spaced by how long the last one took. */
  function requestRefresh() {
    if (refreshTimer !== null) return;
    refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, Math.min(2000, Math.max(100, lastFetchMs * 3)));
  }

  function poll() {
    if (pollTimer !== null) return;
    setLive("polling every second", "polling");
    pollTimer = setInterval(refresh, 1000);
  }

  const eventsProblem = document.body.dataset.eventsProblem || "";
  const eventsAvailable = eventsProblem === "";

  function connect() {
    if (!eventsAvailable) { poll(); return; }
    setLive("connecting", "connecting");
    source = new EventSource("events?since=0");
    source.onopen = () => setLive("live", "live");
    source.onmessage = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      log.push(event);
      if (log.length > LOG_LIMIT) log.splice(0, log.length - LOG_LIMIT);
      // Replayed events are older than the report just fetched: they go to the log only.
      if (replayed) applyEvent(event);
      scheduleRender();
      requestRefresh();
    };
    // Events were missed (this tab was too slow, or they are older than the server keeps): the report is refetched anyway.
    source.addEventListener("replayed", () => {
      replayed = true;
      requestRefresh();
    });
    source.addEventListener("dropped", () => requestRefresh());
    source.addEventListener("gap", () => requestRefresh());
    source.addEventListener("end", () => {
      source.close();
      setLive("engine stopped", "ended");
      requestRefresh();
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) poll();
      else setLive("reconnecting", "connecting");
    };
  }

  $("filter").addEventListener("input", (event) => {
    filter = event.target.value.trim();
    render();
  });

  refresh().then(connect);
})();
`;
