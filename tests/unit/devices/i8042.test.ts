import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { IrqRouter } from '../../../src-emulator/machine/irq';
import { I8042, set1ToSet2, translateSet2ToSet1 } from '../../../src-emulator/devices/i8042';

function setup() {
  const io = new IoBus();
  const irq = new IrqRouter();
  const levels = [false, false];
  irq.addSink({ setIrq: (line, l) => (line === 1 ? (levels[0] = l) : line === 12 ? (levels[1] = l) : 0) });
  const kbc = new I8042(io, irq.line(1), irq.line(12));
  let resets = 0;
  const a20: boolean[] = [];
  kbc.onReset = () => resets++;
  kbc.onA20 = (e) => a20.push(e);
  /** Reads every byte waiting in the output buffer. */
  const drain = () => {
    const out: number[] = [];
    while (io.in8(0x64) & 1) out.push(io.in8(0x60));
    return out;
  };
  const cmd = (c: number, data?: number) => {
    io.out8(0x64, c);
    if (data !== undefined) io.out8(0x60, data);
  };
  return { io, kbc, levels, drain, cmd, resets: () => resets, a20 };
}

test('controller: self test, command byte read/write, port tests', () => {
  const { io, cmd, drain } = setup();
  cmd(0xaa);
  assert.deepEqual(drain(), [0x55]);
  assert.equal(io.in8(0x64) & 0x04, 0x04, 'system flag');
  cmd(0x20);
  assert.deepEqual(drain(), [0x65]);
  cmd(0x60, 0x47);
  cmd(0x20);
  assert.deepEqual(drain(), [0x47]);
  cmd(0xab);
  cmd(0xa9);
  assert.deepEqual(drain(), [0x00, 0x00]);
});

test('keyboard: reset, identify (translated and not), echo, scancode set query', () => {
  const { io, cmd, drain } = setup();
  io.out8(0x60, 0xff);
  assert.deepEqual(drain(), [0xfa, 0xaa]);
  io.out8(0x60, 0xf2);
  assert.deepEqual(drain(), [0xfa, 0xab, 0x41]);
  cmd(0x60, 0x05); // translation off
  io.out8(0x60, 0xf2);
  assert.deepEqual(drain(), [0xfa, 0xab, 0x83]);
  io.out8(0x60, 0xee);
  assert.deepEqual(drain(), [0xee]);
  io.out8(0x60, 0xf0);
  io.out8(0x60, 0x00);
  assert.deepEqual(drain(), [0xfa, 0xfa, 0x02]);
  io.out8(0x60, 0xed);
  io.out8(0x60, 0x07);
  assert.deepEqual(drain(), [0xfa, 0xfa]);
});

test('scancodes: set 1 with translation; set 2 without; set 1 selected explicitly', () => {
  const { io, kbc, cmd, drain, levels } = setup();
  // 'a' press/release, then right ctrl (E0 1D / E0 9D)
  const keys = [0x1e, 0x9e, 0xe0, 0x1d, 0xe0, 0x9d];
  kbc.sendScancodes(keys);
  assert.equal(levels[0], true, 'IRQ 1');
  assert.deepEqual(drain(), keys);
  assert.equal(levels[0], false);
  cmd(0x60, 0x05); // translation off: the guest sees set 2
  kbc.sendScancodes(keys);
  assert.deepEqual(drain(), [0x1c, 0xf0, 0x1c, 0xe0, 0x14, 0xe0, 0xf0, 0x14]);
  io.out8(0x60, 0xf0);
  io.out8(0x60, 0x01);
  drain();
  kbc.sendScancodes(keys);
  assert.deepEqual(drain(), keys);
});

test('set 1 <-> set 2 conversion round-trips through the 8042 translation (incl. Pause and F7)', () => {
  const seq = [0x01, 0x81, 0x41, 0xc1, 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5, 0xe0, 0x48, 0xe0, 0xc8];
  const s2 = set1ToSet2(seq);
  assert.deepEqual(s2.slice(0, 6), [0x76, 0xf0, 0x76, 0x83, 0xf0, 0x83]);
  assert.deepEqual(translateSet2ToSet1(s2), seq);
  for (let c = 1; c < 0x59; c++) assert.deepEqual(translateSet2ToSet1(set1ToSet2([c])), [c], `code ${c.toString(16)}`);
});

test('disabled keyboard (0xAD) holds bytes until re-enabled; F5 stops scanning', () => {
  const { io, kbc, cmd, drain } = setup();
  cmd(0xad);
  kbc.sendScancodes([0x1e]);
  assert.deepEqual(drain(), []);
  cmd(0xae);
  assert.deepEqual(drain(), [0x1e]);
  io.out8(0x60, 0xf5);
  assert.deepEqual(drain(), [0xfa]);
  kbc.sendScancodes([0x1e]);
  assert.deepEqual(drain(), []);
  io.out8(0x60, 0xf4);
  kbc.sendScancodes([0x1f]);
  assert.deepEqual(drain(), [0xfa, 0x1f]);
});

