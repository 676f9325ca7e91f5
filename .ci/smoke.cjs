// The smoke checks (smoke-checks.mjs) of the built package, loaded from CommonJS.
const { sep } = require("node:path");

// Whether a package was required so far (the main entry must not load etcd3, an optional peer).
const loadedPackage = (name) => Object.keys(require.cache).some((file) => file.includes(`${sep}${name}${sep}`));

import("./smoke-checks.mjs")
  .then(({ runSmokeChecks }) => runSmokeChecks("CJS", (specifier) => require(specifier), loadedPackage))
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
