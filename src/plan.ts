/**
 * Desired state (Machination's `update`): compares the installed manifolds
 * with the desired ones and says what carrying out the difference takes:
 * what to install, uninstall and replace, what stays, and which of the
 * manifolds that stay are restarted because an input of theirs changes.
 * Pure: nothing here touches an engine; `engine.plan` and `engine.apply` call it.
 *
 * Cost: one pass over the desired set (each manifold is compared with the
 * installed one), one over the installed set (what is no longer desired),
 * and one depth-first walk that finds cycles and spreads restarts. Given the
 * installed graph's dependents (the engine has them), the walk starts from
 * what changes and visits only what depends on it; otherwise it walks the
 * whole desired graph once. Never a rescan per changed manifold.
 */
import { isDeepStrictEqual } from "node:util";
import { CycleError, quote } from "./errors.js";
import { MANIFOLD_KEYS, type Manifold } from "./manifold.js";
import { originalOf, parseCondition, type SkippedManifold } from "./when.js";

/**
 * One manifold as a plan sees it: its name, the manifold object, and its
 * input names after conditions (tokens resolved to names). The engine's
 * checked manifolds and nodes have this shape.
 */
export interface PlanEntry {
  /** The manifold's name. */
  readonly name: string;
  /** The manifold (as given, or as conditions derived it). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly manifold: Manifold<any, any>;
  /** Its input names after conditions. */
  readonly inputs: readonly string[];
}

/** The installed manifolds, as a plan reads them; a `Map<string, PlanEntry>` is one. */
export interface InstalledSet {
  /** The entry installed under `name`, if any. */
  get(name: string): PlanEntry | undefined;
  /** Every installed entry. */
  values(): Iterable<PlanEntry>;
  /** How many entries are installed. Optional: with it, a plan that keeps or replaces all of them skips looking for the absent. */
  readonly size?: number | undefined;
  /**
   * The installed entries that list `name` among their inputs (whether or not
   * `name` is installed). Optional: with it, restarts and cycles are found by
   * walking from what changes to what depends on it, O(changed + their
   * dependents); without it, by one walk of the whole desired graph.
   */
  dependents?(name: string): Iterable<PlanEntry>;
}

/**
 * What `engine.apply(desired)` does, or would do: each list holds manifold
 * names, sorted (by UTF-16 code units, as `Array.prototype.sort` does).
 *
 * `install`, `replace` and `keep` split the desired set (after conditions);
 * `uninstall`, `replace` and `keep` split the installed set. `restart` is the
 * part of `keep` that is restarted anyway; `skip` lists the manifolds left
 * out by their `when` (a skipped name that was installed is in `uninstall` too).
 */
export interface Plan {
  /** Desired and not installed: installed and started. */
  readonly install: readonly string[];
  /** Installed and not desired (or left out by `when`): stopped and removed. */
  readonly uninstall: readonly string[];
  /** Installed and desired, but changed (see `reasons`): the old worker is stopped, then the new manifold started. */
  readonly replace: readonly string[];
  /** Installed and desired unchanged: the installed manifold stays (its worker keeps running unless it is in `restart`). */
  readonly keep: readonly string[];
  /** Left out because their `when` is false for the requirements. */
  readonly skip: readonly string[];
  /**
   * Kept manifolds whose worker is restarted because an input of theirs is
   * installed, uninstalled, replaced or itself restarted (transitively).
   */
  readonly restart: readonly string[];
  /**
   * Why each name in `replace` and `restart` is there, e.g. `config changed`,
   * `inputs changed: +cache -db`, `input "db" replaced`; several reasons are
   * joined with "; ". A null-prototype object.
   */
  readonly reasons: Readonly<Record<string, string>>;
  /** The generation of the installed set the plan was computed against (see `apply`'s `ifGeneration`). */
  readonly generation: number;
}

/** Where each desired name ends up. */
const INSTALL = 1;
const REPLACE = 2;
const KEEP = 3;

