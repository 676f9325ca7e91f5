/**
 * The introspection routes as one `(req, res)` handler for `node:http`.
 *
 * Order of checks, so that nothing leaks to a caller who may not ask: the
 * token (401, no detail), the Host header when a list is configured (403;
 * a defence against DNS rebinding of a loopback port), the method (405), the
 * URL's length (414), then the route (404 unless it is exactly one of the
 * routes: no decoding, no normalising, so `//report` or `/..%2freport` are
 * simply unknown). Every response says `Cache-Control: no-store`, and none
 * can be sniffed, framed or referred.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { formatReport, toDot, toMermaid } from "../render.js";
import type { EngineReport } from "../report.js";
import { EventHub } from "./event-hub.js";
import { describeAnyEvent, describeChain } from "./history.js";
import { METRICS_CONTENT_TYPE, toPrometheus } from "./metrics.js";
import { PAGE_CSP, pageHtml } from "./page.js";
import { ReportCache } from "./report-cache.js";
import { renderSvg, VizMissingError } from "./svg.js";
import type { IntrospectableEngine, IntrospectionEvent } from "./types.js";

/** Options of {@link introspectionHandler} (and of `introspect`). Every field is optional. */
export interface IntrospectionHandlerOptions {
  /** When set, every request must carry `Authorization: Bearer <token>` (compared in constant time); others get 401. */
  token?: string | undefined;
  /**
   * Requests within this many milliseconds share one report snapshot (longer
   * when the snapshot was expensive: four times what it cost, so serving
   * reports never takes more than about a fifth of the process's time); 0
   * takes a fresh one for every request. Default 100.
   */
  reportMaxAge?: number | undefined;
  /** Events kept for `/events` replay (`Last-Event-ID`, `?since=`) and `/chain`; 0 keeps none and listens only while a client is connected. Default 1000. */
  eventHistory?: number | undefined;
  /** Messages queued for an `/events` client that is not reading before the oldest are dropped (it is told how many). Default 1000. */
  clientBuffer?: number | undefined;
  /** Milliseconds between keep-alive comments on `/events`; 0 sends none. Default 15000. */
  keepAliveInterval?: number | undefined;
  /** Accepted `Host` header names (without port), case-insensitive; unset accepts any. `introspect` sets it for loopback TCP. */
  allowedHosts?: readonly string[] | undefined;
  /** `/graph.svg` refuses (413) graphs with more manifolds than this, nested ones included: Graphviz's layout is slow and blocks the process. Default 2000. */
  svgMaxManifolds?: number | undefined;
}

/**
 * A `(req, res)` handler serving the introspection routes, for `node:http`
 * or any framework that takes such a handler (mount it so that the page's
 * URL ends in "/": the page uses relative URLs).
 */
export interface IntrospectionHandler {
  /** Answers one request. Never throws; an internal failure is a 500 with the reason. */
  (req: IncomingMessage, res: ServerResponse): void;
  /** Ends every `/events` stream and stops listening to the engine's events. Idempotent. */
  close(): void;
  /** Connected `/events` clients. */
  readonly eventClients: number;
  /** How many times the handler has called `engine.report()` (requests within `reportMaxAge` share one). */
  readonly reportsTaken: number;
}

const MAX_URL = 2048;
const ROUTES = new Set(["/", "/report", "/graph.mmd", "/graph.dot", "/graph.svg", "/events", "/metrics", "/chain"]);

const COMMON_HEADERS: Readonly<Record<string, string>> = {
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Resource-Policy": "same-origin",
  "X-Frame-Options": "DENY",
};
const DATA_CSP = "default-src 'none'; frame-ancestors 'none'";
const TEXT = "text/plain; charset=utf-8";
const JSON_TYPE = "application/json; charset=utf-8";

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...COMMON_HEADERS,
    "Content-Security-Policy": DATA_CSP,
    ...headers,
    "Content-Type": type,
    "Content-Length": String(Buffer.byteLength(body)),
  });
  res.end(body);
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

function messageOf(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return "an unreadable error";
  }
}

function describe(value: unknown): string {
  if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === "number") return `the number ${value}`;
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : typeof value;
}

/** A non-negative whole number option, or its default. @internal */
export function wholeNumber(where: string, options: Record<string, unknown>, field: string, fallback: number): number {
  const value = options[field];
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new TypeError(`${where}: options.${field} must be a whole number >= 0 (got ${describe(value)})`);
  }
  return value;
}

