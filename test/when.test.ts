/**
 * Conditions (`when`, issue 12): the parser, evaluation, the normal form, every
 * syntax error with its position, requirement checks, and the selection of
 * manifolds by their conditions (pure: no engine involved).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConditionSyntaxError, errorIs, parseCondition, resource, StalePlanError, valueWorker, type Manifold, type Manifolds, type Worker } from "../src/index.js";
import { originalOf, selectByConditions as selectList } from "../src/when.js";

/** selectByConditions, with what it kept also as a record by name (in its order). */
function selectByConditions(manifolds: Manifolds, requirements?: Iterable<string>): ReturnType<typeof selectList> & { manifolds: Manifolds } {
  const selection = selectList(manifolds, requirements);
  return { ...selection, manifolds: Object.fromEntries(selection.kept.map((kept) => [kept.name, kept.manifold])) };
}

/** A manifold with extra fields (`when`, `config`) that the Manifold type may not list. */
function m(inputs: Manifold["inputs"], extra: Record<string, unknown> = {}): Manifold {
  return Object.assign({ inputs, start: (): Worker => valueWorker(0) }, extra);
}

function syntaxErrorOf(run: () => unknown): ConditionSyntaxError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConditionSyntaxError);
    return error as ConditionSyntaxError;
  }
  throw new Error("expected a ConditionSyntaxError, but nothing was thrown");
}

