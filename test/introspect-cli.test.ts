/**
 * `manifold-engine report <target>`: run in-process against real servers
 * (socket, abstract socket, TCP URL with a mount prefix), with --json,
 * --graph, --watch (following /events, and polling when there are none),
 * tokens, and the errors an operator meets; plus the executable itself once.
 */
import { execFile } from "node:child_process";
import { createServer } from "node:http";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { formatReport, toDot, toMermaid } from "../src/index.js";
import { runCli, USAGE } from "../src/introspect/cli.js";
import { introspect, introspectionHandler, type IntrospectionServer } from "../src/introspect/index.js";
import { failOnUnhandledRejections, makeEngine, settle, stop, TestWorker, valueManifold } from "./fixtures.js";
import { Collector, socketDir } from "./introspect-helpers.js";

failOnUnhandledRejections();
const nextSocket = socketDir();
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const task of cleanup.splice(0).reverse()) await task();
});

async function setup(options: Parameters<typeof introspect>[1] = {}) {
  const { engine, clock } = makeEngine({ errorDelay: 1000 });
  const api = new TestWorker("api");
  engine.install("config", valueManifold({}));
  engine.install("api", { inputs: ["config"], start: () => api });
  await settle();
  const server: IntrospectionServer = await introspect(engine, { path: nextSocket(), reportMaxAge: 0, ...options });
  cleanup.push(async () => {
    await server.close();
    if (engine.report().state !== "stopped") await stop(engine);
  });
  return { engine, clock, api, server };
}

async function cli(args: string[], env: Record<string, string> = {}, signal?: AbortSignal): Promise<{ code: number; out: string; err: string }> {
  const stdout = new Collector();
  const stderr = new Collector();
  const code = await runCli(args, { stdout, stderr, env, signal });
  return { code, out: stdout.text, err: stderr.text };
}

