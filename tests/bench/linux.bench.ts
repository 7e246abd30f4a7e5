/**
 * Boots Debian's 686 kernel with the busybox initramfs (256 MiB, `console=ttyS0 quiet boxwood.bench`)
 * in Boxwood, v86 (npm package, Debian's SeaBIOS) and `qemu-system-i386 -accel tcg`, and times the
 * markers /init prints on the serial port: boot (process start to BOXWOOD-INIT-OK), a busybox `sh`
 * loop of 200000 iterations, and `dd if=/dev/zero bs=1M count=32 | md5sum`. Every emulator is timed
 * by the same host clock on the same markers, so the ratios compare like with like.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchRow } from './types';
import { guestCacheDir, repoRoot } from '../support/guests';

const MARKERS = ['BOXWOOD-INIT-OK', 'BENCH-LOOP-START', 'BENCH-LOOP-END', 'BENCH-DD-START', 'BENCH-DD-END'] as const;
type Marker = (typeof MARKERS)[number];

interface Timing {
  boot: number;
  loop: number;
  dd: number;
}

/** Runs `cmd`, timestamps each marker on its stdout, kills it after the last one. */
function timeMarkers(cmd: string, args: string[], timeoutS: number): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const seen = new Map<Marker, number>();
    const child = spawn(cmd, args, { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd}: timed out after ${timeoutS}s; last output: ${out.slice(-400)}`));
    }, timeoutS * 1000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      for (const m of MARKERS) if (!seen.has(m) && out.includes(m)) seen.set(m, performance.now());
      if (seen.has('BENCH-DD-END')) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        const at = (m: Marker) => seen.get(m)!;
        resolve({
          boot: (at('BOXWOOD-INIT-OK') - t0) / 1000,
          loop: (at('BENCH-LOOP-END') - at('BENCH-LOOP-START')) / 1000,
          dd: (at('BENCH-DD-END') - at('BENCH-DD-START')) / 1000,
        });
      }
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString('latin1')));
    child.on('exit', (code) => {
      if (!seen.has('BENCH-DD-END')) {
        clearTimeout(timer);
        reject(new Error(`${cmd} exited (${code}) before the benchmark finished; last output: ${out.slice(-400)}`));
      }
    });
  });
}

export async function run(): Promise<BenchRow[]> {
  const dir = join(guestCacheDir(), 'i386');
  const kernel = join(dir, 'vmlinuz-686');
  const initrd = join(dir, 'initramfs.cpio.gz');
  if (!existsSync(kernel) || !existsSync(initrd)) throw new Error(`linux bench: guests missing in ${dir}: run 'npm run guests'`);
  const cmdline = 'console=ttyS0 quiet boxwood.bench';
  const runs: { name: string; run: () => Promise<Timing> }[] = [
    {
      name: 'boxwood',
      run: () =>
        timeMarkers(process.execPath, [join(repoRoot, 'bin', 'boxwood.mjs'), 'run', '--memory', '256', '--kernel', kernel, '--initrd', initrd,
          '--append', cmdline, '--serial', 'stdio', '--until', 'BENCH-DD-END', '--timeout', '1200'], 1260),
    },
    {
      // The same without the decoded-instruction cache: the ratio is what the cache buys.
      name: 'boxwood-interpreter',
      run: () =>
        timeMarkers(process.execPath, [join(repoRoot, 'bin', 'boxwood.mjs'), 'run', '--interpret', '--memory', '256', '--kernel', kernel, '--initrd', initrd,
          '--append', cmdline, '--serial', 'stdio', '--until', 'BENCH-DD-END', '--timeout', '1200'], 1260),
    },
    {
      name: 'v86',
      run: () => timeMarkers(process.execPath, [join(repoRoot, 'tests', 'bench', 'support', 'v86-runner.mjs'), kernel, initrd, cmdline, '256'], 600),
    },
  ];
  if (existsSync('/usr/bin/qemu-system-i386')) {
    runs.push({
      name: 'qemu-tcg',
      run: () =>
        timeMarkers('qemu-system-i386', ['-accel', 'tcg', '-m', '256', '-kernel', kernel, '-initrd', initrd, '-append', cmdline,
          '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot'], 600),
    });
  }
  const results = new Map<string, Timing | Error>();
  for (const r of runs) {
    try {
      results.set(r.name, await r.run());
    } catch (err) {
      results.set(r.name, err as Error);
    }
  }
  const rows: BenchRow[] = [];
  const mine = results.get('boxwood');
  for (const [name, t] of results) {
    for (const k of ['boot', 'loop', 'dd'] as const) {
      const label = { boot: 'boot to /init', loop: 'sh loop 200000', dd: 'dd 32 MiB | md5sum' }[k];
      if (t instanceof Error) {
        if (k === 'boot') rows.push({ suite: 'linux-686', name: `${name}: ${label}`, value: NaN, unit: 's', note: `failed: ${t.message.split('\n')[0].slice(0, 160)}` });
        continue;
      }
      const note = name !== 'boxwood' && mine && !(mine instanceof Error) ? `boxwood/${name} = ${(mine[k] / t[k]).toFixed(2)}` : undefined;
      rows.push({ suite: 'linux-686', name: `${name}: ${label}`, value: t[k], unit: 's', note });
    }
  }
  return rows;
}
