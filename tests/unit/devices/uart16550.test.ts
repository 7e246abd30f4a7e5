import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { IrqRouter } from '../../../src-emulator/machine/irq';
import { VirtualClock } from '../../../src-emulator/machine/clock';
import { Uart16550 } from '../../../src-emulator/devices/uart16550';

const B = 0x3f8;

function setup() {
  const io = new IoBus();
  const clock = new VirtualClock();
  const irq = new IrqRouter();
  let level = false;
  irq.addSink({ setIrq: (line, l) => line === 4 && (level = l) });
  const uart = new Uart16550(io, B, irq.sharedLine(4), clock, 0);
  const sent: number[] = [];
  uart.onTransmit = (b) => sent.push(b);
  return { io, clock, uart, sent, irq, level: () => level };
}

test('register reset values and the scratch register', () => {
  const { io } = setup();
  assert.equal(io.in8(B + 2), 0x01, 'IIR: no interrupt');
  assert.equal(io.in8(B + 5), 0x60, 'LSR: THRE + TEMT');
  assert.equal(io.in8(B + 6) & 0xb0, 0xb0, 'CTS, DSR, DCD');
  io.out8(B + 7, 0x5a);
  assert.equal(io.in8(B + 7), 0x5a);
});

test('divisor latch through DLAB; THR writes leave through onTransmit', () => {
  const { io, sent } = setup();
  io.out8(B + 3, 0x80);
  io.out8(B + 0, 0x01);
  io.out8(B + 1, 0x00);
  assert.equal(io.in8(B + 0), 0x01);
  io.out8(B + 3, 0x03);
  io.out8(B + 0, 0x41);
  io.out8(B + 0, 0x42);
  assert.deepEqual(sent, [0x41, 0x42]);
  assert.equal(io.in8(B + 3), 0x03);
});

test('receive with FIFO: data ready, trigger level RDA interrupt, character timeout', () => {
  const { io, uart, clock, level } = setup();
  io.out8(B + 2, 0xc7); // FIFO on, clear, trigger 14
  io.out8(B + 1, 0x01); // RDA
  io.out8(B + 4, 0x08); // OUT2
  uart.receive([1, 2, 3]);
  assert.equal(io.in8(B + 5) & 1, 1);
  assert.equal(level(), false, 'below the trigger level');
  clock.advanceTo(1e7);
  assert.equal(level(), true, 'character timeout');
  assert.equal(io.in8(B + 2), 0xcc);
  assert.deepEqual([io.in8(B), io.in8(B), io.in8(B)], [1, 2, 3]);
  assert.equal(io.in8(B + 5) & 1, 0);
  assert.equal(level(), false);
  uart.receive(new Array(20).fill(7));
  assert.equal(level(), true, 'at trigger level 14');
  assert.equal(io.in8(B + 2), 0xc4);
  let n = 0;
  while (io.in8(B + 5) & 1) {
    io.in8(B);
    n++;
  }
  assert.equal(n, 20, 'the backlog refills the FIFO: nothing is lost');
});

test('THRE interrupt: raised when enabled with THR empty, cleared by reading IIR, again after a write', () => {
  const { io, level } = setup();
  io.out8(B + 4, 0x08);
  io.out8(B + 1, 0x02);
  assert.equal(level(), true);
  assert.equal(io.in8(B + 2), 0x02);
  assert.equal(level(), false);
  io.out8(B, 0x55);
  assert.equal(level(), true);
  io.out8(B + 1, 0x00);
  assert.equal(level(), false);
});

test('interrupt priority: line status over received data; LSR read clears errors', () => {
  const { io, level } = setup();
  io.out8(B + 4, 0x18); // loopback + OUT2
  io.out8(B + 1, 0x05);
  io.out8(B, 1);
  io.out8(B, 2); // overrun without FIFO
  assert.equal(io.in8(B + 2), 0x06);
  assert.equal(io.in8(B + 5) & 0x03, 0x03);
  assert.equal(io.in8(B + 2), 0x04);
  assert.equal(level(), false, 'no IRQ on the bus in loopback');
});

test('loopback: bytes come back, modem outputs appear on the inputs with delta bits', () => {
  const { io, sent } = setup();
  io.out8(B + 2, 0x01);
  io.out8(B + 4, 0x10);
  io.in8(B + 6);
  io.out8(B, 0x99);
  assert.deepEqual(sent, []);
  assert.equal(io.in8(B), 0x99);
  io.out8(B + 4, 0x1f);
  const msr = io.in8(B + 6);
  assert.equal(msr & 0xf0, 0xf0);
  assert.equal(msr & 0x0b, 0x0b);
  assert.equal(io.in8(B + 6) & 0x0f, 0, 'deltas clear on read');
});

test('modem status interrupt', () => {
  const { io, level } = setup();
  io.out8(B + 1, 0x08);
  io.out8(B + 4, 0x18);
  io.in8(B + 6);
  io.out8(B + 4, 0x1a); // RTS on in loopback -> CTS change
  assert.equal(io.in8(B + 2) & 0x0f, 0x00);
  io.in8(B + 6);
  assert.equal(io.in8(B + 2) & 0x0f, 0x01);
  void level;
});

test('COM1 and COM3 share IRQ 4 (wire-OR)', () => {
  const io = new IoBus();
  const clock = new VirtualClock();
  const irq = new IrqRouter();
  const a = new Uart16550(io, 0x3f8, irq.sharedLine(4), clock, 0);
  const b = new Uart16550(io, 0x3e8, irq.sharedLine(4), clock, 2);
  for (const base of [0x3f8, 0x3e8]) {
    io.out8(base + 4, 0x08);
    io.out8(base + 1, 0x01);
  }
  a.receive([1]);
  b.receive([2]);
  io.in8(0x3f8);
  assert.equal(irq.level(4), true, 'COM3 still asserts');
  io.in8(0x3e8);
  assert.equal(irq.level(4), false);
});

test('state round-trip keeps FIFO contents and registers', () => {
  const a = setup();
  a.io.out8(B + 2, 0x01);
  a.io.out8(B + 3, 0x03);
  a.uart.receive([9, 8]);
  const b = setup();
  b.uart.loadState(structuredClone(a.uart.saveState()));
  assert.equal(b.io.in8(B + 3), 0x03);
  assert.deepEqual([b.io.in8(B), b.io.in8(B)], [9, 8]);
});
