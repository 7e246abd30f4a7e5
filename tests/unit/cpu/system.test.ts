/** CPUID, MSRs, RDTSC, SYSENTER/SYSEXIT, control registers, interrupts (INTR, NMI, shadows, HLT), FPU #NM. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeMachine, loadProtected, loadReal, runToHalt, exceptionLog, assemble, IDT, SEL } from './harness';

function run(body: string) {
  const m = makeMachine();
  loadProtected(m, `main:\n${body}\n hlt\n`);
  runToHalt(m.cpu);
  return { m, log: exceptionLog(m) };
}

test('CPUID reports GenuineIntel family 6 with exactly the implemented features (no MMX/SSE)', () => {
  let { m } = run('xor eax, eax\n cpuid');
  const vendor = [3, 2, 1].map((r) => m.cpu.getReg32(r)).map((v) => String.fromCharCode(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24)).join('');
  assert.equal(vendor, 'GenuineIntel');
  ({ m } = run('mov eax, 1\n cpuid'));
  assert.equal((m.cpu.getReg32(0) >> 8) & 0xf, 6);
  const edx = m.cpu.getReg32(2);
  for (const bit of [0, 3, 4, 5, 6, 8, 9, 11, 12, 13, 15]) assert.ok(edx & (1 << bit), `feature bit ${bit}`);
  for (const bit of [23, 25, 26]) assert.equal(edx & (1 << bit), 0, `no MMX/SSE (bit ${bit})`);
});

test('ID flag toggles (CPUID present); AC toggles', () => {
  const { m } = run('pushfd\n pop eax\n xor eax, 0x240000\n push eax\n popfd\n pushfd\n pop ebx');
  assert.equal(m.cpu.getReg32(3) & 0x240000, 0x240000);
});

test('RDMSR/WRMSR: TSC, APIC base, SYSENTER MSRs, MTRRs hold values; unknown MSR is #GP(0)', () => {
  const r = run('mov ecx, 0x1b\n rdmsr\n mov esi, eax\n mov ecx, 0x200\n mov eax, 0x12345006\n xor edx, edx\n wrmsr\n xor eax, eax\n rdmsr\n mov edi, eax\n mov ecx, 0x12345\n rdmsr');
  let m = r.m;
  const log = r.log;
  assert.equal(m.cpu.getReg32(6), 0xfee00900);
  assert.equal(m.cpu.getReg32(7), 0x12345006);
  assert.deepEqual([log.vector, log.error], [13, 0]);
  m = makeMachine();
  loadProtected(m, 'main:\n rdtsc\n mov esi, eax\n mov edi, edx\n hlt\n');
  m.now.ns = 5_000_000_123;
  runToHalt(m.cpu);
  assert.equal(m.cpu.getReg32(7) * 2 ** 32 + m.cpu.getReg32(6), 5_000_000_123);
});

test('SYSENTER to ring 0 and SYSEXIT to ring 3 with flat segments from IA32_SYSENTER_CS', () => {
  const { m } = run(`mov ecx, 0x174
 mov eax, ${SEL.code0}
 xor edx, edx
 wrmsr
 mov ecx, 0x175
 mov eax, 0x6800
 wrmsr
 mov ecx, 0x176
 mov eax, kernel
 wrmsr
 mov ecx, 0x5000
 mov edx, user
 sysexit
user:
 mov ax, cs
 mov [0x3000], ax
 sysenter
kernel:
 mov ax, cs
 mov [0x3002], ax
 mov [0x3004], esp`);
  assert.equal(m.mem.read16(0x3000), SEL.code3);
  assert.equal(m.mem.read16(0x3002), SEL.code0);
  assert.equal(m.mem.read32(0x3004), 0x6800);
});

test('MOV CR4 with a reserved bit is #GP(0); MOV from CR1 is #UD; CR0.PG without PE is #GP', () => {
  let { log } = run('mov eax, 0x100000\n mov cr4, eax');
  assert.deepEqual([log.vector, log.error], [13, 0]);
  ({ log } = run('mov eax, cr1'));
  assert.equal(log.vector, 6);
});

test('x87 escape with CR0.TS set is #NM; WAIT only with MP and TS', () => {
  let { log } = run('mov eax, cr0\n or eax, 8\n mov cr0, eax\n wait\n fld1');
  assert.equal(log.vector, 7);
  ({ log } = run('mov eax, cr0\n or eax, 0xa\n mov cr0, eax\n wait'));
  assert.equal(log.vector, 7);
  ({ log } = run('clts\n mov eax, cr0\n or eax, 4\n mov cr0, eax\n fld1'));
  assert.equal(log.vector, 7, 'CR0.EM');
});

test('INTR: delivered when IF=1 after the STI shadow, acknowledged via the host; HLT wakes up', () => {
  const m = makeMachine();
  loadProtected(m, `main:
 mov eax, handler
 mov [${IDT + 0x20 * 8}], ax
 mov word [${IDT + 0x20 * 8 + 2}], ${SEL.code0}
 mov word [${IDT + 0x20 * 8 + 4}], 0x8e00
 shr eax, 16
 mov [${IDT + 0x20 * 8 + 6}], ax
 sti
 mov ebx, 1        ; runs before the interrupt (STI shadow)
 hlt
 mov ecx, 3
 hlt
handler:
 mov edx, ebx
 mov dword [0x3000], 0x1234
 iretd
`);
  m.cpu.run(16); // up to the first HLT, nothing pending
  assert.equal(m.cpu.halted, true);
  m.intVector.v = 0x20;
  m.cpu.setIntr(true);
  m.cpu.run(5);
  m.cpu.setIntr(false);
  runToHalt(m.cpu);
  assert.equal(m.mem.read32(0x3000), 0x1234);
  assert.equal(m.cpu.getReg32(2), 1, 'the instruction after STI ran first');
  assert.equal(m.cpu.getReg32(1), 3, 'execution resumed after the HLT');
});

test('NMI is taken even with IF=0 and blocks further NMIs until IRET', () => {
  const m = makeMachine();
  loadProtected(m, `main:
 mov eax, nmi
 mov [${IDT + 2 * 8}], ax
 mov word [${IDT + 2 * 8 + 2}], ${SEL.code0}
 mov word [${IDT + 2 * 8 + 4}], 0x8e00
 shr eax, 16
 mov [${IDT + 2 * 8 + 6}], ax
 cli
 hlt
 hlt
nmi:
 inc dword [0x3000]
 iretd
`);
  m.cpu.run(20);
  m.cpu.raiseNmi();
  m.cpu.run(1);
  m.cpu.raiseNmi(); // blocked until the handler's IRET
  runToHalt(m.cpu);
  assert.equal(m.mem.read32(0x3000), 2);
});

test('real mode: INT n through the IVT pushes FLAGS, CS, IP; IRET returns; exceptions push the faulting IP', () => {
  const m = makeMachine();
  const code = assemble(`bits 16\norg 0x7c00
 xor ax, ax
 mov ds, ax
 mov word [0x21*4], handler
 mov word [0x21*4+2], 0
 mov word [0*4], de
 mov word [0*4+2], 0
 int 0x21
 mov bx, 5
 xor cl, cl
fault: div cl
 hlt
handler:
 mov si, sp
 mov ax, [ss:si+4]
 iret
de:
 pop di
 add sp, 4
 hlt
`);
  loadReal(m, code);
  runToHalt(m.cpu);
  assert.equal(m.cpu.getReg16(0) & 0xf002, 0x0002, 'FLAGS pushed first (bit 1 set, IOPL/NT clear)');
  assert.equal(m.cpu.getReg16(3), 5);
  const faultIp = 0x7c00 + code.indexOf(0xf6, 0x20);
  assert.equal(m.cpu.getReg16(7), faultIp, 'DIV #DE pushes the address of the DIV');
});

test('triple fault: shutdown through the host', () => {
  const m = makeMachine();
  loadReal(m, assemble('bits 16\norg 0x7c00\n lidt [idt]\n int 3\nidt: dw 0\n dd 0\n'));
  m.cpu.run(10);
  assert.deepEqual(m.shutdowns, ['triple fault']);
});

test('string instructions: REP MOVSB overlap, DF=1, REPE CMPSB, REPNE SCASB, segment override on source', () => {
  const { m } = run(`mov edi, 0x3000
 mov ecx, 16
 mov al, 0x41
 rep stosb
 mov byte [0x3000], 1
 mov esi, 0x3000
 mov edi, 0x3001
 mov ecx, 8
 rep movsb           ; overlapping forward copy replicates byte 0
 std
 mov esi, 0x300f
 mov edi, 0x401f
 mov ecx, 4
 rep movsb
 cld
 mov esi, 0x3000
 mov edi, 0x3000
 mov ecx, 16
 repe cmpsb
 mov [0x3100], ecx
 mov edi, 0x3000
 mov ecx, 16
 mov al, 0x41
 repne scasb
 mov [0x3104], ecx
 mov [0x3108], edi
 mov esi, 0x3000
 lodsd
 mov [0x310c], eax`);
  assert.equal(m.mem.read32(0x3000), 0x01010101);
  assert.equal(m.mem.read8(0x3008), 0x01);
  assert.equal(m.mem.read8(0x3009), 0x41);
  assert.equal(m.mem.read32(0x401c), 0x41414141);
  assert.equal(m.mem.read32(0x3100), 0, 'REPE CMPSB on equal strings runs out');
  assert.equal(m.mem.read32(0x3104), 6, 'REPNE SCASB stops after the match');
  assert.equal(m.mem.read32(0x3108), 0x300a);
});

test('x87 wiring: memory operands through segmentation, FNSTSW AX, FCOMI flags, FXSAVE alignment', () => {
  let { m, log } = run(`fninit
 fld1
 fadd st0, st0
 fistp dword [0x3000]
 fldz
 fld1
 fcomi st0, st1
 setc bl
 seta bh
 fstsw ax
 mov [0x3004], ax`);
  assert.equal(log.count, 0);
  assert.equal(m.mem.read32(0x3000), 2);
  assert.equal(m.cpu.getReg8(3), 0, 'FCOMI: 1 > 0 so CF clear');
  assert.equal(m.cpu.getReg8(7), 1, 'FCOMI: above');
  ({ log } = run('fxsave [0x3008]'));
  assert.deepEqual([log.vector, log.error], [13, 0], 'FXSAVE needs 16-byte alignment');
  ({ m, log } = run('fninit\n fld1\n fxsave [0x3100]\n fninit\n fxrstor [0x3100]\n fistp dword [0x3000]'));
  assert.equal(log.count, 0);
  assert.equal(m.mem.read32(0x3000), 1, 'FXSAVE/FXRSTOR round trip');
});

test('saveState/loadState mid-program: a restored CPU continues exactly like the original', () => {
  const body = `main:
 mov eax, cr4
 or eax, 0x10
 mov cr4, eax
 mov ecx, 200000
 xor ebx, ebx
.l: imul ebx, ebx, 33
 add ebx, ecx
 cmp ebx, ecx
 setb dl
 add [0x3000], edx
 loop .l
 hlt`;
  const a = makeMachine();
  loadProtected(a, body);
  a.cpu.run(123457);
  const saved = structuredClone(a.cpu.saveState());
  const ram = a.mem.ram.slice();
  runToHalt(a.cpu, 5_000_000);
  const b = makeMachine();
  b.mem.ram.set(ram);
  b.cpu.loadState(saved);
  runToHalt(b.cpu, 5_000_000);
  for (let r = 0; r < 8; r++) assert.equal(b.cpu.getReg32(r), a.cpu.getReg32(r), `register ${r}`);
  assert.equal(b.cpu.getFlags(), a.cpu.getFlags());
  assert.equal(b.mem.read32(0x3000), a.mem.read32(0x3000));
  assert.equal(b.cpu.instructionsRetired, a.cpu.instructionsRetired);
  assert.equal(b.cpu.getCr(4), 0x10);
});
