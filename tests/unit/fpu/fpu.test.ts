/**
 * x87 semantics from the Intel SDM's definitions (the silicon comparison lives in x87-silicon.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fpu } from '../../../src-emulator/cpu/fpu';
import type { F80 } from '../../../src-emulator/cpu/fpu-float80';
import { ByteMem, CpuFault, TestHost, M, x, newFpu, push80, pushF64, pop80, setCw, f80hex, toNumber } from './harness';

const J = 0x8000000000000000n;
const sw = (f: Fpu): number => f.statusWord;
const C0 = 0x100, C1 = 0x200, C2 = 0x400, C3 = 0x4000;

function pushInt(f: Fpu, v: number): void {
  const m = new ByteMem(8);
  m.write32(0, v);
  x(f, 0xdb, M(0), m); // FILD m32
}

test('FNINIT state: CW 037F, SW 0, TW FFFF; RESET leaves CW 0040', () => {
  const { fpu } = newFpu();
  assert.equal(fpu.cw, 0x037f);
  assert.equal(sw(fpu), 0);
  assert.equal(fpu.tagWord, 0xffff);
  fpu.reset();
  assert.equal(fpu.cw, 0x0040);
});

test('FLDCW keeps reserved bit 6 set and drops bits 7, 13-15', () => {
  const { fpu } = newFpu();
  setCw(fpu, 0x0000);
  assert.equal(fpu.cw, 0x0040);
  setCw(fpu, 0xffff);
  assert.equal(fpu.cw, 0x1f7f);
});

test('1/3 at PC=64 stored as m80 is 3FFD:AAAAAAAAAAAAAAAB; PC=53 and PC=24 round to fewer bits', () => {
  const cases: [number, string][] = [
    [0x037f, '3ffd:aaaaaaaaaaaaaaab'],
    [0x027f, '3ffd:aaaaaaaaaaaaa800'],
    [0x007f, '3ffd:aaaaab0000000000'],
  ];
  for (const [cw, want] of cases) {
    const { fpu } = newFpu();
    setCw(fpu, cw);
    x(fpu, 0xd9, 0xe8); // FLD1
    pushInt(fpu, 3);
    x(fpu, 0xde, 0xf9); // FDIVP: ST1 = ST1 / ST0
    assert.equal(f80hex(pop80(fpu)), want, `cw ${cw.toString(16)}`);
    assert.ok(sw(fpu) & 0x20, 'PE set');
  }
});

test('each rounding mode on +-1/3 and C1 reports rounding up', () => {
  const want: Record<number, [string, string]> = {
    0: ['3ffd:aaaaaaaaaaaaaaab', 'bffd:aaaaaaaaaaaaaaab'],
    1: ['3ffd:aaaaaaaaaaaaaaaa', 'bffd:aaaaaaaaaaaaaaab'],
    2: ['3ffd:aaaaaaaaaaaaaaab', 'bffd:aaaaaaaaaaaaaaaa'],
    3: ['3ffd:aaaaaaaaaaaaaaaa', 'bffd:aaaaaaaaaaaaaaaa'],
  };
  for (let rc = 0; rc < 4; rc++) {
    for (const neg of [false, true]) {
      const { fpu } = newFpu();
      setCw(fpu, 0x037f | (rc << 10));
      x(fpu, 0xd9, 0xe8);
      if (neg) x(fpu, 0xd9, 0xe0); // FCHS
      pushInt(fpu, 3);
      x(fpu, 0xde, 0xf9);
      const up = (sw(fpu) & C1) !== 0;
      const got = f80hex(pop80(fpu));
      assert.equal(got, want[rc][neg ? 1 : 0], `rc=${rc} neg=${neg}`);
      assert.equal(up, got.endsWith('b'), `C1 (rounded up) rc=${rc} neg=${neg}`);
    }
  }
});

test('x + (-x) is +0, except -0 when rounding down', () => {
  for (let rc = 0; rc < 4; rc++) {
    const { fpu } = newFpu();
    setCw(fpu, 0x037f | (rc << 10));
    pushF64(fpu, 1.5);
    pushF64(fpu, -1.5);
    x(fpu, 0xde, 0xc1);
    assert.equal(pop80(fpu).se, rc === 1 ? 0x8000 : 0);
  }
});

test('masked exception responses: QNaN indefinite, infinities, zero divide, denormal, underflow', () => {
  // 0/0 -> IE, indefinite
  let { fpu } = newFpu();
  x(fpu, 0xd9, 0xee);
  x(fpu, 0xd9, 0xee);
  x(fpu, 0xde, 0xf9);
  assert.equal(f80hex(fpu.st(0)), 'ffff:c000000000000000');
  assert.equal(sw(fpu) & 0x3f, 0x01);
  // 1/0 -> ZE, +inf; -1/0 -> -inf
  ({ fpu } = newFpu());
  x(fpu, 0xd9, 0xe8);
  x(fpu, 0xd9, 0xee);
  x(fpu, 0xde, 0xf9);
  assert.equal(f80hex(fpu.st(0)), '7fff:8000000000000000');
  assert.equal(sw(fpu) & 0x3f, 0x04);
  // inf - inf -> IE
  ({ fpu } = newFpu());
  pushF64(fpu, Infinity);
  pushF64(fpu, Infinity);
  x(fpu, 0xde, 0xe9);
  assert.equal(f80hex(fpu.st(0)), 'ffff:c000000000000000');
  // sqrt(-1) -> IE
  ({ fpu } = newFpu());
  pushF64(fpu, -1);
  x(fpu, 0xd9, 0xfa);
  assert.equal(f80hex(fpu.st(0)), 'ffff:c000000000000000');
  assert.equal(sw(fpu) & 0x3f, 0x01);
  // max * 2 -> OE + PE, +inf under RN, max finite under RZ
  for (const [rc, want] of [[0, '7fff:8000000000000000'], [3, '7ffe:ffffffffffffffff']] as const) {
    ({ fpu } = newFpu());
    setCw(fpu, 0x037f | (rc << 10));
    push80(fpu, { se: 0x7ffe, sig: 0xffffffffffffffffn });
    pushF64(fpu, 2);
    x(fpu, 0xde, 0xc9);
    assert.equal(f80hex(fpu.st(0)), want);
    assert.equal(sw(fpu) & 0x3f, 0x28);
  }
  // min normal / 3 -> denormal result, UE + PE
  ({ fpu } = newFpu());
  push80(fpu, { se: 0x0001, sig: J });
  pushF64(fpu, 3);
  x(fpu, 0xde, 0xf9);
  assert.equal(fpu.st(0).se, 0);
  assert.equal(sw(fpu) & 0x3f, 0x30);
  // exact denormal result: no UE when masked
  ({ fpu } = newFpu());
  push80(fpu, { se: 0x0001, sig: J });
  pushF64(fpu, 2);
  x(fpu, 0xde, 0xf9);
  assert.equal(f80hex(fpu.st(0)), '0000:4000000000000000');
  assert.equal(sw(fpu) & 0x3f, 0);
  // denormal operand -> DE
  ({ fpu } = newFpu());
  push80(fpu, { se: 0, sig: 1n });
  x(fpu, 0xd9, 0xe8);
  x(fpu, 0xde, 0xc9);
  assert.equal(sw(fpu) & 0x3f, 0x02);
  // SNaN operand -> IE, quieted
  ({ fpu } = newFpu());
  push80(fpu, { se: 0x7fff, sig: J | 5n });
  x(fpu, 0xd9, 0xe8);
  x(fpu, 0xde, 0xc1);
  assert.equal(f80hex(fpu.st(0)), '7fff:c000000000000005');
  assert.equal(sw(fpu) & 0x3f, 0x01);
});

test('unmasked OE/UE deliver the result with the exponent wrapped by 24576', () => {
  let { fpu } = newFpu();
  setCw(fpu, 0x0377); // OE unmasked
  push80(fpu, { se: 0x7ffe, sig: J });
  pushF64(fpu, 4);
  x(fpu, 0xde, 0xc9);
  assert.equal(f80hex(fpu.st(0)), (0x7ffe + 2 - 24576).toString(16).padStart(4, '0') + ':8000000000000000');
  assert.equal(sw(fpu) & 0xff, 0x88);
  ({ fpu } = newFpu());
  setCw(fpu, 0x036f); // UE unmasked
  push80(fpu, { se: 0x0001, sig: J });
  pushF64(fpu, 4);
  x(fpu, 0xde, 0xf9);
  assert.equal(f80hex(fpu.st(0)), (0x0001 - 2 + 24576).toString(16) + ':8000000000000000');
  assert.equal(sw(fpu) & 0xff, 0x90);
});

test('unmasked OE on FST m32 stores nothing and does not pop', () => {
  const { fpu, mem } = newFpu();
  setCw(fpu, 0x0377);
  pushF64(fpu, 1e300);
  mem.write32(0, 0x12345678);
  x(fpu, 0xd9, M(3), mem); // FSTP m32
  assert.equal(mem.read32(0), 0x12345678);
  assert.equal(fpu.top, 7, 'not popped');
  assert.equal(sw(fpu) & 0xff, 0x88, 'OE and ES, PE not reported');
});

test('unmasked exceptions: #MF (vector 16) at the next waiting instruction when CR0.NE=1', () => {
  const { fpu, host, mem } = newFpu();
  setCw(fpu, 0x037e); // IE unmasked
  pushF64(fpu, -1);
  x(fpu, 0xd9, 0xfa); // FSQRT -> IE pending, operand kept
  assert.equal(toNumber(fpu.st(0)), -1);
  assert.equal(sw(fpu) & 0x8081, 0x8081, 'IE, ES and B');
  // No-wait instructions run.
  x(fpu, 0xdf, 0xe0); // FNSTSW AX
  assert.equal(host.ax & 0x8081, 0x8081);
  x(fpu, 0xd9, M(7), mem); // FNSTCW
  // Waiting ones fault, leaving the state alone.
  assert.throws(() => x(fpu, 0xd9, 0xe8), (e: unknown) => e instanceof CpuFault && e.vector === 16);
  assert.throws(() => fpu.wait(), (e: unknown) => e instanceof CpuFault && e.vector === 16);
  assert.equal(fpu.top, 7);
  assert.equal(host.ferr, false, 'FERR# not used in native mode');
  x(fpu, 0xdb, 0xe2); // FNCLEX
  assert.equal(sw(fpu) & 0x80ff, 0);
  fpu.wait();
  x(fpu, 0xd9, 0xe8);
});

test('unmasked exceptions with CR0.NE=0: FERR# asserted when the instruction completes, cleared by FNCLEX', () => {
  const { fpu, host } = newFpu();
  host.numericErrorNative = false;
  setCw(fpu, 0x037b); // ZE unmasked
  x(fpu, 0xd9, 0xe8);
  x(fpu, 0xd9, 0xee);
  x(fpu, 0xde, 0xf9); // 1/0
  assert.equal(host.ferr, true);
  assert.equal(toNumber(fpu.st(0)), 0, 'destination unchanged and not popped');
  assert.equal(fpu.st(1).se, 0x3fff);
  // IGNNE# path: the next waiting instruction proceeds (IRQ 13 does the reporting).
  x(fpu, 0xd9, 0xe8);
  fpu.wait();
  x(fpu, 0xdb, 0xe2); // FNCLEX
  assert.equal(host.ferr, false);
});

test('FLDCW unmasking a pending flag makes it deliverable', () => {
  const { fpu } = newFpu();
  x(fpu, 0xd9, 0xe8);
  x(fpu, 0xd9, 0xee);
  x(fpu, 0xde, 0xf9); // masked ZE
  assert.equal(sw(fpu) & 0x80, 0);
  setCw(fpu, 0x037b);
  assert.equal(sw(fpu) & 0x8080, 0x8080);
  assert.throws(() => fpu.wait(), CpuFault);
});

test('stack overflow and underflow: IE+SF, C1 = 1 / 0, QNaN indefinite', () => {
  const { fpu } = newFpu();
  for (let i = 0; i < 8; i++) x(fpu, 0xd9, 0xe8);
  x(fpu, 0xd9, 0xe8); // ninth push
  assert.equal(sw(fpu) & (0x41 | C1), 0x41 | C1);
  assert.equal(f80hex(fpu.st(0)), 'ffff:c000000000000000');
  const u = newFpu().fpu;
  x(u, 0xd8, 0xc1); // FADD ST0, ST1 on an empty stack
  assert.equal(sw(u) & (0x41 | C1), 0x41);
  assert.equal(f80hex(u.st(0)), 'ffff:c000000000000000');
  // Unmasked stack fault: nothing written.
  const v = newFpu().fpu;
  setCw(v, 0x037e);
  x(v, 0xd8, 0xc1);
  assert.equal(v.tagWord, 0xffff);
  assert.equal(sw(v) & 0x80c1, 0x80c1);
});

test('FIST/FISTP: rounding under RC, integer indefinite on overflow and NaN', () => {
  const cases: [number, number, number][] = [
    [2.5, 0, 2],
    [3.5, 0, 4],
    [-2.5, 1, -3],
    [2.1, 2, 3],
    [-2.9, 3, -2],
  ];
  for (const [v, rc, want] of cases) {
    const { fpu, mem } = newFpu();
    setCw(fpu, 0x037f | (rc << 10));
    pushF64(fpu, v);
    x(fpu, 0xdb, M(3), mem); // FISTP m32
    assert.equal(mem.read32(0) | 0, want, `${v} rc=${rc}`);
    assert.ok(sw(fpu) & 0x20);
  }
  const { fpu, mem } = newFpu();
  pushF64(fpu, 40000);
  x(fpu, 0xdf, M(3), mem); // FISTP m16
  assert.equal(mem.read16(0), 0x8000);
  assert.equal(sw(fpu) & 1, 1);
  pushF64(fpu, NaN);
  x(fpu, 0xdf, M(7), mem); // FISTP m64
  assert.equal(mem.hex(8), '00 00 00 00 00 00 00 80');
});

test('FBLD/FBSTP: 18 digits, sign, rounding, indefinite beyond 10^18', () => {
  const { fpu, mem } = newFpu();
  const bcd = [0x89, 0x67, 0x45, 0x23, 0x01, 0x89, 0x67, 0x45, 0x23, 0x80];
  bcd.forEach((b, i) => mem.write8(i, b));
  x(fpu, 0xdf, M(4), mem); // FBLD
  assert.equal(f80hex(fpu.st(0)), f80hex(pushValue(-234567890123456789n)));
  const out = new ByteMem(16);
  x(fpu, 0xdf, M(6), out); // FBSTP
  assert.deepEqual(Array.from(out.bytes.subarray(0, 10)), bcd);
  pushF64(fpu, 1e18);
  x(fpu, 0xdf, M(6), out);
  assert.equal(out.hex(10), '00 00 00 00 00 00 00 c0 ff ff');
  assert.equal(sw(fpu) & 1, 1);
  const r = newFpu();
  pushF64(r.fpu, -2.5);
  x(r.fpu, 0xdf, M(6), r.mem);
  assert.equal(r.mem.hex(10), '02 00 00 00 00 00 00 00 00 80');
  pushF64(r.fpu, -0);
  x(r.fpu, 0xdf, M(6), r.mem);
  assert.equal(r.mem.hex(10), '00 00 00 00 00 00 00 00 00 80');
});

function pushValue(v: bigint): F80 {
  const { fpu } = newFpu();
  const m = new ByteMem(8);
  const b = BigInt.asUintN(64, v);
  m.write32(0, Number(b & 0xffffffffn));
  m.write32(4, Number(b >> 32n));
  x(fpu, 0xdf, M(5), m); // FILD m64
  return fpu.st(0);
}

test('FLD m80 / FSTP m80 round-trip 5000 random bit patterns exactly (NaN payloads, denormals, unnormals)', () => {
  const { fpu } = newFpu();
  let seed = 0x9e3779b9;
  const rnd = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>>= 0);
  };
  const src = new ByteMem(16);
  const dst = new ByteMem(16);
  for (let i = 0; i < 5000; i++) {
    for (let k = 0; k < 10; k++) src.write8(k, rnd());
    if (i % 4 === 0) src.write16(8, (src.read16(8) & 0x8000) | [0, 0x7fff, 1, 0x7ffe][i % 16 >> 2]);
    x(fpu, 0xdb, M(5), src);
    x(fpu, 0xd9, 0xc9); // FXCH with an empty ST1: fills it (masked underflow), exchanges
    x(fpu, 0xd9, 0xc9);
    x(fpu, 0xdb, M(7), dst);
    x(fpu, 0xdd, 0xd8); // FSTP ST0: drop the indefinite
    assert.equal(dst.hex(10), src.hex(10), `pattern ${i}`);
    x(fpu, 0xdb, 0xe2);
  }
});

test('FSAVE/FRSTOR round-trip registers, tags and pointers; FSAVE reinitialises', () => {
  const { fpu, host } = newFpu();
  push80(fpu, { se: 0x7fff, sig: J | 1n }); // SNaN, loaded raw
  push80(fpu, { se: 0x0000, sig: 0x1234n }); // denormal
  x(fpu, 0xd9, 0xeb); // FLDPI
  const img = new ByteMem(108);
  x(fpu, 0xdd, M(6), img); // FNSAVE
  const before = img.hex(108);
  assert.equal(fpu.tagWord, 0xffff);
  assert.equal(fpu.cw, 0x037f);
  x(fpu, 0xdd, M(4), img); // FRSTOR
  const again = new ByteMem(108);
  x(fpu, 0xdd, M(6), again);
  assert.equal(again.hex(108), before);
  assert.equal(host.ferr, false);
});

test('FSAVE/FRSTOR in all four layouts: registers follow the 14/28-byte environment, round-trip exactly', () => {
  for (const [pm, op32] of [[true, true], [false, true], [true, false], [false, false]] as const) {
    const { fpu, host } = newFpu();
    host.protectedMode = pm;
    host.operandSize32 = op32;
    push80(fpu, { se: 0x1234, sig: 0x8765432112345678n });
    x(fpu, 0xd9, 0xee);
    const img = new ByteMem(128);
    x(fpu, 0xdd, M(6), img);
    const env = op32 ? 28 : 14;
    assert.equal(img.hex(10, env), '00 00 00 00 00 00 00 00 00 00', 'ST0 = +0');
    assert.equal(img.hex(10, env + 10), '78 56 34 12 21 43 65 87 34 12', 'ST1');
    x(fpu, 0xdd, M(4), img); // FRSTOR
    const again = new ByteMem(128);
    x(fpu, 0xdd, M(6), again);
    assert.equal(again.hex(env + 80), img.hex(env + 80), `pm=${pm} op32=${op32}`);
  }
});

/** A state with known pointers: 1.0, +0, +inf pushed; last instruction FLD m80 at 0123:5678 from 2345:1234. */
function envState(pm: boolean, op32: boolean): { fpu: Fpu; host: TestHost } {
  const { fpu, host } = newFpu();
  host.protectedMode = pm;
  host.operandSize32 = op32;
  setCw(fpu, 0x0f7f);
  x(fpu, 0xd9, 0xe8);
  x(fpu, 0xd9, 0xee);
  host.instructionSelector = 0x0123;
  host.instructionOffset = 0x5678;
  const m = new ByteMem(16, 0x1234, 0x2345);
  m.setF80({ se: 0x7fff, sig: J });
  x(fpu, 0xdb, 0x28, m); // FLD m80, ModRM 0x28 (mod 0, reg 5, rm 0)
  return { fpu, host };
}