/**
 * Computes the plan that turns `installed` into `desired`.
 *
 * A desired manifold is unchanged, and kept, when its inputs (after
 * conditions) are those installed and either it is the installed manifold
 * object itself, or both carry a `config` that is deeply equal
 * (`util.isDeepStrictEqual`) and their `when` (compared in normal form) and
 * every other manifold field that is not a function on both sides
 * (`stopTimeout`, `heartbeatTimeout` and the like) are equal. Functions are not compared: a daemon that rebuilds its manifolds from
 * the same configuration creates new closures each time. Anything else is
 * replaced, with its reasons.
 *
 * @param installed - what the engine has installed.
 * @param desired - the desired manifolds after conditions (each name once),
 *   with the ones conditions left out.
 * @param generation - the installed set's generation, carried into the plan.
 * @throws CycleError (naming a manifold the plan installs or replaces, and
 *   the cycle) if the desired manifolds' inputs form a cycle, as `install`
 *   would for the manifold that closes it; TypeError if a desired name repeats.
 */
export function computePlan(
  installed: InstalledSet,
  desired: { readonly entries: Iterable<PlanEntry>; readonly skipped?: readonly SkippedManifold[] | undefined },
  generation: number,
): Plan {
  const entries: PlanEntry[] = [];
  const index = new Map<string, number>();
  for (const entry of desired.entries) {
    if (index.has(entry.name)) {
      throw new TypeError(`plan: manifold ${quote(entry.name)} is desired twice; give each manifold one name`);
    }
    index.set(entry.name, entries.length);
    entries.push(entry);
  }

  const reasons = Object.create(null) as Record<string, string>;
  const status = new Uint8Array(entries.length);
  const install: string[] = [];
  const replace: string[] = [];
  const keep: string[] = [];
  const normal = new Map<string, string>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as PlanEntry;
    const old = installed.get(entry.name);
    if (old === undefined) {
      status[i] = INSTALL;
      install.push(entry.name);
      continue;
    }
    let changes: string[] | undefined;
    try {
      changes = differences(old, entry, normal);
    } catch (error) {
      // A throwing getter or a revoked proxy: what cannot be compared is replaced.
      changes = [`could not be compared (${error instanceof Error ? error.message : String(error)}), so it counts as changed`];
    }
    if (changes !== undefined) {
      status[i] = REPLACE;
      replace.push(entry.name);
      reasons[entry.name] = changes.join("; ");
    } else {
      status[i] = KEEP;
      keep.push(entry.name);
    }
  }

  const uninstall: string[] = [];
  if (installed.size === undefined || installed.size !== keep.length + replace.length) {
    for (const old of installed.values()) if (!index.has(old.name)) uninstall.push(old.name);
  }

  const restart =
    installed.dependents === undefined
      ? walkDesired(entries, index, status, installed)
      : walkFromChanges(entries, index, status, uninstall, (name) => (installed.dependents as (name: string) => Iterable<PlanEntry>).call(installed, name));
  const restarts = new Uint8Array(entries.length);
  for (const at of restart) restarts[at] = 1;
  const restartNames = restart.map((at) => {
    const entry = entries[at] as PlanEntry;
    reasons[entry.name] = restartCauses(entry, index, status, restarts, installed);
    return entry.name;
  });

  const skip = (desired.skipped ?? []).map((skipped) => skipped.name);
  return Object.freeze({
    install: sorted(install),
    uninstall: sorted(uninstall),
    replace: sorted(replace),
    keep: sorted(keep),
    skip: sorted(skip),
    restart: sorted(restartNames),
    reasons: Object.freeze(reasons),
    generation,
  });
}

function sorted(names: string[]): readonly string[] {
  return Object.freeze(names.sort());
}

/**
 * Finds the kept manifolds that restart, without the installed graph's
 * dependents: walks the whole desired graph depth first, inputs before
 * dependents, so that when a kept manifold is finished every input's fate is
 * known; it restarts if one of them is installed, replaced, uninstalled or
 * restarts. The same walk finds a cycle (an input still on the path).
 * Iterative, so a long chain cannot overflow the stack. O(N + E).
 * @returns the indices of the entries that restart.
 */
