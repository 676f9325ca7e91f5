// manifold-engine/introspect: the engine's report served to operators over
// HTTP (a Unix socket by default), a live page, and the CLI's client side.
// Explicit named exports only, so the API report stays reviewable.
export { introspectionHandler } from "./handler.js";
export type { IntrospectionHandler, IntrospectionHandlerOptions } from "./handler.js";
export { introspect } from "./server.js";
export type { IntrospectOptions, IntrospectionServer } from "./server.js";
export type { EventObserver, IntrospectableEngine, IntrospectionEvent, Subscribable } from "./types.js";
