/** Protected mode: segment loads and their checks, limits, privilege transitions, gates, IOPL. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeMachine, loadProtected, runToHalt, exceptionLog, GDT, IDT, SEL, STACK0, STACK3, TSS } from './harness';

function run(body: string, setup?: (m: ReturnType<typeof makeMachine>) => void) {
  const m = makeMachine();
  loadProtected(m, body);
  setup?.(m);
  runToHalt(m.cpu);
  return { m, log: exceptionLog(m), label: (name: string) => labelAddr(body, name, m) };
}
/** Finds `name` by running nasm's listing-free trick: programs store label addresses in EDI etc. */
function labelAddr(_body: string, _name: string, _m: unknown): number {
  return 0;
}

// Descriptor helpers written by the programs themselves (ring 0, flat data).
const DESC = (index: number, base: number, limit: number, access: number, flags: number) =>
  `mov dword [${GDT + index * 8}], ${(((base & 0xffff) << 16) | (limit & 0xffff)) >>> 0}
mov dword [${GDT + index * 8 + 4}], ${((base & 0xff000000) | (flags << 20) | (limit & 0xf0000) | (access << 8) | ((base >>> 16) & 0xff)) >>> 0}\n`;

const TO_RING3 = (label: string) => `mov ax, ${SEL.data3}\nmov ds, ax\nmov es, ax\npush dword ${SEL.data3}\npush dword ${STACK3}\npush dword 0x2\npush dword ${SEL.code3}\npush dword ${label}\niretd\n`;

test('#GP with the selector as error code for a selector beyond the GDT limit; EIP points at the load', () => {
  const { m, log } = run(`main:\n mov ax, 0x7f8\nload: mov ds, ax\n hlt\n`);
  assert.equal(log.vector, 13);
  assert.equal(log.error, 0x7f8 & 0xfffc);
  assert.equal(m.cpu.getSegSelector(3), SEL.data0, 'DS unchanged');
});

test('#NP for a not-present data segment, #GP for RPL != CPL on SS, #SS for SS limit, #GP(0) for null DS', () => {
  let r = run(`main:\n${DESC(9, 0, 0xfffff, 0x12, 0xc)} mov ax, 0x48\n mov es, ax\n hlt\n`);
  assert.deepEqual([r.log.vector, r.log.error], [11, 0x48]);
  r = run(`main:\n mov ax, ${SEL.data0 | 1}\n mov ss, ax\n hlt\n`);
  assert.deepEqual([r.log.vector, r.log.error], [13, SEL.data0]);
  r = run(`main:\n${DESC(9, 0, 0x7fff, 0x92, 0x4)} mov ax, 0x48\n mov ss, ax\n mov esp, 0x7000\n mov eax, [ss:0x7ffe]\n hlt\n`);
  assert.deepEqual([r.log.vector, r.log.error], [12, 0], 'a read straddling the SS limit is #SS(0)');
});

test('segment limits: #GP(0) past a data limit, expand-down segments', () => {
  let r = run(`main:\n${DESC(9, 0x100000, 0xfff, 0x92, 0x4)} mov ax, 0x48\n mov ds, ax\n mov eax, [0xffc]\n mov eax, [0xffd]\n hlt\n`);
  assert.deepEqual([r.log.vector, r.log.error], [13, 0]);
  r = run(`main:\n${DESC(9, 0, 0xfff, 0x96, 0x4)} mov ax, 0x48\n mov ds, ax\n mov eax, [0x1000]\n mov eax, [0xfff]\n hlt\n`);
  assert.deepEqual([r.log.vector, r.log.error], [13, 0], 'expand-down: offsets at or below the limit fault');
  r = run(`main:\n mov ax, 0\n mov ds, ax\n mov eax, [0x1000]\n hlt\n`);
  assert.deepEqual([r.log.vector, r.log.error], [13, 0]);
  r = run(`main:\n${DESC(9, 0, 0xfffff, 0x9a, 0xc)} mov ax, 0x48\n mov ds, ax\n mov eax, [0x1000]\n mov [0x1000], eax\n hlt\n`, undefined);
  // Readable code is loadable in DS and readable, but not writable.
  assert.deepEqual([r.log.vector, r.log.error], [13, 0]);
});

test('ring 3 via IRET, INT 0x80 through a DPL-3 trap gate with a stack switch, IRET back', () => {
  const body = `main:
 mov dword [${IDT + 0x80 * 8}], ${(SEL.code0 << 16) >>> 0} + (handler - $$ + ${0x10000}) - ${0x10000}
 mov eax, handler
 mov [${IDT + 0x80 * 8}], ax
 mov word [${IDT + 0x80 * 8 + 2}], ${SEL.code0}
 shr eax, 16
 mov [${IDT + 0x80 * 8 + 6}], ax
 mov word [${IDT + 0x80 * 8 + 4}], 0xef00
 ${TO_RING3('ring3')}
ring3:
 mov ebx, 0x1234
 int 0x80
 mov [0x3000], esi          ; ring-3 write after return
 mov ax, cs
 mov [0x3004], ax
 cli                        ; IOPL 0: #GP(0)
 hlt
handler:
 mov esi, esp
 mov edi, [esp+12]          ; ring-3 ESP
 mov ebp, [esp+16]          ; ring-3 SS
 mov edx, cs
 iretd
`;
  const { m, log } = run(body);
  assert.equal(m.cpu.getReg32(6), STACK0 - 20, 'handler ran on the TSS ring-0 stack with a 5-dword frame');
  assert.equal(m.cpu.getReg32(7), STACK3);
  assert.equal(m.cpu.getReg32(5), SEL.data3);
  assert.equal(m.mem.read16(0x3004), SEL.code3, 'back in ring 3');
  assert.deepEqual([log.vector, log.error, log.cs], [13, 0, SEL.code3], 'CLI at CPL 3 with IOPL 0');
  assert.equal(m.cpu.getSegSelector(1), SEL.code0);
});