describe("manifold-engine report", () => {
  it("prints the text report from a socket", async () => {
    const { engine, server } = await setup();
    const { code, out, err } = await cli(["report", server.address]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(out).toBe(`${formatReport(engine.report())}\n`);
  });

  it("--json, --json --pretty, --graph mmd, --graph dot", async () => {
    const { engine, server } = await setup();
    const json = await cli(["report", server.address, "--json"]);
    expect(JSON.parse(json.out)).toEqual(JSON.parse(JSON.stringify(engine.report())));
    expect((await cli(["report", "--json", "--pretty", server.address])).out).toContain('\n  "manifolds": {');
    expect((await cli(["report", server.address, "--graph", "mmd"])).out).toBe(`${toMermaid(engine.report())}\n`);
    expect((await cli(["report", server.address, "--graph=dot"])).out).toBe(`${toDot(engine.report())}\n`);
  });

  it.runIf(process.platform === "linux")("reads an abstract socket given as @name", async () => {
    const name = `manifold-engine-cli-${process.pid}-${Date.now()}`;
    await setup({ path: `\0${name}` });
    const { code, out } = await cli(["report", `@${name}`]);
    expect(code).toBe(0);
    expect(out).toContain("config");
  });

  it("reads an http:// URL, the handler mounted under a prefix", async () => {
    const { engine } = makeEngine();
    engine.install("remote-worker", valueManifold(1));
    await settle();
    const handler = introspectionHandler(engine);
    const server = createServer((req, res) => {
      if (req.url?.startsWith("/ops/engine/")) {
        req.url = req.url.slice("/ops/engine".length);
        handler(req, res);
      } else res.writeHead(404).end("wrong prefix");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanup.push(async () => {
      handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await stop(engine);
    });
    const port = (server.address() as { port: number }).port;
    const { code, out } = await cli(["report", `http://127.0.0.1:${port}/ops/engine`]);
    expect(code).toBe(0);
    expect(out).toContain("remote-worker");
  });

  it("sends the token from --token or MANIFOLD_ENGINE_TOKEN, and says what to do without it", async () => {
    const { server } = await setup({ token: "t0ken" });
    const refused = await cli(["report", server.address]);
    expect(refused.code).toBe(1);
    expect(refused.err).toBe(`manifold-engine: ${server.address} asks for a token: pass --token or set MANIFOLD_ENGINE_TOKEN\n`);
    expect((await cli(["report", server.address, "--token", "t0ken"])).code).toBe(0);
    expect((await cli(["report", server.address], { MANIFOLD_ENGINE_TOKEN: "t0ken" })).code).toBe(0);
    expect((await cli(["report", server.address, "--token=wrong"], { MANIFOLD_ENGINE_TOKEN: "t0ken" })).code).toBe(1);
  });

  it("exit 1 naming the socket when nothing listens there", async () => {
    const path = nextSocket();
    const { code, out, err } = await cli(["report", path]);
    expect({ code, out }).toEqual({ code: 1, out: "" });
    expect(err).toBe(`manifold-engine: cannot connect to ${path}: no such socket (is the process running, with introspection on?)\n`);
    const refused = await cli(["report", "http://127.0.0.1:1/"]);
    expect(refused.err).toMatch(/cannot connect to http:\/\/127\.0\.0\.1:1\/: connection refused/);
  });

  it.each([
    [[], 0, /^usage: manifold-engine report <target>/],
    [["--help"], 0, /^usage:/],
    [["status", "/x.sock"], 2, /unknown command "status": the command is "report"/],
    [["report"], 2, /missing <target>/],
    [["report", "/a", "/b"], 2, /one target only/],
    [["report", "/a", "--graph", "svg"], 2, /--graph must be mmd or dot \(got "svg"\)/],
    [["report", "/a", "--graph"], 2, /--graph needs a value/],
    [["report", "/a", "--json", "--graph", "dot"], 2, /--json and --graph do not go together/],
    [["report", "/a", "--interval", "10"], 2, /--interval must be a whole number of milliseconds >= 100/],
    [["report", "/a", "--verbose"], 2, /unknown option "--verbose"/],
    [["report", "http://[bad"], 2, /is not a valid URL/],
  ] as const)("usage: %j exits %i", async (args, expected, message) => {
    const { code, out, err } = await cli([...args]);
    expect(code).toBe(expected);
    expect(expected === 0 ? out : err).toMatch(message);
    if (expected === 2) expect(err).toContain(USAGE);
  });
});

describe("manifold-engine report --watch", () => {
  it("reprints when the report changes, and exits 0 when the engine stops", async () => {
    const { engine, clock, api, server } = await setup();
    const stdout = new Collector();
    const stderr = new Collector();
    const running = runCli(["report", server.address, "--watch"], { stdout, stderr, env: {} });
    await stdout.until((text) => text.includes("api "));
    const printed = (): number => stdout.text.split("--- ").length - 1;
    expect(printed()).toBe(1);
    api.fail(new Error("connection reset"));
    await settle();
    await stdout.until((text) => text.includes("error: connection reset"));
    expect(printed()).toBe(2);
    engine.kill();
    await clock.runAll();
    await engine.wait();
    expect(await running).toBe(0);
    expect(stdout.text).toMatch(/engine stopped · 2 manifolds \(2 stopped\)/);
    expect(stderr.text).toBe("manifold-engine: the event stream ended (engine stopped or server closed)\n");
  });

  it("clears the screen between reports on a terminal", async () => {
    const { api, server } = await setup();
    const stdout = new Collector();
    stdout.isTTY = true;
    const interrupt = new AbortController();
    const running = runCli(["report", server.address, "--watch"], { stdout, stderr: new Collector(), env: {}, signal: interrupt.signal });
    await stdout.until((text) => text.includes("api "));
    api.fail(new Error("gone"));
    await settle();
    await stdout.until((text) => text.includes("error: gone"));
    interrupt.abort();
    expect(await running).toBe(0);
    expect(stdout.text.startsWith("\u001b[H\u001b[2J")).toBe(true);
    expect(stdout.text.split("\u001b[H\u001b[2J")).toHaveLength(3);
  });

  it("polls when the engine has no event stream, until interrupted", async () => {
    const { engine } = makeEngine();
    cleanup.push(() => stop(engine));
    const worker = new TestWorker("w");
    engine.install("polled", { inputs: [], start: () => worker });
    await settle();
    const server = await introspect({ report: () => engine.report() }, { path: nextSocket(), reportMaxAge: 0 });
    cleanup.push(() => server.close());
    const stdout = new Collector();
    const interrupt = new AbortController();
    const running = runCli(["report", server.address, "--watch", "--interval", "100"], { stdout, stderr: new Collector(), env: {}, signal: interrupt.signal });
    await stdout.until((text) => text.includes("polled"));
    worker.fail(new Error("polled failure"));
    await settle();
    await stdout.until((text) => text.includes("error: polled failure"));
    interrupt.abort();
    expect(await running).toBe(0);
  });

  it("exits 1 when the server goes away mid-watch", async () => {
    const { api, server } = await setup();
    const stdout = new Collector();
    const stderr = new Collector();
    const running = runCli(["report", server.address, "--watch"], { stdout, stderr, env: {} });
    await stdout.until((text) => text.includes("api "));
    await server.close();
    // The stream ends with the server, and the reprint it asks for cannot connect: exit 1, naming the socket.
    expect(await running).toBe(1);
    expect(stderr.text).toBe(`manifold-engine: cannot connect to ${server.address}: no such socket (is the process running, with introspection on?)\n`);
  });
});

describe("the executable", () => {
  it("runs as a command: prints the report and exits 0; bad usage exits 2", async () => {
    const { server } = await setup();
    const run = promisify(execFile);
    const tsx = ["--import", "tsx", "src/cli.ts"];
    const { stdout } = await run(process.execPath, [...tsx, "report", server.address]);
    expect(stdout).toMatch(/^engine started · 2 manifolds/);
    await expect(run(process.execPath, [...tsx, "report"])).rejects.toMatchObject({ code: 2 });
  });
});