test('FSTENV layouts byte for byte: 32-bit protected, 32-bit real, 16-bit protected, 16-bit real (SDM figs 8-9..8-12)', () => {
  const want: Record<string, string> = {
    // CW, SW (TOP=5), TW = 1BFF (phys7 valid, phys6 zero, phys5 special), FIP, FOP<<16|FCS, FDP, FDS
    pm32: '7f 0f ff ff 00 28 ff ff ff 1b ff ff 78 56 00 00 23 01 28 03 34 12 00 00 45 23 ff ff',
    // linear FIP = 0x1230 + 0x5678 = 0x68A8, FDP = 0x23450 + 0x1234 = 0x24684
    rm32: '7f 0f ff ff 00 28 ff ff ff 1b ff ff a8 68 ff ff 28 03 00 00 84 46 ff ff 00 20 00 00',
    pm16: '7f 0f 00 28 ff 1b 78 56 23 01 34 12 45 23',
    rm16: '7f 0f 00 28 ff 1b a8 68 28 03 84 46 00 20',
  };
  for (const [name, pm, op32] of [['pm32', true, true], ['rm32', false, true], ['pm16', true, false], ['rm16', false, false]] as const) {
    const { fpu } = envState(pm, op32);
    const env = new ByteMem(32);
    x(fpu, 0xd9, M(6), env); // FNSTENV
    const size = op32 ? 28 : 14;
    assert.equal(env.hex(size), want[name], name);
    assert.equal(fpu.cw, 0x0f7f, 'FSTENV masks all exceptions (already masked here)');
    // FNINIT keeps register contents; FLDENV of the image restores the same environment (the tags of
    // non-empty registers are recomputed from those contents, as on silicon).
    x(fpu, 0xdb, 0xe3);
    x(fpu, 0xd9, M(4), env); // FLDENV
    const env2 = new ByteMem(32);
    x(fpu, 0xd9, M(6), env2);
    assert.equal(env2.hex(size), want[name], `${name} after FLDENV`);
  }
});

