import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IrqRouter } from '../../../src-emulator/machine/irq';

test('shared lines wire-OR their sources, whatever the number of sources on other lines', () => {
  const irq = new IrqRouter();
  const seen: [number, boolean][] = [];
  irq.addSink({ setIrq: (line, level) => seen.push([line, level]) });
  // Many sources elsewhere must not make two sources of line 11 collide.
  for (let i = 0; i < 40; i++) irq.sharedLine(i % 16);
  const a = irq.sharedLine(11);
  const b = irq.sharedLine(11);
  a.raise();
  b.raise();
  a.lower();
  assert.equal(irq.level(11), true);
  b.lower();
  assert.equal(irq.level(11), false);
  assert.deepEqual(seen, [[11, true], [11, false]]);
  // A pulse on a line another source holds high is no edge.
  a.raise();
  b.pulse();
  assert.equal(irq.level(11), true);
});

test('plain lines set the level directly', () => {
  const irq = new IrqRouter();
  const l = irq.line(3);
  l.raise();
  assert.equal(irq.level(3), true);
  l.pulse();
  assert.equal(irq.level(3), false);
});
