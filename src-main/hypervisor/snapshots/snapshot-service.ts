/**
 * Snapshots as the hypervisor offers them to the API, the CLI and the UI: the folder-level
 * operations of `VmSnapshots`, plus what needs the VM's lifecycle.
 *
 * A live snapshot of a running VM reuses the saved-state feature: the guest saves its machine
 * state (with a screen thumbnail) and powers off, which flushes and closes its disks; the snapshot
 * freezes the layers and copies the state; then the VM starts again from that state. The guest is
 * stopped only for that time, and every step is the crash-safe one the saved state and the
 * snapshot journal already are.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Hypervisor } from '../hypervisor';
import type { VmState } from '../lifecycle';
import type { SnapshotItem, SnapshotListing, VmSummary } from '../../api/types';
import { VmSnapshots, JOURNAL_FILE, SnapshotError, type ProgressFn } from './vm-snapshots';
import { readVmFile, VM_FILE } from '../vm-file';
import { treeView, type SnapshotTreeView } from './snapshot-tree';

export type { SnapshotItem, SnapshotListing };
export type SnapshotProgress = NonNullable<SnapshotListing['busy']>;

export interface TakeResult {
  listing: SnapshotListing;
  uuid: string;
  /** Wall time the guest was not running (live snapshot of a running VM), ms. */
  pausedMs: number | null;
}

const OFF: VmState[] = ['stopped', 'aborted', 'saved'];

/** Finishes or undoes an interrupted snapshot operation of a VM folder; quiet when there is none. */
export function recoverSnapshotOperation(folder: string): string | null {
  if (!existsSync(join(folder, JOURNAL_FILE))) return null;
  try {
    return new VmSnapshots(folder).recover();
  } catch {
    // Another process is in the middle of it, or the journal is damaged: the snapshot
    // operations report that when they are used; opening the VM still works.
    return null;
  }
}

/** Linked clones (folders that still exist) whose disks read through this VM's snapshot layers. */
export function linkedClonesOf(folder: string): string[] {
  try {
    const vm = readVmFile(join(folder, VM_FILE));
    const out: string[] = [];
    for (const n of vm.snapshots as { linkedClones?: unknown }[]) {
      for (const f of Array.isArray(n?.linkedClones) ? n.linkedClones : [])
        if (typeof f === 'string' && existsSync(join(f, VM_FILE))) out.push(f);
    }
    return out;
  } catch {
    return [];
  }
}

export class SnapshotService {
  private readonly busy = new Map<string, SnapshotProgress>();

  constructor(private readonly hv: Hypervisor) {}

  private folder(id: string): string {
    return this.hv.summary(id).folder;
  }

  private guard<T>(id: string, op: string, run: (progress: ProgressFn) => T): T {
    if (this.busy.has(id)) throw new SnapshotError(`a snapshot operation (${this.busy.get(id)!.op}) is already running on this VM`);
    const p: SnapshotProgress = { op, phase: 'starting', done: 0, total: 1 };
    this.busy.set(id, p);
    try {
      return run((phase, done, total) => {
        p.phase = phase;
        p.done = done;
        p.total = total;
      });
    } finally {
      this.busy.delete(id);
      this.hv.reloadState(id);
    }
  }

  private requireOff(id: string, what: string): void {
    const st = this.hv.summary(id).state;
    if (!OFF.includes(st)) throw new SnapshotError(`${what} needs the VM off or saved (it is ${st})`);
  }

  list(id: string): SnapshotListing {
    const folder = this.folder(id);
    const tree = new VmSnapshots(folder).tree();
    const thumb = (uuid: string): string | null => {
      const n = tree.get(uuid);
      if (!n?.thumbnail) return null;
      const p = isAbsolute(n.thumbnail) ? n.thumbnail : join(folder, n.thumbnail);
      try {
        return `data:image/png;base64,${readFileSync(p).toString('base64')}`;
      } catch {
        return null;
      }
    };
    const withThumbs = (v: SnapshotTreeView): SnapshotItem => ({ ...v, thumbnail: thumb(v.uuid), children: v.children.map(withThumbs) });
    let currentChanged = true;
    try {
      currentChanged = new VmSnapshots(folder).currentChanged();
    } catch {
      /* an image that does not open: assume changes, so the user is asked */
    }
    return { vmId: id, current: tree.current, snapshots: treeView(tree).map(withThumbs), busy: this.busy.get(id) ?? null, currentChanged };
  }