describe("parseCondition: evaluation", () => {
  const truth = (text: string, requirements: string[]): boolean => parseCondition(text).evaluate(requirements);

  it("a name is true exactly when it is among the requirements", () => {
    expect(truth("coffee", ["coffee"])).toBe(true);
    expect(truth("coffee", ["tea"])).toBe(false);
    expect(truth("coffee", [])).toBe(false);
  });

  it("! negates", () => {
    expect(truth("!coffee", [])).toBe(true);
    expect(truth("!coffee", ["coffee"])).toBe(false);
    expect(truth("!!coffee", ["coffee"])).toBe(true);
  });

  it("& is true only when both sides are", () => {
    expect([truth("a & b", []), truth("a & b", ["a"]), truth("a & b", ["b"]), truth("a & b", ["a", "b"])]).toEqual([false, false, false, true]);
  });

  it("| is true when either side is", () => {
    expect([truth("a | b", []), truth("a | b", ["a"]), truth("a | b", ["b"]), truth("a | b", ["a", "b"])]).toEqual([false, true, true, true]);
  });

  it("& binds tighter than |: a | b & c is a | (b & c)", () => {
    expect(truth("a | b & c", ["a"])).toBe(true); // (a | b) & c would be false
    expect(truth("a | b & c", ["b"])).toBe(false);
    expect(truth("b & c | a", ["a"])).toBe(true);
    expect(truth("a | b & c", ["b", "c"])).toBe(true);
  });

  it("! binds tighter than &: !a & b is (!a) & b", () => {
    expect(truth("!a & b", [])).toBe(false); // !(a & b) would be true
    expect(truth("!a & b", ["b"])).toBe(true);
    expect(truth("!a | b", ["a"])).toBe(false); // !(a | b) would be false too, so also check:
    expect(truth("!a | b", [])).toBe(true);
    expect(truth("!a | b", ["a", "b"])).toBe(true); // !(a | b) would be false
  });

  it("parentheses override precedence", () => {
    expect(truth("(a | b) & c", ["a"])).toBe(false);
    expect(truth("(a | b) & c", ["a", "c"])).toBe(true);
    expect(truth("!(a & b)", ["a"])).toBe(true);
    expect(truth("!(a & b)", ["a", "b"])).toBe(false);
    expect(truth("((((a))))", ["a"])).toBe(true);
  });

  it("ignores whitespace of any kind between tokens", () => {
    for (const text of ["a&!b", "  a   &   ! b  ", "\ta\n&\r\n!\u00a0b"]) {
      expect(truth(text, ["a"]), text).toBe(true);
      expect(truth(text, ["a", "b"]), text).toBe(false);
    }
  });

  it("names hold letters (any script), digits, '.', '_' and '-'", () => {
    const condition = parseCondition("os.debian & support_level-2 & 42 & café & x.y_z-1");
    expect(condition.names).toEqual(["42", "café", "os.debian", "support_level-2", "x.y_z-1"]);
    expect(condition.evaluate(["os.debian", "support_level-2", "42", "café", "x.y_z-1"])).toBe(true);
  });

  it("parses make-magic's own example and evaluates it as its documentation says", () => {
    const condition = parseCondition("(os.debian | os.rhel5) & hardware.vm & ( ! support_level.basic )");
    expect(condition.names).toEqual(["hardware.vm", "os.debian", "os.rhel5", "support_level.basic"]);
    expect(condition.toString()).toBe("(os.debian | os.rhel5) & hardware.vm & !support_level.basic");
    // "would only turn up if the requirements included os.debian or os.rhel5, also
    // included hardware.vm, but didn't include support_level.basic"
    expect(condition.evaluate(["os.debian", "hardware.vm"])).toBe(true);
    expect(condition.evaluate(["os.rhel5", "hardware.vm"])).toBe(true);
    expect(condition.evaluate(["os.rhel5", "os.debian", "hardware.vm", "other"])).toBe(true);
    expect(condition.evaluate(["hardware.vm"])).toBe(false);
    expect(condition.evaluate(["os.debian"])).toBe(false);
    expect(condition.evaluate(["os.debian", "hardware.vm", "support_level.basic"])).toBe(false);
  });

  it("lists each name once, sorted, and freezes the list", () => {
    const condition = parseCondition("b & a | !b & (c | a)");
    expect(condition.names).toEqual(["a", "b", "c"]);
    expect(Object.isFrozen(condition.names)).toBe(true);
  });

  it("accepts requirements as any iterable of strings", () => {
    const condition = parseCondition("a & b");
    function* generate(): Generator<string> {
      yield "a";
      yield "b";
    }
    expect(condition.evaluate(new Set(["a", "b"]))).toBe(true);
    expect(condition.evaluate(generate())).toBe(true);
    expect(condition.evaluate(new Map([["a", 1], ["b", 2]]).keys())).toBe(true);
    expect(condition.evaluate(["a"])).toBe(false);
  });

  it("handles nesting 20,000 deep without overflowing the stack", () => {
    const depth = 20_000;
    const nested = `${"(".repeat(depth)}a${")".repeat(depth)}`;
    expect(parseCondition(nested).evaluate(["a"])).toBe(true);
    expect(parseCondition(nested).toString()).toBe("a");
    const nots = `${"!".repeat(depth)}a`;
    expect(parseCondition(nots).evaluate([])).toBe(false); // an even number of negations
    expect(parseCondition(nots).toString()).toBe(nots);
    const wide = Array.from({ length: depth }, (_, i) => `n${i}`).join(" | ");
    expect(parseCondition(wide).evaluate([`n${depth - 1}`])).toBe(true);
  });
});

describe("parseCondition: normal form", () => {
  it.each([
    ["a&b", "a & b"],
    ["  a   |b ", "a | b"],
    ["( ! x )", "!x"],
    ["!!x", "!!x"],
    ["a & (b & c)", "a & b & c"],
    ["(a & b) & c", "a & b & c"],
    ["a | (b | c)", "a | b | c"],
    ["a | (b & c)", "a | b & c"],
    ["(a | b) & c", "(a | b) & c"],
    ["a & (b | c)", "a & (b | c)"],
    ["!(a & b)", "!(a & b)"],
    ["!(a | b) | c", "!(a | b) | c"],
    ["!(!a)", "!!a"],
    ["((a))", "a"],
  ])("%j prints as %j", (text, normal) => {
    expect(parseCondition(text).toString()).toBe(normal);
    expect(parseCondition(normal).toString()).toBe(normal);
    expect(String(parseCondition(text))).toBe(normal);
  });
});

