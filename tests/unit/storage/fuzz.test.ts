/**
 * Hostile input: mutate headers, tables and offsets of valid images of every format and open
 * them. Every case must either fail with a DiskError naming the file, or open and read within
 * bounds; never hang, never throw anything else, never blow up memory.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DiskError } from '../../../src-emulator/storage/block-device';
import { createImage, openImage, type CreateOptions } from '../../../src-emulator/storage/open';
import type { ImageFormat } from '../../../src-emulator/storage/disk-image';

const CASES = Number(process.env.BOXWOOD_FUZZ_CASES ?? 1000);
const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'bw-fuzz-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/** A small valid image with some data, as the fuzzer's starting point. */
function template(format: ImageFormat, opts: CreateOptions, size: number): Buffer {
  if (format === 'iso') return isoTemplate();
  const p = path.join(dir, `tpl.${format}`);
  if (opts.variant === 'extended-l2') {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on,cluster_size=16k', p, String(size)]);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -q -P 7 0 6k', '-c', 'write -q -z 40k 2k', '-c', 'write -q -P 9 300k 20k', p]);
    return fs.readFileSync(p);
  }
  if (format === 'vhdx') {
    execFileSync('qemu-img', ['create', '-q', '-f', 'vhdx', '-o', 'block_size=1M,log_size=1M', p, String(size)]);
    execFileSync('qemu-io', ['-f', 'vhdx', '-c', 'write -q -P 7 0 64k', '-c', 'write -q -P 9 3M 4k', p]);
    return fs.readFileSync(p);
  }
  createImage(p, format, size, opts);
  const img = openImage(p, { cache: false });
  const r = rng(size);
  for (let i = 0; i < 6; i++) {
    const len = 512 * (1 + Math.floor(r() * 40));
    const off = Math.floor(r() * ((img.size - len) / 512)) * 512;
    img.write(off, new Uint8Array(len).fill(1 + i));
  }
  img.close();
  return fs.readFileSync(p);
}

/** Mutations biased towards where metadata lives: the first sectors, the tail, 32/64-bit fields. */
function mutate(base: Buffer, r: () => number, hot: number[]): Buffer {
  const b = Buffer.from(base);
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    const region = r();
    let pos: number;
    if (region < 0.5) pos = Math.floor(r() * Math.min(b.length, 4096));
    else if (region < 0.7 && hot.length) pos = hot[Math.floor(r() * hot.length)] + Math.floor(r() * 512);
    else if (region < 0.85) pos = b.length - 1 - Math.floor(r() * Math.min(b.length, 2048));
    else pos = Math.floor(r() * b.length);
    pos = Math.min(Math.max(0, pos), b.length - 1);
    const kind = Math.floor(r() * 6);
    if (kind === 0) b[pos] ^= 1 << Math.floor(r() * 8);
    else if (kind === 1) b[pos] = Math.floor(r() * 256);
    else if (kind === 2 && pos + 4 <= b.length) b.writeUInt32LE([0, 0xffffffff, 0x7fffffff, 0x80000000, 1, b.length][Math.floor(r() * 6)] >>> 0, pos);
    else if (kind === 3 && pos + 4 <= b.length) b.writeUInt32BE(Math.floor(r() * 4294967296), pos);
    else if (kind === 4 && pos + 8 <= b.length) b.writeBigUInt64BE(BigInt(Math.floor(r() * 2 ** 53)), pos);
    else if (kind === 5) return b.subarray(0, Math.floor(r() * b.length)); // truncation
  }
  return b;
}

const formats: [string, ImageFormat, CreateOptions, number][] = [
  ['qcow2', 'qcow2', { clusterSize: 4096 }, 2 << 20],
  ['qcow2 v2 512B', 'qcow2', { clusterSize: 512, version: 2 }, 1 << 20],
  ['vdi', 'vdi', { blockSize: 4096 }, 1 << 20],
  ['vhd', 'vhd', { blockSize: 4096 }, 1 << 20],
  ['vmdk', 'vmdk', {}, 2 << 20],
  ['vmdk stream', 'vmdk', { variant: 'streamOptimized' }, 2 << 20],
  ['raw', 'raw', {}, 64 << 10],
  ['iso', 'iso', {}, 0],
  ['vhdx', 'vhdx', {}, 4 << 20],
  ['qcow2 extended L2', 'qcow2', { variant: 'extended-l2' }, 1 << 20],
];

const haveQemuImg = spawnSync('qemu-img', ['--version']).status === 0;

