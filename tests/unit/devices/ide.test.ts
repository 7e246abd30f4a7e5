import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PhysicalMemory } from '../../../src-emulator/machine/memory';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { VirtualClock } from '../../../src-emulator/machine/clock';
import { IrqRouter } from '../../../src-emulator/machine/irq';
import { PciBus } from '../../../src-emulator/devices/pci-bus';
import { IdeController, IDE_COMPLETION_NS } from '../../../src-emulator/devices/ide-controller';
import { AtaDrive } from '../../../src-emulator/devices/ata-drive';
import { MemoryDisk, SparseDisk, patterned } from './ide-test-disks';

const BM = 0xc000;

function setup(disk = new MemoryDisk(patterned(4 << 20))) {
  const mem = new PhysicalMemory(16 << 20);
  const io = new IoBus();
  const clock = new VirtualClock();
  const irq = new IrqRouter();
  const edges: number[] = [];
  irq.addSink({ setIrq: (line, level) => level && edges.push(line) });
  const ide = new IdeController({ io, mem, clock, irq14: irq.line(14), irq15: irq.line(15) });
  const pci = new PciBus(io, mem);
  pci.attach(ide, 1, 1);
  pci.writeConfig(0, 1, 1, 0x20, BM, 4);
  pci.writeConfig(0, 1, 1, 0x04, 0x0005, 2);
  const drive = new AtaDrive(disk);
  ide.attach(0, 0, drive);
  const settle = () => clock.advanceTo(clock.now() + IDE_COMPLETION_NS);
  return { mem, io, clock, irq, edges, ide, drive, disk, settle };
}

type Env = ReturnType<typeof setup>;

function lba28(env: Env, lba: number, count: number, cmd: number) {
  const { io } = env;
  io.out8(0x1f6, 0xe0 | ((lba >>> 24) & 0xf));
  io.out8(0x1f2, count & 0xff);
  io.out8(0x1f3, lba & 0xff);
  io.out8(0x1f4, (lba >>> 8) & 0xff);
  io.out8(0x1f5, (lba >>> 16) & 0xff);
  io.out8(0x1f7, cmd);
}

function readWords(io: IoBus, n: number): Uint8Array {
  const out = new Uint8Array(n * 2);
  for (let i = 0; i < n; i++) {
    const w = io.in16(0x1f0);
    out[i * 2] = w & 0xff;
    out[i * 2 + 1] = w >> 8;
  }
  return out;
}

function ataString(id: Uint8Array, word: number, words: number): string {
  let s = '';
  for (let i = 0; i < words; i++) s += String.fromCharCode(id[(word + i) * 2 + 1], id[(word + i) * 2]);
  return s.trim();
}

test('IDENTIFY DEVICE: BSY, then DRQ and IRQ 14; geometry, LBA28/48 counts, checksum', () => {
  const env = setup();
  const { io, edges, settle } = env;
  io.out8(0x1f6, 0xa0);
  io.out8(0x1f7, 0xec);
  assert.equal(io.in8(0x3f6) & 0x80, 0x80, 'busy until the completion time');
  assert.deepEqual(edges, []);
  settle();
  assert.deepEqual(edges, [14]);
  assert.equal(io.in8(0x1f7), 0x58);
  const id = readWords(io, 256);
  assert.equal(io.in8(0x1f7), 0x50);
  const w = (i: number) => id[i * 2] | (id[i * 2 + 1] << 8);
  assert.equal(w(0), 0x0040);
  assert.equal(ataString(id, 27, 20), 'BOXWOOD HARDDISK');
  assert.equal(w(60) | (w(61) << 16), 8192);
  assert.equal(w(100), 8192);
  assert.equal(w(3), 16);
  assert.equal(w(6), 63);
  assert.equal(w(1), 8); // 8192 / (16*63)
  assert.ok(w(83) & 0x0400, 'LBA48 supported');
  assert.ok(w(49) & 0x0300, 'LBA and DMA');
  assert.equal(id.reduce((a, b) => a + b, 0) & 0xff, 0, 'checksum');
  assert.equal(id[510], 0xa5);
});

