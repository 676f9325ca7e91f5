/**
 * The introspection page in a real browser: Debian's Chromium driven by
 * playwright-core (never a downloaded browser; .ci/run installs the
 * `chromium` package when it is missing). The page loads with no console
 * error and shows every manifold in its state; a failing worker shows within
 * a second without a reload; the filter filters; clicking a manifold shows
 * its cause chain; hostile names stay text and an injected script does not
 * run (CSP). A screenshot is kept in artifacts/ (gitignored; CI keeps it).
 * Predicates that run in the page are functions, never strings: Playwright
 * compiles a string with `new Function`, which the page's CSP forbids.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createWorker, type Engine, type Worker } from "../src/index.js";
import { introspect, type IntrospectionServer } from "../src/introspect/index.js";
import { failOnUnhandledRejections, makeEngine, settle, stop, TestWorker, type TestClock } from "./fixtures.js";

/** The little of the DOM the page functions below use (this suite's TypeScript has no DOM library). */
interface PageNode {
  readonly textContent: string | null;
}
declare const document: {
  getElementById(id: string): PageNode | null;
  querySelector(selector: string): PageNode | null;
  querySelectorAll(selector: string): { readonly length: number };
};

const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const ARTIFACTS = join(import.meta.dirname, "..", "artifacts");

failOnUnhandledRejections();

const HOSTILE = ['<img src=x onerror="window.pwned=1">', "</script><script>window.pwned=2</script>", "quote\"and'apostrophe"];

/** A worker that runs until killed. */
const idle = (): Worker => createWorker((signal) => new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve())));

/** The demo agent's graph, on a fake clock, with the API connection under the test's control. */
async function demo(): Promise<{ engine: Engine; clock: TestClock; connections: TestWorker[] }> {
  const { engine, clock } = makeEngine({ errorDelay: 3000, backoffFactor: 0, bounceDelay: 150 });
  const connections: TestWorker[] = [];
  engine.install("config", { inputs: [], start: () => idle(), output: () => ({ apiAddress: "api.example.net:17070" }) });
  engine.install("api-connection", {
    inputs: ["config"],
    start: () => {
      const worker = new TestWorker(`connection #${connections.length + 1}`);
      connections.push(worker);
      return Object.assign(worker, { report: () => ({ id: connections.length, calls: 12 }) });
    },
  });
  for (const name of ["uploader", "status-reporter", "log-shipper"]) {
    engine.install(name, { inputs: name === "log-shipper" ? ["config", "api-connection", "disk"] : ["config", "api-connection"], start: () => idle() });
  }
  await settle();
  await clock.advance(1000);
  return { engine, clock, connections };
}

