// Loads the built CommonJS entry and runs a two-manifold engine to completion.
const { Engine, valueWorker, resource } = require("manifold-engine");

async function main() {
  const greeting = resource("greeting");
  const engine = new Engine({ bounceDelay: 0 });
  let seen;
  engine.install(greeting, { inputs: [], start: () => valueWorker("hello"), output: (w) => w.value });
  engine.install("reader", {
    inputs: [greeting],
    start: (ctx) => {
      seen = ctx.getResource(greeting);
      return valueWorker(seen);
    },
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  const report = engine.report();
  engine.kill();
  await engine.wait();
  if (seen !== "hello" || report.manifolds.reader.state !== "started" || engine.report().state !== "stopped") {
    console.error("CJS smoke test failed", { seen, report: engine.report() });
    process.exit(1);
  }
  console.log("CJS smoke test passed");
}
main().catch((error) => {
  console.error(error);
  process.exit(1);
});
