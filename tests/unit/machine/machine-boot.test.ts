import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src-emulator/machine/machine';
import { defaultMachineConfig } from '../../../src-emulator/machine/config';

/** A 64 KiB BIOS image whose reset vector (F000:FFF0) holds `code`; the rest is HLT. */
function biosWith(code: number[], body: number[] = []): Uint8Array {
  const img = new Uint8Array(0x10000).fill(0xf4);
  img.set(body, 0);
  img.set(code, 0xfff0);
  return img;
}

function collectSerial(m: Machine): () => string {
  let out = '';
  m.on('serial', (port, bytes) => {
    if (port === 0) out += Buffer.from(bytes).toString('latin1');
  });
  return () => out;
}

test('reset vector program writes to COM1 and exits through isa-debug-exit', () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true });
  // mov dx,0x3f8; mov al,'H'; out dx,al; mov al,'i'; out dx,al; mov al,0x21; out 0xf4,al; hlt
  m.loadBios(biosWith([0xba, 0xf8, 0x03, 0xb0, 0x48, 0xee, 0xb0, 0x69, 0xee, 0xb0, 0x21, 0xe6, 0xf4, 0xf4]));
  const serial = collectSerial(m);
  const reasons: string[] = [];
  m.on('shutdown', (r) => reasons.push(r));
  for (let i = 0; i < 10 && m.state !== 'off'; i++) m.runSlice(50);
  assert.equal(serial(), 'Hi');
  assert.equal(m.exitCode, (0x21 << 1) | 1);
  assert.equal(m.state, 'off');
  assert.match(reasons[0], /debug-exit/);
});

/**
 * Real mode at F000:0000: IVT[8] -> handler, 8259 at vector 8 with only IRQ 0 unmasked, PIT channel 0
 * mode 2 at 1 kHz, then HLT until the handler has counted 10 ticks; writes 'T' to COM1, exits with 0.
 * (nasm source in the test's comment history: tests/unit/machine/README is not needed, it is short:
 * cli; ss=ds=0; sp=0x7000; [0x20]=handler; [0x22]=0xf000; ICW1-4; IMR=0xfe; PIT 0x34, 1193;
 * [0x500]=0; sti; idle: hlt; cmp word [0x500],10; jb idle; cli; out 'T' to 0x3f8; out 0xf4,0; hlt;
 * handler: push ax; inc word [0x500]; EOI; pop ax; iret)
 */
const PIT_PROGRAM = [
  0xfa, 0x31, 0xc0, 0x8e, 0xd0, 0xbc, 0x00, 0x70, 0x8e, 0xd8, 0xc7, 0x06, 0x20, 0x00, 0x52, 0x00,
  0xc7, 0x06, 0x22, 0x00, 0x00, 0xf0, 0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x08, 0xe6, 0x21, 0xb0, 0x04,
  0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0xfe, 0xe6, 0x21, 0xb0, 0x34, 0xe6, 0x43, 0xb8, 0xa9,
  0x04, 0xe6, 0x40, 0x88, 0xe0, 0xe6, 0x40, 0xc7, 0x06, 0x00, 0x05, 0x00, 0x00, 0xfb, 0xf4, 0x83,
  0x3e, 0x00, 0x05, 0x0a, 0x72, 0xf8, 0xfa, 0xba, 0xf8, 0x03, 0xb0, 0x54, 0xee, 0xb0, 0x00, 0xe6,
  0xf4, 0xf4, 0x50, 0xff, 0x06, 0x00, 0x05, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf,
];

/**
 * Counts boots in CMOS byte 0x50 (which survives resets). Boot 1 resets through 0xCF9, boot 2 loads
 * an empty real-mode IDT and executes INT 3 (a triple fault), boot 3 prints the count and exits with it.
 */
