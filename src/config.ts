/**
 * Engine configuration: the public options, their defaults, and the checks
 * that turn a bad option into a TypeError naming the field.
 */
import createDebug from "debug";
import { describeValue } from "./errors.js";
import type { MetricsHook } from "./metrics.js";
import { didYouMean } from "./suggest.js";
import { checkSupervision, SUPERVISION_KEYS, type SupervisionOptions } from "./supervision.js";

/** Time as the engine sees it. Inject one to drive time in tests. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a pending `setTimeout`; a handle that already fired is ignored. */
  clearTimeout(handle: unknown): void;
}

/** Where the engine writes what it does. */
export interface Logger {
  /** Routine lifecycle events: starts, stops, bounces. */
  debug(message: string, ...args: unknown[]): void;
  /** Noteworthy events: engine start and stop. */
  info(message: string, ...args: unknown[]): void;
  /** Things that need a look: stuck workers, a user function that threw. */
  warn(message: string, ...args: unknown[]): void;
  /** Worker failures and fatal errors. */
  error(message: string, ...args: unknown[]): void;
}

/** Options of an {@link Engine}; every field is optional. */
export interface EngineConfig extends SupervisionOptions {
  /** True for errors that must stop the whole engine. Default: nothing is fatal. */
  isFatal?: ((error: unknown) => boolean) | undefined;
  /** Ranks two fatal errors, returning the worse. Default: keeps the first fatal error. */
  worstError?: ((a: unknown, b: unknown) => unknown) | undefined;
  /** Applied to the error `wait()` rejects with; a result of `undefined` or `null` makes `wait()` resolve. */
  filter?: ((error: unknown) => unknown) | undefined;
  /** Milliseconds before restarting after an unknown error; default 3000. */
  errorDelay?: number | undefined;
  /** Milliseconds before restarting after a bounce or an input change; default 10. */
  bounceDelay?: number | undefined;
  /** Backoff multiplier (at least 1, or 0 for none): `errorDelay * backoffFactor^(recentErrors-1)`; default 1.2. */
  backoffFactor?: number | undefined;
  /** Milliseconds a worker must run for its next failure to count as fresh; default 60000. */
  backoffResetTime?: number | undefined;
  /** Cap on the backed-off delay in milliseconds (0 = no cap); default 120000. */
  maxDelay?: number | undefined;
  /** Fraction 0..1 of random spread applied to non-zero delays; default 0.1. */
  jitter?: number | undefined;
  /**
   * Milliseconds a worker (or an aborted start) may take to settle after the
   * engine stops it before it is reported `stuck`; a manifold's own
   * `stopTimeout` wins. 0 waits forever. Default 30000.
   */
  stopTimeout?: number | undefined;
  /** Source of time and timers; default: `Date.now` and the global timers. */
  clock?: Clock | undefined;
  /**
   * Where to log; default: the `debug` package, one namespace per level
   * (`manifold-engine:error`, `:warn`, `:info`, `:debug`; turn them on with
   * `DEBUG=manifold-engine:*` or a list). Each failure is logged once, at
   * error level, with the restart it leads to.
   */
  logger?: Logger | undefined;
  /**
   * Told about every start, stop (with its outcome) and bounce; every method
   * is optional, and one that throws is logged at warn level and ignored.
   * @example
   * ```ts
   * new Engine({ metrics: { recordStart: (name) => starts.inc({ name }) } });
   * ```
   */
  metrics?: MetricsHook | undefined;
  /** Source of randomness for jitter, returning values in [0, 1); default `Math.random`. */
  random?: (() => number) | undefined;
}

/**
 * Every option of {@link EngineConfig}, in the order the README lists them.
 * `new Engine(config)` refuses any other key (a misspelt option would
 * otherwise be ignored in silence). A feature that adds an option adds it
 * here too; the type check below fails until it does.
 * @internal
 */
export const ENGINE_CONFIG_KEYS = Object.freeze([
  "isFatal",
  "worstError",
  "filter",
  "errorDelay",
  "bounceDelay",
  "backoffFactor",
  "backoffResetTime",
  "maxDelay",
  "jitter",
  "stopTimeout",
  "clock",
  "logger",
  "metrics",
  "random",
  ...SUPERVISION_KEYS,
] as const satisfies readonly (keyof EngineConfig)[]);

/** Fails to compile, naming the option, when EngineConfig gains a field that ENGINE_CONFIG_KEYS lacks. */
type UnlistedConfigKeys = Exclude<keyof EngineConfig, (typeof ENGINE_CONFIG_KEYS)[number]>;
const everyConfigKeyListed: [UnlistedConfigKeys] extends [never] ? true : UnlistedConfigKeys = true;
void everyConfigKeyListed;

const knownConfigKeys: ReadonlySet<string> = new Set(ENGINE_CONFIG_KEYS);

/**
 * Refuses keys that are not options, naming the key and the likeliest option meant.
 * Only own enumerable string keys count: what an object literal or a spread writes.
 */
