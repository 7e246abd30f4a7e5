import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { IrqRouter } from '../../../src-emulator/machine/irq';
import { VirtualClock } from '../../../src-emulator/machine/clock';
import { PhysicalMemory, PAGE_RAM, PAGE_ROM } from '../../../src-emulator/machine/memory';
import { PciBus, PciDevice } from '../../../src-emulator/devices/pci-bus';
import { I440fxHostBridge } from '../../../src-emulator/devices/i440fx';
import { Piix3IsaBridge } from '../../../src-emulator/devices/piix3';
import { Pic8259Pair } from '../../../src-emulator/devices/pic8259';
import { AcpiPm, PM_TIMER_HZ } from '../../../src-emulator/devices/acpi-pm';

function setup() {
  const io = new IoBus();
  const mem = new PhysicalMemory(2 * 1024 * 1024);
  mem.setKind(0xc0000, 0x40000, PAGE_ROM);
  const irq = new IrqRouter();
  const clock = new VirtualClock();
  const pic = new Pic8259Pair(io);
  irq.addSink(pic);
  const bus = new PciBus(io, mem);
  const host = new I440fxHostBridge(mem);
  bus.attach(host, 0, 0);
  const isa = new Piix3IsaBridge(io, irq, pic);
  bus.attach(isa, 1, 0);
  bus.intxRouter = (slot, pin, level) => isa.routeIntx(slot, pin, level);
  const cfgAddr = (slot: number, fn: number, reg: number) => (0x80000000 | (slot << 11) | (fn << 8) | (reg & 0xfc)) >>> 0;
  const rd32 = (slot: number, fn: number, reg: number) => {
    io.out32(0xcf8, cfgAddr(slot, fn, reg));
    return io.in32(0xcfc) >>> 0;
  };
  const wr32 = (slot: number, fn: number, reg: number, v: number) => {
    io.out32(0xcf8, cfgAddr(slot, fn, reg));
    io.out32(0xcfc, v);
  };
  const wr8 = (slot: number, fn: number, reg: number, v: number) => {
    io.out32(0xcf8, cfgAddr(slot, fn, reg));
    io.out8(0xcfc + (reg & 3), v);
  };
  const rd8 = (slot: number, fn: number, reg: number) => {
    io.out32(0xcf8, cfgAddr(slot, fn, reg));
    return io.in8(0xcfc + (reg & 3));
  };
  return { io, mem, irq, clock, pic, bus, host, isa, rd32, wr32, wr8, rd8 };
}

test('configuration mechanism #1: IDs of the host bridge and ISA bridge, empty slots read all ones', () => {
  const { io, rd32, rd8 } = setup();
  assert.equal(rd32(0, 0, 0), 0x12378086);
  assert.equal(rd32(1, 0, 0), 0x70008086);
  assert.equal(rd32(1, 0, 8) >>> 8, 0x060100);
  assert.equal(rd8(1, 0, 0x0e), 0x80, 'multi-function');
  assert.equal(rd32(5, 0, 0), 0xffffffff);
  io.out32(0xcf8, 0x80000000);
  assert.equal(io.in32(0xcf8) >>> 0, 0x80000000);
});

test('BAR sizing and decoding: memory and I/O BARs move with the guest programming', () => {
  const t = setup();
  let reads = 0;
  const dev = new PciDevice('test', { vendorId: 0x1234, deviceId: 0x5678, classCode: 0x020000, interruptPin: 1 });
  dev.defineBar(0, { kind: 'mem', size: 0x1000, mmio: { read8: () => (reads++, 0x42), write8: () => {} } });
  const portHits: number[] = [];
  dev.defineBar(1, { kind: 'io', size: 0x20, ports: { in8: (p) => (portHits.push(p), 0x33) } });
  t.bus.attach(dev, 3);
  t.wr32(3, 0, 0x10, 0xffffffff);
  assert.equal(t.rd32(3, 0, 0x10), 0xfffff000);
  t.wr32(3, 0, 0x14, 0xffffffff);
  assert.equal(t.rd32(3, 0, 0x14), 0xffffffe1);
  assert.equal(t.rd32(3, 0, 0x18), 0, 'unimplemented BAR');
  t.wr32(3, 0, 0x10, 0xfebf0000);
  t.wr32(3, 0, 0x14, 0xc000);
  assert.equal(t.mem.read8(0xfebf0000), 0xff, 'memory decoding still off');
  t.wr32(3, 0, 0x04, 0x0003);
  assert.equal(t.mem.read8(0xfebf0010), 0x42);
  assert.equal(t.io.in8(0xc005), 0x33);
  t.wr32(3, 0, 0x10, 0xfeb00000);
  assert.equal(t.mem.read8(0xfebf0010), 0xff, 'old address released');
  assert.equal(t.mem.read8(0xfeb00010), 0x42);
  assert.equal(dev.barMapped(0), 0xfeb00000);
  t.wr32(3, 0, 0x04, 0x0000);
  assert.equal(t.io.in8(0xc005), 0xff);
  assert.equal(reads, 2);
});

