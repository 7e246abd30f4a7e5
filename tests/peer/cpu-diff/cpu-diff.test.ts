/**
 * Differential CPU test: every program in programs/*.asm runs in QEMU (TCG, via its gdbstub) and in
 * Boxwood's Cpu in lock-step, compared after every instruction (see docs/cpu-testing.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assembleProgram, listPrograms } from './program';
import { runDiff } from './harness';
import { missingTools } from './qemu';
import { boxwoodDutFactory, loadCpuClass } from './boxwood-side';
import { basename } from 'node:path';

/**
 * Programs that currently diverge because of a Boxwood CPU bug, with the finding (also in
 * FINDINGS.md) and a string its divergence report contains. A listed program that diverges as
 * listed passes and says so. A listed program that agrees, or diverges differently, is reported
 * as a stale entry: it fails with CPU_DIFF_STRICT=1 (run it when updating this list) and passes
 * with a loud diagnostic otherwise, so a CPU fix never turns CI red before this list is updated.
 */
export const KNOWN: Record<string, { finding: string; match: string }> = {};
const STRICT = process.env.CPU_DIFF_STRICT === '1';

const missing = missingTools();
test('tools for the differential test are installed', () => {
  assert.deepEqual(missing, [], `missing: ${missing.join(', ')} — install the Debian packages named`);
});

const cpu = await loadCpuClass();

for (const file of listPrograms()) {
  const name = basename(file, '.asm');
  test(`cpu-diff ${name}`, { timeout: 240_000, skip: missing.length ? 'tools missing' : 'missing' in cpu ? `Boxwood CPU not landed: ${cpu.missing}` : false }, async (t) => {
    if ('missing' in cpu) return;
    const prog = assembleProgram(file);
    const r = await runDiff(prog, boxwoodDutFactory(cpu.Cpu));
    const known = KNOWN[name];
    if (known) {
      const stale = r.agree ? `${name} now agrees with QEMU: remove it from KNOWN (was: ${known.finding})`
        : !r.report.includes(known.match) ? `${name} diverges differently than KNOWN says (${known.finding}):\n${r.report}` : null;
      if (stale) {
        assert.ok(!STRICT, stale);
        t.diagnostic(`STALE KNOWN ENTRY: ${stale}`);
        return;
      }
      t.diagnostic(`KNOWN divergence: ${known.finding}`);
      return;
    }
    assert.ok(r.agree, r.report);
    t.diagnostic(`${r.steps} instructions agree${r.notes.length ? `; ${r.notes.join('; ')}` : ''}`);
  });
}
