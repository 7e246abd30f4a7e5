/**
 * The VM library: VM folders under the library root, plus folders added from elsewhere.
 *
 *   My VM/  vm.json  disks/  snapshots/  logs/
 *
 * The folder is the truth; a VM's id is derived from its folder path, so a broken vm.json still
 * has an id the UI can show an error under. A broken file is reported for that VM only and is
 * never written to; every write re-reads and validates the file first and replaces it atomically.
 */
import { createHash, randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { writeFileAtomic } from './atomic-write';
import { readVmFile, serializeVmFile, VM_FILE, VM_FORMAT_VERSION, VmFileError, type VmFile } from './vm-file';
import { probeMedia } from './media-probe';
import { recoverSnapshotOperation } from './snapshots/snapshot-service';
import type { PrefsStore } from './prefs';
import { defaultMachineConfig, type DiskAttachment, type DiskKind } from '../../src-emulator/machine/config';

export type LibraryEntry = { id: string; folder: string; ok: true; vm: VmFile } | { id: string; folder: string; ok: false; error: string };

export type DiskChoice = { kind: 'new'; sizeGiB: number } | { kind: 'existing'; path: string } | { kind: 'none' };

export interface CreateVmSpec {
  name: string;
  osType: string;
  memoryMiB: number;
  cpus: number;
  vramMiB: number;
  disk: DiskChoice;
  /** Optional CD/DVD image for the first boot. */
  isoPath?: string | null;
  /** Optional floppy image. */
  floppyPath?: string | null;
  kernel?: { kernelPath: string; initrdPath?: string; cmdline?: string } | null;
}

/** Creates a disk image; the storage module supplies the real one (qcow2, dynamic). */
export type ImageCreator = (path: string, format: 'qcow2', sizeBytes: number) => void | Promise<void>;

export const MEDIA_DIR = '.media';
export const LIBRARY_MARKER = '.boxwood-library.json';

export function vmIdFor(folder: string): string {
  return createHash('sha256').update(resolve(folder)).digest('hex').slice(0, 16);
}

function folderNameFor(name: string): string {
  const clean = name
    .replace(/[/\\:*?"<>|\x00-\x1f]/g, '_')
    .replace(/^\.+/, '')
    .trim()
    .slice(0, 80);
  return clean || 'VM';
}

export class VmLibrary {
  private entries = new Map<string, LibraryEntry>();

  constructor(
    readonly root: string,
    private readonly prefs: PrefsStore,
    private readonly createImage: ImageCreator,
  ) {}

  /** Re-reads every VM folder. One bad folder never hides the others. */
  scan(): LibraryEntry[] {
    const folders = new Set<string>();
    if (existsSync(this.root)) {
      for (const name of readdirSync(this.root).sort()) {
        if (name.startsWith('.')) continue;
        const folder = join(this.root, name);
        try {
          if (statSync(folder).isDirectory() && existsSync(join(folder, VM_FILE))) folders.add(resolve(folder));
        } catch {
          /* vanished while scanning */
        }
      }
    }
    for (const extra of this.prefs.get('extraVmFolders')) folders.add(resolve(extra));
    const next = new Map<string, LibraryEntry>();
    for (const folder of folders) {
      const entry = this.read(folder);
      next.set(entry.id, entry);
    }
    this.entries = next;
    return this.list();
  }

  list(): LibraryEntry[] {
    return [...this.entries.values()].sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
  }

  get(id: string): LibraryEntry | undefined {
    return this.entries.get(id);
  }

  /** Re-reads one VM from disk (after an outside edit, or before a write). */
  refresh(id: string): LibraryEntry | undefined {
    const old = this.entries.get(id);
    if (!old) return undefined;
    const entry = this.read(old.folder);
    this.entries.set(id, entry);
    return entry;
  }

  private read(folder: string): LibraryEntry {
    const id = vmIdFor(folder);
    try {
      if (!existsSync(folder)) return { id, folder, ok: false, error: `${folder}: the VM folder is missing` };
      // An interrupted snapshot operation is finished or undone before the VM is read.
      recoverSnapshotOperation(folder);
      return { id, folder, ok: true, vm: readVmFile(join(folder, VM_FILE)) };
    } catch (err) {
      return { id, folder, ok: false, error: err instanceof VmFileError ? err.message : `${folder}: ${(err as Error).message}` };
    }
  }

  /**
   * Changes a VM's file: re-reads and validates it, applies `mutate`, validates again, replaces it
   * atomically. A file that does not read cleanly is never touched.
   */
  update(id: string, mutate: (vm: VmFile) => void): VmFile {
    const entry = this.refresh(id);
    if (!entry) throw new Error(`no VM with id ${id}`);
    if (!entry.ok) throw new Error(`${entry.error}; not changing it`);
    const vm = structuredClone(entry.vm);
    mutate(vm);
    writeFileAtomic(join(entry.folder, VM_FILE), serializeVmFile(vm));
    this.entries.set(id, { ...entry, vm });
    return vm;
  }

  async create(spec: CreateVmSpec): Promise<LibraryEntry & { ok: true }> {
    mkdirSync(this.root, { recursive: true });
    const base = folderNameFor(spec.name);
    let folderName = base;
    for (let n = 2; existsSync(join(this.root, folderName)); n++) folderName = `${base} (${n})`;
    const folder = join(this.root, folderName);
    const disks: DiskAttachment[] = [];
    // Check the media before creating anything, so a bad choice leaves no half-made folder.
    if (spec.disk.kind === 'existing') {
      const p = probeMedia(spec.disk.path);
      disks.push({
        kind: p.kind === 'cdrom' ? 'cdrom' : p.kind,
        path: resolve(spec.disk.path),
        readOnly: p.kind === 'cdrom' ? true : undefined,
      });
    }
    if (spec.isoPath) {
      const p = probeMedia(spec.isoPath);
      if (p.kind !== 'cdrom') throw new Error(`${spec.isoPath}: is a ${p.description}, not a CD/DVD image`);
      disks.push({ kind: 'cdrom', path: resolve(spec.isoPath), readOnly: true });
    }
    if (spec.floppyPath) {
      const p = probeMedia(spec.floppyPath);
      if (p.kind !== 'floppy') throw new Error(`${spec.floppyPath}: is a ${p.description}, not a floppy image`);
      disks.push({ kind: 'floppy', path: resolve(spec.floppyPath) });
    }
    for (const f of [spec.kernel?.kernelPath, spec.kernel?.initrdPath]) {
      if (f && !existsSync(f)) throw new Error(`${f}: no such file`);
    }
    for (const sub of ['disks', 'snapshots', 'logs']) mkdirSync(join(folder, sub), { recursive: true });
    if (spec.disk.kind === 'new') {
      const file = `disks/${folderNameFor(spec.name)}.qcow2`;
      await this.createImage(join(folder, file), 'qcow2', Math.round(spec.disk.sizeGiB * 1024 ** 3));
      disks.unshift({ kind: 'disk', path: file });
    }
    return this.writeNew(folder, spec, disks);
  }

  /** Creates a VM folder around an image that is copied into its disks/ folder (the demo VM). */
  createWithCopiedImage(spec: Omit<CreateVmSpec, 'disk'>, image: string, kind: DiskKind): LibraryEntry & { ok: true } {
    mkdirSync(this.root, { recursive: true });
    const base = folderNameFor(spec.name);
    let folderName = base;
    for (let n = 2; existsSync(join(this.root, folderName)); n++) folderName = `${base} (${n})`;
    const folder = join(this.root, folderName);
    for (const sub of ['disks', 'snapshots', 'logs']) mkdirSync(join(folder, sub), { recursive: true });
    const rel = `disks/${basename(image)}`;
    copyFileSync(image, join(folder, rel));
    return this.writeNew(folder, { ...spec, disk: { kind: 'none' } }, [{ kind, path: rel }], [kind]);
  }

  private writeNew(folder: string, spec: CreateVmSpec, disks: DiskAttachment[], bootOrder?: DiskKind[]): LibraryEntry & { ok: true } {
    const kernel = spec.kernel
      ? {
          kernelPath: resolve(spec.kernel.kernelPath),
          ...(spec.kernel.initrdPath ? { initrdPath: resolve(spec.kernel.initrdPath) } : {}),
          ...(spec.kernel.cmdline !== undefined ? { cmdline: spec.kernel.cmdline } : {}),
        }
      : undefined;
    const vm: VmFile = {
      formatVersion: VM_FORMAT_VERSION,
      uuid: randomUUID(),
      name: spec.name.trim(),
      osType: spec.osType,
      createdAt: new Date().toISOString(),
      requestedCpus: spec.cpus,
      machine: defaultMachineConfig({
        memoryMiB: spec.memoryMiB,
        display: { vramMiB: spec.vramMiB },
        disks,
        ...(bootOrder ? { bootOrder } : {}),
        ...(kernel ? { kernel } : {}),
      }),
      lastState: 'stopped',
      snapshots: [],
    };
    writeFileAtomic(join(folder, VM_FILE), serializeVmFile(vm));
    const entry = { id: vmIdFor(folder), folder: resolve(folder), ok: true as const, vm };
    this.entries.set(entry.id, entry);
    return entry;
  }

  /** Adds a VM folder from outside the library root; it is listed even if its vm.json is broken. */
  addExisting(folder: string): LibraryEntry {
    let real: string;
    try {
      real = realpathSync(folder);
    } catch {
      throw new Error(`${folder}: no such folder`);
    }
    if (!statSync(real).isDirectory()) throw new Error(`${folder}: is not a folder`);
    if (!existsSync(join(real, VM_FILE))) throw new Error(`${folder}: has no ${VM_FILE}; not a VM folder`);
    const extras = this.prefs.get('extraVmFolders');
    const inRoot = resolve(join(real, '..')) === resolve(this.root);
    if (!inRoot && !extras.map((e) => resolve(e)).includes(real)) this.prefs.set('extraVmFolders', [...extras, real]);
    const entry = this.read(real);
    this.entries.set(entry.id, entry);
    return entry;
  }

  /** True when the folder was added from outside the library root. */
  isExtra(id: string): boolean {
    const e = this.entries.get(id);
    return !!e && this.prefs.get('extraVmFolders').some((f) => resolve(f) === resolve(e.folder));
  }

  /**
   * Takes a VM out of the library. `deleteFiles` deletes its folder (only a folder that holds a
   * vm.json, so a wrong id can never wipe something else); otherwise an added folder is just
   * forgotten, and a folder inside the library root cannot be forgotten without deleting it.
   */
  remove(id: string, deleteFiles: boolean): void {
    const e = this.entries.get(id);
    if (!e) throw new Error(`no VM with id ${id}`);
    const extra = this.isExtra(id);
    if (!deleteFiles && !extra) throw new Error(`${e.folder} is inside the library folder; it can only be deleted`);
    if (deleteFiles) {
      if (!existsSync(join(e.folder, VM_FILE))) throw new Error(`${e.folder}: has no ${VM_FILE}; not deleting it`);
      rmSync(e.folder, { recursive: true, force: true });
    }
    if (extra)
      this.prefs.set(
        'extraVmFolders',
        this.prefs.get('extraVmFolders').filter((f) => resolve(f) !== resolve(e.folder)),
      );
    this.entries.delete(id);
  }

  /** Where uploaded images (web twin) are kept. */
  mediaDir(): string {
    const dir = join(this.root, MEDIA_DIR);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /**
   * Puts the demo VM in the library once; deleting it later is respected. The library folder
   * itself remembers (`.boxwood-library.json`), so every library gets its demo once.
   */
  ensureDemo(demoImage: string): void {
    const marker = join(this.root, LIBRARY_MARKER);
    try {
      if ((JSON.parse(readFileSync(marker, 'utf8')) as { demoCreated?: unknown }).demoCreated === true) return;
    } catch {
      /* no marker yet (or unreadable): a new library */
    }
    if (!existsSync(demoImage)) return;
    this.createWithCopiedImage({ name: 'Boxwood Demo', osType: 'other', memoryMiB: 16, cpus: 1, vramMiB: 1 }, demoImage, 'floppy');
    writeFileAtomic(marker, JSON.stringify({ formatVersion: 1, demoCreated: true }, null, 2) + '\n');
  }
}

function nameOf(e: LibraryEntry): string {
  return e.ok ? e.vm.name : basename(e.folder);
}
