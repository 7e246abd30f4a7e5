/**
 * Snapshot operations on one VM folder: take, restore, delete (merge), rename, describe, clone.
 *
 * Disks are layers. Taking a snapshot freezes the current top layer of each disk and starts a new
 * qcow2 overlay in `snapshots/` on top of it; restoring starts a fresh overlay on the snapshot's
 * layer and throws the old current overlay away; deleting streams the snapshot's layer into each
 * image that backs onto it (`rebaseImage`: content-preserving at every instant) and then removes
 * the layer; cloning converts a chain into a standalone image (full) or starts an overlay on it
 * (linked).
 *
 * Crash safety: every operation that touches more than one file
 *   1. writes an intent journal (`snapshot-journal.json`, atomically) naming every file it will
 *      create or remove and every image it will change,
 *   2. performs idempotent steps (new files only, or content-preserving rebases),
 *   3. commits by replacing vm.json atomically,
 *   4. cleans up what the new vm.json no longer references, and removes the journal.
 * `recover()` (run before every operation and when a VM folder is opened) finds a journal and
 * either rolls back (vm.json not yet committed: remove what was created) or rolls forward
 * (committed: finish the cleanup). An interrupted delete resumes: its rebases are redone, which
 * copies only what is still missing, then it commits. A kill at any moment therefore leaves a VM
 * folder that opens, whose vm.json references only complete images, and no snapshot that was
 * complete before the kill changes content.
 */
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { writeFileAtomic } from '../atomic-write';
import { readVmFile, serializeVmFile, VM_FILE, type VmFile } from '../vm-file';
import { isLayered, SnapshotTree, SnapshotTreeError, treeView, type SnapshotNode, type SnapshotTreeView } from './snapshot-tree';
import { createImage, detectFormat, openImage, type ImageFormat } from '../../../src-emulator/storage/open';
import { chainStatus, rebaseImage } from '../../../src-emulator/storage/convert';
import { isZero } from '../../../src-emulator/storage/host-file';
import type { DiskImage } from '../../../src-emulator/storage/disk-image';
import { Qcow2Image } from '../../../src-emulator/storage/qcow2';
import type { MachineConfig } from '../../../src-emulator/machine/config';
import { readStateExtra } from '../../../src-emulator/state/state-file';

export const JOURNAL_FILE = 'snapshot-journal.json';
export const LOCK_FILE = '.snapshot.lock';
/** Where a VM's saved state lives (the hypervisor's saved-state feature uses the same file). */
export const SAVED_STATE = 'snapshots/saved.state';

export type ProgressFn = (phase: string, done: number, total: number) => void;

type Journal =
  | { op: 'take'; snap: string; files: string[] }
  | { op: 'restore'; snap: string; overlays: string[]; discard: string[]; live: boolean }
  | { op: 'delete'; snap: string; rebases: { child: string; backing: string | null; format?: ImageFormat }[]; discard: string[] }
  | { op: 'clone'; snap: string | null; tmp: string; final: string; linked: boolean };

export interface TakeOptions {
  description?: string;
  /** Live snapshot: writes the machine state to the given path (the guest's state writer). */
  writeState?: (absPath: string) => void;
  /** PNG bytes of the screen. */
  thumbnail?: Uint8Array;
}

export interface CloneOptions {
  linked?: boolean;
  /** Folder that will hold the clone's folder; default: next to the source VM. */
  parentDir?: string;
  onProgress?: ProgressFn;
}

/** Bytes of free space kept in reserve beyond what a merge needs. */
const FREE_SPACE_MARGIN = 64 * 1024 * 1024;

export class SnapshotError extends Error {}

export class VmSnapshots {
  readonly folder: string;
  /** For tests of the free-space check. */
  freeBytes: (dir: string) => number = (dir) => {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  };
  /** Test hook: called between the steps of an operation (the kill test stops there). */
  step: (what: string) => void = () => {};

  constructor(folder: string) {
    this.folder = resolve(folder);
  }

  // ------------------------------------------------------------------------------- reading

  private vmPath(): string {
    return join(this.folder, VM_FILE);
  }

  private abs(p: string): string {
    return isAbsolute(p) ? p : join(this.folder, p);
  }

