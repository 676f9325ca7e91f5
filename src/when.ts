/**
 * Conditional manifolds (make-magic's `if`): a manifold's `when` is a boolean
 * expression over requirement names, and a manifold whose expression is false
 * for the requirements given is left out, its name removed from the inputs of
 * the rest. Pure: nothing here touches an engine.
 *
 * Grammar (whitespace between tokens is ignored):
 *
 * ```text
 * or      = and { "|" and }
 * and     = not { "&" not }
 * not     = "!" not | primary
 * primary = name | "(" or ")"
 * name    = 1*( letter | digit | "." | "_" | "-" )
 * ```
 *
 * The parser is a shunting-yard over a token stream and a condition is kept
 * as a postfix program evaluated with a stack: no recursion anywhere, so a
 * deeply nested expression cannot overflow the call stack.
 */
import { ConditionSyntaxError, describeValue, quote } from "./errors.js";
import type { Manifold, Manifolds } from "./manifold.js";
import { nameOf } from "./resource.js";

/**
 * A parsed `when` expression. Immutable; evaluating it has no side effects.
 */
export interface Condition {
  /** The distinct requirement names the expression mentions, sorted. */
  readonly names: readonly string[];
  /**
   * True when the expression holds for `requirements`: a name is true when it
   * is among them, false otherwise.
   * @throws TypeError if `requirements` is not an iterable of strings (a bare
   * string is refused too: it would iterate its characters).
   */
  evaluate(requirements: Iterable<string>): boolean;
  /**
   * The expression in normal form: one space around `&` and `|`, none after
   * `!`, and only the parentheses precedence needs (`a & (b & c)` becomes
   * `a & b & c`). Parsing it gives a condition that evaluates the same for
   * every set of requirements, and prints the same again.
   */
  toString(): string;
}

/** A manifold a call left out because its `when` was false. */
export interface SkippedManifold {
  /** The manifold's name. */
  readonly name: string;
  /** Its `when`, as written. */
  readonly when: string;
}