const RESET_PROGRAM = [
  0xb0, 0x50, 0xe6, 0x70, 0xe4, 0x71, 0xfe, 0xc0, 0x88, 0xc3, 0xb0, 0x50, 0xe6, 0x70, 0x88, 0xd8,
  0xe6, 0x71, 0x80, 0xfb, 0x03, 0x73, 0x1c, 0x80, 0xfb, 0x02, 0x74, 0x0a, 0xba, 0xf9, 0x0c, 0xb0,
  0x02, 0xee, 0xb0, 0x06, 0xee, 0xf4, 0x31, 0xc0, 0x8e, 0xd8, 0x2e, 0x0f, 0x01, 0x1e, 0x40, 0x00,
  0xcd, 0x03, 0xf4, 0xba, 0xf8, 0x03, 0x88, 0xd8, 0x04, 0x30, 0xee, 0x88, 0xd8, 0xe6, 0xf4, 0xf4,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

const FAR_JMP_F000_0000 = [0xea, 0x00, 0x00, 0x00, 0xf0];

function pitMachine(): Machine {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true });
  m.loadBios(biosWith(FAR_JMP_F000_0000, PIT_PROGRAM));
  return m;
}

function runToEnd(m: Machine, slices = 200): void {
  for (let i = 0; i < slices && m.state !== 'off'; i++) {
    const r = m.runSlice(50);
    if (r.reason === 'idle') break;
  }
}

test('PIT interrupts through the 8259 wake a halted CPU; deterministic time skips while halted', () => {
  const m = pitMachine();
  const serial = collectSerial(m);
  runToEnd(m);
  assert.equal(serial(), 'T');
  assert.equal(m.exitCode, 1);
  const ms = m.clock.now() / 1e6;
  assert.ok(ms > 9.99 && ms < 10.2, `virtual time at exit: ${ms} ms`);
  assert.ok(m.cpu.instructionsRetired < 2000, `only ${m.cpu.instructionsRetired} instructions: halted time was skipped`);
});

test('deterministic mode: two runs give the same instruction count and time', () => {
  const a = pitMachine();
  const b = pitMachine();
  runToEnd(a);
  runToEnd(b);
  assert.equal(a.cpu.instructionsRetired, b.cpu.instructionsRetired);
  assert.equal(a.clock.now(), b.clock.now());
});

test('saveState mid-run, loadState into a fresh machine, and it finishes the same way', () => {
  const ref = pitMachine();
  runToEnd(ref);
  const a = pitMachine();
  // Run until about half the ticks have happened.
  for (let i = 0; i < 1000 && a.mem.read16(0x500) < 5; i++) a.runSlice(0);
  assert.ok(a.mem.read16(0x500) >= 5 && a.state !== 'off');
  const saved = structuredClone(a.saveState());
  const b = pitMachine();
  b.loadState(saved);
  const serial = collectSerial(b);
  runToEnd(b);
  assert.equal(serial(), 'T');
  assert.equal(b.exitCode, 1);
  assert.equal(b.cpu.instructionsRetired, ref.cpu.instructionsRetired);
  assert.equal(b.clock.now(), ref.clock.now());
});

test('reset through 0xCF9 and a triple fault (onTripleFault: reset) reboot the machine; RAM-backed CMOS survives', () => {
  const logs: string[] = [];
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true, onTripleFault: 'reset' }), { noFirmware: true, log: (s) => logs.push(s) });
  m.loadBios(biosWith(FAR_JMP_F000_0000, RESET_PROGRAM));
  const serial = collectSerial(m);
  let resets = 0;
  m.on('reset', () => resets++);
  runToEnd(m);
  assert.equal(resets, 2);
  assert.equal(serial(), '3');
  assert.equal(m.exitCode, (3 << 1) | 1);
  assert.ok(logs.some((l) => /triple fault/.test(l)), logs.join('\n'));
});

test('a triple fault with onTripleFault: stop ends the machine with a message', () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true, onTripleFault: 'stop' }), { noFirmware: true });
  m.loadBios(biosWith(FAR_JMP_F000_0000, RESET_PROGRAM));
  m.rtc.nvram[0x50] = 1; // start at boot 2: the triple fault
  const reasons: string[] = [];
  m.on('shutdown', (r) => reasons.push(r));
  runToEnd(m);
  assert.equal(m.state, 'off');
  assert.equal(reasons.length, 1);
  assert.match(reasons[0], /triple fault/);
});

