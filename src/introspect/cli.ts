/**
 * `manifold-engine report <socket-or-url>`: reads a running engine's report
 * from a shell, as Juju's `juju_engine_report` does. The logic lives here, as
 * a function over injected streams, so tests run it in-process; `src/cli.ts`
 * is the executable that calls it.
 */
import { followEvents, fetchRoute, parseTarget, type Target } from "./client.js";

/** Where the CLI writes, what it reads, and how it is stopped. @internal */
export interface CliIo {
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean | undefined };
  readonly stderr: { write(text: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted on Ctrl-C: `--watch` then exits 0. */
  readonly signal?: AbortSignal | undefined;
}

/** How `manifold-engine` is used. @internal */
export const USAGE = `usage: manifold-engine report <target> [options]

Prints the report of a running manifold-engine served by introspect().

target     a Unix socket path, @name for a Linux abstract socket,
           or http://host:port/ (with the prefix the handler is mounted under)
options    --json           the report as JSON (with --pretty: indented)
           --graph mmd|dot  the graph as Mermaid or Graphviz DOT instead
           --watch          follow the engine's events and reprint on change
                            (polls every --interval ms without an event stream)
           --interval <ms>  polling interval for --watch; default 1000
           --token <token>  bearer token (or MANIFOLD_ENGINE_TOKEN)
           -h, --help       this help
exit code  0 done (and Ctrl-C during --watch), 1 the server could not be read,
           2 bad usage, 130 interrupted`;

interface Options {
  target: Target;
  route: string;
  watch: boolean;
  interval: number;
  token: string | undefined;
}

class UsageError extends Error {}

function parseArgs(argv: readonly string[], env: CliIo["env"]): Options | "help" {
  const args = [...argv];
  if (args.length === 0 || args.includes("-h") || args.includes("--help") || args[0] === "help") return "help";
  const command = args.shift();
  if (command !== "report") throw new UsageError(`unknown command ${JSON.stringify(command)}: the command is "report"`);
  let target: string | undefined;
  let json = false;
  let pretty = false;
  let graph: string | undefined;
  let watch = false;
  let interval = 1000;
  let token = env["MANIFOLD_ENGINE_TOKEN"];
  const value = (flag: string): string => {
    const next = args.shift();
    if (next === undefined || next.startsWith("--")) throw new UsageError(`${flag} needs a value`);
    return next;
  };
  while (args.length > 0) {
    const arg = args.shift() as string;
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const take = (): string => inline ?? value(flag);
    switch (flag) {
      case "--json":
        json = true;
        break;
      case "--pretty":
        pretty = true;
        break;
      case "--watch":
        watch = true;
        break;
      case "--graph":
        graph = take();
        if (graph !== "mmd" && graph !== "dot") throw new UsageError(`--graph must be mmd or dot (got ${JSON.stringify(graph)})`);
        break;
      case "--interval": {
        const text = take();
        interval = Number(text);
        if (!Number.isInteger(interval) || interval < 100) throw new UsageError(`--interval must be a whole number of milliseconds >= 100 (got ${JSON.stringify(text)})`);
        break;
      }
      case "--token":
        token = take();
        break;
      default:
        if (flag.startsWith("-")) throw new UsageError(`unknown option ${JSON.stringify(flag)}`);
        if (target !== undefined) throw new UsageError(`one target only (got ${JSON.stringify(target)} and ${JSON.stringify(flag)})`);
        target = flag;
    }
  }
  if (target === undefined) throw new UsageError("missing <target>: a socket path, @name or an http:// URL");
  if (json && graph !== undefined) throw new UsageError("--json and --graph do not go together: choose one");
  const route = graph !== undefined ? `/graph.${graph}` : json ? `/report?format=json${pretty ? "&pretty" : ""}` : "/report";
  return { target: parseTarget(target), route, watch, interval, token: token === "" ? undefined : token };
}

/** Why a request failed, said so that the operator knows what to check. */
function connectionHint(target: Target, error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === "ENOENT") return `cannot connect to ${target.display}: no such socket (is the process running, with introspection on?)`;
  if (code === "ECONNREFUSED") return `cannot connect to ${target.display}: connection refused (is the process running, with introspection on?)`;
  if (code === "EACCES") return `cannot connect to ${target.display}: permission denied (the socket is private to the user that runs the engine)`;
  return `cannot read ${target.display}: ${message}`;
}

