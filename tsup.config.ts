import { defineConfig } from "tsup";

export default defineConfig({
  // One entry per export of package.json: "." and each sub-path (manifold-engine/<name>).
  entry: {
    index: "src/index.ts",
    testing: "src/testing.ts",
    introspect: "src/introspect/index.ts",
    // The `manifold-engine` command (package.json "bin"); its shebang makes tsup mark it executable.
    cli: "src/cli.ts",
    etcd: "src/etcd.ts",
  },
  format: ["esm", "cjs"],
  dts: true,
  // No sourcemaps in the package (README, "What the package ships"): the output is unminified and
  // reads like the source, and maps with sourcesContent more than doubled the unpacked size.
  sourcemap: false,
  clean: true,
  target: "node20",
  // Keep `node:` specifiers as written (tsup strips them by default).
  removeNodeProtocol: false,
});
