/**
 * Disk throughput per format through what a guest uses (openImage with the block cache):
 * sequential and random 4 KiB writes, then reads; reported in MiB/s with the ratio to the raw
 * file. Each figure is the best of three passes (the first write pass allocates, later ones
 * overwrite), with a flush (fsync) at the end of each pass.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createImage, openImage, type CreateOptions } from '../../src-emulator/storage/open';
import type { ImageFormat } from '../../src-emulator/storage/disk-image';
import type { BenchRow } from './types';

const SIZE = 64 * 1024 * 1024;
const SPAN = 32 * 1024 * 1024; // bytes touched per pattern
const IO = 4096;

function offsets(random: boolean): number[] {
  const n = SPAN / IO;
  const out = Array.from({ length: n }, (_, i) => i * IO);
  if (random) {
    let x = 2463534242;
    for (let i = n - 1; i > 0; i--) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      const j = x % (i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
  }
  return out;
}

function measure(file: string, write: boolean, random: boolean): number {
  const img = openImage(file);
  const buf = new Uint8Array(IO).fill(0x5a);
  const offs = offsets(random);
  const t = performance.now();
  for (const o of offs) {
    buf[0] = o & 0xff;
    if (write) img.write(o, buf);
    else img.read(o, buf);
  }
  img.flush();
  const ms = performance.now() - t;
  img.close();
  return SPAN / (1024 * 1024) / (ms / 1000);
}

export async function run(): Promise<BenchRow[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bw-bench-disk-'));
  const formats: [string, ImageFormat, CreateOptions][] = [
    ['raw', 'raw', {}],
    ['qcow2', 'qcow2', {}],
    ['vdi', 'vdi', {}],
    ['vhd', 'vhd', {}],
    ['vmdk', 'vmdk', {}],
    ['vhdx', 'vhdx', {}],
  ];
  const rows: BenchRow[] = [];
  const rawFigures = new Map<string, number>();
  try {
    for (const [name, fmt, opts] of formats) {
      for (const random of [false, true]) {
        const file = path.join(dir, `${name}-${random}.img`);
        createImage(file, fmt, SIZE, opts);
        // Writes allocate on a fresh image (the first pass); reads then hit allocated data.
        // Best of three passes: the host is shared and noisy, the best pass is the least disturbed.
        const w = Math.max(measure(file, true, random), measure(file, true, random), measure(file, true, random));
        const r = Math.max(measure(file, false, random), measure(file, false, random), measure(file, false, random));
        for (const [op, v] of [['write', w], ['read', r]] as const) {
          const key = `${random ? 'random' : 'sequential'} 4K ${op}`;
          if (name === 'raw') rawFigures.set(key, v);
          const base = rawFigures.get(key);
          rows.push({ suite: 'disk', name: `${name} ${key}`, value: Number(v.toFixed(1)), unit: 'MiB/s', note: base ? `ratio to raw ${(v / base).toFixed(2)}` : undefined });
        }
        fs.rmSync(file, { force: true });
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