  /** VM-folder-relative when inside it (so a copied folder still works), else absolute. */
  private rel(absPath: string): string {
    const r = relative(this.folder, absPath);
    return r.startsWith('..') || isAbsolute(r) ? absPath : r.split(sep).join('/');
  }

  private inside(absPath: string): boolean {
    const r = relative(this.folder, absPath);
    return !!r && !r.startsWith('..') && !isAbsolute(r);
  }

  /** The tree as stored (after recovering an interrupted operation). */
  tree(): SnapshotTree {
    if (!this.busy) {
      try {
        this.withLock(() => this.recoverLocked());
      } catch (err) {
        // Another process is operating on this VM: show the tree as vm.json has it meanwhile.
        if (!(err instanceof SnapshotError) || !/another snapshot operation/.test(err.message)) throw err;
      }
    }
    return SnapshotTree.of(readVmFile(this.vmPath()), this.vmPath());
  }

  /**
   * Whether the current state differs from its snapshot: a saved machine state, or any data in
   * the current overlays (without a snapshot, everything is "changed").
   */
  currentChanged(): boolean {
    const { vm, tree } = this.load();
    if (vm.lastState === 'saved') return true;
    if (tree.current === null) return true;
    for (const d of vm.machine.disks) {
      if (!isLayered(d)) continue;
      const img = openImage(this.abs(d.path!), { readOnly: true, noBacking: true, cache: false });
      try {
        for (let pos = 0; pos < img.size;) {
          const st = img.blockStatus(pos, img.size - pos);
          if (st.status !== 'unallocated') return true;
          pos += Math.max(1, st.length);
        }
      } finally {
        img.close();
      }
    }
    return false;
  }

  view(): SnapshotTreeView[] {
    return treeView(this.tree());
  }

  private load(): { vm: VmFile; tree: SnapshotTree } {
    const vm = readVmFile(this.vmPath());
    return { vm, tree: SnapshotTree.of(vm, this.vmPath()) };
  }

  private commit(mutate: (vm: VmFile, tree: SnapshotTree) => SnapshotTree | void): VmFile {
    const { vm, tree } = this.load();
    const next = structuredClone(vm);
    const t = mutate(next, tree);
    if (t) t.write(next);
    writeFileAtomic(this.vmPath(), serializeVmFile(next));
    return next;
  }

  // ------------------------------------------------------------------------- lock, journal

  /** Folders this process is operating on right now (a background delete holds one across awaits). */
  private static readonly held = new Set<string>();

  private acquireLock(): void {
    if (VmSnapshots.held.has(this.folder)) throw new SnapshotError(`${this.folder}: another snapshot operation is running on this VM`);
    const lock = join(this.folder, LOCK_FILE);
    for (let attempt = 0; ; attempt++) {
      try {
        const fd = openSync(lock, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw err;
        let pid = NaN;
        try {
          pid = Number(readFileSync(lock, 'utf8'));
        } catch {
          /* vanished */
        }
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
          throw new SnapshotError(`${this.folder}: another snapshot operation is running (process ${pid})`);
        }
        // Left behind by a process that died: take it over.
        rmSync(lock, { force: true });
      }
    }
    VmSnapshots.held.add(this.folder);
  }

  private releaseLock(): void {
    VmSnapshots.held.delete(this.folder);
    rmSync(join(this.folder, LOCK_FILE), { force: true });
  }

  private withLock<T>(fn: () => T): T {
    this.acquireLock();
    try {
      return fn();
    } finally {
      this.releaseLock();
    }
  }

  /** True while this process runs an operation on the folder (reads then skip recovery). */
  get busy(): boolean {
    return VmSnapshots.held.has(this.folder);
  }

  private journalPath(): string {
    return join(this.folder, JOURNAL_FILE);
  }

  private writeJournal(j: Journal): void {
    writeFileAtomic(this.journalPath(), JSON.stringify(j, null, 1));
  }

  private readJournal(): Journal | null {
    if (!existsSync(this.journalPath())) return null;
    try {
      return JSON.parse(readFileSync(this.journalPath(), 'utf8')) as Journal;
    } catch {
      // Written atomically, so it is never torn; unreadable means someone else damaged it.
      throw new SnapshotError(`${this.journalPath()}: the operation journal is unreadable; move it away to open the VM`);
    }
  }

  private endJournal(): void {
    rmSync(this.journalPath(), { force: true });
  }