test('FNSTENV after an unmasked exception stores ES and B, then masks everything and clears them (silicon)', () => {
  const { fpu, host } = newFpu();
  host.numericErrorNative = false;
  setCw(fpu, 0x037b);
  x(fpu, 0xd9, 0xe8);
  x(fpu, 0xd9, 0xee);
  x(fpu, 0xde, 0xf9); // 1/0, ZE unmasked
  assert.equal(host.ferr, true);
  const env = new ByteMem(32);
  x(fpu, 0xd9, M(6), env);
  assert.equal(env.read16(4) & 0x8084, 0x8084, 'stored with ES and B');
  assert.equal(fpu.statusWord & 0x80ff, 0x04, 'ZE kept, ES/B cleared');
  assert.equal(host.ferr, false);
  fpu.wait(); // nothing pending
  x(fpu, 0xd9, M(4), env); // FLDENV brings the pending exception back
  assert.equal(fpu.statusWord & 0x8084, 0x8084);
  assert.equal(host.ferr, true);
});

test('FSTENV masks exceptions afterwards; FLDENV with a pending unmasked flag sets ES and B', () => {
  const { fpu } = newFpu();
  setCw(fpu, 0x0360);
  const env = new ByteMem(32);
  x(fpu, 0xd9, M(6), env);
  assert.equal(fpu.cw, 0x037f);
  env.write16(4, 0x0001); // SW with IE
  x(fpu, 0xd9, M(4), env); // CW 0360 back: IE unmasked
  assert.equal(fpu.statusWord & 0x8081, 0x8081);
});