describe.skipIf(!existsSync(CHROMIUM))("the introspection page in Chromium", () => {
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let errors: string[];
  let engine: Engine;
  let clock: TestClock;
  let connections: TestWorker[];
  let server: IntrospectionServer;

  beforeAll(async () => {
    // launch() gives the browser a fresh temporary profile (--user-data-dir) of its own, removed on close.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
  });

  beforeEach(async () => {
    ({ engine, clock, connections } = await demo());
    server = await introspect(engine, { port: 0 });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    errors = [];
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    page.on("pageerror", (error) => errors.push(String(error)));
    page.on("dialog", (dialog) => {
      errors.push(`dialog: ${dialog.message()}`);
      void dialog.dismiss();
    });
  });

  afterEach(async () => {
    await context.close();
    await server.close();
    await stop(engine);
  });

  async function load(): Promise<void> {
    await page.goto(server.address);
    await page.waitForSelector("body[data-ready=true]");
    await page.waitForFunction(() => document.getElementById("live")?.textContent === "live");
  }

  /** The state each node of the drawn graph shows, by manifold name. */
  function shownStates(): Promise<Record<string, string>> {
    return page.$$eval("#graph g.node", (nodes) => Object.fromEntries(nodes.map((node) => [node.getAttribute("data-name") ?? "", node.getAttribute("data-state") ?? ""])));
  }

  it("loads with no console error and shows every manifold in its state", async () => {
    await load();
    const expected = Object.fromEntries(Object.entries(engine.report().manifolds).map(([name, entry]) => [name, entry.state]));
    expect(await shownStates()).toEqual(expected);
    expect(await page.$$eval("#rows tr", (rows) => rows.map((row) => row.getAttribute("data-name")))).toEqual(Object.keys(expected));
    expect(await page.textContent("#engine-state")).toBe("engine started");
    expect(errors).toEqual([]);
  });

  it("shows a failing worker within a second, without a reload", async () => {
    await load();
    let navigations = 0;
    page.on("framenavigated", () => navigations++);
    const failed = performance.now();
    connections[0]?.fail(new Error("api.example.net:17070: connection #1 reset by peer"));
    await settle();
    // How long the live update took is measured and kept (artifacts/page-update-ms.txt, and
    // bench/introspect.ts); the test asserts only that it comes without a reload, since a
    // timed assertion fails on a loaded CI machine (a second is the target, met on a quiet one).
    await page.waitForSelector('#graph g.node.failed[data-name="api-connection"][data-state="starting"]', { timeout: 10_000 });
    const updateMs = performance.now() - failed;
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(ARTIFACTS, "page-update-ms.txt"), `${Math.round(updateMs)}\n`);
    expect(await page.textContent('#rows tr[data-name="api-connection"] td.error')).toBe("api.example.net:17070: connection #1 reset by peer");
    expect(navigations).toBe(0);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.click('#graph g.node[data-name="api-connection"]');
    await page.waitForSelector("#chain .chain-line");
    // The refetched report follows the events: totals and recent failures included.
    await page.waitForFunction(() => document.getElementById("summary")?.textContent?.includes("failures 1") === true);
    await page.waitForSelector("#detail-failures li");
    await page.screenshot({ path: join(ARTIFACTS, "introspect-failing.png") });
    // And back: the connection restarts after errorDelay, its dependents are bounced and restart.
    await clock.advance(3000);
    await clock.advance(150);
    await page.waitForSelector('#graph g.node[data-name="api-connection"][data-state="started"]:not(.failed)', { timeout: 10_000 });
    expect(errors).toEqual([]);
  });

  it("filters by name, state or error", async () => {
    await load();
    await page.fill("#filter", "upl");
    await page.waitForFunction(() => document.querySelectorAll("#graph g.node").length === 1);
    expect(Object.keys(await shownStates())).toEqual(["uploader"]);
    expect(await page.$$eval("#rows tr", (rows) => rows.length)).toBe(1);
    await page.fill("#filter", "STARTED");
    await page.waitForFunction(() => document.querySelectorAll("#graph g.node").length === 5);
    await page.fill("#filter", "no such manifold");
    await page.waitForSelector("#graph p.note");
    expect(await page.textContent("#graph")).toBe("No manifold matches.");
    await page.fill("#filter", "");
    await page.waitForFunction(() => document.querySelectorAll("#graph g.node").length === 5);
  });

  it("clicking a manifold shows its report and the chain of causes of its last restart", async () => {
    await load();
    connections[0]?.fail(new Error("connection reset by peer"));
    await settle();
    await clock.advance(3000);
    await clock.advance(150);
    await page.waitForSelector('#graph g.node[data-name="uploader"][data-state="started"]');
    await page.waitForFunction(() => document.querySelector('#rows tr[data-name="uploader"] td:nth-child(3)')?.textContent === "3");
    await page.click('#graph g.node[data-name="uploader"]');
    await page.waitForFunction(() => document.querySelector("#chain .chain-line")?.textContent?.includes("stopped api-connection") === true);
    expect(await page.textContent("#detail-name")).toBe("uploader");
    const chain = (await page.textContent("#chain .chain-line")) as string;
    expect(chain).toMatch(/^started uploader \(#3\) <- starting uploader <- .*bounced uploader \(input api-connection\) <- started api-connection \(#2\) <- .*<- stopped api-connection \(error: connection reset by peer\)$/);
    expect(await page.$$eval("#chain ol li", (items) => items.length)).toBe(chain.split(" <- ").length);
    await page.click('#rows tr[data-name="api-connection"]');
    await page.waitForFunction(() => document.getElementById("detail-name")?.textContent === "api-connection");
    // The detail fills in from a fetch of the report: wait for it rather than read it at once.
    await page.waitForFunction(() => document.getElementById("detail-failures")?.textContent?.includes("connection reset by peer") === true);
    expect(await page.textContent("#detail-report")).toContain('"calls": 12');
    expect(await page.textContent("#detail-failures")).toContain("connection reset by peer");
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "introspect.png"), fullPage: true });
    expect(errors).toEqual([]);
  });

  it("shows hostile names as text, and its CSP stops an injected script", async () => {
    for (const name of HOSTILE) engine.install(name, { inputs: ["config"], start: () => idle() });
    await settle();
    await load();
    expect(await page.$$eval("#rows td.name", (cells) => cells.map((cell) => cell.textContent))).toEqual(expect.arrayContaining(HOSTILE));
    expect(await page.$$eval("#graph g.node", (nodes) => nodes.map((node) => node.getAttribute("data-name")))).toEqual(expect.arrayContaining(HOSTILE));
    expect(await page.evaluate("window.pwned")).toBeUndefined();
    expect(await page.$$("#rows img")).toHaveLength(0);
    await page.click(`#rows tr[data-name="${HOSTILE[1]?.replace(/"/g, '\\"')}"]`);
    await page.waitForFunction((name) => document.getElementById("detail-name")?.textContent === name, HOSTILE[1]);
    expect(errors).toEqual([]);
    // A script slipped into the page by other means does not run: only the page's own script is allowed (by hash).
    await page.evaluate('document.body.append(Object.assign(document.createElement("script"), { textContent: "window.injected = true" }))');
    expect(await page.evaluate("window.injected")).toBeUndefined();
    expect(errors.some((error) => /Content Security Policy/.test(error))).toBe(true);
  });
});
