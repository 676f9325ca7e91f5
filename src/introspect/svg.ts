/**
 * `/graph.svg`: the DOT graph rendered offline by `@viz-js/viz` (Graphviz
 * compiled to WebAssembly), an optional peer dependency loaded on first use.
 *
 * Why lazily: the package must load without it, and most users never ask for
 * an SVG. The module and its WebAssembly instance are loaded once, on the
 * first request, and reused; a failed load is remembered as "not installed"
 * so every request answers 501 quickly with what to install.
 */

/** The part of `@viz-js/viz`'s instance used here. */
interface Viz {
  renderString(input: string, options: { format: string; engine?: string }): string;
}

/** Why SVG rendering is not available. @internal */
export class VizMissingError extends Error {
  constructor(cause: unknown) {
    super(
      "rendering /graph.svg needs the optional package @viz-js/viz, which could not be loaded: install it next to manifold-engine (npm install @viz-js/viz), or fetch /graph.dot and render it with Graphviz",
      { cause },
    );
    this.name = "VizMissingError";
  }
}

let loading: Promise<Viz> | undefined;

/** The shared Viz instance; rejects with {@link VizMissingError} when `@viz-js/viz` cannot be loaded. @internal */
export function loadViz(): Promise<Viz> {
  loading ??= import("@viz-js/viz").then(
    (module: { instance(): Promise<Viz> }) => module.instance(),
    (error: unknown) => {
      throw new VizMissingError(error);
    },
  );
  return loading;
}

/** Renders `dot` as SVG with Graphviz's `dot` layout. @internal */
export async function renderSvg(dot: string): Promise<string> {
  const viz = await loadViz();
  return viz.renderString(dot, { format: "svg", engine: "dot" });
}
