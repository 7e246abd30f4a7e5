/** Helpers for the storage tests that run qemu-img / qemu-io (Debian qemu-utils). */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const haveQemu = spawnSync('qemu-img', ['--version']).status === 0;

export function qemu(cmd: 'qemu-img' | 'qemu-io', args: string[]): { code: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export function qemuOk(cmd: 'qemu-img' | 'qemu-io', args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
}

/** qemu's driver name for one of our formats. */
export function qemuFormat(f: string): string {
  return f === 'vhd' ? 'vpc' : f;
}

/** Scratch space: tmpfs when there is one (fsync is free there; a SIGKILL test needs no disk). */
export function tmpDir(tag: string): string {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  return fs.mkdtempSync(path.join(base, `bw-${tag}-`));
}

/** Deterministic xorshift32 PRNG. */
export function rng(seed: number): () => number {
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

/** A raw reference: random data at scattered offsets, always including the last sector. */
export function scatteredRaw(size: number, seed: number, pieces = 12): Buffer {
  const r = rng(seed);
  const b = Buffer.alloc(size);
  const fill = (off: number, len: number): void => {
    for (let i = 0; i < len; i++) b[off + i] = Math.floor(r() * 256);
  };
  fill(size - 512, 512);
  fill(0, 4096);
  for (let i = 0; i < pieces; i++) {
    const len = 1 + Math.floor(r() * 150_000);
    const off = Math.floor(r() * (size - len));
    fill(off, len);
  }
  return b;
}