/** A minimal El Torito ISO built by hand: PVD, boot record, terminator, boot catalogue. */
function isoTemplate(): Buffer {
  const b = Buffer.alloc(2048 * 24);
  const pvd = 16 * 2048;
  b[pvd] = 1;
  b.write('CD001', pvd + 1, 'latin1');
  b[pvd + 6] = 1;
  b.write('FUZZ_LABEL'.padEnd(32), pvd + 40, 'latin1');
  b.writeUInt32LE(24, pvd + 80);
  b.writeUInt32BE(24, pvd + 84);
  b.writeUInt16LE(2048, pvd + 128);
  const br = 17 * 2048;
  b[br] = 0;
  b.write('CD001', br + 1, 'latin1');
  b[br + 6] = 1;
  b.write('EL TORITO SPECIFICATION', br + 7, 'latin1');
  b.writeUInt32LE(19, br + 0x47);
  const term = 18 * 2048;
  b[term] = 255;
  b.write('CD001', term + 1, 'latin1');
  const cat = 19 * 2048;
  b[cat] = 1;
  b[cat + 0x1e] = 0x55;
  b[cat + 0x1f] = 0xaa;
  let sum = 0;
  for (let i = 0; i < 32; i += 2) sum = (sum + b.readUInt16LE(cat + i)) & 0xffff;
  b.writeUInt16LE((0x10000 - sum) & 0xffff, cat + 0x1c);
  b[cat + 32] = 0x88;
  b.writeUInt16LE(4, cat + 32 + 6);
  b.writeUInt32LE(20, cat + 32 + 8);
  return b;
}

for (const [name, format, opts, size] of formats) {
  const skip = (format === 'vhdx' || opts.variant === 'extended-l2') && !haveQemuImg ? 'this template needs qemu-img' : false;
  test(`fuzz ${name}: ${CASES} mutated images give a DiskError or read within bounds`, { skip, timeout: 300_000 }, () => {
    const base = template(format, opts, size);
    const hot = hotSpots(base, format);
    const r = rng(name.length * 7777);
    const file = path.join(dir, `case.${format}`);
    const rssBefore = process.memoryUsage().rss;
    let opened = 0;
    let refused = 0;
    fs.writeFileSync(file, base);
    let current: Buffer = Buffer.from(base);
    for (let c = 0; c < CASES; c++) {
      // Only the pages that differ from what is on disk are rewritten: templates can be megabytes.
      const next = mutate(base, r, hot);
      syncFile(file, current, next);
      current = next;
      const readOnly = r() < 0.5;
      let img;
      try {
        img = openImage(file, { readOnly, cache: false });
      } catch (err) {
        assert.ok(err instanceof DiskError, `case ${c}: open threw ${(err as Error)?.stack ?? err}`);
        assert.ok(err.message.includes(file), `case ${c}: error does not name the file: ${err.message}`);
        refused++;
        continue;
      }
      opened++;
      try {
        const buf = new Uint8Array(8192);
        for (let k = 0; k < 6 && img.size > 0; k++) {
          const off = Math.floor(r() * Math.max(1, img.size - buf.length));
          const len = Math.min(buf.length, img.size - off);
          try {
            img.read(off, buf.subarray(0, len));
            if (!readOnly && k === 5) img.write(off, buf.subarray(0, len));
          } catch (err) {
            assert.ok(err instanceof DiskError, `case ${c}: I/O threw ${(err as Error)?.stack ?? err}`);
          }
        }
        try {
          img.check();
        } catch (err) {
          assert.ok(err instanceof DiskError, `case ${c}: check threw ${(err as Error)?.stack ?? err}`);
        }
      } finally {
        try {
          img.close();
        } catch (err) {
          assert.ok(err instanceof DiskError, `case ${c}: close threw ${(err as Error)?.stack ?? err}`);
        }
      }
    }
    const growth = process.memoryUsage().rss - rssBefore;
    assert.ok(growth < 768 * 1024 * 1024, `memory grew by ${growth} bytes`);
    assert.equal(opened + refused, CASES);
    if (format !== 'raw') assert.ok(refused > 0, 'no mutation was refused: the fuzzer is not reaching the parser');
  });
}

function syncFile(file: string, cur: Buffer, next: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  try {
    if (next.length !== cur.length) fs.ftruncateSync(fd, next.length);
    for (let p = 0; p < next.length; p += 4096) {
      const e = Math.min(p + 4096, next.length);
      if (p + 4096 > cur.length || !next.subarray(p, e).equals(cur.subarray(p, e))) fs.writeSync(fd, next, p, e - p, p);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Offsets of the tables each format points to, read from the valid template. */
function hotSpots(b: Buffer, format: ImageFormat): number[] {
  try {
    if (format === 'qcow2') return [Number(b.readBigUInt64BE(40)), Number(b.readBigUInt64BE(48))];
    if (format === 'vdi') return [b.readUInt32LE(0x154), b.readUInt32LE(0x158)];
    if (format === 'vhd') return [512, Number(b.readBigUInt64BE(512 + 16))];
    if (format === 'iso') return [16 * 2048, 17 * 2048, 19 * 2048];
    if (format === 'vhdx') return [64 * 1024, 128 * 1024, 192 * 1024, 256 * 1024, 1024 * 1024, 2 * 1024 * 1024, 3 * 1024 * 1024];
    if (format === 'vmdk' && b.toString('latin1', 0, 4) === 'KDMV') {
      const gd = Number(b.readBigUInt64LE(56));
      return gd < b.length / 512 ? [512, gd * 512, b.readUInt32LE(gd * 512) * 512] : [512, b.length - 1024];
    }
  } catch {
    /* no hot spots */
  }
  return [];
}
