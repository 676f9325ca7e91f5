#!/usr/bin/env node
/**
 * The `manifold-engine` command (package.json `bin`):
 * `npx manifold-engine report <socket-or-url> [--json] [--watch] [--graph mmd|dot]`.
 * Everything but wiring the process in is in `introspect/cli.ts`.
 */
import { runCli } from "./introspect/cli.js";

const interrupt = new AbortController();
// First Ctrl-C ends --watch cleanly; a second one kills the process as usual.
process.once("SIGINT", () => interrupt.abort());
runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: interrupt.signal }).then(
  (code) => {
    process.exitCode = code;
    // Nothing else keeps the process alive for us; a lingering keep-alive socket must not either.
    process.removeAllListeners("SIGINT");
  },
  (error: unknown) => {
    process.stderr.write(`manifold-engine: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  },
);
