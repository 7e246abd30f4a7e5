/**
 * Crash safety: a child process writes through each writable format and is killed with SIGKILL at
 * random moments. Afterwards qemu-img check (qcow2, VDI, VMDK, VHDX) and Boxwood's own check find no
 * corruption (leaks are allowed: they waste space, never data), every write that a completed flush
 * covered reads back, and the next cycle goes on writing into the same survivor.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { createImage, openImage, type CreateOptions } from '../../../src-emulator/storage/open';
import type { ImageFormat } from '../../../src-emulator/storage/disk-image';
import { Qcow2Image } from '../../../src-emulator/storage/qcow2';
import { crashWrite } from './crash-plan';
import { haveQemu, qemu, qemuFormat, rng, tmpDir } from './qemu';

const KILLS = Number(process.env.BOXWOOD_CRASH_KILLS ?? 50);
const SIZE = 4 * 1024 * 1024;

const dir = tmpDir('crash');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const writer = path.join(dir, 'writer.mjs');
buildSync({ entryPoints: [path.join(import.meta.dirname, 'crash-writer.ts')], bundle: true, platform: 'node', format: 'esm', outfile: writer, logLevel: 'error' });

interface Cycle {
  flushed: number;
  started: number;
  done: boolean;
}

function runChild(file: string, seed: number, killAfterMs: number): Promise<Cycle> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, file, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | null = null;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!timer && out.startsWith('R\n')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    // 'close', not 'exit': only then has every line the child wrote been read.
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (signal !== 'SIGKILL' && code !== 0) return reject(new Error(`writer failed (${code}): ${err}`));
      let flushed = -1;
      let started = -1;
      for (const line of out.split('\n')) {
        if (line.startsWith('F ')) flushed = Number(line.slice(2));
        else if (line.startsWith('W ')) started = Number(line.slice(2));
      }
      resolve({ flushed, started, done: out.includes('\nD\n') });
    });
  });
}

const cases: [string, ImageFormat, CreateOptions, (file: string) => void][] = [
  ['raw', 'raw', {}, () => {}],
  ['qcow2', 'qcow2', {}, () => {}],
  ['qcow2 with an internal snapshot (copy-on-write of shared clusters)', 'qcow2', { clusterSize: 4096 }, (file) => {
    const img = openImage(file, { cache: false }) as unknown as Qcow2Image;
    const r = rng(3);
    const b = new Uint8Array(SIZE);
    for (let i = 0; i < b.length; i += 97) b[i] = r() * 256;
    // The crash test's writes land in the first SIZE bytes; the snapshot shares all of them.
    (img as unknown as { write(o: number, d: Uint8Array): void }).write(0, b);
    img.createSnapshot('base');
    img.close();
  }],
  ['vdi (qemu-img checks only 1 MiB blocks)', 'vdi', {}, () => {}],
  ['vhd', 'vhd', { blockSize: 64 * 1024 }, () => {}],
  ['vmdk', 'vmdk', {}, () => {}],
  ['vhdx', 'vhdx', { blockSize: 1024 * 1024 }, () => {}],
];

// The cycles mostly wait (a child starting, a random delay before the kill): run formats side by side.
describe('crash safety', { concurrency: 4 }, () => {
for (const [name, format, opts, prepare] of cases) {
  test(`crash safety: ${name}, ${KILLS} SIGKILLs`, { timeout: 600_000 }, async () => {
    const file = path.join(dir, `${name.split(' ')[0]}-${Math.random().toString(36).slice(2)}.${format}`);
    createImage(file, format, format === 'vdi' ? 4 * SIZE : SIZE, opts);
    prepare(file);
    const readAll = (): Buffer => {
      const img = openImage(file, { readOnly: true, cache: false });
      try {
        const b = Buffer.alloc(img.size);
        img.read(0, b);
        return b;
      } finally {
        img.close();
      }
    };
    let ref = readAll();
    const size = ref.length;
    const r = rng(format.length * 1000 + name.length);
    let flushedCycles = 0;
    for (let c = 0; c < KILLS; c++) {
      const seed = 1 + c * 7919 + name.length;
      const cyc = await runChild(file, seed, 10 + Math.floor(r() * 140));
      // Expected: the state before the cycle plus every write a completed flush covered.
      const want = Buffer.from(ref);
      const uncertain = new Uint8Array(size);
      for (let i = 0; i <= cyc.started; i++) {
        const w = crashWrite(seed, i, size);
        if (i <= cyc.flushed || cyc.done) want.set(w.data, w.offset);
        else uncertain.fill(1, w.offset, w.offset + w.data.length);
      }
      if (cyc.flushed >= 0) flushedCycles++;
      // Our own check of the survivor (opened read-only: nothing repaired behind our back).
      const img = openImage(file, { readOnly: true, cache: false });
      const chk = img.check();
      img.close();
      assert.deepEqual(chk.errors, [], `cycle ${c}: boxwood check found corruption`);
      if (format === 'qcow2' || format === 'vdi' || format === 'vmdk' || format === 'vhdx') {
        const q = qemu('qemu-img', ['check', '-f', qemuFormat(format), file]);
        if (haveQemu) assert.ok(q.code === 0 || q.code === 3, `cycle ${c}: qemu-img check exit ${q.code}:\n${q.out}`);
      }
      const got = readAll();
      for (let i = 0; i < size; i++) {
        if (!uncertain[i] && got[i] !== want[i]) assert.fail(`cycle ${c}: byte ${i} is ${got[i]}, a flushed write left ${want[i]}`);
      }
      ref = got;
    }
    assert.ok(flushedCycles >= KILLS / 4, `only ${flushedCycles} cycles got as far as a flush`);
    fs.rmSync(file, { force: true });
  });
}
});