test('PIO READ SECTORS (LBA28) and READ MULTIPLE move the right bytes with one IRQ per block', () => {
  const env = setup();
  const { io, disk, edges, settle } = env;
  lba28(env, 100, 3, 0x20);
  const got: Uint8Array[] = [];
  for (let i = 0; i < 3; i++) {
    settle();
    assert.equal(io.in8(0x1f7) & 0x88, 0x08);
    got.push(readWords(io, 256));
  }
  assert.equal(edges.length, 3);
  assert.equal(io.in8(0x1f7), 0x50);
  assert.deepEqual(Buffer.concat(got), Buffer.from(disk.data.subarray(100 * 512, 103 * 512)));
  // Task file reports the last sector read.
  assert.equal(io.in8(0x1f3), 102);

  io.out8(0x1f2, 4);
  io.out8(0x1f7, 0xc6); // SET MULTIPLE 4
  settle();
  assert.equal(io.in8(0x1f7) & 1, 0);
  edges.length = 0;
  lba28(env, 7, 6, 0xc4);
  settle();
  const first = readWords(io, 256 * 4);
  settle();
  const second = readWords(io, 256 * 2);
  assert.equal(edges.length, 2);
  assert.deepEqual(Buffer.concat([first, second]), Buffer.from(disk.data.subarray(7 * 512, 13 * 512)));
});

test('CHS addressing after INITIALIZE DEVICE PARAMETERS', () => {
  const env = setup();
  const { io, disk, settle } = env;
  io.out8(0x1f6, 0xa0 | 3); // heads = 4
  io.out8(0x1f2, 17); // 17 sectors per track
  io.out8(0x1f7, 0x91);
  settle();
  // C=2 H=1 S=5 -> LBA (2*4+1)*17+4 = 157
  io.out8(0x1f6, 0xa0 | 1);
  io.out8(0x1f2, 1);
  io.out8(0x1f3, 5);
  io.out8(0x1f4, 2);
  io.out8(0x1f5, 0);
  io.out8(0x1f7, 0x20);
  settle();
  assert.deepEqual(readWords(io, 256), disk.data.subarray(157 * 512, 158 * 512));
});

test('PIO WRITE SECTORS: first block without IRQ, then data reaches the BlockDevice; FLUSH CACHE flushes it', () => {
  const env = setup();
  const { io, disk, edges, settle } = env;
  const data = patterned(1024, 99);
  lba28(env, 50, 2, 0x30);
  assert.equal(io.in8(0x1f7) & 0x08, 0x08, 'DRQ for the first block at once');
  assert.equal(edges.length, 0);
  for (let s = 0; s < 2; s++) {
    for (let i = 0; i < 256; i++) io.out16(0x1f0, data[s * 512 + i * 2] | (data[s * 512 + i * 2 + 1] << 8));
    settle();
  }
  assert.equal(edges.length, 2);
  assert.equal(io.in8(0x1f7), 0x50);
  assert.deepEqual(disk.data.subarray(50 * 512, 52 * 512), data);
  io.out8(0x1f7, 0xe7);
  settle();
  assert.equal(disk.flushes, 1);
  assert.equal(io.in8(0x1f7), 0x50);
});

test('32-bit PIO data port access', () => {
  const env = setup();
  const { io, disk, settle } = env;
  lba28(env, 3, 1, 0x20);
  settle();
  const out = new Uint8Array(512);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 128; i++) dv.setInt32(i * 4, io.in32(0x1f0), true);
  assert.deepEqual(out, disk.data.subarray(3 * 512, 4 * 512));
});