test('FXSAVE layout: abridged tag, FOP, pointers, registers in stack order; FXRSTOR restores', () => {
  const { fpu } = envState(true, true);
  const area = new ByteMem(512);
  fpu.fxsave(area);
  assert.equal(area.hex(24), '7f 0f 00 28 e0 00 28 03 78 56 00 00 23 01 00 00 34 12 00 00 45 23 00 00');
  assert.equal(area.hex(10, 32), '00 00 00 00 00 00 00 80 ff 7f');
  assert.equal(area.hex(10, 48), '00 00 00 00 00 00 00 00 00 00');
  assert.equal(area.hex(10, 64), '00 00 00 00 00 00 00 80 ff 3f');
  const { fpu: g } = newFpu();
  g.fxrstor(area);
  assert.equal(g.tagWord, 0x1bff, 'full tag word recomputed from the abridged one');
  assert.equal(g.statusWord, 0x2800);
  const area2 = new ByteMem(512);
  g.fxsave(area2);
  assert.equal(area2.hex(160), area.hex(160));
});

test('FXAM classes (C3 C2 C0) and sign in C1', () => {
  const cls = (v: F80 | null): number => {
    const { fpu } = newFpu();
    if (v) push80(fpu, v);
    x(fpu, 0xd9, 0xe5);
    return sw(fpu) & (C0 | C1 | C2 | C3);
  };
  assert.equal(cls({ se: 0x3fff, sig: 0x4000000000000000n }), 0, 'unsupported (unnormal)');
  assert.equal(cls({ se: 0x7fff, sig: 0xc000000000000000n }), C0, 'NaN');
  assert.equal(cls({ se: 0xbfff, sig: J }), C2 | C1, 'negative normal');
  assert.equal(cls({ se: 0x7fff, sig: J }), C2 | C0, 'infinity');
  assert.equal(cls({ se: 0x8000, sig: 0n }), C3 | C1, 'negative zero');
  assert.equal(cls(null) & (C3 | C2 | C0), C3 | C0, 'empty');
  assert.equal(cls({ se: 0, sig: 1n }), C3 | C2, 'denormal');
});

