/**
 * Compile-time checks. The `expectTypeOf` and `@ts-expect-error` lines are
 * checked by `npm run typecheck` (tsconfig.test.json includes this file): an
 * unused `@ts-expect-error` fails it, so each line below proves a call is
 * refused. The last block compiles snippets with the TypeScript compiler to
 * pin the error message a user sees.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, expectTypeOf, it } from "vitest";
import {
  Engine,
  manifold,
  resource,
  valueWorker,
  type Clock,
  type EngineErrorOptions,
  type ErrorOptions,
  type InputName,
  type Manifold,
  type Resource,
  type ResourceValue,
  type StartContext,
  type Worker,
} from "../src/index.js";
import { TestClock, type ReportingEngine } from "../src/testing.js";

interface Db {
  query(sql: string): string[];
}
interface Config {
  readonly url: string;
}
interface Mailer {
  send(to: string): void;
}
const db = resource<Db>("db");
const config = resource<Config>("config");
const mailer = resource<Mailer>("mailer");

describe("getResource accepts only the declared inputs (inferred from `inputs`, no `as const`)", () => {
  it("tokens: each returns its own type; an undeclared token is a compile error", () => {
    manifold({
      inputs: [db, config],
      start: (context) => {
        expectTypeOf(context.getResource(db)).toEqualTypeOf<Db>();
        expectTypeOf(context.getResource(config)).toEqualTypeOf<Config>();
        // @ts-expect-error mailer is not in inputs
        context.getResource(mailer);
        // @ts-expect-error only tokens are declared: no plain string
        context.getResource("db");
        // @ts-expect-error hasResource is checked the same way
        context.hasResource(mailer);
        expectTypeOf(context.hasResource(db)).toEqualTypeOf<boolean>();
        return valueWorker(0);
      },
    });
  });

  it("plain strings: the declared names are accepted (returning unknown), a misspelt one is not", () => {
    manifold({
      inputs: [db, "config"],
      start: (context) => {
        expectTypeOf(context.getResource("config")).toEqualTypeOf<unknown>();
        expectTypeOf(context.getResource(db)).toEqualTypeOf<Db>();
        // @ts-expect-error "confg" is not declared
        context.getResource("confg");
        // @ts-expect-error nor is mailer
        context.getResource(mailer);
        expectTypeOf(context.hasResource("config")).toEqualTypeOf<boolean>();
        return valueWorker(0);
      },
    });
  });

  it("no inputs: nothing can be asked for", () => {
    manifold({
      inputs: [],
      start: (context) => {
        // @ts-expect-error inputs is empty
        context.getResource(db);
        // @ts-expect-error inputs is empty
        context.getResource("anything");
        return valueWorker(0);
      },
    });
  });

  it("works destructured, and in an async start", () => {
    manifold({
      inputs: [db],
      start: async ({ getResource, hasResource }) => {
        expectTypeOf(getResource(db)).toEqualTypeOf<Db>();
        // @ts-expect-error undeclared
        getResource(config);
        expectTypeOf(hasResource(db)).toBeBoolean();
        await Promise.resolve();
        return valueWorker(getResource(db));
      },
    });
  });

  it("inputs of a wide type (a string[] variable, InputName[]) accept any name, as before", () => {
    const names: string[] = ["a", "b"];
    manifold({
      inputs: names,
      start: (context) => {
        expectTypeOf(context.getResource("whatever")).toEqualTypeOf<unknown>();
        // @ts-expect-error a string[] declares strings, not tokens
        context.getResource(db);
        return valueWorker(0);
      },
    });
    const mixed: InputName[] = [db, "x"];
    manifold({
      inputs: mixed,
      start: (context) => {
        expectTypeOf(context.getResource(db)).toEqualTypeOf<Db>();
        expectTypeOf(context.getResource("anything")).toEqualTypeOf<unknown>();
        return valueWorker(0);
      },
    });
  });

  it("a union of declared tokens gives the union of their types", () => {
    manifold({
      inputs: [db, config],
      start: (context) => {
        const either: Resource<Db> | Resource<Config> = Math.random() > 0.5 ? db : config;
        expectTypeOf(context.getResource(either)).toEqualTypeOf<Db | Config>();
        return valueWorker(0);
      },
    });
    expectTypeOf<ResourceValue<Resource<Db>>>().toEqualTypeOf<Db>();
    expectTypeOf<ResourceValue<"x">>().toEqualTypeOf<unknown>();
    expectTypeOf<ResourceValue<InputName>>().toEqualTypeOf<unknown>();
  });

  it("infers the worker and output types alongside the inputs", () => {
    const m = manifold({
      inputs: [config],
      start: (context) => valueWorker(context.getResource(config).url),
      output: (worker) => worker.value.length,
    });
    expectTypeOf(m).toEqualTypeOf<Manifold<Worker & { readonly value: string }, number, Resource<Config>>>();
  });
});

describe("every existing way of writing a manifold still compiles", () => {
  it("manifolds written without manifold(), or typed as Manifold, take any input (checked at run time)", () => {
    const engine = new Engine({ clock: new TestClock() });
    engine.install("loose", {
      inputs: [db],
      start: (context) => {
        expectTypeOf(context).toEqualTypeOf<StartContext>();
        expectTypeOf(context.getResource(mailer)).toEqualTypeOf<Mailer>();
        expectTypeOf(context.getResource("x")).toEqualTypeOf<unknown>();
        return valueWorker(0);
      },
    });
    const typed: Manifold = { inputs: ["a"], start: (context) => valueWorker(context.getResource("b")) };
    engine.install("typed", typed);
    engine.kill();
  });

  it("checked manifolds install under names and tokens, alone and in groups", () => {
    const engine = new Engine({ clock: new TestClock() });
    const provider = manifold({ inputs: [], start: () => valueWorker<Db>({ query: () => [] }), output: (worker) => worker.value });
    const user = manifold({ inputs: [db, "config"], start: (context) => valueWorker(context.getResource(db)) });
    engine.install(db, provider);
    engine.install("user", user);
    engine.installAll({ provider2: provider, user2: user });
    // @ts-expect-error a token's manifold must output its type
    engine.install(config, provider);
    engine.kill();
  });

  it("explicit type arguments still work (the inputs then default to any name)", () => {
    const m = manifold<Worker & { readonly value: number }, number>({
      inputs: [db],
      start: (context) => valueWorker(context.getResource("db") === undefined ? 0 : 1),
      output: (worker) => worker.value,
    });
    expectTypeOf(m).toEqualTypeOf<Manifold<Worker & { readonly value: number }, number>>();
  });

  it("StartContext without a type argument is the run-time contract: any name", () => {
    expectTypeOf<StartContext>().toEqualTypeOf<StartContext<InputName>>();
    expectTypeOf<Parameters<StartContext["hasResource"]>[0]>().toEqualTypeOf<InputName>();
  });
});

describe("other public types", () => {
  it("ErrorOptions is a deprecated alias of EngineErrorOptions", () => {
    expectTypeOf<ErrorOptions>().toEqualTypeOf<EngineErrorOptions>();
    expectTypeOf<EngineErrorOptions>().toEqualTypeOf<{ cause?: unknown }>();
  });

  it("the testing kit's clock is a Clock, and an Engine is what its helpers take", () => {
    expectTypeOf<TestClock>().toExtend<Clock>();
    expectTypeOf<Engine>().toExtend<ReportingEngine>();
  });
});

/** Type-checks `code` as a file in test/ and returns the messages of its errors, by line (1-based). */
function compileErrors(code: string): Map<number, string> {
  const here = dirname(fileURLToPath(import.meta.url));
  const configPath = join(here, "..", "tsconfig.json");
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
  if (parsed === undefined) throw new Error(`cannot read ${configPath}`);
  const file = join(here, "__types_snippet__.ts");
  const options = { ...parsed.options, noEmit: true, rootDir: join(here, "..") };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === file ? ts.createSourceFile(name, code, language) : getSourceFile(name, language, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const source = program.getSourceFile(file);
  const errors = new Map<number, string>();
  for (const diagnostic of [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]) {
    const line = source!.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line + 1;
    errors.set(line, ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"));
  }
  return errors;
}

describe("the error a user sees", () => {
  it("lists the declared inputs, for an undeclared token and for a misspelt name", () => {
    const errors = compileErrors(
      [
        'import { manifold, resource, valueWorker } from "../src/index.js";',
        "interface Db { query(sql: string): string[] }",
        "interface Mailer { send(to: string): void }",
        'const db = resource<Db>("db");',
        'const mailer = resource<Mailer>("mailer");',
        "manifold({",
        '  inputs: [db, "config"],',
        "  start: (context) => {",
        "    context.getResource(mailer);",
        '    context.getResource("confg");',
        "    context.getResource(db).query('ok');",
        '    context.getResource("config");',
        "    return valueWorker(0);",
        "  },",
        "});",
      ].join("\n"),
    );
    expect([...errors.keys()]).toEqual([9, 10]);
    expect(errors.get(9)).toMatch(/^Argument of type 'Resource<Mailer>' is not assignable to parameter of type 'Resource<Db> \| "config"'/);
    expect(errors.get(10)).toMatch(/^Argument of type '"confg"' is not assignable to parameter of type 'Resource<Db> \| "config"'/);
  }, 60_000);
});
