// manifold-engine: an embeddable dependency engine in the line of Juju's
// `worker/dependency`. Explicit named exports only, so the API report stays
// reviewable.
export { Engine } from "./engine.js";
export type { Clock, EngineConfig, Logger } from "./config.js";
export {
  AlreadyInstalledError,
  BounceError,
  CycleError,
  EngineStoppedError,
  errorIs,
  MissingError,
  ShutdownTimeoutError,
  UninstallError,
} from "./errors.js";
export type {
  AlreadyInstalledErrorOptions,
  CycleErrorOptions,
  ErrorClass,
  ErrorOptions,
  ShutdownTimeoutErrorOptions,
} from "./errors.js";
export { validate } from "./graph.js";
export { manifold } from "./manifold.js";
export type { Manifold, Manifolds, StartContext } from "./manifold.js";
export type { EngineReport, ManifoldReport, ResourceLogEntry } from "./report.js";
export { resource } from "./resource.js";
export type { InputName, Resource } from "./resource.js";
export { selfManifold } from "./self-manifold.js";
export type { EngineControls } from "./self-manifold.js";
export { createWorker, valueWorker } from "./workers.js";
export type { Reporter, Worker } from "./workers.js";