test('realtime mode: start() runs, pause() freezes time, stop() ends', async () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16 }), { noFirmware: true });
  // jmp $ at the reset vector: a busy guest
  m.loadBios(biosWith([0xeb, 0xfe]));
  const done = m.start();
  await new Promise((r) => setTimeout(r, 60));
  m.pause();
  await done;
  assert.equal(m.state, 'paused');
  const t = m.clock.now();
  assert.ok(t > 0, 'time advanced while running');
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(m.clock.now(), t, 'time frozen while paused');
  assert.ok(m.cpu.instructionsRetired > 0);
  let reason = '';
  m.on('shutdown', (r) => (reason = r));
  m.stop();
  assert.equal(m.state, 'off');
  assert.equal(reason, 'stopped');
});

test('serial input reaches the guest; keyboard input reaches the i8042', () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true });
  m.serialInput(0, [0x41]);
  assert.equal(m.io.in8(0x3fd) & 1, 1);
  assert.equal(m.io.in8(0x3f8), 0x41);
  m.keyboard.sendScancodes([0x1e]);
  assert.equal(m.io.in8(0x64) & 1, 1);
  assert.equal(m.io.in8(0x60), 0x1e);
  assert.throws(() => m.serialInput(3, [1]), /no serial port 3/);
});

test('A20: the i8042 output port and port 0x92 drive cpu.a20Mask', () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true });
  assert.equal(m.cpu.a20Mask, -1);
  m.io.out8(0x64, 0xd1);
  m.io.out8(0x60, 0x01);
  assert.equal(m.cpu.a20Mask, ~0x100000);
  m.io.out8(0x92, 0x02);
  assert.equal(m.cpu.a20Mask, -1);
  m.io.out8(0x92, 0x00);
  assert.equal(m.cpu.a20Mask, ~0x100000);
});

test('bad config: memory out of range gives a clear error', () => {
  assert.throws(() => new Machine(defaultMachineConfig({ memoryMiB: 4000 }), { noFirmware: true }), /memory 4000 MiB is out of range/);
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16 }), { noFirmware: true });
  assert.throws(() => m.loadBios(new Uint8Array(1000)), /BIOS image of 1000 bytes/);
});

test('realtime mode: virtual time advances with host time, paced by instructions, monotonic', () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16 }), { noFirmware: true });
  m.loadBios(biosWith([0xeb, 0xfe]));
  const t0 = performance.now();
  let last = 0;
  while (performance.now() - t0 < 300) {
    const r = m.runSlice(15);
    if (r.reason === 'throttled') {
      const until = performance.now() + r.waitMs;
      while (performance.now() < until);
    }
    const now = m.clock.now();
    assert.ok(now >= last, 'monotonic');
    last = now;
  }
  const hostNs = (performance.now() - t0) * 1e6;
  const v = m.clock.now();
  // The pace starts as a guess and converges over a few steps; the guest's clock never runs ahead
  // of the host's (the CPU waits instead), and it advances.
  assert.ok(v <= hostNs + 15e6, `virtual ${v / 1e6} ms is not ahead of host ${hostNs / 1e6} ms`);
  assert.ok(v > 0, 'virtual time advanced');
});