test('FCOM/FUCOM codes, FCOMI/FUCOMIP EFLAGS, FTST, FICOM', () => {
  const codes = (a: number, b: number, op = 0xd1): number => {
    const { fpu } = newFpu();
    pushF64(fpu, b);
    pushF64(fpu, a);
    x(fpu, 0xd8, op);
    return sw(fpu) & (C0 | C2 | C3);
  };
  assert.equal(codes(2, 1), 0);
  assert.equal(codes(1, 2), C0);
  assert.equal(codes(1, 1), C3);
  assert.equal(codes(0, -0), C3);
  assert.equal(codes(NaN, 1), C0 | C2 | C3);
  const { fpu, host } = newFpu();
  pushF64(fpu, 2);
  pushF64(fpu, 1);
  x(fpu, 0xdf, 0xe9); // FUCOMIP ST0, ST1: 1 < 2 -> CF
  assert.equal(host.eflags & 0x45, 0x01);
  assert.equal(fpu.top, 7, 'popped once');
  pushF64(fpu, NaN);
  x(fpu, 0xdb, 0xe9); // FUCOMI with a QNaN: ZF PF CF, no IE
  assert.equal(host.eflags & 0x45, 0x45);
  assert.equal(sw(fpu) & 1, 0);
  x(fpu, 0xdb, 0xf1); // FCOMI with a QNaN: IE
  assert.equal(sw(fpu) & 1, 1);
  const t = newFpu();
  pushF64(t.fpu, -3);
  x(t.fpu, 0xd9, 0xe4); // FTST
  assert.equal(sw(t.fpu) & (C0 | C2 | C3), C0);
  const m = new ByteMem(4);
  m.write16(0, 0xfffd); // -3
  x(t.fpu, 0xde, M(2), m); // FICOM m16
  assert.equal(sw(t.fpu) & (C0 | C2 | C3), C3);
});