/** A manifold {@link selectByConditions} kept. @internal */
export interface KeptManifold {
  /** Its name. */
  readonly name: string;
  /**
   * The manifold to install: the object given, or, if it listed a manifold
   * left out, a new object without that input (see {@link selectByConditions}).
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly manifold: Manifold<any, any>;
}

/** What {@link selectByConditions} keeps and leaves out. @internal */
export interface Selection<K = KeptManifold> {
  /** The manifolds kept, in the order of the record given (each as the `keep` function made it). */
  readonly kept: readonly K[];
  /** The manifolds left out by their `when`, sorted by name. */
  readonly skipped: readonly SkippedManifold[];
  /** How many distinct expression texts were parsed (each once, however many manifolds share it). */
  readonly parsed: number;
}

// ---------------------------------------------------------------------------
// Tokens

const NOT = 0;
const AND = 1;
const OR = 2;
const OPEN = 3;
type Operator = typeof NOT | typeof AND | typeof OR;

/** A postfix program: a name pushes whether it is required; operators pop their operands. */
type Program = readonly (string | Operator)[];

/** One name (letters, decimal digits, ".", "_", "-"), matched from a given index (sticky): for names beyond ASCII. */
const NAME = /[\p{L}\p{Nd}._-]+/uy;
const SPACE = /\s/u;

/** ASCII characters of names: letters, digits, ".", "_", "-" (the common case, checked without a regex). */
function isAsciiNameChar(code: number): boolean {
  return (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || (code >= 48 && code <= 57) || code === 46 || code === 95 || code === 45;
}

/** Where the name starting at `at` ends, or `at` if no name starts there. */
function nameEnd(text: string, at: number): number {
  let end = at;
  while (end < text.length) {
    const code = text.charCodeAt(end);
    if (isAsciiNameChar(code)) {
      end++;
      continue;
    }
    if (code < 128) break;
    // A letter or digit of another script (possibly a surrogate pair): the regex knows Unicode.
    NAME.lastIndex = end;
    const match = NAME.exec(text);
    if (match === null) break;
    end += match[0].length;
  }
  return end;
}

/** What the parser reports for a malformed expression: what it expected, and where. */
interface Fault {
  readonly detail: string;
  readonly position: number;
}

/** How a token is named in a message. */
function describeToken(text: string, at: number): string {
  if (at >= text.length) return "the end of the condition";
  const end = nameEnd(text, at);
  if (end > at) return quote(text.slice(at, end));
  return JSON.stringify(String.fromCodePoint(text.codePointAt(at) as number));
}

/** The fault of finding the token at `position` where something else was expected. */
function unexpected(text: string, position: number, expectOperand: boolean, open: boolean): Fault {
  const expected = expectOperand ? 'expected a name or "("' : open ? 'expected "&", "|" or ")"' : 'expected "&" or "|"';
  return { detail: `${expected} at position ${position}, found ${describeToken(text, position)}`, position };
}

/** Moves operators from the stack to the output while they bind at least as tightly as `precedence` (so `&` and `|` are left-associative). */
function popWhile(operators: (Operator | typeof OPEN)[], output: (string | Operator)[], precedence: number): void {
  for (;;) {
    const top = operators[operators.length - 1];
    if (top === undefined || top === OPEN || PRECEDENCE[top] < precedence) return;
    output.push(top);
    operators.pop();
  }
}

/**
 * Parses `text` into a postfix program, or describes the first fault.
 * Shunting-yard, with the parser state saying whether an operand or an
 * operator comes next, so every fault is found at the token that causes it.
 */
function compile(text: string): Program | Fault {
  const output: (string | Operator)[] = [];
  // Operators waiting for their right operand, and where each open "(" is.
  const operators: (Operator | typeof OPEN)[] = [];
  const opened: number[] = [];
  let expectOperand = true;
  let at = 0;
  const length = text.length;

  while (at < length) {
    const code = text.charCodeAt(at);
    if (code === 32 || (code >= 9 && code <= 13) || (code > 127 && SPACE.test(text[at] as string))) {
      at++;
      continue;
    }
    if (code === 33 /* ! */ || code === 40 /* ( */) {
      if (!expectOperand) return unexpected(text, at, expectOperand, opened.length > 0);
      operators.push(code === 33 ? NOT : OPEN);
      if (code === 40) opened.push(at);
      at++;
      continue;
    }
    if (code === 38 /* & */ || code === 124 /* | */) {
      if (expectOperand) return unexpected(text, at, expectOperand, opened.length > 0);
      const operator = code === 38 ? AND : OR;
      popWhile(operators, output, PRECEDENCE[operator]);
      operators.push(operator);
      expectOperand = true;
      at++;
      continue;
    }
    if (code === 41 /* ) */) {
      if (expectOperand) return unexpected(text, at, expectOperand, opened.length > 0);
      if (opened.length === 0) {
        return { detail: `unexpected ")" at position ${at}: no "(" is open; remove it or add the "(" it closes`, position: at };
      }
      popWhile(operators, output, 0);
      operators.pop(); // the OPEN
      opened.pop();
      at++;
      continue;
    }
    const end = nameEnd(text, at);
    if (end === at) {
      const shown = JSON.stringify(String.fromCodePoint(text.codePointAt(at) as number));
      return {
        detail:
          `unexpected character ${shown} at position ${at}: names hold letters, digits, ".", "_" and "-"; ` +
          'the operators are "!" (not), "&" (and), "|" (or) and parentheses',
        position: at,
      };
    }
    if (!expectOperand) return unexpected(text, at, expectOperand, opened.length > 0);
    output.push(text.slice(at, end));
    expectOperand = false;
    at = end;
  }
  if (expectOperand) {
    const empty = output.length === 0 && operators.length === 0;
    return {
      detail: `expected a name or "(" at position ${length}, found the end of the condition${
        empty ? ' (an empty condition is not allowed: omit "when" to keep the manifold whatever the requirements)' : ""
      }`,
      position: length,
    };
  }
  if (opened.length > 0) {
    return {
      detail: `expected ")" at position ${length}, found the end of the condition: the "(" at position ${opened[opened.length - 1] as number} is not closed`,
      position: length,
    };
  }
  popWhile(operators, output, 0);
  return output;
}

const PRECEDENCE: Record<Operator, number> = { [NOT]: 3, [AND]: 2, [OR]: 1 };

function isFault(result: Program | Fault): result is Fault {
  return !Array.isArray(result);
}

// ---------------------------------------------------------------------------
// Conditions

/** A condition compiled from an expression that parsed. */
class CompiledCondition implements Condition {
  readonly #program: Program;
  #names: readonly string[] | undefined = undefined;
  #normal: string | undefined = undefined;

  constructor(program: Program) {
    this.#program = program;
  }

  // Made on first use: selecting manifolds never asks.
  get names(): readonly string[] {
    if (this.#names === undefined) {
      const names = new Set<string>();
      for (const step of this.#program) if (typeof step === "string") names.add(step);
      this.#names = Object.freeze([...names].sort());
    }
    return this.#names;
  }

  evaluate(requirements: Iterable<string>): boolean {
    return this.holds(requirementSet(requirements, "evaluate(requirements)"));
  }

  /** {@link Condition.evaluate} for requirements already checked. @internal */
  holds(required: ReadonlySet<string>): boolean {
    return run(this.#program, required);
  }

  toString(): string {
    if (this.#normal === undefined) this.#normal = render(this.#program);
    return this.#normal;
  }
}

/** Runs a postfix program: whether the expression holds for `required`. */
function run(program: Program, required: ReadonlySet<string>): boolean {
  // A fresh stack per call: a user's Set subclass could call back in from `has`.
  const stack: boolean[] = [];
  for (const step of program) {
    if (typeof step === "string") {
      stack.push(required.has(step));
    } else if (step === NOT) {
      stack.push(!stack.pop());
    } else {
      const right = stack.pop() as boolean;
      const left = stack.pop() as boolean;
      stack.push(step === AND ? left && right : left || right);
    }
  }
  return stack[0] as boolean;
}

/** Prints a postfix program in normal form; each operand remembers its precedence to decide on parentheses. */
function render(program: Program): string {
  const stack: { text: string; precedence: number }[] = [];
  const wrap = (operand: { text: string; precedence: number }, below: number): string =>
    operand.precedence < below ? `(${operand.text})` : operand.text;
  for (const step of program) {
    if (typeof step === "string") {
      stack.push({ text: step, precedence: 4 });
    } else if (step === NOT) {
      const operand = stack.pop() as { text: string; precedence: number };
      stack.push({ text: `!${wrap(operand, PRECEDENCE[NOT])}`, precedence: PRECEDENCE[NOT] });
    } else {
      const right = stack.pop() as { text: string; precedence: number };
      const left = stack.pop() as { text: string; precedence: number };
      const precedence = PRECEDENCE[step];
      // Both operators are associative, so an operand of the same operator needs no parentheses on either side.
      stack.push({ text: `${wrap(left, precedence)} ${step === AND ? "&" : "|"} ${wrap(right, precedence)}`, precedence });
    }
  }
  return (stack[0] as { text: string }).text;
}

/** The message of a ConditionSyntaxError: which manifold, the expression, what was expected where. */
function syntaxError(text: string, fault: Fault, manifoldName: string | undefined): ConditionSyntaxError {
  const shown = JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text);
  const prefix = manifoldName === undefined ? "" : `manifold ${quote(manifoldName)}: `;
  return new ConditionSyntaxError(`${prefix}condition ${shown}: ${fault.detail}`, {
    manifoldName,
    expression: text,
    position: fault.position,
  });
}

/**
 * Parses a `when` expression: requirement names (letters, digits, `.`, `_`,
 * `-`) combined with `!` (not), `&` (and), `|` (or) and parentheses, `!`
 * binding tightest and `|` loosest; whitespace is ignored.
 *
 * @example
 * ```ts
 * const c = parseCondition("(os.debian | os.rhel5) & hardware.vm & ( ! support_level.basic )");
 * c.evaluate(["os.debian", "hardware.vm"]); // true
 * c.names;      // ["hardware.vm", "os.debian", "os.rhel5", "support_level.basic"]
 * c.toString(); // "(os.debian | os.rhel5) & hardware.vm & !support_level.basic"
 * ```
 * @throws ConditionSyntaxError for a malformed expression, with the position
 * of the fault and what was expected there; TypeError if `text` is not a string.
 */
export function parseCondition(text: string): Condition {
  if (typeof text !== "string") {
    throw new TypeError(`parseCondition(text): text must be a string such as "coffee & !decaf" (got ${describeValue(text)})`);
  }
  const result = compile(text);
  if (isFault(result)) throw syntaxError(text, result, undefined);
  return new CompiledCondition(result);
}

// ---------------------------------------------------------------------------
// Requirements

/**
 * Checks `requirements` and returns them as a set. `undefined` means none.
 * @throws TypeError (its message prefixed with `where`, if not empty) saying what is wrong.
 * @internal
 */
export function requirementSet(requirements: Iterable<string> | undefined, where: string): ReadonlySet<string> {
  if (requirements === undefined) return EMPTY;
  where = where === "" ? "" : `${where}: `;
  if (typeof requirements === "string") {
    throw new TypeError(
      `${where}requirements must be an iterable of names such as ["coffee"], not a string (got ${describeValue(requirements)}; a string would count each character as a requirement)`,
    );
  }
  const iterable = requirements as unknown;
  if (iterable === null || (typeof iterable !== "object" && typeof iterable !== "function") || typeof (iterable as Iterable<unknown>)[Symbol.iterator] !== "function") {
    throw new TypeError(`${where}requirements must be an iterable of names, such as an array or a Set of strings (got ${describeValue(iterable)})`);
  }
  const set = new Set<string>();
  let index = 0;
  for (const name of iterable as Iterable<unknown>) {
    if (typeof name !== "string") {
      const hint = Array.isArray(name) && iterable instanceof Map ? " (a Map iterates [key, value] pairs: pass map.keys())" : "";
      throw new TypeError(`${where}requirements must hold only strings, but item ${index} is ${describeValue(name)}${hint}`);
    }
    set.add(name);
    index++;
  }
  return set;
}

const EMPTY: ReadonlySet<string> = new Set<string>();

// ---------------------------------------------------------------------------
// Selecting manifolds

/**
 * Where a derived manifold keeps the manifold it was made from, so that plans
 * compare what the user gave. A non-enumerable symbol-keyed field, invisible
 * to shape checks and spreads; cheaper than a WeakMap, whose entries the
 * garbage collector has to trace specially (measured: a third of the time
 * of a selection that derives many manifolds).
 */
const ORIGINAL = Symbol("manifold-engine.original");

/**
 * The manifold a user gave, behind one {@link selectByConditions} made
 * without some of its inputs; the manifold itself otherwise.
 * @internal
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function originalOf(manifold: Manifold<any, any>): Manifold<any, any> {
  return ((manifold as unknown as Record<symbol, Manifold<any, any> | undefined>)[ORIGINAL]) ?? manifold;
}

/** Fields of a manifold that conditions read; the `Manifold` type may not list them yet. */
interface WithWhen {
  readonly when?: unknown;
  readonly inputs?: unknown;
}

/**
 * Keeps the manifolds whose `when` holds for `requirements` (those without
 * `when` always), and removes the names of the others from the inputs of the
 * ones kept, so that they do not declare them. Pure: nothing is changed, and
 * nothing is thrown half-way (every expression is checked before any is
 * evaluated).
 *
 * Each distinct expression text is parsed and evaluated once per call, not
 * once per manifold.
 *
 * A kept manifold that loses inputs is a new object: it has the original's
 * own enumerable fields (the same keys, so shape checks see what the user
 * wrote), `inputs` without the left-out names (tokens kept as tokens), and
 * every method, own or inherited, calling the original's with the original
 * as `this` (so class-based manifolds with `#private` fields keep working).
 * A plain object gets a plain copy; any other object gets one inheriting
 * from it, so that its other fields still read through. {@link originalOf}
 * maps the new object back to the original, which is what plans compare.
 *
 * Shapes are not checked here beyond what conditions need: a manifold that is
 * not an object, or whose `inputs` is not an array, is passed on unchanged
 * for `install`'s checks to report. Pass those checks as `keep` (the engine
 * passes `checkManifold`): each kept manifold is then turned into what the
 * caller needs in the same pass, with no intermediate object per manifold
 * (measured: a third of the cost of a selection of 100,000).
 *
 * @param manifolds - a plain object of name -> manifold.
 * @param requirements - the names that are true; `undefined` means none.
 * @param keep - called for each kept manifold, in order, after every `when`
 *   has been checked; what it returns is listed in `kept`, and what it throws
 *   is thrown. Default: `{ name, manifold }`.
 * @throws TypeError if `manifolds` is not a plain object, `requirements` is
 * not an iterable of strings, or a `when` is present but not a string;
 * ConditionSyntaxError (naming the manifold) for a malformed `when`; what
 * `keep` throws.
 * @internal
 */
export function selectByConditions(manifolds: Manifolds, requirements?: Iterable<string> | undefined): Selection;
export function selectByConditions<K>(
  manifolds: Manifolds,
  requirements: Iterable<string> | undefined,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  keep: (name: string, manifold: Manifold<any, any>) => K,
): Selection<K>;
export function selectByConditions(
  manifolds: Manifolds,
  requirements?: Iterable<string> | undefined,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  keep: (name: string, manifold: Manifold<any, any>) => unknown = keptManifold,
): Selection<unknown> {
  checkRecord(manifolds);
  const required = requirementSet(requirements, "");
  const names = Object.keys(manifolds);
  const count = names.length;

  // Each distinct text is parsed and evaluated once. Evaluating has no side
  // effects, so doing it as soon as a text parses decides nothing before
  // every text has parsed; and only the answer is kept, so a call with many
  // distinct texts does not keep their programs alive (the garbage collector
  // then frees them young, which measured twice as fast).
  const candidates = new Array<unknown>(count);
  const verdicts = new Uint8Array(count); // NO_WHEN, HOLDS or FALSE
  const seen = new Map<string, boolean>();
  let skippedCount = 0;
  for (let i = 0; i < count; i++) {
    const name = names[i] as string;
    const candidate = manifolds[name] as unknown;
    candidates[i] = candidate;
    if (candidate === null || typeof candidate !== "object") continue;
    const when = (candidate as WithWhen).when;
    if (when === undefined) continue;
    if (typeof when !== "string") {
      throw new TypeError(
        `manifold ${quote(name)}: when must be a string condition such as "coffee & !decaf" (got ${describeValue(when)}); omit it to keep the manifold whatever the requirements`,
      );
    }
    let holds = seen.get(when);
    if (holds === undefined) {
      const result = compile(when);
      if (isFault(result)) throw syntaxError(when, result, name);
      holds = run(result, required);
      seen.set(when, holds);
    }
    verdicts[i] = holds ? HOLDS : FALSE;
    if (!holds) skippedCount++;
  }

  const skipped: SkippedManifold[] = [];
  const left = new Set<string>();
  if (skippedCount > 0) {
    for (let i = 0; i < count; i++) {
      if (verdicts[i] !== FALSE) continue;
      const name = names[i] as string;
      skipped.push({ name, when: (candidates[i] as WithWhen).when as string });
      left.add(name);
    }
    skipped.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  const kept: unknown[] = [];
  for (let i = 0; i < count; i++) {
    if (verdicts[i] === FALSE) continue;
    const name = names[i] as string;
    const candidate = candidates[i] as Manifold<any, any>;
    kept.push(keep(name, skippedCount > 0 ? withoutInputs(candidate, left) : candidate));
  }
  return { kept, skipped: Object.freeze(skipped), parsed: seen.size };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function keptManifold(name: string, manifold: Manifold<any, any>): KeptManifold {
  return { name, manifold };
}

/** What a manifold's `when` says in one call. */
const HOLDS = 1;
const FALSE = 2;

function checkRecord(manifolds: unknown): void {
  const prototype = manifolds !== null && typeof manifolds === "object" ? Object.getPrototypeOf(manifolds) : undefined;
  if (prototype !== Object.prototype && prototype !== null) {
    const hint = manifolds instanceof Map ? "; pass Object.fromEntries(map)" : Array.isArray(manifolds) ? "; key each manifold by its name" : "";
    throw new TypeError(`manifolds must be a plain object of name -> manifold (got ${describeValue(manifolds)})${hint}`);
  }
}

/** `manifold` without the inputs named in `left`; the manifold itself if it lists none of them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function withoutInputs(manifold: Manifold<any, any>, left: ReadonlySet<string>): Manifold<any, any> {
  if (manifold === null || typeof manifold !== "object") return manifold;
  const inputs = (manifold as WithWhen).inputs;
  if (!Array.isArray(inputs)) return manifold;
  let drop = false;
  for (const input of inputs) {
    const name = nameOf(input);
    if (name !== undefined && left.has(name)) {
      drop = true;
      break;
    }
  }
  if (!drop) return manifold;
  const kept = Object.freeze(inputs.filter((input) => {
    const name = nameOf(input);
    return name === undefined || !left.has(name);
  }));
  return derive(manifold, kept);
}

/**
 * A manifold like `original` but with `inputs`: see {@link selectByConditions}.
 * A plain object (the usual manifold) gets a plain copy, whose properties stay
 * fast; any other object gets an object inheriting from it, with forwarders
 * for the methods and getters of its prototype chain.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function derive(original: Manifold<any, any>, inputs: readonly unknown[]): Manifold<any, any> {
  const prototype = Object.getPrototypeOf(original) as object | null;
  const plain = prototype === Object.prototype || prototype === null;
  const derived = (plain ? (prototype === null ? Object.create(null) : {}) : Object.create(original)) as Record<string, unknown>;
  const source = original as unknown as Record<string, unknown>;
  const keys = Object.keys(original);
  // Own enumerable fields, in their order and enumerable on the copy too.
  for (const key of keys) {
    let value = key === "inputs" ? inputs : source[key];
    if (typeof value === "function") value = forwarder(original, key);
    if (plain && key !== "__proto__") derived[key] = value;
    else Object.defineProperty(derived, key, { value, enumerable: true, writable: true, configurable: true });
  }
  if (!keys.includes("inputs")) Object.defineProperty(derived, "inputs", { value: inputs, enumerable: false, writable: true, configurable: true });
  if (!plain) forwardInherited(original, prototype, derived, new Set<PropertyKey>([...keys, "inputs", "constructor"]));
  Object.defineProperty(derived, ORIGINAL, { value: originalOf(original) });
  return derived as unknown as Manifold<any, any>;
}

/** Gives `derived` a forwarder for each method and getter of `original`'s prototype chain (a class's), not enumerable as there. */
function forwardInherited(original: object, prototype: object | null, derived: object, done: Set<PropertyKey>): void {
  for (let at = prototype; at !== null && at !== Object.prototype; at = Object.getPrototypeOf(at) as object | null) {
    for (const key of Reflect.ownKeys(at)) {
      if (done.has(key)) continue;
      done.add(key);
      const descriptor = Object.getOwnPropertyDescriptor(at, key) as PropertyDescriptor;
      if (typeof descriptor.value === "function") {
        Object.defineProperty(derived, key, { value: forwarder(original, key), enumerable: false, writable: true, configurable: true });
      } else if (descriptor.get !== undefined) {
        // A getter may read #private fields: run it on the original.
        Object.defineProperty(derived, key, { get: () => Reflect.get(original, key, original), enumerable: false, configurable: true });
      }
    }
  }
}

/** A method that calls `original[key]` (looked up at call time) with `original` as `this`. */
function forwarder(original: object, key: PropertyKey): (...args: unknown[]) => unknown {
  // An anonymous arrow: a named function would make bundlers that keep names
  // (tsx does) set a name on every forwarder, several times the cost of making it.
  return (...args: unknown[]): unknown => Reflect.apply(Reflect.get(original, key) as (...a: unknown[]) => unknown, original, args);
}
