/** Task switches (JMP/CALL to a TSS, task gates in the IDT, IRET with NT) and virtual-8086 mode. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeMachine, loadProtected, runToHalt, exceptionLog, GDT, IDT, SEL, TSS } from './harness';

const TSS2 = 0x4000;
const DESC = (index: number, base: number, limit: number, access: number, flags: number) =>
  ` mov dword [${GDT + index * 8}], ${(((base & 0xffff) << 16) | (limit & 0xffff)) >>> 0}\n mov dword [${GDT + index * 8 + 4}], ${((base & 0xff000000) | (flags << 20) | (limit & 0xf0000) | (access << 8) | ((base >>> 16) & 0xff)) >>> 0}\n`;

/** A second 32-bit TSS at TSS2 (selector 0x48) starting at `task2` with its own stack. */
const TASK2 = `${DESC(9, TSS2, 0x67, 0x89, 0)}
 mov edi, ${TSS2}
 mov ecx, 26
 xor eax, eax
 rep stosd
 mov dword [${TSS2 + 32}], task2
 mov dword [${TSS2 + 36}], 2
 mov dword [${TSS2 + 56}], 0x5800
 mov word [${TSS2 + 72}], ${SEL.data0}
 mov word [${TSS2 + 76}], ${SEL.code0}
 mov word [${TSS2 + 80}], ${SEL.data0}
 mov word [${TSS2 + 84}], ${SEL.data0}
 mov word [${TSS2 + 88}], ${SEL.data0}
 mov word [${TSS2 + 92}], ${SEL.data0}
 mov dword [${TSS2 + 28}], 0
`;

test('CALL to a TSS: state saved, back link and NT set, busy bits; IRET returns', () => {
  const m = makeMachine();
  loadProtected(m, `main:\n${TASK2}\n mov ebx, 0x1111\n call 0x48:0\n mov [0x3000], ebx\n mov eax, [${GDT + 9 * 8 + 4}]\n mov [0x3004], eax\n hlt\ntask2:\n mov ebx, 0x2222\n mov ecx, [${TSS2}]\n mov [0x3010], ecx\n pushfd\n pop edx\n mov [0x3014], edx\n mov eax, [${GDT + 9 * 8 + 4}]\n mov [0x3018], eax\n mov esi, [${GDT + 5 * 8 + 4}]\n mov [0x301c], esi\n iretd\n`);
  runToHalt(m.cpu);
  assert.equal(exceptionLog(m).count, 0);
  assert.equal(m.mem.read32(0x3000), 0x1111, 'outer task state restored');
  assert.equal(m.mem.read32(0x3010), SEL.tss, 'back link');
  assert.equal(m.mem.read32(0x3014) & 0x4000, 0x4000, 'NT inside the nested task');
  assert.equal((m.mem.read32(0x3018) >>> 8) & 0xf, 0xb, 'new TSS busy');
  assert.equal((m.mem.read32(0x301c) >>> 8) & 0xf, 0xb, 'old TSS stays busy across CALL');
  assert.equal((m.mem.read32(0x3004) >>> 8) & 0xf, 0x9, 'nested TSS not busy after IRET');
  assert.equal(m.cpu.getSegSelector(7), SEL.tss);
  assert.equal(m.cpu.getCr(0) & 8, 8, 'CR0.TS set by the task switch');
  assert.equal(m.mem.read32(TSS2 + 40 + 3 * 4), 0x2222, 'outgoing state written to the nested TSS on IRET');
});

test('JMP to a busy TSS is #GP; a task gate in the IDT switches tasks on an exception', () => {
  let m = makeMachine();
  loadProtected(m, `main:\n jmp ${SEL.tss}:0\n hlt\n`);
  runToHalt(m.cpu);
  let log = exceptionLog(m);
  assert.deepEqual([log.vector, log.error], [13, SEL.tss]);
  m = makeMachine();
  loadProtected(m, `main:\n${TASK2}\n mov dword [${IDT + 6 * 8}], 0x00480000\n mov dword [${IDT + 6 * 8 + 4}], 0x8500\n ud2\n hlt\ntask2:\n mov eax, 0x600d\n mov ebx, [${TSS + 32}]\n hlt\n`);
  runToHalt(m.cpu);
  log = exceptionLog(m);
  assert.equal(log.count, 0);
  assert.equal(m.cpu.getReg32(0), 0x600d, '#UD delivered through the task gate');
  assert.equal(m.cpu.getSegSelector(7), 0x48);
  assert.notEqual(m.cpu.getReg32(3), 0, 'faulting EIP saved in the old TSS');
});