test('FCMOVcc follows CF/ZF/PF from the host', () => {
  const { fpu, host } = newFpu();
  pushF64(fpu, 5);
  pushF64(fpu, 7);
  host.eflags = 0x2;
  x(fpu, 0xda, 0xc1); // FCMOVB: CF=0, no move
  assert.equal(toNumber(fpu.st(0)), 7);
  host.eflags = 0x3;
  x(fpu, 0xda, 0xc1);
  assert.equal(toNumber(fpu.st(0)), 5);
  pushF64(fpu, 9);
  host.eflags = 0x44;
  x(fpu, 0xdb, 0xd9); // FCMOVNU: PF=1, no move
  assert.equal(toNumber(fpu.st(0)), 9);
  x(fpu, 0xdb, 0xc9); // FCMOVNE: ZF=1, no move
  assert.equal(toNumber(fpu.st(0)), 9);
  x(fpu, 0xda, 0xd1); // FCMOVBE: ZF=1, move
  assert.equal(toNumber(fpu.st(0)), 5);
});

test('FPREM partial remainder sets C2 and converges to the full remainder; quotient bits in C0 C3 C1', () => {
  const { fpu } = newFpu();
  pushF64(fpu, 3);
  push80(fpu, { se: 0x3fff + 200, sig: J | 12345n }); // 2^200-ish
  let steps = 0;
  do {
    x(fpu, 0xd9, 0xf8);
    steps++;
  } while (sw(fpu) & C2);
  assert.ok(steps > 1);
  const r = toNumber(fpu.st(0));
  assert.ok(r >= 0 && r < 3 && Number.isInteger(r));
  // 2^200 + 12345*2^137 mod 3: 2^200 = 1 mod 3, 2^137 = 2 mod 3, 12345 = 0 mod 3.
  assert.equal(r, 1);
  const g = newFpu().fpu;
  pushF64(g, 4);
  pushF64(g, 23); // 23 = 5*4 + 3: Q = 5 = 101b -> C0=1, C3=0, C1=1
  x(g, 0xd9, 0xf8);
  assert.equal(toNumber(g.st(0)), 3);
  assert.equal(sw(g) & (C0 | C1 | C2 | C3), C0 | C1);
  const h = newFpu().fpu;
  pushF64(h, 4);
  pushF64(h, 23); // FPREM1: Q = 6 (nearest), remainder -1
  x(h, 0xd9, 0xf5);
  assert.equal(toNumber(h.st(0)), -1);
  assert.equal(sw(h) & (C0 | C1 | C2 | C3), C0 | C3);
});

