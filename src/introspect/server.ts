/**
 * `introspect(engine, options)`: the introspection handler on its own
 * `node:http` server, listening where only the operator can reach it.
 *
 * Where: a Unix socket by default (Juju's introspection worker does the
 * same), created with mode 0600 so only the process's user can connect; a
 * Linux abstract socket for a path starting with "\0" (no file at all); TCP
 * only when a port is given, on 127.0.0.1 unless `host` says otherwise.
 *
 * Why the socket is bound under a 0177 umask and then chmod-ed as well: the
 * umask makes the socket private from the instant it exists (a chmod after
 * listening leaves a window in which anyone may connect); the chmod covers
 * worker threads, where `process.umask()` cannot be changed.
 */
import { chmodSync, lstatSync, unlinkSync, type Stats } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkHandlerOptions, introspectionHandler, type IntrospectionHandler, type IntrospectionHandlerOptions } from "./handler.js";
import type { IntrospectableEngine } from "./types.js";

/** Options of {@link introspect}: where to listen, plus the handler's options. Every field is optional. */
export interface IntrospectOptions extends IntrospectionHandlerOptions {
  /**
   * Unix socket path (created with mode 0600; a stale socket file left by a
   * dead process is replaced; removed on close), or a Linux abstract socket
   * name starting with a NUL character (`"\0name"`). Default, when no `port` is given either:
   * `<tmpdir>/manifold-engine-<pid>.sock`.
   */
  path?: string | undefined;
  /** Listen on TCP instead, on this port (0 picks a free one; see `port` on the result). */
  port?: number | undefined;
  /** With `port`: the address to bind; default "127.0.0.1". */
  host?: string | undefined;
}

