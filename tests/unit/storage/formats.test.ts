/** Format behaviour that needs no external tool: detection, chains and their faults, qcow2 features, the cache. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DiskError } from '../../../src-emulator/storage/block-device';
import { createImage, detectFormat, openImage, type CreateOptions } from '../../../src-emulator/storage/open';
import type { ImageFormat } from '../../../src-emulator/storage/disk-image';
import { Qcow2Image } from '../../../src-emulator/storage/qcow2';
import { BlockCache } from '../../../src-emulator/storage/block-cache';
import { RawImage } from '../../../src-emulator/storage/raw';
import { HostFile } from '../../../src-emulator/storage/host-file';
import { compareImages, convertImage, parseSize } from '../../../src-emulator/storage/convert';
import { main as imageCli } from '../../../src-main/cli/image';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bw-fmt-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const p = (name: string): string => path.join(dir, name);
const MiB = 1024 * 1024;

function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

/** Byte equality without the test runner's element-by-element diff of megabyte arrays. */
function same(a: Uint8Array, b: Uint8Array, msg = ''): void {
  if (a.length !== b.length) assert.fail(`${msg}: length ${a.length} != ${b.length}`);
  if (!Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))) {
    let i = 0;
    while (a[i] === b[i]) i++;
    assert.fail(`${msg}: first difference at byte ${i}`);
  }
}

function readAll(file: string): Uint8Array {
  const d = openImage(file, { readOnly: true });
  const b = new Uint8Array(d.size);
  d.read(0, b);
  d.close();
  return b;
}

const writable: [ImageFormat, CreateOptions][] = [
  ['raw', {}],
  ['qcow2', {}],
  ['qcow2', { version: 2, clusterSize: 4096 }],
  ['vdi', {}],
  ['vdi', { variant: 'fixed' }],
  ['vhd', {}],
  ['vhd', { variant: 'fixed' }],
  ['vmdk', {}],
  ['vmdk', { variant: 'monolithicFlat' }],
  ['vmdk', { variant: 'twoGbMaxExtentSparse' }],
  ['vhdx', {}],
  ['vhdx', { variant: 'fixed', blockSize: MiB }],
];

test('every writable format: write, reopen, read back; detected by content whatever the name', () => {
  writable.forEach(([fmt, opts], k) => {
    const file = p(`rt-${k}.dat`); // a misleading extension on purpose
    createImage(file, fmt, 6 * MiB, opts);
    assert.equal(detectFormat(file), fmt === 'vhd' && opts.variant === 'fixed' ? 'vhd' : fmt);
    const d = openImage(file);
    const a = pattern(300_000, k);
    const b = pattern(777, k + 1);
    d.write(123_457, a);
    d.write(d.size - 777, b);
    d.flush();
    d.close();
    const got = readAll(file);
    same(got.subarray(123_457, 123_457 + a.length), a, `${fmt} ${JSON.stringify(opts)}`);
    same(got.subarray(got.length - 777), b, `${fmt} last bytes`);
    assert.ok(got.subarray(0, 123_457).every((x) => x === 0));
    const img = openImage(file, { readOnly: true });
    assert.deepEqual(img.check().errors, []);
    assert.throws(() => img.write(0, new Uint8Array(1)), DiskError);
    assert.throws(() => img.read(img.size - 10, new Uint8Array(11)), /outside the disk/);
    img.close();
  });
});

