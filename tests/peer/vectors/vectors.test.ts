/**
 * The 80286 real-mode instruction vectors (../shared/testdata/80286-real-mode/v1_real_mode, relative
 * to the repository root) on Boxwood's CPU. Fails loudly when the directory is missing: these vectors
 * are what tell us the integer core is right.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runVectors, KNOWN_DIFFERENCES } from './run-moo';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const dir = resolve(repoRoot, '../shared/testdata/80286-real-mode/v1_real_mode');

test('80286 real-mode vectors: every test passes or is a named 286/i686 difference', () => {
  assert.ok(existsSync(dir), `vector directory ${dir} is missing: the CPU cannot be verified without it`);
  const lines: string[] = [];
  const s = runVectors(dir, { verbose: 5, log: (l) => lines.push(l) });
  const total = s.passed + s.failed;
  console.log(`${s.passed} passed, ${s.failed} failed (${s.known} known differences, ${s.skipped} revoked)`);
  assert.ok(total > 300000, `expected the full vector set (~368k tests), found ${total}`);
  const bad = s.perOpcode.filter((o) => o.failed > o.known);
  assert.equal(
    s.unknownFailures,
    0,
    `unexplained failures:\n${bad.map((o) => `${o.stem}: ${o.failed - o.known}\n${o.failures.join('\n')}`).join('\n')}`,
  );
  // The known-difference list stays short and every category is explained.
  assert.ok(Object.keys(KNOWN_DIFFERENCES).length <= 16);
  for (const [k, why] of Object.entries(KNOWN_DIFFERENCES)) assert.ok(why.length > 20, `known difference ${k} needs a reason`);
});