test('realtime mode: a halted CPU waits on the host for the next timer', async () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16 }), { noFirmware: true });
  m.loadBios(biosWith([0xfb, 0xf4, 0xeb, 0xfd])); // sti; hlt; jmp back
  m.io.out8(0x21, 0xff); // the PIT ticks but nothing is delivered: the CPU stays halted
  m.io.out8(0x43, 0x34);
  m.io.out8(0x40, 0x9c);
  m.io.out8(0x40, 0x2e); // 100 Hz
  const r = m.runSlice(15);
  assert.equal(r.reason, 'halted');
  assert.ok(r.waitMs > 0 && r.waitMs <= 10.1, `wait ${r.waitMs} ms`);
  const t0 = performance.now();
  const done = m.start();
  await new Promise((res) => setTimeout(res, 150));
  m.pause();
  await done;
  const hostNs = (performance.now() - t0) * 1e6;
  assert.ok(m.clock.now() <= hostNs + 20e6);
  assert.ok(m.clock.now() >= 50e6, `virtual time ${m.clock.now() / 1e6} ms advanced while halted`);
  assert.ok(m.cpu.instructionsRetired < 1000, 'the CPU did not spin while halted');
});

test('an exception inside the emulator stops the machine with a message instead of throwing', () => {
  const logs: string[] = [];
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true, log: (s) => logs.push(s) });
  m.io.register(0x1234, 1, {
    out8: () => {
      throw new Error('device bug');
    },
  });
  // mov dx,0x1234; out dx,al; hlt
  m.loadBios(biosWith([0xba, 0x34, 0x12, 0xee, 0xf4]));
  let reason = '';
  m.on('shutdown', (r) => (reason = r));
  assert.doesNotThrow(() => m.runSlice(20));
  assert.equal(m.state, 'off');
  assert.match(reason, /emulator error at f000:0000fff[34]: device bug/);
  assert.ok(logs.some((l) => l.includes('device bug')));
});

/**
 * Protected mode with the 8259 masked: the PIT reaches the CPU through I/O APIC pin 2 (vector 0x30)
 * and the local APIC (EOI by MMIO); then the local APIC timer (periodic, vector 0x31) ticks 5 times.
 * Prints 'A' and exits with 0. nasm source:
 * bits 16
 * org 0
 * BASE equ 0xF0000
 * start:
 *   cli
 *   xor ax, ax
 *   mov ds, ax
 *   mov ss, ax
 *   mov sp, 0x7000
 *   o32 lgdt [cs:gdtr]
 *   mov eax, cr0
 *   or al, 1
 *   mov cr0, eax
 *   jmp dword 0x08:(BASE + pm32)
 * bits 32
 * pm32:
 *   mov ax, 0x10
 *   mov ds, ax
 *   mov es, ax
 *   mov ss, ax
 *   mov esp, 0x7000
 *   mov eax, BASE + tick
 *   mov word [0x1000 + 0x30*8], ax
 *   mov word [0x1000 + 0x30*8 + 2], 0x08
 *   mov word [0x1000 + 0x30*8 + 4], 0x8E00
 *   shr eax, 16
 *   mov word [0x1000 + 0x30*8 + 6], ax
 *   mov eax, BASE + apictick
 *   mov word [0x1000 + 0x31*8], ax
 *   mov word [0x1000 + 0x31*8 + 2], 0x08
 *   mov word [0x1000 + 0x31*8 + 4], 0x8E00
 *   shr eax, 16
 *   mov word [0x1000 + 0x31*8 + 6], ax
 *   lidt [BASE + idtr]
 *   mov al, 0xff
 *   out 0x21, al
 *   out 0xa1, al
 *   mov dword [0xFEE000F0], 0x1FF
 *   mov dword [0xFEE00350], 0x10700
 *   mov dword [0xFEC00000], 0x14
 *   mov dword [0xFEC00010], 0x30
 *   mov dword [0xFEC00000], 0x15
 *   mov dword [0xFEC00010], 0
 *   mov al, 0x34
 *   out 0x43, al
 *   mov al, 0xa9
 *   out 0x40, al
 *   mov al, 0x04
 *   out 0x40, al
 *   mov dword [0x500], 0
 *   mov dword [0x504], 0
 *   sti
 * .pit:
 *   hlt
 *   cmp dword [0x500], 10
 *   jb .pit
 *   ; mask IOAPIC pin 2, start the LAPIC timer: periodic, vector 0x31, divide by 1, 100 us
 *   mov dword [0xFEC00000], 0x14
 *   mov dword [0xFEC00010], 0x10030
 *   mov dword [0xFEE003E0], 0xB
 *   mov dword [0xFEE00320], 0x20031
 *   mov dword [0xFEE00380], 100000
 * .lapic:
 *   hlt
 *   cmp dword [0x504], 5
 *   jb .lapic
 *   cli
 *   mov dx, 0x3f8
 *   mov al, 'A'
 *   out dx, al
 *   mov al, 0
 *   out 0xf4, al
 *   hlt
 * tick:
 *   inc dword [0x500]
 *   mov dword [0xFEE000B0], 0
 *   iret
 * apictick:
 *   inc dword [0x504]
 *   mov dword [0xFEE000B0], 0
 *   iret
 * align 8
 * gdt:
 *   dq 0
 *   dq 0x00CF9A000000FFFF
 *   dq 0x00CF92000000FFFF
 * gdtr:
 *   dw 23
 *   dd BASE + gdt
 * idtr:
 *   dw 0x1ff
 *   dd 0x1000
 */
