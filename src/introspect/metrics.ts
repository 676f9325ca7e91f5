/**
 * `/metrics`: the report's bookkeeping in the Prometheus text exposition
 * format (version 0.0.4), written directly, so no metrics library is needed.
 *
 * Every series carries an `engine` label: "" for the engine being served,
 * and the path of manifold names ("model-workers", "model-workers/firewaller")
 * for engines nested in it, so one scrape covers the whole tree and the
 * label set of each metric is always the same. Per-manifold series carry a
 * `manifold` label; the state is one series per manifold labelled with its
 * current state (a stateset of four would quadruple a 100,000-manifold scrape).
 * Fields the report does not have (older engines) are left out, not zeroed.
 */
import type { EngineReport } from "../report.js";

/** Content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const STATES = ["starting", "started", "stopping", "stopped"] as const;
const MAX_NESTING = 12;

type Family = { name: string; type: "gauge" | "counter"; help: string; samples: string[] };

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function own(record: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

function finite(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/** A label value: backslash, double quote and line feed escaped, as the format says. */
function labelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labels(pairs: Record<string, string>): string {
  return `{${Object.entries(pairs)
    .map(([key, value]) => `${key}="${labelValue(value)}"`)
    .join(",")}}`;
}

function number(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(12).replace(/\.?0+$/, "");
}

class Families {
  readonly #families = new Map<string, Family>();

  add(name: string, type: Family["type"], help: string, labelSet: Record<string, string>, value: number): void {
    let family = this.#families.get(name);
    if (family === undefined) {
      family = { name, type, help, samples: [] };
      this.#families.set(name, family);
    }
    family.samples.push(`${name}${labels(labelSet)} ${number(value)}`);
  }

  toString(): string {
    const lines: string[] = [];
    for (const family of this.#families.values()) {
      lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`, ...family.samples);
    }
    return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
  }
}

function engineMetrics(report: unknown, engine: string, out: Families, nesting: number): void {
  if (!isRecord(report)) return;
  const manifolds = own(report, "manifolds");
  const entries = isRecord(manifolds) ? Object.keys(manifolds).map((name) => [name, own(manifolds, name)] as const) : [];
  out.add("manifold_engine_up", "gauge", "1 while the engine is started, 0 once it is stopping or stopped.", { engine }, own(report, "state") === "started" ? 1 : 0);
  const startedAt = own(report, "startedAt");
  const startedMs = typeof startedAt === "string" ? Date.parse(startedAt) : NaN;
  if (Number.isFinite(startedMs)) {
    out.add("manifold_engine_start_time_seconds", "gauge", "When the engine was created, in seconds since the epoch.", { engine }, startedMs / 1000);
  }
  const byState = new Map<string, number>(STATES.map((state) => [state, 0]));
  let starts = 0;
  for (const [, entry] of entries) {
    if (!isRecord(entry)) continue;
    const state = own(entry, "state");
    if (typeof state === "string" && byState.has(state)) byState.set(state, (byState.get(state) as number) + 1);
    starts += finite(own(entry, "startCount")) ?? 0;
  }
  for (const [state, n] of byState) out.add("manifold_engine_manifolds", "gauge", "Installed manifolds by state.", { engine, state }, n);
  const totals = own(report, "totals");
  const total = (key: string): number | undefined => (isRecord(totals) ? finite(own(totals, key)) : undefined);
  // The engine's own totals when it keeps them (they survive uninstalls); else the sum over installed manifolds.
  out.add("manifold_engine_starts_total", "counter", "Successful worker starts.", { engine }, total("starts") ?? starts);
  const failures = total("failures");
  if (failures !== undefined) out.add("manifold_engine_failures_total", "counter", "Worker or start failures (errors other than clean completion, MissingError and BounceError).", { engine }, failures);
  const bounces = total("bounces");
  if (bounces !== undefined) out.add("manifold_engine_bounces_total", "counter", "Dependents restarted because an input changed.", { engine }, bounces);

  for (const [name, entry] of entries) {
    if (!isRecord(entry)) continue;
    const manifold = { engine, manifold: name };
    const state = own(entry, "state");
    out.add("manifold_engine_manifold_state", "gauge", "1, labelled with the manifold's current state.", { ...manifold, state: typeof state === "string" ? state : "unknown" }, 1);
    const startCount = finite(own(entry, "startCount"));
    if (startCount !== undefined) out.add("manifold_engine_manifold_starts_total", "counter", "Successful starts of the manifold's worker.", manifold, startCount);
    const restartCount = finite(own(entry, "restartCount"));
    if (restartCount !== undefined) out.add("manifold_engine_manifold_restarts_total", "counter", "Starts after the first.", manifold, restartCount);
    const failureCount = finite(own(entry, "failureCount"));
    if (failureCount !== undefined) out.add("manifold_engine_manifold_failures_total", "counter", "Failures of the manifold's start or worker.", manifold, failureCount);
    const uptimeMs = finite(own(entry, "uptimeMs"));
    if (uptimeMs !== undefined && state === "started") out.add("manifold_engine_manifold_uptime_seconds", "gauge", "How long the running worker has been up.", manifold, uptimeMs / 1000);
    out.add("manifold_engine_manifold_error", "gauge", "1 when the manifold's last start or worker failed (its error is in the report).", manifold, typeof own(entry, "error") === "string" ? 1 : 0);
    const nested = own(entry, "report");
    if (nesting < MAX_NESTING && isRecord(nested) && isRecord(own(nested, "manifolds"))) {
      engineMetrics(nested, engine === "" ? name : `${engine}/${name}`, out, nesting + 1);
    }
  }
}

/**
 * The report as Prometheus text: `manifold_engine_up`, `_start_time_seconds`,
 * `_manifolds{state}`, `_starts_total`, `_failures_total`, `_bounces_total`,
 * and per manifold `_manifold_state{state}`, `_manifold_starts_total`,
 * `_manifold_restarts_total`, `_manifold_failures_total`,
 * `_manifold_uptime_seconds`, `_manifold_error`; nested engines included
 * under their `engine` label. Never throws.
 * @internal
 */
export function toPrometheus(report: EngineReport): string {
  const out = new Families();
  engineMetrics(report, "", out, 0);
  return out.toString();
}
