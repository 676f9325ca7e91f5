/**
 * The engine under test. By default the built package in `dist/`, what users
 * install from npm (`npm run bench` and `npm run bench:soak` build it first);
 * with `BENCH_TARGET=src`, the TypeScript sources as tsx runs them, whose
 * transform wraps functions to keep their names and so adds a little to every
 * closure the engine creates.
 *
 * Types always come from `src/`: the build is made from it.
 */
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import type * as Api from "../src/index.js";

/**
 * Which build is measured: "dist", "src", or the path of another build's
 * folder (`BENCH_TARGET=/tmp/old-dist`), to compare two engines in one sitting.
 */
export const target: string = process.env.BENCH_TARGET ?? "dist";

const entry =
  target === "src"
    ? new URL("../src/index.ts", import.meta.url)
    : target === "dist"
      ? new URL("../dist/index.js", import.meta.url)
      : pathToFileURL(`${target}/index.js`);
if (!existsSync(fileURLToPath(entry))) {
  throw new Error(`bench: ${fileURLToPath(entry)} is missing; run npm run build first (npm run bench does), or set BENCH_TARGET=src`);
}
const api = (await import(entry.href)) as typeof Api;

export const { BounceError, Engine, createWorker, valueWorker } = api;
export type Engine = Api.Engine;
