/**
 * Interop with qemu-img, the reference: images qemu writes read back byte-exact in Boxwood; images
 * Boxwood writes pass `qemu-img check` (no errors, no leaks) and `qemu-img compare`; every format
 * converts to every other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createImage, openImage, type CreateOptions } from '../../../src-emulator/storage/open';
import { convertImage } from '../../../src-emulator/storage/convert';
import type { ImageFormat } from '../../../src-emulator/storage/disk-image';
import { crc32c } from '../../../src-emulator/storage/vhdx';
import { haveQemu, qemu, qemuFormat, qemuOk, rng, scatteredRaw, tmpDir } from './qemu';

const skip = haveQemu ? false : 'qemu-img (Debian qemu-utils) is not installed';
const SIZE = 24 * 1024 * 1024;

/** Reads the whole image through Boxwood and compares it with the raw reference. */
function assertSameAsRaw(file: string, ref: Buffer, format?: ImageFormat): void {
  const d = openImage(file, { readOnly: true, format });
  try {
    assert.ok(d.size >= ref.length, `${file}: size ${d.size} < ${ref.length}`);
    const got = Buffer.alloc(d.size);
    d.read(0, got);
    const head = got.subarray(0, ref.length);
    if (!head.equals(ref)) {
      let i = 0;
      while (head[i] === ref[i]) i++;
      assert.fail(`${file}: first difference at byte ${i}`);
    }
    assert.ok(got.subarray(ref.length).every((x) => x === 0), `${file}: bytes beyond the reference are not zero`);
  } finally {
    d.close();
  }
}

const qemuVariants: [string, string][] = [
  ['qcow2', 'compat=1.1'],
  ['qcow2', 'compat=0.10'],
  ['qcow2', 'compat=1.1,cluster_size=512,refcount_bits=1'],
  ['qcow2', 'compat=1.1,cluster_size=4096,refcount_bits=64'],
  ['qcow2', 'compat=1.1,cluster_size=2M,refcount_bits=8'],
  ['qcow2', 'compat=1.1,lazy_refcounts=on'],
  ['qcow2', 'compat=1.1,extended_l2=on,cluster_size=128k'],
  ['qcow2', 'compat=1.1,preallocation=metadata'],
  ['vdi', 'static=off'],
  ['vdi', 'static=on'],
  ['vpc', 'subformat=dynamic'],
  ['vpc', 'subformat=fixed'],
  ['vpc', 'subformat=dynamic,force_size=on'],
  ['vmdk', 'subformat=monolithicSparse'],
  ['vmdk', 'subformat=monolithicSparse,zeroed_grain=on'],
  ['vmdk', 'subformat=monolithicSparse,adapter_type=lsilogic,hwversion=6'],
  ['vmdk', 'subformat=monolithicFlat'],
  ['vmdk', 'subformat=twoGbMaxExtentSparse'],
  ['vmdk', 'subformat=twoGbMaxExtentFlat'],
  ['vmdk', 'subformat=streamOptimized'],
  ['vhdx', 'subformat=dynamic'],
  ['vhdx', 'subformat=fixed'],
  ['vhdx', 'subformat=dynamic,block_size=1M,log_size=1M'],
];