test('INT n through a DPL-0 gate from ring 3 is #GP(vector*8+2)', () => {
  const { log } = run(`main:\n${TO_RING3('r3')}r3:\n int 0x21\n hlt\n`);
  assert.deepEqual([log.vector, log.error], [13, 0x21 * 8 + 2]);
});

test('far CALL through a call gate from ring 3 to ring 0 copies parameters; RETF returns to ring 3', () => {
  const body = `main:
 mov eax, target
 mov [${GDT + 10 * 8}], ax
 mov word [${GDT + 10 * 8 + 2}], ${SEL.code0}
 mov byte [${GDT + 10 * 8 + 4}], 2          ; two dword parameters
 mov byte [${GDT + 10 * 8 + 5}], 0xec       ; present, DPL 3, 32-bit call gate
 shr eax, 16
 mov [${GDT + 10 * 8 + 6}], ax
 ${TO_RING3('r3')}
r3:
 push dword 0x11111111
 push dword 0x22222222
 call 0x53:0
 mov [0x3000], eax
 mov [0x3004], esp
 mov ax, cs
 mov [0x3008], ax
 mov eax, 0
 hlt                         ; #GP in ring 3 ends the test
target:
 mov eax, [esp+8]            ; parameter pushed second-to-last (0x22222222)
 mov ebx, [esp+12]
 mov ecx, [esp+16]            ; old ESP
 mov edx, cs
 retf 8
`;
  const { m, log } = run(body);
  assert.equal(m.mem.read32(0x3000), 0x22222222);
  assert.equal(m.cpu.getReg32(3), 0x11111111);
  assert.equal(m.cpu.getReg32(1), STACK3 - 8);
  assert.equal(m.mem.read32(0x3004), STACK3, 'RETF 8 popped the parameters from the outer stack');
  assert.equal(m.mem.read16(0x3008), SEL.code3);
  assert.deepEqual([log.vector, log.error], [13, 0]);
});

test('I/O permission bitmap: CPL 3 with IOPL 0 may use ports whose bits are clear', () => {
  const m = makeMachine();
  const seen: number[] = [];
  m.io.register(0x80, 1, { out8: (_p, v) => seen.push(v) });
  m.io.register(0x81, 1, { out8: (_p, v) => seen.push(0x100 | v) });
  loadProtected(m, `main:\n${TO_RING3('r3')}r3:\n mov al, 7\n out 0x80, al\n out 0x81, al\n hlt\n`);
  m.mem.write8(TSS + 0x68 + (0x81 >> 3), 1 << (0x81 & 7));
  runToHalt(m.cpu);
  assert.deepEqual(seen, [7]);
  const log = exceptionLog(m);
  assert.deepEqual([log.vector, log.error], [13, 0]);
});

test('LAR, LSL, VERR, VERW, ARPL', () => {
  const { m } = run(`main:
 mov ax, ${SEL.code3}
 lar ebx, ax
 lsl ecx, ax
 verr ax
 setz dl
 verw ax
 setz dh
 mov ax, 0x0008
 mov si, 0x0003
 arpl ax, si
 setz [0x3000]
 mov [0x3002], ax
 hlt
`);
  assert.equal(m.cpu.getReg32(3), 0x00c0fa00, 'LAR: attribute bits, limit 19:16 masked as QEMU does');
  assert.equal(m.cpu.getReg32(1), 0xffffffff);
  assert.equal(m.cpu.getReg8(2), 1, 'VERR on readable code');
  assert.equal(m.cpu.getReg8(6), 0, 'VERW on code');
  assert.equal(m.mem.read8(0x3000), 1);
  assert.equal(m.mem.read16(0x3002), 0x000b);
});

test('exception inside a handler whose stack is unusable escalates to #DF, then to a triple fault', () => {
  const m = makeMachine();
  loadProtected(m, `main:\n mov esp, 0x2\n push eax\n hlt\n`);
  // #SS handler needs the same (broken) stack: #SS -> #DF -> (DF handler also faults) -> shutdown.
  runToHalt(m.cpu, 1000);
  assert.deepEqual(m.shutdowns, ['triple fault']);
});

test('double fault is delivered when a contributory exception hits during #GP delivery', () => {
  const m = makeMachine();
  loadProtected(m, `main:\n mov ax, 0x7f8\n mov ds, ax\n hlt\n`);
  // #GP gate not present -> #NP while delivering #GP -> #DF (vector 8, error 0).
  m.mem.write8(IDT + 13 * 8 + 5, 0x0e);
  runToHalt(m.cpu);
  const log = exceptionLog(m);
  assert.deepEqual([log.vector, log.error], [8, 0]);
});

test('conforming code keeps CPL; a JMP to non-conforming ring-0 code from ring 3 is #GP(sel)', () => {
  const body = `main:
${DESC(11, 0, 0xfffff, 0x9e, 0xc)}
 ${TO_RING3('r3')}
r3:
 jmp 0x58:conf
conf:
 mov ax, cs
 mov [0x3000], ax
 jmp ${SEL.code0}:main
`;
  const { m, log } = run(body);
  assert.equal(m.mem.read16(0x3000), 0x5b, 'CS RPL = CPL 3 in conforming code');
  assert.deepEqual([log.vector, log.error], [13, SEL.code0]);
});
