import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { IrqRouter } from '../../../src-emulator/machine/irq';
import { VirtualClock } from '../../../src-emulator/machine/clock';
import { PhysicalMemory } from '../../../src-emulator/machine/memory';
import { LocalApic, LAPIC_BASE } from '../../../src-emulator/devices/local-apic';
import { IoApic, IOAPIC_BASE } from '../../../src-emulator/devices/io-apic';
import { Pic8259Pair } from '../../../src-emulator/devices/pic8259';

function setup() {
  const mem = new PhysicalMemory(1024 * 1024);
  const io = new IoBus();
  const clock = new VirtualClock();
  const irq = new IrqRouter();
  const pic = new Pic8259Pair(io);
  const ioapic = new IoApic(mem);
  const lapic = new LocalApic(mem, clock);
  irq.addSink(pic);
  irq.addSink(ioapic);
  const cpu = { intr: false, nmis: 0, setIntr(l: boolean) { this.intr = l; }, raiseNmi() { this.nmis++; } };
  lapic.cpu = cpu;
  lapic.picAcknowledge = () => pic.acknowledge();
  lapic.onEoi = (v) => ioapic.eoi(v);
  ioapic.target = lapic;
  pic.onIntr = (l) => lapic.setLint0(l);
  const la = (reg: number) => mem.read32(LAPIC_BASE + reg) >>> 0;
  const law = (reg: number, v: number) => mem.write32(LAPIC_BASE + reg, v);
  const ioa = (reg: number) => {
    mem.write32(IOAPIC_BASE, reg);
    return mem.read32(IOAPIC_BASE + 0x10) >>> 0;
  };
  const ioaw = (reg: number, v: number) => {
    mem.write32(IOAPIC_BASE, reg);
    mem.write32(IOAPIC_BASE + 0x10, v);
  };
  return { mem, io, clock, irq, pic, ioapic, lapic, cpu, la, law, ioa, ioaw };
}

function enableApic(t: ReturnType<typeof setup>) {
  t.law(0xf0, 0x1ff); // SVR: enabled, spurious vector 0xFF
  t.law(0x350, 0x10700); // LINT0 masked, as an OS using the I/O APIC leaves it
}

test('local APIC registers: version, ID, TPR/PPR, LDR/DFR', () => {
  const t = setup();
  assert.equal(t.la(0x30) & 0xff, 0x14);
  assert.equal((t.la(0x30) >> 16) & 0xff, 5);
  assert.equal(t.la(0x20), 0);
  assert.equal(t.la(0xe0), 0xffffffff);
  t.law(0x80, 0x20);
  assert.equal(t.la(0x80), 0x20);
  assert.equal(t.la(0xa0), 0x20);
  t.law(0xd0, 0x01000000);
  assert.equal(t.la(0xd0), 0x01000000);
  assert.equal(t.la(0x350), 0x700, 'LINT0 ExtINT virtual wire at reset');
});

test('virtual wire: the 8259 reaches the CPU through LINT0 ExtINT', () => {
  const t = setup();
  t.io.out8(0x20, 0x11);
  t.io.out8(0x21, 0x08);
  t.io.out8(0x21, 0x04);
  t.io.out8(0x21, 0x01);
  t.irq.set(1, true);
  assert.equal(t.cpu.intr, true);
  assert.equal(t.lapic.acknowledge(), 0x09);
  assert.equal(t.cpu.intr, false);
  // Masking LINT0 (as an APIC OS does) cuts the PIC off.
  enableApic(t);
  t.law(0x350, 0x10700);
  t.io.out8(0x20, 0x20);
  t.irq.set(1, false);
  t.irq.set(1, true);
  assert.equal(t.cpu.intr, false);
});

test('self IPI, priorities against TPR and ISR, EOI', () => {
  const t = setup();
  enableApic(t);
  t.law(0x300, 0x40040 | 0x40); // self, fixed, vector 0x40
  assert.equal(t.cpu.intr, true);
  assert.equal(t.la(0x200 + 0x20) & 1, 1, 'IRR bit 0x40');
  t.law(0x80, 0x50); // TPR above 0x40
  assert.equal(t.cpu.intr, false);
  t.law(0x80, 0x00);
  assert.equal(t.lapic.acknowledge(), 0x40);
  assert.equal(t.la(0x100 + 0x20) & 1, 1, 'ISR bit 0x40');
  t.law(0x300, 0x40000 | 0x45);
  assert.equal(t.cpu.intr, false, 'same priority class as the one in service');
  t.law(0x300, 0x40000 | 0x61);
  assert.equal(t.lapic.acknowledge(), 0x61);
  t.law(0xb0, 0);
  t.law(0xb0, 0);
  assert.equal(t.lapic.acknowledge(), 0x45);
  assert.equal(t.lapic.acknowledge(), 0xff, 'spurious vector when nothing is pending');
});

