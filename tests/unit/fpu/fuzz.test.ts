/**
 * Random x87 instruction streams with random operands and control words: the guest may see #UD or
 * #MF (CpuFault), the host must never see a thrown error, and every instruction must finish.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fpu } from '../../../src-emulator/cpu/fpu';
import { ByteMem, CpuFault, TestHost } from './harness';

test('60000 random D8-DF instructions over random memory never throw a host error', () => {
  let seed = 0x1234567;
  const rnd = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>>= 0);
  };
  const host = new TestHost();
  const fpu = new Fpu(host);
  const mem = new ByteMem(512);
  let faults = 0;
  for (let i = 0; i < 60000; i++) {
    if (i % 64 === 0) {
      for (let k = 0; k < 512; k += 4) mem.write32(k, rnd());
      // Bias exponents of some 80-bit slots towards interesting values.
      mem.write16(8, [0, 0x7fff, 0x3fff, 0x8000, 0xffff, 1, 0x7ffe][rnd() % 7]);
      host.numericErrorNative = (rnd() & 1) === 1;
      host.protectedMode = (rnd() & 1) === 1;
      host.operandSize32 = (rnd() & 1) === 1;
      host.eflags = rnd() & 0x8d5;
    }
    const op = 0xd8 + (rnd() & 7);
    const modrm = rnd() & 0xff;
    try {
      fpu.execute(op, modrm, modrm >= 0xc0 ? null : mem);
      if (rnd() % 50 === 0) fpu.wait();
      if (rnd() % 500 === 0) fpu.fxsave(mem);
      if (rnd() % 500 === 0) fpu.fxrstor(mem);
    } catch (e) {
      if (!(e instanceof CpuFault)) throw e;
      assert.ok(e.vector === 6 || e.vector === 16, `vector ${e.vector}`);
      faults++;
      if (e.vector === 16) fpu.execute(0xdb, 0xe2, null); // the #MF handler's FNCLEX
    }
    if (i % 1000 === 0) fpu.loadState(JSON.parse(JSON.stringify(fpu.saveState())));
  }
  assert.ok(faults > 0);
  assert.ok(fpu.top >= 0 && fpu.top < 8);
});
