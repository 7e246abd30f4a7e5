/**
 * The hypervisor: the VM library, one lifecycle per VM, and one supervised guest process per
 * running VM. Shell-agnostic: Electron and the web twin pass their own GuestSpawner and prefs.
 *
 * Supervision: a guest process that exits without having been asked to (crash, kill, out of
 * memory) leaves its VM `aborted`, with the reason in vm.json and the process output in the VM's
 * log; nothing else is affected, because every VM has its own process.
 */
import { EventEmitter } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { availableParallelism, platform, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { VmLifecycle, isLive, type VmState } from './lifecycle';
import { VmLibrary, type CreateVmSpec, type ImageCreator, type LibraryEntry } from './library';
import { probeMedia, type MediaProbe } from './media-probe';
import type { GuestProcess, GuestSpawner } from './guest-process';
import type { PrefsStore } from './prefs';
import type { GuestToHost } from '../../src-emulator/guest/protocol';
import type { HostInfo, VmAction, VmChanges, VmListEntry, VmSummary } from '../api/types';
import { OS_PRESETS } from '../api/presets';
import { linkedClonesOf } from './snapshots/snapshot-service';

const LOGS_KEPT = 5;
const BOOT_TIMEOUT_MS = 120_000;
const POWER_OFF_GRACE_MS = 3_000;

interface Runtime {
  lifecycle: VmLifecycle;
  guest: GuestProcess | null;
  log: WriteStream | null;
  logFile: string | null;
  /** Set once the hypervisor asked for, or the guest reported, an orderly end. */
  exitExpected: boolean;
  lastError: string | null;
  bootTimer: ReturnType<typeof setTimeout> | null;
  /** The guest reported its state safely on disk. */
  savedOk: boolean;
  /** Where the save in progress writes the machine state. */
  savePath?: string | null;
  /** The saved state the next boot restores. */
  restorePath?: string | null;
  /** The hypervisor killed the process at the end of a power off. */
  forcedOff?: boolean;
}

export interface HypervisorOptions {
  libraryRoot: string;
  prefs: PrefsStore;
  spawner: GuestSpawner;
  createImage: ImageCreator;
  shell: 'electron' | 'web';
  /** The built-in demo guest image; put in the library on first start. */
  demoImage?: string;
}

export class Hypervisor extends EventEmitter<{ changed: [] }> {
  library: VmLibrary;
  private readonly runtimes = new Map<string, Runtime>();

  constructor(private readonly opts: HypervisorOptions) {
    super();
    this.library = new VmLibrary(opts.libraryRoot, opts.prefs, opts.createImage);
  }

  init(): void {
    mkdirSync(this.opts.libraryRoot, { recursive: true });
    if (this.opts.demoImage) this.library.ensureDemo(this.opts.demoImage);
    this.library.scan();
  }

  /** Switches to another library folder and remembers it; VMs must be off (their processes belong to the old one). */
  setLibraryPath(folder: string): HostInfo {
    if ([...this.runtimes.values()].some((rt) => isLive(rt.lifecycle.state))) {
      throw new Error('stop every running VM before moving the library');
    }
    const root = resolve(folder);
    mkdirSync(root, { recursive: true });
    this.opts.prefs.set('libraryPath', root);
    this.opts.libraryRoot = root;
    this.library = new VmLibrary(root, this.opts.prefs, this.opts.createImage);
    this.runtimes.clear();
    this.library.scan();
    this.emit('changed');
    return this.hostInfo();
  }

  hostInfo(): HostInfo {
    const totalMemoryMiB = Math.floor(totalmem() / 1024 / 1024);
    return {
      shell: this.opts.shell,
      platform: platform(),
      totalMemoryMiB,
      cpuCores: availableParallelism(),
      libraryPath: resolve(this.opts.libraryRoot),
      presets: OS_PRESETS,
      limits: { maxMemoryMiB: Math.min(3584, totalMemoryMiB), maxVramMiB: 256, maxDiskGiB: 2048, minDiskGiB: 1 },
    };
  }

  /** The library as the UI shows it; re-reads the folders (outside edits show up). */
  list(): VmListEntry[] {
    this.library.scan();
    return this.library.list().map((e) => this.summarize(e));
  }

  private runtime(id: string, entry?: LibraryEntry): Runtime {
    let rt = this.runtimes.get(id);
    if (!rt) {
      const resting = entry?.ok ? entry.vm.lastState : 'stopped';
      rt = {
        lifecycle: new VmLifecycle(resting),
        guest: null,
        log: null,
        logFile: null,
        exitExpected: false,
        lastError: entry?.ok ? (entry.vm.lastError ?? null) : null,
        bootTimer: null,
        savedOk: false,
      };
      rt.lifecycle.onChange(() => this.emit('changed'));
      this.runtimes.set(id, rt);
    }
    return rt;
  }

  private summarize(e: LibraryEntry): VmListEntry {
    if (!e.ok) return { id: e.id, ok: false, folder: e.folder, error: e.error, external: this.library.isExtra(e.id) };
    const rt = this.runtime(e.id, e);
    return {
      id: e.id,
      ok: true,
      folder: e.folder,
      name: e.vm.name,
      osType: e.vm.osType,
      state: rt.lifecycle.state,
      memoryMiB: e.vm.machine.memoryMiB,
      requestedCpus: e.vm.requestedCpus,
      vramMiB: e.vm.machine.display.vramMiB,
      media: e.vm.machine.disks.map((d) => ({ kind: d.kind, path: d.path, format: d.format })),
      kernel: e.vm.machine.kernel?.kernelPath ?? null,
      lastError: rt.lastError,
      logFile: rt.logFile ?? newestLog(e.folder),
      external: this.library.isExtra(e.id),
    };
  }

  summary(id: string): VmSummary {
    const e = this.library.get(id);
    if (!e) throw new Error(`no VM with id ${id}`);
    const s = this.summarize(e);
    if (!s.ok) throw new Error(s.error);
    return s;
  }

  private okEntry(id: string): LibraryEntry & { ok: true } {
    const e = this.library.get(id) ?? (this.library.scan(), this.library.get(id));
    if (!e) throw new Error(`no VM with id ${id}`);
    if (!e.ok) throw new Error(e.error);
    return e;
  }

  async createVm(spec: CreateVmSpec): Promise<VmSummary> {
    const e = await this.library.create(spec);
    this.emit('changed');
    return this.summary(e.id);
  }

  addExisting(folder: string): VmListEntry {
    const e = this.library.addExisting(folder);
    this.emit('changed');
    return this.summarize(e);
  }

  probe(path: string): MediaProbe {
    return probeMedia(path);
  }

  attachMedia(id: string, path: string): VmSummary {
    const rt = this.runtime(id);
    if (isLive(rt.lifecycle.state)) throw new Error('media can be attached only while the VM is off (hot-plug is not done yet)');
    const p = probeMedia(path);
    const abs = resolve(path);
    this.library.update(id, (vm) => {
      const disks = vm.machine.disks;
      if (disks.some((d) => d.path === abs)) return;
      if (p.kind === 'cdrom') {
        // Fill an empty CD/DVD drive first, else add a drive.
        const empty = disks.find((d) => d.kind === 'cdrom' && d.path === null);
        if (empty) empty.path = abs;
        else disks.push({ kind: 'cdrom', path: abs, readOnly: true });
      } else {
        disks.push({ kind: p.kind, path: abs });
      }
    });
    this.emit('changed');
    return this.summary(id);
  }

  private requireOff(id: string, what: string): void {
    const rt = this.runtimes.get(id);
    if (rt && (isLive(rt.lifecycle.state) || rt.lifecycle.state === 'saved')) {
      throw new Error(
        `${what} needs the VM off (it is ${rt.lifecycle.state}${rt.lifecycle.state === 'saved' ? '; discard the saved state first' : ''})`,
      );
    }
  }

  updateVm(id: string, changes: VmChanges): VmSummary {
    this.okEntry(id);
    this.requireOff(id, 'changing settings');
    this.library.update(id, (vm) => {
      if (changes.name !== undefined) vm.name = changes.name.trim();
      if (changes.osType !== undefined) vm.osType = changes.osType;
      if (changes.memoryMiB !== undefined) vm.machine.memoryMiB = changes.memoryMiB;
      if (changes.cpus !== undefined) vm.requestedCpus = changes.cpus;
      if (changes.vramMiB !== undefined) vm.machine.display.vramMiB = changes.vramMiB;
    });
    this.emit('changed');
    return this.summary(id);
  }

  detachMedia(id: string, index: number): VmSummary {
    const e = this.okEntry(id);
    this.requireOff(id, 'detaching media');
    if (index >= e.vm.machine.disks.length) throw new Error(`no medium number ${index + 1} on '${e.vm.name}'`);
    this.library.update(id, (vm) => void vm.machine.disks.splice(index, 1));
    this.emit('changed');
    return this.summary(id);
  }

  removeVm(id: string, deleteFiles: boolean): void {
    if (!this.library.get(id)) throw new Error(`no VM with id ${id}`);
    this.requireOff(id, 'removing a VM');
    const clones = deleteFiles ? linkedClonesOf(this.library.get(id)!.folder) : [];
    if (clones.length) throw new Error(`linked clones read through this VM's snapshots (${clones.join(', ')}); delete them first`);
    this.library.remove(id, deleteFiles);
    this.runtimes.delete(id);
    this.emit('changed');
  }

  readLog(id: string): string {
    const e = this.library.get(id);
    if (!e) throw new Error(`no VM with id ${id}`);
    const file = this.runtimes.get(id)?.logFile ?? newestLog(e.folder);
    if (!file || !existsSync(file)) return '';
    const text = readFileSync(file, 'utf8');
    return text.length > 16384 ? text.slice(-16384) : text;
  }

  /**
   * Re-reads a VM that is not running from its vm.json (the snapshot feature changed its resting
   * state, e.g. restoring a live snapshot leaves it 'saved').
   */
  reloadState(id: string): void {
    const rt = this.runtimes.get(id);
    if (rt && !isLive(rt.lifecycle.state)) this.runtimes.delete(id);
    this.library.refresh(id);
    this.emit('changed');
  }

  /** The running guest of a VM (the shells connect its stream to a renderer). */
  guestOf(id: string): GuestProcess | null {
    return this.runtimes.get(id)?.guest ?? null;
  }

  control(id: string, action: VmAction): VmSummary {
    const e = this.okEntry(id);
    const rt = this.runtime(id, e);
    const state = rt.lifecycle.state;
    const refuse = (): never => {
      throw new Error(`cannot ${action} '${e.vm.name}' while it is ${state}`);
    };
    switch (action) {
      case 'start':
        if (!rt.lifecycle.can('starting')) refuse();
        this.start(e, rt);
        break;
      case 'pause':
        if (state !== 'running') refuse();
        rt.guest?.send({ type: 'pause' });
        rt.lifecycle.to('paused');
        break;
      case 'resume':
        if (state !== 'paused') refuse();
        rt.guest?.send({ type: 'resume' });
        rt.lifecycle.to('running');
        break;
      case 'reset':
        if (state !== 'running' && state !== 'paused') refuse();
        rt.guest?.send({ type: 'reset' });
        this.logLine(rt, 'reset requested');
        break;
      case 'power-button':
        if (state !== 'running') refuse();
        rt.guest?.send({ type: 'power-button' });
        this.logLine(rt, 'ACPI power button pressed');
        break;
      case 'power-off':
        if (!isLive(state)) refuse();
        this.powerOff(rt);
        break;
      case 'save-state':
        if (state !== 'running' && state !== 'paused') refuse();
        this.saveState(e, rt);
        break;
      case 'discard-state':
        if (state !== 'saved') refuse();
        rmSync(savedStatePath(e.folder), { force: true });
        this.rest(id, rt, 'stopped');
        break;
    }
    return this.summary(id);
  }

  private saveState(e: LibraryEntry & { ok: true }, rt: Runtime): void {
    const guest = rt.guest;
    if (!guest) return;
    rt.lifecycle.to('saving');
    rt.exitExpected = true;
    rt.savedOk = false;
    mkdirSync(join(e.folder, 'snapshots'), { recursive: true });
    this.logLine(rt, 'saving the machine state');
    // A leftover from an earlier save must not pass for this one (see onGuestExit).
    rt.savePath = savedStatePath(e.folder);
    rmSync(rt.savePath, { force: true });
    guest.send({ type: 'save', path: rt.savePath });
    setTimeout(() => {
      if (rt.guest === guest && !rt.savedOk) {
        rt.lastError = 'saving the machine state did not finish within 60 s';
        guest.kill();
      }
    }, 60_000).unref();
  }

  private start(e: LibraryEntry & { ok: true }, rt: Runtime): void {
    const restore = rt.lifecycle.state === 'saved' && existsSync(savedStatePath(e.folder));
    rt.lifecycle.to('starting');
    rt.exitExpected = false;
    rt.savedOk = false;
    rt.forcedOff = false;
    rt.lastError = null;
    rt.restorePath = restore ? savedStatePath(e.folder) : null;
    const logs = join(e.folder, 'logs');
    mkdirSync(logs, { recursive: true });
    pruneLogs(logs);
    rt.logFile = join(logs, `boxwood-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
    const log = createWriteStream(rt.logFile, { flags: 'a' });
    rt.log = log;
    this.logLine(rt, `starting '${e.vm.name}' (${e.folder})`);
    let guest: GuestProcess;
    try {
      guest = this.opts.spawner.spawn({ vmId: e.id, displayName: `Boxwood VM ${e.vm.name}`, log });
    } catch (err) {
      this.abort(e.id, rt, `the guest process could not be started: ${(err as Error).message}`);
      return;
    }
    rt.guest = guest;
    this.logLine(rt, `guest process ${guest.pid ?? '?'} started`);
    rt.bootTimer = setTimeout(() => {
      if (rt.lifecycle.state === 'starting' && rt.guest === guest) {
        rt.lastError = `the guest process did not boot within ${BOOT_TIMEOUT_MS / 1000} s`;
        guest.kill();
      }
    }, BOOT_TIMEOUT_MS);
    guest.on('message', (m) => this.onGuestMessage(e, rt, guest, m as GuestToHost));
    guest.on('exit', (code, signal) => this.onGuestExit(e.id, rt, guest, code, signal));
  }

  private onGuestMessage(e: LibraryEntry & { ok: true }, rt: Runtime, guest: GuestProcess, m: GuestToHost): void {
    if (rt.guest !== guest || typeof m !== 'object' || m === null) return;
    switch (m.type) {
      case 'ready':
        // Re-read the file: the config the user sees is the one that boots.
        try {
          const fresh = this.okEntry(e.id);
          guest.send({ type: 'boot', vmId: e.id, vmDir: fresh.folder, config: fresh.vm.machine, restorePath: rt.restorePath ?? undefined });
        } catch (err) {
          rt.lastError = (err as Error).message;
          guest.kill();
        }
        break;
      case 'booted':
        if (rt.bootTimer) clearTimeout(rt.bootTimer);
        if (rt.lifecycle.state === 'starting') rt.lifecycle.to('running');
        this.logLine(rt, m.restored ? 'machine running from its saved state' : 'machine running');
        // If the app dies now, the VM is found aborted next time, as it was not shut down.
        this.persist(e.id, 'aborted', 'Boxwood ended while the VM was running');
        break;
      case 'saved':
        rt.savedOk = true;
        this.logLine(rt, 'machine state saved');
        break;
      case 'paused':
      case 'resumed':
        break;
      case 'poweroff':
        rt.exitExpected = true;
        this.logLine(rt, `machine off: ${String(m.reason).slice(0, 500)}`);
        break;
      case 'error':
        rt.lastError = String(m.message).slice(0, 2000);
        this.logLine(rt, `guest error: ${rt.lastError}`);
        break;
      default:
        this.logLine(rt, `ignored an unknown message from the guest process`);
    }
  }

  private onGuestExit(id: string, rt: Runtime, guest: GuestProcess, code: number | null, signal: string | null): void {
    if (rt.guest !== guest) return;
    if (rt.bootTimer) clearTimeout(rt.bootTimer);
    rt.guest = null;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    // The state file is written atomically before the guest exits 0, so it is proof of the save
    // even if the 'saved' message itself was lost with the process.
    if (!rt.savedOk && code === 0 && rt.lifecycle.state === 'saving' && !rt.lastError && rt.savePath && existsSync(rt.savePath)) {
      this.logLine(rt, 'machine state file present although the guest did not report it');
      rt.savedOk = true;
    }
    if (rt.savedOk && code === 0) {
      this.logLine(rt, `guest process ${how}`);
      this.rest(id, rt, 'saved');
    } else if (rt.lifecycle.state === 'saving') {
      this.abort(id, rt, rt.lastError ?? `saving the machine state failed: the guest process ${how}`);
    } else if (rt.exitExpected && !rt.lastError && code === 0) {
      this.logLine(rt, `guest process ${how}`);
      this.rest(id, rt, 'stopped');
    } else if (rt.exitExpected && !rt.lastError && (rt.forcedOff || signal)) {
      // Killed after the power-off grace period (Electron reports no signal, hence forcedOff):
      // still the power off the user asked for.
      this.logLine(rt, `guest process ${how} after power off`);
      this.rest(id, rt, 'stopped');
    } else {
      this.abort(id, rt, rt.lastError ?? `the guest process ${how} unexpectedly`);
    }
  }

  private abort(id: string, rt: Runtime, reason: string): void {
    rt.lastError = reason;
    this.logLine(rt, `VM aborted: ${reason}`);
    this.rest(id, rt, 'aborted');
  }

  private rest(id: string, rt: Runtime, state: 'stopped' | 'aborted' | 'saved'): void {
    rt.log?.end();
    rt.log = null;
    if (rt.lifecycle.state !== state) rt.lifecycle.to(state);
    this.persist(id, state, state === 'aborted' ? rt.lastError : null);
    this.emit('changed');
  }

  /** Records the resting state in vm.json (never touching a file that does not read cleanly). */
  private persist(id: string, state: 'stopped' | 'aborted' | 'saved', error: string | null): void {
    try {
      this.library.update(id, (vm) => {
        vm.lastState = state;
        if (error) vm.lastError = error;
        else delete vm.lastError;
      });
    } catch {
      /* a vm.json that became unreadable stays untouched; the state is still shown */
    }
  }

  private powerOff(rt: Runtime): void {
    rt.exitExpected = true;
    const guest = rt.guest;
    if (!guest) {
      if (rt.lifecycle.can('stopped')) rt.lifecycle.to('stopped');
      return;
    }
    this.logLine(rt, 'power off');
    guest.send({ type: 'power-off' });
    setTimeout(() => {
      if (rt.guest !== guest) return;
      rt.forcedOff = true;
      guest.kill();
    }, POWER_OFF_GRACE_MS).unref();
  }

  private logLine(rt: Runtime, message: string): void {
    rt.log?.write(`${new Date().toISOString()} hypervisor: ${message}\n`);
  }

  /** Stops every guest (app exit). */
  shutdown(): void {
    for (const rt of this.runtimes.values()) {
      if (rt.guest) {
        rt.exitExpected = true;
        rt.guest.kill();
      }
    }
  }
}

/** Where a VM's saved state lives (see the guest's saveAndExit). */
export function savedStatePath(folder: string): string {
  return join(folder, 'snapshots', 'saved.state');
}

function newestLog(folder: string): string | null {
  const dir = join(folder, 'logs');
  try {
    const logs = readdirSync(dir)
      .filter((n) => n.endsWith('.log'))
      .sort();
    return logs.length ? join(dir, logs[logs.length - 1]) : null;
  } catch {
    return null;
  }
}

function pruneLogs(dir: string): void {
  const logs = readdirSync(dir)
    .filter((n) => n.startsWith('boxwood-') && n.endsWith('.log'))
    .sort();
  for (const old of logs.slice(0, Math.max(0, logs.length - (LOGS_KEPT - 1)))) rmSync(join(dir, old), { force: true });
}

export type { VmState };