function walkDesired(entries: readonly PlanEntry[], index: ReadonlyMap<string, number>, status: Uint8Array, installed: InstalledSet): number[] {
  const count = entries.length;
  // Each edge is looked up once, on the way down, and kept here for the way
  // up: resolved[first[at] + k] is input k of entry `at`, as an entry index,
  // or NOT_DESIRED / UNINSTALLED for a name that is not desired.
  const first = new Uint32Array(count + 1);
  for (let at = 0; at < count; at++) first[at + 1] = (first[at] as number) + (entries[at] as PlanEntry).inputs.length;
  const resolved = new Int32Array(first[count] as number);
  // 0 unvisited, 1 on the path, 2 done.
  const state = new Uint8Array(count);
  const next = new Uint32Array(count);
  const restarts = new Uint8Array(count);
  const restart: number[] = [];
  const path: number[] = [];
  for (let root = 0; root < count; root++) {
    if (state[root] !== 0) continue;
    state[root] = 1;
    path.push(root);
    while (path.length > 0) {
      const at = path[path.length - 1] as number;
      const inputs = (entries[at] as PlanEntry).inputs;
      const position = next[at] as number;
      if (position < inputs.length) {
        next[at] = position + 1;
        const name = inputs[position] as string;
        const input = index.get(name);
        if (input === undefined) {
          resolved[(first[at] as number) + position] = installed.get(name) === undefined ? NOT_DESIRED : UNINSTALLED;
          continue;
        }
        resolved[(first[at] as number) + position] = input;
        // path[k] depends on path[k + 1]; `at` depends on `input`, which is on the path.
        if (state[input] === 1) throw cycleError(entries, status, path.slice(path.indexOf(input)));
        if (state[input] === 0) {
          state[input] = 1;
          path.push(input);
        }
        continue;
      }
      path.pop();
      state[at] = 2;
      if (status[at] !== KEEP || !inputChanged(resolved, first[at] as number, first[at + 1] as number, status, restarts)) continue;
      restarts[at] = 1;
      restart.push(at);
    }
  }
  return restart;
}

/** An input name that is neither desired nor installed (nothing changes for it), or installed and not desired. */
const NOT_DESIRED = -1;
const UNINSTALLED = -2;

/** Whether any of the resolved inputs `from`..`to` is installed, uninstalled, replaced or restarts. */
function inputChanged(resolved: Int32Array, from: number, to: number, status: Uint8Array, restarts: Uint8Array): boolean {
  for (let k = from; k < to; k++) {
    const input = resolved[k] as number;
    if (input === UNINSTALLED) return true;
    if (input >= 0 && (status[input] !== KEEP || restarts[input] === 1)) return true;
  }
  return false;
}

/**
 * Finds the kept manifolds that restart with the installed graph's
 * dependents: walks depth first from what changes (each installed or replaced
 * manifold, and the kept dependents of each uninstalled one) to what depends
 * on it in the desired graph. Every kept manifold reached restarts. A cycle
 * in the desired graph runs through a manifold that is installed or replaced
 * (the kept ones were installed without one), and everything on it depends on
 * that manifold, so the same walk meets it. O(changed + their dependents).
 * @returns the indices of the entries that restart.
 */
