import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PhysicalMemory } from '../../../src-emulator/machine/memory';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { VirtualClock } from '../../../src-emulator/machine/clock';
import { IrqRouter } from '../../../src-emulator/machine/irq';
import { Dma8237 } from '../../../src-emulator/devices/dma8237';
import { FloppyController, floppyGeometry } from '../../../src-emulator/devices/floppy-controller';
import { MemoryDisk, patterned } from './ide-test-disks';

function setup(readOnly = false) {
  const mem = new PhysicalMemory(4 << 20);
  const io = new IoBus();
  const clock = new VirtualClock();
  const irq = new IrqRouter();
  const edges: number[] = [];
  irq.addSink({ setIrq: (line, level) => level && edges.push(line) });
  const dma = new Dma8237({ io, mem });
  const fdc = new FloppyController({ io, clock, irq: irq.line(6), dma });
  const disk = new MemoryDisk(patterned(1_474_560, 11), 'a.img', readOnly);
  fdc.insertDisk(0, disk);
  const settle = () => clock.advanceTo(clock.now() + 100_000);
  return { mem, io, clock, edges, dma, fdc, disk, settle };
}

type Env = ReturnType<typeof setup>;

function send(io: IoBus, bytes: number[]) {
  for (const b of bytes) {
    assert.equal(io.in8(0x3f4) & 0xc0, 0x80, 'RQM, host-to-controller');
    io.out8(0x3f5, b);
  }
}

function results(io: IoBus): number[] {
  const out: number[] = [];
  while ((io.in8(0x3f4) & 0xc0) === 0xc0) out.push(io.in8(0x3f5));
  return out;
}

function senseInt(io: IoBus): number[] {
  send(io, [0x08]);
  return results(io);
}

function resetFdc(env: Env) {
  const { io, settle } = env;
  io.out8(0x3f2, 0x00);
  io.out8(0x3f2, 0x1c); // motor A, DMA/IRQ, not reset, drive 0
  settle();
  return [0, 1, 2, 3].map(() => senseInt(io));
}

function dmaProgram(io: IoBus, addr: number, bytes: number, toMemory: boolean) {
  io.out8(0x0a, 6);
  io.out8(0x0c, 0);
  io.out8(0x0b, toMemory ? 0x46 : 0x4a);
  io.out8(0x04, addr & 0xff);
  io.out8(0x04, (addr >> 8) & 0xff);
  io.out8(0x81, addr >>> 16);
  io.out8(0x05, (bytes - 1) & 0xff);
  io.out8(0x05, (bytes - 1) >> 8);
  io.out8(0x0a, 2);
}

test('geometry from image size; odd sizes are refused with the file name', () => {
  assert.deepEqual(floppyGeometry(1_474_560), { cylinders: 80, heads: 2, sectorsPerTrack: 18, driveType: 4 });
  assert.equal(floppyGeometry(737_280).sectorsPerTrack, 9);
  assert.equal(floppyGeometry(2_949_120).driveType, 5);
  assert.throws(() => floppyGeometry(3_000_000, 'big.img'), /big\.img: size 3000000/);
});

test('reset through DOR raises IRQ 6 and queues four SENSE INTERRUPT results', () => {
  const env = setup();
  const st = resetFdc(env);
  assert.deepEqual(env.edges, [6]);
  assert.deepEqual(st, [
    [0xc0, 0],
    [0xc1, 0],
    [0xc2, 0],
    [0xc3, 0],
  ]);
  assert.deepEqual(senseInt(env.io), [0x80], 'nothing pending: invalid');
  send(env.io, [0x10]);
  assert.deepEqual(results(env.io), [0x90], 'VERSION: 82077AA');
  send(env.io, [0x1f]);
  assert.deepEqual(results(env.io), [0x80], 'invalid command');
});

