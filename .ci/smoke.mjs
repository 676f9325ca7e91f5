// The smoke checks (smoke-checks.mjs) of the built package, loaded from ESM.
import { runSmokeChecks } from "./smoke-checks.mjs";

await runSmokeChecks("ESM", (specifier) => import(specifier), undefined);