describe("parseCondition: syntax errors name the fault and its position", () => {
  // [expression, position, what the message says after `condition "<expression>": `]
  const cases: [string, number, string][] = [
    ["", 0, 'expected a name or "(" at position 0, found the end of the condition (an empty condition is not allowed'],
    ["   ", 3, 'expected a name or "(" at position 3, found the end of the condition (an empty condition is not allowed'],
    ["a & | b", 4, 'expected a name or "(" at position 4, found "|"'],
    ["a &", 3, 'expected a name or "(" at position 3, found the end of the condition'],
    ["a & ", 4, 'expected a name or "(" at position 4, found the end of the condition'],
    ["& a", 0, 'expected a name or "(" at position 0, found "&"'],
    ["| a", 0, 'expected a name or "(" at position 0, found "|"'],
    ["!", 1, 'expected a name or "(" at position 1, found the end of the condition'],
    ["a && b", 3, 'expected a name or "(" at position 3, found "&"'],
    ["a !b", 2, 'expected "&" or "|" at position 2, found "!"'],
    ["a b", 2, 'expected "&" or "|" at position 2, found "b"'],
    ["a (b)", 2, 'expected "&" or "|" at position 2, found "("'],
    ["(a b)", 3, 'expected "&", "|" or ")" at position 3, found "b"'],
    ["()", 1, 'expected a name or "(" at position 1, found ")"'],
    ["(a", 2, 'expected ")" at position 2, found the end of the condition: the "(" at position 0 is not closed'],
    ["((a)", 4, 'expected ")" at position 4, found the end of the condition: the "(" at position 0 is not closed'],
    ["(a) & (b", 8, 'expected ")" at position 8, found the end of the condition: the "(" at position 6 is not closed'],
    ["a)", 1, 'unexpected ")" at position 1: no "(" is open'],
    ["(a))", 3, 'unexpected ")" at position 3: no "(" is open'],
    ["a $ b", 2, 'unexpected character "$" at position 2: names hold letters, digits, ".", "_" and "-"'],
    ["a && b || c", 3, 'expected a name or "(" at position 3, found "&"'],
    ["a & 😀", 4, 'unexpected character "😀" at position 4'],
    ["a,b", 1, 'unexpected character "," at position 1'],
    ["a = b", 2, 'unexpected character "=" at position 2'],
  ];

  it.each(cases)("%j: position %i", (expression, position, detail) => {
    const error = syntaxErrorOf(() => parseCondition(expression));
    expect(error.name).toBe("ConditionSyntaxError");
    expect(error.expression).toBe(expression);
    expect(error.position).toBe(position);
    expect(error.manifoldName).toBeUndefined();
    expect(error.message.startsWith(`condition ${JSON.stringify(expression)}: ${detail}`), error.message).toBe(true);
    expect(errorIs(new Error("wrapped", { cause: error }), ConditionSyntaxError)).toBe(true);
  });

  it("gives the issue's message for its example", () => {
    expect(syntaxErrorOf(() => parseCondition("a & | b")).message).toBe('condition "a & | b": expected a name or "(" at position 4, found "|"');
  });

  it("refuses a text that is not a string with a TypeError", () => {
    for (const bad of [undefined, null, 42, ["a"], { when: "a" }]) {
      expect(() => parseCondition(bad as unknown as string)).toThrow(TypeError);
      expect(() => parseCondition(bad as unknown as string)).toThrow(/parseCondition\(text\): text must be a string/);
    }
  });
});