  /** Finishes or undoes an interrupted operation. Returns what it did, or null. */
  recover(onProgress?: ProgressFn): string | null {
    return this.withLock(() => this.recoverLocked(onProgress));
  }

  private recoverLocked(onProgress?: ProgressFn): string | null {
    const j = this.readJournal();
    this.removeTemporaries();
    if (!j) return null;
    const { vm, tree } = this.load();
    let done: string;
    switch (j.op) {
      case 'take':
        if (tree.get(j.snap)) done = `take of snapshot ${j.snap} was complete`;
        else {
          for (const f of j.files) this.removeIfUnreferenced(f);
          done = `take of snapshot ${j.snap} rolled back`;
        }
        break;
      case 'restore': {
        const committed = tree.current === j.snap && j.overlays.every((o) => vm.machine.disks.some((d) => d.path === o));
        if (committed) {
          this.finishRestore(j);
          done = `restore of snapshot ${j.snap} finished`;
        } else {
          for (const f of j.overlays) this.removeIfUnreferenced(f);
          done = `restore of snapshot ${j.snap} rolled back`;
        }
        break;
      }
      case 'delete':
        if (tree.get(j.snap)) {
          this.runDelete(j, onProgress);
          done = `delete of snapshot ${j.snap} resumed and finished`;
        } else {
          for (const f of j.discard) this.removeIfUnreferenced(f);
          done = `delete of snapshot ${j.snap} finished`;
        }
        break;
      case 'clone':
        if (existsSync(join(j.final, VM_FILE))) {
          this.finishClone(j);
          done = `clone into ${j.final} finished`;
        } else {
          rmSync(j.tmp, { recursive: true, force: true });
          done = `clone into ${j.final} rolled back`;
        }
        break;
      default:
        throw new SnapshotError(`${this.journalPath()}: unknown operation ${(j as { op: string }).op}`);
    }
    this.endJournal();
    return done;
  }

