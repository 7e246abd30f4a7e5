import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PhysicalMemory } from '../../../src-emulator/machine/memory';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { Dma8237 } from '../../../src-emulator/devices/dma8237';

function setup() {
  const mem = new PhysicalMemory(4 << 20);
  const io = new IoBus();
  const dma = new Dma8237({ io, mem });
  return { mem, io, dma };
}

/** Programs an 8-bit channel (0-3) the way BIOSes and DOS do. */
function program8(io: IoBus, ch: number, addr: number, count: number, mode: number) {
  const pagePort = [0x87, 0x83, 0x81, 0x82][ch];
  io.out8(0x0a, 4 | ch); // mask
  io.out8(0x0c, 0); // flip-flop
  io.out8(0x0b, mode | ch);
  io.out8(ch * 2, addr & 0xff);
  io.out8(ch * 2, (addr >> 8) & 0xff);
  io.out8(pagePort, addr >>> 16);
  io.out8(ch * 2 + 1, count & 0xff);
  io.out8(ch * 2 + 1, count >> 8);
  io.out8(0x0a, ch); // unmask
}

test('channel 2 device-to-memory: address, page, count, terminal count, auto-mask', () => {
  const { mem, io, dma } = setup();
  program8(io, 2, 0x12340, 999, 0x44); // single, increment, write to memory
  assert.equal(dma.isUnmasked(2), true);
  assert.equal(dma.remaining(2), 1000);
  const data = new Uint8Array(600).map((_, i) => i & 0xff);
  assert.equal(dma.writeToMemory(2, data), 600);
  assert.deepEqual(mem.readBytes(0x12340, 600), data);
  assert.equal(dma.remaining(2), 400);
  assert.equal(dma.writeToMemory(2, data), 400, 'stops at terminal count');
  assert.equal(dma.terminalCount(2), true);
  assert.equal(dma.isUnmasked(2), false, 'masked after TC without auto-init');
  // Current address and count read back through the ports.
  io.out8(0x0c, 0);
  const lo = io.in8(0x04);
  const hi = io.in8(0x04);
  assert.equal((hi << 8) | lo, (0x2340 + 1000) & 0xffff);
  assert.equal(io.in8(0x08) & 0x04, 0x04, 'TC in status');
  assert.equal(io.in8(0x08) & 0x04, 0, 'status read clears TC');
});

test('memory-to-device, auto-initialise, address wrap inside the 64 KiB page', () => {
  const { mem, io, dma } = setup();
  mem.writeBytes(0x2fff0, new Uint8Array(16).fill(0xaa));
  mem.writeBytes(0x20000, new Uint8Array(16).fill(0xbb));
  mem.writeBytes(0x30000, new Uint8Array(16).fill(0xcc));
  program8(io, 1, 0x2fff0, 31, 0x58); // auto-init, read from memory
  const got = dma.readFromMemory(1, 32);
  assert.deepEqual([...got.subarray(0, 16)], new Array(16).fill(0xaa));
  assert.deepEqual([...got.subarray(16)], new Array(16).fill(0xbb), 'wraps to the start of the page, not into the next');
  assert.equal(dma.terminalCount(1), true);
  assert.equal(dma.isUnmasked(1), true, 'auto-init keeps the channel armed');
  assert.equal(dma.remaining(1), 32);
  assert.deepEqual([...dma.readFromMemory(1, 4)], [0xaa, 0xaa, 0xaa, 0xaa]);
});

test('16-bit channel 5 addresses words; masked channels move nothing; master clear', () => {
  const { mem, io, dma } = setup();
  io.out8(0xd4, 4 | 1);
  io.out8(0xd8, 0);
  io.out8(0xd6, 0x44 | 1);
  io.out8(0xc4, 0x00); // word address 0x8000 -> byte 0x10000 within page 0x02 -> 0x30000
  io.out8(0xc4, 0x80);
  io.out8(0x8b, 0x02);
  io.out8(0xc6, 3); // 4 words
  io.out8(0xc6, 0);
  assert.equal(dma.writeToMemory(5, new Uint8Array(8).fill(1)), 0, 'masked');
  io.out8(0xd4, 1);
  assert.equal(dma.remaining(5), 8);
  assert.equal(dma.writeToMemory(5, new Uint8Array(10).fill(7)), 8);
  assert.deepEqual([...mem.readBytes(0x30000, 9)], [7, 7, 7, 7, 7, 7, 7, 7, 0]);
  io.out8(0x0d, 0);
  assert.equal(io.in8(0x0f) & 0x0f, 0x0f, 'master clear masks all');
  // Page register storage for unused ports.
  io.out8(0x84, 0x5a);
  assert.equal(io.in8(0x84), 0x5a);
  const s = dma.saveState();
  const other = setup();
  other.dma.loadState(structuredClone(s));
  assert.deepEqual(other.dma.saveState(), s);
});

test('the TC pulse belongs to one transfer; the status bit stays until status is read', () => {
  const { io, dma } = setup();
  program8(io, 2, 0x7c00, 511, 0x44);
  assert.equal(dma.writeToMemory(2, new Uint8Array(512)), 512);
  assert.equal(dma.endedOnTerminalCount(2), true);
  // Reprogrammed without reading status (as SeaBIOS does): the status bit is stale, the pulse is not.
  program8(io, 2, 0x7e00, 2047, 0x44);
  assert.equal(dma.writeToMemory(2, new Uint8Array(512)), 512);
  assert.equal(dma.terminalCount(2), true, 'status bit still set from the first transfer');
  assert.equal(dma.endedOnTerminalCount(2), false, 'this transfer did not reach TC');
  assert.equal(dma.writeToMemory(2, new Uint8Array(1536)), 1536);
  assert.equal(dma.endedOnTerminalCount(2), true);
  // Auto-initialise: TC reloads and leaves the channel unmasked, and the pulse still shows it.
  program8(io, 1, 0x1000, 99, 0x54);
  assert.equal(dma.writeToMemory(1, new Uint8Array(100)), 100);
  assert.equal(dma.endedOnTerminalCount(1), true);
  assert.equal(dma.isUnmasked(1), true);
  assert.equal(dma.remaining(1), 100);
});