test('PAM registers switch C0000-FFFFF between ROM and shadow RAM', () => {
  const { mem, wr8, rd8, host } = setup();
  mem.loadRom(0xf0000, new Uint8Array([0xea]));
  mem.write8(0xf0000, 0x11);
  assert.equal(mem.read8(0xf0000), 0xea, 'ROM: writes dropped');
  wr8(0, 0, 0x59, 0x30);
  assert.equal(rd8(0, 0, 0x59), 0x30);
  assert.equal(mem.pageKind[0xf0], PAGE_RAM);
  mem.write8(0xf0000, 0x11);
  assert.equal(mem.read8(0xf0000), 0x11);
  wr8(0, 0, 0x59, 0x10); // read-only shadow
  mem.write8(0xf0000, 0x22);
  assert.equal(mem.read8(0xf0000), 0x11);
  wr8(0, 0, 0x5a, 0x03); // C0000-C3FFF RW, C4000 untouched
  assert.equal(mem.pageKind[0xc0], PAGE_RAM);
  assert.equal(mem.pageKind[0xc4], PAGE_ROM);
  assert.equal(host.pamAttribute(0xc0000), 3);
  host.reset();
  assert.equal(mem.pageKind[0xc0], PAGE_ROM);
  assert.equal(mem.pageKind[0xf0], PAGE_ROM);
});

test('PIIX3: PIRQ routing drives the ISA IRQ (level via ELCR), swizzled by slot', () => {
  const t = setup();
  const dev = new PciDevice('nic', { vendorId: 0x10ec, deviceId: 0x8029, classCode: 0x020000, interruptPin: 1 });
  t.bus.attach(dev, 3);
  assert.equal(Piix3IsaBridge.pirqFor(3, 1), 2);
  t.wr8(1, 0, 0x62, 11); // PIRQC -> IRQ 11
  t.io.out8(0x4d1, 0x08); // ELCR: IRQ 11 level
  assert.equal(t.io.in8(0x4d1), 0x08);
  dev.setIntx(true);
  assert.equal(t.irq.level(11), true);
  assert.equal(t.rd8(3, 0, 0x06) & 0x08, 0x08, 'interrupt status bit');
  dev.setIntx(false);
  assert.equal(t.irq.level(11), false);
  dev.setIntx(true);
  t.wr8(1, 0, 0x62, 10); // reroute while asserted
  assert.equal(t.irq.level(11), false);
  assert.equal(t.irq.level(10), true);
  t.wr8(1, 0, 0x62, 0x80);
  assert.equal(t.irq.level(10), false);
});

test('PIIX3: reset control register 0xCF9', () => {
  const t = setup();
  let resets = 0;
  t.isa.onReset = () => resets++;
  t.io.out8(0xcf9, 0x02);
  assert.equal(resets, 0);
  t.io.out8(0xcf9, 0x06);
  assert.equal(resets, 1);
  // Byte accesses to 0xCF8 do not disturb CONFIG_ADDRESS.
  t.io.out32(0xcf8, 0x80000800);
  t.io.out8(0xcf9, 0x00);
  assert.equal(t.io.in32(0xcf8) >>> 0, 0x80000800);
});

