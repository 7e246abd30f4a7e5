/**
 * `npm run bench [-- FILTER]`: runs every tests/bench/*.bench.ts, prints one table and writes
 * bench-results/<timestamp>.json, so before/after figures can be compared as ratios.
 */
import { readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchRow } from './types';

const here = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2] ?? '';
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts') && f.includes(filter))
  .sort();

const rows: BenchRow[] = [];
for (const f of files) {
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { run(): Promise<BenchRow[]> };
  try {
    const got = await mod.run();
    rows.push(...got);
    for (const r of got) console.error(`  ${r.suite} / ${r.name}: ${r.value} ${r.unit}${r.note ? ` (${r.note})` : ''}`);
  } catch (err) {
    console.error(`bench ${f} failed: ${(err as Error).stack ?? err}`);
    process.exitCode = 1;
  }
}

const w = [5, 4, 5, 4, 4].map((_, i) =>
  Math.max(...rows.map((r) => [r.suite, r.name, fmt(r.value), r.unit, r.note ?? ''][i].length), ['suite', 'benchmark', 'value', 'unit', 'note'][i].length),
);
function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(4);
}
const line = (c: string[]) => c.map((x, i) => (i === 2 ? x.padStart(w[i]) : x.padEnd(w[i]))).join('  ');
console.log(line(['suite', 'benchmark', 'value', 'unit', 'note']));
console.log(w.map((n) => '-'.repeat(n)).join('  '));
for (const r of rows) console.log(line([r.suite, r.name, fmt(r.value), r.unit, r.note ?? '']));
mkdirSync('bench-results', { recursive: true });
const out = join('bench-results', `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), rows }, null, 2));
console.log(`\nwritten ${out}`);
