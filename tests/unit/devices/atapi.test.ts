import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PhysicalMemory } from '../../../src-emulator/machine/memory';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { VirtualClock } from '../../../src-emulator/machine/clock';
import { IrqRouter } from '../../../src-emulator/machine/irq';
import { PciBus } from '../../../src-emulator/devices/pci-bus';
import { IdeController, IDE_COMPLETION_NS } from '../../../src-emulator/devices/ide-controller';
import { AtapiDrive, lbaToMsf } from '../../../src-emulator/devices/atapi-drive';
import { MemoryDisk, patterned } from './ide-test-disks';

const BM = 0xc000;
const BLOCKS = 300;

function setup(withMedia = true) {
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
  const iso = new MemoryDisk(patterned(BLOCKS * 2048, 3), 'test.iso', true);
  const cd = new AtapiDrive(withMedia ? iso : null);
  ide.attach(1, 0, cd);
  const settle = () => clock.advanceTo(clock.now() + IDE_COMPLETION_NS);
  return { mem, io, clock, edges, ide, cd, iso, settle };
}

type Env = ReturnType<typeof setup>;
const P = 0x170;

/** Issues a PACKET command and collects the PIO data phase; returns data and the final status/error. */
function packet(env: Env, cdb: number[], byteLimit = 0xfffe, dma = false) {
  const { io, settle } = env;
  io.out8(P + 6, 0xa0);
  io.out8(P + 1, dma ? 1 : 0);
  io.out8(P + 4, byteLimit & 0xff);
  io.out8(P + 5, byteLimit >> 8);
  io.out8(P + 7, 0xa0);
  assert.equal(io.in8(P + 7) & 0x08, 0x08, 'DRQ for the packet');
  assert.equal(io.in8(P + 2) & 3, 1, 'CoD for the packet');
  const c = [...cdb, ...new Array(12).fill(0)].slice(0, 12);
  for (let i = 0; i < 12; i += 2) io.out16(P, c[i] | (c[i + 1] << 8));
  const chunks: number[] = [];
  const data: number[] = [];
  for (let guard = 0; guard < 10000; guard++) {
    settle();
    const st = io.in8(P + 7);
    if (st & 0x80) continue;
    if (!(st & 0x08)) break;
    const n = io.in8(P + 4) | (io.in8(P + 5) << 8);
    assert.equal(io.in8(P + 2) & 3, 2, 'I/O set, CoD clear during data');
    chunks.push(n);
    for (let i = 0; i < n; i += 2) {
      const w = io.in16(P);
      data.push(w & 0xff, w >> 8);
    }
  }
  return { data: new Uint8Array(data), chunks, status: io.in8(P + 7), error: io.in8(P + 1), reason: io.in8(P + 2) };
}

function requestSense(env: Env): [number, number] {
  const r = packet(env, [0x03, 0, 0, 0, 18]);
  return [r.data[2] & 0x0f, r.data[12]];
}

test('signature, IDENTIFY DEVICE aborts, IDENTIFY PACKET DEVICE', () => {
  const env = setup();
  const { io, settle } = env;
  io.out8(P + 6, 0xa0);
  assert.deepEqual([io.in8(P + 4), io.in8(P + 5)], [0x14, 0xeb]);
  io.out8(P + 7, 0xec);
  settle();
  assert.equal(io.in8(P + 7) & 1, 1);
  assert.deepEqual([io.in8(P + 4), io.in8(P + 5)], [0x14, 0xeb]);
  io.out8(P + 7, 0xa1);
  settle();
  assert.equal(io.in8(P + 7) & 0x08, 0x08);
  const id = new Uint8Array(512);
  for (let i = 0; i < 256; i++) {
    const w = io.in16(P);
    id[i * 2] = w & 0xff;
    id[i * 2 + 1] = w >> 8;
  }
  assert.equal(id[0] | (id[1] << 8), 0x85c0);
  assert.equal(id.reduce((a, b) => a + b, 0) & 0xff, 0);
});

test('INQUIRY, TEST UNIT READY, READ CAPACITY', () => {
  const env = setup();
  const inq = packet(env, [0x12, 0, 0, 0, 36]);
  assert.equal(inq.data.length, 36);
  assert.equal(inq.data[0], 0x05);
  assert.equal(inq.data[1], 0x80);
  assert.equal(Buffer.from(inq.data.subarray(8, 16)).toString().trim(), 'BOXWOOD');
  assert.equal(inq.reason & 3, 3, 'I/O+CoD at the end');
  assert.equal(inq.status & 0x01, 0);
  assert.equal(packet(env, [0x00]).status & 1, 0);
  const cap = packet(env, [0x25]);
  const dv = new DataView(cap.data.buffer);
  assert.equal(dv.getUint32(0), BLOCKS - 1);
  assert.equal(dv.getUint32(4), 2048);
});