test('LBA48: READ SECTORS EXT beyond 2^28 and 2^32 on a 3 TiB disk, and WRITE SECTORS EXT', () => {
  const disk = new SparseDisk(3 * 2 ** 40);
  const env = setup(disk as unknown as MemoryDisk);
  const { io, settle } = env;
  io.out8(0x1f6, 0xa0);
  io.out8(0x1f7, 0xec);
  settle();
  const id = readWords(io, 256);
  const w = (i: number) => id[i * 2] | (id[i * 2 + 1] << 8);
  const total = (3 * 2 ** 40) / 512;
  assert.equal(w(100) + w(101) * 65536 + w(102) * 2 ** 32, total);
  assert.equal((w(60) | (w(61) << 16)) >>> 0, 0x0fffffff);
  const lba = 0x1_2345_6789; // > 2^32 too
  const put48 = (l: number, count: number, cmd: number) => {
    const hi = Math.floor(l / 2 ** 24);
    io.out8(0x1f6, 0xe0);
    io.out8(0x1f2, count >> 8);
    io.out8(0x1f3, hi & 0xff);
    io.out8(0x1f4, (hi >> 8) & 0xff);
    io.out8(0x1f5, (hi >> 16) & 0xff);
    io.out8(0x1f2, count & 0xff);
    io.out8(0x1f3, l & 0xff);
    io.out8(0x1f4, (l >>> 8) & 0xff);
    io.out8(0x1f5, (l >>> 16) & 0xff);
    io.out8(0x1f7, cmd);
  };
  put48(lba, 1, 0x24);
  settle();
  assert.equal(io.in8(0x1f7) & 0x09, 0x08);
  const sector = readWords(io, 256);
  assert.equal(new DataView(sector.buffer).getFloat64(0), lba);
  const data = patterned(512, 5);
  put48(lba + 1, 1, 0x34);
  for (let i = 0; i < 256; i++) io.out16(0x1f0, data[i * 2] | (data[i * 2 + 1] << 8));
  settle();
  assert.equal(io.in8(0x1f7), 0x50);
  assert.deepEqual(disk.sectors.get(lba + 1), data);
  // HOB read-back of the last LBA.
  io.out8(0x3f6, 0x80);
  assert.equal(io.in8(0x1f3), Math.floor((lba + 1) / 2 ** 24) & 0xff);
  io.out8(0x3f6, 0x00);
  assert.equal(io.in8(0x1f3), (lba + 1) & 0xff);
  // Out of range: IDNF.
  put48(total, 1, 0x24);
  settle();
  assert.equal(io.in8(0x1f7) & 1, 1);
  assert.equal(io.in8(0x1f1), 0x10);
});

test('bus-master DMA: READ DMA through a two-entry PRD table, then WRITE DMA EXT', () => {
  const env = setup();
  const { io, mem, disk, edges, settle } = env;
  // PRD table at 0x10000: 1024 bytes to 0x20000, 512 bytes to 0x30100 (EOT).
  mem.write32(0x10000, 0x20000);
  mem.write32(0x10004, 1024);
  mem.write32(0x10008, 0x30100);
  mem.write32(0x1000c, 0x80000000 | 512);
  io.out32(BM + 4, 0x10000);
  assert.equal(io.in32(BM + 4), 0x10000);
  io.out8(BM + 2, 0x06); // clear interrupt/error
  lba28(env, 20, 3, 0xc8);
  io.out8(BM, 0x09); // start, to memory
  settle();
  assert.deepEqual(edges, [14]);
  assert.equal(io.in8(BM + 2) & 0x07, 0x04, 'interrupt set, not active');
  assert.equal(io.in8(0x1f7), 0x50);
  io.out8(BM, 0x00);
  io.out8(BM + 2, 0x04);
  assert.equal(io.in8(BM + 2) & 0x04, 0);
  assert.deepEqual(mem.readBytes(0x20000, 1024), disk.data.subarray(20 * 512, 22 * 512));
  assert.deepEqual(mem.readBytes(0x30100, 512), disk.data.subarray(22 * 512, 23 * 512));

  // Write: start the engine first, then the command (either order works).
  const payload = patterned(2048, 77);
  mem.writeBytes(0x40000, payload);
  mem.write32(0x10000, 0x40000);
  mem.write32(0x10004, 0x80000000 | 2048);
  io.out8(BM, 0x01);
  io.out8(0x1f6, 0xe0);
  io.out8(0x1f2, 0);
  io.out8(0x1f3, 0);
  io.out8(0x1f4, 0);
  io.out8(0x1f5, 0);
  io.out8(0x1f2, 4);
  io.out8(0x1f3, 200);
  io.out8(0x1f4, 0);
  io.out8(0x1f5, 0);
  io.out8(0x1f7, 0x35);
  settle();
  assert.equal(io.in8(0x1f7), 0x50);
  assert.deepEqual(disk.data.subarray(200 * 512, 204 * 512), payload);
});