test('images qemu-img writes (by convert, every format and variant) read back byte-exact', { skip, timeout: 180_000 }, () => {
  const dir = tmpDir('qemu-read');
  const ref = scatteredRaw(SIZE, 11);
  fs.writeFileSync(path.join(dir, 'ref.raw'), ref);
  for (const [fmt, o] of qemuVariants) {
    const file = path.join(dir, `${fmt}-${o.replace(/[=,]/g, '_')}.img`);
    qemuOk('qemu-img', ['convert', '-f', 'raw', '-O', fmt, '-o', o, path.join(dir, 'ref.raw'), file]);
    assertSameAsRaw(file, ref, fmt === 'vpc' && o.includes('fixed') ? 'vhd' : undefined);
  }
  // Compressed qcow2 clusters, as `qemu-img convert -c` makes them.
  const z = path.join(dir, 'compressed.qcow2');
  qemuOk('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', path.join(dir, 'ref.raw'), z]);
  assertSameAsRaw(z, ref);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('images qemu-io writes into (allocating writes, last sector) read back byte-exact', { skip, timeout: 120_000 }, () => {
  const dir = tmpDir('qemu-io');
  for (const [fmt, o] of qemuVariants.filter(([f, v]) => !v.includes('stream') && !(f === 'vhdx' && v.includes('fixed')))) {
    const file = path.join(dir, `${fmt}-${o.replace(/[=,]/g, '_')}.img`);
    qemuOk('qemu-img', ['create', '-q', '-f', fmt, '-o', o, file, String(SIZE)]);
    const vsize = JSON.parse(qemuOk('qemu-img', ['info', '-f', fmt, '--output=json', file]))['virtual-size'] as number;
    const ref = Buffer.alloc(vsize);
    const r = rng(fmt.length * 7 + o.length);
    const cmds: string[] = [];
    for (let i = 0; i < 14; i++) {
      const len = i === 0 ? 512 : 512 * (1 + Math.floor(r() * 256));
      const off = i === 0 ? vsize - 512 : Math.floor(r() * ((vsize - len) / 512)) * 512;
      const pat = 1 + Math.floor(r() * 254);
      cmds.push('-c', `write -q -P ${pat} ${off} ${len}`);
      ref.fill(pat, off, off + len);
      if (i % 4 === 3) {
        // Zero writes exercise zero clusters / zeroed grains / zero blocks where the format has them.
        cmds.push('-c', `write -q -z ${off} ${Math.min(len, 65536)}`);
        ref.fill(0, off, off + Math.min(len, 65536));
      }
    }
    qemuOk('qemu-io', ['-f', fmt, ...cmds, file]);
    assertSameAsRaw(file, ref, fmt === 'vpc' ? 'vhd' : undefined);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Every format and variant Boxwood writes. */
const ourVariants: [ImageFormat, CreateOptions, string][] = [
  ['raw', {}, 'raw'],
  ['qcow2', {}, 'qcow2 v3'],
  ['qcow2', { version: 2 }, 'qcow2 v2'],
  ['qcow2', { clusterSize: 512, refcountBits: 1 }, 'qcow2 512B clusters, 1-bit refcounts'],
  ['qcow2', { clusterSize: 4096, refcountBits: 64 }, 'qcow2 4K clusters, 64-bit refcounts'],
  ['qcow2', { refcountBits: 2, clusterSize: 1024 }, 'qcow2 1K clusters, 2-bit refcounts'],
  ['vdi', { variant: 'dynamic' }, 'vdi dynamic'],
  ['vdi', { variant: 'fixed' }, 'vdi fixed'],
  ['vhd', { variant: 'dynamic' }, 'vhd dynamic'],
  ['vhd', { variant: 'fixed' }, 'vhd fixed'],
  ['vmdk', { variant: 'monolithicSparse' }, 'vmdk monolithicSparse'],
  ['vmdk', { variant: 'monolithicFlat' }, 'vmdk monolithicFlat'],
  ['vmdk', { variant: 'twoGbMaxExtentSparse' }, 'vmdk twoGbMaxExtentSparse'],
  ['vmdk', { variant: 'twoGbMaxExtentFlat' }, 'vmdk twoGbMaxExtentFlat'],
  ['vmdk', { variant: 'streamOptimized' }, 'vmdk streamOptimized'],
  ['vhdx', { variant: 'dynamic' }, 'vhdx dynamic'],
  ['vhdx', { variant: 'fixed', blockSize: 1024 * 1024 }, 'vhdx fixed'],
];

function qemuCheckClean(file: string, fmt: ImageFormat): void {
  if (fmt === 'raw' || fmt === 'vhd') return; // qemu-img has no check for these
  const r = qemu('qemu-img', ['check', '-f', qemuFormat(fmt), file]);
  assert.equal(r.code, 0, `qemu-img check ${file}:\n${r.out}`);
  assert.doesNotMatch(r.out, /leak/i, `qemu-img check ${file} reports leaks:\n${r.out}`);
}

function qemuCompare(a: string, fa: ImageFormat, b: string, fb: ImageFormat): void {
  const r = qemu('qemu-img', ['compare', '-f', qemuFormat(fa), '-F', qemuFormat(fb), a, b]);
  assert.equal(r.code, 0, `qemu-img compare ${a} ${b}:\n${r.out}`);
}

test('images Boxwood writes pass qemu-img check (no errors, no leaks) and compare equal', { skip, timeout: 180_000 }, () => {
  const dir = tmpDir('bw-write');
  for (const [fmt, opts, name] of ourVariants) {
    const file = path.join(dir, `${name.replace(/[^a-z0-9]+/gi, '_')}.${fmt}`);
    createImage(file, fmt, SIZE, opts);
    const d = openImage(file);
    const ref = Buffer.alloc(d.size);
    const r = rng(name.length * 131);
    const writes: [number, number][] = [[d.size - 512, 512]];
    if (opts.variant === 'streamOptimized') writes.splice(0, 1, [0, d.size]);
    else for (let i = 0; i < 20; i++) {
      const len = 1 + Math.floor(r() * 200_000);
      writes.push([Math.floor(r() * (d.size - len)), len]);
    }
    for (const [off, len] of writes) {
      const b = Buffer.alloc(len);
      for (let i = 0; i < len; i++) b[i] = Math.floor(r() * 256);
      if (opts.variant === 'streamOptimized') b.fill(0, 1 << 20, 5 << 20);
      d.write(off, b);
      b.copy(ref, off);
    }
    d.close();
    fs.writeFileSync(path.join(dir, 'ref.raw'), ref);
    qemuCheckClean(file, fmt);
    qemuCompare(path.join(dir, 'ref.raw'), 'raw', file, fmt);
    assertSameAsRaw(file, ref);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('every format converts to every other (Boxwood convert, qemu-img compare and check)', { skip, timeout: 300_000 }, () => {
  const dir = tmpDir('matrix');
  const size = 8 * 1024 * 1024;
  const ref = scatteredRaw(size, 5, 6);
  const rawPath = path.join(dir, 'ref.raw');
  fs.writeFileSync(rawPath, ref);
  // Sources: one per format, written by qemu-img (VHDX can only come from there).
  const sources: [string, ImageFormat][] = [[rawPath, 'raw']];
  for (const [fmt, ours] of [['qcow2', 'qcow2'], ['vdi', 'vdi'], ['vpc', 'vhd'], ['vmdk', 'vmdk'], ['vhdx', 'vhdx']] as const) {
    const p = path.join(dir, `src.${ours}`);
    qemuOk('qemu-img', ['convert', '-f', 'raw', '-O', fmt, rawPath, p]);
    sources.push([p, ours]);
  }
  const targets: [ImageFormat, CreateOptions & { compress?: boolean }, string][] = [
    ['raw', {}, 'raw'],
    ['qcow2', {}, 'qcow2'],
    ['qcow2', { compress: true }, 'qcow2c'],
    ['qcow2', { version: 2 }, 'qcow2v2'],
    ['vdi', {}, 'vdi'],
    ['vdi', { variant: 'fixed' }, 'vdifixed'],
    ['vhd', {}, 'vhd'],
    ['vhd', { variant: 'fixed' }, 'vhdfixed'],
    ['vmdk', {}, 'vmdk'],
    ['vmdk', { variant: 'monolithicFlat' }, 'vmdkflat'],
    ['vmdk', { variant: 'twoGbMaxExtentSparse' }, 'vmdk2g'],
    ['vmdk', { variant: 'streamOptimized' }, 'vmdkstream'],
    ['vhdx', {}, 'vhdx'],
  ];
  let n = 0;
  for (const [src, sf] of sources) {
    const s = openImage(src, { readOnly: true, format: sf, cache: false });
    try {
      for (const [tf, opts, tag] of targets) {
        const dst = path.join(dir, `${sf}-to-${tag}.${tf}`);
        convertImage(s, dst, tf, opts);
        qemuCompare(src, sf, dst, tf);
        qemuCheckClean(dst, tf);
        n++;
      }
    } finally {
      s.close();
    }
  }
  assert.equal(n, sources.length * targets.length);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('qcow2 internal snapshots interoperate with qemu-img snapshot', { skip, timeout: 60_000 }, async () => {
  const { main } = await import('../../../src-main/cli/image');
  const dir = tmpDir('snap');
  const f = path.join(dir, 's.qcow2');
  const bw = async (...a: string[]): Promise<void> => assert.equal(await main(a), 0, `boxwood image ${a.join(' ')}`);
  const clean = (): void => qemuCheckClean(f, 'qcow2');
  await bw('create', '-q', '-f', 'qcow2', f, '16M');
  qemuOk('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 1 0 1M', f]);
  await bw('snapshot', '-c', 'one', f);
  clean();
  qemuOk('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 2 512K 1M', f]);
  qemuOk('qemu-img', ['snapshot', '-c', 'two', f]);
  const d = openImage(f);
  d.write(3 << 20, new Uint8Array(70_000).fill(3));
  d.close();
  clean();
  assert.match(qemuOk('qemu-img', ['snapshot', '-l', f]), /one[\s\S]*two/);
  await bw('snapshot', '-a', 'one', f);
  clean();
  qemuOk('qemu-io', ['-f', 'qcow2', '-c', 'read -q -P 1 0 1M', '-c', 'read -q -P 0 1M 3M', f]);
  await bw('snapshot', '-d', 'one', f);
  clean();
  qemuOk('qemu-img', ['snapshot', '-a', 'two', f]);
  qemuOk('qemu-io', ['-f', 'qcow2', '-c', 'read -q -P 1 0 512K', '-c', 'read -q -P 2 512K 1M', '-c', 'read -q -P 0 3M 70000', f]);
  await bw('snapshot', '-a', 'two', f);
  await bw('snapshot', '-d', 'two', f);
  clean();
  assert.equal(await main(['check', f]), 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('qcow2 chains over every backing format and qemu-made lazy-refcount images', { skip, timeout: 60_000 }, () => {
  const dir = tmpDir('chain');
  const ref = scatteredRaw(4 << 20, 3, 4);
  const rawPath = path.join(dir, 'base.raw');
  fs.writeFileSync(rawPath, ref);
  for (const [qf, ours] of [['raw', 'raw'], ['qcow2', 'qcow2'], ['vdi', 'vdi'], ['vpc', 'vhd'], ['vmdk', 'vmdk'], ['vhdx', 'vhdx']] as const) {
    const base = path.join(dir, `base-${ours}.img`);
    if (ours === 'raw') fs.copyFileSync(rawPath, base);
    else qemuOk('qemu-img', ['convert', '-f', 'raw', '-O', qf, rawPath, base]);
    const top = path.join(dir, `top-${ours}.qcow2`);
    createImage(top, 'qcow2', 0, { backing: path.basename(base), backingFormat: ours });
    const d = openImage(top);
    const patch = Buffer.alloc(5000, 0xab);
    d.write(12345, patch);
    d.close();
    const want = Buffer.from(ref);
    patch.copy(want, 12345);
    assertSameAsRaw(top, want.subarray(0, Math.min(want.length, 4 << 20)));
    qemuCheckClean(top, 'qcow2');
    const r = qemu('qemu-io', ['-f', 'qcow2', '-c', 'read -q -P 0xab 12345 5000', top]);
    assert.equal(r.code, 0, r.out);
  }
  // Lazy refcounts: qemu leaves the dirty bit set when it dies; we repair on open.
  const lazy = path.join(dir, 'lazy.qcow2');
  qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', lazy, '8M']);
  qemu('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 7 0 2M', '-c', 'abort', lazy]);
  const info = JSON.parse(qemuOk('qemu-img', ['info', '--output=json', lazy]));
  assert.equal(info['dirty-flag'], true, 'qemu left the dirty flag set');
  const d = openImage(lazy);
  const b = new Uint8Array(2 << 20);
  d.read(0, b);
  assert.ok(b.every((x) => x === 7));
  d.close();
  qemuCheckClean(lazy, 'qcow2');
  assert.equal(JSON.parse(qemuOk('qemu-img', ['info', '--output=json', lazy]))['dirty-flag'], false);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('rebase (a snapshot layer absorbed by its child) and commit keep every byte, qemu-img agrees', { skip, timeout: 60_000 }, async () => {
  const { main } = await import('../../../src-main/cli/image');
  const dir = tmpDir('rebase');
  const base = path.join(dir, 'base.raw');
  fs.writeFileSync(base, scatteredRaw(8 << 20, 21, 5));
  const mid = path.join(dir, 'mid.qcow2');
  const top = path.join(dir, 'top.qcow2');
  qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', mid]);
  qemuOk('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 0x11 1M 3M', '-c', 'write -q -z 6M 64k', mid]);
  qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', top]);
  qemuOk('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 0x22 2M 100k', top]);
  const before = path.join(dir, 'before.raw');
  qemuOk('qemu-img', ['convert', '-O', 'raw', top, before]);
  // Drop the middle layer: top absorbs what it needs from mid.
  assert.equal(await main(['rebase', '-q', '-b', 'base.raw', '-F', 'raw', top]), 0);
  qemuCheckClean(top, 'qcow2');
  assert.match(qemuOk('qemu-img', ['info', top]), /backing file: base\.raw/);
  qemuCompare(before, 'raw', top, 'qcow2');
  // Standalone: no backing at all.
  assert.equal(await main(['rebase', '-q', '-b', '', top]), 0);
  qemuCheckClean(top, 'qcow2');
  assert.doesNotMatch(qemuOk('qemu-img', ['info', top]), /backing file/);
  qemuCompare(before, 'raw', top, 'qcow2');
  // Commit: a fresh overlay's writes land in its base.
  const over = path.join(dir, 'over.qcow2');
  createImage(over, 'qcow2', 0, { backing: 'top.qcow2' });
  const o = openImage(over);
  o.write(5 << 20, new Uint8Array(200_000).fill(0x33));
  o.close();
  const want = path.join(dir, 'want.raw');
  qemuOk('qemu-img', ['convert', '-O', 'raw', over, want]);
  assert.equal(await main(['commit', '-q', over]), 0);
  qemuCheckClean(top, 'qcow2');
  qemuCompare(want, 'raw', top, 'qcow2');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('an OVA (tar with OVF and a streamOptimized VMDK) opens read-only in place', { skip: spawnOk('tar') ? false : 'tar missing', timeout: 30_000 }, () => {
  const dir = tmpDir('ova');
  const ref = scatteredRaw(6 << 20, 17, 4);
  fs.writeFileSync(path.join(dir, 'ref.raw'), ref);
  qemuOk('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', path.join(dir, 'ref.raw'), path.join(dir, 'appliance-disk1.vmdk')]);
  fs.writeFileSync(path.join(dir, 'appliance.ovf'), '<?xml version="1.0"?><Envelope/>');
  execFileSync('tar', ['-C', dir, '-cf', path.join(dir, 'appliance.ova'), 'appliance.ovf', 'appliance-disk1.vmdk']);
  fs.rmSync(path.join(dir, 'appliance-disk1.vmdk'));
  assertSameAsRaw(path.join(dir, 'appliance.ova'), ref);
  assert.throws(() => openImage(path.join(dir, 'appliance.ova')), /read-only/);
  const img = openImage(path.join(dir, 'appliance.ova'), { readOnly: true });
  assert.equal(img.format, 'vmdk');
  convertImage(img, path.join(dir, 'out.qcow2'), 'qcow2');
  img.close();
  qemuCompare(path.join(dir, 'ref.raw'), 'raw', path.join(dir, 'out.qcow2'), 'qcow2');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('qcow2 persistent bitmaps: counted while valid, dropped (leaks, never corruption) on write', { skip, timeout: 30_000 }, async () => {
  const { main } = await import('../../../src-main/cli/image');
  const dir = tmpDir('bitmaps');
  const f = path.join(dir, 'b.qcow2');
  qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', f, '16M']);
  qemuOk('qemu-img', ['bitmap', '--add', f, 'b0']);
  qemuOk('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 2 2M 3M', f]);
  assert.equal(await main(['check', '-q', f]), 0, 'valid bitmaps are not leaks');
  const d = openImage(f);
  d.write(9 << 20, new Uint8Array(4096).fill(3));
  d.close();
  const r = qemu('qemu-img', ['check', f]);
  assert.ok(r.code === 0 || r.code === 3, r.out);
  assert.match(r.out, /lacking bitmap support/);
  qemuOk('qemu-io', ['-f', 'qcow2', '-c', 'read -q -P 2 2M 3M', '-c', 'read -q -P 3 9M 4k', f]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('qcow2 extended L2 (subclusters) over a backing file, with zeroed subclusters, reads byte-exact', { skip, timeout: 30_000 }, () => {
  const dir = tmpDir('extl2');
  const size = 24 << 20;
  const ref = Buffer.alloc(size);
  for (let i = 0; i < size; i += 777) ref[i] = (i / 777) & 0xff;
  fs.writeFileSync(path.join(dir, 'base.raw'), ref);
  const f = path.join(dir, 'e.qcow2');
  qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on,cluster_size=128k', '-b', 'base.raw', '-F', 'raw', f]);
  const want = Buffer.from(ref);
  const r = rng(77);
  const cmds: string[] = [];
  for (let i = 0; i < 30; i++) {
    const len = 512 * (1 + Math.floor(r() * 40));
    const off = Math.floor(r() * ((size - len) / 512)) * 512;
    const pat = 1 + Math.floor(r() * 250);
    if (i % 5 === 4) {
      cmds.push('-c', `write -q -z ${off} ${len}`);
      want.fill(0, off, off + len);
    } else {
      cmds.push('-c', `write -q -P ${pat} ${off} ${len}`);
      want.fill(pat, off, off + len);
    }
  }
  qemuOk('qemu-io', ['-f', 'qcow2', ...cmds, f]);
  assertSameAsRaw(f, want);
  const img = openImage(f, { readOnly: true });
  assert.deepEqual(img.check().errors, []);
  img.close();
  assert.throws(() => openImage(f), /read-only here/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('VHDX: a log left behind is replayed on open', { skip, timeout: 30_000 }, () => {
  const dir = tmpDir('vhdx-log');
  const f = path.join(dir, 'l.vhdx');
  const ref = scatteredRaw(4 << 20, 9, 2);
  fs.writeFileSync(path.join(dir, 'ref.raw'), ref);
  qemuOk('qemu-img', ['convert', '-f', 'raw', '-O', 'vhdx', path.join(dir, 'ref.raw'), f]);
  // Find block 0's file offset from the BAT (region table entry), then log a 4 KiB change to it.
  const buf = fs.readFileSync(f);
  const dvw = new DataView(buf.buffer, buf.byteOffset);
  const regionTable = 192 * 1024;
  let batOff = 0;
  for (let i = 0; i < dvw.getUint32(regionTable + 8, true); i++) {
    const o = regionTable + 16 + i * 32;
    if (buf.readUInt32LE(o) === 0x2dc27766) batOff = Number(buf.readBigUInt64LE(o + 16));
  }
  assert.ok(batOff > 0);
  const block0 = Number(buf.readBigUInt64LE(batOff) >> 20n) * 1024 * 1024;
  assert.ok(block0 > 0, 'block 0 is allocated');
  // Current header: the one with the higher sequence number.
  const hdrs = [64 * 1024, 128 * 1024];
  const cur = hdrs.reduce((a, b) => (buf.readBigUInt64LE(b + 8) > buf.readBigUInt64LE(a + 8) ? b : a));
  const logOffset = Number(buf.readBigUInt64LE(cur + 72));
  const logGuid = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
  const entry = Buffer.alloc(8192);
  entry.write('loge', 0, 'latin1');
  entry.writeUInt32LE(8192, 8);
  entry.writeUInt32LE(0, 12); // tail: this entry
  entry.writeBigUInt64LE(5n, 16);
  entry.writeUInt32LE(1, 24);
  logGuid.copy(entry, 32);
  entry.writeBigUInt64LE(BigInt(buf.length), 48);
  entry.writeBigUInt64LE(BigInt(buf.length), 56);
  const page = Buffer.alloc(4096, 0xee);
  const d = 64;
  entry.write('desc', d, 'latin1');
  page.copy(entry, d + 4, 4092, 4096); // trailing bytes
  page.copy(entry, d + 8, 0, 8); // leading bytes
  entry.writeBigUInt64LE(BigInt(block0 + 8192), d + 16);
  entry.writeBigUInt64LE(5n, d + 24);
  entry.write('data', 4096, 'latin1');
  entry.writeUInt32LE(0, 4100);
  page.copy(entry, 4104, 8, 4092);
  entry.writeUInt32LE(5, 8188);
  entry.writeUInt32LE(crc32c(entry, 4, 4), 4);
  entry.copy(buf, logOffset);
  logGuid.copy(buf, cur + 48);
  buf.writeUInt32LE(0, cur + 4);
  buf.writeUInt32LE(crc32c(buf.subarray(cur, cur + 4096), 4, 4), cur + 4);
  fs.writeFileSync(f, buf);
  const want = Buffer.from(ref);
  want.fill(0xee, 8192, 8192 + 4096);
  assertSameAsRaw(f, want);
  const img = openImage(f, { readOnly: true });
  assert.equal((img.info().specific as { logEntriesReplayed: number }).logEntriesReplayed, 1);
  img.close();
  // qemu refuses a read-only open of a dirty log; a read-write open by Boxwood replays it for good.
  assert.notEqual(qemu('qemu-img', ['compare', '-f', 'raw', '-F', 'vhdx', path.join(dir, 'ref.raw'), f]).code, 0);
  openImage(f).close();
  fs.writeFileSync(path.join(dir, 'want.raw'), want);
  qemuCompare(path.join(dir, 'want.raw'), 'raw', f, 'vhdx');
  qemuCheckClean(f, 'vhdx');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('ISO 9660: volume label and El Torito boot catalogue from genisoimage', { skip: spawnOk('genisoimage') ? false : 'genisoimage missing', timeout: 30_000 }, () => {
  const dir = tmpDir('iso');
  const root = path.join(dir, 'root');
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(root, 'boot.img'), Buffer.alloc(2048 * 4, 0x90));
  fs.writeFileSync(path.join(root, 'readme.txt'), 'hello');
  const iso = path.join(dir, 'x.iso.bin');
  qemuOkAny('genisoimage', ['-quiet', '-V', 'BOXWOOD_TEST', '-b', 'boot.img', '-no-emul-boot', '-boot-load-size', '4', '-o', iso, root]);
  const img = openImage(iso, { readOnly: true });
  try {
    assert.equal(img.format, 'iso');
    const spec = img.info().specific as { volumeLabel: string; bootable: boolean; bootCatalogue: { entries: { media: number; sectorCount: number; lba: number }[] } };
    assert.equal(spec.volumeLabel, 'BOXWOOD_TEST');
    assert.equal(spec.bootable, true);
    const e = spec.bootCatalogue.entries[0];
    assert.equal(e.media, 0);
    assert.equal(e.sectorCount, 4);
    const b = new Uint8Array(2048);
    img.read(e.lba * 2048, b);
    assert.ok(b.every((x) => x === 0x90));
    assert.throws(() => img.write(0, new Uint8Array(512)), /read-only/);
    const whole = Buffer.alloc(img.size);
    img.read(0, whole);
    assert.ok(whole.equals(fs.readFileSync(iso)));
  } finally {
    img.close();
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

function spawnOk(cmd: string): boolean {
  try {
    qemuOkAny(cmd, ['--version']);
    return true;
  } catch {
    return false;
  }
}

function qemuOkAny(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: 'ignore', timeout: 30_000 });
}
