/**
 * manifold-engine/introspect: where the server listens (socket mode, stale
 * and live sockets, abstract sockets, TCP), the routes, and every security
 * and bad-input case of the issue: token, methods, odd paths, long URLs,
 * Host checks, hostile names, a worker whose report throws, 1,000
 * concurrent /report requests on a 10,000-manifold engine.
 */
import parseDot from "dotparser";
import { createServer, request } from "node:http";
import { gunzipSync } from "node:zlib";
import { statSync, writeFileSync, existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { Engine, formatReport, toDot, toMermaid, valueWorker, type EngineReport } from "../src/index.js";
import { introspect, introspectionHandler, type IntrospectionServer } from "../src/introspect/index.js";
import { expectStillWorking, failOnUnhandledRejections, makeEngine, settle, stop, TestWorker } from "./fixtures.js";
import { http, raw, socketDir } from "./introspect-helpers.js";

failOnUnhandledRejections();
const nextSocket = socketDir();

/** Servers and engines to close after each test, whatever it did. */
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const task of cleanup.splice(0).reverse()) await task();
});

async function serve(engine: Engine | { report(): EngineReport }, options: Parameters<typeof introspect>[1] = {}): Promise<IntrospectionServer & { where: { socketPath: string } }> {
  const server = await introspect(engine, { path: nextSocket(), reportMaxAge: 0, ...options });
  cleanup.push(() => server.close());
  return Object.assign(server, { where: { socketPath: server.address } });
}

async function demoEngine(): Promise<{ engine: Engine; flaky: TestWorker }> {
  const { engine } = makeEngine({ errorDelay: 1000 });
  const flaky = new TestWorker("flaky");
  engine.install("config", { inputs: [], start: () => valueWorker({}) });
  engine.install("api-connection", { inputs: ["config"], start: () => flaky });
  engine.install("uploader", { inputs: ["config", "api-connection"], start: () => valueWorker(0) });
  await settle();
  cleanup.push(() => stop(engine));
  return { engine, flaky };
}

// ------------------------------------------------------------------ options