/** A running introspection server. */
export interface IntrospectionServer extends AsyncDisposable {
  /** Where it listens: the socket path (abstract ones start with a NUL character), or `http://host:port/` for TCP. */
  readonly address: string;
  /** The TCP port it listens on; undefined on a Unix socket. */
  readonly port: number | undefined;
  /** The handler it serves (its `eventClients` and `reportsTaken` tell what it is doing). */
  readonly handler: IntrospectionHandler;
  /**
   * Stops listening, ends `/events` streams and open connections, stops
   * listening to the engine, and removes the socket file (if it is still the
   * one this server created). Resolves when the server is closed; the same
   * promise every time. Never rejects.
   */
  close(): Promise<void>;
  /** `close()`, for `await using server = await introspect(engine)`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);
/**
 * Pending connections the kernel queues (capped by net.core.somaxconn). On a
 * Unix socket a full queue makes `connect()` fail at once with EAGAIN rather
 * than wait, so Node's default of 511 would turn away a burst of clients.
 */
const BACKLOG = 4096;

function describe(value: unknown): string {
  if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 60))}`;
  if (typeof value === "number") return `the number ${value}`;
  return value === null ? "null" : typeof value;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** True when something accepts connections on the socket at `path`. */
function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Makes room for a socket at `path`: replaces a stale socket file, refuses anything else. */
async function clearSocketPath(path: string): Promise<void> {
  const stats = statOrUndefined(path);
  if (stats === undefined) return;
  if (!stats.isSocket()) {
    throw new Error(`introspect: ${path} exists and is not a socket; remove it or choose another options.path`);
  }
  if (await isLive(path)) {
    throw new Error(`introspect: another process is listening on ${path}; stop it or choose another options.path`);
  }
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new Error(`introspect: cannot remove the stale socket ${path}: ${messageOf(error)}`);
    }
  }
}

/** `server.listen(...)` as a promise. */
function listen(server: Server, args: { path: string } | { port: number; host: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      server.off("listening", onListening);
      reject(error);
    };
    const onListening = (): void => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    if ("path" in args && !args.path.startsWith("\0")) {
      // Private from the first instant: bind under umask 0177 where the process allows changing it.
      let previous: number | undefined;
      try {
        previous = process.umask(0o177);
      } catch {
        previous = undefined; // worker threads: the chmod below closes the gap
      }
      try {
        server.listen({ path: args.path, backlog: BACKLOG });
      } finally {
        if (previous !== undefined) process.umask(previous);
      }
    } else {
      server.listen({ ...args, backlog: BACKLOG });
    }
  });
}

function checkListenOptions(options: IntrospectOptions | undefined): void {
  if (options === undefined) return;
  const where = "introspect(engine, options)";
  const { path, port, host } = options;
  if (path !== undefined && (typeof path !== "string" || path.length === 0 || path === "\0" || path.includes("\0", 1))) {
    throw new TypeError(`${where}: options.path must be a non-empty socket path, or "\\0name" for an abstract socket (got ${describe(path)})`);
  }
  if (port !== undefined && (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65_535)) {
    throw new TypeError(`${where}: options.port must be a whole number from 0 to 65535 (got ${describe(port)})`);
  }
  if (path !== undefined && port !== undefined) {
    throw new TypeError(`${where}: give either options.path (a Unix socket) or options.port (TCP), not both`);
  }
  if (host !== undefined && (typeof host !== "string" || host.length === 0)) {
    throw new TypeError(`${where}: options.host must be a non-empty host name or address (got ${describe(host)})`);
  }
  if (host !== undefined && port === undefined) {
    throw new TypeError(`${where}: options.host only applies to TCP: give options.port too (or leave host out for a Unix socket)`);
  }
}

/**
 * Serves the introspection routes of `engine` (see `introspectionHandler`)
 * on a new `node:http` server: on a Unix socket (mode 0600) by default, on
 * a Linux abstract socket for a path starting with a NUL character, or on TCP
 * (127.0.0.1 unless `host` says otherwise) when `port` is given. On loopback
 * TCP, requests must name a loopback host in `Host` (DNS-rebinding defence)
 * unless `allowedHosts` says otherwise.
 *
 * Resolves once listening. Rejects (nothing left behind) when the address is
 * taken: a live server on the socket, a path that is not a socket, a port in
 * use; the message names the address and what to do.
 * @throws TypeError (synchronously) naming an invalid argument or option.
 */
export async function introspect(engine: IntrospectableEngine, options?: IntrospectOptions): Promise<IntrospectionServer> {
  checkHandlerOptions("introspect(engine, options)", engine, options);
  checkListenOptions(options);
  const port = options?.port;
  const host = options?.host ?? "127.0.0.1";
  const path = port === undefined ? (options?.path ?? join(tmpdir(), `manifold-engine-${process.pid}.sock`)) : undefined;
  const abstract = path?.startsWith("\0") === true;
  const handlerOptions: IntrospectionHandlerOptions = { ...options };
  if (port !== undefined && options?.allowedHosts === undefined && LOOPBACK.has(host)) {
    handlerOptions.allowedHosts = ["localhost", "127.0.0.1", "::1"];
  }
  if (path !== undefined && !abstract) await clearSocketPath(path);

  const handler = introspectionHandler(engine, handlerOptions);
  const server = createServer(handler);
  // A request that never finishes its headers must not hold a connection forever.
  server.headersTimeout = 10_000;
  server.requestTimeout = 0; // /events streams are long-lived by design
  try {
    await listen(server, path !== undefined ? { path } : { port: port as number, host });
  } catch (error) {
    handler.close();
    const where = path !== undefined ? (abstract ? `abstract socket @${path.slice(1)}` : path) : `${host}:${port}`;
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === "EADDRINUSE"
        ? "the address is in use: stop the other server or choose another address"
        : code === "EACCES"
          ? "permission denied: choose an address this user may bind"
          : "check options.path / options.port";
    throw new Error(`introspect: cannot listen on ${where}: ${messageOf(error)} (${hint})`, { cause: error });
  }

  let inode: number | undefined;
  if (path !== undefined && !abstract) {
    try {
      chmodSync(path, 0o600);
      inode = lstatSync(path).ino;
    } catch (error) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      handler.close();
      throw new Error(`introspect: cannot make ${path} private (chmod 0600): ${messageOf(error)}`, { cause: error });
    }
  }
  const bound = server.address();
  const actualPort = typeof bound === "object" && bound !== null ? bound.port : undefined;
  const address =
    path !== undefined ? path : `http://${host.includes(":") ? `[${host}]` : host}:${actualPort ?? port}/`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      handler.close();
      server.close(() => {
        // Node removes the socket file itself; make sure, but only if it is still ours.
        if (path !== undefined && !abstract && inode !== undefined && statOrUndefined(path)?.ino === inode) {
          try {
            unlinkSync(path);
          } catch {
            // Already gone.
          }
        }
        resolve();
      });
      server.closeAllConnections();
    });
    return closing;
  };
  return {
    address,
    port: actualPort,
    handler,
    close,
    [Symbol.asyncDispose]: close,
  };
}
