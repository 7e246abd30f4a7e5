import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src-emulator/machine/machine';
import { defaultMachineConfig } from '../../../src-emulator/machine/config';

/** A 64 KiB BIOS image whose reset vector (F000:FFF0) holds `code`; the rest is HLT. */
function biosWith(code: number[], body: number[] = []): Uint8Array {
  const img = new Uint8Array(0x10000).fill(0xf4);
  img.set(body, 0);
  img.set(code, 0xfff0);
  return img;
}

function collectSerial(m: Machine): () => string {
  let out = '';
  m.on('serial', (port, bytes) => {
    if (port === 0) out += Buffer.from(bytes).toString('latin1');
  });
  return () => out;
}

test('reset vector program writes to COM1 and exits through isa-debug-exit', () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true });
  // mov dx,0x3f8; mov al,'H'; out dx,al; mov al,'i'; out dx,al; mov al,0x21; out 0xf4,al; hlt
  m.loadBios(biosWith([0xba, 0xf8, 0x03, 0xb0, 0x48, 0xee, 0xb0, 0x69, 0xee, 0xb0, 0x21, 0xe6, 0xf4, 0xf4]));
  const serial = collectSerial(m);
  const reasons: string[] = [];
  m.on('shutdown', (r) => reasons.push(r));
  for (let i = 0; i < 10 && m.state !== 'off'; i++) m.runSlice(50);
  assert.equal(serial(), 'Hi');
  assert.equal(m.exitCode, (0x21 << 1) | 1);
  assert.equal(m.state, 'off');
  assert.match(reasons[0], /debug-exit/);
});