function walkFromChanges(
  entries: readonly PlanEntry[],
  index: ReadonlyMap<string, number>,
  status: Uint8Array,
  uninstall: readonly string[],
  installedDependents: (name: string) => Iterable<PlanEntry>,
): number[] {
  // The new edges: each installed or replaced entry, under each of its inputs.
  const added = new Map<string, number[]>();
  const roots: number[] = [];
  for (let at = 0; at < entries.length; at++) {
    if (status[at] === KEEP) continue;
    roots.push(at);
    for (const input of (entries[at] as PlanEntry).inputs) {
      const list = added.get(input);
      if (list === undefined) added.set(input, [at]);
      else list.push(at);
    }
  }
  // Who depends on `name` in the desired graph: the kept among its installed
  // dependents (their inputs are unchanged), and the new edges.
  const dependentsOf = (name: string): number[] => {
    const found: number[] = [];
    for (const dependent of installedDependents(name)) {
      const at = index.get(dependent.name);
      if (at !== undefined && status[at] === KEEP) found.push(at);
    }
    const more = added.get(name);
    if (more !== undefined) for (const at of more) found.push(at);
    return found;
  };
  for (const name of uninstall) for (const at of dependentsOf(name)) roots.push(at);

  // 0 unvisited, 1 on the path, 2 done; a path entry is a node and its dependents still to visit.
  const state = new Uint8Array(entries.length);
  const restart: number[] = [];
  const path: number[] = [];
  const pending: number[][] = [];
  for (const root of roots) {
    if (state[root] !== 0) continue;
    state[root] = 1;
    // A kept root depends on an uninstalled manifold.
    if (status[root] === KEEP) restart.push(root);
    path.push(root);
    pending.push(dependentsOf((entries[root] as PlanEntry).name));
    while (path.length > 0) {
      const todo = pending[pending.length - 1] as number[];
      if (todo.length === 0) {
        state[path.pop() as number] = 2;
        pending.pop();
        continue;
      }
      const dependent = todo.pop() as number;
      if (state[dependent] === 1) {
        // `dependent` depends on the last node of the path, which depends (down the path) on `dependent`.
        const at = path.indexOf(dependent);
        throw cycleError(entries, status, [dependent, ...path.slice(at + 1).reverse()]);
      }
      if (state[dependent] === 2) continue;
      state[dependent] = 1;
      if (status[dependent] === KEEP) restart.push(dependent);
      path.push(dependent);
      pending.push(dependentsOf((entries[dependent] as PlanEntry).name));
    }
  }
  return restart;
}

/** Why a kept manifold restarts: each changed input, in the order of its inputs. */
function restartCauses(entry: PlanEntry, index: ReadonlyMap<string, number>, status: Uint8Array, restarts: Uint8Array, installed: InstalledSet): string {
  const causes: string[] = [];
  for (const name of entry.inputs) {
    const input = index.get(name);
    const cause =
      input === undefined
        ? installed.get(name) === undefined
          ? undefined
          : "uninstalled"
        : status[input] === INSTALL
          ? "installed"
          : status[input] === REPLACE
            ? "replaced"
            : restarts[input] === 1
              ? "restarted"
              : undefined;
    if (cause !== undefined) causes.push(`input ${quote(name)} ${cause}`);
  }
  return causes.join("; ");
}

/**
 * A CycleError for `loop` (entry indices in "depends on" order: each depends
 * on the next, the last on the first), told from a manifold the plan installs
 * or replaces: the kept manifolds were installed without a cycle, so one of
 * those closes it.
 */
function cycleError(entries: readonly PlanEntry[], status: Uint8Array, loop: readonly number[]): CycleError {
  let first = loop.findIndex((at) => status[at] !== KEEP);
  if (first < 0) first = 0;
  const rotated = [...loop.slice(first), ...loop.slice(0, first)];
  const cycle = rotated.map((at) => (entries[at] as PlanEntry).name);
  cycle.push(cycle[0] as string);
  return new CycleError(
    `cannot install manifold ${quote(cycle[0] as string)}: its inputs close a dependency cycle ${cycle.map(quote).join(" -> ")}`,
    { cycle },
  );
}

// ---------------------------------------------------------------------------
// Same or changed

/**
 * Why `next` cannot keep `old` running, or `undefined` when it can. Every
 * difference is listed, so an operator sees all of them at once. (Most
 * manifolds are unchanged: nothing is allocated for them but what reading
 * their fields takes.)
 */