function checkKeys(config: object): void {
  let keys: string[];
  try {
    keys = Object.keys(config);
  } catch (error) {
    throw new TypeError(`new Engine(config): the config's keys cannot be read (${String(error)}); pass a plain object`);
  }
  for (const key of keys) {
    if (knownConfigKeys.has(key)) continue;
    throw new TypeError(
      `new Engine(config): unknown option ${JSON.stringify(key)}${didYouMean(key, ENGINE_CONFIG_KEYS) || "; remove it"} ` +
        `(the options are ${ENGINE_CONFIG_KEYS.join(", ")})`,
    );
  }
}

/** The configuration after defaults and checks. @internal */
export interface ResolvedConfig {
  readonly isFatal: (error: Error) => boolean;
  readonly worstError: ((a: Error, b: Error) => unknown) | undefined;
  readonly filter: ((error: Error) => unknown) | undefined;
  readonly errorDelay: number;
  readonly bounceDelay: number;
  readonly backoffFactor: number;
  readonly backoffResetTime: number;
  readonly maxDelay: number;
  readonly jitter: number;
  readonly stopTimeout: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** False when debug output goes nowhere (the default logger, its namespace off): skip building it. */
  readonly debugEnabled: boolean;
  readonly metrics: MetricsHook | undefined;
  readonly random: () => number;
  /** The engine's defaults for heartbeats and restart limits; undefined when it sets none (then only manifolds that ask are supervised). */
  readonly supervision: SupervisionOptions | undefined;
}

/** The default clock: wall time and the global timers. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
  clearTimeout: (handle: unknown): void => clearTimeout(handle as ReturnType<typeof setTimeout>),
});

type DebugLogger = Logger & { enabled(): boolean };

/**
 * The default logger: the `debug` package, one namespace per level, so that a
 * user turns on what they want: `DEBUG=manifold-engine:error,manifold-engine:warn`
 * for problems only, `DEBUG=manifold-engine:*` for everything.
 */
function debugLogger(): DebugLogger {
  const debug = createDebug("manifold-engine:debug");
  const info = createDebug("manifold-engine:info");
  const warn = createDebug("manifold-engine:warn");
  const error = createDebug("manifold-engine:error");
  return {
    enabled: () => debug.enabled,
    debug: (message, ...args) => debug(message, ...args),
    info: (message, ...args) => info(message, ...args),
    warn: (message, ...args) => warn(message, ...args),
    error: (message, ...args) => error(message, ...args),
  };
}

/** Wraps a logger so that a throwing logger can never break the engine loop. */
function safeLogger(logger: Logger): Logger {
  const guard =
    (level: keyof Logger) =>
    (message: string, ...args: unknown[]): void => {
      try {
        logger[level](message, ...args);
      } catch {
        // A broken logger must not take the engine down with it.
      }
    };
  return { debug: guard("debug"), info: guard("info"), warn: guard("warn"), error: guard("error") };
}

/**
 * Wraps a user clock so that a throwing method can never leave a manifold
 * half-way through a transition: `now` falls back to `Date.now`, a failed
 * `setTimeout` to the global timer (the handle remembers which one it is).
 */
function safeClock(clock: Clock, logger: Logger): Clock {
  if (clock === systemClock) return clock;
  const fallbacks = new WeakSet<object>();
  return {
    now: () => {
      try {
        const now = clock.now();
        if (typeof now === "number" && Number.isFinite(now)) return now;
        logger.error(`EngineConfig.clock.now() returned ${describeValue(now)}; using Date.now()`);
      } catch (error) {
        logger.error(`EngineConfig.clock.now() threw; using Date.now(): ${String(error)}`);
      }
      return Date.now();
    },
    setTimeout: (fn, ms) => {
      try {
        return clock.setTimeout(fn, ms);
      } catch (error) {
        logger.error(`EngineConfig.clock.setTimeout() threw; using the global timer: ${String(error)}`);
        const handle = setTimeout(fn, ms);
        fallbacks.add(handle);
        return handle;
      }
    },
    clearTimeout: (handle) => {
      try {
        if (typeof handle === "object" && handle !== null && fallbacks.has(handle)) clearTimeout(handle as ReturnType<typeof setTimeout>);
        else clock.clearTimeout(handle);
      } catch (error) {
        logger.error(`EngineConfig.clock.clearTimeout() threw: ${String(error)}`);
      }
    },
  };
}

/** Wraps a user random source: a throw or a value outside [0, 1) means "no spread" (0.5). */
function safeRandom(random: () => number, logger: Logger): () => number {
  if (random === Math.random) return random;
  return () => {
    try {
      const value = random();
      if (typeof value === "number" && value >= 0 && value < 1) return value;
      logger.error(`EngineConfig.random() returned ${describeValue(value)}; it must return a number in [0, 1)`);
    } catch (error) {
      logger.error(`EngineConfig.random() threw: ${String(error)}`);
    }
    return 0.5;
  };
}