test('differencing chains: qcow2, VDI, VHD, VMDK and VHDX children fall through to their parents', () => {
  for (const fmt of ['qcow2', 'vdi', 'vhd', 'vmdk', 'vhdx'] as ImageFormat[]) {
    const base = p(`base-${fmt}.${fmt}`);
    createImage(base, fmt, 8 * MiB, fmt === 'vhdx' ? { blockSize: MiB } : {});
    const d = openImage(base);
    d.write(0, pattern(3 * MiB, 1));
    d.close();
    const child = p(`child-${fmt}.${fmt}`);
    createImage(child, fmt, 0, { backing: path.basename(base) });
    const c = openImage(child);
    assert.equal(c.backing?.path, base);
    c.write(MiB + 100, pattern(5000, 2)); // partial sectors on both ends
    c.write(5 * MiB + 7, pattern(3, 9)); // within one sector, in a block the parent lacks
    c.close();
    const got = readAll(child);
    const want = new Uint8Array(got.length); // VHD rounds the size up to a CHS geometry
    want.set(pattern(3 * MiB, 1));
    want.set(pattern(5000, 2), MiB + 100);
    want.set(pattern(3, 9), 5 * MiB + 7);
    same(got, want, fmt);
    const ci = openImage(child, { readOnly: true });
    assert.deepEqual(ci.check().errors, [], `${fmt} child check`);
    ci.close();
    // The parent is untouched.
    same(readAll(base).subarray(MiB + 100, MiB + 5100), pattern(3 * MiB, 1).subarray(MiB + 100, MiB + 5100), `${fmt} parent`);
  }
});

test('chain faults are named: missing parent, loop, mismatched parent', () => {
  // Missing
  createImage(p('gone.qcow2'), 'qcow2', MiB);
  createImage(p('orphan.qcow2'), 'qcow2', 0, { backing: 'gone.qcow2' });
  fs.rmSync(p('gone.qcow2'));
  assert.throws(() => openImage(p('orphan.qcow2')), (e: unknown) => e instanceof DiskError && /orphan\.qcow2.*not found/.test(e.message));
  // Loop: x -> y -> x (x is recreated on top of y, which still names x)
  createImage(p('x.qcow2'), 'qcow2', MiB);
  createImage(p('y.qcow2'), 'qcow2', 0, { backing: 'x.qcow2' });
  createImage(p('x.qcow2'), 'qcow2', 0, { backing: 'y.qcow2' });
  assert.throws(() => openImage(p('x.qcow2')), (e: unknown) => e instanceof DiskError && /loops/.test(e.message));
  // A backing format recorded in the child that the parent's content contradicts
  createImage(p('plain.raw'), 'raw', MiB);
  createImage(p('wrongfmt.qcow2'), 'qcow2', 0, { backing: 'plain.raw', backingFormat: 'raw' });
  const wf = new HostFile(p('wrongfmt.qcow2'), true);
  const hdr = wf.readBytes(0, 4096);
  const at = Buffer.from(hdr).indexOf(Buffer.from([0xe2, 0x79, 0x2a, 0xca]));
  wf.write(at + 8, new TextEncoder().encode('vdi'));
  wf.close();
  assert.throws(() => openImage(p('wrongfmt.qcow2')), (e: unknown) => e instanceof DiskError && /wrongfmt\.qcow2.*not a vdi image/.test(e.message));
  // VDI child whose parent was replaced by another image with the same name
  createImage(p('vp.vdi'), 'vdi', MiB);
  createImage(p('vc.vdi'), 'vdi', 0, { backing: 'vp.vdi' });
  createImage(p('vp.vdi'), 'vdi', MiB);
  assert.throws(() => openImage(p('vc.vdi')), /UUID/);
  // VHD likewise (unique id)
  createImage(p('hp.vhd'), 'vhd', MiB);
  createImage(p('hc.vhd'), 'vhd', 0, { backing: 'hp.vhd' });
  createImage(p('hp.vhd'), 'vhd', MiB);
  assert.throws(() => openImage(p('hc.vhd')), /unique id/);
  // VHDX: parent written after the child was made (data write GUID changed)
  createImage(p('xp.vhdx'), 'vhdx', MiB);
  createImage(p('xc.vhdx'), 'vhdx', 0, { backing: 'xp.vhdx' });
  const xp = openImage(p('xp.vhdx'));
  xp.write(0, new Uint8Array(512).fill(1));
  xp.close();
  assert.throws(() => openImage(p('xc.vhdx')), /data write GUID/);
  // VMDK: parent written after the child was made (CID changed)
  createImage(p('mp.vmdk'), 'vmdk', MiB);
  createImage(p('mc.vmdk'), 'vmdk', 0, { backing: 'mp.vmdk' });
  const mp = openImage(p('mp.vmdk'));
  mp.write(0, new Uint8Array(512).fill(1));
  mp.close();
  assert.throws(() => openImage(p('mc.vmdk')), /CID/);
});