test('APIC timer: one-shot and periodic with divide configuration, current count', () => {
  const t = setup();
  enableApic(t);
  t.law(0x3e0, 0x3); // divide by 16
  t.law(0x320, 0x30); // one-shot, vector 0x30
  t.law(0x380, 1000); // 16 us
  t.clock.advanceTo(8000);
  assert.equal(t.la(0x390), 500);
  assert.equal(t.cpu.intr, false);
  t.clock.advanceTo(16001);
  assert.equal(t.cpu.intr, true);
  assert.equal(t.lapic.acknowledge(), 0x30);
  t.law(0xb0, 0);
  assert.equal(t.la(0x390), 0);
  t.law(0x3e0, 0xb); // divide by 1
  t.law(0x320, 0x20031); // periodic, vector 0x31
  t.law(0x380, 100_000); // 100 us
  let fired = 0;
  for (let now = 16001; now < 16001 + 1_000_000; now += 5000) {
    t.clock.advanceTo(now);
    if (t.cpu.intr) {
      assert.equal(t.lapic.acknowledge(), 0x31);
      t.law(0xb0, 0);
      fired++;
    }
  }
  assert.ok(fired >= 9 && fired <= 10, `fired ${fired}`);
  t.law(0x320, 0x30031); // masked
  t.clock.advanceTo(3_000_000);
  assert.equal(t.cpu.intr, false);
});

test('I/O APIC: version, redirection entries, ISA IRQ 0 on pin 2, edge delivery', () => {
  const t = setup();
  enableApic(t);
  assert.equal(t.ioa(1) & 0xff, 0x11);
  assert.equal((t.ioa(1) >> 16) & 0xff, 23);
  assert.equal(t.ioa(0x10) & 0x10000, 0x10000, 'masked at reset');
  t.ioaw(0x10 + 2 * 2, 0x30); // pin 2 -> vector 0x30, edge, unmasked
  t.ioaw(0x10 + 2 * 2 + 1, 0);
  assert.equal(t.ioa(0x14), 0x30);
  t.irq.set(0, true);
  assert.equal(t.cpu.intr, true);
  assert.equal(t.lapic.acknowledge(), 0x30);
  t.law(0xb0, 0);
  t.irq.set(0, false);
  assert.equal(t.cpu.intr, false);
});

test('I/O APIC: level-triggered pin sets Remote IRR and re-delivers after EOI while asserted', () => {
  const t = setup();
  enableApic(t);
  t.ioaw(0x10 + 2 * 11, 0x8000 | 0x51); // level, vector 0x51
  t.irq.set(11, true);
  assert.equal(t.lapic.acknowledge(), 0x51);
  assert.equal(t.ioa(0x10 + 2 * 11) & 0x4000, 0x4000, 'Remote IRR');
  assert.equal(t.la(0x180 + 0x20) & (1 << 0x11), 1 << 0x11, 'TMR bit');
  t.law(0xb0, 0); // EOI broadcast: still asserted -> again
  assert.equal(t.cpu.intr, true);
  assert.equal(t.lapic.acknowledge(), 0x51);
  t.irq.set(11, false);
  t.law(0xb0, 0);
  assert.equal(t.ioa(0x10 + 2 * 11) & 0x4000, 0);
  assert.equal(t.cpu.intr, false);
});

test('I/O APIC: a masked edge is remembered and delivered on unmask', () => {
  const t = setup();
  enableApic(t);
  t.ioaw(0x10 + 2 * 4, 0x10000 | 0x34);
  t.irq.set(4, true);
  t.irq.set(4, false);
  assert.equal(t.cpu.intr, false);
  t.ioaw(0x10 + 2 * 4, 0x34);
  assert.equal(t.lapic.acknowledge(), 0x34);
});

test('LINT1 NMI and the error LVT for an illegal vector', () => {
  const t = setup();
  enableApic(t);
  t.law(0x360, 0x400); // NMI
  t.lapic.setLint1(true);
  assert.equal(t.cpu.nmis, 1);
  t.law(0x370, 0xfe);
  t.lapic.acceptInterrupt(3, false);
  t.law(0x280, 0);
  assert.equal(t.la(0x280) & 0x40, 0x40);
  assert.equal(t.lapic.acknowledge(), 0xfe);
});

test('state round-trip of both APICs', () => {
  const a = setup();
  enableApic(a);
  a.ioaw(0x10 + 2 * 5, 0x8000 | 0x55);
  a.law(0x300, 0x40000 | 0x66);
  const b = setup();
  b.lapic.loadState(structuredClone(a.lapic.saveState()));
  b.ioapic.loadState(structuredClone(a.ioapic.saveState()));
  assert.equal(b.ioa(0x10 + 2 * 5), 0x8055);
  assert.equal(b.cpu.intr, true);
  assert.equal(b.lapic.acknowledge(), 0x66);
});
