import { defineConfig } from "tsup";

export default defineConfig({
  // One entry per export of package.json: "." and each sub-path (manifold-engine/<name>).
  entry: {
    index: "src/index.ts",
  },
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  // Keep `node:` specifiers as written (tsup strips them by default).
  removeNodeProtocol: false,
});