  /**
   * Temporary files of atomic writes that a kill left behind. Their names carry the writer's PID
   * (`.NAME.PID.RANDOM.tmp`): a file whose writer still runs is a write in progress (a guest
   * saving its state while the UI lists snapshots) and is left alone.
   */
  private removeTemporaries(): void {
    for (const dir of [this.folder, join(this.folder, 'snapshots')]) {
      let names: string[] = [];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const n of names) {
        if (!n.startsWith('.') || !n.endsWith('.tmp')) continue;
        const pid = Number(/\.(\d+)\.[0-9a-f]+\.tmp$/.exec(n)?.[1] ?? NaN);
        if (Number.isInteger(pid) && pid > 0 && alive(pid)) continue;
        rmSync(join(dir, n), { force: true });
      }
    }
  }

  /** Every file vm.json references (current disks, every node's layers, states, thumbnails). */
  private referenced(): Set<string> {
    const { vm, tree } = this.load();
    const refs = new Set<string>();
    for (const d of vm.machine.disks) if (d.path) refs.add(this.abs(d.path));
    for (const n of tree.nodes) {
      for (const d of n.machine.disks) if (d.path) refs.add(this.abs(d.path));
      if (n.stateFile) refs.add(this.abs(n.stateFile));
      if (n.thumbnail) refs.add(this.abs(n.thumbnail));
    }
    return refs;
  }

  /** Removes a file this feature made, unless vm.json still needs it; never outside the folder. */
  private removeIfUnreferenced(path: string, refs = this.referenced()): void {
    const a = this.abs(path);
    if (!this.inside(a) || refs.has(a)) return;
    rmSync(a, { force: true });
  }

  // ---------------------------------------------------------------------------- take

  /**
   * Takes a snapshot. Offline (the VM is off), or live when `writeState` is given (the caller has
   * paused the guest and flushed its disks). A VM in the saved state gets a live snapshot made
   * from its saved state.
   */
  take(name: string, opts: TakeOptions = {}): SnapshotNode {
    return this.withLock(() => {
      this.recoverLocked();
      const { vm, tree } = this.load();
      const snap = randomUUID();
      const layered = vm.machine.disks.map((d, i) => (isLayered(d) ? i : -1)).filter((i) => i >= 0);
      const overlays = layered.map(() => `snapshots/${randomUUID()}.qcow2`);
      const fromSaved = !opts.writeState && vm.lastState === 'saved' && existsSync(this.abs(SAVED_STATE));
      const live = !!opts.writeState || fromSaved;
      const stateFile = live ? `snapshots/${snap}.state` : undefined;
      const thumbBytes = opts.thumbnail ?? (fromSaved ? savedThumbnail(this.abs(SAVED_STATE)) : null);
      const thumbnail = thumbBytes ? `snapshots/${snap}.png` : undefined;
      mkdirSync(join(this.folder, 'snapshots'), { recursive: true });
      this.writeJournal({ op: 'take', snap, files: [...overlays, ...(stateFile ? [stateFile] : []), ...(thumbnail ? [thumbnail] : [])] });
      this.step('take:journal');
      layered.forEach((di, k) => {
        this.createOverlay(overlays[k], vm.machine.disks[di].path!);
        this.step('take:overlay');
      });
      if (stateFile) {
        if (opts.writeState) opts.writeState(this.abs(stateFile));
        else copyAtomic(this.abs(SAVED_STATE), this.abs(stateFile));
        this.step('take:state');
      }
      if (thumbnail) writeFileAtomic(this.abs(thumbnail), thumbBytes!);
      const node: SnapshotNode = {
        uuid: snap,
        name: name.trim(),
        description: opts.description ?? '',
        createdAt: new Date().toISOString(),
        parent: tree.current,
        live,
        machine: structuredClone(vm.machine),
        ...(stateFile ? { stateFile } : {}),
        ...(thumbnail ? { thumbnail } : {}),
      };
      if (!node.name) throw new SnapshotError('a snapshot needs a name');
      this.commit((next) => {
        layered.forEach((di, k) => (next.machine.disks[di].path = overlays[k]));
        return new SnapshotTree([...tree.nodes, node], snap);
      });
      this.step('take:commit');
      this.endJournal();
      return node;
    });
  }

  /** A new, empty qcow2 on top of `layer` (VM-relative or absolute), at `overlay` (VM-relative). */
  private createOverlay(overlay: string, layer: string): void {
    const layerAbs = this.abs(layer);
    const target = this.abs(overlay);
    const img = openImage(layerAbs, { readOnly: true, cache: false });
    let size: number;
    let format: ImageFormat;
    try {
      size = img.size;
      format = img.format;
    } finally {
      img.close();
    }
    rmSync(target, { force: true });
    createImage(target, 'qcow2', size, { backing: backingRef(target, layerAbs, this.folder), backingFormat: format });
  }

  // -------------------------------------------------------------------------- restore

  /**
   * Restores a snapshot: the VM (which must be off; its saved state, if any, is discarded) gets a
   * fresh overlay on each of the snapshot's layers and the snapshot's settings; a live snapshot
   * leaves the VM 'saved' so that starting it resumes the guest where the snapshot was taken.
   */
  restore(key: string): SnapshotNode {
    return this.withLock(() => {
      this.recoverLocked();
      const { vm, tree } = this.load();
      const node = tree.find(key);
      const layered = node.machine.disks.map((d, i) => (isLayered(d) ? i : -1)).filter((i) => i >= 0);
      const overlays = layered.map(() => `snapshots/${randomUUID()}.qcow2`);
      const nodeLayers = new Set(tree.nodes.flatMap((n) => n.machine.disks.filter((d) => d.path).map((d) => this.abs(d.path!))));
      const discard = vm.machine.disks
        .filter((d) => isLayered(d) && d.path && this.inside(this.abs(d.path)) && !nodeLayers.has(this.abs(d.path)))
        .map((d) => d.path!)
        .filter((p) => p.startsWith('snapshots/'));
      const j: Journal = { op: 'restore', snap: node.uuid, overlays, discard, live: node.live };
      this.writeJournal(j);
      this.step('restore:journal');
      layered.forEach((di, k) => {
        this.createOverlay(overlays[k], node.machine.disks[di].path!);
        this.step('restore:overlay');
      });
      this.commit((next) => {
        next.machine = structuredClone(node.machine);
        layered.forEach((di, k) => (next.machine.disks[di].path = overlays[k]));
        next.lastState = node.live ? 'saved' : 'stopped';
        delete next.lastError;
        return new SnapshotTree(tree.nodes, node.uuid);
      });
      this.step('restore:commit');
      this.finishRestore(j);
      this.endJournal();
      return node;
    });
  }

  private finishRestore(j: Journal & { op: 'restore' }): void {
    const { tree } = this.load();
    const node = tree.get(j.snap);
    if (j.live && node?.stateFile) copyAtomic(this.abs(node.stateFile), this.abs(SAVED_STATE));
    else rmSync(this.abs(SAVED_STATE), { force: true });
    this.step('restore:state');
    const refs = this.referenced();
    for (const f of j.discard) this.removeIfUnreferenced(f, refs);
  }

  // --------------------------------------------------------------------------- delete

  /**
   * Deletes a snapshot without changing what any other snapshot or the current state reads: its
   * layer of each disk is streamed into every image that backs onto it, then removed. Checks the
   * free space first. The VM must be off or saved (the current overlay may be one of the images
   * that absorb the layer; its content does not change, so a saved state stays valid).
   */
  delete(key: string, onProgress?: ProgressFn): void {
    this.withLock(() => {
      this.recoverLocked(onProgress);
      const j = this.prepareDelete(key);
      this.writeJournal(j);
      this.step('delete:journal');
      this.runDelete(j, onProgress);
      this.endJournal();
    });
  }

  /**
   * `delete` for the app: the merge copies in slices and yields to the event loop between them,
   * so the hypervisor stays responsive and can report progress. Same journal, same recovery.
   */
  async deleteInBackground(key: string, onProgress?: ProgressFn): Promise<void> {
    this.acquireLock();
    try {
      this.recoverLocked(onProgress);
      const j = this.prepareDelete(key);
      this.writeJournal(j);
      this.step('delete:journal');
      for (let i = 0; i < j.rebases.length; i++) {
        const r = j.rebases[i];
        await rebaseYielding(r.child, r.backing, r.format, (done, total) =>
          onProgress?.(`merging layer ${i + 1} of ${j.rebases.length}`, done, total),
        );
        this.step('delete:rebase');
      }
      this.finishDelete(j, onProgress);
      this.endJournal();
    } finally {
      this.releaseLock();
    }
  }

  /** Checks and plans a delete: the journal entry, or an error that changes nothing. */
  private prepareDelete(key: string): Journal & { op: 'delete' } {
    const { vm, tree } = this.load();
    const node = tree.find(key);
    const clones = (node.linkedClones ?? []).filter((f) => existsSync(join(f, VM_FILE)));
    if (clones.length) {
      throw new SnapshotError(`snapshot '${node.name}' has linked clones (${clones.join(', ')}); delete or fully clone them first`);
    }
    const layers = new Set(node.machine.disks.filter(isLayered).map((d) => this.abs(d.path!)));
    // The images that back onto this snapshot's layers, found from the images themselves.
    const candidates = new Set<string>();
    for (const c of tree.children(node.uuid)) for (const d of c.machine.disks) if (isLayered(d)) candidates.add(this.abs(d.path!));
    for (const d of vm.machine.disks) if (isLayered(d)) candidates.add(this.abs(d.path!));
    const rebases: (Journal & { op: 'delete' })['rebases'] = [];
    let need = 0;
    for (const child of candidates) {
      const b = backingOf(child);
      if (!b || !layers.has(b)) continue;
      const grand = backingOf(b);
      const grandFormat = grand ? detectFormat(grand) : undefined;
      rebases.push({ child, backing: grand ? backingRef(child, grand, this.folder) : null, format: grandFormat });
      need += allocatedBytes(b);
    }
    const free = this.freeBytes(this.folder);
    if (need + FREE_SPACE_MARGIN > free) {
      throw new SnapshotError(
        `deleting snapshot '${node.name}' needs about ${mib(need + FREE_SPACE_MARGIN)} MiB of free space to merge its layers; ${mib(free)} MiB are free`,
      );
    }
    const discard = [...layers].filter((l) => this.inside(l)).map((l) => this.rel(l));
    if (node.stateFile) discard.push(node.stateFile);
    if (node.thumbnail) discard.push(node.thumbnail);
    return { op: 'delete', snap: node.uuid, rebases, discard };
  }

  /** Idempotent: a rebase already done copies nothing the second time. */
  private runDelete(j: Journal & { op: 'delete' }, onProgress?: ProgressFn): void {
    j.rebases.forEach((r, i) => {
      rebaseImage(r.child, r.backing, r.format, (done, total) =>
        onProgress?.(`merging layer ${i + 1} of ${j.rebases.length}`, done, total),
      );
      this.step('delete:rebase');
    });
    this.finishDelete(j, onProgress);
  }

  private finishDelete(j: Journal & { op: 'delete' }, onProgress?: ProgressFn): void {
    this.commit((_next, tree) => {
      const node = tree.get(j.snap);
      if (!node) return;
      const nodes = tree.nodes.filter((n) => n.uuid !== j.snap).map((n) => (n.parent === j.snap ? { ...n, parent: node.parent } : n));
      return new SnapshotTree(nodes, tree.current === j.snap ? node.parent : tree.current);
    });
    this.step('delete:commit');
    const refs = this.referenced();
    for (const f of j.discard) this.removeIfUnreferenced(f, refs);
    onProgress?.('done', 1, 1);
  }

  // -------------------------------------------------------------------- rename, describe

  rename(key: string, name: string): SnapshotNode {
    if (!name.trim()) throw new SnapshotError('a snapshot needs a name');
    return this.edit(key, (n) => (n.name = name.trim()));
  }

  describe(key: string, description: string): SnapshotNode {
    return this.edit(key, (n) => (n.description = description));
  }

  private edit(key: string, change: (n: SnapshotNode) => void): SnapshotNode {
    return this.withLock(() => {
      this.recoverLocked();
      let out!: SnapshotNode;
      this.commit((_vm, tree) => {
        const uuid = tree.find(key).uuid;
        const nodes = tree.nodes.map((n) => {
          if (n.uuid !== uuid) return n;
          out = structuredClone(n);
          change(out);
          return out;
        });
        return new SnapshotTree(nodes, tree.current);
      });
      return out;
    });
  }

  // ---------------------------------------------------------------------------- clone

  /**
   * Clones the VM as it was at snapshot `key` (null: its current state; the VM must be off) into
   * a new VM folder named after `newName`. Full: each disk's chain is converted into one standalone
   * qcow2. Linked: each disk gets an overlay on the snapshot's layer (a linked clone of the current
   * state first takes a snapshot to back onto). Returns the new folder.
   */
  clone(key: string | null, newName: string, opts: CloneOptions = {}): string {
    const k = this.cloneKey(key, newName, opts);
    this.acquireLock();
    try {
      const steps = this.cloneSteps(k, newName, opts);
      for (;;) {
        const r = steps.next();
        if (r.done) return r.value;
      }
    } finally {
      this.releaseLock();
    }
  }

  /** `clone` for the app: the disk copy yields to the event loop between 2 MiB slices. */
  async cloneInBackground(key: string | null, newName: string, opts: CloneOptions = {}): Promise<string> {
    const k = this.cloneKey(key, newName, opts);
    this.acquireLock();
    try {
      const steps = this.cloneSteps(k, newName, opts);
      for (;;) {
        const r = steps.next();
        if (r.done) return r.value;
        await new Promise((ok) => setImmediate(ok));
      }
    } finally {
      this.releaseLock();
    }
  }

  /** The snapshot a clone is made from; a linked clone of the current state takes one first. */
  private cloneKey(key: string | null, newName: string, opts: CloneOptions): string | null {
    if (!newName.trim()) throw new SnapshotError('the clone needs a name');
    if (opts.linked && key === null) {
      return this.take(`Linked base for ${newName.trim()}`, { description: `Taken to link the clone '${newName.trim()}' to.` }).uuid;
    }
    return key;
  }

  private *cloneSteps(key: string | null, newName: string, opts: CloneOptions): Generator<void, string, void> {
    this.recoverLocked();
    const { vm, tree } = this.load();
    const node = key === null ? null : tree.find(key);
    const machine: MachineConfig = structuredClone(node ? node.machine : vm.machine);
    const parentDir = resolve(opts.parentDir ?? dirname(this.folder));
    const baseName = folderNameFor(newName);
    let finalName = baseName;
    for (let n = 2; existsSync(join(parentDir, finalName)); n++) finalName = `${baseName} (${n})`;
    const final = join(parentDir, finalName);
    const tmp = join(parentDir, `.${finalName}.clone-${randomUUID().slice(0, 8)}`);
    const j: Journal = { op: 'clone', snap: node?.uuid ?? null, tmp, final, linked: !!opts.linked };
    this.writeJournal(j);
    this.step('clone:journal');
    for (const sub of ['disks', 'snapshots', 'logs']) mkdirSync(join(tmp, sub), { recursive: true });
    const used = new Set<string>();
    for (const [i, d] of machine.disks.entries()) {
      if (!d.path) continue;
      const src = this.abs(d.path);
      if (!isLayered(d)) {
        d.path = src;
        continue;
      }
      let stem = basename(src, extname(src)).replace(/[^\w.-]+/g, '_') || `disk${i}`;
      if (/^[0-9a-f-]{36}$/.test(stem)) stem = `disk${i}`;
      let file = `disks/${stem}.qcow2`;
      for (let n = 2; used.has(file); n++) file = `disks/${stem}-${n}.qcow2`;
      used.add(file);
      if (opts.linked) {
        const img = openImage(src, { readOnly: true, cache: false });
        try {
          createImage(join(tmp, file), 'qcow2', img.size, { backing: src, backingFormat: img.format });
        } finally {
          img.close();
        }
      } else {
        const img = openImage(src, { readOnly: true, cache: false });
        try {
          yield* copyChainSteps(img, join(tmp, file), (done, total) => opts.onProgress?.(`copying disk ${i + 1}`, done, total));
        } finally {
          img.close();
        }
      }
      d.path = file;
      this.step('clone:disk');
    }
    let lastState: VmFile['lastState'] = 'stopped';
    const state = node
      ? node.live && node.stateFile
        ? this.abs(node.stateFile)
        : null
      : vm.lastState === 'saved'
        ? this.abs(SAVED_STATE)
        : null;
    if (state && existsSync(state)) {
      copyAtomic(state, join(tmp, SAVED_STATE));
      lastState = 'saved';
    }
    if (machine.kernel) {
      machine.kernel = {
        ...machine.kernel,
        kernelPath: this.abs(machine.kernel.kernelPath),
        ...(machine.kernel.initrdPath ? { initrdPath: this.abs(machine.kernel.initrdPath) } : {}),
      };
    }
    const clone: VmFile = {
      formatVersion: vm.formatVersion,
      uuid: randomUUID(),
      name: newName.trim(),
      osType: vm.osType,
      createdAt: new Date().toISOString(),
      requestedCpus: vm.requestedCpus,
      machine,
      lastState,
      snapshots: [],
      currentSnapshot: null,
      clonedFrom: { vm: vm.uuid, snapshot: node?.uuid ?? null, linked: !!opts.linked },
    };
    writeFileAtomic(join(tmp, VM_FILE), serializeVmFile(clone));
    this.step('clone:vmfile');
    renameSync(tmp, final);
    this.step('clone:rename');
    this.finishClone(j);
    this.endJournal();
    return final;
  }

  private finishClone(j: Journal & { op: 'clone' }): void {
    if (!j.linked || !j.snap) return;
    this.commit((_vm, tree) => {
      const nodes = tree.nodes.map((n) =>
        n.uuid === j.snap && !(n.linkedClones ?? []).includes(j.final) ? { ...n, linkedClones: [...(n.linkedClones ?? []), j.final] } : n,
      );
      return new SnapshotTree(nodes, tree.current);
    });
  }
}

