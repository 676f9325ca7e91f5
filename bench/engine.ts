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

/**
 * With `BENCH_TARGET_SMALL` (the folder of a build), run.ts measures the cells
 * below 100,000 manifolds with that build and switches to `target` for the
 * 100k cells (see {@link useMainTarget}). A copy of the same build there is
 * the experiment that shows what the smaller cells leave behind in the
 * engine's compiled code (bench/README.md, "The full run's 100k cells").
 */
export const smallTarget: string | undefined = process.env.BENCH_TARGET_SMALL;

async function load(build: string): Promise<typeof Api> {
  const entry =
    build === "src"
      ? new URL("../src/index.ts", import.meta.url)
      : build === "dist"
        ? new URL("../dist/index.js", import.meta.url)
        : pathToFileURL(`${build}/index.js`);
  if (!existsSync(fileURLToPath(entry))) {
    throw new Error(`bench: ${fileURLToPath(entry)} is missing; run npm run build first (npm run bench does), or set BENCH_TARGET=src`);
  }
  return (await import(entry.href)) as typeof Api;
}

const api = await load(target);

// Live bindings: what imports them sees the engine useMainTarget switches to.
export let { BounceError, Engine, createWorker, valueWorker } = smallTarget === undefined ? api : await load(smallTarget);

/** From now on, the engine of `target` (a no-op unless BENCH_TARGET_SMALL chose another for the smaller cells). */
export function useMainTarget(): void {
  ({ BounceError, Engine, createWorker, valueWorker } = api);
}
export type Engine = Api.Engine;