test('DMA writes invalidate the CPU code cache through PhysicalMemory.writeBytes', () => {
  const env = setup();
  const { io, mem, settle } = env;
  const touched: number[] = [];
  mem.codePages[0x20] = 1;
  mem.onCodeWrite = (p) => touched.push(p);
  mem.write32(0x10000, 0x20000);
  mem.write32(0x10004, 0x80000000 | 512);
  io.out32(BM + 4, 0x10000);
  lba28(env, 1, 1, 0xc8);
  io.out8(BM, 0x09);
  settle();
  assert.deepEqual(touched, [0x20]);
});

test('errors: unknown command aborts, read-only disk refuses writes, nIEN masks the IRQ', () => {
  const env = setup(new MemoryDisk(patterned(1 << 20), 'ro.img', true));
  const { io, edges, settle } = env;
  io.out8(0x1f7, 0xff);
  settle();
  assert.equal(io.in8(0x1f7), 0x41);
  assert.equal(io.in8(0x1f1), 0x04);
  lba28(env, 1, 1, 0x30);
  settle();
  assert.equal(io.in8(0x1f7) & 1, 1);
  edges.length = 0;
  io.out8(0x3f6, 0x02);
  lba28(env, 1, 1, 0x20);
  settle();
  assert.deepEqual(edges, []);
  assert.equal(io.in8(0x1f7), 0x58);
});

test('software reset restores the ATA signature; absent slave and empty channel read as zero', () => {
  const env = setup();
  const { io, settle } = env;
  io.out8(0x1f3, 0x55);
  io.out8(0x3f6, 0x04);
  assert.equal(io.in8(0x1f7) & 0x80, 0x80);
  io.out8(0x3f6, 0x00);
  assert.equal(io.in8(0x1f7), 0x50);
  assert.deepEqual([io.in8(0x1f2), io.in8(0x1f3), io.in8(0x1f4), io.in8(0x1f5), io.in8(0x1f1)], [1, 1, 0, 0, 1]);
  io.out8(0x1f6, 0xb0); // slave: absent
  assert.equal(io.in8(0x1f7), 0);
  io.out8(0x1f2, 0x55);
  assert.equal(io.in8(0x1f2), 0);
  assert.equal(io.in8(0x177), 0); // secondary channel empty
  io.out8(0x1f6, 0xa0);
  io.out8(0x1f7, 0xe5); // CHECK POWER MODE
  settle();
  assert.equal(io.in8(0x1f2), 0xff);
});

test('PCI identity and saveState/loadState mid-transfer', () => {
  const env = setup();
  const { io, ide, disk, settle } = env;
  assert.equal(ide.readConfig(0, 4), 0x70108086);
  assert.equal(ide.readConfig(0x09, 1), 0x80);
  assert.equal(ide.readConfig(0x0a, 2), 0x0101);
  lba28(env, 30, 2, 0x20);
  settle();
  readWords(io, 100);
  const state = structuredClone(ide.saveState());
  const env2 = setup(disk);
  env2.ide.loadState(state);
  const rest = readWords(env2.io, 156);
  assert.deepEqual(rest, disk.data.subarray(30 * 512 + 200, 31 * 512));
  env2.settle();
  assert.deepEqual(readWords(env2.io, 256), disk.data.subarray(31 * 512, 32 * 512));
});

test('a status poll after the completion time sees the result even before the timer runs', () => {
  const env = setup();
  const { io, clock, edges } = env;
  // Live time source, as the machine installs: time moves while no timer has been fired yet.
  let t = 0;
  clock.setSource(() => t);
  io.out8(0x1f6, 0xa0);
  io.out8(0x1f7, 0xec);
  assert.equal(io.in8(0x1f7) & 0x80, 0x80);
  t = IDE_COMPLETION_NS - 1;
  assert.equal(io.in8(0x3f6) & 0x80, 0x80, 'still busy before the deadline');
  t = IDE_COMPLETION_NS;
  assert.equal(io.in8(0x3f6), 0x58, 'ready at the deadline');
  assert.deepEqual(edges, [14]);
});