test('ACPI PM: timer at 3.579545 MHz, power button SCI on IRQ 9, S5 power-off, ACPI enable', () => {
  const t = setup();
  const acpi = new AcpiPm(t.io, t.irq.sharedLine(9), t.clock);
  t.bus.attach(acpi, 1, 3);
  assert.equal(t.rd32(1, 3, 0), 0x71138086);
  assert.equal(t.rd32(1, 3, 0x40), 0xb001);
  t.clock.advanceTo(1e9);
  const v = t.io.in32(0xb008);
  assert.ok(Math.abs(v - PM_TIMER_HZ) <= 1, `PM timer after 1 s: ${v}`);
  t.clock.advanceTo(5e9);
  assert.equal(t.io.in32(0xb008), Math.floor(5 * PM_TIMER_HZ) & 0xffffff, '24-bit wrap');
  // Power button: status without enable does not raise the SCI.
  acpi.pressPowerButton();
  assert.equal(t.io.in16(0xb000) & 0x100, 0x100);
  assert.equal(t.irq.level(9), false);
  t.io.out16(0xb002, 0x100);
  assert.equal(t.irq.level(9), true);
  t.io.out16(0xb000, 0x100); // write 1 to clear
  assert.equal(t.irq.level(9), false);
  // ACPI enable through the SMI command port.
  assert.equal(t.io.in16(0xb004) & 1, 0);
  t.io.out8(0xb2, 0xf1);
  assert.equal(t.io.in16(0xb004) & 1, 1);
  let off = 0;
  acpi.onPowerOff = () => off++;
  t.io.out16(0xb004, (0 << 10) | (1 << 13) | 1);
  assert.equal(off, 1);
  // GPE0 block
  t.io.out8(0xafe2, 0x01);
  acpi.raiseGpe(0);
  assert.equal(t.irq.level(9), true);
  assert.equal(t.io.in8(0xafe0), 0x01);
  t.io.out8(0xafe0, 0x01);
  assert.equal(t.irq.level(9), false);
});

test('ACPI PM: timer overflow status with TMR_EN', () => {
  const t = setup();
  const acpi = new AcpiPm(t.io, t.irq.sharedLine(9), t.clock);
  t.bus.attach(acpi, 1, 3);
  t.io.out16(0xb002, 0x0001);
  const half = (0x800000 * 1e9) / PM_TIMER_HZ;
  t.clock.advanceTo(half - 1000);
  assert.equal(t.irq.level(9), false);
  t.clock.advanceTo(half + 1000);
  assert.equal(t.irq.level(9), true);
  assert.equal(t.io.in16(0xb000) & 1, 1);
});

test('SMRAM D_OPEN exposes RAM under the VGA window and closing restores the VGA mapping', () => {
  const t = setup();
  const vga = { read8: () => 0x77, write8: () => {} };
  t.mem.mapMmio(0xa0000, 0x20000, vga);
  assert.equal(t.rd8(0, 0, 0x72), 0x02);
  t.wr8(0, 0, 0x72, 0x4a); // D_OPEN | G_SMRAME
  t.mem.write8(0xa8000, 0x12);
  assert.equal(t.mem.read8(0xa8000), 0x12);
  t.wr8(0, 0, 0x72, 0x0a);
  assert.equal(t.mem.read8(0xa8000), 0x77);
  t.wr8(0, 0, 0x72, 0x5a); // D_LCK: D_OPEN cannot be set
  assert.equal(t.rd8(0, 0, 0x72) & 0x40, 0);
  assert.equal(t.mem.read8(0xa8000), 0x77);
});

test('APM control/status ports: with APMC_EN the "SMI" is acknowledged through the status port (SeaBIOS SMM handshake)', () => {
  const t = setup();
  const acpi = new AcpiPm(t.io, t.irq.sharedLine(9), t.clock);
  t.bus.attach(acpi, 1, 3);
  t.io.out8(0xb3, 0x01);
  t.io.out8(0xb2, 0x00);
  assert.equal(t.io.in8(0xb3), 0x01, 'no APMC_EN: nothing answers');
  t.wr32(1, 3, 0x58, t.rd32(1, 3, 0x58) | (1 << 25));
  t.io.out8(0xb2, 0x00);
  assert.equal(t.io.in8(0xb3), 0x00);
  assert.equal(t.io.in8(0xb2), 0x00);
});