function differences(old: PlanEntry, next: PlanEntry, normal: Map<string, string>): string[] | undefined {
  const inputs = inputChanges(old.inputs, next.inputs);
  const changes: string[] = [];
  if (inputs !== undefined) changes.push(inputs);
  if (old.manifold === next.manifold) return inputs === undefined ? undefined : changes;
  const before = originalOf(old.manifold) as unknown as Record<string, unknown>;
  const after = originalOf(next.manifold) as unknown as Record<string, unknown>;
  if (before === after) return inputs === undefined ? undefined : changes;

  const oldConfig = read(before, "config");
  const newConfig = read(after, "config");
  if (oldConfig === undefined && newConfig === undefined) {
    changes.push("a different manifold object without config (give both a config to compare them by)");
  } else if (oldConfig === undefined) {
    changes.push("config added");
  } else if (newConfig === undefined) {
    changes.push("config removed");
  } else {
    const same = compare(oldConfig, newConfig);
    if (same !== true) changes.push(same === false ? "config changed" : `config could not be compared (${same}), so it counts as changed`);
  }

  const oldWhen = normalWhen(read(before, "when"), normal);
  const newWhen = normalWhen(read(after, "when"), normal);
  if (oldWhen !== newWhen) changes.push(`when changed: ${showWhen(oldWhen)} -> ${showWhen(newWhen)}`);

  for (const key of OPTION_KEYS) optionChange(key, read(before, key), read(after, key), changes);
  return changes.length > 0 ? changes : undefined;
}

/**
 * The fields compared as per-manifold options: every manifold field but
 * inputs, config and when, which are compared on their own (install refuses
 * any other key). Read by property access, so a class's getters count.
 */
const OPTION_KEYS: readonly string[] = MANIFOLD_KEYS.filter((key) => key !== "inputs" && key !== "config" && key !== "when");

/** Adds why option `key` changed from `a` to `b`, if it did; two functions are never a change. */
function optionChange(key: string, a: unknown, b: unknown, changes: string[]): void {
  if (typeof a === "function" && typeof b === "function") return;
  const same = compare(a, b);
  if (same === true) return;
  changes.push(same === false ? `${key} changed: ${showOption(a)} -> ${showOption(b)}` : `${key} could not be compared (${same}), so it counts as changed`);
}

/** `util.isDeepStrictEqual(a, b)`, or what went wrong if reading the values threw (a getter, a revoked proxy). */
function compare(a: unknown, b: unknown): boolean | string {
  try {
    return isDeepStrictEqual(a, b);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** `inputs changed: +added -removed`, in the order each list has them; `undefined` when the sets are equal. */
function inputChanges(old: readonly string[], next: readonly string[]): string | undefined {
  // The usual handful of inputs: scans; sets only for long lists.
  const oldHas = old.length > 16 ? new Set(old) : undefined;
  const nextHas = next.length > 16 ? new Set(next) : undefined;
  const parts: string[] = [];
  for (const name of next) if (!(oldHas?.has(name) ?? old.includes(name))) parts.push(`+${showName(name)}`);
  for (const name of old) if (!(nextHas?.has(name) ?? next.includes(name))) parts.push(`-${showName(name)}`);
  return parts.length > 0 ? `inputs changed: ${parts.join(" ")}` : undefined;
}

/** A name as it is when it could not be misread, quoted otherwise. */
function showName(name: string): string {
  return /^[\p{L}\p{Nd}._-]+$/u.test(name) && name.length <= 120 ? name : quote(name);
}

function read(manifold: Record<string, unknown>, key: string): unknown {
  return manifold[key];
}

/** `when` in normal form, so that `a&b` and `a & b` compare equal; "" for none, the text itself if it does not parse. */
function normalWhen(when: unknown, normal: Map<string, string>): string {
  if (when === undefined) return "";
  if (typeof when !== "string") return String(when);
  let form = normal.get(when);
  if (form === undefined) {
    try {
      form = parseCondition(when).toString();
    } catch {
      form = when;
    }
    normal.set(when, form);
  }
  return form;
}

function showWhen(when: string): string {
  return when === "" ? "(none)" : JSON.stringify(when);
}

function showOption(value: unknown): string {
  if (value === undefined) return "(none)";
  if (typeof value === "function") return "a function";
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint" || value === null) return String(value);
  return "a new value";
}
