/**
 * The one API between the UI and the hypervisor. The renderer imports only these types; the
 * transports (Electron's contextBridge/IPC and the web twin's WebSocket) carry the same method
 * names and arguments, validated on the hypervisor's side by `schemas.ts`.
 */
import type { VmState } from '../hypervisor/lifecycle';
import type { DiskKind } from '../../src-emulator/machine/config';

export type { VmState } from '../hypervisor/lifecycle';
export type { DiskKind } from '../../src-emulator/machine/config';

export interface MediaInfo {
  kind: DiskKind;
  path: string | null;
  format?: string;
}

export interface VmSummary {
  id: string;
  ok: true;
  folder: string;
  name: string;
  osType: string;
  state: VmState;
  memoryMiB: number;
  /** What the user asked for; the emulator runs one CPU for now. */
  requestedCpus: number;
  vramMiB: number;
  media: MediaInfo[];
  /** A kernel booted directly, if any. */
  kernel: string | null;
  /** Why the VM last aborted or failed to boot. */
  lastError: string | null;
  /** The newest log file (absolute path), if any. */
  logFile: string | null;
  /** Added from outside the library folder (so it can be removed without deleting it). */
  external: boolean;
}

/** A VM folder whose vm.json could not be read; listed so the user sees what is wrong. */
export interface BrokenVm {
  id: string;
  ok: false;
  folder: string;
  error: string;
  external: boolean;
}

export type VmListEntry = VmSummary | BrokenVm;

export interface OsPreset {
  id: string;
  label: string;
  memoryMiB: number;
  cpus: number;
  vramMiB: number;
  diskGiB: number;
}

export interface HostInfo {
  shell: 'electron' | 'web';
  platform: string;
  totalMemoryMiB: number;
  cpuCores: number;
  libraryPath: string;
  presets: OsPreset[];
  limits: { maxMemoryMiB: number; maxVramMiB: number; maxDiskGiB: number; minDiskGiB: number };
}

export type NewDisk = { kind: 'new'; sizeGiB: number } | { kind: 'existing'; path: string } | { kind: 'none' };

export interface NewVmSpec {
  name: string;
  osType: string;
  memoryMiB: number;
  cpus: number;
  vramMiB: number;
  disk: NewDisk;
  isoPath?: string | null;
  floppyPath?: string | null;
  /** Boot a Linux kernel directly (like `qemu -kernel`), instead of from a disk. */
  kernel?: { kernelPath: string; initrdPath?: string; cmdline?: string } | null;
}

/** What can be changed on a VM that is off. */
export interface VmChanges {
  name?: string;
  osType?: string;
  memoryMiB?: number;
  cpus?: number;
  vramMiB?: number;
}

export interface MediaProbeResult {
  path: string;
  kind: DiskKind;
  format: string;
  sizeBytes: number;
  description: string;
}

export const VM_ACTIONS = ['start', 'pause', 'resume', 'reset', 'power-button', 'power-off', 'save-state', 'discard-state'] as const;
export type VmAction = (typeof VM_ACTIONS)[number];

/** One snapshot in the tree (see src-main/hypervisor/snapshots). */
export interface SnapshotItem {
  uuid: string;
  name: string;
  description: string;
  createdAt: string;
  /** Taken with the machine state: restoring it resumes the running guest. */
  live: boolean;
  hasThumbnail: boolean;
  /** The current state descends from this snapshot. */
  isCurrent: boolean;
  /** PNG of the screen at snapshot time, as a data: URL. */
  thumbnail: string | null;
  children: SnapshotItem[];
}

export interface SnapshotListing {
  vmId: string;
  current: string | null;
  snapshots: SnapshotItem[];
  /** An operation under way on this VM, with its progress. */
  busy: { op: string; phase: string; done: number; total: number } | null;
  /** The current state differs from the snapshot it descends from (disk writes or a saved state): restoring loses that. */
  currentChanged: boolean;
}

export interface BoxwoodApi {
  hostInfo(): Promise<HostInfo>;
  listVms(): Promise<VmListEntry[]>;
  createVm(spec: NewVmSpec): Promise<VmSummary>;
  addExistingVm(folder: string): Promise<VmListEntry>;
  control(id: string, action: VmAction): Promise<VmSummary>;
  /** Attaches an image (CD/DVD, disk or floppy, by its content) to a stopped VM. */
  attachMedia(id: string, path: string): Promise<VmSummary>;
  probeMedia(path: string): Promise<MediaProbeResult>;
  /** The tail of the VM's newest log. */
  readLog(id: string): Promise<string>;
  /** Changes a VM's settings (it must be off). */
  updateVm(id: string, changes: VmChanges): Promise<VmSummary>;
  /** Detaches the medium at `index` in the VM's media list (it must be off); the file stays. */
  detachMedia(id: string, index: number): Promise<VmSummary>;
  /** Deletes the VM's folder, or (for a folder added from elsewhere, with deleteFiles false) forgets it. */
  removeVm(id: string, deleteFiles: boolean): Promise<void>;
  /** Moves the library to another folder (kept in the preferences); refused while a VM runs. */
  setLibraryPath(folder: string): Promise<HostInfo>;
  /** The VM's snapshot tree. */
  listSnapshots(id: string): Promise<SnapshotListing>;
  /** Takes a snapshot; a running VM needs `live` (its machine state goes with it). */
  takeSnapshot(id: string, name: string, description: string, live: boolean): Promise<SnapshotListing>;
  /** Restores a snapshot (VM off; a saved state is discarded, so ask the user first). */
  restoreSnapshot(id: string, snapshot: string): Promise<SnapshotListing>;
  /** Deletes a snapshot, merging its disk layers into its children. */
  deleteSnapshot(id: string, snapshot: string): Promise<SnapshotListing>;
  editSnapshot(id: string, snapshot: string, changes: { name?: string; description?: string }): Promise<SnapshotListing>;
  /** Clones from a snapshot (or, with null, the current state) into a new VM in the library. */
  cloneVm(id: string, snapshot: string | null, name: string, linked: boolean): Promise<VmSummary>;
}

export type ApiMethod = keyof BoxwoodApi;

/** Pushed to every UI when something changes. */
export type ApiEvent = { type: 'vms-changed'; vms: VmListEntry[] };
