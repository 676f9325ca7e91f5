// manifold-engine: an embeddable dependency engine in the line of Juju's
// `worker/dependency`. Explicit named exports only, so the API report stays
// reviewable.
export { Engine } from "./engine.js";
export { causeChain, describeEvent, formatCauseChain } from "./cause-chain.js";
export type { FailureRecord } from "./bookkeeping.js";
export type {
  BouncedEvent,
  EngineEvent,
  EngineEventBase,
  EngineEventType,
  EngineStoppedEvent,
  EngineStoppingEvent,
  FatalEvent,
  HeartbeatMissedEvent,
  InstalledEvent,
  ProgressEvent,
  QuarantinedEvent,
  ReleasedEvent,
  ScheduledEvent,
  ScheduleReason,
  StartedEvent,
  StallEvent,
  StartingEvent,
  StopOutcome,
  StoppedEvent,
  StuckEvent,
  UninstalledEvent,
} from "./event-types.js";
export type { ApplyOptions, InstallOptions, PlanOptions } from "./desired-state.js";
export type { MetricsHook } from "./metrics.js";
export type { HeartbeatAction, ProgressReport, QuarantineReport, RestartLimit, SupervisionOptions } from "./supervision.js";
export type { Clock, EngineConfig, Logger } from "./config.js";
export {
  AlreadyInstalledError,
  BounceError,
  ConditionSyntaxError,
  CycleError,
  EngineStoppedError,
  errorIs,
  HeartbeatTimeoutError,
  MissingError,
  ShutdownTimeoutError,
  StalePlanError,
  UninstallError,
} from "./errors.js";
export type {
  AlreadyInstalledErrorOptions,
  ConditionSyntaxErrorOptions,
  CycleErrorOptions,
  EngineErrorOptions,
  ErrorClass,
  ErrorOptions,
  HeartbeatTimeoutErrorOptions,
  ShutdownTimeoutErrorOptions,
  StalePlanErrorOptions,
} from "./errors.js";
export { flagManifold, flagWorker, gated } from "./flag.js";
export type { Flag, FlagManifoldOptions, FlagWorker, GatedOptions } from "./flag.js";
export { validate } from "./graph.js";
export { leaseFlag, LeaseLostError, MemoryLeaseProvider } from "./lease.js";
export type {
  Lease,
  LeaseCallOptions,
  LeaseClaim,
  LeaseFlag,
  LeaseFlagOptions,
  LeaseFlagWorker,
  LeaseLostErrorOptions,
  LeaseProvider,
  LeaseRequest,
  MemoryLeaseHolder,
  MemoryLeaseProviderOptions,
} from "./lease.js";
export { manifold } from "./manifold.js";
export type { Manifold, Manifolds, ResourceValue, StartContext } from "./manifold.js";
export type { EngineReport, ManifoldReport, ResourceLogEntry } from "./report.js";
export { formatReport, toDot, toMermaid } from "./render.js";
export { resource } from "./resource.js";
export type { InputName, Resource } from "./resource.js";
export { withRetry } from "./retry.js";
export type { FailedAttempt, WithRetryOptions } from "./retry.js";
export { selfManifold } from "./self-manifold.js";
export type { EngineControls } from "./self-manifold.js";
export { createWorker, valueWorker } from "./workers.js";
export type { Reporter, Worker } from "./workers.js";
export type { Plan } from "./plan.js";
export { parseCondition } from "./when.js";
export type { Condition, SkippedManifold } from "./when.js";