test('READ(10) by PIO honours the byte-count limit; READ(12) too', () => {
  const env = setup();
  const r = packet(env, [0x28, 0, 0, 0, 0, 10, 0, 0, 5], 4096);
  assert.deepEqual(r.chunks, [4096, 4096, 2048]);
  assert.deepEqual(r.data, env.iso.data.subarray(10 * 2048, 15 * 2048));
  assert.equal(r.status, 0x50);
  const r12 = packet(env, [0xa8, 0, 0, 0, 0, 0, 0, 0, 0, 1], 0xfffe);
  assert.deepEqual(r12.data, env.iso.data.subarray(0, 2048));
  const bad = packet(env, [0x28, 0, 0, 0, 1, 0x2c, 0, 0, 1]); // LBA 300: past the end
  assert.equal(bad.status & 1, 1);
  assert.equal(bad.error >> 4, 5);
  assert.deepEqual(requestSense(env), [5, 0x21]);
});

test('READ(10) by bus-master DMA', () => {
  const env = setup();
  const { io, mem, edges, settle } = env;
  mem.write32(0x8000, 0x100000);
  mem.write32(0x8004, 0x80000000 | 3 * 2048);
  io.out32(BM + 8 + 4, 0x8000);
  io.out8(P + 6, 0xa0);
  io.out8(P + 1, 1);
  io.out8(P + 7, 0xa0);
  const cdb = [0x28, 0, 0, 0, 0, 7, 0, 0, 3, 0, 0, 0];
  for (let i = 0; i < 12; i += 2) io.out16(P, cdb[i] | (cdb[i + 1] << 8));
  io.out8(BM + 8, 0x09);
  settle();
  assert.deepEqual(edges, [15]);
  assert.equal(io.in8(BM + 8 + 2) & 0x05, 0x04);
  assert.equal(io.in8(P + 7), 0x50);
  assert.equal(io.in8(P + 2) & 3, 3);
  assert.deepEqual(mem.readBytes(0x100000, 3 * 2048), env.iso.data.subarray(7 * 2048, 10 * 2048));
});

test('READ TOC formats 0 (LBA and MSF), 1 and 2', () => {
  const env = setup();
  const t0 = packet(env, [0x43, 0, 0, 0, 0, 0, 0, 0, 100]);
  assert.equal(t0.data.length, 20);
  assert.deepEqual([...t0.data.subarray(0, 4)], [0, 18, 1, 1]);
  assert.equal(t0.data[6], 1);
  assert.equal(t0.data[5], 0x14);
  assert.equal(t0.data[14], 0xaa);
  assert.equal(new DataView(t0.data.buffer).getUint32(16), BLOCKS);
  const msf = packet(env, [0x43, 2, 0, 0, 0, 0, 0, 0, 100]);
  assert.deepEqual([...msf.data.subarray(8, 12)], [0, 0, 2, 0]);
  assert.deepEqual([...msf.data.subarray(16, 20)], [0, ...lbaToMsf(BLOCKS)]);
  assert.deepEqual(lbaToMsf(BLOCKS), [0, 6, 0]);
  const t1 = packet(env, [0x43, 0, 1, 0, 0, 0, 0, 0, 12]);
  assert.deepEqual([...t1.data.subarray(0, 4)], [0, 10, 1, 1]);
  const t2 = packet(env, [0x43, 2, 2, 0, 0, 0, 0, 0, 0xff]);
  assert.equal(t2.data.length, 48);
  assert.equal(t2.data[4 + 2 * 11 + 3], 0xa2);
  assert.deepEqual([...t2.data.subarray(4 + 2 * 11 + 8, 4 + 2 * 11 + 11)], lbaToMsf(BLOCKS));
  // Allocation length truncates.
  assert.equal(packet(env, [0x43, 0, 0, 0, 0, 0, 0, 0, 4]).data.length, 4);
});