test('qcow2: unknown incompatible features are refused, corrupt images open read-only only', () => {
  const f = p('feat.qcow2');
  createImage(f, 'qcow2', MiB);
  const h = new HostFile(f, true);
  const v = new Uint8Array(8);
  new DataView(v.buffer).setUint32(4, 1 << 7);
  h.write(72, v);
  h.close();
  assert.throws(() => openImage(f), /unsupported incompatible qcow2 feature.*bit 7/);
  const g = p('corrupt.qcow2');
  createImage(g, 'qcow2', MiB);
  const h2 = new HostFile(g, true);
  new DataView(v.buffer).setUint32(4, 2);
  h2.write(72, v);
  h2.close();
  assert.throws(() => openImage(g), /marked corrupt/);
  openImage(g, { readOnly: true }).close();
});

test('qcow2: refcount table growth, leaks found and repaired, dirty lazy refcounts rebuilt on open', () => {
  const f = p('grow.qcow2');
  createImage(f, 'qcow2', 64 * MiB, { clusterSize: 512, refcountBits: 4 });
  const d = openImage(f, { cache: false });
  for (let i = 0; i < 40; i++) d.write(i * 1.5 * MiB, pattern(70_000, i));
  d.close();
  let img = openImage(f, { readOnly: true, cache: false });
  assert.deepEqual(img.check(), { ...img.check(), errors: [], leaks: 0 });
  img.close();
  // Leak one cluster by hand: raise the refcount of a free cluster... here, the last one.
  const q = openImage(f, { cache: false }) as unknown as Qcow2Image;
  const before = q.check();
  q.close();
  assert.equal(before.leaks, 0);
  // Dirty bit + zeroed refcount block => rebuilt on the next read-write open.
  const h = new HostFile(f, true);
  const hdr = h.readBytes(0, 112);
  const rtOff = Number(new DataView(hdr.buffer).getBigUint64(48));
  const firstBlock = Number(new DataView(h.readBytes(rtOff, 8).buffer).getBigUint64(0));
  h.write(firstBlock, new Uint8Array(512));
  const inc = new Uint8Array(8);
  new DataView(inc.buffer).setUint32(4, 1);
  h.write(72, inc);
  h.close();
  img = openImage(f, { readOnly: true, cache: false });
  assert.ok(img.check().errors.length > 0, 'zeroed refcounts are seen as errors');
  assert.equal(img.info().dirty, true);
  img.close();
  openImage(f).close(); // repairs
  img = openImage(f, { readOnly: true, cache: false });
  assert.deepEqual(img.check().errors, []);
  assert.equal(img.info().dirty, false);
  const b = new Uint8Array(70_000);
  img.read(39 * 1.5 * MiB, b);
  same(b, pattern(70_000, 39), 'after repair');
  img.close();
});

test('check -r repairs what the map proves: VDI allocated count, VHD footer at the end', async () => {
  const v = p('rep.vdi');
  createImage(v, 'vdi', 4 * MiB);
  let d = openImage(v);
  d.write(0, pattern(3 * MiB, 1));
  d.close();
  let h = new HostFile(v, true);
  h.write(0x184, new Uint8Array([1, 0, 0, 0]));
  h.close();
  let img = openImage(v, { readOnly: true, cache: false });
  assert.match(img.check().errors.join(), /allocated block count/);
  img.close();
  img = openImage(v, { cache: false });
  assert.equal(img.check(true).repaired, 1);
  img.close();
  img = openImage(v, { readOnly: true, cache: false });
  assert.deepEqual(img.check().errors, []);
  img.close();
  const x = p('rep.vhd');
  createImage(x, 'vhd', 4 * MiB);
  d = openImage(x);
  d.write(0, pattern(MiB, 2));
  d.close();
  h = new HostFile(x, true);
  h.truncate(h.size - 512);
  h.close();
  img = openImage(x, { readOnly: true, cache: false });
  assert.match(img.check().errors.join(), /footer/);
  img.close();
  img = openImage(x, { cache: false });
  assert.equal(img.check(true).repaired, 1);
  img.close();
  img = openImage(x, { readOnly: true, cache: false });
  assert.deepEqual(img.check().errors, []);
  const b = new Uint8Array(MiB);
  img.read(0, b);
  same(b, pattern(MiB, 2), 'vhd data after footer repair');
  img.close();
});