// ----------------------------------------------------------------------------- helpers

const SLICE = 2 * 1024 * 1024;

/**
 * `rebaseImage` (storage/convert.ts) in slices with a yield to the event loop between them: the
 * same content-preserving copy (where the child holds nothing and the old and new chains differ,
 * the old chain's bytes are written into the child), then the one-write header switch.
 */
async function rebaseYielding(
  path: string,
  newBacking: string | null,
  newFormat: ImageFormat | undefined,
  onProgress: (done: number, total: number) => void,
): Promise<void> {
  const img = openImage(path, { cache: false });
  try {
    if (!(img instanceof Qcow2Image)) throw new SnapshotError(`${path}: a snapshot layer must be qcow2 (this is ${img.format})`);
    const target =
      newBacking === null
        ? null
        : openImage(isAbsolute(newBacking) ? newBacking : join(dirname(path), newBacking), {
            readOnly: true,
            format: newFormat,
            cache: false,
          });
    try {
      const a = new Uint8Array(SLICE);
      const b = new Uint8Array(SLICE);
      for (let pos = 0, slices = 0; pos < img.size; slices++) {
        const st = img.blockStatus(pos, Math.min(SLICE, img.size - pos));
        const n = Math.max(1, Math.min(st.length, SLICE));
        if (st.status === 'unallocated') {
          readThrough(img.backing, pos, a.subarray(0, n));
          readThrough(target, pos, b.subarray(0, n));
          if (!Buffer.from(a.buffer, 0, n).equals(Buffer.from(b.buffer, 0, n))) img.write(pos, a.subarray(0, n));
        }
        pos += n;
        onProgress(pos, img.size);
        if (slices % 4 === 3) await new Promise((r) => setImmediate(r));
      }
      img.flush();
      img.changeBackingFile(newBacking, target?.format ?? newFormat);
    } finally {
      target?.close();
    }
  } finally {
    img.close();
  }
}