const APIC_PROGRAM = [
  0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc, 0x00, 0x70, 0x2e, 0x66, 0x0f, 0x01, 0x16, 0x78,
  0x01, 0x0f, 0x20, 0xc0, 0x0c, 0x01, 0x0f, 0x22, 0xc0, 0x66, 0xea, 0x21, 0x00, 0x0f, 0x00, 0x08,
  0x00, 0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0xbc, 0x00, 0x70, 0x00, 0x00,
  0xb8, 0x39, 0x01, 0x0f, 0x00, 0x66, 0xa3, 0x80, 0x11, 0x00, 0x00, 0x66, 0xc7, 0x05, 0x82, 0x11,
  0x00, 0x00, 0x08, 0x00, 0x66, 0xc7, 0x05, 0x84, 0x11, 0x00, 0x00, 0x00, 0x8e, 0xc1, 0xe8, 0x10,
  0x66, 0xa3, 0x86, 0x11, 0x00, 0x00, 0xb8, 0x4a, 0x01, 0x0f, 0x00, 0x66, 0xa3, 0x88, 0x11, 0x00,
  0x00, 0x66, 0xc7, 0x05, 0x8a, 0x11, 0x00, 0x00, 0x08, 0x00, 0x66, 0xc7, 0x05, 0x8c, 0x11, 0x00,
  0x00, 0x00, 0x8e, 0xc1, 0xe8, 0x10, 0x66, 0xa3, 0x8e, 0x11, 0x00, 0x00, 0x0f, 0x01, 0x1d, 0x7e,
  0x01, 0x0f, 0x00, 0xb0, 0xff, 0xe6, 0x21, 0xe6, 0xa1, 0xc7, 0x05, 0xf0, 0x00, 0xe0, 0xfe, 0xff,
  0x01, 0x00, 0x00, 0xc7, 0x05, 0x50, 0x03, 0xe0, 0xfe, 0x00, 0x07, 0x01, 0x00, 0xc7, 0x05, 0x00,
  0x00, 0xc0, 0xfe, 0x14, 0x00, 0x00, 0x00, 0xc7, 0x05, 0x10, 0x00, 0xc0, 0xfe, 0x30, 0x00, 0x00,
  0x00, 0xc7, 0x05, 0x00, 0x00, 0xc0, 0xfe, 0x15, 0x00, 0x00, 0x00, 0xc7, 0x05, 0x10, 0x00, 0xc0,
  0xfe, 0x00, 0x00, 0x00, 0x00, 0xb0, 0x34, 0xe6, 0x43, 0xb0, 0xa9, 0xe6, 0x40, 0xb0, 0x04, 0xe6,
  0x40, 0xc7, 0x05, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc7, 0x05, 0x04, 0x05, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0xfb, 0xf4, 0x83, 0x3d, 0x00, 0x05, 0x00, 0x00, 0x0a, 0x72, 0xf6,
  0xc7, 0x05, 0x00, 0x00, 0xc0, 0xfe, 0x14, 0x00, 0x00, 0x00, 0xc7, 0x05, 0x10, 0x00, 0xc0, 0xfe,
  0x30, 0x00, 0x01, 0x00, 0xc7, 0x05, 0xe0, 0x03, 0xe0, 0xfe, 0x0b, 0x00, 0x00, 0x00, 0xc7, 0x05,
  0x20, 0x03, 0xe0, 0xfe, 0x31, 0x00, 0x02, 0x00, 0xc7, 0x05, 0x80, 0x03, 0xe0, 0xfe, 0xa0, 0x86,
  0x01, 0x00, 0xf4, 0x83, 0x3d, 0x04, 0x05, 0x00, 0x00, 0x05, 0x72, 0xf6, 0xfa, 0x66, 0xba, 0xf8,
  0x03, 0xb0, 0x41, 0xee, 0xb0, 0x00, 0xe6, 0xf4, 0xf4, 0xff, 0x05, 0x00, 0x05, 0x00, 0x00, 0xc7,
  0x05, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00, 0xcf, 0xff, 0x05, 0x04, 0x05, 0x00, 0x00,
  0xc7, 0x05, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00, 0xcf, 0x90, 0x90, 0x90, 0x90, 0x90,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00,
  0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00, 0x17, 0x00, 0x60, 0x01, 0x0f, 0x00, 0xff, 0x01,
  0x00, 0x10, 0x00, 0x00,
];