/** Checks the options shared by the handler and the server. @internal */
export function checkHandlerOptions(where: string, engine: unknown, options: unknown): void {
  if (engine === null || typeof engine !== "object" || typeof (engine as { report?: unknown }).report !== "function") {
    throw new TypeError(`${where}: engine must be an Engine (an object with report()); got ${describe(engine)}`);
  }
  if (options === undefined) return;
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError(`${where}: options must be an object (got ${describe(options)})`);
  }
  const record = options as Record<string, unknown>;
  const token = record["token"];
  if (token !== undefined && (typeof token !== "string" || token.length === 0)) {
    throw new TypeError(`${where}: options.token must be a non-empty string (got ${describe(token)}); leave it out for no token`);
  }
  for (const field of ["reportMaxAge", "eventHistory", "clientBuffer", "keepAliveInterval", "svgMaxManifolds"]) wholeNumber(where, record, field, 0);
  const hosts = record["allowedHosts"];
  if (hosts !== undefined && (!Array.isArray(hosts) || hosts.some((host) => typeof host !== "string" || host.length === 0))) {
    throw new TypeError(`${where}: options.allowedHosts must be an array of host names (got ${describe(hosts)})`);
  }
}

/** The host name of a Host header, lower case, without port or IPv6 brackets. */
function hostName(header: string): string {
  const value = header.trim().toLowerCase();
  if (value.startsWith("[")) return value.slice(1, value.indexOf("]") === -1 ? undefined : value.indexOf("]"));
  const colon = value.lastIndexOf(":");
  return colon === -1 ? value : value.slice(0, colon);
}

