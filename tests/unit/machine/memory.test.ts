import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PhysicalMemory, PAGE_RAM, PAGE_ROM, PAGE_UNMAPPED } from '../../../src-emulator/machine/memory';

test('an MMIO window restores what it covered when unmapped (RAM, ROM, another device)', () => {
  const mem = new PhysicalMemory(2 * 1024 * 1024);
  mem.setKind(0xf0000, 0x10000, PAGE_ROM);
  const apic = { read8: () => 0x11, write8: () => {} };
  const bar = { read8: () => 0x22, write8: () => {} };
  const apicKind = mem.mapMmio(0xfee00000, 0x1000, apic);
  mem.mapMmio(0xfee00000, 0x1000, bar); // a BAR parked over the APIC while being sized
  assert.equal(mem.read8(0xfee00000), 0x22);
  mem.unmapMmio(bar);
  assert.equal(mem.pageKind[0xfee00], apicKind);
  assert.equal(mem.read8(0xfee00000), 0x11);
  mem.mapMmio(0x100000, 0x2000, bar);
  mem.mapMmio(0xf0000, 0x1000, bar);
  mem.mapMmio(0xe0000000, 0x1000, bar);
  mem.unmapMmio(bar);
  assert.equal(mem.pageKind[0x100], PAGE_RAM);
  assert.equal(mem.pageKind[0xf0], PAGE_ROM);
  assert.equal(mem.pageKind[0xe0000], PAGE_UNMAPPED);
});

test('RAM, ROM and unmapped accesses; split MMIO accesses', () => {
  const mem = new PhysicalMemory(1024 * 1024);
  mem.write32(0x1000, 0x12345678);
  assert.equal(mem.read16(0x1002), 0x1234);
  mem.setKind(0xf0000, 0x10000, PAGE_ROM);
  mem.loadRom(0xf0000, new Uint8Array([1, 2, 3, 4]));
  mem.write32(0xf0000, 0);
  assert.equal(mem.read32(0xf0000), 0x04030201);
  assert.equal(mem.read32(0x200000), -1);
  const bytes: number[] = [];
  mem.mapMmio(0x300000, 0x1000, { read8: (a) => a & 0xff, write8: (_a, v) => bytes.push(v) });
  assert.equal(mem.read16(0x300010), 0x1110);
  mem.write32(0x300000, 0x04030201);
  assert.deepEqual(bytes, [1, 2, 3, 4]);
});