function readThrough(img: { size: number; read(o: number, b: Uint8Array): void } | null, pos: number, buf: Uint8Array): void {
  if (!img || pos >= img.size) return void buf.fill(0);
  const n = Math.min(buf.length, img.size - pos);
  img.read(pos, buf.subarray(0, n));
  buf.fill(0, n);
}

/**
 * A chain's guest-visible content into a new standalone qcow2, slice by slice (a generator: the
 * caller decides whether to yield to the event loop between slices). Holes and zero runs stay
 * unallocated, as `convertImage` does.
 */
function* copyChainSteps(src: DiskImage, dstPath: string, onProgress: (done: number, total: number) => void): Generator<void, void, void> {
  createImage(dstPath, 'qcow2', src.size);
  const dst = openImage(dstPath, { cache: false });
  try {
    const buf = new Uint8Array(SLICE);
    const g = 64 * 1024;
    for (let pos = 0; pos < src.size;) {
      const st = chainStatus(src, pos, Math.min(SLICE, src.size - pos));
      if (!st.data) {
        pos += st.length;
        onProgress(pos, src.size);
        continue;
      }
      const n = Math.min(SLICE, src.size - pos);
      const b = buf.subarray(0, n);
      src.read(pos, b);
      for (let o = 0; o < n;) {
        let e = o;
        while (e < n && !isZero(b, e, Math.min(g, n - e))) e += Math.min(g, n - e);
        if (e > o) dst.write(pos + o, b.subarray(o, e));
        o = e;
        while (o < n && isZero(b, o, Math.min(g, n - o))) o += Math.min(g, n - o);
      }
      pos += n;
      onProgress(pos, src.size);
      yield;
    }
    dst.flush();
  } finally {
    dst.close();
  }
}

