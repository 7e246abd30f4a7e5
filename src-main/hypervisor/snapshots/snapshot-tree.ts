/**
 * The snapshot tree of one VM, as stored in vm.json: `snapshots` is a flat list of nodes with
 * parent links, `currentSnapshot` names the node the current state descends from (null before the
 * first snapshot).
 *
 * A node's `machine` is the MachineConfig at the time it was taken, with each layered disk's path
 * pointing at the frozen layer of that disk (the image that was on top when the snapshot was taken;
 * from then on nothing writes to it). Reading a snapshot's disk = reading that layer's chain.
 */
import { z } from 'zod';
import { machineConfigSchema, type VmFile } from '../vm-file';
import type { DiskAttachment, MachineConfig } from '../../../src-emulator/machine/config';

export const snapshotNodeSchema = z.looseObject({
  uuid: z.uuid(),
  name: z.string().trim().min(1).max(200),
  description: z.string().max(10_000),
  createdAt: z.iso.datetime(),
  parent: z.uuid().nullable(),
  /** True when the machine state was saved with it (restoring it resumes the running guest). */
  live: z.boolean(),
  machine: machineConfigSchema,
  /** VM-folder-relative paths. */
  stateFile: z.string().min(1).optional(),
  thumbnail: z.string().min(1).optional(),
  /** Folders of linked clones whose disks back onto this snapshot's layers. */
  linkedClones: z.array(z.string().min(1)).optional(),
});

export interface SnapshotNode {
  uuid: string;
  name: string;
  description: string;
  createdAt: string;
  parent: string | null;
  live: boolean;
  machine: MachineConfig;
  stateFile?: string;
  thumbnail?: string;
  linkedClones?: string[];
}

export class SnapshotTreeError extends Error {}

/** The tree view of vm.json's snapshot fields, validated (a bad tree is an error naming the fault). */
export class SnapshotTree {
  readonly nodes: SnapshotNode[];
  readonly current: string | null;

  constructor(nodes: SnapshotNode[], current: string | null) {
    this.nodes = nodes;
    this.current = current;
  }

  static of(vm: VmFile, file = 'vm.json'): SnapshotTree {
    const nodes: SnapshotNode[] = [];
    vm.snapshots.forEach((raw, i) => {
      const r = snapshotNodeSchema.safeParse(raw);
      if (!r.success) {
        const f = r.error.issues[0];
        throw new SnapshotTreeError(`${file}: snapshots[${i}].${f.path.join('.')}: ${f.message}`);
      }
      nodes.push(r.data as unknown as SnapshotNode);
    });
    const ids = new Set<string>();
    for (const n of nodes) {
      if (ids.has(n.uuid)) throw new SnapshotTreeError(`${file}: snapshot ${n.uuid} appears twice`);
      ids.add(n.uuid);
    }
    for (const n of nodes) {
      if (n.parent !== null && !ids.has(n.parent))
        throw new SnapshotTreeError(`${file}: snapshot '${n.name}' has a parent ${n.parent} that does not exist`);
      // Walk up: a loop in parent links would make every traversal hang.
      let p: string | null = n.parent;
      for (let d = 0; p !== null; d++) {
        if (d > nodes.length) throw new SnapshotTreeError(`${file}: the parent links of snapshot '${n.name}' form a loop`);
        p = nodes.find((x) => x.uuid === p)!.parent;
      }
    }
    const current = typeof vm.currentSnapshot === 'string' ? vm.currentSnapshot : null;
    if (current !== null && !ids.has(current)) throw new SnapshotTreeError(`${file}: currentSnapshot ${current} is not a snapshot`);
    return new SnapshotTree(nodes, current);
  }

  get(uuid: string): SnapshotNode | undefined {
    return this.nodes.find((n) => n.uuid === uuid);
  }

  /** By uuid, or by name when exactly one snapshot has it. */
  find(key: string): SnapshotNode {
    const byId = this.get(key);
    if (byId) return byId;
    const named = this.nodes.filter((n) => n.name === key);
    if (named.length === 1) return named[0];
    if (named.length > 1) throw new SnapshotTreeError(`${named.length} snapshots are named '${key}'; use its uuid`);
    throw new SnapshotTreeError(`no snapshot named or with uuid '${key}'`);
  }

  children(uuid: string | null): SnapshotNode[] {
    return this.nodes.filter((n) => n.parent === uuid);
  }

  /** Root first. */
  pathTo(uuid: string): SnapshotNode[] {
    const out: SnapshotNode[] = [];
    for (let n = this.get(uuid); n; n = n.parent ? this.get(n.parent) : undefined) out.unshift(n);
    return out;
  }

  /** vm.json fields for this tree. */
  write(vm: VmFile): void {
    vm.snapshots = this.nodes as unknown[];
    vm.currentSnapshot = this.current;
  }
}

/** The disks that get a layer per snapshot: writable hard disks and floppies with an image. */
export function isLayered(d: DiskAttachment): boolean {
  return d.path !== null && !d.readOnly && (d.kind === 'disk' || d.kind === 'floppy');
}

/** Nested form for the UI and the CLI. */
export interface SnapshotTreeView {
  uuid: string;
  name: string;
  description: string;
  createdAt: string;
  live: boolean;
  hasThumbnail: boolean;
  isCurrent: boolean;
  children: SnapshotTreeView[];
}

export function treeView(tree: SnapshotTree): SnapshotTreeView[] {
  const build = (n: SnapshotNode): SnapshotTreeView => ({
    uuid: n.uuid,
    name: n.name,
    description: n.description,
    createdAt: n.createdAt,
    live: n.live,
    hasThumbnail: !!n.thumbnail,
    isCurrent: tree.current === n.uuid,
    children: tree.children(n.uuid).map(build),
  });
  return tree.children(null).map(build);
}
