/**
 * Shared by the introspection tests: a private temporary directory for
 * sockets, raw HTTP requests over a socket or TCP (no client-side URL
 * normalising, so odd paths reach the server as written), an SSE reader that
 * resolves on what it reads (no sleeping), and output collectors for the CLI.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { request, type IncomingHttpHeaders } from "node:http";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

/** A fresh directory for this test file's sockets, removed after the file. */
export function socketDir(): () => string {
  const dir = mkdtempSync(join(tmpdir(), "me-introspect-"));
  let n = 0;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return () => join(dir, `s${++n}.sock`);
}

/** Where a request goes. */
export type Where = { socketPath: string } | { port: number; host?: string };

/** A response read to the end. */
export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request; `path` is sent exactly as given. */
export function http(where: Where, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const target = "socketPath" in where ? { socketPath: where.socketPath } : { host: where.host ?? "127.0.0.1", port: where.port };
    const req = request({ ...target, path, method: options.method ?? "GET", headers: { Host: "localhost", ...options.headers }, agent: false }, (res) => {
      res.setEncoding("utf8");
      let body = "";
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** A raw request line and headers, written to a socket exactly as given; resolves with the whole response text. */
export function raw(socketPath: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (data += chunk));
    socket.on("end", () => resolve(data));
    socket.on("close", () => resolve(data));
    socket.on("error", (error: NodeJS.ErrnoException) => (error.code === "ECONNRESET" || error.code === "EPIPE" ? resolve(data) : reject(error)));
    socket.write(text);
  });
}

/** One parsed SSE message. */
export interface Message {
  event: string;
  id: string | undefined;
  data: string;
}

/** An open `/events` stream: messages as they arrive, and a way to wait for the ones a test expects. */
export class EventStreamReader {
  readonly messages: Message[] = [];
  /** Everything read, comments included. */
  raw = "";
  status = 0;
  headers: IncomingHttpHeaders = {};
  ended = false;
  readonly #waiters: (() => void)[] = [];
  readonly #socket: Promise<Socket>;
  #buffer = "";

  constructor(where: Where, path = "/events", headers: Record<string, string> = {}) {
    this.#socket = new Promise((resolve, reject) => {
      const target = "socketPath" in where ? { socketPath: where.socketPath } : { host: where.host ?? "127.0.0.1", port: where.port };
      const req = request({ ...target, path, headers: { Host: "localhost", ...headers }, agent: false }, (res) => {
        this.status = res.statusCode ?? 0;
        this.headers = res.headers;
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => this.#take(chunk));
        res.on("end", () => {
          this.ended = true;
          this.#wake();
        });
        res.on("error", () => undefined);
        this.#wake();
      });
      req.on("socket", resolve);
      req.on("error", reject);
      req.end();
    });
  }

  #take(chunk: string): void {
    this.raw += chunk;
    this.#buffer += chunk;
    let end: number;
    while ((end = this.#buffer.indexOf("\n\n")) !== -1) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const message: Message = { event: "message", id: undefined, data: "" };
      const data: string[] = [];
      let any = false;
      for (const line of block.split("\n")) {
        if (line.startsWith(":") || line === "") continue;
        const colon = line.indexOf(":");
        const field = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") data.push(value), (any = true);
        else if (field === "event") (message.event = value), (any = true);
        else if (field === "id") message.id = value;
      }
      message.data = data.join("\n");
      if (any) this.messages.push(message);
    }
    this.#wake();
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  /** The `data` of the messages with the default event type, parsed. */
  get events(): { type: string; id: number; name?: string; cause?: number; [key: string]: unknown }[] {
    return this.messages.filter((m) => m.event === "message").map((m) => JSON.parse(m.data) as { type: string; id: number });
  }

  /** Resolves once `test()` is true (checked after each chunk read); rejects with what was read if the stream ends first. */
  async until(test: () => boolean, what = "the expected messages"): Promise<void> {
    while (!test()) {
      if (this.ended) throw new Error(`the stream ended before ${what}; got ${JSON.stringify(this.messages.slice(-10))}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Stops reading from the socket (a client that never reads). */
  async pause(): Promise<void> {
    (await this.#socket).pause();
  }

  /** Reads again. */
  async resume(): Promise<void> {
    (await this.#socket).resume();
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    (await this.#socket).destroy();
  }
}

/** A writable the CLI writes to, that tests can wait on (resolving on writes, not on time). */
export class Collector {
  text = "";
  isTTY = false;
  readonly #waiters: (() => void)[] = [];

  write(chunk: string): boolean {
    this.text += chunk;
    for (const waiter of this.#waiters.splice(0)) waiter();
    return true;
  }

  /** Resolves once `test(text)` holds. */
  async until(test: (text: string) => boolean): Promise<void> {
    while (!test(this.text)) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
}