test('protected mode: PIT through the I/O APIC and the local APIC timer deliver interrupts', () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true });
  m.loadBios(biosWith(FAR_JMP_F000_0000, APIC_PROGRAM));
  const serial = collectSerial(m);
  const reasons: string[] = [];
  m.on('shutdown', (r) => reasons.push(r));
  runToEnd(m);
  assert.equal(serial(), 'A', `shutdown: ${reasons.join(', ')}`);
  assert.equal(m.exitCode, 1);
  assert.equal(m.mem.read32(0x500), 10);
  assert.equal(m.mem.read32(0x504), 5);
  const ms = m.clock.now() / 1e6;
  assert.ok(ms > 10.4 && ms < 10.7, `10 PIT ms + 5 x 100 us: ${ms} ms`);
});

/**
 * Real mode, 8259 with only IRQ 1 unmasked; the IRQ 1 handler stores what it reads from port 0x60;
 * after two bytes the program writes them to COM1 and exits.
 */
const KEYBOARD_PROGRAM = [
  0xfa, 0x31, 0xc0, 0x8e, 0xd0, 0xbc, 0x00, 0x70, 0x8e, 0xd8, 0xc7, 0x06, 0x24, 0x00, 0x4a, 0x00,
  0xc7, 0x06, 0x26, 0x00, 0x00, 0xf0, 0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x08, 0xe6, 0x21, 0xb0, 0x04,
  0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0xfd, 0xe6, 0x21, 0xc7, 0x06, 0x00, 0x05, 0x00, 0x00,
  0xfb, 0xf4, 0x83, 0x3e, 0x00, 0x05, 0x02, 0x72, 0xf8, 0xfa, 0xba, 0xf8, 0x03, 0xa0, 0x02, 0x05,
  0xee, 0xa0, 0x03, 0x05, 0xee, 0xb0, 0x00, 0xe6, 0xf4, 0xf4, 0x50, 0x53, 0xe4, 0x60, 0x8b, 0x1e,
  0x00, 0x05, 0x88, 0x87, 0x02, 0x05, 0xff, 0x06, 0x00, 0x05, 0xb0, 0x20, 0xe6, 0x20, 0x5b, 0x58,
  0xcf,
];

test('keyboard input reaches a halted guest through IRQ 1 (deterministic: idle until input)', () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true });
  m.loadBios(biosWith(FAR_JMP_F000_0000, KEYBOARD_PROGRAM));
  const serial = collectSerial(m);
  assert.equal(m.runSlice(50).reason, 'idle');
  m.keyboard.sendScancodes([0x1e, 0x9e]); // 'a' down and up, set 1 (translation is on)
  runToEnd(m);
  assert.equal(serial(), '\x1e\x9e');
  assert.equal(m.exitCode, 1);
});

