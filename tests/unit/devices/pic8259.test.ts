import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { Pic8259Pair } from '../../../src-emulator/devices/pic8259';

/** The PC BIOS initialisation: vectors 0x08 and 0x70, cascade on IR2, 8086 mode. */
function setup(): { io: IoBus; pic: Pic8259Pair; intr: () => boolean } {
  const io = new IoBus();
  const pic = new Pic8259Pair(io);
  let intr = false;
  pic.onIntr = (l) => (intr = l);
  io.out8(0x20, 0x11);
  io.out8(0x21, 0x08);
  io.out8(0x21, 0x04);
  io.out8(0x21, 0x01);
  io.out8(0xa0, 0x11);
  io.out8(0xa1, 0x70);
  io.out8(0xa1, 0x02);
  io.out8(0xa1, 0x01);
  io.out8(0x21, 0x00);
  io.out8(0xa1, 0x00);
  return { io, pic, intr: () => intr };
}

test('ICW sequence sets vector bases; an edge on IRQ 1 gives vector 9 and sets ISR', () => {
  const { io, pic, intr } = setup();
  assert.equal(intr(), false);
  pic.setIrq(1, true);
  pic.setIrq(1, false);
  assert.equal(intr(), true);
  assert.equal(pic.acknowledge(), 0x09);
  assert.equal(intr(), false);
  io.out8(0x20, 0x0b); // OCW3: read ISR
  assert.equal(io.in8(0x20), 0x02);
  io.out8(0x20, 0x20); // non-specific EOI
  assert.equal(io.in8(0x20), 0x00);
});

test('priorities: IRQ 0 beats IRQ 3; a lower request waits for EOI of a higher one', () => {
  const { io, pic, intr } = setup();
  pic.setIrq(3, true);
  pic.setIrq(0, true);
  assert.equal(pic.acknowledge(), 0x08);
  // IRQ 3 is lower priority than in-service IRQ 0: nothing delivered.
  assert.equal(intr(), false);
  io.out8(0x20, 0x20);
  assert.equal(intr(), true);
  assert.equal(pic.acknowledge(), 0x0b);
});

test('slave IRQs go through IR2 of the master and need EOI on both', () => {
  const { io, pic, intr } = setup();
  pic.setIrq(12, true);
  assert.equal(intr(), true);
  assert.equal(pic.acknowledge(), 0x74);
  io.out8(0x20, 0x0b);
  assert.equal(io.in8(0x20), 0x04);
  io.out8(0xa0, 0x0b);
  assert.equal(io.in8(0xa0), 0x10);
  io.out8(0xa0, 0x20);
  io.out8(0x20, 0x20);
  assert.equal(io.in8(0x20), 0);
});

test('IMR masks a line; unmasking lets the latched edge through', () => {
  const { io, pic, intr } = setup();
  io.out8(0x21, 0x10);
  assert.equal(io.in8(0x21), 0x10);
  pic.setIrq(4, true);
  assert.equal(intr(), false);
  io.out8(0x20, 0x0a); // read IRR
  assert.equal(io.in8(0x20) & 0x10, 0x10);
  io.out8(0x21, 0x00);
  assert.equal(intr(), true);
  assert.equal(pic.acknowledge(), 0x0c);
});

test('spurious interrupt: INTA with nothing pending returns IR7 without setting ISR', () => {
  const { io, pic } = setup();
  assert.equal(pic.acknowledge(), 0x0f);
  io.out8(0x20, 0x0b);
  assert.equal(io.in8(0x20), 0);
});

test('edge-triggered lines need a new rising edge; level lines (ELCR) stay requested', () => {
  const { io, pic, intr } = setup();
  pic.setIrq(5, true);
  pic.acknowledge();
  io.out8(0x20, 0x20);
  assert.equal(intr(), false, 'still high, but edge mode: no new request');
  pic.setElcr(0, 0x20);
  pic.setIrq(5, false);
  pic.setIrq(5, true);
  assert.equal(pic.acknowledge(), 0x0d);
  io.out8(0x20, 0x20);
  assert.equal(intr(), true, 'level mode: still asserted after EOI');
  pic.setIrq(5, false);
  assert.equal(intr(), false);
  assert.equal(pic.getElcr(0), 0x20);
  pic.setElcr(0, 0xff);
  assert.equal(pic.getElcr(0), 0xf8, 'IRQ 0-2 cannot be level-triggered');
});

test('specific EOI, rotation and auto-EOI', () => {
  const { io, pic } = setup();
  pic.setIrq(3, true);
  pic.acknowledge();
  io.out8(0x20, 0x63); // specific EOI for IR3
  io.out8(0x20, 0x0b);
  assert.equal(io.in8(0x20), 0);
  // Set priority so that IR4 is lowest: IR5 now beats IR0.
  io.out8(0x20, 0xc4);
  pic.setIrq(0, true);
  pic.setIrq(5, true);
  assert.equal(pic.acknowledge(), 0x0d);
  // Auto-EOI: re-init master with ICW4 AEOI.
  io.out8(0x20, 0x11);
  io.out8(0x21, 0x20);
  io.out8(0x21, 0x04);
  io.out8(0x21, 0x03);
  pic.setIrq(6, false);
  pic.setIrq(6, true);
  assert.equal(pic.acknowledge(), 0x26);
  io.out8(0x20, 0x0b);
  assert.equal(io.in8(0x20), 0, 'auto-EOI leaves ISR clear');
});

test('poll mode returns the pending IRQ with bit 7 set', () => {
  const { io, pic } = setup();
  pic.setIrq(6, true);
  io.out8(0x20, 0x0c);
  assert.equal(io.in8(0x20), 0x86);
  io.out8(0x20, 0x0c);
  assert.equal(io.in8(0x20), 0x00);
});

test('state round-trips through saveState/loadState', () => {
  const a = setup();
  a.pic.setIrq(3, true);
  const s = a.pic.saveState();
  const b = setup();
  b.pic.loadState(structuredClone(s));
  assert.equal(b.intr(), true);
  assert.equal(b.pic.acknowledge(), 0x0b);
});