function httpProblem(target: Target, status: number, body: string): string {
  if (status === 401) return `${target.display} asks for a token: pass --token or set MANIFOLD_ENGINE_TOKEN`;
  return `${target.display} answered HTTP ${status}: ${body.trim().slice(0, 500)}`;
}

const delay = (ms: number, signal: AbortSignal | undefined): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/**
 * Runs the CLI with `argv` (without "node" and the script) and returns the
 * exit code. Never throws; errors are written to `io.stderr`.
 * @internal
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let options: Options | "help";
  try {
    options = parseArgs(argv, io.env);
  } catch (error) {
    io.stderr.write(`manifold-engine: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}\n`);
    return 2;
  }
  if (options === "help") {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { target, route, token } = options;
  const settings = { token, signal: io.signal };

  const read = async (): Promise<string> => {
    const { status, body } = await fetchRoute(target, route, settings);
    if (status !== 200) throw new Error(httpProblem(target, status, body));
    return body.endsWith("\n") ? body : `${body}\n`;
  };

  try {
    if (!options.watch) {
      io.stdout.write(await read());
      return 0;
    }
    return await watch(options, io, read);
  } catch (error) {
    // Ctrl-C: the end of a --watch (0), or an interrupted read (130, as shells report it).
    if (io.signal?.aborted === true) return options.watch ? 0 : 130;
    const message = error instanceof Error && error.message.startsWith(target.display) ? error.message : connectionHint(target, error);
    io.stderr.write(`manifold-engine: ${message}\n`);
    return 1;
  }
}

/** `--watch`: print, then reprint whenever the output changes, after events (or polling). */
async function watch(options: Options, io: CliIo, read: () => Promise<string>): Promise<number> {
  let last = "";
  const print = (text: string): void => {
    if (text === last) return;
    last = text;
    if (io.stdout.isTTY === true) io.stdout.write(`\u001b[H\u001b[2J${text}`);
    else io.stdout.write(`--- ${new Date().toISOString()}\n${text}`);
  };
  // A failed reprint stops following the events too.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  if (io.signal?.aborted === true) stop.abort();
  io.signal?.addEventListener("abort", onAbort, { once: true });

  // Reprints are serialised and coalesced: a burst of events costs one or two fetches.
  let failure: unknown;
  let running: Promise<void> | undefined;
  let again = false;
  const refresh = (wait = 150): void => {
    if (running !== undefined) {
      again = true;
      return;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await delay(wait, stop.signal);
          wait = 150;
          if (stop.signal.aborted) return;
          print(await read());
        } while (again);
      } catch (error) {
        failure ??= error;
        stop.abort();
      } finally {
        running = undefined;
      }
    })();
  };

  let result: Awaited<ReturnType<typeof followEvents>> | undefined;
  try {
    // Follow first, then print: every change after the first print arrives as an event.
    result = await followEvents(
      options.target,
      "/events",
      { token: options.token, signal: stop.signal },
      (message) => {
        if (message.event === "message" || message.event === "dropped" || message.event === "gap" || message.event === "end") refresh();
      },
      () => refresh(0),
    );
    await running;
  } catch (error) {
    // Aborted: by Ctrl-C (fine) or by a failed reprint (reported below).
    if (!stop.signal.aborted) throw error;
  } finally {
    io.signal?.removeEventListener("abort", onAbort);
  }
  if (failure !== undefined) throw failure;
  if (result === undefined) return 0;
  if (result.status === 200) {
    // The stream ended: the engine stopped (or the server closed). Print the final report once more.
    if (io.signal?.aborted !== true) {
      print(await read().catch(() => last));
      io.stderr.write("manifold-engine: the event stream ended (engine stopped or server closed)\n");
    }
    return 0;
  }
  if (result.status !== 501) throw new Error(httpProblem(options.target, result.status, result.body));
  // No event stream on that engine: poll.
  print(await read());
  const stopped = (): boolean => io.signal?.aborted === true;
  while (!stopped()) {
    await delay(options.interval, io.signal);
    if (stopped()) break;
    print(await read());
  }
  return 0;
}