test('deterministic mode: the RTC starts at a fixed date unless one is given', () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true });
  assert.equal(m.rtc.getDate().toISOString(), '2026-01-01T00:00:00.000Z');
  const d = new Date(Date.UTC(1999, 11, 31, 23, 59, 59));
  const n = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true, startDate: d });
  assert.equal(n.rtc.getDate().toISOString(), d.toISOString());
});

/**
 * Linux's pit_calibrate_tsc in miniature: PIT channel 2 in mode 0 for 10 ms, and a loop that polls
 * OUT2 in port 0x61 and measures each iteration with RDTSC, keeping the smallest and largest delta.
 * nasm source:
 * bits 16
 * org 0
 * start:
 *   cli
 *   xor ax, ax
 *   mov ds, ax
 *   mov ss, ax
 *   mov sp, 0x7000
 *   in al, 0x61
 *   and al, 0xfd
 *   or al, 0x01
 *   out 0x61, al
 *   mov al, 0xb0
 *   out 0x43, al
 *   mov al, 0x9c          ; 11932 = 0x2e9c: 10 ms
 *   out 0x42, al
 *   mov al, 0x2e
 *   out 0x42, al
 *   mov dword [0x500], 0xffffffff   ; min delta
 *   mov dword [0x504], 0            ; max delta
 *   mov dword [0x508], 0            ; iterations
 *   rdtsc
 *   mov esi, eax
 * .loop:
 *   in al, 0x61
 *   test al, 0x20
 *   jnz .done
 *   rdtsc
 *   mov ebx, eax
 *   sub eax, esi
 *   mov esi, ebx
 *   cmp eax, [0x500]
 *   jae .notmin
 *   mov [0x500], eax
 * .notmin:
 *   cmp eax, [0x504]
 *   jbe .notmax
 *   mov [0x504], eax
 * .notmax:
 *   inc dword [0x508]
 *   jmp .loop
 * .done:
 *   mov al, 0
 *   out 0xf4, al
 *   hlt
 */
const CALIBRATION_PROGRAM = [
  0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc, 0x00, 0x70, 0xe4, 0x61, 0x24, 0xfd, 0x0c, 0x01,
  0xe6, 0x61, 0xb0, 0xb0, 0xe6, 0x43, 0xb0, 0x9c, 0xe6, 0x42, 0xb0, 0x2e, 0xe6, 0x42, 0x66, 0xc7,
  0x06, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0x66, 0xc7, 0x06, 0x04, 0x05, 0x00, 0x00, 0x00, 0x00,
  0x66, 0xc7, 0x06, 0x08, 0x05, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x31, 0x66, 0x89, 0xc6, 0xe4, 0x61,
  0xa8, 0x20, 0x75, 0x28, 0x0f, 0x31, 0x66, 0x89, 0xc3, 0x66, 0x29, 0xf0, 0x66, 0x89, 0xde, 0x66,
  0x3b, 0x06, 0x00, 0x05, 0x73, 0x04, 0x66, 0xa3, 0x00, 0x05, 0x66, 0x3b, 0x06, 0x04, 0x05, 0x76,
  0x04, 0x66, 0xa3, 0x04, 0x05, 0x66, 0xff, 0x06, 0x08, 0x05, 0xeb, 0xd2, 0xb0, 0x00, 0xe6, 0xf4,
  0xf4,
];

