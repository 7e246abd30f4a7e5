/**
 * Random x87 instruction streams with random operands and control words: the guest may see #UD or
 * #MF (CpuFault), the host must never see a thrown error, and every instruction must finish.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fpu } from '../../../src-emulator/cpu/fpu';
import { ByteMem, CpuFault, TestHost } from './harness';

test('60000 random D8-DF instructions over interesting operands never throw a host error', () => {
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
  let executed = 0;
  for (let i = 0; i < 60000; i++) {
    if (i % 64 === 0) {
      for (let k = 0; k < 512; k += 4) mem.write32(k, rnd());
      // Bias exponents of some 80-bit slots towards interesting values.
      mem.write16(8, [0, 0x7fff, 0x3fff, 0x8000, 0xffff, 1, 0x7ffe][rnd() % 7]);
      host.numericErrorNative = (rnd() & 1) === 1;
      host.protectedMode = (rnd() & 1) === 1;
      host.operandSize32 = (rnd() & 1) === 1;
      host.eflags = rnd() & 0x8d5;
      // Mostly masked control words (else nearly everything ends in #MF), any PC and RC.
      const cw = (rnd() & 0x0f00) | (rnd() % 4 === 0 ? rnd() & 0x3f : 0x3f);
      fpu.execute(0xdb, 0xe2, null);
      mem.write16(0, cw);
      fpu.execute(0xd9, 0x28, mem);
    }
    // An interesting operand at offset 0 for this instruction: an 80-bit value of any class, a double
    // or float of any exponent, or small integers.
    switch (rnd() % 5) {
      case 0: {
        const exps = [0, 0x7fff, 1, 0x7ffe, 0x3fff, 0x3fff - 449, 0x3fff + 449, 0x3fff - 1000, rnd() & 0x7fff];
        mem.write32(0, rnd());
        mem.write32(4, rnd() | (rnd() & 1 ? 0x80000000 : 0));
        mem.write16(8, exps[rnd() % exps.length] | (rnd() & 0x8000));
        break;
      }
      case 1:
        // Half of them near the edges of the arithmetic fast path (|exponent| around 450-500).
        mem.setF64((rnd() & 1 ? -1 : 1) * (1 + rnd() / 2 ** 32) * 2 ** (rnd() & 1 ? (rnd() % 2100) - 1075 : (rnd() & 1 ? 1 : -1) * (440 + (rnd() % 70))));
        break;
      case 2:
        mem.setF32((rnd() & 1 ? -1 : 1) * (1 + rnd() / 2 ** 32) * 2 ** ((rnd() % 300) - 150));
        break;
      case 3:
        mem.write32(0, rnd() % 7);
        mem.write32(4, 0);
        break;
    }
    const op = 0xd8 + (rnd() & 7);
    const modrm = rnd() & 0xff;
    try {
      fpu.execute(op, modrm, modrm >= 0xc0 ? null : mem);
      executed++;
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
  assert.ok(executed > 30000, `${executed} instructions completed`);
  assert.ok(fpu.top >= 0 && fpu.top < 8);
});