test('qcow2 snapshots: create, write, apply, delete keep data and metadata consistent', () => {
  const f = p('snap.qcow2');
  createImage(f, 'qcow2', 4 * MiB);
  const q = openImage(f, { cache: false }) as unknown as Qcow2Image;
  q.write(0, pattern(MiB, 1));
  q.createSnapshot('s1');
  q.write(MiB / 2, pattern(MiB, 2));
  assert.deepEqual(q.check().errors, []);
  q.applySnapshot('s1');
  const b = new Uint8Array(2 * MiB);
  q.read(0, b);
  const want = new Uint8Array(2 * MiB);
  want.set(pattern(MiB, 1));
  same(b, want, 'snapshot s1');
  assert.throws(() => q.createSnapshot('s1'), /already exists/);
  q.deleteSnapshot('s1');
  const r = q.check();
  assert.deepEqual(r.errors, []);
  assert.equal(r.leaks, 0);
  assert.deepEqual(q.listSnapshots(), []);
  q.close();
});

test('qcow2: zeros take no space (nothing allocated, or the v3 zero flag over a backing file)', () => {
  const base = p('zbase.qcow2');
  createImage(base, 'qcow2', 16 * MiB);
  let d = openImage(base, { cache: false });
  const sizeBefore = fs.statSync(base).size;
  d.write(0, new Uint8Array(8 * MiB));
  assert.equal(fs.statSync(base).size, sizeBefore, 'zeros on a fresh image allocate nothing');
  d.write(MiB, pattern(2 * MiB, 4));
  d.close();
  const top = p('ztop.qcow2');
  createImage(top, 'qcow2', 0, { backing: 'zbase.qcow2' });
  d = openImage(top, { cache: false });
  d.write(2 * MiB, new Uint8Array(MiB));
  assert.ok(fs.statSync(top).size < 2 * 65536 + sizeBefore, 'the zero flag, not data clusters');
  d.close();
  const got = readAll(top);
  const want = new Uint8Array(16 * MiB);
  want.set(pattern(2 * MiB, 4), MiB);
  want.fill(0, 2 * MiB, 3 * MiB);
  same(got, want, 'zero flag over backing data');
  const c = openImage(top, { readOnly: true, cache: false });
  assert.deepEqual(c.check().errors, []);
  c.close();
});

test('compressed qcow2 (convert -c) and streamOptimized VMDK round-trip; compare finds the first difference', () => {
  const src = p('src.raw');
  createImage(src, 'raw', 4 * MiB);
  const s = openImage(src);
  s.write(100_000, pattern(900_000, 3));
  s.close();
  const si = openImage(src, { readOnly: true });
  convertImage(si, p('c.qcow2'), 'qcow2', { compress: true });
  convertImage(si, p('s.vmdk'), 'vmdk', { variant: 'streamOptimized' });
  for (const out of ['c.qcow2', 's.vmdk']) {
    const o = openImage(p(out), { readOnly: true });
    assert.equal(compareImages(si, o).identical, true, out);
    o.close();
  }
  const w = openImage(p('c.qcow2'));
  w.write(200_001, new Uint8Array([0xee]));
  w.close();
  const o = openImage(p('c.qcow2'), { readOnly: true });
  assert.deepEqual(compareImages(si, o), { identical: false, firstDifference: 200_001, sizeMismatch: false });
  o.close();
  si.close();
  assert.ok(fs.statSync(p('c.qcow2')).size < 900_000, 'compressed output is smaller than the data');
  assert.equal(parseSize('64M'), 64 * MiB);
  assert.equal(parseSize('1.5G'), 1.5 * 1024 * MiB);
});

