#!/usr/bin/env bash
# The package as npm would publish it. Packs it (prepack builds dist/), checks
# what the tarball holds, lints it with publint and arethetypeswrong, then
# installs it into a fresh project WITHOUT any peer dependency and:
#   - checks that npm pulled in no peer (rxjs, etcd3, @viz-js/viz are optional);
#   - loads every entry point from ESM and from CommonJS (an entry may fail only
#     for want of an optional peer; "." and "./testing" must load), and runs an
#     engine driven by the testing kit, both ways, where reading engine.events
#     throws the error that says to install rxjs and the engine carries on;
#   - type-checks a consumer with TypeScript (node16 ESM and CJS, bundler, and
#     without @types/node), including a compile-time refusal of an undeclared input.
# Fails on any error. Run from anywhere: bash .ci/pack-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/manifold-engine-pack.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== npm pack (prepack builds dist/)"
# Lifecycle output goes to stdout too, so find the tarball by name rather than parsing it.
npm pack --pack-destination "$work" >&2
tarball=$(ls "$work"/manifold-engine-*.tgz)
echo "packed $(basename "$tarball"): $(wc -c <"$tarball") bytes"

echo "== tarball contents"
tar -tzf "$tarball" | sed 's#^package/##' | sort >"$work/files.txt"
for required in package.json README.md LICENSE CHANGELOG.md \
  dist/index.js dist/index.cjs dist/index.d.ts dist/index.d.cts \
  dist/testing.js dist/testing.cjs dist/testing.d.ts dist/testing.d.cts; do
  grep -qx "$required" "$work/files.txt" || { echo "missing from the tarball: $required" >&2; exit 1; }
done
if grep -vE '^(package\.json|README\.md|LICENSE|CHANGELOG\.md|dist/.*)$' "$work/files.txt" | grep .; then
  echo "the tarball holds files outside dist/ and the docs (above); check package.json \"files\"" >&2
  exit 1
fi
if grep -E '\.map$' "$work/files.txt"; then
  echo "the tarball holds sourcemaps (above); the README explains why it should not" >&2
  exit 1
fi
echo "$(wc -l <"$work/files.txt") files, all expected"

echo "== publint (warnings count as errors)"
npx --no-install publint run "$tarball" --strict

echo "== arethetypeswrong (profile node16: ESM and CJS under node16/nodenext and bundler resolution)"
npx --no-install attw "$tarball" --profile node16

echo "== install into a fresh project, without peers"
consumer="$work/consumer"
mkdir -p "$consumer"
cd "$consumer"
printf '{ "name": "pack-check-consumer", "version": "1.0.0", "private": true }\n' >package.json
npm install "$tarball" --no-audit --no-fund --prefer-offline --loglevel=error
npm ls --all
npm ls --all --parseable >installed.txt
peers=$(node -p 'Object.keys(require(process.argv[1]).peerDependencies ?? {}).join(" ")' "$root/package.json")
for peer in $peers; do
  if [ -e "node_modules/$peer" ] || grep -q "/node_modules/$peer\$" installed.txt; then
    echo "npm installed the peer dependency $peer: make it optional in peerDependenciesMeta" >&2
    exit 1
  fi
done
echo "no peer installed (${peers:-none declared})"

# Every export of the installed package, and its optional peers, for the load checks.
node -e '
  const pkg = require("./node_modules/manifold-engine/package.json");
  const entries = Object.keys(pkg.exports).filter((key) => key !== "./package.json").map((key) => "manifold-engine" + key.slice(1));
  const optional = Object.keys(pkg.peerDependenciesMeta ?? {}).filter((name) => pkg.peerDependenciesMeta[name].optional);
  require("node:fs").writeFileSync("entries.json", JSON.stringify({ entries, optional }));
'

cat >load-checks.mjs <<'EOF'
// Every entry point loads, or fails only for want of an optional peer; then an engine runs
// under the testing kit's clock. Shared by load.mjs and load.cjs: `load(specifier)` imports
// (ESM) or requires (CJS), so each module system loads every entry itself.
import { readFileSync } from "node:fs";

