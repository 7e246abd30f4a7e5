/**
 * Snapshot and saved-state figures for a 256 MiB guest: saving the machine state (saveState +
 * the state file, as a live snapshot does), restoring it into a fresh machine, and the snapshot
 * operations on the VM folder (live take = overlays + state file + vm.json; restore). RAM holds
 * 96 MiB of mixed content (text-like, random and repeated pages) over a zero background, as a
 * booted guest has; the rest is zero. Each figure is the best of three.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStateFile, writeStateFile } from '../../src-emulator/state/state-file';
import { VmSnapshots } from '../../src-main/hypervisor/snapshots/vm-snapshots';
import { makeVm } from '../unit/snapshots/vm-fixture';
import { runUntil, serialOf, tickMachine } from '../unit/state/tick-guest';
import type { BenchRow } from './types';

function fillRam(ram: Uint8Array): void {
  let x = 88172645;
  const words = 'the quick brown fox jumps over the lazy dog 0123456789 ';
  for (let page = 0; page < (96 * 1024 * 1024) / 4096; page++) {
    const at = (page * 4096 * 2) % (ram.length - 4096); // every other page: the rest stays zero
    const kind = page % 3;
    for (let i = 0; i < 4096; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      ram[at + i] = kind === 0 ? words.charCodeAt(i % words.length) : kind === 1 ? x & 0xff : (i >> 4) & 0xff;
    }
  }
}

function best(n: number, fn: () => void): number {
  let b = Infinity;
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn();
    b = Math.min(b, performance.now() - t);
  }
  return b;
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-snapbench-'));
  try {
    const m = tickMachine(256);
    const out = serialOf(m);
    runUntil(m, () => out.text.length >= 10);
    fillRam(m.mem.ram);
    const file = join(dir, 'bench.state');
    let bytes = 0;
    const save = best(3, () => {
      bytes = writeStateFile(file, m.saveState());
    });
    const fresh = tickMachine(256);
    const load = best(3, () => fresh.loadState(readStateFile(file).state));
    const folder = join(dir, 'vm');
    makeVm(folder, 1, 1024 * 1024 * 1024);
    const vs = new VmSnapshots(folder);
    let n = 0;
    const take = best(3, () => void vs.take(`s${n++}`, { writeState: (p) => writeStateFile(p, m.saveState()) }));
    const restore = best(3, () => void vs.restore('s0'));
    return [
      { suite: 'snapshot', name: 'save machine state (256 MiB guest)', value: save, unit: 'ms', note: `${(bytes / 1024 / 1024).toFixed(1)} MiB file, 96 MiB of RAM in use` },
      { suite: 'snapshot', name: 'load machine state (256 MiB guest)', value: load, unit: 'ms' },
      { suite: 'snapshot', name: 'live snapshot take (state + overlay + vm.json)', value: take, unit: 'ms', note: '1 GiB qcow2 disk' },
      { suite: 'snapshot', name: 'snapshot restore (offline part)', value: restore, unit: 'ms' },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
