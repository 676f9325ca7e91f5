/**
 * What a fresh page of memory costs on this machine, and so what an array
 * past the large-object size costs (why src/chunked.ts exists).
 *
 *     node --expose-gc --import tsx bench/pages.ts
 *
 * Three minimal experiments, each the fastest of 9 runs:
 * - touching one byte per 4 KB page of a fresh 64 MB buffer (each touch a
 *   page fault: the kernel maps and zeroes the page), then the same pages
 *   again (no fault);
 * - pushing 100,000 objects into one array: past 16,384 slots (128 KB) V8
 *   allocates the array as a "large object", mapped fresh at each growth;
 * - pushing them into arrays of 4,096 (32 KB, ordinary heap objects whose
 *   pages the young generation reuses), as src/chunked.ts does.
 * No timed assertion: it prints what it measured.
 */
const PAGE = 4096;
const RUNS = 9;
const ITEMS = 100_000;
const CHUNK = 4096;

function fastest(run: () => number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < RUNS; i++) best = Math.min(best, run());
  return best;
}

function touchFresh(): { fresh: number; again: number } {
  let again = Number.POSITIVE_INFINITY;
  const fresh = fastest(() => {
    const start = performance.now();
    const bytes = new Uint8Array(64 * 1024 * 1024);
    for (let at = 0; at < bytes.length; at += PAGE) bytes[at] = 1;
    const took = performance.now() - start;
    const restart = performance.now();
    for (let at = 0; at < bytes.length; at += PAGE) bytes[at] = 2;
    again = Math.min(again, performance.now() - restart);
    return took;
  });
  return { fresh, again };
}

const items = Array.from({ length: ITEMS }, (_, i) => ({ i }));
let kept: unknown;

function oneArray(): number {
  const start = performance.now();
  const array: object[] = [];
  for (let i = 0; i < ITEMS; i++) array.push(items[i] as object);
  kept = array;
  return performance.now() - start;
}

function chunks(): number {
  const start = performance.now();
  const list: object[][] = [];
  let chunk: object[] = [];
  for (let i = 0; i < ITEMS; i++) {
    if (chunk.length === CHUNK || i === 0) list.push((chunk = []));
    chunk.push(items[i] as object);
  }
  kept = list;
  return performance.now() - start;
}

const pages = (64 * 1024 * 1024) / PAGE;
const { fresh, again } = touchFresh();
const one = fastest(oneArray);
const chunked = fastest(chunks);
void kept;
console.log(`fresh 4 KB page, first touch: ${((fresh * 1000) / pages).toFixed(2)} µs per page (${fresh.toFixed(1)} ms for 64 MB); touched again: ${((again * 1000) / pages).toFixed(3)} µs`);
console.log(`push ${ITEMS.toLocaleString("en")} objects into one array: ${((one * 1e6) / ITEMS).toFixed(1)} ns each (${one.toFixed(1)} ms)`);
console.log(`push them into chunks of ${CHUNK}: ${((chunked * 1e6) / ITEMS).toFixed(1)} ns each (${chunked.toFixed(1)} ms)`);