test('SPECIFY, RECALIBRATE and SEEK interrupt, SENSE INTERRUPT reports the cylinder; change line clears on step', () => {
  const env = setup();
  const { io, edges, settle } = env;
  resetFdc(env);
  assert.equal(io.in8(0x3f7) & 0x80, 0x80, 'disk change line set after insertion');
  send(io, [0x03, 0xdf, 0x02]);
  edges.length = 0;
  send(io, [0x07, 0x00]);
  assert.equal(io.in8(0x3f4) & 0x10, 0x10, 'busy while seeking');
  settle();
  assert.deepEqual(edges, [6]);
  assert.deepEqual(senseInt(io), [0x20, 0]);
  send(io, [0x0f, 0x04, 33]);
  settle();
  assert.deepEqual(senseInt(io), [0x24, 33]);
  assert.equal(io.in8(0x3f7) & 0x80, 0, 'cleared by the step');
  env.fdc.insertDisk(0, new MemoryDisk(new Uint8Array(1_474_560), 'b.img'));
  assert.equal(io.in8(0x3f7) & 0x80, 0x80);
  send(io, [0x04, 0x00]);
  const [st3] = results(io);
  assert.equal(st3 & 0x20, 0x20);
});

test('READ DATA by DMA channel 2: multi-track across heads, result C/H/R', () => {
  const env = setup();
  const { io, mem, disk, edges, settle } = env;
  resetFdc(env);
  edges.length = 0;
  // Cylinder 3, head 0, sectors 17-18 then head 1 sector 1 (MT): 3 sectors.
  dmaProgram(io, 0x21000, 3 * 512, true);
  send(io, [0xe6, 0x00, 3, 0, 17, 2, 18, 0x1b, 0xff]);
  settle();
  assert.deepEqual(edges, [6]);
  const r = results(io);
  assert.deepEqual(r, [0x04, 0, 0, 3, 1, 2, 2]);
  const lba = (3 * 2 + 0) * 18 + 16;
  assert.deepEqual(mem.readBytes(0x21000, 3 * 512), disk.data.subarray(lba * 512, (lba + 3) * 512));
  assert.equal(io.in8(0x08) & 0x04, 0x04, 'DMA terminal count');
});

test("SeaBIOS's boot-sector load: a 1-sector read, then 4 sectors to 0000:7E00 with DMA status never read", () => {
  // SeaBIOS first reads the boot sector (R=1, EOT=1), then the demo floppy's INT 13h AH=02h reads
  // C0/H0/R2 x4 as READ DATA with EOT = R+count-1 and MT/MFM/SK. SeaBIOS never reads the 8237's
  // status register, so the TC bit left by the first command is still set when the second runs:
  // the controller must end on this transfer's terminal count, not on that stale bit.
  const env = setup();
  const { io, mem, disk, settle } = env;
  resetFdc(env);
  send(io, [0x03, 0xaf, 0x02]);
  send(io, [0x07, 0x00]);
  settle();
  senseInt(io);
  dmaProgram(io, 0x7c00, 512, true);
  send(io, [0xe6, 0x00, 0, 0, 1, 2, 1, 0x1b, 0xff]);
  settle();
  assert.deepEqual(results(io), [0x04, 0, 0, 0, 1, 1, 2], 'ends on head 1 (MT past EOT)');
  assert.deepEqual(mem.readBytes(0x7c00, 512), disk.data.subarray(0, 512));
  dmaProgram(io, 0x7e00, 4 * 512, true);
  send(io, [0xe6, 0x00, 0, 0, 2, 2, 5, 0x1b, 0xff]);
  settle();
  assert.deepEqual(results(io), [0x04, 0, 0, 0, 1, 1, 2], 'four sectors, then head 1 sector 1');
  assert.deepEqual(mem.readBytes(0x7e00, 4 * 512), disk.data.subarray(512, 5 * 512), 'all 2048 bytes from the image');
  assert.equal(env.dma.isUnmasked(2), false, 'channel masked at terminal count');
});

