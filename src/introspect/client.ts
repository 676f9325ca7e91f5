/**
 * The client side of introspection, for the CLI: GET a route from a Unix
 * socket, an abstract socket or an HTTP(S) URL, and follow `/events`.
 */
import { request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";

/** Where an introspection server is. @internal */
export interface Target {
  /** Unix socket path (abstract ones start with "\0"). */
  readonly socketPath?: string;
  /** Base URL, ending in "/". */
  readonly url?: URL;
  /** How to name it in messages. */
  readonly display: string;
}

/**
 * `http://…` / `https://…` (optionally with a prefix path the handler is
 * mounted under), `@name` for a Linux abstract socket, anything else a
 * socket path.
 * @throws TypeError for an empty target or an unparsable URL.
 * @internal
 */
export function parseTarget(text: string): Target {
  if (text === "") throw new TypeError("the target is empty: give a socket path, @name for an abstract socket, or an http:// URL");
  if (/^https?:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new TypeError(`${JSON.stringify(text)} is not a valid URL`);
    }
    if (!url.pathname.endsWith("/")) url.pathname += "/";
    url.search = "";
    url.hash = "";
    return { url, display: url.href };
  }
  if (text.startsWith("@")) return { socketPath: `\0${text.slice(1)}`, display: text };
  return { socketPath: text, display: text };
}

/** A response read to the end. @internal */
export interface Fetched {
  readonly status: number;
  readonly body: string;
}

/** Options of a request. @internal */
export interface RequestSettings {
  readonly token?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

function open(target: Target, route: string, settings: RequestSettings): Promise<IncomingMessage> {
  const relative = route.replace(/^\//, "");
  const headers: Record<string, string> = { Accept: "*/*" };
  if (settings.token !== undefined) headers["Authorization"] = `Bearer ${settings.token}`;
  return new Promise((resolve, reject) => {
    const options: RequestOptions = { method: "GET", headers };
    if (settings.signal !== undefined) options.signal = settings.signal;
    let req;
    if (target.url !== undefined) {
      const url = new URL(relative, target.url);
      req = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, options, resolve);
    } else {
      // A socket has no host name; the server's Host check (if any) accepts "localhost".
      headers["Host"] = "localhost";
      options.socketPath = target.socketPath as string;
      options.path = `/${relative}`;
      req = httpRequest(options, resolve);
    }
    req.on("error", reject);
    req.end();
  });
}

/** GETs `route` and reads the whole body. Rejects on connection errors (not on HTTP errors). @internal */
export async function fetchRoute(target: Target, route: string, settings: RequestSettings = {}): Promise<Fetched> {
  const res = await open(target, route, settings);
  res.setEncoding("utf8");
  let body = "";
  for await (const chunk of res) body += chunk as string;
  return { status: res.statusCode ?? 0, body };
}

/** One Server-Sent Events message. @internal */
export interface SseMessage {
  readonly event: string;
  readonly id: string | undefined;
  readonly data: string;
}

/**
 * GETs `route` as an event stream, calls `onOpen` once it is established
 * and `onMessage` for each message, until the stream ends or `signal` aborts. Resolves with the status and, when
 * it was not a stream (an HTTP error), the body.
 * @internal
 */
export async function followEvents(
  target: Target,
  route: string,
  settings: RequestSettings,
  onMessage: (message: SseMessage) => void,
  onOpen: () => void = () => undefined,
): Promise<Fetched> {
  const res = await open(target, route, settings);
  res.setEncoding("utf8");
  const status = res.statusCode ?? 0;
  if (status !== 200 || !String(res.headers["content-type"] ?? "").startsWith("text/event-stream")) {
    let body = "";
    for await (const chunk of res) body += chunk as string;
    return { status, body };
  }
  onOpen();
  let buffer = "";
  let event = "message";
  let id: string | undefined;
  let data: string[] = [];
  try {
    for await (const chunk of res) {
      buffer += chunk as string;
      let newline: number;
      while ((newline = buffer.search(/\r\n|\r|\n/)) !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (data.length > 0 || event !== "message") onMessage({ event, id, data: data.join("\n") });
          event = "message";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") data.push(value);
        else if (field === "event") event = value;
        else if (field === "id") id = value;
      }
    }
  } catch (error) {
    // An abort ends the stream as the caller asked; anything else is the caller's to report.
    if (settings.signal?.aborted !== true) throw error;
  }
  return { status, body: "" };
}
