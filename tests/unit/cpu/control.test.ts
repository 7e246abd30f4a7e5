/** Control flow and the stack: near/far CALL/RET, ENTER/LEAVE, PUSHA/POPA, LOOPcc/JCXZ, 16-bit code, CS limit. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeMachine, loadProtected, loadReal, runToHalt, exceptionLog, assemble, SEL } from './harness';

function run(body: string) {
  const m = makeMachine();
  loadProtected(m, `main:\n${body}\n hlt\n`);
  runToHalt(m.cpu);
  return { m, log: exceptionLog(m) };
}

test('CALL/RET with immediate, indirect CALL through memory and register', () => {
  const { m } = run(`mov dword [0x3000], f2
 push dword 7
 call f1
 call [0x3000]
 mov eax, f2
 call eax
 jmp done
f1: mov ebx, [esp+4]
 ret 4
f2: inc ecx
 ret
done:`);
  assert.equal(m.cpu.getReg32(3), 7);
  assert.equal(m.cpu.getReg32(1), 2);
  assert.equal(m.cpu.getReg32(4), 0x7000);
});

test('ENTER with nesting levels and LEAVE', () => {
  const { m } = run(`mov ebp, 0x6f00
 enter 16, 3
 mov eax, ebp
 mov ebx, esp
 mov ecx, [ebp-4]
 mov edx, [ebp-12]
 leave`);
  const frame = 0x7000 - 4;
  assert.equal(m.cpu.getReg32(0), frame);
  assert.equal(m.cpu.getReg32(3), frame - 12 - 16, 'two copied frame pointers plus the new one, then 16 bytes');
  assert.equal(m.cpu.getReg32(2), frame, 'level 3: the new frame pointer is pushed last');
  assert.equal(m.cpu.getReg32(4), 0x7000, 'LEAVE restores ESP to the frame and pops EBP');
  assert.equal(m.cpu.getReg32(5), 0x6f00);
});

test('PUSHA/POPA order and the ignored ESP slot; PUSH ESP pushes the old value', () => {
  const { m } = run(`mov eax, 1
 mov ecx, 2
 mov edx, 3
 mov ebx, 4
 mov ebp, 6
 mov esi, 7
 mov edi, 8
 pushad
 mov eax, [esp+28]
 mov ebx, [esp+12]
 mov [esp+12], dword 0x1234
 mov [0x3000], eax
 mov [0x3004], ebx
 popad
 push esp
 pop ecx`);
  assert.equal(m.mem.read32(0x3000), 1);
  assert.equal(m.mem.read32(0x3004), 0x7000, 'saved ESP is the value before PUSHA');
  assert.equal(m.cpu.getReg32(4), 0x7000);
  assert.equal(m.cpu.getReg32(1), 0x7000);
  assert.equal(m.cpu.getReg32(3), 4, 'POPA skipped the stored ESP slot but read EBX');
});

test('LOOP/LOOPE/LOOPNE/JECXZ, and a 16-bit LOOP uses CX only', () => {
  const { m } = run(`mov ecx, 5
 xor eax, eax
l1: inc eax
 loop l1
 mov ecx, 0x10003
 xor ebx, ebx
l2: inc ebx
 a16 loop l2
 mov [0x3000], ecx
 xor ecx, ecx
 jecxz ok
 mov edx, 1
ok:`);
  assert.equal(m.cpu.getReg32(0), 5);
  assert.equal(m.cpu.getReg32(3), 3);
  assert.equal(m.mem.read32(0x3000), 0x10000);
  assert.equal(m.cpu.getReg32(2), 0x652, 'JECXZ taken (EDX keeps its reset value)');
});

test('jumps beyond the CS limit fault with #GP(0) at the jump', () => {
  const { log } = run(`jmp ${SEL.code16}:next16
bits 16
next16:
 mov eax, 0x12345
 jmp eax
bits 32`);
  assert.deepEqual([log.vector, log.error], [13, 0]);
});

test('real mode: far CALL/RETF, CS-relative data, 32-bit operand size prefix, segment arithmetic', () => {
  const m = makeMachine();
  loadReal(
    m,
    assemble(`bits 16
org 0x7c00
 mov ax, 0x1000
 mov ds, ax
 mov word [0x10], 0xabcd
 call 0:far_fn
 mov ebx, 0x12345678
 add ebx, ebx
 mov si, [0x10]
 hlt
far_fn:
 mov cx, [cs:data]
 retf
data: dw 0x5555
`),
  );
  runToHalt(m.cpu);
  assert.equal(m.cpu.getReg16(1), 0x5555);
  assert.equal(m.cpu.getReg32(3), 0x2468acf0);
  assert.equal(m.cpu.getReg16(6), 0xabcd);
  assert.equal(m.mem.read16(0x10010), 0xabcd);
});

test('real mode: protected-mode entry and return to real mode keeps cached limits (unreal mode)', () => {
  const m = makeMachine();
  loadReal(
    m,
    assemble(`bits 16
org 0x7c00
 cli
 lgdt [gdtr]
 mov eax, cr0
 or al, 1
 mov cr0, eax
 mov bx, 0x10
 mov ds, bx
 and al, 0xfe
 mov cr0, eax
 xor bx, bx
 mov ds, bx
 mov esi, 0x200000
 mov dword [esi], 0xcafe     ; beyond 64 KiB: works with the 4 GiB limit kept from protected mode
 mov eax, [esi]
 hlt
gdt: dq 0
 dq 0x00cf9a000000ffff
 dq 0x00cf92000000ffff
gdtr: dw 23
 dd gdt
`),
  );
  runToHalt(m.cpu);
  assert.equal(m.cpu.getReg32(0), 0xcafe);
  assert.equal(m.mem.read32(0x200000), 0xcafe);
});

test('instruction length: 15 bytes execute, 16 or more are #GP(0)', () => {
  let r = run(`db 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x66, 0x81, 0xc0, 0x34, 0x12\n mov ebx, eax`);
  assert.equal(r.log.count, 0, '15 bytes (11 prefixes + 81 C0 iw) are fine');
  r = run(`mov eax, 0\nok: db 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x81, 0xc0, 0x78, 0x56, 0x34, 0x12`);
  assert.deepEqual([r.log.vector, r.log.error], [13, 0], '16 bytes fault');
  assert.equal(r.m.cpu.getReg32(0), 0, 'the overlong ADD did not execute');
  r = run(`db ${Array(15).fill('0x26').join(', ')}, 0x90`);
  assert.deepEqual([r.log.vector, r.log.error], [13, 0], '15 prefixes and an opcode');
});
