// Runs API Extractor once per public entry point: api-extractor.json is the
// main one ("."), and every api-extractor.<entry>.json beside it is a sub-path
// export (manifold-engine/<entry>). `check` fails on an unreported API change;
// `update` rewrites the reports in api-report/.
import { readdirSync } from "node:fs";
import { execFileSync } from "node:child_process";

const mode = process.argv[2];
if (mode !== "check" && mode !== "update") {
  console.error("usage: node scripts/api-report.mjs check|update");
  process.exit(2);
}
const configs = readdirSync(".")
  .filter((file) => /^api-extractor(\.[a-z-]+)?\.json$/.test(file))
  .sort();
for (const config of configs) {
  console.log(`== API report: ${config}`);
  const args = ["run", "-c", config];
  if (mode === "update") args.push("--local");
  execFileSync("npx", ["api-extractor", ...args], { stdio: "inherit" });
}
