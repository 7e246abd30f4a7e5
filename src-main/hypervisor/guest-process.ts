/**
 * One guest process per running VM, behind a small interface so the hypervisor does not know
 * whether it is an Electron utilityProcess or a Node child process. The spawner pipes the
 * process's stdout/stderr into the VM's log file.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { WriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { GuestToHost, HostToGuest } from '../../src-emulator/guest/protocol';

export interface GuestProcessEvents {
  message: [GuestToHost | unknown];
  exit: [code: number | null, signal: string | null];
}

export interface GuestProcess extends EventEmitter<GuestProcessEvents> {
  readonly pid: number | undefined;
  send(message: HostToGuest): void;
  /** Kills the process hard (supervision timeout, app exit). */
  kill(): void;
}

export interface SpawnOptions {
  vmId: string;
  /** Shown in the OS's process list (Electron's serviceName). */
  displayName: string;
  /** Receives the process's stdout and stderr. */
  log: WriteStream;
}

export interface GuestSpawner {
  spawn(opts: SpawnOptions): GuestProcess;
}

const here = dirname(fileURLToPath(import.meta.url));
/** The guest entry as TypeScript source, run through tsx. */
export const GUEST_ENTRY_SOURCE = join(here, '..', '..', 'src-emulator', 'guest', 'main.ts');

/**
 * Plain Node: `child_process.fork` with the control channel on Node IPC (fd 3) and the display /
 * console / input stream on an extra pipe (fd 4) that the web twin relays to the browser.
 */
export class NodeGuestProcess extends EventEmitter<GuestProcessEvents> implements GuestProcess {
  readonly child: ChildProcess;

  constructor(entry: string, opts: SpawnOptions) {
    super();
    this.child = fork(entry, [`--boxwood-vm=${opts.vmId}`], {
      execArgv: entry.endsWith('.ts') ? ['--import', 'tsx'] : [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc', 'pipe'],
      serialization: 'advanced',
      env: { ...process.env, BOXWOOD_GUEST_NAME: opts.displayName },
    });
    this.child.stdout?.pipe(opts.log, { end: false });
    this.child.stderr?.pipe(opts.log, { end: false });
    this.child.on('message', (m) => this.emit('message', m));
    this.child.on('error', (err) => opts.log.write(`${new Date().toISOString()} hypervisor: guest process error: ${err.message}\n`));
    this.child.on('exit', (code, signal) => this.emit('exit', code, signal));
    this.stream.on('error', () => {});
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** fd 4: the length-prefixed stream pipe (see src-emulator/guest/protocol.ts). */
  get stream(): Duplex {
    return this.child.stdio[4] as Duplex;
  }

  send(message: HostToGuest): void {
    if (this.child.connected) this.child.send(message);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

export class NodeGuestSpawner implements GuestSpawner {
  constructor(private readonly entry = GUEST_ENTRY_SOURCE) {}

  spawn(opts: SpawnOptions): NodeGuestProcess {
    return new NodeGuestProcess(this.entry, opts);
  }
}