function milliseconds(config: EngineConfig, field: keyof EngineConfig, fallback: number): number {
  const value = config[field];
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`EngineConfig.${field} must be a finite number of milliseconds >= 0 (got ${describeValue(value)})`);
  }
  return value;
}

function optionalFunction<F>(config: EngineConfig, field: keyof EngineConfig): F | undefined {
  const value = config[field];
  if (value === undefined) return undefined;
  if (typeof value !== "function") {
    throw new TypeError(`EngineConfig.${field} must be a function when present (got ${describeValue(value)})`);
  }
  return value as F;
}

/** An object whose listed methods are each a function when present (at least one of them present). */
function optionalMethods<T>(config: EngineConfig, field: keyof EngineConfig, methods: readonly string[]): T | undefined {
  const value = config[field] as Record<string, unknown> | undefined;
  if (value === undefined) return undefined;
  if (value === null || typeof value !== "object") {
    throw new TypeError(`EngineConfig.${field} must be an object with any of ${methods.join(", ")} (got ${describeValue(value)})`);
  }
  let found = 0;
  for (const method of methods) {
    if (value[method] === undefined) continue;
    if (typeof value[method] !== "function") {
      throw new TypeError(`EngineConfig.${field}.${method} must be a function when present (got ${describeValue(value[method])})`);
    }
    found++;
  }
  if (found === 0) throw new TypeError(`EngineConfig.${field} has none of ${methods.join(", ")}; give it at least one, or leave ${field} out`);
  return value as T;
}

function withMethods<T>(config: EngineConfig, field: keyof EngineConfig, methods: readonly string[]): T | undefined {
  const value = config[field] as Record<string, unknown> | undefined;
  if (value === undefined) return undefined;
  if (value === null || typeof value !== "object") {
    throw new TypeError(`EngineConfig.${field} must be an object with ${methods.join(", ")} (got ${describeValue(value)})`);
  }
  for (const method of methods) {
    if (typeof value[method] !== "function") {
      throw new TypeError(`EngineConfig.${field} is missing method ${method}(); it needs ${methods.join(", ")}`);
    }
  }
  return value as T;
}

/**
 * Applies defaults and checks every field.
 * @throws TypeError naming the first invalid field.
 * @internal
 */
export function resolveConfig(config: EngineConfig | undefined): ResolvedConfig {
  if (config === undefined) config = {};
  if (config === null || typeof config !== "object") {
    throw new TypeError(`new Engine(config): config must be an object (got ${describeValue(config)})`);
  }
  checkKeys(config);
  const backoffFactor = config.backoffFactor === undefined ? 1.2 : config.backoffFactor;
  if (typeof backoffFactor !== "number" || !(backoffFactor === 0 || (backoffFactor >= 1 && Number.isFinite(backoffFactor)))) {
    throw new TypeError(`EngineConfig.backoffFactor must be 0 (no backoff) or a finite number >= 1 (got ${describeValue(backoffFactor)})`);
  }
  const jitter = config.jitter === undefined ? 0.1 : config.jitter;
  if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) {
    throw new TypeError(`EngineConfig.jitter must be a number from 0 to 1 (got ${describeValue(jitter)})`);
  }
  const isFatal = optionalFunction<(error: unknown) => boolean>(config, "isFatal");
  const userLogger = withMethods<Logger>(config, "logger", ["debug", "info", "warn", "error"]);
  const defaultLogger = userLogger === undefined ? debugLogger() : undefined;
  const logger = safeLogger(userLogger ?? (defaultLogger as DebugLogger));
  const metrics = optionalMethods<MetricsHook>(config, "metrics", ["recordStart", "recordStop", "recordBounce"]);
  const clock = withMethods<Clock>(config, "clock", ["now", "setTimeout", "clearTimeout"]) ?? systemClock;
  return {
    isFatal: isFatal ?? (() => false),
    worstError: optionalFunction(config, "worstError"),
    filter: optionalFunction(config, "filter"),
    errorDelay: milliseconds(config, "errorDelay", 3000),
    bounceDelay: milliseconds(config, "bounceDelay", 10),
    backoffFactor,
    backoffResetTime: milliseconds(config, "backoffResetTime", 60_000),
    maxDelay: milliseconds(config, "maxDelay", 120_000),
    jitter,
    stopTimeout: milliseconds(config, "stopTimeout", 30_000),
    clock: safeClock(clock, logger),
    logger,
    debugEnabled: defaultLogger === undefined || defaultLogger.enabled(),
    metrics,
    random: safeRandom(optionalFunction<() => number>(config, "random") ?? Math.random, logger),
    supervision: supervisionDefaults(config),
  };
}

/** The config's supervision defaults, checked; undefined when it sets none. */
function supervisionDefaults(config: EngineConfig): SupervisionOptions | undefined {
  const checked = checkSupervision("EngineConfig", config);
  const { heartbeatTimeout, heartbeatAction, restartLimit, quarantineTime } = checked;
  if (heartbeatTimeout === undefined && heartbeatAction === undefined && restartLimit === undefined && quarantineTime === undefined) return undefined;
  return checked;
}