describe("bad arguments: a TypeError naming what is wrong, nothing left listening", () => {
  const engine = { report: () => ({}) as EngineReport };
  const cases: [string, () => unknown, RegExp][] = [
    ["no engine", () => introspect(undefined as never), /engine must be an Engine.*undefined/],
    ["an engine without report()", () => introspect({} as never), /engine must be an Engine/],
    ["options not an object", () => introspect(engine, "x" as never), /options must be an object.*"x"/],
    ["an empty token", () => introspect(engine, { token: "" }), /options.token must be a non-empty string/],
    ["a number as token", () => introspect(engine, { token: 5 as never }), /options.token.*number 5/],
    ["a negative port", () => introspect(engine, { port: -1 }), /options.port must be a whole number from 0 to 65535.*-1/],
    ["a fractional port", () => introspect(engine, { port: 1.5 }), /options.port/],
    ["path and port", () => introspect(engine, { path: "/tmp/x.sock", port: 0 }), /either options.path.*or options.port/],
    ["host without port", () => introspect(engine, { host: "0.0.0.0" }), /options.host only applies to TCP/],
    ["an empty path", () => introspect(engine, { path: "" }), /options.path must be a non-empty socket path/],
    ["a NUL inside the path", () => introspect(engine, { path: "/tmp/a\0b" }), /options.path/],
    ["a negative reportMaxAge", () => introspect(engine, { reportMaxAge: -5 }), /options.reportMaxAge must be a whole number >= 0.*-5/],
    ["a string eventHistory", () => introspectionHandler(engine, { eventHistory: "10" as never }), /introspectionHandler.*options.eventHistory/],
    ["allowedHosts not an array", () => introspectionHandler(engine, { allowedHosts: "localhost" as never }), /options.allowedHosts must be an array/],
  ];
  it.each(cases)("%s", async (_, call, message) => {
    let error: unknown;
    try {
      await call();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(message);
  });
});

// ------------------------------------------------------------------ where it listens

describe("a Unix socket by default", () => {
  it("is created with mode 0600, and close() removes it", async () => {
    const { engine } = await demoEngine();
    const server = await introspect(engine, { path: nextSocket() });
    expect(statSync(server.address).isSocket()).toBe(true);
    expect(statSync(server.address).mode & 0o777).toBe(0o600);
    expect((await http({ socketPath: server.address }, "/report")).status).toBe(200);
    expect(server.port).toBeUndefined();
    const closing = server.close();
    expect(server.close()).toBe(closing);
    await closing;
    expect(existsSync(server.address)).toBe(false);
  });

  it("defaults to a socket named after the process in the temporary directory", async () => {
    const { engine } = await demoEngine();
    await using server = await introspect(engine);
    expect(server.address).toMatch(new RegExp(`manifold-engine-${process.pid}\\.sock$`));
    expect((await http({ socketPath: server.address }, "/report")).status).toBe(200);
  });

  it("replaces a stale socket file left by a dead process", async () => {
    const path = nextSocket();
    // A process killed while listening leaves its socket file behind.
    const child = spawnSync(process.execPath, ["-e", `require("node:net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`]);
    expect(child.signal).toBe("SIGKILL");
    expect(statSync(path).isSocket()).toBe(true);
    const { engine } = await demoEngine();
    const server = await serve(engine, { path });
    expect((await http(server.where, "/report")).status).toBe(200);
  });

  it("refuses a socket another process is listening on, and leaves it alone", async () => {
    const path = nextSocket();
    const live = createServer((_, res) => res.end("other"));
    await new Promise<void>((resolve) => live.listen(path, resolve));
    cleanup.push(() => new Promise((resolve) => live.close(() => resolve())));
    const { engine } = await demoEngine();
    await expect(introspect(engine, { path })).rejects.toThrow(/another process is listening on .*s\d+\.sock; stop it or choose another options.path/);
    expect((await http({ socketPath: path }, "/")).body).toBe("other");
  });

  it("refuses a path that is not a socket, and leaves the file alone", async () => {
    const path = nextSocket();
    writeFileSync(path, "precious");
    const { engine } = await demoEngine();
    await expect(introspect(engine, { path })).rejects.toThrow(/exists and is not a socket; remove it or choose another options.path/);
    expect(statSync(path).isFile()).toBe(true);
  });

  it("rejects with the address and a hint when it cannot listen (no such directory)", async () => {
    const { engine } = await demoEngine();
    await expect(introspect(engine, { path: "/nonexistent-dir/x.sock" })).rejects.toThrow(/cannot listen on \/nonexistent-dir\/x\.sock/);
  });

  it.runIf(process.platform === "linux")("serves on a Linux abstract socket, with no file", async () => {
    const { engine } = await demoEngine();
    const name = `\0manifold-engine-test-${process.pid}-${Date.now()}`;
    const server = await introspect(engine, { path: name });
    expect(server.address).toBe(name);
    expect((await http({ socketPath: name }, "/report")).body).toContain("api-connection");
    await server.close();
    await expect(http({ socketPath: name }, "/report")).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe("TCP when a port is given", () => {
  it("listens on 127.0.0.1 and accepts only loopback names in Host (DNS rebinding)", async () => {
    const { engine } = await demoEngine();
    const server = await introspect(engine, { port: 0 });
    cleanup.push(() => server.close());
    expect(server.address).toBe(`http://127.0.0.1:${server.port}/`);
    const where = { port: server.port as number };
    expect((await http(where, "/report", { headers: { Host: `127.0.0.1:${server.port}` } })).status).toBe(200);
    expect((await http(where, "/report", { headers: { Host: `localhost:${server.port}` } })).status).toBe(200);
    const rebound = await http(where, "/report", { headers: { Host: `evil.example:${server.port}` } });
    expect(rebound.status).toBe(403);
    expect(rebound.body).not.toContain("api-connection");
  });

  it("takes allowedHosts when the operator names the host", async () => {
    const { engine } = await demoEngine();
    const server = await introspect(engine, { port: 0, allowedHosts: ["agent.internal"] });
    cleanup.push(() => server.close());
    const where = { port: server.port as number };
    expect((await http(where, "/report", { headers: { Host: "agent.internal:1" } })).status).toBe(200);
    expect((await http(where, "/report", { headers: { Host: "localhost" } })).status).toBe(403);
  });

  it("rejects naming the address when the port is taken", async () => {
    const { engine } = await demoEngine();
    const first = await introspect(engine, { port: 0 });
    cleanup.push(() => first.close());
    await expect(introspect(engine, { port: first.port as number })).rejects.toThrow(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port}.*in use`));
  });
});

// ------------------------------------------------------------------ the routes

describe("routes", () => {
  it("/report is formatReport's text; ?format=json the report; &pretty indented; other formats 400", async () => {
    const { engine } = await demoEngine();
    const { where } = await serve(engine);
    const text = await http(where, "/report");
    expect(text.status).toBe(200);
    expect(text.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(text.body).toBe(`${formatReport(engine.report())}\n`);
    const json = await http(where, "/report?format=json");
    expect(json.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(JSON.parse(json.body)).toEqual(JSON.parse(JSON.stringify(engine.report())));
    expect(json.body.split("\n")).toHaveLength(2);
    const pretty = await http(where, "/report?format=json&pretty");
    expect(pretty.body).toContain('\n  "state": "started"');
    expect(JSON.parse(pretty.body).startedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const bad = await http(where, "/report?format=yaml");
    expect(bad.status).toBe(400);
    expect(bad.body).toMatch(/unknown format "yaml": use \?format=text.*or \?format=json/);
  });

  it("/graph.mmd and /graph.dot are toMermaid and toDot; the DOT parses", async () => {
    const { engine } = await demoEngine();
    const { where } = await serve(engine);
    const mmd = await http(where, "/graph.mmd");
    expect(mmd.body).toBe(`${toMermaid(engine.report())}\n`);
    const dot = await http(where, "/graph.dot");
    expect(dot.headers["content-type"]).toBe("text/vnd.graphviz; charset=utf-8");
    expect(dot.body).toBe(`${toDot(engine.report())}\n`);
    expect(() => parseDot(dot.body)).not.toThrow();
  });

  it("/graph.svg renders the graph offline, names escaped; refuses graphs over svgMaxManifolds", async () => {
    const { engine } = await demoEngine();
    engine.install("<script>alert(1)</script>", { inputs: ["config"], start: () => valueWorker(0) });
    await settle();
    const { where } = await serve(engine);
    const svg = await http(where, "/graph.svg");
    expect(svg.status).toBe(200);
    expect(svg.headers["content-type"]).toBe("image/svg+xml; charset=utf-8");
    expect(svg.headers["content-security-policy"]).toContain("default-src 'none'");
    expect(svg.body).toMatch(/^<\?xml|<svg/);
    expect(svg.body).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(svg.body).not.toContain("<script");
    const head = await http(where, "/graph.svg", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    const small = await serve(engine, { svgMaxManifolds: 2 });
    const refused = await http(small.where, "/graph.svg");
    expect(refused.status).toBe(413);
    expect(refused.body).toMatch(/has 4 manifolds, more than svgMaxManifolds \(2\).*fetch \/graph\.dot/);
  });

  it("/metrics is the Prometheus text format, from the report's bookkeeping", async () => {
    const { engine, flaky } = await demoEngine();
    flaky.fail(new Error("connection reset"));
    await settle();
    const { where } = await serve(engine);
    const metrics = await http(where, "/metrics");
    expect(metrics.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    const lines = metrics.body.trimEnd().split("\n");
    const families = new Set<string>();
    for (const line of lines) {
      if (line.startsWith("# HELP ")) continue;
      const type = /^# TYPE (\w+) (gauge|counter)$/.exec(line);
      if (type) {
        expect(families.has(type[1] as string), `one TYPE line for ${type[1]}`).toBe(false);
        families.add(type[1] as string);
        continue;
      }
      expect(line).toMatch(/^[a-z_]+\{([a-z_]+="(?:[^"\\\n]|\\["\\n])*",?)*\} -?\d+(\.\d+)?(e[+-]?\d+)?$/);
    }
    const report = engine.report();
    expect(lines).toContain(`manifold_engine_starts_total{engine=""} ${report.totals.starts}`);
    expect(lines).toContain(`manifold_engine_failures_total{engine=""} ${report.totals.failures}`);
    expect(lines).toContain('manifold_engine_manifolds{engine="",state="started"} 2');
    expect(lines).toContain('manifold_engine_manifolds{engine="",state="starting"} 1');
    expect(lines).toContain('manifold_engine_manifold_failures_total{engine="",manifold="api-connection"} 1');
    expect(lines).toContain('manifold_engine_manifold_error{engine="",manifold="api-connection"} 1');
    expect(lines).toContain('manifold_engine_manifold_state{engine="",manifold="api-connection",state="starting"} 1');
    expect(lines).toContain('manifold_engine_up{engine=""} 1');
  });

  it("/metrics escapes label values and includes nested engines under their path", async () => {
    const { engine, clock } = makeEngine();
    cleanup.push(() => stop(engine));
    const child = new Engine({ clock });
    child.install('in"ner\\name\nx', { inputs: [], start: () => valueWorker(0) });
    engine.install("outer", { inputs: [], start: () => child });
    await settle();
    const { where } = await serve(engine);
    const lines = (await http(where, "/metrics")).body.split("\n");
    expect(lines).toContain('manifold_engine_manifold_starts_total{engine="outer",manifold="in\\"ner\\\\name\\nx"} 1');
    expect(lines).toContain('manifold_engine_up{engine="outer"} 1');
  });

  it("HEAD answers the headers of GET with no body", async () => {
    const { engine } = await demoEngine();
    const { where } = await serve(engine);
    const get = await http(where, "/report");
    const head = await http(where, "/report", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    expect(head.headers["content-length"]).toBe(get.headers["content-length"]);
  });

  it("every response says Cache-Control: no-store, nosniff, no framing", async () => {
    const { engine } = await demoEngine();
    const { where } = await serve(engine, { token: "t" });
    for (const [path, headers] of [
      ["/", { Authorization: "Bearer t" }],
      ["/report", { Authorization: "Bearer t" }],
      ["/metrics", { Authorization: "Bearer t" }],
      ["/nope", { Authorization: "Bearer t" }],
      ["/report", {}],
    ] as const) {
      const res = await http(where, path, { headers });
      expect(res.headers["cache-control"], path).toBe("no-store");
      expect(res.headers["x-content-type-options"], path).toBe("nosniff");
      expect(res.headers["x-frame-options"], path).toBe("DENY");
    }
  });
});

// ------------------------------------------------------------------ security and bad input

describe("the token", () => {
  it("401 with no detail for a missing, wrong, prefixed, longer or differently cased token, on every path", async () => {
    const { engine } = await demoEngine();
    const { where } = await serve(engine, { token: "s3cret-token" });
    const bad = [
      {},
      { Authorization: "" },
      { Authorization: "Bearer" },
      { Authorization: "Bearer " },
      { Authorization: "Bearer wrong" },
      { Authorization: "Bearer s3cret" },
      { Authorization: "Bearer s3cret-token-and-more" },
      { Authorization: "Bearer S3CRET-TOKEN" },
      { Authorization: "Basic s3cret-token" },
      { Authorization: "s3cret-token" },
      { Authorization: "Bearer s3cret-token extra" },
    ];
    for (const headers of bad) {
      for (const path of ["/report", "/events", "/nope", "//report", "/"]) {
        const res = await http(where, path, { headers });
        expect(res.status, `${JSON.stringify(headers)} ${path}`).toBe(401);
        expect(res.body).toBe("unauthorized\n");
        expect(res.headers["www-authenticate"]).toBe("Bearer");
      }
    }
    // Not even the method is checked before the token.
    expect((await http(where, "/report", { method: "DELETE" })).status).toBe(401);
    const good = await http(where, "/report", { headers: { Authorization: "Bearer s3cret-token" } });
    expect(good.status).toBe(200);
    expect((await http(where, "/report", { headers: { Authorization: "bearer s3cret-token" } })).status).toBe(200);
  });
});

describe("methods other than GET and HEAD", () => {
  it.each(["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"])("%s: 405 with Allow", async (method) => {
    const { engine } = await demoEngine();
    const { where } = await serve(engine);
    const res = await http(where, "/report", { method });
    expect(res.status).toBe(405);
    expect(res.headers["allow"]).toBe("GET, HEAD");
  });
});

describe("odd paths and long URLs: 404 or 414, never a crash", () => {
  it("answers each, and keeps answering", async () => {
    const { engine } = await demoEngine();
    const { where } = await serve(engine);
    const paths = [
      "/..%2f",
      "/..%2freport",
      "/%2e%2e/report",
      "//report",
      "///",
      "/report/",
      "/REPORT",
      "/./report",
      "/report/../report",
      "/report%00",
      "/report;x",
      "/%",
      "/%zz",
      "/report#x",
      "/\u00e9",
      "/index.html",
      "/graph",
      "/events/",
      "*",
    ];
    for (const path of paths) {
      const res = await http(where, encodeURI(path) === path || path.includes("%") ? path : encodeURI(path));
      expect(res.status, path).toBe(404);
      expect(res.body).not.toContain("api-connection");
    }
    expect((await http(where, `/report?${"x".repeat(5000)}`)).status).toBe(414);
    expect((await http(where, `/${"a".repeat(3000)}`)).status).toBe(414);
    // Beyond Node's header limit (16 KiB) Node itself answers 431 and closes: still no crash.
    const huge = await raw(where.socketPath, `GET /${"a".repeat(100_000)} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 431/);
    // An absolute-form target is not a path of ours either.
    expect(await raw(where.socketPath, "GET http://localhost/report HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")).toMatch(/^HTTP\/1\.1 404/);
    // Garbage instead of HTTP.
    expect(await raw(where.socketPath, "\u0000\u0001 not http\r\n\r\n")).toMatch(/^HTTP\/1\.1 400/);
    expect((await http(where, "/report")).status).toBe(200);
  });
});

describe("what the report holds", () => {
  it("a worker whose report() throws is shown with its error in place; the rest is served", async () => {
    const { engine } = await demoEngine();
    engine.install("broken-reporter", {
      inputs: [],
      start: () =>
        Object.assign(valueWorker(0), {
          report: () => {
            throw new Error("report() exploded");
          },
        }),
    });
    await settle();
    const { where } = await serve(engine);
    const text = await http(where, "/report");
    expect(text.status).toBe(200);
    expect(text.body).toMatch(/broken-reporter\s+started.*report \{"error":"report\(\) exploded"\}/);
    expect(text.body).toContain("api-connection");
    const json = JSON.parse((await http(where, "/report?format=json")).body) as EngineReport;
    expect(json.manifolds["broken-reporter"]?.report).toEqual({ error: "report() exploded" });
  });

  it("an engine whose report() throws: 500 naming the error, and the server keeps going", async () => {
    let fail = true;
    const { engine } = await demoEngine();
    const fragile = {
      report: (): EngineReport => {
        if (fail) throw new Error("report is broken");
        return engine.report();
      },
    };
    const { where } = await serve(fragile);
    const res = await http(where, "/report");
    expect(res.status).toBe(500);
    expect(res.body).toBe("introspection failed: report is broken\n");
    fail = false;
    expect((await http(where, "/report")).status).toBe(200);
  });

  it("a slow report() is paid once by all the requests that arrive meanwhile", async () => {
    const { engine } = await demoEngine();
    let calls = 0;
    const slow = {
      report: (): EngineReport => {
        calls++;
        const until = Date.now() + 100; // a worker report() that blocks: the process can do nothing else meanwhile
        while (Date.now() < until);
        return engine.report();
      },
    };
    const { where, handler } = await serve(slow, { reportMaxAge: 60_000 });
    const answers = await Promise.all(Array.from({ length: 20 }, () => http(where, "/report")));
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(calls).toBe(1);
    expect(handler.reportsTaken).toBe(1);
  });

  it("manifold names with HTML and JS in them never reach the page's HTML (it fetches them as data)", async () => {
    const { engine } = await demoEngine();
    engine.install('<img src=x onerror="alert(1)">', { inputs: [], start: () => valueWorker(0) });
    engine.install("</script><script>alert(2)</script>", { inputs: [], start: () => valueWorker(0) });
    await settle();
    const { where } = await serve(engine);
    const page = await http(where, "/");
    expect(page.status).toBe(200);
    expect(page.body).not.toContain("<img");
    expect(page.body).not.toContain("alert(");
    expect(page.body.match(/<script>/g)).toHaveLength(1);
  });
});

describe("the page", () => {
  it("is self-contained: one inline script and style allowed by hash, nothing fetched from elsewhere", async () => {
    const { createHash } = await import("node:crypto");
    const { engine } = await demoEngine();
    const { where } = await serve(engine);
    const page = await http(where, "/");
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    const csp = page.headers["content-security-policy"] as string;
    const script = /<script>([\s\S]*)<\/script>/.exec(page.body)?.[1] as string;
    const style = /<style>([\s\S]*)<\/style>/.exec(page.body)?.[1] as string;
    const hash = (text: string): string => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
    expect(csp).toContain(`script-src ${hash(script)}`);
    expect(csp).toContain(`style-src ${hash(style)}`);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain("unsafe");
    expect(page.body).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(page.body).not.toMatch(/@import|url\((?!#)/);
  });

  it("tells the page, escaped, why there is no event stream", async () => {
    const { engine } = await demoEngine();
    const { where } = await serve({
      report: () => engine.report(),
      get events(): never {
        throw new Error('rxjs is missing: npm install rxjs "<now>" & retry');
      },
    });
    const page = await http(where, "/");
    expect(page.body).toContain('data-events-problem="rxjs is missing: npm install rxjs &quot;&lt;now&gt;&quot; &amp; retry"');
  });
});

describe("mounted on the user's own server", () => {
  it("serves the same routes through introspectionHandler, under a prefix too", async () => {
    const { engine } = await demoEngine();
    const handler = introspectionHandler(engine);
    const path = nextSocket();
    const server = createServer((req, res) => {
      // What a framework's router does for a handler mounted at /debug/engine/.
      if (req.url?.startsWith("/debug/engine/")) {
        req.url = req.url.slice("/debug/engine".length);
        handler(req, res);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    cleanup.push(async () => {
      handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const where = { socketPath: path };
    expect((await http(where, "/debug/engine/report")).body).toContain("api-connection");
    expect((await http(where, "/debug/engine/")).body).toContain("<!doctype html>");
    expect((await http(where, "/report")).status).toBe(404);
  });
});

/** GET with Accept-Encoding: gzip, keeping the body as bytes. */
function fetchBuffer(socketPath: string, path: string): Promise<{ status: number; encoding: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, agent: false, headers: { Host: "localhost", "Accept-Encoding": "gzip" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, encoding: res.headers["content-encoding"], body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("gzip", () => {
  it("compresses large bodies for clients that accept it, and only for them", async () => {
    const { engine } = await demoEngine();
    for (let i = 0; i < 50; i++) engine.install(`extra-${i}`, { inputs: ["config"], start: () => valueWorker(i) });
    await settle();
    const { where } = await serve(engine);
    const zipped = await fetchBuffer(where.socketPath, "/report?format=json");
    expect(zipped.encoding).toBe("gzip");
    expect(JSON.parse(gunzipSync(zipped.body).toString("utf8"))).toEqual(JSON.parse(JSON.stringify(engine.report())));
    const plain = await http(where, "/report?format=json", { headers: { "Accept-Encoding": "gzip;q=0, br" } });
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.headers["vary"]).toBe("Accept-Encoding");
  });
});

describe("load", () => {
  it("1,000 concurrent /report requests on a 10,000-manifold engine: all answered, the engine unaffected", async () => {
    const { engine } = makeEngine();
    cleanup.push(() => stop(engine));
    const manifolds: Record<string, { inputs: string[]; start: () => ReturnType<typeof valueWorker> }> = {};
    for (let i = 0; i < 10_000; i++) manifolds[`m${i}`] = { inputs: i < 10 ? [] : [`m${i % 10}`, `m${Math.floor(i / 2)}`].filter((n, k, all) => all.indexOf(n) === k && n !== `m${i}`), start: () => valueWorker(i) };
    engine.installAll(manifolds);
    await settle();
    const before = engine.report();
    expect(before.counts.started).toBe(10_000);
    const { where, handler } = await serve(engine, { reportMaxAge: 100 });
    // Clients that accept gzip, as browsers and curl --compressed do: the body is compressed once per snapshot.
    const answers = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => fetchBuffer(where.socketPath, i % 2 === 0 ? "/report" : "/report?format=json")),
    );
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(1000);
    expect(answers.every((answer) => answer.encoding === "gzip")).toBe(true);
    expect(gunzipSync(answers[0]?.body as Buffer).toString("utf8").split("\n")).toHaveLength(10_002);
    expect(Object.keys((JSON.parse(gunzipSync(answers[1]?.body as Buffer).toString("utf8")) as EngineReport).manifolds)).toHaveLength(10_000);
    // However many asked, snapshots were shared: each serves a window of at least four times its cost.
    expect(handler.reportsTaken).toBeLessThan(200);
    const after = engine.report();
    expect(after.counts).toEqual(before.counts);
    expect(after.totals).toEqual(before.totals);
    await expectStillWorking(engine);
  });
});