test('V86 mode: entered by IRET, IOPL-sensitive instructions trap, I/O bitmap, INT to the ring-0 handler', () => {
  const m = makeMachine();
  const ports: number[] = [];
  m.io.register(0x80, 1, { out8: (_p, v) => ports.push(v) });
  // V86 code at 0x9000:0 (linear 0x90000).
  m.mem.writeBytes(0x90000, new Uint8Array([0xb0, 0x42, 0xe6, 0x80, 0x66, 0xb8, 0x34, 0x12, 0x00, 0x00, 0xcd, 0x21, 0xf4]));
  // mov al,0x42; out 0x80,al; mov eax,0x1234; int 0x21 (IOPL 0 -> #GP); hlt
  loadProtected(m, `main:
 push dword 0          ; gs
 push dword 0          ; fs
 push dword 0x1000     ; ds
 push dword 0          ; es
 push dword 0x8000     ; ss
 push dword 0xfffe     ; esp
 push dword 0x20002    ; eflags: VM, IOPL 0
 push dword 0x9000     ; cs
 push dword 0          ; eip
 iretd
`);
  runToHalt(m.cpu);
  assert.deepEqual(ports, [0x42], 'OUT allowed by the bitmap (all zero) in V86');
  const log = exceptionLog(m);
  assert.deepEqual([log.vector, log.error, log.eip, log.cs], [13, 0, 10, 0x9000], 'INT n with IOPL < 3 is #GP(0) at the INT');
  assert.equal(m.cpu.getReg32(0) & 0xffff, 0x1234);
  assert.equal(m.cpu.getSegSelector(3), 0, 'data segments nulled on entry to ring 0 from V86');
  assert.equal(m.mem.read32(0x7000 - 4), 0, 'V86 GS pushed');
  assert.equal(m.mem.read32(0x7000 - 12), 0x1000, 'V86 DS pushed');
  assert.equal(m.mem.read32(0x7000 - 20), 0x8000, 'V86 SS pushed');
  assert.equal(m.mem.read32(0x7000 - 28) & 0x20000, 0x20000, 'EFLAGS with VM pushed');
});

test('V86 with IOPL 3: INT n goes through the IDT gate (DPL 3) and IRETD returns to V86', () => {
  const m = makeMachine();
  m.mem.writeBytes(0x90000, new Uint8Array([0xcd, 0x30, 0xb8, 0x77, 0x00, 0xfa, 0xf4]));
  // int 0x30; mov ax,0x77; cli; hlt  (HLT in V86 is #GP since CPL 3)
  loadProtected(
    m,
    `main:
 mov eax, handler
 mov [${IDT + 0x30 * 8}], ax
 mov word [${IDT + 0x30 * 8 + 2}], ${SEL.code0}
 mov word [${IDT + 0x30 * 8 + 4}], 0xee00
 shr eax, 16
 mov [${IDT + 0x30 * 8 + 6}], ax
 push dword 0
 push dword 0
 push dword 0
 push dword 0
 push dword 0x8000
 push dword 0xfffe
 push dword 0x23002    ; VM, IOPL 3
 push dword 0x9000
 push dword 0
 iretd
handler:
 mov ebx, 0xbeef
 iretd
`,
  );
  runToHalt(m.cpu);
  assert.equal(m.cpu.getReg32(3), 0xbeef);
  assert.equal(m.cpu.getReg32(0) & 0xffff, 0x77, 'back in V86 after IRETD');
  const log = exceptionLog(m);
  assert.deepEqual([log.vector, log.cs], [13, 0x9000], 'HLT in V86 is #GP');
  assert.equal(log.eip, 6);
});