  /**
   * Takes a snapshot. A running or paused VM needs `live` (its machine state goes with the
   * snapshot, and it runs on afterwards); a saved VM's snapshot includes its saved state.
   */
  async take(id: string, name: string, description = '', live = false): Promise<TakeResult> {
    const state = this.hv.summary(id).state;
    let pausedMs: number | null = null;
    let uuid: string;
    if (state === 'running' || state === 'paused') {
      if (!live) throw new SnapshotError('the VM is running: take a live snapshot (with its machine state), or power it off first');
      if (this.busy.has(id)) throw new SnapshotError('a snapshot operation is already running on this VM');
      const t0 = Date.now();
      this.hv.control(id, 'save-state');
      const after = await this.waitForRest(id);
      if (after !== 'saved')
        throw new SnapshotError(
          `saving the machine state for the snapshot failed (the VM is ${after}: ${this.hv.summary(id).lastError ?? 'no reason given'})`,
        );
      uuid = this.guard(id, 'take', () => new VmSnapshots(this.folder(id)).take(name, { description }).uuid);
      this.hv.control(id, 'start');
      await this.waitForStates(id, ['running', 'aborted', 'stopped']);
      pausedMs = Date.now() - t0;
    } else if (OFF.includes(state)) {
      if (live && state !== 'saved') throw new SnapshotError(`the VM is ${state}: there is no machine state for a live snapshot`);
      uuid = this.guard(id, 'take', () => new VmSnapshots(this.folder(id)).take(name, { description }).uuid);
    } else {
      throw new SnapshotError(`cannot take a snapshot while the VM is ${state}`);
    }
    return { listing: this.list(id), uuid, pausedMs };
  }

  /** Restores a snapshot (the VM must be off; a saved state is discarded — the UI asks first). */
  restore(id: string, key: string): SnapshotListing {
    this.requireOff(id, 'restoring a snapshot');
    this.guard(id, 'restore', () => new VmSnapshots(this.folder(id)).restore(key));
    return this.list(id);
  }

  /**
   * Deletes a snapshot, merging its layers into its children in the background (the merge yields
   * to the event loop; `list` shows its progress meanwhile).
   */
  async delete(id: string, key: string): Promise<SnapshotListing> {
    this.requireOff(id, 'deleting a snapshot');
    if (this.busy.has(id)) throw new SnapshotError(`a snapshot operation (${this.busy.get(id)!.op}) is already running on this VM`);
    const p: SnapshotProgress = { op: 'delete', phase: 'starting', done: 0, total: 1 };
    this.busy.set(id, p);
    this.hv.emit('changed');
    try {
      await new VmSnapshots(this.folder(id)).deleteInBackground(key, (phase, done, total) => {
        p.phase = phase;
        p.done = done;
        p.total = total;
      });
    } finally {
      this.busy.delete(id);
      this.hv.reloadState(id);
    }
    return this.list(id);
  }

  rename(id: string, key: string, name: string): SnapshotListing {
    new VmSnapshots(this.folder(id)).rename(key, name);
    return this.list(id);
  }

  edit(id: string, key: string, changes: { name?: string; description?: string }): SnapshotListing {
    const vs = new VmSnapshots(this.folder(id));
    if (changes.name !== undefined) vs.rename(key, changes.name);
    if (changes.description !== undefined) vs.describe(key, changes.description);
    return this.list(id);
  }

  describe(id: string, key: string, description: string): SnapshotListing {
    new VmSnapshots(this.folder(id)).describe(key, description);
    return this.list(id);
  }

  /**
   * Clones from a snapshot, or (key null, the VM off) from the current state, into the library.
   * The copy of a full clone runs in the background (`list` shows its progress).
   */
  async clone(id: string, key: string | null, name: string, linked: boolean): Promise<VmSummary> {
    if (key === null) this.requireOff(id, 'cloning the current state');
    if (this.busy.has(id)) throw new SnapshotError(`a snapshot operation (${this.busy.get(id)!.op}) is already running on this VM`);
    const parentDir = this.hv.hostInfo().libraryPath;
    const p: SnapshotProgress = { op: 'clone', phase: 'starting', done: 0, total: 1 };
    this.busy.set(id, p);
    let folder: string;
    try {
      folder = await new VmSnapshots(this.folder(id)).cloneInBackground(key, name, {
        linked,
        parentDir,
        onProgress: (phase, done, total) => {
          p.phase = phase;
          p.done = done;
          p.total = total;
        },
      });
    } finally {
      this.busy.delete(id);
      this.hv.reloadState(id);
    }
    const entry = this.hv.list().find((v) => v.folder === resolve(folder));
    if (!entry || !entry.ok)
      throw new SnapshotError(`the clone was made in ${folder} but does not open${entry && !entry.ok ? `: ${entry.error}` : ''}`);
    return entry;
  }

  private waitForRest(id: string): Promise<VmState> {
    return this.waitForStates(id, ['saved', 'stopped', 'aborted']);
  }

  private waitForStates(id: string, states: VmState[], ms = 120_000): Promise<VmState> {
    return new Promise((ok, fail) => {
      const check = () => {
        const s = this.hv.summary(id).state;
        if (states.includes(s)) {
          this.hv.off('changed', check);
          clearTimeout(t);
          ok(s);
        }
      };
      const t = setTimeout(() => {
        this.hv.off('changed', check);
        fail(new SnapshotError(`the VM did not reach ${states.join('/')} within ${ms / 1000} s`));
      }, ms);
      this.hv.on('changed', check);
      check();
    });
  }
}

const services = new WeakMap<Hypervisor, SnapshotService>();

/** The one snapshot service of a hypervisor. */
export function snapshotServiceOf(hv: Hypervisor): SnapshotService {
  let s = services.get(hv);
  if (!s) services.set(hv, (s = new SnapshotService(hv)));
  return s;
}
