/**
 * Random code (real mode; CPL 3 of protected mode) cross-checked against QEMU, instruction by instruction (qemu-crosscheck.ts).
 * Fixed seeds. A divergence fails the test unless it is a known QEMU shortcut (reported as
 * inconclusive with the reason) or listed in KNOWN below with its finding (FINDINGS.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crossCheck, type CrossMode } from './qemu-crosscheck';
import { missingTools } from '../cpu-diff/qemu';
import { boxwoodDutFactory, loadCpuClass } from '../cpu-diff/boxwood-side';

const STREAMS_BY_MODE: Record<string, number> = { 'real-chain': 12, 'pm3-chain': 12 };
const STEPS_BY_MODE: Record<string, number> = { 'real-chain': 3000, 'pm3-chain': 3000 };
const STREAMS_OVERRIDE = process.env.FUZZ_QEMU_STREAMS ? Number(process.env.FUZZ_QEMU_STREAMS) : 0;
const FIRST_SEED: Record<CrossMode, number> = { real: 0xc0de0000, pm3: 0xabd00000, 'real-chain': 0xcafe0000, 'pm3-chain': 0xfade0000 };
/** Seeds whose divergence is a known Boxwood bug: `${mode}:${seed}` -> finding. */
export const KNOWN: Record<string, string> = {};

const missing = missingTools();
const cpu = await loadCpuClass();

for (const mode of ['real-chain', 'pm3-chain'] as CrossMode[]) {
  const STREAMS = STREAMS_OVERRIDE || STREAMS_BY_MODE[mode];
  const STEPS = STEPS_BY_MODE[mode];
  test(`random ${mode === 'pm3-chain' ? 'ring-3 protected-mode' : 'real-mode'} code, chained through exceptions, agrees with QEMU (${STREAMS} streams of up to ${STEPS} steps)`, {
    timeout: 600_000,
    skip: 'missing' in cpu ? `Boxwood CPU not landed: ${cpu.missing}` : false,
  }, async (t) => {
    assert.deepEqual(missing, [], `missing: ${missing.join(', ')} — install the Debian packages named`);
    if ('missing' in cpu) return;
    const make = boxwoodDutFactory(cpu.Cpu);
    const counts = { agree: 0, inconclusive: 0, diverge: 0, known: 0 };
    const reasons = new Map<string, number>();
    const failures: string[] = [];
    let steps = 0;
    for (let i = 0; i < STREAMS; i++) {
      const seed = (FIRST_SEED[mode] + i) >>> 0;
      const r = await crossCheck(seed, make, STEPS, mode);
      steps += r.steps;
      const known = KNOWN[`${mode}:0x${seed.toString(16)}`];
      if (r.verdict === 'diverge' && known) counts.known++;
      else counts[r.verdict]++;
      if (r.verdict === 'inconclusive') reasons.set(r.why, (reasons.get(r.why) ?? 0) + 1);
      if (r.verdict === 'diverge' && !known) failures.push(`${mode} seed 0x${seed.toString(16)}:\n${r.result.report}`);
    }
    t.diagnostic(`${steps} steps compared (set-up included): ${JSON.stringify(counts)}`);
    for (const [why, n] of reasons) t.diagnostic(`inconclusive x${n}: ${why}`);
    assert.equal(failures.length, 0, failures.join('\n\n'));
  });
}
