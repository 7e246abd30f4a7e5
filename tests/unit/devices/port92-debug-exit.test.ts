import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { Port92 } from '../../../src-emulator/devices/port92';
import { DebugExit } from '../../../src-emulator/devices/debug-exit';

test('port 0x92: A20 bit reads back and reports changes; bit 0 rising edge resets', () => {
  const io = new IoBus();
  const p = new Port92(io);
  const a20: boolean[] = [];
  let resets = 0;
  p.onA20 = (e) => a20.push(e);
  p.onReset = () => resets++;
  io.out8(0x92, 0x02);
  assert.equal(io.in8(0x92), 0x02);
  assert.equal(p.a20, true);
  io.out8(0x92, 0x03);
  assert.equal(resets, 1);
  io.out8(0x92, 0x00);
  assert.deepEqual(a20, [true, false]);
  assert.equal(p.a20, false);
  p.loadState(structuredClone({ value: 2 }));
  assert.equal(io.in8(0x92), 2);
});

test('isa-debug-exit: a write of v ends with (v << 1) | 1', () => {
  const io = new IoBus();
  const d = new DebugExit(io);
  const codes: number[] = [];
  d.onExit = (c) => codes.push(c);
  io.out8(0xf4, 0);
  io.out8(0xf4, 0x10);
  io.out8(0xf5, 0x10);
  assert.deepEqual(codes, [1, 0x21]);
});