test('MODE SENSE(10) page 2A, GET CONFIGURATION profile', () => {
  const env = setup();
  const ms = packet(env, [0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 64]);
  assert.equal(ms.data[8], 0x2a);
  assert.equal(ms.data[9], 20);
  assert.equal((ms.data[0] << 8) | ms.data[1], ms.data.length - 2);
  const gc = packet(env, [0x46, 0, 0, 0, 0, 0, 0, 0, 64]);
  assert.equal((gc.data[6] << 8) | gc.data[7], 0x0008);
  assert.equal(packet(env, [0xff]).error >> 4, 5);
  assert.deepEqual(requestSense(env), [5, 0x20]);
});

test('media change: eject, no-media NOT READY, insert gives UNIT ATTENTION once and a GESN event', () => {
  const env = setup();
  let ejected = 0;
  env.cd.onEject = () => ejected++;
  // Locked tray refuses eject.
  packet(env, [0x1e, 0, 0, 0, 1]);
  assert.equal(packet(env, [0x1b, 0, 0, 0, 2]).status & 1, 1);
  packet(env, [0x1e, 0, 0, 0, 0]);
  assert.equal(packet(env, [0x1b, 0, 0, 0, 2]).status & 1, 0);
  assert.equal(ejected, 1);
  assert.equal(env.cd.hasMedia, false);
  const ev = packet(env, [0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8]);
  assert.equal(ev.data[2], 4);
  assert.equal(ev.data[4], 3, 'media removal event');
  assert.equal(ev.data[5] & 2, 0);
  const tur = packet(env, [0x00]);
  assert.equal(tur.status & 1, 1);
  assert.deepEqual(requestSense(env), [2, 0x3a]);
  assert.equal(packet(env, [0x28, 0, 0, 0, 0, 0, 0, 0, 1]).error >> 4, 2);

  env.cd.insertMedia(new MemoryDisk(patterned(50 * 2048, 9), 'other.iso', true));
  const ev2 = packet(env, [0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8]);
  assert.equal(ev2.data[4], 2, 'new media event');
  assert.equal(ev2.data[5] & 2, 2, 'media present');
  assert.equal(packet(env, [0x00]).error >> 4, 6, 'unit attention');
  assert.equal(packet(env, [0x00]).status & 1, 0, 'only once');
  const cap = packet(env, [0x25]);
  assert.equal(new DataView(cap.data.buffer).getUint32(0), 49);
});

test('empty drive at power-on', () => {
  const env = setup(false);
  assert.equal(packet(env, [0x00]).error >> 4, 2);
  assert.equal(packet(env, [0x25]).error >> 4, 2);
  const ms = packet(env, [0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 64]);
  assert.equal(ms.data[2], 0x70);
});

test('non-read commands by DMA: INQUIRY reply lands in memory, allocation length respected', () => {
  const env = setup();
  const { io, mem, settle } = env;
  mem.writeBytes(0x200000, new Uint8Array(64).fill(0xee));
  mem.write32(0x8000, 0x200000);
  mem.write32(0x8004, 0x80000000 | 64);
  io.out32(BM + 8 + 4, 0x8000);
  io.out8(BM + 8, 0x09);
  io.out8(P + 6, 0xa0);
  io.out8(P + 1, 1);
  io.out8(P + 7, 0xa0);
  const cdb = [0x12, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 12; i += 2) io.out16(P, cdb[i] | (cdb[i + 1] << 8));
  settle();
  assert.equal(io.in8(P + 7), 0x50);
  const got = mem.readBytes(0x200000, 24);
  assert.equal(got[0], 0x05);
  assert.equal(Buffer.from(got.subarray(8, 15)).toString(), 'BOXWOOD');
  assert.deepEqual([...got.subarray(20, 24)], [0xee, 0xee, 0xee, 0xee], 'only 20 bytes sent');
});

test('READ CD returns the user data of data sectors and refuses raw/audio requests', () => {
  const env = setup();
  const r = packet(env, [0xbe, 0, 0, 0, 0, 20, 0, 0, 2, 0x10]);
  assert.equal(r.status, 0x50);
  assert.deepEqual(r.data, env.iso.data.subarray(20 * 2048, 22 * 2048));
  const raw = packet(env, [0xbe, 0, 0, 0, 0, 20, 0, 0, 1, 0xf8]);
  assert.equal(raw.error >> 4, 5);
  assert.deepEqual(requestSense(env), [5, 0x24]);
  const audio = packet(env, [0xbe, 1 << 2, 0, 0, 0, 20, 0, 0, 1, 0x10]);
  assert.equal(audio.error >> 4, 5);
});