test('auto-initialise DMA: READ DATA still ends at terminal count (the channel stays unmasked)', () => {
  const env = setup();
  const { io, mem, disk, settle } = env;
  resetFdc(env);
  dmaProgram(io, 0x30000, 2 * 512, true);
  io.out8(0x0b, 0x56); // single, auto-init, write to memory, channel 2
  send(io, [0x46, 0x00, 1, 0, 3, 2, 18, 0x1b, 0xff]);
  settle();
  assert.deepEqual(results(io), [0x00, 0, 0, 1, 0, 5, 2], 'two sectors: next is R=5');
  const lba = (1 * 2 + 0) * 18 + 2;
  assert.deepEqual(mem.readBytes(0x30000, 1024), disk.data.subarray(lba * 512, (lba + 2) * 512));
  assert.equal(env.dma.isUnmasked(2), true);
});

test('WRITE DATA by DMA, READ ID, and write protection', () => {
  const env = setup();
  const { io, mem, disk, settle } = env;
  resetFdc(env);
  const payload = patterned(1024, 42);
  mem.writeBytes(0x30000, payload);
  dmaProgram(io, 0x30000, 1024, false);
  send(io, [0xc5, 0x04, 10, 1, 5, 2, 18, 0x1b, 0xff]);
  settle();
  const r = results(io);
  assert.equal(r[0] & 0xc0, 0);
  assert.deepEqual(r.slice(3), [10, 1, 7, 2]);
  const lba = (10 * 2 + 1) * 18 + 4;
  assert.deepEqual(disk.data.subarray(lba * 512, (lba + 2) * 512), payload);
  send(io, [0x4a, 0x00]);
  settle();
  const id = results(io);
  assert.equal(id.length, 7);
  assert.equal(id[0] & 0xc0, 0);

  const ro = setup(true);
  resetFdc(ro);
  dmaProgram(ro.io, 0x30000, 512, false);
  send(ro.io, [0xc5, 0x00, 0, 0, 1, 2, 18, 0x1b, 0xff]);
  ro.settle();
  const rr = results(ro.io);
  assert.equal(rr[0] & 0xc0, 0x40);
  assert.equal(rr[1] & 0x02, 0x02, 'not writable');
});

test('no disk: READ DATA fails with missing address mark; DIR shows change', () => {
  const env = setup();
  const { io, fdc, settle } = env;
  fdc.insertDisk(0, null);
  resetFdc(env);
  assert.equal(io.in8(0x3f7) & 0x80, 0x80);
  dmaProgram(io, 0x30000, 512, true);
  send(io, [0xe6, 0x00, 0, 0, 1, 2, 18, 0x1b, 0xff]);
  settle();
  const r = results(io);
  assert.equal(r[0] & 0xc0, 0x40);
  assert.equal(r[1] & 0x01, 0x01);
});

test('saveState/loadState in the result phase', () => {
  const env = setup();
  const { io } = env;
  resetFdc(env);
  dmaProgram(io, 0x21000, 512, true);
  send(io, [0xe6, 0x00, 0, 0, 1, 2, 18, 0x1b, 0xff]);
  env.settle();
  const first = io.in8(0x3f5);
  const state = structuredClone(env.fdc.saveState());
  const other = setup();
  other.fdc.loadState(state);
  assert.deepEqual(results(other.io), [0, 0, 0, 0, 2, 2].slice(0, 6));
  assert.equal(first, 0);
});

test('FORMAT TRACK takes C/H/R/N by DMA and fills the sectors', () => {
  const env = setup();
  const { io, mem, disk, settle } = env;
  resetFdc(env);
  const ids: number[] = [];
  for (let r = 1; r <= 18; r++) ids.push(5, 1, r, 2);
  mem.writeBytes(0x40000, new Uint8Array(ids));
  dmaProgram(io, 0x40000, ids.length, false);
  send(io, [0x4d, 0x04, 2, 18, 0x54, 0xe6]);
  settle();
  const r = results(io);
  assert.equal(r.length, 7);
  assert.equal(r[0] & 0xc0, 0);
  const start = (5 * 2 + 1) * 18 * 512;
  assert.ok(disk.data.subarray(start, start + 18 * 512).every((b) => b === 0xe6));
  assert.ok(!disk.data.subarray(start - 512, start).every((b) => b === 0xe6), 'the previous track is untouched');
  assert.ok(!disk.data.subarray(start + 18 * 512, start + 19 * 512).every((b) => b === 0xe6), 'the next track is untouched');
});