test('block cache: merged write-back, flush reaches the format, reads see cached writes', () => {
  const f = p('cache.raw');
  createImage(f, 'raw', 8 * MiB);
  class CountingRaw extends RawImage {
    writes: [number, number][] = [];
    flushes = 0;
    override write(offset: number, data: Uint8Array): void {
      this.writes.push([offset, data.length]);
      super.write(offset, data);
    }
    override flush(): void {
      this.flushes++;
      super.flush();
    }
  }
  const inner = new CountingRaw(new HostFile(f, true));
  const c = new BlockCache(inner);
  for (let i = 0; i < 64; i++) c.write(MiB + i * 4096, pattern(4096, i));
  assert.equal(inner.writes.length, 0, 'small writes stay in the cache');
  const b = new Uint8Array(4096);
  c.read(MiB + 5 * 4096, b);
  assert.deepEqual(b, pattern(4096, 5));
  c.flush();
  assert.equal(inner.flushes, 1);
  assert.deepEqual(inner.writes, [[MiB, 4 * 65536]], '64 adjacent 4K writes leave as one request');
  c.close();
  const raw = fs.readFileSync(f);
  assert.deepEqual(new Uint8Array(raw.subarray(MiB + 63 * 4096, MiB + 64 * 4096)), pattern(4096, 63));
});

test('block cache: random reads and writes (with eviction and bypass) match a plain reference', () => {
  const f = p('cache-prop.qcow2');
  const size = 48 * MiB;
  createImage(f, 'qcow2', size, { clusterSize: 4096 });
  const img = openImage(f); // cached
  const ref = new Uint8Array(size);
  let x = 99;
  const r = (n: number): number => {
    x = (x * 1103515245 + 12345) >>> 0;
    return x % n;
  };
  for (let i = 0; i < 1500; i++) {
    const big = r(20) === 0;
    const len = big ? 1 + r(3 * MiB) : 1 + r(20_000);
    const off = r(size - len);
    if (r(2)) {
      const d = new Uint8Array(len).fill(1 + r(255));
      d[0] = i & 0xff;
      img.write(off, d);
      ref.set(d, off);
    } else {
      const b = new Uint8Array(len);
      img.read(off, b);
      same(b, ref.subarray(off, off + len), `op ${i} read at ${off}+${len}`);
    }
    if (r(200) === 0) img.flush();
  }
  img.close();
  same(readAll(f), ref, 'after close');
});

test('boxwood image CLI: exit codes and errors that name the file', async () => {
  const out: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  const origErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stderr.write;
  try {
    assert.equal(await imageCli(['create', '-f', 'qcow2', p('cli.qcow2'), '8M']), 0);
    assert.equal(await imageCli(['info', '--json', p('cli.qcow2')]), 0);
    assert.match(out.join(''), /"virtualSize": 8388608/);
    assert.equal(await imageCli(['check', p('cli.qcow2')]), 0);
    assert.equal(await imageCli(['resize', p('cli.qcow2'), '+8M']), 0);
    assert.equal(await imageCli(['convert', '-O', 'vdi', p('cli.qcow2'), p('cli.vdi')]), 0);
    assert.equal(await imageCli(['compare', p('cli.qcow2'), p('cli.vdi')]), 0);
    assert.equal(await imageCli(['snapshot', '-c', 'x', p('cli.qcow2')]), 0);
    assert.equal(await imageCli(['snapshot', '-l', p('cli.qcow2')]), 0);
    assert.equal(await imageCli(['snapshot', '-c', 'x', p('cli.vdi')]), 1);
    assert.equal(await imageCli(['info', p('does-not-exist.img')]), 1);
    assert.match(out.join(''), /does-not-exist\.img: file not found/);
    assert.equal(await imageCli(['compare', p('cli.qcow2'), p('nope')]), 2);
    assert.equal(await imageCli(['bogus']), 1);
    assert.equal(await imageCli(['create', '-f', 'qcow2', p('x.qcow2')]), 1);
  } finally {
    process.stdout.write = orig;
    process.stderr.write = origErr;
  }
});
