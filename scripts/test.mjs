#!/usr/bin/env node
// Runs the test suites with Node's own test runner (through tsx for TypeScript).
// Usage: node scripts/test.mjs [unit|peer|e2e ...]   (no argument: all suites, in that order)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const suites = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'peer', 'e2e'];

function collect(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const concurrency = process.env.TEST_CONCURRENCY ?? '2';
mkdirSync('test-results', { recursive: true });

// Suites run one after another: the end-to-end tests start fresh guest processes and a browser,
// and must not compete for the two cores with the peer suite's real Linux boots.
const totals = { pass: 0, fail: 0, skipped: 0 };
let status = 0;
for (const suite of suites) {
  const files = collect(join('tests', suite));
  if (files.length === 0) {
    console.error(`no test files found for suite: ${suite}`);
    status = 1;
    continue;
  }
  const tap = join('test-results', `tap-${suite}.txt`);
  const r = spawnSync(
    process.execPath,
    [
      '--import', 'tsx', '--test', `--test-concurrency=${concurrency}`,
      '--test-reporter=spec', '--test-reporter-destination=stdout',
      '--test-reporter=tap', `--test-reporter-destination=${tap}`,
      ...files,
    ],
    { stdio: 'inherit' },
  );
  const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
  const count = (k) => Number((text.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
  for (const k of Object.keys(totals)) totals[k] += count(k);
  if (r.status !== 0) status = r.status ?? 1;
}
// One plain closing line, whatever the reporter prints above it.
console.log(`\ntests: ${totals.pass} passed, ${totals.fail} failed, ${totals.skipped} skipped`);
process.exit(status);
