import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBzImage, layoutLinux, KernelImageError, CAN_USE_HEAP, TYPE_OF_LOADER } from '../../../src-emulator/firmware/bzimage';

function synthetic(
  opts: { version?: number; loadFlags?: number; setupSects?: number; kernelBytes?: number; initrdMax?: number; cmdlineSize?: number } = {},
): Uint8Array {
  const setupSects = opts.setupSects ?? 4;
  const img = new Uint8Array((setupSects + 1) * 512 + (opts.kernelBytes ?? 4096));
  const dv = new DataView(img.buffer);
  img[0x1f1] = setupSects;
  dv.setUint16(0x1fe, 0xaa55, true);
  dv.setUint32(0x202, 0x53726448, true);
  dv.setUint16(0x206, opts.version ?? 0x020f, true);
  img[0x211] = opts.loadFlags ?? 0x01;
  dv.setUint32(0x214, 0x100000, true);
  dv.setUint32(0x22c, opts.initrdMax ?? 0x7fffffff, true);
  dv.setUint32(0x238, opts.cmdlineSize ?? 2047, true);
  img.fill(0x90, (setupSects + 1) * 512);
  return img;
}

test('parses a synthetic 2.15 setup header', () => {
  const h = parseBzImage(synthetic({ setupSects: 27, kernelBytes: 10000 }), 'k');
  assert.equal(h.version, 0x020f);
  assert.equal(h.setupBytes, 28 * 512);
  assert.equal(h.kernelBytes, 10000);
  assert.equal(h.initrdAddrMax, 0x7fffffff);
  assert.equal(h.cmdlineSize, 2047);
});

test('setup_sects of 0 means 4', () => {
  const img = synthetic({ setupSects: 4 });
  img[0x1f1] = 0;
  assert.equal(parseBzImage(img).setupBytes, 5 * 512);
});

test('rejects what is not a bzImage with a message naming the file', () => {
  assert.throws(
    () => parseBzImage(new Uint8Array(100), '/x/initrd.gz'),
    (e: Error) => e instanceof KernelImageError && /\/x\/initrd\.gz: not a Linux bzImage/.test(e.message),
  );
  const elf = new Uint8Array(0x1000);
  elf.set([0x7f, 0x45, 0x4c, 0x46]);
  assert.throws(() => parseBzImage(elf, 'vmlinux'), /vmlinux: is an ELF file/);
  assert.throws(() => parseBzImage(synthetic({ loadFlags: 0 }), 'zimage'), /zimage: is a zImage/);
  assert.throws(() => parseBzImage(synthetic({ version: 0x0201 }), 'old'), /old: boot protocol 2\.01 is too old/);
  const trunc = synthetic({ setupSects: 4 }).subarray(0, 5 * 512);
  assert.throws(() => parseBzImage(trunc, 't'), /t: truncated/);
});

test('layout: setup header patched, initrd page-aligned below initrd_addr_max and the usable top', () => {
  const img = synthetic({ initrdMax: 0x37ffffff });
  const initrd = new Uint8Array(123456);
  const top = 0x07ff0000;
  const l = layoutLinux(img, 'k', top, 'console=ttyS0', initrd);
  const dv = new DataView(l.setup.buffer);
  assert.equal(l.setup[0x210], TYPE_OF_LOADER);
  assert.ok(l.setup[0x211] & CAN_USE_HEAP);
  assert.equal(dv.getUint32(0x228, true), l.cmdlineAddr);
  assert.equal(dv.getUint32(0x218, true), l.initrdAddr);
  assert.equal(dv.getUint32(0x21c, true), 123456);
  assert.equal(l.initrdAddr % 4096, 0);
  assert.ok(l.initrdAddr + initrd.length <= top);
  assert.ok(l.initrdAddr + initrd.length > top - 4096 * 2);
  assert.equal(dv.getUint16(0x224, true), l.cmdlineAddr - l.realBase - 0x200);
  assert.equal(l.realSeg, l.realBase >> 4);
  assert.equal(new TextDecoder().decode(l.cmdline), 'console=ttyS0\0');
  // initrd_addr_max lower than the RAM top wins.
  const low = layoutLinux(synthetic({ initrdMax: 0x00ffffff }), 'k', top, '', initrd);
  assert.ok(low.initrdAddr + initrd.length <= 0x01000000);
});

test('layout: too-long command line and an initrd that does not fit are clear errors', () => {
  assert.throws(
    () => layoutLinux(synthetic({ cmdlineSize: 8 }), 'k', 0x1000000, 'console=ttyS0', null),
    /k: command line of 13 bytes exceeds/,
  );
  assert.throws(
    () => layoutLinux(synthetic(), 'k', 0x200000, '', new Uint8Array(0x200000), 'big.img'),
    /big\.img: initrd of 2097152 bytes does not fit/,
  );
});

const cache = process.env.BOXWOOD_GUEST_CACHE ?? join(process.cwd(), '.cache/guests');
const kernelPath = [join(cache, 'i386/vmlinuz-686'), '/var/cache/boxwood-guests/i386/vmlinuz-686'].find((p) => existsSync(p));

test('parses the real Debian 686 kernel', { skip: kernelPath ? false : 'no guest kernel (npm run guests)' }, () => {
  const img = new Uint8Array(readFileSync(kernelPath!));
  const h = parseBzImage(img, kernelPath);
  assert.ok(h.version >= 0x020c, `protocol ${h.version.toString(16)}`);
  assert.ok(h.loadFlags & 1);
  assert.ok(h.relocatable);
  assert.ok(h.kernelBytes > 1_000_000);
  const l = layoutLinux(img, kernelPath!, 256 * 1024 * 1024 - 0x10000, 'console=ttyS0', new Uint8Array(1_000_000));
  assert.equal(l.kernel.length, h.kernelBytes);
});
