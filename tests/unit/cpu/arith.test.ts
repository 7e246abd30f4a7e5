/** Integer arithmetic, flags, shifts, multiply/divide and BCD (32-bit flat protected mode). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeMachine, loadProtected, runToHalt, exceptionLog } from './harness';

const CF = 1, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;

function run(body: string) {
  const m = makeMachine();
  loadProtected(m, `main:\n${body}\nhlt\n`);
  runToHalt(m.cpu);
  return m;
}
const reg = (m: ReturnType<typeof run>, i: number) => m.cpu.getReg32(i);

test('ADD/SUB/ADC/SBB set CF, OF, AF, ZF, SF, PF', () => {
  let m = run('mov eax, 0x7fffffff\nadd eax, 1');
  assert.equal(reg(m, 0), 0x80000000);
  assert.equal(m.cpu.getFlags() & (CF | OF | SF | ZF | AF | PF), OF | SF | AF | PF);
  m = run('mov eax, 0xffffffff\nadd eax, 1');
  assert.equal(reg(m, 0), 0);
  assert.equal(m.cpu.getFlags() & (CF | OF | SF | ZF | AF), CF | ZF | AF);
  m = run('mov eax, 0\nsub eax, 1');
  assert.equal(m.cpu.getFlags() & (CF | OF | SF | ZF), CF | SF);
  m = run('stc\nmov eax, 5\nadc eax, 0xffffffff');
  assert.equal(reg(m, 0), 5);
  assert.equal(m.cpu.getFlags() & CF, CF);
  m = run('stc\nmov eax, 5\nsbb eax, 5');
  assert.equal(reg(m, 0), 0xffffffff);
  assert.equal(m.cpu.getFlags() & (CF | SF), CF | SF);
  m = run('mov al, 0x80\nneg al');
  assert.equal(m.cpu.getReg8(0), 0x80);
  assert.equal(m.cpu.getFlags() & (CF | OF), CF | OF);
});

test('INC/DEC keep CF; logic ops clear CF and OF', () => {
  let m = run('stc\nmov ecx, 0xffffffff\ninc ecx');
  assert.equal(m.cpu.getFlags() & (CF | ZF), CF | ZF);
  m = run('clc\nmov ecx, 0x80000000\ndec ecx');
  assert.equal(m.cpu.getFlags() & (CF | OF), OF);
  m = run('stc\nmov eax, 0xf0\nand eax, 0x0f');
  assert.equal(m.cpu.getFlags() & (CF | OF | ZF | PF), ZF | PF);
});

test('shifts and rotates: counts, CF, OF', () => {
  let m = run('mov eax, 0x80000001\nshl eax, 1');
  assert.equal(reg(m, 0), 2);
  assert.equal(m.cpu.getFlags() & (CF | OF), CF | OF);
  m = run('mov eax, 0x80000000\nsar eax, 31');
  assert.equal(reg(m, 0), 0xffffffff);
  m = run('mov eax, 0x12345678\nmov cl, 36\nshr eax, cl'); // count masked to 4
  assert.equal(reg(m, 0), 0x01234567);
  m = run('mov ax, 0x8001\nrol ax, 4');
  assert.equal(m.cpu.getReg16(0), 0x0018);
  m = run('stc\nmov al, 0x01\nrcr al, 1');
  assert.equal(m.cpu.getReg8(0), 0x80);
  assert.equal(m.cpu.getFlags() & CF, CF);
  m = run('mov eax, 0x12345678\nmov edx, 0x9abcdef0\nshld eax, edx, 8');
  assert.equal(reg(m, 0), 0x3456789a);
  m = run('mov eax, 0x12345678\nmov edx, 0x9abcdef0\nmov cl, 8\nshrd eax, edx, cl');
  assert.equal(reg(m, 0), 0xf0123456);
  m = run('mov al, 0x81\nrol al, 9'); // 9 & 7 = 1
  assert.equal(m.cpu.getReg8(0), 0x03);
});

test('MUL/IMUL/DIV/IDIV in all sizes, and #DE', () => {
  let m = run('mov eax, 0xffffffff\nmov ecx, 0xffffffff\nmul ecx');
  assert.equal(reg(m, 0), 1);
  assert.equal(reg(m, 2), 0xfffffffe);
  assert.equal(m.cpu.getFlags() & (CF | OF), CF | OF);
  m = run('mov eax, -7\nmov ecx, 3\nimul ecx');
  assert.equal(reg(m, 0), (-21) >>> 0);
  assert.equal(reg(m, 2), 0xffffffff);
  assert.equal(m.cpu.getFlags() & CF, 0);
  m = run('mov eax, 0x80000000\nimul eax, eax, 2');
  assert.equal(m.cpu.getFlags() & (CF | OF), CF | OF);
  m = run('mov edx, 1\nmov eax, 0\nmov ecx, 2\ndiv ecx');
  assert.equal(reg(m, 0), 0x80000000);
  assert.equal(reg(m, 2), 0);
  m = run('mov edx, -1\nmov eax, -7\nmov ecx, 2\nidiv ecx');
  assert.equal(reg(m, 0), (-3) >>> 0);
  assert.equal(reg(m, 2), (-1) >>> 0);
  m = run('mov ax, 700\nmov bl, 3\ndiv bl');
  assert.equal(m.cpu.getReg16(0), (1 << 8) | 233);
  m = run('mov edx, 0\nmov eax, 1\nxor ecx, ecx\nfault: div ecx');
  const log = exceptionLog(m);
  assert.equal(log.vector, 0);
  assert.equal(reg(m, 0), 1, 'registers untouched by the faulting DIV');
  m = run('mov edx, 2\nmov eax, 0\nmov ecx, 2\ndiv ecx'); // quotient overflow
  assert.equal(exceptionLog(m).vector, 0);
  m = run('mov ax, 0x8000\ncwd\nmov cx, -1\nidiv cx'); // -32768 / -1 overflows
  assert.equal(exceptionLog(m).vector, 0);
});

test('BCD: DAA, DAS, AAA, AAS, AAM, AAD', () => {
  let m = run('mov al, 0x79\nadd al, 0x35\ndaa');
  assert.equal(m.cpu.getReg8(0), 0x14);
  assert.equal(m.cpu.getFlags() & CF, CF);
  m = run('mov al, 0x35\nsub al, 0x47\ndas');
  assert.equal(m.cpu.getReg8(0), 0x88);
  assert.equal(m.cpu.getFlags() & CF, CF);
  m = run('mov ax, 0x0009\nadd al, 3\naaa');
  assert.equal(m.cpu.getReg16(0), 0x0102);
  m = run('mov ax, 0x0102\nsub al, 5\naas');
  assert.equal(m.cpu.getReg16(0), 0x0007);
  m = run('mov al, 77\naam');
  assert.equal(m.cpu.getReg16(0), 0x0707);
  m = run('mov ax, 0x0707\naad');
  assert.equal(m.cpu.getReg16(0), 77);
  m = run('aam 0');
  assert.equal(exceptionLog(m).vector, 0);
});

test('bit instructions: BT/BTS/BTR/BTC with register and memory bit strings, BSF/BSR', () => {
  let m = run('mov eax, 0\nmov ecx, 35\nbts [0x3000], ecx\nmov ebx, [0x3004]');
  assert.equal(reg(m, 3), 8);
  m = run('mov dword [0x3000], 0\nmov ecx, -1\nbts [0x3004], ecx\nmov ebx, [0x3000]');
  assert.equal(reg(m, 3), 0x80000000, 'negative bit offsets reach below the operand');
  m = run('mov eax, 0x10\nbtr eax, 4\nsetc bl');
  assert.equal(reg(m, 0), 0);
  assert.equal(m.cpu.getReg8(3), 1);
  m = run('mov eax, 0x00f0\nbsf ecx, eax\nbsr edx, eax');
  assert.equal(reg(m, 1), 4);
  assert.equal(reg(m, 2), 7);
  m = run('mov ecx, 99\nxor eax, eax\nbsf ecx, eax');
  assert.equal(m.cpu.getFlags() & ZF, ZF);
  assert.equal(reg(m, 1), 99);
});

test('i686 extras: CMOVcc, CMPXCHG, CMPXCHG8B, XADD, BSWAP, MOVZX/MOVSX, SETcc', () => {
  let m = run('mov eax, 1\nmov ecx, 2\ncmp eax, ecx\ncmovl eax, ecx\ncmovg ebx, ecx');
  assert.equal(reg(m, 0), 2);
  m = run('mov dword [0x3000], 5\nmov eax, 5\nmov ecx, 9\nlock cmpxchg [0x3000], ecx\nmov ebx, [0x3000]');
  assert.equal(reg(m, 3), 9);
  assert.equal(m.cpu.getFlags() & ZF, ZF);
  m = run('mov dword [0x3000], 6\nmov eax, 5\nmov ecx, 9\ncmpxchg [0x3000], ecx\nmov ebx, [0x3000]');
  assert.equal(reg(m, 3), 6);
  assert.equal(reg(m, 0), 6);
  m = run('mov dword [0x3000], 1\nmov dword [0x3004], 2\nmov eax, 1\nmov edx, 2\nmov ebx, 3\nmov ecx, 4\nlock cmpxchg8b [0x3000]\nmov esi, [0x3000]\nmov edi, [0x3004]');
  assert.equal(reg(m, 6), 3);
  assert.equal(reg(m, 7), 4);
  m = run('mov dword [0x3000], 10\nmov ecx, 3\nlock xadd [0x3000], ecx\nmov ebx, [0x3000]');
  assert.equal(reg(m, 3), 13);
  assert.equal(reg(m, 1), 10);
  m = run('mov eax, 0x11223344\nbswap eax');
  assert.equal(reg(m, 0), 0x44332211);
  m = run('mov byte [0x3000], 0x80\nmovsx eax, byte [0x3000]\nmovzx ecx, byte [0x3000]');
  assert.equal(reg(m, 0), 0xffffff80);
  assert.equal(reg(m, 1), 0x80);
  m = run('lock mov eax, 1');
  assert.equal(exceptionLog(m).vector, 6, 'LOCK MOV is #UD');
  m = run('ud2');
  assert.equal(exceptionLog(m).vector, 6);
});

test('32-bit MUL/IMUL/DIV/IDIV agree with BigInt on random operands (incl. #DE cases)', () => {
  const m = makeMachine();
  loadProtected(m, 'main:\nmul ecx\nhlt\nimul ecx\nhlt\ndiv ecx\nhlt\nidiv ecx\nhlt\nimul eax, ecx\nhlt\n');
  const base = m.cpu.eip;
  let seed = 12345;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed ^ (seed >>> 13) ^ Math.imul(seed, 0x9e3779b1)) >>> 0;
  };
  const s32 = (v: bigint) => BigInt.asIntN(32, v);
  const u32 = (v: bigint) => BigInt.asUintN(32, v);
  for (let i = 0; i < 3000; i++) {
    const kind = i % 5;
    const eax = rnd();
    let edx = rnd();
    let ecx = rnd();
    if (i & 8) ecx >>>= rnd() % 32;
    if (i & 16) edx >>>= rnd() % 32;
    if (kind === 3 && i & 32) edx = eax & 0x80000000 ? 0xffffffff : 0;
    m.cpu.setReg32(0, eax);
    m.cpu.setReg32(1, ecx);
    m.cpu.setReg32(2, edx);
    m.cpu.halted = false;
    m.mem.write32(0x500 + 16, 0);
    m.cpu.eip = base + [0, 3, 6, 9, 12][kind];
    m.cpu.run(1);
    const faulted = m.mem.read32(0x500 + 16) !== 0 || m.cpu.eip !== base + [0, 3, 6, 9, 12][kind] + (kind === 4 ? 3 : 2);
    const A = BigInt(eax);
    const C = BigInt(ecx);
    const D = BigInt(edx);
    const got = [m.cpu.getReg32(0), m.cpu.getReg32(2)];
    if (kind === 0) assert.deepEqual(got, [Number(u32(A * C)), Number(u32((A * C) >> 32n))]);
    else if (kind === 1) {
      const p = s32(A) * s32(C);
      assert.deepEqual(got, [Number(u32(p)), Number(u32(p >> 32n))]);
    } else if (kind === 2) {
      const n = (D << 32n) | A;
      if (C === 0n || n / C > 0xffffffffn) assert.ok(faulted, `DIV ${n}/${C} must fault`);
      else assert.deepEqual(got, [Number(n / C), Number(n % C)], `DIV ${n}/${C}`);
    } else if (kind === 3) {
      const n = BigInt.asIntN(64, (D << 32n) | A);
      const d = s32(C);
      const q = d === 0n ? 0n : n / d;
      if (d === 0n || q > 0x7fffffffn || q < -0x80000000n) assert.ok(faulted, `IDIV ${n}/${d} must fault`);
      else assert.deepEqual(got, [Number(u32(q)), Number(u32(n % d))], `IDIV ${n}/${d}`);
    } else {
      const p = s32(A) * s32(C);
      assert.equal(got[0], Number(u32(p)));
      assert.equal((m.cpu.getFlags() & 1) !== 0, p !== s32(p), `IMUL overflow flag for ${s32(A)}*${s32(C)}`);
    }
  }
});
