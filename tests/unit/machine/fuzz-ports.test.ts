import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src-emulator/machine/machine';
import { defaultMachineConfig } from '../../../src-emulator/machine/config';

/** xorshift32: a fixed, reproducible stream of "guest" values. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** The chipset's ports and MMIO windows; whatever a guest writes there must not throw in the host. */
const PORTS = [
  0x20, 0x21, 0xa0, 0xa1, 0x40, 0x41, 0x42, 0x43, 0x61, 0x60, 0x64, 0x70, 0x71, 0x92, 0xb2, 0xb3,
  0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff, 0x4d0, 0x4d1, 0xcf8, 0xcfc, 0xcfd, 0xcfe, 0xcff,
  0xafe0, 0xafe2, 0xb000, 0xb002, 0xb004, 0xb008,
];

test('random guest writes to every chipset port and APIC register never throw', () => {
  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true }), { noFirmware: true });
  const next = rng(12345);
  let now = 0;
  for (let i = 0; i < 200_000; i++) {
    const r = next();
    const port = PORTS[r % PORTS.length];
    const v = next();
    switch ((r >>> 8) % 9) {
      case 0:
        m.io.out16(port, v);
        break;
      case 1:
        m.io.out32(port, v);
        break;
      case 2:
        m.io.in8(port);
        break;
      case 3:
        m.io.in32(port);
        break;
      case 4:
        // Random PCI config writes, BAR sizing included (not 0xCF9: a reset is a legal outcome, tested elsewhere).
        m.io.out32(0xcf8, (0x80000000 | (v & 0x00ffffff)) >>> 0);
        m.io.out32(0xcfc, next());
        break;
      case 5:
        m.mem.write32(0xfee00000 + (v & 0x3f0), next());
        m.mem.read32(0xfee00000 + (next() & 0x3f0));
        break;
      case 6:
        m.mem.write32(0xfec00000 + (v & 0x10), next());
        break;
      case 7:
        now += v % 100_000;
        m.clock.advanceTo(now);
        if (m.cpu.halted === false && (v & 7) === 0) m.lapic.acknowledge();
        break;
      default:
        m.io.out8(port, v);
    }
  }
  // The machine is still usable: the PIC answers, RAM works.
  m.mem.write32(0x1000, 0x12345678);
  assert.equal(m.mem.read32(0x1000), 0x12345678);
  assert.ok(m.clock.now() > 0);
});
