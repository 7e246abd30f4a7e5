import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { IrqRouter } from '../../../src-emulator/machine/irq';
import { VirtualClock } from '../../../src-emulator/machine/clock';
import { Pit8254, PIT_HZ } from '../../../src-emulator/devices/pit8254';

function setup() {
  const io = new IoBus();
  const clock = new VirtualClock();
  const irq = new IrqRouter();
  let edges = 0;
  let level = false;
  irq.addSink({
    setIrq(line, l) {
      if (line !== 0) return;
      if (l && !level) edges++;
      level = l;
    },
  });
  const pit = new Pit8254(io, irq.line(0), clock);
  return { io, clock, pit, edges: () => edges, level: () => level };
}

const ticks = (n: number) => (n * 1e9) / PIT_HZ;

/** Advances in small steps, as the machine's run loop does (it never overshoots a deadline by much). */
function stepTo(clock: VirtualClock, t: number, step = 100_000): void {
  while (clock.now() + step < t) clock.advanceTo(clock.now() + step);
  clock.advanceTo(t);
}

test('mode 2 rate generator: periodic IRQ 0 at count/1.193182 MHz', () => {
  const { io, clock, edges } = setup();
  io.out8(0x43, 0x34); // ch0, lo/hi, mode 2
  io.out8(0x40, 1193 & 0xff);
  io.out8(0x40, 1193 >> 8); // ~1 kHz
  clock.advanceTo(ticks(1193) - 10);
  assert.equal(edges(), 0);
  clock.advanceTo(ticks(1193) + 10);
  assert.equal(edges(), 1);
  stepTo(clock, ticks(1193 * 10) + 10);
  assert.equal(edges(), 10);
});

test('mode 3 square wave with count 0 means 65536 (18.2 Hz)', () => {
  const { io, clock, edges } = setup();
  io.out8(0x43, 0x36);
  io.out8(0x40, 0);
  io.out8(0x40, 0);
  stepTo(clock, 1e9);
  assert.equal(edges(), Math.floor(PIT_HZ / 65536));
});

test('mode 0: IRQ 0 rises once at terminal count and stays high until reprogrammed', () => {
  const { io, clock, edges, level } = setup();
  io.out8(0x43, 0x30);
  io.out8(0x40, 100);
  io.out8(0x40, 0);
  clock.advanceTo(ticks(99));
  assert.equal(level(), false);
  clock.advanceTo(ticks(101));
  assert.equal(level(), true);
  clock.advanceTo(ticks(1000));
  assert.equal(edges(), 1);
  io.out8(0x43, 0x30);
  assert.equal(level(), false);
});

test('counter reads: live count, latch command, lo/hi toggling', () => {
  const { io, clock } = setup();
  io.out8(0x43, 0x34);
  io.out8(0x40, 0x00);
  io.out8(0x40, 0x10); // 4096
  clock.advanceTo(ticks(96) + 1);
  io.out8(0x43, 0x00); // latch ch0
  clock.advanceTo(ticks(500) + 1);
  const lo = io.in8(0x40);
  const hi = io.in8(0x40);
  assert.equal(lo | (hi << 8), 4096 - 96, 'latched value is frozen');
  const lo2 = io.in8(0x40);
  const hi2 = io.in8(0x40);
  assert.equal(lo2 | (hi2 << 8), 4096 - 500);
});

test('read-back command latches status and count', () => {
  const { io, clock } = setup();
  io.out8(0x43, 0xb6); // ch2, lo/hi, mode 3
  io.out8(0x42, 0x00);
  io.out8(0x42, 0x01);
  io.out8(0x61, 0x01); // gate on
  clock.advanceTo(ticks(10) + 1);
  io.out8(0x43, 0xc8); // read-back ch2, count + status
  const status = io.in8(0x42);
  assert.equal(status & 0x3f, 0x36);
  assert.equal(status & 0x40, 0, 'count loaded');
  const count = io.in8(0x42) | (io.in8(0x42) << 8);
  assert.equal(count, 256 - 20, 'mode 3 counts down by two');
});

test('port 0x61: gate 2, OUT2 at terminal count (mode 0) and the refresh toggle', () => {
  const { io, clock } = setup();
  io.out8(0x61, 0x01);
  io.out8(0x43, 0xb0); // ch2 mode 0
  io.out8(0x42, 50);
  io.out8(0x42, 0);
  assert.equal(io.in8(0x61) & 0x20, 0);
  clock.advanceTo(ticks(51));
  assert.equal(io.in8(0x61) & 0x20, 0x20);
  assert.equal(io.in8(0x61) & 0x0f, 0x01);
  const seen = new Set<number>();
  for (let t = 0; t < 8; t++) {
    clock.advanceTo(ticks(51) + t * 8000);
    seen.add(io.in8(0x61) & 0x10);
  }
  assert.deepEqual([...seen].sort(), [0, 0x10]);
});

test('gate low stops channel 2 in mode 0', () => {
  const { io, clock } = setup();
  io.out8(0x43, 0xb0);
  io.out8(0x42, 0xff);
  io.out8(0x42, 0xff);
  clock.advanceTo(ticks(1000));
  io.out8(0x43, 0x80);
  assert.equal(io.in8(0x42) | (io.in8(0x42) << 8), 0xffff, 'gate is low after reset');
  io.out8(0x61, 1);
  clock.advanceTo(ticks(1100) + 1);
  io.out8(0x43, 0x80);
  assert.equal(io.in8(0x42) | (io.in8(0x42) << 8), 0xffff - 100);
});

test('BCD counting', () => {
  const { io, clock } = setup();
  io.out8(0x43, 0x35); // ch0 lo/hi mode 2 BCD
  io.out8(0x40, 0x00);
  io.out8(0x40, 0x10); // 1000 decimal
  clock.advanceTo(ticks(1) + 1);
  io.out8(0x43, 0x00);
  assert.equal(io.in8(0x40) | (io.in8(0x40) << 8), 0x0999);
});

test('state round-trip keeps counting phase', () => {
  const a = setup();
  a.io.out8(0x43, 0x34);
  a.io.out8(0x40, 0xe8);
  a.io.out8(0x40, 0x03);
  a.clock.advanceTo(ticks(300) + 1);
  const s = structuredClone(a.pit.saveState());
  const b = setup();
  b.clock.advanceTo(ticks(300) + 1);
  b.pit.loadState(s);
  b.io.out8(0x43, 0x00);
  assert.equal(b.io.in8(0x40) | (b.io.in8(0x40) << 8), 1000 - 300);
});
