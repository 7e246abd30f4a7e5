/**
 * A VM folder with a real qcow2 disk for snapshot tests, a byte-exact model of what each disk
 * state should read, and checks: vm.json opens, the tree is valid, every image passes
 * `qemu-img check`, every snapshot and the current state read what the model says.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { createImage, openImage } from '../../../src-emulator/storage/open';
import { defaultMachineConfig } from '../../../src-emulator/machine/config';
import { readVmFile, serializeVmFile, VM_FORMAT_VERSION, type VmFile } from '../../../src-main/hypervisor/vm-file';
import { SnapshotTree, isLayered } from '../../../src-main/hypervisor/snapshots/snapshot-tree';

export const DISK_SIZE = 4 * 1024 * 1024;

export function makeVm(folder: string, disks = 1, size = DISK_SIZE): void {
  for (const sub of ['disks', 'snapshots', 'logs']) mkdirSync(join(folder, sub), { recursive: true });
  const atts = [];
  for (let i = 0; i < disks; i++) {
    createImage(join(folder, `disks/d${i}.qcow2`), 'qcow2', size);
    atts.push({ kind: 'disk' as const, path: `disks/d${i}.qcow2` });
  }
  const vm: VmFile = {
    formatVersion: VM_FORMAT_VERSION,
    uuid: randomUUID(),
    name: 'snap test',
    osType: 'other',
    createdAt: new Date().toISOString(),
    requestedCpus: 1,
    machine: defaultMachineConfig({ memoryMiB: 16, disks: atts }),
    lastState: 'stopped',
    snapshots: [],
  };
  writeFileSync(join(folder, 'vm.json'), serializeVmFile(vm));
}

const abs = (folder: string, p: string) => (isAbsolute(p) ? p : join(folder, p));

/** Reads a whole disk chain. */
export function readDisk(path: string): Uint8Array {
  const img = openImage(path, { readOnly: true, cache: false });
  try {
    const buf = new Uint8Array(img.size);
    img.read(0, buf);
    return buf;
  } finally {
    img.close();
  }
}

/** A deterministic change: a few 4 KiB..80 KiB runs at offsets chosen by `gen`. */
export function mutate(model: Uint8Array, gen: number, runs = 4): { offset: number; bytes: Uint8Array }[] {
  const writes: { offset: number; bytes: Uint8Array }[] = [];
  let x = (gen * 2654435761) >>> 0;
  const rnd = (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % n;
  };
  for (let k = 0; k < runs; k++) {
    const len = 4096 * (1 + rnd(20));
    const offset = rnd((model.length - len) / 512) * 512;
    const bytes = new Uint8Array(len);
    for (let i = 0; i < len; i++) bytes[i] = (gen * 31 + i * 7 + k) & 0xff;
    writes.push({ offset, bytes });
    model.set(bytes, offset);
  }
  return writes;
}

/** Writes generation `gen` to the VM's current disk `index` and to the model. */
export function writeCurrent(folder: string, model: Uint8Array, gen: number, index = 0, runs = 4): void {
  const vm = readVmFile(join(folder, 'vm.json'));
  const disk = vm.machine.disks.filter(isLayered)[index];
  const img = openImage(abs(folder, disk.path!), { cache: false });
  try {
    for (const w of mutate(model, gen, runs)) img.write(w.offset, w.bytes);
    img.flush();
  } finally {
    img.close();
  }
}

export function qemuCheck(path: string): number {
  const r = spawnSync('qemu-img', ['check', path], { encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 3) throw new Error(`qemu-img check ${path}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  return r.status;
}

export interface CheckReport {
  images: number;
  leaks: number;
}

/**
 * The invariants after any operation or any kill + recovery: vm.json opens; the tree is valid;
 * every referenced image exists and passes qemu-img check (0, or 3 = leaked clusters only);
 * `expected` (snapshot name -> content of disk 0, plus 'current' when known) all read back; no
 * image or state file in snapshots/ is unreferenced.
 */
export function checkVmFolder(folder: string, expected: Map<string, Uint8Array>): CheckReport {
  const vm = readVmFile(join(folder, 'vm.json'));
  const tree = SnapshotTree.of(vm);
  const refs = new Set<string>();
  const report = { images: 0, leaks: 0 };
  const checkImage = (p: string) => {
    const a = abs(folder, p);
    if (refs.has(a)) return;
    refs.add(a);
    assert.ok(existsSync(a), `${a} is referenced but missing`);
    report.images++;
    if (qemuCheck(a) === 3) report.leaks++;
  };
  for (const d of vm.machine.disks) if (d.path) checkImage(d.path);
  for (const n of tree.nodes) {
    for (const d of n.machine.disks) if (d.path) checkImage(d.path);
    if (n.stateFile) {
      assert.ok(existsSync(abs(folder, n.stateFile)), `state of ${n.name} missing`);
      refs.add(abs(folder, n.stateFile));
    }
    if (n.thumbnail) refs.add(abs(folder, n.thumbnail));
  }
  for (const [name, content] of expected) {
    const path =
      name === 'current' ? vm.machine.disks.filter(isLayered)[0].path! : tree.find(name).machine.disks.filter(isLayered)[0].path!;
    const got = readDisk(abs(folder, path));
    if (!Buffer.from(got).equals(Buffer.from(content))) {
      let i = 0;
      while (got[i] === content[i]) i++;
      assert.fail(`${name}: disk content differs at byte ${i} (${path})`);
    }
  }
  for (const f of readdirSync(join(folder, 'snapshots'))) {
    if (f === 'saved.state') continue;
    assert.ok(refs.has(join(folder, 'snapshots', f)), `snapshots/${f} is left over, referenced by nothing`);
  }
  return report;
}