test('FXTRACT, FSCALE, FRNDINT, FABS, FCHS, FINCSTP/FDECSTP, FFREE, FXCH', () => {
  const { fpu } = newFpu();
  pushF64(fpu, -24);
  x(fpu, 0xd9, 0xf4); // FXTRACT: ST0 = -1.5, ST1 = 4
  assert.equal(toNumber(fpu.st(0)), -1.5);
  assert.equal(toNumber(fpu.st(1)), 4);
  x(fpu, 0xd9, 0xfd); // FSCALE: -1.5 * 2^4
  assert.equal(toNumber(fpu.st(0)), -24);
  x(fpu, 0xd9, 0xe1); // FABS
  assert.equal(toNumber(fpu.st(0)), 24);
  x(fpu, 0xd9, 0xc9); // FXCH
  assert.equal(toNumber(fpu.st(0)), 4);
  x(fpu, 0xd9, 0xf7); // FINCSTP
  assert.equal(toNumber(fpu.st(0)), 24);
  x(fpu, 0xd9, 0xf6); // FDECSTP
  x(fpu, 0xdd, 0xc1); // FFREE ST1
  assert.equal((fpu.tagWord >> (2 * ((fpu.top + 1) & 7))) & 3, 3);
  pushF64(fpu, 2.5);
  x(fpu, 0xd9, 0xfc); // FRNDINT (RN): 2
  assert.equal(toNumber(fpu.st(0)), 2);
  const z = newFpu().fpu;
  x(z, 0xd9, 0xee);
  x(z, 0xd9, 0xf4); // FXTRACT of 0: ZE, ST1 = -inf
  assert.equal(f80hex(z.st(1)), 'ffff:8000000000000000');
  assert.equal(sw(z) & 0x3f, 0x04);
});

test('constants are rounded under RC: FLDPI C90FDAA22168C235 (RN/RU) and ...C234 (RD/RZ)', () => {
  for (let rc = 0; rc < 4; rc++) {
    const { fpu } = newFpu();
    setCw(fpu, 0x037f | (rc << 10));
    x(fpu, 0xd9, 0xeb);
    assert.equal(f80hex(fpu.st(0)), rc === 0 || rc === 2 ? '4000:c90fdaa22168c235' : '4000:c90fdaa22168c234');
    assert.equal(sw(fpu) & 0x20, 0, 'no PE');
  }
  const { fpu } = newFpu();
  for (const op of [0xe9, 0xea, 0xec, 0xed]) x(fpu, 0xd9, op);
  assert.equal(f80hex(fpu.st(3)), '4000:d49a784bcd1b8afe', 'log2(10)');
  assert.equal(f80hex(fpu.st(2)), '3fff:b8aa3b295c17f0bc', 'log2(e)');
  assert.equal(f80hex(fpu.st(1)), '3ffd:9a209a84fbcff799', 'log10(2)');
  assert.equal(f80hex(fpu.st(0)), '3ffe:b17217f7d1cf79ac', 'ln(2)');
});