/** True when the client accepts gzip (`Accept-Encoding: gzip` or `*`, with a q above 0). */
function acceptsGzip(req: IncomingMessage): boolean {
  const header = req.headers["accept-encoding"];
  if (typeof header !== "string") return false;
  return header.split(",").some((part) => {
    const [coding, ...params] = part.split(";").map((piece) => piece.trim().toLowerCase());
    if (coding !== "gzip" && coding !== "*") return false;
    const q = params.find((param) => param.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/** The renderings of a snapshot, by cache key; each ends with a newline. */
const RENDERINGS: Readonly<Record<string, (report: EngineReport) => string>> = {
  text: (report) => `${formatReport(report)}\n`,
  json: (report) => `${JSON.stringify(report)}\n`,
  "json-pretty": (report) => `${JSON.stringify(report, null, 2)}\n`,
  mermaid: (report) => `${toMermaid(report)}\n`,
  dot: (report) => `${toDot(report)}\n`,
  metrics: toPrometheus,
};

/** Bodies shorter than this are sent as they are: gzip would save nothing worth its header. */
const GZIP_MIN = 1024;

function flag(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  return value !== null && value !== "0" && value !== "false";
}

function countManifolds(report: unknown, depth = 0): number {
  if (depth > 12 || report === null || typeof report !== "object") return 0;
  const manifolds = (report as { manifolds?: unknown }).manifolds;
  if (manifolds === null || typeof manifolds !== "object") return 0;
  let n = 0;
  for (const entry of Object.values(manifolds as Record<string, unknown>)) {
    n++;
    if (entry !== null && typeof entry === "object") n += countManifolds((entry as { report?: unknown }).report, depth + 1);
  }
  return n;
}

/**
 * Creates the handler for the introspection routes of `engine`:
 *
 * - `/`: the live page (HTML, its own script and style only, by CSP hash);
 * - `/report`: `formatReport` text; `?format=json` for JSON, `&pretty` to indent;
 * - `/graph.mmd`, `/graph.dot`: `toMermaid`, `toDot`; `/graph.svg`: rendered
 *   with the optional `@viz-js/viz` (501 naming it when it is missing);
 * - `/events`: Server-Sent Events, one JSON event per message with its `id`
 *   as the SSE id; `Last-Event-ID` or `?since=<id>` replays the kept events
 *   after that id (`event: gap` first when some of those are no longer
 *   kept), then `event: replayed` (`{"lastId":N}`); `event: dropped`
 *   (`{"dropped":N}`) when a slow client missed N messages; `event: end`
 *   when the engine's stream ends; 501 without an event stream;
 * - `/chain?name=<manifold>`: the chain of causes of its last start, as JSON
 *   (`text` is the one-line form);
 * - `/metrics`: Prometheus text format.
 *
 * GET and HEAD only (405 otherwise, with `Allow`); unknown paths 404; URLs
 * over 2048 characters 414; bodies over 1 kB gzipped for clients that accept
 * it. Guarantees: never throws; a failing `engine.report()` is a 500 naming
 * it, a worker whose `report()` throws is shown with its error in place (the
 * engine does that); snapshots are shared (see `reportMaxAge`), so however
 * many clients ask, serving reports takes at most about a fifth of the
 * process's time; the engine pays a constant per event whatever the
 * `/events` clients do.
 * @throws TypeError naming the argument or option that is invalid.
 */
export function introspectionHandler(engine: IntrospectableEngine, options?: IntrospectionHandlerOptions): IntrospectionHandler {
  checkHandlerOptions("introspectionHandler(engine, options)", engine, options);
  const settings = (options ?? {}) as Record<string, unknown>;
  const where = "introspectionHandler(engine, options)";
  const token = options?.token;
  const expected = token === undefined ? undefined : digest(token);
  const allowedHosts = options?.allowedHosts === undefined ? undefined : new Set(options.allowedHosts.map((host) => hostName(host)));
  const cache = new ReportCache(engine, wholeNumber(where, settings, "reportMaxAge", 100));
  const hub = new EventHub(engine, {
    history: wholeNumber(where, settings, "eventHistory", 1000),
    clientBuffer: wholeNumber(where, settings, "clientBuffer", 1000),
    keepAlive: wholeNumber(where, settings, "keepAliveInterval", 15_000),
  });
  const svgMax = wholeNumber(where, settings, "svgMaxManifolds", 2000);

  function authorized(req: IncomingMessage): boolean {
    if (expected === undefined) return true;
    const header = req.headers.authorization;
    const match = typeof header === "string" ? /^Bearer +(\S+) *$/i.exec(header) : null;
    // Hashing both sides gives equal lengths, so the comparison time says nothing about the token.
    const given = digest(match?.[1] ?? "");
    return timingSafeEqual(given, expected) && match !== null;
  }

  /**
   * Sends a rendering of the current snapshot, gzipped (once per snapshot,
   * off the main thread) when the client accepts it and the body is large.
   */
  function rendered(req: IncomingMessage, res: ServerResponse, type: string, key: string): void {
    const render = RENDERINGS[key] as (report: EngineReport) => string;
    const body = cache.body(key, render);
    if (body.length < GZIP_MIN || !acceptsGzip(req)) {
      send(res, 200, type, body, { Vary: "Accept-Encoding" });
      return;
    }
    cache.gzipped(key, render).then(
      (compressed) => {
        if (res.destroyed) return;
        res.writeHead(200, {
          ...COMMON_HEADERS,
          "Content-Security-Policy": DATA_CSP,
          Vary: "Accept-Encoding",
          "Content-Type": type,
          "Content-Encoding": "gzip",
          "Content-Length": String(compressed.length),
        });
        res.end(compressed);
      },
      (error: unknown) => {
        if (!res.headersSent && !res.destroyed) send(res, 500, TEXT, `introspection failed: gzip: ${messageOf(error)}\n`);
      },
    );
  }

  function report(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
    const format = query.get("format") ?? "text";
    if (format === "json") {
      rendered(req, res, JSON_TYPE, flag(query, "pretty") ? "json-pretty" : "json");
    } else if (format === "text") {
      rendered(req, res, TEXT, "text");
    } else {
      send(res, 400, TEXT, `unknown format ${JSON.stringify(format.slice(0, 40))}: use ?format=text (the default) or ?format=json\n`);
    }
  }

  function graphSvg(res: ServerResponse, head: boolean): void {
    const snapshot: EngineReport = cache.snapshot();
    const size = countManifolds(snapshot);
    if (size > svgMax) {
      send(res, 413, TEXT, `the graph has ${size} manifolds, more than svgMaxManifolds (${svgMax}) allows for /graph.svg: fetch /graph.dot and render it offline, or raise the option\n`);
      return;
    }
    const dot = cache.body("dot", RENDERINGS["dot"] as (report: EngineReport) => string);
    renderSvg(dot).then(
      (svg) => {
        if (res.destroyed) return;
        send(res, 200, "image/svg+xml; charset=utf-8", head ? "" : svg, { "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'" });
      },
      (error: unknown) => {
        if (res.headersSent || res.destroyed) return;
        if (error instanceof VizMissingError) send(res, 501, TEXT, `${error.message}\n`);
        else send(res, 500, TEXT, `rendering /graph.svg failed: ${messageOf(error)}\n`);
      },
    );
  }

  function chain(res: ServerResponse, query: URLSearchParams): void {
    const name = query.get("name");
    if (name === null || name === "") {
      send(res, 400, TEXT, "/chain needs ?name=<manifold name> (URL-encoded)\n");
      return;
    }
    const events = hub.history;
    const found =
      events.latest(name, (event) => event.type === "started") ??
      events.latest(name, (event) => event.type === "starting") ??
      events.latest(name, () => true);
    if (found === undefined) {
      send(res, 200, JSON_TYPE, `${JSON.stringify({ name, events: [], message: `no event about ${JSON.stringify(name)} among the ${events.size} kept (options.eventHistory)` })}\n`);
      return;
    }
    const causes = events.chain(found);
    const body = {
      name,
      complete: causes.complete,
      ...(causes.cut === undefined ? {} : { cut: causes.cut }),
      text: describeChain(causes),
      lines: causes.events.map(describeAnyEvent),
      events: causes.events,
    };
    send(res, 200, JSON_TYPE, `${JSON.stringify(body, (_key, value: unknown) => (value instanceof Error ? value.message : typeof value === "bigint" ? String(value) : value))}\n`);
  }

  function route(req: IncomingMessage, res: ServerResponse): void {
    if (!authorized(req)) {
      send(res, 401, TEXT, "unauthorized\n", { "WWW-Authenticate": "Bearer" });
      return;
    }
    if (allowedHosts !== undefined && !allowedHosts.has(hostName(req.headers.host ?? ""))) {
      send(res, 403, TEXT, "this Host is not allowed: use the address the server listens on (see options.allowedHosts)\n");
      return;
    }
    const method = req.method ?? "";
    if (method !== "GET" && method !== "HEAD") {
      send(res, 405, TEXT, `method ${method.slice(0, 20)} not allowed: use GET or HEAD\n`, { Allow: "GET, HEAD" });
      return;
    }
    const url = req.url ?? "";
    if (url.length > MAX_URL) {
      send(res, 414, TEXT, `URL longer than ${MAX_URL} characters\n`);
      return;
    }
    const mark = url.indexOf("?");
    const path = mark === -1 ? url : url.slice(0, mark);
    if (!ROUTES.has(path)) {
      send(res, 404, TEXT, "not found: the routes are /, /report, /graph.mmd, /graph.dot, /graph.svg, /events, /chain, /metrics\n");
      return;
    }
    const query = new URLSearchParams(mark === -1 ? "" : url.slice(mark + 1));
    const head = method === "HEAD";
    switch (path) {
      case "/":
        send(res, 200, "text/html; charset=utf-8", pageHtml(eventsProblem()), { "Content-Security-Policy": PAGE_CSP });
        return;
      case "/report":
        report(req, res, query);
        return;
      case "/graph.mmd":
        rendered(req, res, TEXT, "mermaid");
        return;
      case "/graph.dot":
        rendered(req, res, "text/vnd.graphviz; charset=utf-8", "dot");
        return;
      case "/graph.svg":
        graphSvg(res, head);
        return;
      case "/metrics":
        rendered(req, res, METRICS_CONTENT_TYPE, "metrics");
        return;
      case "/chain":
        if (eventsProblem() !== "") send(res, 501, TEXT, `${eventsProblem()}\n`);
        else chain(res, query);
        return;
      case "/events":
        events(req, res, query, head);
        return;
    }
  }

  /** "" when the engine has an event stream, else why not (trying to subscribe if not yet tried). */
  function eventsProblem(): string {
    if (hub.unavailable !== undefined) return hub.unavailable;
    return hub.probe() ? "" : (hub.unavailable ?? "no event stream");
  }

  function events(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, head: boolean): void {
    const problem = eventsProblem();
    if (problem !== "") {
      send(res, 501, TEXT, `${problem}\n`);
      return;
    }
    if (head) {
      res.writeHead(200, { ...COMMON_HEADERS, "Content-Security-Policy": DATA_CSP, "Content-Type": "text/event-stream; charset=utf-8" });
      res.end();
      return;
    }
    const raw = req.headers["last-event-id"] ?? query.get("since") ?? undefined;
    const since = typeof raw === "string" && /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : undefined;
    if (!hub.open(res, since, { ...COMMON_HEADERS, "Content-Security-Policy": DATA_CSP })) {
      send(res, 503, TEXT, "introspection is closing\n");
    }
  }

  const handler = ((req: IncomingMessage, res: ServerResponse): void => {
    try {
      route(req, res);
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      try {
        send(res, 500, TEXT, `introspection failed: ${messageOf(error)}\n`);
      } catch {
        res.destroy();
      }
    }
  }) as IntrospectionHandler;
  Object.defineProperties(handler, {
    close: { value: () => hub.close() },
    eventClients: { get: () => hub.clients },
    reportsTaken: { get: () => cache.reports },
  });
  return handler;
}