for (const deterministic of [true, false]) {
  test(`${deterministic ? 'deterministic' : 'realtime'} mode: RDTSC and the PIT agree smoothly in a calibration loop`, () => {
    const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic }), { noFirmware: true });
    m.loadBios(biosWith(FAR_JMP_F000_0000, CALIBRATION_PROGRAM));
    runToEnd(m, 1000);
    assert.equal(m.exitCode, 1);
    const min = m.mem.read32(0x500) >>> 0;
    const max = m.mem.read32(0x504) >>> 0;
    const n = m.mem.read32(0x508);
    assert.ok(n >= 1000, `${n} iterations in 10 ms of virtual time`);
    // Linux gives up on the PIT when one iteration takes 10 times longer than another (an "SMI").
    assert.ok(max < 10 * min, `iteration deltas ${min}..${max} ns`);
    const ms = m.clock.now() / 1e6;
    assert.ok(ms >= 10 && ms < 10.5, `PIT terminal count after ${ms} ms`);
  });
}

test('loadState rejects a damaged state with a message naming the section', () => {
  const a = pitMachine();
  a.runSlice(5);
  const good = a.saveState();
  const b = pitMachine();
  assert.throws(() => b.loadState({ ...good, version: 9 }), /unsupported version 9/);
  assert.throws(() => b.loadState({ ...good, ram: new Uint8Array(10) }), /RAM size 10/);
  assert.throws(() => b.loadState({ ...good, cpu: { version: 1 } }), /section cpu is damaged/);
  b.loadState(structuredClone(good));
  assert.equal(b.cpu.instructionsRetired, a.cpu.instructionsRetired);
});

test('IA32_APIC_BASE: a relocated local APIC window follows the MSR; the speaker tone is reported', () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true });
  m.loadBios(biosWith([0xfb, 0xf4, 0xeb, 0xfd]));
  m.io.out8(0x21, 0xff);
  assert.equal(m.mem.read32(0xfee00030) & 0xff, 0x14);
  m.cpu.apicBase = 0xfed00900 | 0;
  m.runSlice(1);
  assert.equal(m.mem.read32(0xfed00030) & 0xff, 0x14);
  assert.equal(m.mem.read32(0xfee00030), -1, 'old window released');
  const tones: number[] = [];
  m.on('speaker', (hz) => tones.push(Math.round(hz)));
  m.io.out8(0x43, 0xb6);
  m.io.out8(0x42, 0xa9);
  m.io.out8(0x42, 0x04); // 1193 -> 1000 Hz
  m.io.out8(0x61, 0x03);
  m.io.out8(0x61, 0x00);
  assert.deepEqual(tones, [1000, 0]);
});

test('a guest entering ACPI S5 powers the machine off: poweroff, then shutdown', () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true });
  // mov dx,0xb004; mov ax,0x2000 (SLP_EN, SLP_TYP 0); out dx,ax; jmp $
  m.loadBios(biosWith([0xba, 0x04, 0xb0, 0xb8, 0x00, 0x20, 0xef, 0xeb, 0xfe]));
  const events: string[] = [];
  m.on('poweroff', () => events.push('poweroff'));
  m.on('shutdown', (r) => events.push(`shutdown:${r}`));
  runToEnd(m);
  assert.deepEqual(events, ['poweroff', 'shutdown:poweroff']);
  assert.equal(m.state, 'off');
  assert.ok(m.cpu.instructionsRetired < 10, 'the CPU stopped right after the write');
});

test('the 8042 reset pulse (0xFE to port 0x64) resets the machine', () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true });
  // inc byte [0x600]; cmp byte [0x600],2; je done; mov al,0xfe; out 0x64,al; jmp $; done: out 0xf4,al; hlt
  m.mem.write8(0x600, 0);
  m.loadBios(biosWith(FAR_JMP_F000_0000, [0xfe, 0x06, 0x00, 0x06, 0x80, 0x3e, 0x00, 0x06, 0x02, 0x74, 0x06, 0xb0, 0xfe, 0xe6, 0x64, 0xeb, 0xfe, 0xe6, 0xf4, 0xf4]));
  let resets = 0;
  m.on('reset', () => resets++);
  runToEnd(m);
  assert.equal(resets, 1);
  assert.equal(m.mem.read8(0x600), 2, 'RAM survives the reset');
  assert.equal(m.exitCode, 1, "AL is 0 after the reset");
});
