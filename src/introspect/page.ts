/**
 * `/`: the introspection page, one self-contained HTML response.
 *
 * Security: the Content-Security-Policy allows no script and no style except
 * the page's own, named by their SHA-256 hashes (computed here from the very
 * text sent), connections only to the page's own origin, no plugins, forms,
 * frames or base URL. The page holds no data in its HTML except one attribute
 * (why the event stream is unavailable, escaped); everything else is fetched
 * and inserted as text. So a manifold named `<script>alert(1)</script>` is
 * shown as those characters, and an injected script would not run anyway.
 */
import { createHash } from "node:crypto";
import { PAGE_SCRIPT } from "./page-script.js";

const PAGE_STYLE = `
:root { color-scheme: light; --started: #d8f3dc; --started-edge: #2d6a4f; --starting: #fff3bf; --starting-edge: #a07c00;
  --stopping: #ffe8cc; --stopping-edge: #c2590a; --stopped: #e9ecef; --stopped-edge: #6c757d; --failed: #c92a2a; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212529; background: #f8f9fa; }
header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 10px 16px; background: #fff; border-bottom: 1px solid #dee2e6; }
h1 { font-size: 16px; margin: 0; }
.badge { padding: 2px 8px; border-radius: 10px; border: 1px solid; font-weight: 600; }
#summary { color: #495057; }
#engine-error { color: var(--failed); font-weight: 600; }
.live { margin-left: auto; font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #e9ecef; }
.live.live { background: var(--started); }
.live.polling, .live.connecting { background: var(--starting); }
#filter { padding: 4px 8px; border: 1px solid #ced4da; border-radius: 4px; min-width: 240px; }
#problem { margin: 8px 16px; padding: 8px; background: #fff5f5; border: 1px solid var(--failed); color: var(--failed); }
main { display: grid; grid-template-columns: minmax(0, 1fr) 380px; gap: 12px; padding: 12px 16px; }
section { background: #fff; border: 1px solid #dee2e6; border-radius: 6px; padding: 8px; min-width: 0; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: #6c757d; margin: 0 0 6px; }
#graph { overflow: auto; max-height: 62vh; }
.note { color: #6c757d; font-style: italic; }
svg .edge { fill: none; stroke: #868e96; stroke-width: 1.2; }
svg .arrowhead { fill: #868e96; }
svg .node { cursor: pointer; }
svg .node rect { stroke-width: 1.5; }
svg .node text { font-size: 12px; fill: #212529; pointer-events: none; }
svg .node text.name { font-weight: 600; }
svg .node text.info { font-size: 11px; fill: #495057; }
svg .state-started rect { fill: var(--started); stroke: var(--started-edge); }
svg .state-starting rect { fill: var(--starting); stroke: var(--starting-edge); }
svg .state-stopping rect { fill: var(--stopping); stroke: var(--stopping-edge); }
svg .state-stopped rect, svg .state-unknown rect { fill: var(--stopped); stroke: var(--stopped-edge); }
svg .failed rect { stroke: var(--failed); stroke-width: 3; }
svg .selected rect { stroke: #1c7ed6; stroke-width: 3; }
.badge.state-started { background: var(--started); border-color: var(--started-edge); }
.badge.state-starting { background: var(--starting); border-color: var(--starting-edge); }
.badge.state-stopping { background: var(--stopping); border-color: var(--stopping-edge); }
.badge.state-stopped, .badge.state-unknown { background: var(--stopped); border-color: var(--stopped-edge); }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #f1f3f5; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.name { font-weight: 600; word-break: break-all; }
td.error { color: var(--failed); }
tr { cursor: pointer; }
tr.state-started td:nth-child(2) { color: var(--started-edge); }
tr.state-starting td:nth-child(2) { color: var(--starting-edge); }
tr.state-stopping td:nth-child(2) { color: var(--stopping-edge); }
tr.selected { background: #e7f5ff; }
#detail h3 { margin: 0 0 6px; font-size: 15px; word-break: break-all; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 0 0 8px; }
dt { color: #6c757d; }
dd { margin: 0; word-break: break-word; }
pre { background: #f1f3f5; padding: 6px; overflow: auto; max-height: 30vh; font-size: 12px; margin: 0; }
.chain-line { font-family: ui-monospace, monospace; font-size: 12px; background: #fff9db; padding: 6px; word-break: break-word; }
ol.chain-events, #log, #detail-failures { font-family: ui-monospace, monospace; font-size: 12px; padding-left: 20px; margin: 4px 0; }
#log { list-style: none; padding-left: 0; max-height: 24vh; overflow: auto; }
#log .failed { color: var(--failed); }
.wide { grid-column: 1 / -1; }
`;

function sha256(text: string): string {
  return `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;
}

/** The Content-Security-Policy of the page: its own script and style only, by hash. @internal */
export const PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(PAGE_SCRIPT)}`,
  `style-src ${sha256(PAGE_STYLE)}`,
  "connect-src 'self'",
  "img-src data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Text safe inside an HTML attribute value in double quotes. */
function escapeAttribute(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * The page. `eventsProblem` is why the event stream is unavailable (the page
 * then polls), or "" when it is available.
 * @internal
 */
export function pageHtml(eventsProblem: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>manifold-engine</title>
<link rel="icon" href="data:,">
<style>${PAGE_STYLE}</style>
</head>
<body data-events-problem="${escapeAttribute(eventsProblem)}">
<header>
<h1>manifold-engine</h1>
<span id="engine-state" class="badge">engine …</span>
<span id="summary"></span>
<span id="engine-error"></span>
<input id="filter" type="search" placeholder="Filter by name, state or error" aria-label="Filter manifolds" autocomplete="off">
<span id="live" class="live">loading</span>
</header>
<div id="problem" hidden></div>
<main>
<section><h2>Graph</h2><div id="graph"></div></section>
<section id="detail"><h2>Manifold</h2><h3 id="detail-name">Click a manifold</h3><dl id="detail-fields"></dl>
<h2>Recent failures</h2><ul id="detail-failures"></ul>
<h2>Cause chain of the last restart</h2><div id="chain"></div>
<h2>Worker report</h2><pre id="detail-report"></pre></section>
<section class="wide"><h2>Manifolds</h2><table><thead><tr><th>name</th><th>state</th><th class="num">starts</th><th class="num">failures</th><th>last error</th></tr></thead><tbody id="rows"></tbody></table><p id="table-note" class="note"></p></section>
<section class="wide"><h2>Recent events</h2><ul id="log"></ul></section>
</main>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
