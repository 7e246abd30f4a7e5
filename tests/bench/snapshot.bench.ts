/**
 * Snapshot and saved-state figures for a 256 MiB guest: saving the machine state (saveState +
 * the state file, as a live snapshot does), restoring it into a fresh machine, and the snapshot
 * operations on the VM folder (live take = overlays + state file + vm.json; restore). RAM holds
 * 96 MiB of mixed content (text-like, random and repeated pages) over a zero background, as a
 * booted guest has; the rest is zero. Each figure is the best of three.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStateFile, writeStateFile } from '../../src-emulator/state/state-file';
import { VmSnapshots } from '../../src-main/hypervisor/snapshots/vm-snapshots';
import { makeVm } from '../unit/snapshots/vm-fixture';
import { runUntil, serialOf, tickMachine } from '../unit/state/tick-guest';
import type { BenchRow } from './types';
import { createNodeHypervisor, DEMO_IMAGE } from '../../src-main/hypervisor/node-host';
import { JsonPrefsStore } from '../../src-main/hypervisor/prefs';
import type { Hypervisor } from '../../src-main/hypervisor/hypervisor';
import { snapshotServiceOf } from '../../src-main/hypervisor/snapshots/snapshot-service';

async function until(hv: Hypervisor, id: string, state: string, ms = 180_000): Promise<void> {
  const end = Date.now() + ms;
  while (hv.summary(id).state !== state) {
    if (Date.now() > end) throw new Error(`VM not ${state} (is ${hv.summary(id).state}: ${hv.summary(id).lastError})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** End to end through the hypervisor: the demo guest in a 256 MiB VM, live snapshot and restore. */
async function liveThroughHypervisor(dir: string): Promise<BenchRow[]> {
  const hv = createNodeHypervisor({ libraryRoot: join(dir, 'lib'), prefs: new JsonPrefsStore(join(dir, 'cfg')), withDemo: false });
  try {
    // A copy: the floppy is a writable disk of this VM (and gets snapshot layers on top).
    const floppy = join(dir, 'demo-floppy.img');
    copyFileSync(DEMO_IMAGE, floppy);
    const vm = await hv.createVm({
      name: 'bench',
      osType: 'other',
      memoryMiB: 256,
      cpus: 1,
      vramMiB: 8,
      disk: { kind: 'none' },
      floppyPath: floppy,
    });
    hv.control(vm.id, 'start');
    await until(hv, vm.id, 'running');
    await new Promise((r) => setTimeout(r, 2000));
    const svc = snapshotServiceOf(hv);
    const take = await svc.take(vm.id, 'live', '', true);
    await until(hv, vm.id, 'running');
    hv.control(vm.id, 'power-off');
    await until(hv, vm.id, 'stopped');
    const t0 = performance.now();
    svc.restore(vm.id, 'live');
    const restoreMs = performance.now() - t0;
    hv.control(vm.id, 'start');
    await until(hv, vm.id, 'running');
    const resumeMs = performance.now() - t0;
    hv.control(vm.id, 'power-off');
    await until(hv, vm.id, 'stopped');
    return [
      {
        suite: 'snapshot',
        name: 'live snapshot of a running 256 MiB VM (guest stopped)',
        value: take.pausedMs ?? NaN,
        unit: 'ms',
        note: 'save state, freeze layers, restart from the state',
      },
      { suite: 'snapshot', name: 'restore live snapshot (256 MiB VM, vm.json + overlays + state)', value: restoreMs, unit: 'ms' },
      {
        suite: 'snapshot',
        name: 'restore live snapshot until the guest runs again',
        value: resumeMs,
        unit: 'ms',
        note: 'incl. guest process start',
      },
    ];
  } finally {
    hv.shutdown();
  }
}

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
    const live = await liveThroughHypervisor(dir);
    return [
      ...live,
      {
        suite: 'snapshot',
        name: 'save machine state (256 MiB guest)',
        value: save,
        unit: 'ms',
        note: `${(bytes / 1024 / 1024).toFixed(1)} MiB file, 96 MiB of RAM in use`,
      },
      { suite: 'snapshot', name: 'load machine state (256 MiB guest)', value: load, unit: 'ms' },
      { suite: 'snapshot', name: 'live snapshot take (state + overlay + vm.json)', value: take, unit: 'ms', note: '1 GiB qcow2 disk' },
      { suite: 'snapshot', name: 'snapshot restore (offline part)', value: restore, unit: 'ms' },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