test('transcendentals agree with Math.* to double accuracy (silicon test: 1 ulp); C2 for out-of-range trig operands', () => {
  const checks: [number, number[], (v: number[]) => number][] = [
    [0xfe, [0.5], ([a]) => Math.sin(a)],
    [0xff, [1.25], ([a]) => Math.cos(a)],
    [0xf2, [0.7], ([a]) => Math.tan(a)],
    [0xf0, [0.375], ([a]) => 2 ** a - 1],
    [0xf1, [3, 10], ([y, a]) => y * Math.log2(a)],
    [0xf9, [2, 0.125], ([y, a]) => y * Math.log2(1 + a)],
    [0xf3, [1, -2], ([y, a]) => Math.atan2(y, a)],
  ];
  for (const [op, args, ref] of checks) {
    const { fpu } = newFpu();
    for (const a of args) pushF64(fpu, a);
    x(fpu, 0xd9, op);
    const got = toNumber(fpu.st(op === 0xf2 ? 1 : 0));
    const want = ref(args.slice().reverse().reverse());
    assert.ok(Math.abs(got - want) <= Math.abs(want) * 2 ** -50, `D9 ${op.toString(16)}: ${got} vs ${want}`);
  }
  const { fpu } = newFpu();
  push80(fpu, { se: 0x3fff + 63, sig: J });
  x(fpu, 0xd9, 0xfe);
  assert.ok(sw(fpu) & C2);
  assert.equal(f80hex(fpu.st(0)), '403e:8000000000000000', 'operand unchanged');
  // sin of a tiny value is the value itself (correctly rounded, PE set)
  const t = newFpu().fpu;
  pushF64(t, 1e-30);
  x(t, 0xd9, 0xfe);
  assert.equal(toNumber(t.st(0)), 1e-30);
});

test('reserved encodings raise #UD (vector 6) before any pending-exception check', () => {
  for (const [op, modrm] of [[0xd9, 0xd1], [0xd9, 0xe2], [0xd9, 0xef], [0xda, 0xe8], [0xdb, 0xe5], [0xde, 0xd8], [0xdf, 0xe1], [0xd9, M(1)], [0xdb, M(4)], [0xdd, M(5)], [0xdb, M(1)]]) {
    const { fpu, mem } = newFpu();
    assert.throws(() => x(fpu, op, modrm, mem), (e: unknown) => e instanceof CpuFault && e.vector === 6, `${op.toString(16)} ${modrm.toString(16)}`);
  }
});

test('FIP/FCS/FOP/FDP/FDS follow the last non-control instruction', () => {
  const { fpu, host } = newFpu();
  host.instructionSelector = 0x1b;
  host.instructionOffset = 0x401000;
  const m = new ByteMem(16, 0x88, 0x23);
  m.setF64(2);
  x(fpu, 0xdd, 0x05, m); // FLD m64 with ModRM 05
  assert.deepEqual([fpu.fip, fpu.fcs, fpu.fop, fpu.fdp, fpu.fds], [0x401000, 0x1b, 0x505, 0x88, 0x23]);
  host.instructionOffset = 0x401010;
  x(fpu, 0xd9, 0xe8); // FLD1: register form keeps FDP
  assert.deepEqual([fpu.fip, fpu.fop, fpu.fdp], [0x401010, 0x1e8, 0x88]);
  host.instructionOffset = 0x401020;
  x(fpu, 0xd9, M(7), m); // FNSTCW: control, leaves everything
  x(fpu, 0xdb, 0xe2); // FNCLEX
  assert.deepEqual([fpu.fip, fpu.fop], [0x401010, 0x1e8]);
});

test('saveState/loadState round-trips through JSON', () => {
  const { fpu } = newFpu();
  x(fpu, 0xd9, 0xeb);
  push80(fpu, { se: 0x7fff, sig: J | 3n });
  setCw(fpu, 0x0b63);
  const json = JSON.parse(JSON.stringify(fpu.saveState()));
  const g = new Fpu(new TestHost());
  g.loadState(json);
  assert.deepEqual(g.saveState(), fpu.saveState());
  assert.throws(() => g.loadState({ ...json, regs: ['zz'] }), /regs/);
});

test('m32/m64 loads and stores: exact doubles, NaN payloads, denormals with DE', () => {
  const { fpu, mem } = newFpu();
  mem.write32(0, 0x7fa00001); // SNaN float with payload
  x(fpu, 0xd9, M(0), mem);
  assert.equal(f80hex(fpu.st(0)), '7fff:e000010000000000', 'quieted, IE');
  assert.equal(sw(fpu) & 1, 1);
  mem.write32(0, 1); // smallest float denormal
  x(fpu, 0xd9, M(0), mem);
  assert.equal(toNumber(fpu.st(0)), 2 ** -149);
  assert.equal(sw(fpu) & 2, 2);
  pushF64(fpu, Math.PI);
  const out = new ByteMem(8);
  x(fpu, 0xdd, M(3), out);
  assert.equal(out.getF64(), Math.PI);
  x(fpu, 0xd9, M(3), out);
  assert.equal(out.getF32(), Math.fround(2 ** -149));
});
