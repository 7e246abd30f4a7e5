import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { IrqRouter } from '../../../src-emulator/machine/irq';
import { VirtualClock } from '../../../src-emulator/machine/clock';
import { CmosRtc } from '../../../src-emulator/devices/cmos-rtc';

const START = new Date(Date.UTC(2024, 1, 29, 23, 59, 58)); // leap day, Thursday

function setup() {
  const io = new IoBus();
  const clock = new VirtualClock();
  const irq = new IrqRouter();
  let level = false;
  let edges = 0;
  irq.addSink({
    setIrq(line, l) {
      if (line !== 8) return;
      if (l && !level) edges++;
      level = l;
    },
  });
  const rtc = new CmosRtc(io, irq.line(8), clock, START);
  const rd = (i: number) => {
    io.out8(0x70, i);
    return io.in8(0x71);
  };
  const wr = (i: number, v: number) => {
    io.out8(0x70, i);
    io.out8(0x71, v);
  };
  return { io, clock, rtc, rd, wr, level: () => level, edges: () => edges };
}

function stepTo(clock: VirtualClock, t: number, step = 1_000_000): void {
  while (clock.now() + step < t) clock.advanceTo(clock.now() + step);
  clock.advanceTo(t);
}

test('BCD time from the start date, advancing with virtual time (date rolls over)', () => {
  const { clock, rd } = setup();
  assert.deepEqual([rd(0), rd(2), rd(4), rd(6), rd(7), rd(8), rd(9), rd(0x32)], [0x58, 0x59, 0x23, 0x05, 0x29, 0x02, 0x24, 0x20]);
  clock.advanceTo(3e9);
  assert.deepEqual([rd(0), rd(2), rd(4), rd(7), rd(8)], [0x01, 0x00, 0x00, 0x01, 0x03]);
});

test('binary and 12-hour formats', () => {
  const { rd, wr } = setup();
  wr(0x0b, 0x04); // binary, 12 h
  assert.equal(rd(0), 58);
  assert.equal(rd(4), 0x80 | 11, '23:00 is 11 PM');
  wr(0x0b, 0x06);
  assert.equal(rd(4), 23);
});

test('setting the time with SET, then it runs from there', () => {
  const { clock, rd, wr, rtc } = setup();
  wr(0x0b, 0x82); // SET, BCD, 24 h
  wr(0x09, 0x99);
  wr(0x32, 0x19);
  wr(0x08, 0x12);
  wr(0x07, 0x31);
  wr(0x04, 0x23);
  wr(0x02, 0x59);
  wr(0x00, 0x59);
  clock.advanceTo(5e9);
  assert.equal(rd(0), 0x59, 'frozen while SET');
  wr(0x0b, 0x02);
  clock.advanceTo(6e9);
  assert.equal(rtc.getDate().toISOString(), '2000-01-01T00:00:00.000Z');
});

test('periodic interrupt at the register A rate; register C reports and clears it', () => {
  const { clock, rd, wr, level, edges } = setup();
  wr(0x0a, 0x26); // 1024 Hz
  wr(0x0b, 0x42); // PIE
  let count = 0;
  for (let t = 0; t < 1e9; t += 100_000) {
    clock.advanceTo(t);
    if (level()) {
      assert.equal(rd(0x0c) & 0xc0, 0xc0);
      count++;
    }
  }
  assert.ok(count >= 1020 && count <= 1024, `got ${count}`);
  assert.equal(edges(), count);
  wr(0x0a, 0x2f); // 2 Hz
  const before = edges();
  stepTo(clock, 2e9, 100_000);
  rd(0x0c);
  assert.ok(edges() - before >= 1 && edges() - before <= 3);
});

test('update-ended and alarm interrupts', () => {
  const { clock, rd, wr, level } = setup();
  wr(0x01, 0x05); // alarm at xx:xx:05 of any hour/minute
  wr(0x03, 0xc0);
  wr(0x05, 0xc0);
  wr(0x0b, 0x32); // UIE + AIE
  stepTo(clock, 2.5e9);
  assert.equal(level(), true);
  const c = rd(0x0c);
  assert.equal(c & 0x90, 0x90, 'UF + IRQF');
  assert.equal(c & 0x20, 0, 'no alarm yet');
  // 23:59:58 + 7 s = 00:00:05
  let sawAlarm = false;
  for (let t = 2.5e9; t < 8e9; t += 1e8) {
    clock.advanceTo(t);
    if (level() && rd(0x0c) & 0x20) sawAlarm = true;
  }
  assert.equal(sawAlarm, true);
});

test('NVRAM: PC layout, checksum, and plain byte storage', () => {
  const { rd, wr, rtc } = setup();
  rtc.initPcNvram({ ramBytes: 256 * 1024 * 1024, bootOrder: ['cdrom', 'disk', 'floppy'], floppies: 1, cpus: 1 });
  assert.equal(rd(0x15) | (rd(0x16) << 8), 640);
  assert.equal(rd(0x17) | (rd(0x18) << 8), 0xffff, 'extended memory is capped at 64 MiB - 1 KiB');
  assert.equal(rd(0x34) | (rd(0x35) << 8), (256 - 16) * 16);
  assert.equal(rd(0x3d), 0x23);
  assert.equal(rd(0x38) >> 4, 1);
  assert.equal(rd(0x10), 0x40);
  assert.equal(rd(0x14) & 1, 1);
  let sum = 0;
  for (let i = 0x10; i <= 0x2d; i++) sum += rd(i);
  assert.equal((rd(0x2e) << 8) | rd(0x2f), sum);
  wr(0x50, 0xa5);
  assert.equal(rd(0x50), 0xa5);
  assert.equal(rd(0x0d), 0x80);
});

test('UIP is set just before the second boundary', () => {
  const { clock, rd } = setup();
  clock.advanceTo(0.5e9);
  assert.equal(rd(0x0a) & 0x80, 0);
  clock.advanceTo(1e9 - 100_000);
  assert.equal(rd(0x0a) & 0x80, 0x80);
});