test('mouse: enable, packets with sign bits on IRQ 12, AUX status bit', () => {
  const { io, kbc, cmd, drain, levels } = setup();
  cmd(0xa8);
  cmd(0x20);
  assert.equal(drain()[0] & 0x20, 0, 'aux clock enabled');
  cmd(0x60, 0x47); // aux interrupt on
  cmd(0xd4, 0xff);
  assert.deepEqual(drain(), [0xfa, 0xaa, 0x00]);
  cmd(0xd4, 0xf4);
  assert.deepEqual(drain(), [0xfa]);
  kbc.mouseMove(5, 3, 1); // right 5, down 3 (PS/2 y is up: -3)
  assert.equal(levels[1], true);
  assert.equal(io.in8(0x64) & 0x21, 0x21);
  assert.deepEqual(drain(), [0x08 | 0x01 | 0x20, 5, 0xfd]);
  assert.equal(levels[1], false);
  kbc.mouseMove(-300, 0, 0);
  const bytes = drain();
  assert.equal(bytes.length, 6, 'split into two packets');
  assert.equal(bytes[0] & 0x10, 0x10);
});

test('IntelliMouse: the 200/100/80 knock switches to ID 3 with a wheel byte', () => {
  const { kbc, cmd, drain } = setup();
  cmd(0xa8);
  for (const rate of [200, 100, 80]) {
    cmd(0xd4, 0xf3);
    cmd(0xd4, rate);
  }
  cmd(0xd4, 0xf2);
  assert.deepEqual(drain().slice(-2), [0xfa, 0x03]);
  cmd(0xd4, 0xf4);
  drain();
  kbc.mouseMove(0, 0, 0, 1);
  assert.deepEqual(drain(), [0x08, 0, 0, 1]);
  cmd(0xd4, 0xe9);
  assert.deepEqual(drain(), [0xfa, 0x20, 2, 80]);
});

test('output port: A20 and reset; 0xFE pulses reset; controller-written bytes (D2/D3)', () => {
  const { io, kbc, cmd, drain, resets, a20, levels } = setup();
  assert.equal(kbc.a20, true);
  cmd(0xd1, 0xdd); // A20 off, reset line high
  assert.equal(kbc.a20, false);
  assert.deepEqual(a20, [false]);
  cmd(0xd0);
  assert.equal(drain()[0] & 0x03, 0x01);
  cmd(0xd1, 0xdf);
  assert.deepEqual(a20, [false, true]);
  assert.equal(resets(), 0);
  cmd(0xfe);
  assert.equal(resets(), 1);
  cmd(0xd1, 0x02); // bit 0 low: reset
  assert.equal(resets(), 2);
  cmd(0xd2, 0x99);
  assert.deepEqual(drain(), [0x99]);
  // D3 (the AUX loopback Linux probes with) answers even while the aux port is disabled, as aux data.
  cmd(0x60, 0x67); // aux disabled, aux interrupt on
  cmd(0xd3, 0x5a);
  assert.equal(io.in8(0x64) & 0x21, 0x21);
  assert.equal(levels[1], true, 'IRQ 12');
  assert.deepEqual(drain(), [0x5a]);
});

test('state round-trip', () => {
  const a = setup();
  a.kbc.sendScancodes([0x10, 0x11]);
  const b = setup();
  b.kbc.loadState(structuredClone(a.kbc.saveState()));
  assert.deepEqual(b.drain(), [0x10, 0x11]);
});

test('with a clock, device bytes are paced: the next one arrives 0.5 ms after the guest took the last', async () => {
  const { VirtualClock } = await import('../../../src-emulator/machine/clock');
  const io = new IoBus();
  const irq = new IrqRouter();
  let edges = 0;
  let level = false;
  irq.addSink({
    setIrq: (line, l) => {
      if (line !== 1) return;
      if (l && !level) edges++;
      level = l;
    },
  });
  const clock = new VirtualClock();
  const kbc = new I8042(io, irq.line(1), irq.line(12), clock);
  kbc.sendScancodes([0x2a, 0x1e, 0x9e, 0xaa]);
  assert.equal(io.in8(0x60), 0x2a);
  assert.equal(io.in8(0x64) & 1, 0, 'next byte still on the wire');
  io.out8(0x64, 0x20); // controller replies are not held back
  assert.equal(io.in8(0x60), 0x65);
  clock.advanceTo(499_000);
  assert.equal(io.in8(0x64) & 1, 0);
  clock.advanceTo(500_000);
  assert.equal(io.in8(0x64) & 1, 1);
  assert.equal(io.in8(0x60), 0x1e);
  for (let t = 1_000_000; t <= 2_000_000; t += 500_000) clock.advanceTo(t);
  assert.equal(io.in8(0x60), 0x9e);
  clock.advanceTo(3_000_000);
  assert.equal(io.in8(0x60), 0xaa);
  assert.equal(edges, 5, 'one IRQ 1 edge per byte (the command reply included)');
});
