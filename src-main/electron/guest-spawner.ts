/**
 * Guest processes as Electron utility processes: one per running VM, named in the OS's task
 * manager by its serviceName. A renderer's stream reaches the guest as a MessagePortMain, so
 * frames and console bytes never pass through the main process.
 */
import { utilityProcess, type MessagePortMain, type UtilityProcess } from 'electron';
import { EventEmitter } from 'node:events';
import type { GuestProcess, GuestProcessEvents, GuestSpawner, SpawnOptions } from '../hypervisor/guest-process';
import type { HostToGuest } from '../../src-emulator/guest/protocol';

export class ElectronGuestProcess extends EventEmitter<GuestProcessEvents> implements GuestProcess {
  private readonly proc: UtilityProcess;

  constructor(entry: string, opts: SpawnOptions) {
    super();
    this.proc = utilityProcess.fork(entry, [`--boxwood-vm=${opts.vmId}`], {
      serviceName: opts.displayName,
      stdio: 'pipe',
    });
    this.proc.stdout?.pipe(opts.log, { end: false });
    this.proc.stderr?.pipe(opts.log, { end: false });
    this.proc.on('message', (m: unknown) => this.emit('message', m));
    this.proc.on('exit', (code: number) => this.emit('exit', code, null));
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  send(message: HostToGuest): void {
    this.proc.postMessage(message);
  }

  /** Hands one end of a renderer's stream channel to the guest. */
  attachPort(port: MessagePortMain): void {
    const m: HostToGuest = { type: 'attach-stream' };
    this.proc.postMessage(m, [port]);
  }

  kill(): void {
    this.proc.kill();
  }
}

export class ElectronGuestSpawner implements GuestSpawner {
  constructor(private readonly entry: string) {}

  spawn(opts: SpawnOptions): ElectronGuestProcess {
    return new ElectronGuestProcess(this.entry, opts);
  }
}
