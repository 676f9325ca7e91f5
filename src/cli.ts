#!/usr/bin/env node
/**
 * The `manifold-engine` command (package.json `bin`):
 * `npx manifold-engine report <socket-or-url> [--json] [--watch] [--graph mmd|dot]`.
 * Everything but wiring the process in is in `introspect/cli.ts`, which the
 * tests run in-process.
 */
import { runCli } from "./introspect/cli.js";

const interrupt = new AbortController();
// The first Ctrl-C ends --watch cleanly (exit 0); a second one kills the process as usual.
process.once("SIGINT", () => interrupt.abort());
runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: interrupt.signal }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // runCli reports its own errors; this is a bug in it.
    process.stderr.write(`manifold-engine: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
