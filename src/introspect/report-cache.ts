/**
 * One report snapshot shared by every request within `maxAge` milliseconds,
 * with each rendering of it (text, JSON, Mermaid, DOT, metrics) made once.
 *
 * Why: `engine.report()` is synchronous and walks every manifold (about 20 ms
 * at 10,000 manifolds), and rendering and compressing it costs as much again.
 * A thousand clients asking at once must not make the process compute a
 * thousand reports: a snapshot serves every request for `maxAge`, or for four
 * times what the snapshot and its renderings cost, whichever is longer. So,
 * however many clients ask, serving reports takes at most about a fifth of
 * the process's time, and the engine keeps the rest. The age is measured from
 * when the snapshot was finished, so a slow worker `report()` is paid once
 * per window too. `maxAge` 0 opts out: a fresh snapshot for every request.
 */
import { gzip } from "node:zlib";
import type { EngineReport } from "../report.js";
import type { IntrospectableEngine } from "./types.js";

/** A shared, short-lived report snapshot and its renderings. @internal */
export class ReportCache {
  readonly #engine: IntrospectableEngine;
  readonly #maxAge: number;
  readonly #now: () => number;
  #report: EngineReport | undefined;
  #takenAt = 0;
  /** Milliseconds spent on the current snapshot: the report and each rendering. */
  #cost = 0;
  readonly #bodies = new Map<string, string>();
  readonly #gzipped = new Map<string, Promise<Buffer>>();
  /** How many times `engine.report()` was called (for tests and benchmarks). */
  reports = 0;

  /**
   * @param maxAge - milliseconds a snapshot is served for; 0 takes a new one for every request.
   * @param now - monotonic milliseconds.
   */
  constructor(engine: IntrospectableEngine, maxAge: number, now: () => number = () => performance.now()) {
    this.#engine = engine;
    this.#maxAge = maxAge;
    this.#now = now;
  }

  /** The current snapshot. Throws what `engine.report()` throws. */
  snapshot(): EngineReport {
    if (this.#report === undefined || this.#maxAge === 0 || this.#now() - this.#takenAt > Math.max(this.#maxAge, 4 * this.#cost)) {
      this.#bodies.clear();
      this.#gzipped.clear();
      this.#report = undefined;
      this.reports++;
      const started = this.#now();
      // Whatever the engine returned: the renderings read it defensively (see IntrospectableEngine.report).
      const report = this.#engine.report() as EngineReport;
      this.#report = report;
      this.#takenAt = this.#now();
      this.#cost = this.#takenAt - started;
      return report;
    }
    return this.#report;
  }

  /**
   * `body(key, render)` gzipped, once per snapshot and `key`, on libuv's
   * thread pool (compressing a 25 MB report must not block the engine).
   */
  gzipped(key: string, render: (report: EngineReport) => string): Promise<Buffer> {
    const body = this.body(key, render);
    let compressed = this.#gzipped.get(key);
    if (compressed === undefined) {
      compressed = new Promise<Buffer>((resolve, reject) => gzip(body, { level: 6 }, (error, result) => (error === null ? resolve(result) : reject(error))));
      this.#gzipped.set(key, compressed);
    }
    return compressed;
  }

  /** `render(snapshot)`, computed once per snapshot and `key`. */
  body(key: string, render: (report: EngineReport) => string): string {
    const report = this.snapshot();
    let body = this.#bodies.get(key);
    if (body === undefined) {
      const started = this.#now();
      body = render(report);
      this.#cost += this.#now() - started;
      this.#bodies.set(key, body);
    }
    return body;
  }
}