/** The screen thumbnail the guest stored in a saved state, if any. */
function savedThumbnail(path: string): Uint8Array | null {
  try {
    return readStateExtra(path, 'thumbnail');
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** How a child image names its backing file: relative when both are in the VM folder. */
function backingRef(child: string, layer: string, folder: string): string {
  const inFolder = (p: string) => {
    const r = relative(folder, p);
    return !!r && !r.startsWith('..') && !isAbsolute(r);
  };
  return inFolder(child) && inFolder(layer) ? relative(dirname(child), layer).split(sep).join('/') : layer;
}

/** The absolute path of an image's backing file, or null. */
function backingOf(path: string): string | null {
  const img = openImage(path, { readOnly: true, noBacking: true, cache: false });
  try {
    const b = img.info().backing;
    if (!b) return null;
    return isAbsolute(b.path) ? b.path : resolve(dirname(path), b.path);
  } finally {
    img.close();
  }
}

function allocatedBytes(path: string): number {
  try {
    const s = statSync(path);
    return Math.min(s.size, s.blocks * 512 || s.size);
  } catch {
    return 0;
  }
}

function mib(n: number): number {
  return Math.ceil(n / 1024 / 1024);
}

/** Copies a file crash-safely (temporary name, fsync, rename). */
function copyAtomic(from: string, to: string): void {
  const tmp = join(dirname(to), `.${basename(to)}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`);
  copyFileSync(from, tmp);
  const fd = openSync(tmp, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, to);
}

function folderNameFor(name: string): string {
  const clean = name
    .replace(/[/\\:*?"<>|\x00-\x1f]/g, '_')
    .replace(/^\.+/, '')
    .trim()
    .slice(0, 80);
  return clean || 'VM';
}

export { SnapshotTree, SnapshotTreeError };
