/**
 * The platform around the CPU: a busy real-mode guest taking PIT interrupts at ~10 kHz through the
 * 8259 (IRQ handler + EOI), run by Machine.runSlice in deterministic mode. Reports guest MIPS under
 * the run loop, the same loop without interrupts through raw cpu.run (the ratio is the cost of the
 * machine layer: batching to timer deadlines, interrupt delivery, device emulation), and interrupts
 * delivered per host second. nasm source of the guest:
 * bits 16
 * org 0
 * start:
 *   cli
 *   xor ax, ax
 *   mov ss, ax
 *   mov sp, 0x7000
 *   mov ds, ax
 *   mov word [8*4], handler
 *   mov word [8*4+2], 0xf000
 *   mov al, 0x11
 *   out 0x20, al
 *   mov al, 0x08
 *   out 0x21, al
 *   mov al, 0x04
 *   out 0x21, al
 *   mov al, 0x01
 *   out 0x21, al
 *   mov al, 0xfe
 *   out 0x21, al
 *   mov al, 0x34
 *   out 0x43, al
 *   mov al, 119          ; ~10 kHz
 *   out 0x40, al
 *   mov al, 0
 *   out 0x40, al
 *   mov dword [0x500], 0
 *   sti
 * busy:
 *   inc dword [0x504]
 *   jmp busy
 * handler:
 *   push ax
 *   inc dword [0x500]
 *   mov al, 0x20
 *   out 0x20, al
 *   pop ax
 *   iret
 */
import type { BenchRow } from './types';
import { Machine } from '../../src-emulator/machine/machine';
import { defaultMachineConfig } from '../../src-emulator/machine/config';

const GUEST = [
  0xfa, 0x31, 0xc0, 0x8e, 0xd0, 0xbc, 0x00, 0x70, 0x8e, 0xd8, 0xc7, 0x06, 0x20, 0x00, 0x47, 0x00,
  0xc7, 0x06, 0x22, 0x00, 0x00, 0xf0, 0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x08, 0xe6, 0x21, 0xb0, 0x04,
  0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0xfe, 0xe6, 0x21, 0xb0, 0x34, 0xe6, 0x43, 0xb0, 0x77,
  0xe6, 0x40, 0xb0, 0x00, 0xe6, 0x40, 0x66, 0xc7, 0x06, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0xfb,
  0x66, 0xff, 0x06, 0x04, 0x05, 0xeb, 0xf9, 0x50, 0x66, 0xff, 0x06, 0x00, 0x05, 0xb0, 0x20, 0xe6,
  0x20, 0x58, 0xcf,
];

function machineWith(code: number[]): Machine {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true });
  const img = new Uint8Array(0x10000).fill(0xf4);
  img.set(code, 0);
  img.set([0xea, 0x00, 0x00, 0x00, 0xf0], 0xfff0); // jmp f000:0000
  m.loadBios(img);
  return m;
}

export async function run(): Promise<BenchRow[]> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  // Under the machine, with ~10k interrupts per virtual second.
  const m = machineWith(GUEST);
  m.runSlice(50); // warm-up
  const i0 = m.cpu.instructionsRetired;
  const irq0 = m.mem.read32(0x500);
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) m.runSlice(15);
  const dt = (performance.now() - t0) / 1000;
  const mips = (m.cpu.instructionsRetired - i0) / dt / 1e6;
  const irqs = (m.mem.read32(0x500) - irq0) / dt;
  // The same busy loop without the PIT, straight through cpu.run.
  const raw = machineWith([0x66, 0xff, 0x06, 0x04, 0x05, 0xeb, 0xf9]); // busy: inc dword [0x504]; jmp busy
  raw.cpu.run(1_000_000);
  const r0 = raw.cpu.instructionsRetired;
  const t1 = performance.now();
  while (performance.now() - t1 < seconds * 1000) raw.cpu.run(100_000);
  const rawMips = (raw.cpu.instructionsRetired - r0) / ((performance.now() - t1) / 1000) / 1e6;
  return [
    { suite: 'platform', name: 'busy guest + 10 kHz PIT IRQs (runSlice)', value: mips, unit: 'MIPS', note: `ratio to raw cpu.run ${(mips / rawMips).toFixed(2)}` },
    { suite: 'platform', name: 'busy guest, raw cpu.run', value: rawMips, unit: 'MIPS' },
    { suite: 'platform', name: 'interrupts delivered', value: irqs, unit: 'IRQ/s host' },
  ];
}
