import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeMedia, NotAnImageError } from '../../../src-main/hypervisor/media-probe';
import { DEMO_IMAGE } from '../../../src-main/hypervisor/node-host';

test('images are recognised by content, whatever their name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-probe-'));
  try {
    const put = (name: string, b: Buffer) => {
      writeFileSync(join(dir, name), b);
      return join(dir, name);
    };
    const iso = Buffer.alloc(0x9000);
    iso.write('\x01CD001', 0x8000, 'latin1');
    const qcow = Buffer.alloc(512);
    qcow.write('QFI\xfb', 0, 'latin1');
    const vdi = Buffer.alloc(512);
    vdi.writeUInt32LE(0xbeda107f, 0x40);
    const mbr = Buffer.alloc(4096);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    const vhd = Buffer.alloc(4096);
    vhd.write('conectix', 4096 - 512, 'latin1');
    assert.equal(probeMedia(put('photo.jpg', iso)).kind, 'cdrom');
    assert.equal(probeMedia(put('disk.iso', qcow)).format, 'qcow2');
    assert.equal(probeMedia(put('x', vdi)).format, 'vdi');
    assert.deepEqual([probeMedia(put('y', mbr)).kind, probeMedia(join(dir, 'y')).format], ['disk', 'raw']);
    assert.equal(probeMedia(put('z', vhd)).format, 'vhd');
    assert.equal(probeMedia(DEMO_IMAGE).kind, 'floppy');
    for (const [name, b] of [
      ['readme.iso', Buffer.from('hello')],
      ['zeros.img', Buffer.alloc(1 << 20)],
      ['empty.qcow2', Buffer.alloc(0)],
    ] as const) {
      assert.throws(
        () => probeMedia(put(name, b)),
        (e: unknown) => e instanceof NotAnImageError && e.message.includes(name),
      );
    }
    assert.throws(() => probeMedia(join(dir, 'missing')), /cannot be opened \(ENOENT\)/);
    assert.throws(() => probeMedia(dir), /not a regular file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