export async function loadChecks(kind, load) {
  const { entries, optional } = JSON.parse(readFileSync("entries.json", "utf8"));
  const mustLoad = new Set(["manifold-engine", "manifold-engine/testing"]);
  for (const entry of entries) {
    try {
      await load(entry);
      console.log(`${kind}: ${entry} loads`);
    } catch (error) {
      const message = String(error?.message);
      const peer = optional.find((name) => message.includes(`'${name}'`) || message.includes(`"${name}"`));
      if (mustLoad.has(entry) || !["MODULE_NOT_FOUND", "ERR_MODULE_NOT_FOUND"].includes(error?.code) || peer === undefined) throw error;
      console.log(`${kind}: ${entry} needs the optional peer ${peer}, which is not installed: fine`);
    }
  }
  const { Engine, manifold, resource, valueWorker } = await load("manifold-engine");
  const { TestClock, waitForState } = await load("manifold-engine/testing");
  const clock = new TestClock();
  const engine = new Engine({ clock });
  const greeting = resource("greeting");
  let seen;
  engine.install(greeting, manifold({ inputs: [], start: () => valueWorker("hello"), output: (worker) => worker.value }));
  engine.install("reader", manifold({ inputs: [greeting], start: (context) => valueWorker((seen = context.getResource(greeting))) }));
  await waitForState(engine, "reader", "started", { clock });
  // rxjs (an optional peer) is not installed: reading engine.events throws an error saying what to install,
  // and the engine carries on (a manifold installed afterwards starts).
  let eventsError;
  try {
    void engine.events;
  } catch (error) {
    eventsError = error;
  }
  if (!String(eventsError?.message).includes("npm install rxjs")) {
    throw new Error(`${kind}: engine.events without rxjs should throw an error naming "npm install rxjs"; got ${eventsError === undefined ? "no error" : eventsError}`);
  }
  console.log(`${kind}: without rxjs, engine.events throws: ${eventsError.message}`);
  engine.install("after", manifold({ inputs: [], start: () => valueWorker(1) }));
  await waitForState(engine, "after", "started", { clock });
  engine.kill();
  await engine.wait();
  if (seen !== "hello" || engine.report().state !== "stopped") throw new Error(`${kind} engine run failed: ${JSON.stringify(engine.report())}`);
  console.log(`${kind}: an engine ran under the TestClock and stopped cleanly`);
}
EOF

cat >load.mjs <<'EOF'
import { loadChecks } from "./load-checks.mjs";

await loadChecks("ESM", (specifier) => import(specifier));
EOF

cat >load.cjs <<'EOF'
import("./load-checks.mjs")
  .then(({ loadChecks }) => loadChecks("CJS", (specifier) => require(specifier)))
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
EOF

echo "== load and use the package from ESM and CommonJS"
node load.mjs
node load.cjs

echo "== type-check a TypeScript consumer"
mkdir -p ts
# The same code as ESM (.mts) and CommonJS (.cts): each resolves its own declarations.
for ext in mts cts; do
  cat >"ts/consumer.$ext" <<'EOF'
import { Engine, manifold, resource, valueWorker, type EngineErrorOptions, type StartContext } from "manifold-engine";
import { TestClock, waitForState } from "manifold-engine/testing";

interface Db {
  query(sql: string): string[];
}
const db = resource<Db>("db");
const mailer = resource<{ send(to: string): void }>("mailer");

export async function run(): Promise<string[]> {
  const clock = new TestClock();
  const engine = new Engine({ clock, errorDelay: 100 });
  engine.install(db, manifold({ inputs: [], start: () => valueWorker<Db>({ query: () => ["row"] }), output: (worker) => worker.value }));
  let rows: string[] = [];
  engine.install(
    "reader",
    manifold({
      inputs: [db, "config"],
      start: (context) => {
        rows = context.getResource(db).query("select 1");
        const config: unknown = context.getResource("config");
        // @ts-expect-error mailer is not a declared input
        context.getResource(mailer);
        // @ts-expect-error nor is "confg"
        context.getResource("confg");
        const signal: AbortSignal = context.signal;
        void config;
        void signal;
        return valueWorker(rows.length);
      },
    }),
  );
  await waitForState(engine, "reader", "started", { clock });
  const loose: StartContext | undefined = undefined;
  const options: EngineErrorOptions = { cause: loose };
  void options;
  await engine[Symbol.asyncDispose]();
  return rows;
}
EOF
done
tsc="node $root/node_modules/typescript/bin/tsc"
common='"strict": true, "noEmit": true, "skipLibCheck": false, "exactOptionalPropertyTypes": true, "target": "ES2022"'
# With @types/node (what a Node project has): node16 resolution, ESM and CJS files.
cat >ts/tsconfig.node16.json <<EOF
{ "compilerOptions": { $common, "module": "node16", "moduleResolution": "node16", "lib": ["ES2022", "ESNext.Disposable"],
  "types": ["node"], "typeRoots": ["$root/node_modules/@types"] }, "files": ["consumer.mts", "consumer.cts"] }
EOF
# Bundler resolution (Vite, esbuild, webpack users).
cat >ts/tsconfig.bundler.json <<EOF
{ "compilerOptions": { $common, "module": "esnext", "moduleResolution": "bundler", "lib": ["ES2022", "ESNext.Disposable"],
  "types": ["node"], "typeRoots": ["$root/node_modules/@types"] }, "files": ["consumer.mts"] }
EOF
# Without @types/node: the DOM lib provides AbortSignal, esnext.disposable Symbol.asyncDispose (README, "TypeScript").
cat >ts/tsconfig.no-node-types.json <<EOF
{ "compilerOptions": { $common, "module": "node16", "moduleResolution": "node16", "lib": ["ES2022", "DOM", "ESNext.Disposable"],
  "types": [] }, "files": ["consumer.mts", "consumer.cts"] }
EOF
# The declarations name rxjs's Observable (the type of engine.events), so a
# TypeScript consumer with skipLibCheck off needs rxjs's types resolvable
# (README, "TypeScript"): give this consumer the repository's copy, after the
# npm ls check above has shown that installing the package pulled in none.
ln -sfn "$root/node_modules/rxjs" node_modules/rxjs
for config in node16 bundler no-node-types; do
  $tsc -p "ts/tsconfig.$config.json"
  echo "TypeScript consumer ($config): compiles"
done

echo "== pack check passed"
