/**
 * /graph.svg when the optional peer @viz-js/viz is not installed: 501 with a
 * message that says what to install and what to use meanwhile; every other
 * route still works. (The module is made unloadable for this file only.)
 */
import { expect, it, vi } from "vitest";
import { introspect } from "../src/introspect/index.js";
import { failOnUnhandledRejections, makeEngine, settle, stop, valueManifold } from "./fixtures.js";
import { http, socketDir } from "./introspect-helpers.js";

vi.mock("@viz-js/viz", () => {
  throw new Error("Cannot find package '@viz-js/viz' imported from manifold-engine");
});

failOnUnhandledRejections();
const nextSocket = socketDir();

it("answers 501 naming the package to install, twice (the failed load is remembered), and the rest keeps working", async () => {
  const { engine } = makeEngine();
  engine.install("a", valueManifold(1));
  await settle();
  const server = await introspect(engine, { path: nextSocket() });
  try {
    const where = { socketPath: server.address };
    for (let i = 0; i < 2; i++) {
      const res = await http(where, "/graph.svg");
      expect(res.status).toBe(501);
      expect(res.body).toMatch(/needs the optional package @viz-js\/viz.*npm install @viz-js\/viz.*or fetch \/graph\.dot/);
    }
    expect((await http(where, "/graph.dot")).status).toBe(200);
    expect((await http(where, "/report")).status).toBe(200);
  } finally {
    await server.close();
    await stop(engine);
  }
});