describe("requirements must be an iterable of strings", () => {
  const condition = parseCondition("a");
  it.each([
    ["a string", "coffee", /requirements must be an iterable of names such as \["coffee"\], not a string/],
    ["a number", 5, /requirements must be an iterable of names, such as an array or a Set of strings \(got number 5\)/],
    ["null", null, /requirements must be an iterable of names.*\(got null\)/],
    ["a plain object", { coffee: true }, /requirements must be an iterable of names.*\(got an object/],
    ["an array holding a number", ["a", 1], /requirements must hold only strings, but item 1 is number 1/],
    ["a Map", new Map([["a", 1]]), /item 0 is an array of length 2 \(a Map iterates \[key, value\] pairs: pass map.keys\(\)\)/],
  ])("evaluate refuses %s", (_, requirements, message) => {
    expect(() => condition.evaluate(requirements as Iterable<string>)).toThrow(TypeError);
    expect(() => condition.evaluate(requirements as Iterable<string>)).toThrow(message);
    expect(() => selectByConditions({ x: m([], { when: "a" }) }, requirements as Iterable<string>)).toThrow(message);
  });
});

describe("ConditionSyntaxError and StalePlanError", () => {
  it("take (message?, options?) like the other error classes and set name", () => {
    const cause = new Error("root");
    const syntax = new ConditionSyntaxError(undefined, { manifoldName: "x", expression: "a &", position: 3, cause });
    expect(syntax.message).toBe('manifold "x": condition "a &": syntax error at position 3');
    expect([syntax.name, syntax.manifoldName, syntax.expression, syntax.position, syntax.cause]).toEqual(["ConditionSyntaxError", "x", "a &", 3, cause]);
    expect(new ConditionSyntaxError("custom").message).toBe("custom");

    const stale = new StalePlanError(undefined, { expected: 3, actual: 5 });
    expect(stale.name).toBe("StalePlanError");
    expect([stale.expected, stale.actual]).toEqual([3, 5]);
    expect(stale.message).toMatch(/computed against generation 3 .* now at generation 5.*nothing was changed: compute a new plan/);
    expect(String(new StalePlanError("x"))).toBe("StalePlanError: x");
  });

  it("recognise instances made by another copy of the package (the registry-wide brand)", () => {
    const fromOtherCopy = (name: string): object => Object.create(Error.prototype, { [Symbol.for(`manifold-engine.${name}`)]: { value: true } }) as object;
    expect(fromOtherCopy("ConditionSyntaxError")).toBeInstanceOf(ConditionSyntaxError);
    expect(fromOtherCopy("StalePlanError")).toBeInstanceOf(StalePlanError);
    expect(fromOtherCopy("StalePlanError")).not.toBeInstanceOf(ConditionSyntaxError);
  });
});

describe("selectByConditions", () => {
  it("keeps manifolds without when and those whose when holds; skips the rest, sorted by name, with their when", () => {
    const manifolds: Manifolds = {
      always: m([]),
      coffee: m([], { when: "coffee" }),
      tea: m([], { when: "tea & !coffee" }),
      breakfast: m([], { when: "!fasting" }),
      decaf: m([], { when: "coffee & decaf" }),
    };
    const selection = selectByConditions(manifolds, ["coffee"]);
    expect(Object.keys(selection.manifolds)).toEqual(["always", "coffee", "breakfast"]);
    expect(selection.skipped).toEqual([
      { name: "decaf", when: "coffee & decaf" },
      { name: "tea", when: "tea & !coffee" },
    ]);
    // Nothing lost an input, so every kept manifold is the object given.
    for (const name of Object.keys(selection.manifolds)) expect(selection.manifolds[name]).toBe(manifolds[name]);
  });

  it("treats absent requirements as none", () => {
    const selection = selectByConditions({ a: m([], { when: "x" }), b: m([], { when: "!x" }) });
    expect(Object.keys(selection.manifolds)).toEqual(["b"]);
  });

  it("removes left-out names from the inputs of the rest, keeping tokens as tokens", () => {
    const db = resource<number>("db");
    const original = m([db, "coffee", "cache"], { config: { port: 1 }, stopTimeout: 5, when: "!off" });
    const manifolds: Manifolds = { coffee: m([], { when: "coffee" }), app: original, cache: m([]), db: m([]) };
    const selection = selectByConditions(manifolds, []);
    const app = selection.manifolds.app as Manifold & { config?: unknown; when?: unknown };
    expect(app).not.toBe(original);
    expect(app.inputs).toEqual([db, "cache"]);
    expect(app.inputs[0]).toBe(db);
    expect(original.inputs).toEqual([db, "coffee", "cache"]); // the user's object is untouched
    expect(app.config).toBe((original as unknown as { config: unknown }).config);
    expect(app.stopTimeout).toBe(5);
    expect(app.when).toBe("!off");
    expect(Object.keys(app)).toEqual(Object.keys(original));
    expect(originalOf(app)).toBe(original);
    expect(originalOf(original)).toBe(original);
    expect(selection.manifolds.cache).toBe(manifolds.cache);
  });

  it("strips only the names left out in this call, and chains of left-out manifolds", () => {
    const manifolds: Manifolds = {
      wake: m([]),
      make_coffee: m(["wake"], { when: "coffee" }),
      drink_coffee: m(["make_coffee"], { when: "coffee" }),
      work: m(["wake", "drink_coffee", "not_installed"]),
    };
    expect(selectByConditions(manifolds, ["coffee"]).manifolds.work).toBe(manifolds.work);
    const without = selectByConditions(manifolds, []);
    expect(Object.keys(without.manifolds)).toEqual(["wake", "work"]);
    expect(without.manifolds.work?.inputs).toEqual(["wake", "not_installed"]);
  });

  it("keeps `this` working in start, output and filter of a plain manifold (they run on the original)", async () => {
    const seen: unknown[] = [];
    const original = {
      inputs: ["gone"],
      label: "plain",
      start(): Worker {
        seen.push(this);
        return valueWorker((this as { label: string }).label);
      },
      output(worker: Worker & { value?: unknown }): unknown {
        seen.push(this);
        return worker.value;
      },
      filter(error: unknown): unknown {
        seen.push(this);
        return error;
      },
    } as unknown as Manifold;
    const derived = selectByConditions({ gone: m([], { when: "never" }), it: original }, []).manifolds.it as Manifold;
    const worker = await derived.start({} as never);
    expect(derived.output?.(worker)).toBe("plain");
    expect(derived.filter?.("e")).toBe("e");
    expect(seen).toEqual([original, original, original]);
  });

  it("keeps class-based manifolds working: #private fields, prototype methods and getters", async () => {
    class Service implements Manifold<Worker & { value: string }, string> {
      readonly inputs = ["gone", "db"];
      readonly #secret = "private";
      get stopTimeout(): number {
        return this.#secret.length;
      }
      start(): Worker & { value: string } {
        return valueWorker(this.#secret);
      }
      output(worker: Worker & { value: string }): string {
        return `${worker.value}:${this.#secret}`;
      }
    }
    const original = new Service();
    const derived = selectByConditions({ gone: m([], { when: "never" }), svc: original as Manifold }, []).manifolds.svc as Manifold<
      Worker & { value: string },
      string
    >;
    expect(derived).not.toBe(original);
    expect(derived.inputs).toEqual(["db"]);
    const worker = await derived.start({} as never);
    expect(worker.value).toBe("private");
    expect(derived.output?.(worker)).toBe("private:private");
    expect(derived.stopTimeout).toBe(7);
    expect(Object.keys(derived)).toEqual(Object.keys(original));
  });

  it("derives from a frozen or null-prototype manifold too", () => {
    const frozen = Object.freeze(m(["gone", "x"], { config: 1 }));
    const bare = Object.assign(Object.create(null) as object, { inputs: ["gone"], start: () => valueWorker(1) }) as Manifold;
    const selection = selectByConditions({ gone: m([], { when: "never" }), frozen, bare }, []);
    expect(selection.manifolds.frozen?.inputs).toEqual(["x"]);
    expect(selection.manifolds.bare?.inputs).toEqual([]);
    expect(Object.getPrototypeOf(selection.manifolds.bare)).toBe(null);
  });

  it("parses and evaluates each distinct expression text once per call", () => {
    const manifolds: Manifolds = {};
    for (let i = 0; i < 1000; i++) manifolds[`m${i}`] = m([], { when: i % 2 === 0 ? "a & b" : "!a" });
    manifolds.odd = m([], { when: "a&b" }); // a different text, however equivalent
    const selection = selectByConditions(manifolds, ["a", "b"]);
    expect(selection.parsed).toBe(3);
    expect(Object.keys(selection.manifolds)).toHaveLength(501);
  });

  it("turns each kept manifold into what `keep` returns, in order, once every when is checked", () => {
    const calls: string[] = [];
    const manifolds: Manifolds = { a: m([]), gone: m([], { when: "x" }), b: m(["gone", "a"]) };
    const selection = selectList(manifolds, [], (name, manifold) => {
      calls.push(name);
      return `${name}:${manifold.inputs.join(",")}`;
    });
    expect(selection.kept).toEqual(["a:", "b:a"]);
    expect(calls).toEqual(["a", "b"]);

    const bad: Manifolds = { a: m([]), b: m([], { when: "(" }) };
    const keep = (): never => {
      throw new Error("keep must not run before every when is checked");
    };
    expect(() => selectList(bad, [], keep)).toThrow(ConditionSyntaxError);
    expect(() => selectList({ a: m([]) }, [], keep)).toThrow("keep must not run");
  });

  it("handles manifolds named __proto__ or constructor", () => {
    const input: Manifolds = {};
    for (const name of ["__proto__", "constructor"]) Object.defineProperty(input, name, { value: m([], { when: "x" }), enumerable: true });
    expect(selectList(input, ["x"]).kept.map((kept) => kept.name)).toEqual(["__proto__", "constructor"]);
    expect(selectList(input, []).skipped.map((skipped) => skipped.name)).toEqual(["__proto__", "constructor"]);
  });

  it("passes malformed manifolds on unchanged, for install's checks to report", () => {
    const odd = { inputs: "not an array" } as unknown as Manifold;
    const selection = selectByConditions({ a: 42 as unknown as Manifold, b: odd, c: m([], { when: "x" }) }, []);
    expect(selection.manifolds.a).toBe(42);
    expect(selection.manifolds.b).toBe(odd);
  });

  describe("bad input: a specific error, and nothing changed", () => {
    const snapshot = (value: Manifolds): string => JSON.stringify(value, (_, v: unknown) => (typeof v === "function" ? "fn" : v));

    it.each([
      ["empty", "", 'manifold "bad": condition "": expected a name or "(" at position 0'],
      ["unbalanced", "(a & b", 'manifold "bad": condition "(a & b": expected ")" at position 6, found the end of the condition: the "(" at position 0 is not closed'],
      ["dangling operator", "a &", 'manifold "bad": condition "a &": expected a name or "(" at position 3, found the end of the condition'],
      ["a character outside the grammar", "a + b", 'manifold "bad": condition "a + b": unexpected character "+" at position 2'],
    ])("a malformed when (%s) throws ConditionSyntaxError naming the manifold", (_, when, message) => {
      const manifolds: Manifolds = { good: m(["bad"], { when: "x" }), bad: m([], { when }), later: m([], { when: "y" }) };
      const before = snapshot(manifolds);
      const error = syntaxErrorOf(() => selectByConditions(manifolds, ["x"]));
      expect(error.message.startsWith(message), error.message).toBe(true);
      expect(error.manifoldName).toBe("bad");
      expect(error.expression).toBe(when);
      expect(snapshot(manifolds)).toBe(before);
      expect(manifolds.good?.inputs).toEqual(["bad"]);
    });

    it("names the first manifold (in the record's order) with a malformed when, even when the text is shared", () => {
      const error = syntaxErrorOf(() => selectByConditions({ ok: m([], { when: "a" }), first: m([], { when: "a |" }), second: m([], { when: "a |" }) }, []));
      expect(error.manifoldName).toBe("first");
    });

    it.each([
      ["a number", 42, /manifold "bad": when must be a string condition such as "coffee & !decaf" \(got number 42\); omit it/],
      ["null", null, /manifold "bad": when must be a string condition .*\(got null\)/],
      ["an array", ["a"], /manifold "bad": when must be a string condition .*\(got an array of length 1\)/],
    ])("a when that is %s throws a TypeError naming the manifold", (_, when, message) => {
      expect(() => selectByConditions({ bad: m([], { when }) }, [])).toThrow(TypeError);
      expect(() => selectByConditions({ bad: m([], { when }) }, [])).toThrow(message);
    });

    it.each([
      ["null", null, /manifolds must be a plain object of name -> manifold \(got null\)/],
      ["an array", [m([])], /manifolds must be a plain object .*\(got an array of length 1\); key each manifold by its name/],
      ["a Map", new Map([["a", m([])]]), /manifolds must be a plain object .*; pass Object.fromEntries\(map\)/],
      ["a class instance", new (class Registry {})(), /manifolds must be a plain object/],
      ["a string", "a", /manifolds must be a plain object .*\(got "a"\)/],
    ])("manifolds that is %s throws a TypeError", (_, manifolds, message) => {
      expect(() => selectByConditions(manifolds as unknown as Manifolds, [])).toThrow(TypeError);
      expect(() => selectByConditions(manifolds as unknown as Manifolds, [])).toThrow(message);
    });
  });
});

// ---------------------------------------------------------------------------
// Properties

type Expr = { kind: "name"; name: string } | { kind: "not"; operand: Expr } | { kind: "and" | "or"; left: Expr; right: Expr };

const NAMES = ["a", "b", "c", "os.debian", "hw_vm", "x-1", "9"];

const exprArbitrary: fc.Arbitrary<Expr> = fc.letrec<{ expr: Expr }>((tie) => ({
  expr: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(...NAMES).map((name): Expr => ({ kind: "name", name })),
    tie("expr").map((operand): Expr => ({ kind: "not", operand })),
    fc.record({ kind: fc.constantFrom("and" as const, "or" as const), left: tie("expr"), right: tie("expr") }),
  ),
})).expr;

/** The meaning of an expression, independently of the parser. */
function meaning(expr: Expr, required: ReadonlySet<string>): boolean {
  switch (expr.kind) {
    case "name":
      return required.has(expr.name);
    case "not":
      return !meaning(expr.operand, required);
    case "and":
      return meaning(expr.left, required) && meaning(expr.right, required);
    case "or":
      return meaning(expr.left, required) || meaning(expr.right, required);
  }
}

/** Writes an expression fully parenthesised, with whitespace chosen by `space`. */
function write(expr: Expr, space: () => string): string {
  switch (expr.kind) {
    case "name":
      return expr.name;
    case "not":
      return `!${space()}(${space()}${write(expr.operand, space)}${space()})`;
    default:
      return `(${space()}${write(expr.left, space)}${space()}${expr.kind === "and" ? "&" : "|"}${space()}${write(expr.right, space)}${space()})`;
  }
}

const spaces = fc.array(fc.constantFrom("", "", " ", "  ", "\t", "\n"), { minLength: 200, maxLength: 200 });
const requirementSets = fc.uniqueArray(fc.constantFrom(...NAMES, "unrelated"), { maxLength: NAMES.length });

describe("properties", () => {
  it("a written expression parses to a condition that means what it says", () => {
    fc.assert(
      fc.property(exprArbitrary, spaces, fc.array(requirementSets, { minLength: 1, maxLength: 8 }), (expr, blanks, sets) => {
        let i = 0;
        const condition = parseCondition(write(expr, () => blanks[i++ % blanks.length] as string));
        for (const set of sets) expect(condition.evaluate(set)).toBe(meaning(expr, new Set(set)));
      }),
      { numRuns: 500 },
    );
  });

  it("parseCondition(c.toString()) evaluates like c, and the normal form is a fixed point", () => {
    fc.assert(
      fc.property(exprArbitrary, fc.array(requirementSets, { minLength: 1, maxLength: 8 }), (expr, sets) => {
        const condition = parseCondition(write(expr, () => " "));
        const normal = condition.toString();
        const again = parseCondition(normal);
        expect(again.toString()).toBe(normal);
        expect(again.names).toEqual(condition.names);
        for (const set of sets) expect(again.evaluate(set)).toBe(condition.evaluate(set));
      }),
      { numRuns: 500 },
    );
  });

  it("any text made of the grammar's characters either parses or throws a ConditionSyntaxError inside the text", () => {
    const piece = fc.constantFrom("a", "b", "c.d", "!", "&", "|", "(", ")", " ", "$");
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 20 }), (pieces) => {
        const text = pieces.join("");
        try {
          const condition = parseCondition(text);
          // What parses, prints and parses again to the same meaning.
          const again = parseCondition(condition.toString());
          for (const set of [[], ["a"], ["b", "c.d"], ["a", "b", "c.d"]]) expect(again.evaluate(set)).toBe(condition.evaluate(set));
        } catch (error) {
          expect(error).toBeInstanceOf(ConditionSyntaxError);
          const { position, expression } = error as ConditionSyntaxError;
          expect(expression).toBe(text);
          expect(position).toBeGreaterThanOrEqual(0);
          expect(position).toBeLessThanOrEqual(text.length);
          expect((error as Error).message).toContain(`at position ${position}`);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
