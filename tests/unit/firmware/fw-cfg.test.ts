import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { PhysicalMemory } from '../../../src-emulator/machine/memory';
import { FwCfg, FwCfgKey } from '../../../src-emulator/devices/fw-cfg';

function setup() {
  const io = new IoBus();
  const mem = new PhysicalMemory(2 * 1024 * 1024);
  const fw = new FwCfg(io, mem);
  return { io, mem, fw };
}

const readItem = (io: IoBus, key: number, n: number) => {
  io.out16(0x510, key);
  return Uint8Array.from({ length: n }, () => io.in8(0x511));
};
const bswap = (v: number) => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;

test('signature, ID with the DMA bit, and the DMA port signature', () => {
  const { io } = setup();
  assert.equal(new TextDecoder().decode(readItem(io, FwCfgKey.SIGNATURE, 4)), 'QEMU');
  assert.deepEqual([...readItem(io, FwCfgKey.ID, 4)], [3, 0, 0, 0]);
  const hi = io.in32(0x514) >>> 0;
  const lo = io.in32(0x518) >>> 0;
  assert.equal(bswap(hi), 0x51454d55);
  assert.equal(bswap(lo), 0x20434647);
});

test('integers are little-endian; reads past the end return 0', () => {
  const { io, fw } = setup();
  fw.addU64(FwCfgKey.RAM_SIZE, 0x12345678);
  assert.deepEqual([...readItem(io, FwCfgKey.RAM_SIZE, 10)], [0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0, 0, 0]);
});

test('file directory is big-endian, sorted by name, and selects the file', () => {
  const { io, fw } = setup();
  fw.addFile('etc/zzz', Uint8Array.of(9));
  fw.addFile('bootorder', new TextEncoder().encode('/x\n'));
  const dir = readItem(io, FwCfgKey.FILE_DIR, 4 + 128);
  const dv = new DataView(dir.buffer);
  assert.equal(dv.getUint32(0, false), 2);
  const name0 = new TextDecoder().decode(dir.subarray(12, 12 + 56)).replace(/\0+$/, '');
  assert.equal(name0, 'bootorder');
  assert.equal(dv.getUint32(4, false), 3);
  const key = dv.getUint16(8, false);
  assert.equal(new TextDecoder().decode(readItem(io, key, 3)), '/x\n');
});

test('DMA: select + read into guest memory, skip, and completion clears control', () => {
  const { io, mem, fw } = setup();
  const key = fw.addFile(
    'etc/blob',
    Uint8Array.from({ length: 100 }, (_, i) => i),
  );
  const ctl = 0x1000;
  const dst = 0x2000;
  const writeCtl = (control: number, length: number, addr: number) => {
    mem.write32(ctl, bswap(control));
    mem.write32(ctl + 4, bswap(length));
    mem.write32(ctl + 8, 0);
    mem.write32(ctl + 12, bswap(addr));
  };
  writeCtl((key << 16) | 0x08 | 0x02, 10, dst);
  io.out32(0x514, 0);
  io.out32(0x518, bswap(ctl));
  assert.deepEqual([...mem.readBytes(dst, 10)], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(mem.read32(ctl), 0);
  writeCtl(0x04, 20, 0);
  io.out32(0x518, bswap(ctl));
  writeCtl(0x02, 4, dst);
  io.out32(0x518, bswap(ctl));
  assert.deepEqual([...mem.readBytes(dst, 4)], [30, 31, 32, 33]);
  assert.equal(io.in8(0x511), 34, 'traditional reads continue at the DMA offset');
});

test('save/load keeps the cursor', () => {
  const { io, fw, mem } = setup();
  fw.addFile('a', Uint8Array.of(1, 2, 3));
  readItem(io, FwCfgKey.FILE_FIRST, 1);
  const s = fw.saveState();
  const other = new FwCfg(new IoBus(), mem);
  other.addFile('a', Uint8Array.of(1, 2, 3));
  other.loadState(s);
  assert.deepEqual(other.saveState(), s);
});
